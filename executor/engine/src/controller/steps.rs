//! A steps template: its groups run one after the other, the steps of a
//! group in parallel; a group that fails ends the template.

use super::loops::{Site, limiter};
use super::nodes::Ensured;
use super::outcome::{Ended, Fold, composite_outputs, fails};
use super::{Call, Controller};
use crate::status::NodeKind;
use ferry_workflow::binding::Bound;
use ferry_workflow::model::{Step, Template};
use ferry_workflow::vars::Vars;
use futures::stream::{FuturesUnordered, StreamExt};
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

impl Controller {
    pub(super) async fn run_steps(
        self: Arc<Self>,
        id: u32,
        call: &Call,
        template: &Template,
        bound: Bound,
        cancel: CancellationToken,
    ) -> Ended {
        self.set_running(id);
        let mut vars = bound.vars;
        vars.keep = vec!["workflow.status", "workflow.failures"];
        let groups = template.steps.clone().unwrap_or_default();
        for (gi, group) in groups.iter().enumerate() {
            let group_name = format!("{}[{gi}]", call.name);
            let fold = match self.ensure(&group_name, NodeKind::StepGroup, &template.name, Some(id)) {
                Ensured::Fresh(gid) => {
                    let at = Group { id: gid, name: &group_name, steps: group };
                    self.clone().run_group(at, call, template, &mut vars, &cancel).await
                }
                Ensured::Done(done) => {
                    // A finished group: its children's outcomes are in the store.
                    for step in group {
                        let o = self.stored_outcome(&format!("{group_name}.{}", step.name));
                        let o = self.declared_defaults(step, &call.origin, o);
                        vars.siblings.insert(format!("steps.{}", step.name), o);
                    }
                    Fold { phase: done.phase, message: done.message }
                }
            };
            if !fold.phase.is_ok() {
                return Ended::new(fold.phase, fold.message);
            }
        }
        Fold::new().end(|| composite_outputs(template, &vars, &self.plan.repository))
    }

    /// Runs one group's steps, as many at once as the template allows, each
    /// outcome becoming `steps.<name>` for the groups after it; finishes the
    /// group's node.
    async fn run_group(
        self: Arc<Self>,
        group: Group<'_>,
        call: &Call,
        template: &Template,
        vars: &mut Vars,
        cancel: &CancellationToken,
    ) -> Fold {
        self.set_running(group.id);
        let parallelism = template.parallelism.map(|p| p as usize);
        let fail_fast = template.fail_fast.unwrap_or(true);
        let limit = limiter(parallelism);
        let mut running = FuturesUnordered::new();
        for step in group.steps {
            let (me, vars, limit) = (self.clone(), vars.clone(), limit.clone());
            let site = Site {
                name: format!("{}.{}", group.name, step.name),
                parent: group.id,
                cancel: cancel.clone(),
                group_kind: NodeKind::StepGroup,
                parallelism,
                fail_fast,
                depth: call.depth,
            };
            let (step, origin) = (step.clone(), call.origin.clone());
            running.push(async move {
                let _permit = limit.acquire_owned().await;
                let o = me.run_step(step.clone(), origin, vars, site).await;
                (step, o)
            });
        }
        let mut fold = Fold::new();
        while let Some((step, o)) = running.next().await {
            fold.add(o.phase, fails(o.phase, step.continue_on), || format!("step {} {}", step.name, o.phase));
            vars.siblings.insert(format!("steps.{}", step.name), o);
        }
        self.finish(group.id, Ended::new(fold.phase, fold.message.clone()));
        fold
    }
}

/// One group of a steps template, and its node.
struct Group<'a> {
    id: u32,
    name: &'a str,
    steps: &'a [Step],
}
