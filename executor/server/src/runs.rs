//! The API's actions on runs: submit, resume and delete, as `ferry run`,
//! `ferry resume` and `ferry delete` do them.

use crate::error::{Error, Result};
use crate::state::AppState;
use ferry_engine::{Decision, WorkflowRecord};
use ferry_workflow::plan::{Plan, PlanOptions};
use std::path::PathBuf;

/// A workflow to submit.
pub(crate) struct Submission {
    pub(crate) yaml: String,
    pub(crate) parameters: Vec<(String, String)>,
    pub(crate) name: Option<String>,
}

/// Runs `wf` here, in the runtime it started in (or `--runtime`'s).
fn drive(state: &AppState, wf: WorkflowRecord, plan: Plan) -> Result<()> {
    let runtime = (state.runtime)(&plan.runtime).map_err(Error::BadRequest)?;
    state.driving.start(state.home.clone(), runtime, wf, plan)
}

/// Plans, records and starts a submitted workflow; its run's record.
pub(crate) async fn submit(state: &AppState, s: Submission) -> Result<WorkflowRecord> {
    let dir = state.options.submissions_dir(&state.home);
    std::fs::create_dir_all(&dir).map_err(|e| Error::Internal(format!("creating {}: {e}", dir.display())))?;
    let file = dir.join(format!("{}.yaml", uuid::Uuid::new_v4()));
    std::fs::write(&file, &s.yaml).map_err(|e| Error::Internal(format!("writing {}: {e}", file.display())))?;
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
    .map_err(|e| Error::Internal(format!("planning failed: {e}")))??;
    drive(state, wf.clone(), plan)?;
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
    drive(state, wf, plan)?;
    Ok(Resumed::Continued)
}

/// Deletes a run with its artifact GC, as `ferry delete` does.
pub(crate) async fn delete(state: &AppState, name: &str, force: bool) -> Result<ferry_engine::GcReport> {
    let wf = state.home.workflow(name)?;
    if state.driving.drives(name) {
        return Err(Error::Conflict(format!("run {name:?} is running: stop it first")));
    }
    state.pools.forget(&wf.uid).await;
    let report = state.home.delete(name, force).await?;
    state.plans.forget(&wf.uid);
    Ok(report)
}

/// The YAML files of a templates directory (`--templates`).
pub(crate) fn yaml_files(dir: &std::path::Path) -> Result<Vec<PathBuf>> {
    let entries = std::fs::read_dir(dir).map_err(|e| Error::Internal(format!("reading {}: {e}", dir.display())))?;
    let mut files: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "yaml" || x == "yml"))
        .collect();
    files.sort();
    Ok(files)
}
