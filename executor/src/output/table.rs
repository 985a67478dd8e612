//! Tables: runs and artifacts.

use super::duration;
use ferry_engine::{ArtifactRecord, Direction, WorkflowRecord};
use ferry_workflow::time::rfc3339;

/// `ferry list`.
pub(crate) fn runs(list: &[WorkflowRecord]) {
    println!("{:<40} {:<10} {:>10}  {:<20} GC", "NAME", "STATUS", "DURATION", "CREATED");
    for w in list {
        println!(
            "{:<40} {:<10} {:>10}  {:<20} {}",
            w.name,
            w.phase,
            duration(Some(w.created), w.finished),
            rfc3339(w.created),
            w.gc
        );
    }
}

/// `ferry artifacts WF`; `name_of` gives a node's name by id.
pub(crate) fn artifacts(records: &[ArtifactRecord], name_of: impl Fn(u32) -> String) {
    println!("{:<40} {:<7} {:<16} {:<8} {:<22} {:<8} KEY", "NODE", "IN/OUT", "NAME", "DRIVER", "GC", "DELETED");
    for r in records {
        let gc = format!("{:?}", r.gc);
        println!(
            "{:<40} {:<7} {:<16} {:<8} {:<22} {:<8} {}",
            name_of(r.node),
            if r.direction == Direction::Input { "in" } else { "out" },
            r.name,
            r.location.driver,
            gc,
            if r.deleted { "yes" } else { "" },
            r.location.key
        );
    }
}
