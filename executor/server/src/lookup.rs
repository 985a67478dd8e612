//! Finding what a URL names: a run of the home, one of its nodes, one of the
//! artifacts recorded for that node. Nothing else can be reached: a URL can
//! name only a key the run recorded, or a path under a recorded directory.

use crate::error::{Error, Result};
use crate::state::AppState;
use ferry_engine::{ArtifactRecord, Direction, Home, Node, WorkflowRecord};
use ferry_workflow::naming::{node_id, pod_name};
use ferry_workflow::plan::Plan;
use std::sync::Arc;

/// What a URL path segment may hold unencoded (RFC 3986's unreserved set).
const SEGMENT: &percent_encoding::AsciiSet =
    &percent_encoding::NON_ALPHANUMERIC.remove(b'-').remove(b'.').remove(b'_').remove(b'~');

/// `text` as one URL path segment.
pub(crate) fn encode_segment(text: &str) -> String {
    percent_encoding::utf8_percent_encode(text, SEGMENT).to_string()
}

/// A run with its plan's namespace.
pub(crate) struct Run {
    pub(crate) record: WorkflowRecord,
    pub(crate) namespace: String,
}

/// The run named `name`, or with uid `name` when `by_uid`.
pub(crate) fn run(state: &AppState, name: &str, by_uid: bool) -> Result<Run> {
    let home = &state.home;
    let record = if by_uid {
        let all = home.store().workflows().map_err(ferry_engine::Error::from)?;
        all.into_iter().find(|w| w.uid == name).ok_or_else(|| Error::NotFound(format!("no run with uid {name:?}")))?
    } else {
        home.workflow(name).map_err(|e| match e {
            ferry_engine::Error::NotFound(_) => Error::NotFound(format!("no run named {name:?}")),
            other => other.into(),
        })?
    };
    let namespace = plan(state, &record)?.namespace.clone();
    Ok(Run { record, namespace })
}

/// The plan a run was started with, decoded once per run: it never changes,
/// and a big run's plan takes milliseconds to decode.
pub(crate) fn plan(state: &AppState, wf: &WorkflowRecord) -> Result<Arc<Plan>> {
    state.plans.get(&wf.uid, || Ok(state.home.stored_plan(wf)?))
}

impl Run {
    /// This run, if it lives in `namespace` (argo-server's URLs carry it).
    pub(crate) fn in_namespace(self, namespace: &str) -> Result<Run> {
        if self.namespace != namespace {
            return Err(Error::NotFound(format!("no run {:?} in namespace {namespace:?}", self.record.name)));
        }
        Ok(self)
    }

    /// Argo's node id of a node of this run.
    pub(crate) fn node_id(&self, node: &Node) -> String {
        node_id(&self.record.name, &node.name)
    }
}

/// The node a URL names by Argo's node id (what argo-server's links carry)
/// or by its pod name.
pub(crate) fn node<'a>(run: &Run, nodes: &'a [Node], id: &str) -> Result<&'a Node> {
    let name = &run.record.name;
    nodes
        .iter()
        .find(|n| node_id(name, &n.name) == id || pod_name(name, &n.template, &n.name) == id)
        .ok_or_else(|| Error::NotFound(format!("run {name:?} has no node {id:?}")))
}

/// The artifact `name` recorded for `node` in `direction`.
pub(crate) fn artifact(
    home: &Home,
    run: &Run,
    node: &Node,
    direction: Direction,
    name: &str,
) -> Result<ArtifactRecord> {
    let records = home.store().artifacts(run.record.id).map_err(ferry_engine::Error::from)?;
    let which = match direction {
        Direction::Input => "input",
        Direction::Output => "output",
    };
    let record = records
        .into_iter()
        .find(|r| r.node == node.id && r.direction == direction && r.name == name)
        .ok_or_else(|| Error::NotFound(format!("node {} has no {which} artifact {name:?}", node.display_name())))?;
    if record.deleted {
        return Err(Error::Gone(format!(
            "{which} artifact {name:?} of node {} was deleted by artifact GC",
            node.display_name()
        )));
    }
    Ok(record)
}

/// A path under a directory artifact, from URL segments already split on
/// `/` and percent-decoded: every segment must be a plain name, so the key
/// stays under the recorded one.
pub(crate) fn sub_path(segments: &[String]) -> Result<Option<String>> {
    let trimmed: Vec<&String> = match segments.split_last() {
        // A trailing `/` (a directory listing) leaves one empty segment.
        Some((last, rest)) if last.is_empty() => rest.iter().collect(),
        _ => segments.iter().collect(),
    };
    if trimmed.is_empty() {
        return Ok(None);
    }
    for s in &trimmed {
        if s.is_empty() || *s == "." || *s == ".." || s.contains(['/', '\\', '\0']) {
            return Err(Error::BadRequest(format!(
                "bad path segment {s:?}: a path inside an artifact names plain files and directories (no `..`, `.`, empty segments or backslashes)"
            )));
        }
    }
    Ok(Some(trimmed.iter().map(|s| s.as_str()).collect::<Vec<_>>().join("/")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn segs(s: &[&str]) -> Vec<String> {
        s.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn sub_paths_stay_under_the_artifact() {
        assert_eq!(sub_path(&segs(&[])).unwrap(), None);
        assert_eq!(sub_path(&segs(&[""])).unwrap(), None);
        assert_eq!(sub_path(&segs(&["a", "b.txt"])).unwrap().as_deref(), Some("a/b.txt"));
        assert_eq!(sub_path(&segs(&["a", ""])).unwrap().as_deref(), Some("a"));
        for bad in [&["..", "x"][..], &["a", "..", "b"], &["a", "", "b"], &["."], &["a\\..\\b"], &["a/b"], &["a\0"]] {
            let e = sub_path(&segs(bad)).unwrap_err();
            assert!(matches!(e, Error::BadRequest(_)), "{bad:?}: {e}");
        }
    }
}
