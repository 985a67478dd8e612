//! The node table: ensuring a node exists (or finding it finished), updating
//! and finishing it, and reading finished work back for a resume.

use super::outcome::Ended;
use super::{Controller, NodeResult};
use crate::status::{ArtifactRecord, Node, NodeKind};
use ferry_workflow::naming;
use ferry_workflow::time::{now_ms, rfc3339};
use ferry_workflow::values::{ArtifactValue, Outputs, Phase};
use ferry_workflow::vars::Outcome;
use std::collections::{BTreeMap, BTreeSet, HashMap};

/// The run's nodes as the controller keeps them between flushes.
#[derive(Default)]
pub(super) struct State {
    pub(super) nodes: Vec<Node>,
    pub(super) by_name: HashMap<String, u32>,
    /// Nodes changed since the last flush.
    pub(super) dirty: BTreeSet<u32>,
    /// Artifact records not yet flushed.
    pub(super) artifacts: Vec<ArtifactRecord>,
    /// `globalName` outputs exported so far.
    pub(super) globals: BTreeMap<String, String>,
    /// `globalName` output artifacts exported so far.
    pub(super) global_artifacts: BTreeMap<String, ArtifactValue>,
}

/// How a node's outputs keep what it exported with `globalName`, so a
/// resumed run has them again: `global:<name>`.
pub(super) const GLOBAL: &str = "global:";

impl State {
    /// The state of a run whose store holds `stored`.
    pub(super) fn load(stored: &[Node]) -> State {
        let mut state = State::default();
        for node in stored {
            state.by_name.insert(node.name.clone(), node.id);
            let id = node.id as usize;
            if state.nodes.len() <= id {
                state.nodes.resize_with(id + 1, placeholder);
            }
            state.nodes[id] = node.clone();
        }
        for node in state.nodes.iter().filter(|n| n.phase.is_done()) {
            for (k, v) in &node.outputs.parameters {
                if let Some(g) = k.strip_prefix(GLOBAL) {
                    state.globals.insert(g.to_string(), v.clone());
                }
            }
            for (k, v) in &node.outputs.artifacts {
                if let Some(g) = k.strip_prefix(GLOBAL) {
                    state.global_artifacts.insert(g.to_string(), v.clone());
                }
            }
        }
        state
    }
}

/// What [`Controller::ensure`] found.
pub(super) enum Ensured {
    /// The node is new, or unfinished and reset: run it.
    Fresh(u32),
    /// The node finished in an earlier attempt: reuse its result (the
    /// idempotent step that makes resume work).
    Done(NodeResult),
}

impl Controller {
    /// Ensures the node `name` exists, unless it is already finished.
    pub(super) fn ensure(&self, name: &str, kind: NodeKind, template: &str, parent: Option<u32>) -> Ensured {
        let mut s = self.state.lock();
        let id = match s.by_name.get(name) {
            Some(&id) => {
                let node = &mut s.nodes[id as usize];
                if node.phase.is_done() {
                    return Ensured::Done(NodeResult::from_node(node));
                }
                node.phase = Phase::Pending;
                node.kind = kind;
                node.template = template.to_string();
                node.parent = parent;
                node.message.clear();
                id
            }
            None => {
                let id = s.nodes.len() as u32;
                s.nodes.push(Node {
                    id,
                    name: name.to_string(),
                    parent,
                    kind,
                    template: template.to_string(),
                    phase: Phase::Pending,
                    started: Some(now_ms()),
                    finished: None,
                    message: String::new(),
                    outputs: Outputs::default(),
                });
                s.by_name.insert(name.to_string(), id);
                id
            }
        };
        s.dirty.insert(id);
        let node = s.nodes[id as usize].clone();
        drop(s);
        self.notify(&node);
        Ensured::Fresh(id)
    }

    pub(super) fn set_message(&self, id: u32, message: String) {
        self.update(id, |n| n.message = message);
    }

    /// Marks a node running. A pod's start is its process's; any other
    /// node keeps the start it already has, so after a resume the root (and
    /// every steps, DAG, group or retry node) still runs from the first
    /// `ferry` process's start, as Argo's `startedAt` never moves.
    pub(super) fn set_running(&self, id: u32) {
        self.update(id, |n| {
            if n.phase != Phase::Running {
                crate::telemetry::node_started(n.kind.as_str());
            }
            n.phase = Phase::Running;
            if n.kind == NodeKind::Pod || n.started.is_none() {
                n.started = Some(now_ms());
            }
        });
    }

    fn update(&self, id: u32, f: impl FnOnce(&mut Node)) -> Node {
        let mut s = self.state.lock();
        let node = &mut s.nodes[id as usize];
        f(node);
        let node = node.clone();
        s.dirty.insert(id);
        drop(s);
        self.notify(&node);
        node
    }

    /// Records how a node ended; an unfinished end (an interrupted run)
    /// leaves the node unfinished so a resume redoes it.
    pub(super) fn finish(&self, id: u32, ended: Ended) -> NodeResult {
        if !ended.phase.is_done() {
            return NodeResult::from_node(&self.state.lock().nodes[id as usize]);
        }
        let node = self.update(id, |n| {
            n.phase = ended.phase;
            n.message = ended.message;
            n.outputs = ended.outputs;
            n.finished = Some(now_ms());
        });
        let ran = match (node.kind, node.started, node.finished) {
            (NodeKind::Pod, Some(from), Some(to)) => {
                Some(std::time::Duration::from_millis(to.saturating_sub(from) as u64))
            }
            _ => None,
        };
        crate::telemetry::node_finished(node.kind.as_str(), node.phase.as_str(), ran);
        NodeResult::from_node(&node)
    }

    /// Creates a finished node for a step that does not run.
    pub(super) fn not_run(&self, name: &str, template: &str, parent: u32, phase: Phase, message: String) -> NodeResult {
        match self.ensure(name, NodeKind::Skipped, template, Some(parent)) {
            Ensured::Fresh(id) => self.finish(id, Ended::new(phase, message)),
            Ensured::Done(done) => done,
        }
    }

    pub(super) fn record_artifacts(&self, records: Vec<ArtifactRecord>) {
        self.state.lock().artifacts.extend(records);
    }

    pub(super) fn record_global(&self, name: &str, value: &str) {
        self.state.lock().globals.insert(name.to_string(), value.to_string());
    }

    fn notify(&self, node: &Node) {
        self.changed.notify_one();
        if let Some(o) = &self.observer {
            let _ = o.send(node.clone());
        }
    }

    /// `workflow.failures`: as Argo gives it, every node so far that Failed
    /// or Errored (not only pods: the root, step groups, retries too), in
    /// node order, `finishedAt` in RFC 3339 (`null` if unset).
    pub(super) fn failures_json(&self) -> String {
        let s = self.state.lock();
        let failures: Vec<serde_json::Value> = s
            .nodes
            .iter()
            .filter(|n| !n.name.is_empty() && matches!(n.phase, Phase::Failed | Phase::Error))
            .map(|n| {
                serde_json::json!({
                    "displayName": n.display_name(), "message": n.message, "templateName": n.template,
                    "phase": n.phase.as_str(), "podName": naming::pod_name(&self.plan.name, &n.template, &n.name),
                    "finishedAt": n.finished.map(rfc3339),
                })
            })
            .collect();
        serde_json::to_string(&failures).unwrap_or_default()
    }

    /// The iterations of a finished loop, read back from the node table in
    /// item order (`name(0:a)`, `name(1:b)`, ...).
    pub(super) fn stored_children(&self, name: &str) -> Vec<(Phase, Outputs)> {
        let s = self.state.lock();
        let prefix = format!("{name}(");
        let mut children: Vec<(usize, Phase, Outputs)> = s
            .nodes
            .iter()
            .filter(|n| n.name.starts_with(&prefix) && !n.name[prefix.len()..].contains(")."))
            .filter_map(|n| {
                let idx = n.name[prefix.len()..].split(':').next()?.parse().ok()?;
                Some((idx, n.phase, n.outputs.clone()))
            })
            .collect();
        children.sort_by_key(|c| c.0);
        children.dedup_by_key(|c| c.0);
        children.into_iter().map(|c| (c.1, c.2)).collect()
    }

    /// The outcome of a finished step or task read back from the node table
    /// (for groups finished before a resume).
    pub(super) fn stored_outcome(&self, name: &str) -> Outcome {
        let s = self.state.lock();
        if let Some(n) = s.by_name.get(name).map(|&id| &s.nodes[id as usize]) {
            return Outcome {
                id: n.id.to_string(),
                phase: n.phase,
                outputs: n.outputs.clone(),
                children: None,
                started: n.started,
                finished: n.finished,
            };
        }
        drop(s);
        let children = self.stored_children(name);
        let phase = if children.iter().all(|c| c.0.is_ok()) { Phase::Succeeded } else { Phase::Failed };
        Outcome {
            id: String::new(),
            phase,
            outputs: Outputs::default(),
            children: Some(children),
            started: None,
            finished: None,
        }
    }
}

fn placeholder() -> Node {
    Node {
        id: 0,
        name: String::new(),
        parent: None,
        kind: NodeKind::Skipped,
        template: String::new(),
        phase: Phase::Omitted,
        started: None,
        finished: None,
        message: String::new(),
        outputs: Outputs::default(),
    }
}
