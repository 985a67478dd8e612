//! `ferry logs`: the logs of a run's steps.

use anyhow::{Result, bail};
use ferry_engine::{Home, Node, NodeKind, WorkflowRecord};
use ferry_workflow::naming::pod_name;
use std::io::Write;

/// Prints the logs of every step that ran, or of the one `node` names. A
/// run or step with no log (nothing started) is not an error: it is said on
/// stderr and the command exits 0; a `node` the run does not have is.
pub(super) fn logs(home: &Home, workflow: &str, node: Option<&str>) -> Result<u8> {
    let wf = home.workflow(workflow)?;
    let nodes = home.store().nodes(wf.id)?;
    let Some(want) = node else {
        let pods: Vec<&Node> = nodes.iter().filter(|n| n.kind == NodeKind::Pod).collect();
        let mut printed = false;
        for n in pods {
            if let Some(text) = read_log(&wf, n) {
                print_lines(&text, Some(n.display_name()))?;
                printed = true;
            }
        }
        if !printed {
            eprintln!("{}: no step ran, so there are no logs ({})", wf.name, outcome(wf.phase.as_str(), &wf.message));
        }
        return Ok(0);
    };
    let named: Vec<&Node> = nodes.iter().filter(|n| names(&wf, n, want)).collect();
    if named.is_empty() {
        bail!("no step {want:?} in {}", wf.name);
    }
    for n in named {
        if !matches!(n.kind, NodeKind::Pod | NodeKind::Skipped) {
            // A retry, loop or template node: the logs of the steps under it.
            let under: Vec<&Node> =
                nodes.iter().filter(|p| p.kind == NodeKind::Pod && is_under(&nodes, p, n)).collect();
            let printed = under
                .iter()
                .filter_map(|p| Some((p, read_log(&wf, p)?)))
                .map(|(p, text)| print_lines(&text, Some(p.display_name())));
            if printed.collect::<Result<Vec<()>>>()?.is_empty() {
                eprintln!(
                    "{}: no step under it ran, so there are no logs ({})",
                    n.display_name(),
                    outcome(n.phase.as_str(), &n.message)
                );
            }
            continue;
        }
        match read_log(&wf, n) {
            Some(text) => print_lines(&text, None)?,
            None => eprintln!("{}: {}", n.display_name(), no_log(n)),
        }
    }
    Ok(0)
}

/// Whether `ancestor` is above `n` in the node tree.
fn is_under(nodes: &[Node], n: &Node, ancestor: &Node) -> bool {
    let mut parent = n.parent;
    // Bounded by the node count, should the stored tree ever hold a cycle.
    for _ in 0..nodes.len() {
        match parent.and_then(|id| nodes.iter().find(|m| m.id == id)) {
            Some(p) if p.id == ancestor.id => return true,
            Some(p) => parent = p.parent,
            None => return false,
        }
    }
    false
}

/// Whether `want` is the node's display name, node name or pod name.
fn names(wf: &WorkflowRecord, n: &Node, want: &str) -> bool {
    n.display_name() == want || n.name == want || (n.kind == NodeKind::Pod && pod(wf, n) == want)
}

fn pod(wf: &WorkflowRecord, n: &Node) -> String {
    pod_name(&wf.name, &n.template, &n.name)
}

/// The node's log, if it is a pod that started.
fn read_log(wf: &WorkflowRecord, n: &Node) -> Option<String> {
    if n.kind != NodeKind::Pod {
        return None;
    }
    std::fs::read_to_string(wf.dir.join("logs").join(format!("{}.log", pod(wf, n)))).ok()
}

fn print_lines(text: &str, prefix: Option<&str>) -> Result<()> {
    let mut out = std::io::stdout().lock();
    for line in text.lines() {
        match prefix {
            Some(p) => writeln!(out, "{p}: {line}")?,
            None => writeln!(out, "{line}")?,
        }
    }
    Ok(())
}

/// Why a pod or skipped node has no log.
fn no_log(n: &Node) -> String {
    let why = outcome(n.phase.as_str(), &n.message);
    if n.kind == NodeKind::Pod {
        format!("no log: its process never started ({why})")
    } else {
        format!("no log: it did not run ({why})")
    }
}

fn outcome(phase: &str, message: &str) -> String {
    if message.is_empty() { phase.to_string() } else { format!("{phase}: {message}") }
}
