//! `ferry get`: a run's nodes as a tree.

use super::{duration, symbol};
use ferry_engine::{Node, NodeKind, WorkflowRecord, display_name};
use ferry_workflow::naming::pod_name;
use ferry_workflow::time::rfc3339;
use std::collections::BTreeMap;

type Children<'a> = BTreeMap<Option<u32>, Vec<&'a Node>>;

pub(crate) fn print_tree(wf: &WorkflowRecord, nodes: &[Node]) {
    println!("Name:      {}", wf.name);
    println!("Status:    {}", wf.phase);
    if !wf.message.is_empty() {
        println!("Message:   {}", wf.message);
    }
    println!("Created:   {}", rfc3339(wf.created));
    println!("Duration:  {}", duration(Some(wf.created), wf.finished));
    println!("ArtifactGC: {}", wf.gc);
    println!();
    let mut children: Children = BTreeMap::new();
    for n in nodes {
        children.entry(n.parent).or_default().push(n);
    }
    println!("{:<50} {:<16} {:<40} {:>8}  MESSAGE", "STEP", "TEMPLATE", "PODNAME", "DURATION");
    for root in children.get(&None).cloned().unwrap_or_default() {
        walk(&wf.name, root, "", true, true, &children);
    }
}

fn walk(wf: &str, n: &Node, prefix: &str, last: bool, root: bool, children: &Children) {
    let branch = if root {
        ""
    } else if last {
        "└─"
    } else {
        "├─"
    };
    let label = format!("{prefix}{branch}{} {}", symbol(n.phase), display_name(&n.name));
    let pod = if n.kind == NodeKind::Pod { pod_name(wf, &n.template, &n.name) } else { String::new() };
    println!("{:<50} {:<16} {:<40} {:>8}  {}", label, n.template, pod, duration(n.started, n.finished), n.message);
    let kids = children.get(&Some(n.id)).cloned().unwrap_or_default();
    let next = if root { String::new() } else { format!("{prefix}{}", if last { "  " } else { "│ " }) };
    for (i, k) in kids.iter().enumerate() {
        walk(wf, k, &next, i + 1 == kids.len(), false, children);
    }
}
