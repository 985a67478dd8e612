//! The runs this server drives: submitted through the API, or resumed
//! there. Each runs in this process, as `ferry run` would run it; stopping
//! one interrupts it the way Ctrl-C interrupts `ferry run`, so it can be
//! resumed later, here or with `ferry resume`.

use crate::error::{Error, Result};
use crate::state::AppState;
use ferry_engine::{Decision, WorkflowRecord};
use ferry_workflow::plan::{Plan, PlanOptions};
use parking_lot::Mutex;
use std::collections::HashMap;
use std::path::PathBuf;
use tokio_util::sync::CancellationToken;

/// Runs driven here, by name, with what interrupts each.
#[derive(Default)]
pub(crate) struct Driving {
    runs: Mutex<HashMap<String, CancellationToken>>,
    tasks: tokio_util::task::TaskTracker,
}

/// A workflow to submit.
pub(crate) struct Submission {
    pub(crate) yaml: String,
    pub(crate) parameters: Vec<(String, String)>,
    pub(crate) name: Option<String>,
}

impl Driving {
    /// Whether this server drives `name` now.
    pub(crate) fn drives(&self, name: &str) -> bool {
        self.runs.lock().contains_key(name)
    }

    /// Runs (or continues) `wf` in the background.
    pub(crate) fn start(&self, state: &AppState, wf: WorkflowRecord, plan: Plan) -> Result<()> {
        let runtime = (state.runtime)(&plan.runtime).map_err(Error::BadRequest)?;
        let token = CancellationToken::new();
        {
            let mut runs = self.runs.lock();
            if runs.contains_key(&wf.name) {
                return Err(Error::Conflict(format!("run {:?} is already running here", wf.name)));
            }
            runs.insert(wf.name.clone(), token.clone());
        }
        let state = state.clone();
        self.tasks.spawn(async move {
            let name = wf.name.clone();
            match state.home.execute(wf, plan, runtime, token, None).await {
                Ok(f) => tracing::info!(run = %name, phase = %f.workflow.phase, "run ended"),
                Err(e) => tracing::warn!(run = %name, "run could not go on: {e}"),
            }
            state.driving.runs.lock().remove(&name);
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

/// Plans, records and starts a submitted workflow; its run's record.
pub(crate) async fn submit(state: &AppState, s: Submission) -> Result<WorkflowRecord> {
    let dir = state.options.submissions_dir(&state.home);
    std::fs::create_dir_all(&dir).map_err(|e| Error::Conflict(format!("creating {}: {e}", dir.display())))?;
    let file = dir.join(format!("{}.yaml", uuid::Uuid::new_v4()));
    std::fs::write(&file, &s.yaml).map_err(|e| Error::Conflict(format!("writing {}: {e}", file.display())))?;
    let mut files = vec![file];
    files.extend(state.options.template_files()?);
    let options = PlanOptions {
        parameters: s.parameters,
        registry: state.options.registry.clone(),
        name: s.name,
        runtime: Some(Default::default()),
        ..Default::default()
    };
    let home = state.home.clone();
    let (wf, plan) = tokio::task::spawn_blocking(move || -> Result<_> {
        let plan = home.plan(&files, options)?;
        let wf = home.create(&plan)?;
        Ok((wf, plan))
    })
    .await
    .map_err(|e| Error::Conflict(format!("planning failed: {e}")))??;
    state.driving.start(state, wf.clone(), plan)?;
    Ok(wf)
}

/// What resuming did.
pub(crate) enum Resumed {
    /// The decision was recorded for the process driving the run.
    Decided,
    /// The run goes on here.
    Continued,
    /// The run was already over.
    AlreadyDone,
}

/// Records `decision` (if any) and continues the run here unless another
/// process (or this server) drives it, as `ferry resume` does.
pub(crate) fn resume(state: &AppState, name: &str, decision: Option<Decision>) -> Result<Resumed> {
    let wf = state.home.workflow(name)?;
    if let Some(d) = &decision {
        state.home.decide(&wf, d)?;
    }
    if state.driving.drives(name) || state.home.in_progress(&wf)? {
        return match decision {
            Some(_) => Ok(Resumed::Decided),
            None => Err(Error::Conflict(format!("run {name:?} is running"))),
        };
    }
    if wf.phase.is_done() {
        return Ok(Resumed::AlreadyDone);
    }
    let plan = state.home.stored_plan(&wf)?;
    state.driving.start(state, wf, plan)?;
    Ok(Resumed::Continued)
}

/// Deletes a run with its artifact GC, as `ferry delete` does.
pub(crate) async fn delete(state: &AppState, name: &str, force: bool) -> Result<ferry_engine::GcReport> {
    let wf = state.home.workflow(name)?;
    if state.driving.drives(name) {
        return Err(Error::Conflict(format!("run {name:?} is running: stop it first")));
    }
    state.pools.forget(wf.id).await;
    Ok(state.home.delete(name, force).await?)
}

/// The YAML files of a templates directory (`--templates`).
pub(crate) fn yaml_files(dir: &std::path::Path) -> Result<Vec<PathBuf>> {
    let entries = std::fs::read_dir(dir).map_err(|e| Error::Conflict(format!("reading {}: {e}", dir.display())))?;
    let mut files: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "yaml" || x == "yml"))
        .collect();
    files.sort();
    Ok(files)
}
