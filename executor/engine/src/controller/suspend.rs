//! Suspend templates: a node that waits for its duration, or for a person's
//! decision (`ferry resume --approve` / `--fail`, from any process), which
//! may also supply its output parameters.

use super::Controller;
use super::outcome::Ended;
use crate::store::Decision;
use ferry_workflow::model::Template;
use ferry_workflow::time::{active_deadline, now_ms};
use ferry_workflow::values::{Outputs, Phase};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// How often a suspended node looks for a decision.
const POLL: Duration = Duration::from_millis(200);

impl Controller {
    pub(super) async fn run_suspend(&self, id: u32, template: &Template, cancel: CancellationToken) -> Ended {
        // From when the node first started, read before `set_running`
        // restarts its clock: a decision given while a stopped run waited
        // for `ferry resume` is for this node.
        let since = self.state.lock().nodes[id as usize].started.unwrap_or_else(now_ms);
        self.set_running(id);
        let duration = match template.suspend.as_ref().and_then(|s| s.duration.as_ref()) {
            Some(d) => match active_deadline(&d.0) {
                Some(d) => Some(d),
                None => return Ended::error(format!("suspend.duration {:?} is not a number of seconds", d.0)),
            },
            None => None,
        };
        let ends = duration.map(|d| since + i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
        loop {
            let decided = self.store.lock().decision(self.wf.id, since);
            match decided {
                Ok(Some(decision)) => return decided_outputs(template, &decision),
                Ok(None) => {}
                Err(e) => return Ended::error(e),
            }
            if ends.is_some_and(|end| now_ms() >= end) {
                return decided_outputs(template, &Decision { approve: true, ..Decision::default() });
            }
            tokio::select! {
                () = tokio::time::sleep(POLL) => {}
                () = cancel.cancelled() => return Ended::new(self.cancel_phase(), ""),
            }
        }
    }
}

/// How a suspended node ends on `decision`: approved, with its output
/// parameters supplied, else their value or default; or failed.
fn decided_outputs(template: &Template, decision: &Decision) -> Ended {
    if !decision.approve {
        let why = if decision.message.is_empty() { "Stopped with ferry resume --fail" } else { &decision.message };
        return Ended::new(Phase::Failed, why);
    }
    let mut outputs = Outputs::default();
    for p in &template.outputs.parameters {
        let value = decision
            .supplied
            .get(&p.name)
            .cloned()
            .or_else(|| p.value.as_ref().map(|v| v.0.clone()))
            .or_else(|| p.value_from.as_ref().and_then(|v| v.default.as_ref()).map(|d| d.0.clone()));
        match value {
            Some(v) => {
                outputs.parameters.insert(p.name.clone(), v);
            }
            None => {
                return Ended::error(format!(
                    "output parameter {:?} was not supplied (ferry resume --approve --set {}=VALUE) and has no default",
                    p.name, p.name
                ));
            }
        }
    }
    Ended { phase: Phase::Succeeded, message: String::new(), outputs }
}
