//! Live progress of a run.

use super::{duration, symbol};
use ferry_engine::{Node, NodeKind};
use ferry_workflow::values::Phase;
use std::collections::BTreeMap;
use std::io::IsTerminal;

/// A spinner with counts on a terminal, a line per finished step otherwise.
pub(crate) async fn show_progress(mut rx: tokio::sync::mpsc::UnboundedReceiver<Node>, quiet: bool) {
    let tty = std::io::stderr().is_terminal();
    let bar = (!quiet && tty).then(|| {
        let b = indicatif::ProgressBar::new_spinner();
        b.enable_steady_tick(std::time::Duration::from_millis(120));
        b
    });
    let mut phases: BTreeMap<u32, Phase> = BTreeMap::new();
    while let Some(node) = rx.recv().await {
        if node.kind != NodeKind::Pod {
            continue;
        }
        let before = phases.insert(node.id, node.phase);
        if node.phase.is_done() && before != Some(node.phase) && !quiet {
            // An inline template's node has no template name to show.
            let template = if node.template.is_empty() { String::new() } else { format!(" ({})", node.template) };
            let line = format!(
                "{} {}{} {}{}",
                symbol(node.phase),
                node.display_name(),
                template,
                duration(node.started, node.finished),
                if node.message.is_empty() { String::new() } else { format!("  {}", node.message) }
            );
            match &bar {
                Some(b) => b.println(line),
                None => eprintln!("{line}"),
            }
        }
        if let Some(b) = &bar {
            let count = |p: Phase| phases.values().filter(|x| **x == p).count();
            b.set_message(format!(
                "running {}  succeeded {}  failed {}",
                count(Phase::Running),
                count(Phase::Succeeded),
                count(Phase::Failed) + count(Phase::Error)
            ));
        }
    }
    if let Some(b) = bar {
        b.finish_and_clear();
    }
}
