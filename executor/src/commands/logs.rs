//! `ferry logs`: the logs of a run's steps.

use anyhow::{Result, bail};
use ferry_engine::{Home, NodeKind};
use ferry_workflow::naming::pod_name;
use std::io::Write;

pub(super) fn logs(home: &Home, workflow: &str, node: Option<&str>) -> Result<u8> {
    let wf = home.workflow(workflow)?;
    let nodes = home.store().nodes(wf.id)?;
    let mut found = false;
    for n in nodes.iter().filter(|n| n.kind == NodeKind::Pod) {
        let pod = pod_name(&wf.name, &n.template, &n.name);
        if let Some(want) = node
            && ![n.display_name(), n.name.as_str(), pod.as_str()].contains(&want)
        {
            continue;
        }
        found = true;
        let text = std::fs::read_to_string(wf.dir.join("logs").join(format!("{pod}.log"))).unwrap_or_default();
        let mut out = std::io::stdout().lock();
        for line in text.lines() {
            if node.is_some() {
                writeln!(out, "{line}")?;
            } else {
                writeln!(out, "{}: {line}", n.display_name())?;
            }
        }
    }
    if !found {
        bail!("no step {:?} in {}", node.unwrap_or_default(), wf.name);
    }
    Ok(0)
}
