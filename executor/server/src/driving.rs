//! The runs this server drives: submitted through the API, or resumed
//! there. Each runs in this process, as `ferry run` would run it; stopping
//! one interrupts it the way Ctrl-C interrupts `ferry run`, so it can be
//! resumed later, here or with `ferry resume`.

use crate::error::{Error, Result};
use ferry_engine::{Home, Runtime, WorkflowRecord};
use ferry_workflow::plan::Plan;
use parking_lot::Mutex;
use std::collections::HashMap;
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

/// Runs driven here, by name, with what interrupts each.
#[derive(Default)]
pub(crate) struct Driving {
    runs: Mutex<HashMap<String, CancellationToken>>,
    tasks: tokio_util::task::TaskTracker,
}

impl Driving {
    /// Whether this server drives `name` now.
    pub(crate) fn drives(&self, name: &str) -> bool {
        self.runs.lock().contains_key(name)
    }

    /// Runs (or continues) `wf` in the background.
    pub(crate) fn start(
        self: &Arc<Self>,
        home: Arc<Home>,
        runtime: Arc<dyn Runtime>,
        wf: WorkflowRecord,
        plan: Plan,
    ) -> Result<()> {
        let token = CancellationToken::new();
        {
            let mut runs = self.runs.lock();
            if runs.contains_key(&wf.name) {
                return Err(Error::Conflict(format!("run {:?} is already running here", wf.name)));
            }
            runs.insert(wf.name.clone(), token.clone());
        }
        let driving = self.clone();
        self.tasks.spawn(async move {
            let name = wf.name.clone();
            match home.execute(wf, plan, runtime, token, None).await {
                Ok(f) => tracing::info!(run = %name, phase = %f.workflow.phase, "run ended"),
                Err(e) => tracing::warn!(run = %name, "run could not go on: {e}"),
            }
            driving.runs.lock().remove(&name);
        });
        Ok(())
    }

    /// Interrupts a run driven here; `ferry resume` (or the API's resume)
    /// continues it.
    pub(crate) fn stop(&self, name: &str) -> bool {
        match self.runs.lock().get(name) {
            Some(token) => {
                token.cancel();
                true
            }
            None => false,
        }
    }

    /// Interrupts every run driven here and waits for each to record where
    /// it stopped (server shutdown).
    pub(crate) async fn stop_all(&self) {
        for token in self.runs.lock().values() {
            token.cancel();
        }
        self.tasks.close();
        self.tasks.wait().await;
    }
}
