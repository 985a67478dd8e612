//! `ferry resume`: continues a stopped run without re-running finished
//! steps, or retries the failed artifact GC of a finished one; with
//! `--approve` / `--fail`, first decides its suspended nodes.

use super::{build_runtime, execute};
use crate::cli::{Output, RuntimeArgs};
use crate::output::report::report;
use anyhow::Result;
use ferry_engine::{Decision, Home};
use ferry_workflow::values::Phase;

pub(super) async fn resume(
    home: &Home,
    workflow: &str,
    decision: Option<Decision>,
    quiet: bool,
    output: Output,
    runtime_args: RuntimeArgs,
) -> Result<u8> {
    let wf = home.workflow(workflow)?;
    if let Some(decision) = &decision {
        home.decide(&wf, decision)?;
        // The process running it sees the decision; otherwise this one
        // continues the run, which then sees it.
        if home.in_progress(&wf)? {
            let verdict = if decision.approve { "approved" } else { "failed" };
            println!("{}: suspended nodes {verdict}; the ferry running it continues", wf.name);
            return Ok(0);
        }
    }
    if wf.phase.is_done() {
        if wf.gc.is_failed() {
            let r = home.retry_gc(&wf).await?;
            println!("{}: artifact GC retried: {} deleted, {} failed", wf.name, r.deleted, r.failed.len());
            for f in &r.failed {
                eprintln!("  {f}");
            }
            return Ok(u8::from(!r.failed.is_empty()));
        }
        println!("{} already {}", wf.name, wf.phase);
        return Ok(u8::from(wf.phase != Phase::Succeeded));
    }
    let plan = home.stored_plan(&wf)?;
    let runtime = build_runtime(&runtime_args.or_stored(&plan.runtime), home)?;
    let finished = execute(home, wf, plan, runtime, quiet || matches!(output, Output::Json)).await?;
    report(home, &finished, output)
}
