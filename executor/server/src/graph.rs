//! The edges of a run's graph as Argo's UI draws them (its nodes'
//! `children`): a steps template runs its groups one after another, a DAG
//! task leads to the tasks that depend on it, anything else to the nodes it
//! holds. Ferry records only each node's parent; the rest comes from the plan.

use ferry_engine::{Node, NodeKind};
use ferry_workflow::expr::{from_dependencies, parse_depends};
use ferry_workflow::model::Template;
use ferry_workflow::plan::Plan;
use std::collections::BTreeMap;

/// Each node's children, by node index, in the order they ran.
pub(crate) fn children(plan: &Plan, nodes: &[Node]) -> BTreeMap<u32, Vec<u32>> {
    let mut held: BTreeMap<u32, Vec<u32>> = BTreeMap::new();
    for n in nodes {
        if let Some(p) = n.parent {
            held.entry(p).or_default().push(n.id);
        }
    }
    let kind = |id: u32| nodes.iter().find(|n| n.id == id).map(|n| n.kind);
    let mut edges: BTreeMap<u32, Vec<u32>> = BTreeMap::new();
    for n in nodes {
        let kids = held.get(&n.id).cloned().unwrap_or_default();
        match n.kind {
            NodeKind::Steps => {
                let (groups, others): (Vec<u32>, Vec<u32>) =
                    kids.into_iter().partition(|k| kind(*k) == Some(NodeKind::StepGroup));
                // The first group, then each group's steps lead to the next group.
                edges.entry(n.id).or_default().extend(groups.first().copied().into_iter().chain(others));
                for pair in groups.windows(2) {
                    for step in held.get(&pair[0]).into_iter().flatten() {
                        edges.entry(*step).or_default().push(pair[1]);
                    }
                }
            }
            NodeKind::Dag => dag_edges(plan, nodes, n, &kids, &mut edges),
            _ => edges.entry(n.id).or_default().extend(kids),
        }
    }
    for list in edges.values_mut() {
        let mut seen = std::collections::BTreeSet::new();
        list.retain(|id| seen.insert(*id));
    }
    edges
}

/// A DAG's edges: the DAG to its tasks that depend on none, each task to
/// its dependents.
fn dag_edges(plan: &Plan, nodes: &[Node], dag: &Node, tasks: &[u32], edges: &mut BTreeMap<u32, Vec<u32>>) {
    let deps = template_named(plan, &dag.template).map(task_dependencies).unwrap_or_default();
    let task_of = |id: &u32| nodes.iter().find(|n| n.id == *id).map(|n| task_name(n.display_name()).to_string());
    for t in tasks {
        let name = task_of(t).unwrap_or_default();
        let upstream: Vec<u32> = deps
            .get(&name)
            .into_iter()
            .flatten()
            .flat_map(|d| tasks.iter().filter(move |u| task_of(u).as_deref() == Some(d.as_str())))
            .copied()
            .collect();
        if upstream.is_empty() {
            edges.entry(dag.id).or_default().push(*t);
        }
        for u in upstream {
            edges.entry(u).or_default().push(*t);
        }
    }
}

/// A task's name from its node's display name: `build(0:linux)` → `build`.
fn task_name(display: &str) -> &str {
    display.split_once('(').map_or(display, |(name, _)| name)
}

/// The template a DAG node ran: among the workflow's own, else any
/// WorkflowTemplate's (a `templateRef`).
fn template_named<'a>(plan: &'a Plan, name: &str) -> Option<&'a Template> {
    plan.spec.templates.iter().chain(plan.library.values().flat_map(|s| s.templates.iter())).find(|t| t.name == name)
}

/// Each task's upstream tasks, from `depends` or `dependencies`.
fn task_dependencies(t: &Template) -> BTreeMap<String, Vec<String>> {
    let Some(dag) = &t.dag else { return BTreeMap::new() };
    dag.tasks
        .iter()
        .map(|task| {
            let parsed = if task.depends.is_empty() {
                Ok(from_dependencies(&task.dependencies))
            } else {
                parse_depends(&task.depends)
            };
            (task.name.clone(), parsed.map(|d| d.tasks()).unwrap_or_default())
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loop_suffixes_are_not_part_of_a_task_name() {
        assert_eq!(task_name("build(0:linux)"), "build");
        assert_eq!(task_name("build"), "build");
    }
}
