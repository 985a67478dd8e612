//! The report at the end of a run or resume.

use super::{duration, symbol};
use crate::cli::Output;
use anyhow::Result;
use ferry_engine::{Finished, Home, RunSummary};
use ferry_workflow::values::Phase;
use std::collections::BTreeMap;

/// Prints how a run ended; the exit code: 0 succeeded, 130 interrupted, 1 otherwise.
pub(crate) fn report(home: &Home, f: &Finished, output: Output) -> Result<u8> {
    let RunSummary { phase, message, nodes } = &f.summary;
    match output {
        Output::Json => {
            let nodes = home.store().nodes(f.workflow.id)?;
            let doc = serde_json::json!({
                "workflow": f.workflow,
                "nodes": nodes,
                "gc": f.gc.as_ref().map(|g| serde_json::json!({"deleted": g.deleted, "failed": g.failed, "state": g.state()})),
                "driverStartupMs": f.startups.iter().map(|(n, d)| (n.clone(), d.as_millis() as u64)).collect::<BTreeMap<_, _>>(),
            });
            println!("{}", serde_json::to_string_pretty(&doc)?);
        }
        Output::Text => {
            let took = duration(Some(f.workflow.created), f.workflow.finished);
            if *phase == Phase::Running {
                eprintln!("ferry: {} interrupted; continue with: ferry resume {}", f.workflow.name, f.workflow.name);
            } else {
                println!(
                    "{} {} {} in {took} ({nodes} nodes){}",
                    symbol(*phase),
                    f.workflow.name,
                    phase,
                    if message.is_empty() { String::new() } else { format!(": {message}") }
                );
            }
            if let Some(gc) = &f.gc {
                if gc.deleted > 0 || !gc.failed.is_empty() {
                    println!("artifact GC: {} deleted, {} failed", gc.deleted, gc.failed.len());
                }
                for e in &gc.failed {
                    eprintln!("  {e}");
                }
            }
            for d in &f.driver_exits {
                eprintln!("ferry: driver {d} did not exit cleanly on SIGTERM");
            }
        }
    }
    Ok(match phase {
        Phase::Succeeded => 0,
        Phase::Running => 130,
        _ => 1,
    })
}
