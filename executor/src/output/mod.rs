//! How `ferry` shows runs: tables, the node tree, live progress and the
//! end-of-run report.

pub(crate) mod progress;
pub(crate) mod report;
pub(crate) mod table;
pub(crate) mod tree;

use ferry_workflow::values::Phase;

/// The mark a phase is shown with.
fn symbol(p: Phase) -> &'static str {
    match p {
        Phase::Succeeded => "✔",
        Phase::Failed | Phase::Error => "✖",
        Phase::Skipped | Phase::Omitted => "○",
        Phase::Running => "●",
        Phase::Pending => "◷",
    }
}

/// A short human duration between two unix-millisecond times (`850ms`,
/// `12.5s`, `3m20s`), empty if either is missing.
fn duration(start: Option<i64>, end: Option<i64>) -> String {
    let (Some(s), Some(e)) = (start, end) else { return String::new() };
    let ms = (e - s).max(0);
    if ms < 1000 {
        format!("{ms}ms")
    } else if ms < 60_000 {
        format!("{:.1}s", ms as f64 / 1000.0)
    } else {
        format!("{}m{}s", ms / 60_000, (ms % 60_000) / 1000)
    }
}
