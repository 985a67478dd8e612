//! What a workflow run is made of once it runs: nodes, their phases and
//! outputs, and the artifact locations they produced. These are the records
//! the controller persists and the CLI shows.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The phase of a node or a workflow, with Argo's names.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Phase {
    /// Created, waiting to start.
    Pending,
    /// Started.
    Running,
    /// Finished well.
    Succeeded,
    /// The step ran and failed (non-zero exit, deadline).
    Failed,
    /// The step could not run (artifact, driver or runtime error).
    Error,
    /// `when` was false.
    Skipped,
    /// Its `depends` were not met.
    Omitted,
}

impl Phase {
    /// Finished, whatever the outcome.
    pub fn is_done(self) -> bool {
        !matches!(self, Phase::Pending | Phase::Running)
    }

    /// Finished without failing.
    pub fn is_ok(self) -> bool {
        matches!(self, Phase::Succeeded | Phase::Skipped | Phase::Omitted)
    }

    /// Argo's name.
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Pending => "Pending",
            Phase::Running => "Running",
            Phase::Succeeded => "Succeeded",
            Phase::Failed => "Failed",
            Phase::Error => "Error",
            Phase::Skipped => "Skipped",
            Phase::Omitted => "Omitted",
        }
    }

    /// Parses Argo's name.
    pub fn parse(s: &str) -> Option<Phase> {
        [Phase::Pending, Phase::Running, Phase::Succeeded, Phase::Failed, Phase::Error, Phase::Skipped, Phase::Omitted]
            .into_iter()
            .find(|p| p.as_str() == s)
    }

    pub(crate) fn code(self) -> i64 {
        self as i64
    }

    pub(crate) fn from_code(c: i64) -> Phase {
        match c {
            0 => Phase::Pending,
            1 => Phase::Running,
            2 => Phase::Succeeded,
            3 => Phase::Failed,
            4 => Phase::Error,
            5 => Phase::Skipped,
            _ => Phase::Omitted,
        }
    }
}

impl std::fmt::Display for Phase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.pad(self.as_str())
    }
}

/// Argo's node types.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum NodeKind {
    /// A step that runs a process.
    Pod,
    /// A steps template.
    Steps,
    /// One group of parallel steps.
    StepGroup,
    /// A DAG template.
    #[serde(rename = "DAG")]
    Dag,
    /// The expansions of a looped DAG task.
    TaskGroup,
    /// The attempts of a template with a retry strategy.
    Retry,
    /// A step or task that did not run.
    Skipped,
}

impl NodeKind {
    pub(crate) fn code(self) -> i64 {
        self as i64
    }

    pub(crate) fn from_code(c: i64) -> NodeKind {
        match c {
            0 => NodeKind::Pod,
            1 => NodeKind::Steps,
            2 => NodeKind::StepGroup,
            3 => NodeKind::Dag,
            4 => NodeKind::TaskGroup,
            5 => NodeKind::Retry,
            _ => NodeKind::Skipped,
        }
    }

    /// Argo's name.
    pub fn as_str(self) -> &'static str {
        match self {
            NodeKind::Pod => "Pod",
            NodeKind::Steps => "Steps",
            NodeKind::StepGroup => "StepGroup",
            NodeKind::Dag => "DAG",
            NodeKind::TaskGroup => "TaskGroup",
            NodeKind::Retry => "Retry",
            NodeKind::Skipped => "Skipped",
        }
    }
}

/// Where an artifact is stored, as a driver sees it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Location {
    /// The driver (plugin) name.
    pub driver: String,
    /// The configuration handed to the driver.
    pub configuration: String,
    /// The object key.
    pub key: String,
    /// Seconds to wait for the driver's socket (0: the registry's default).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub timeout: u32,
}

fn is_zero(v: &u32) -> bool {
    *v == 0
}

impl Location {
    /// The SDK client's form.
    pub fn to_client(&self) -> ferry_sdk::client::Location {
        ferry_sdk::client::Location::new(&self.driver, &self.configuration, &self.key)
    }
}

/// An artifact as it flows between steps: where it is and how it was packed.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ArtifactValue {
    /// Its location, if stored.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location: Option<Location>,
    /// Inline contents (`raw:`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub raw: Option<String>,
    /// The archive strategy it was saved with: tar, tar:LEVEL, none, zip, zstd, zstd:LEVEL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub archive: Option<String>,
}

/// What a node produced.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Outputs {
    /// Output parameters.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub parameters: BTreeMap<String, String>,
    /// Output artifacts.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub artifacts: BTreeMap<String, ArtifactValue>,
    /// Standard output of the step (at most 256 KiB).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<String>,
    /// The exit code.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i32>,
}

impl Outputs {
    /// Nothing recorded.
    pub fn is_empty(&self) -> bool {
        self.parameters.is_empty() && self.artifacts.is_empty() && self.result.is_none() && self.exit_code.is_none()
    }
}

/// One node of a run.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Node {
    /// Index in the run.
    pub id: u32,
    /// Argo's node name, such as `wf[0].step(1:a)` or `wf.task`.
    pub name: String,
    /// The parent node.
    pub parent: Option<u32>,
    /// The node type.
    pub kind: NodeKind,
    /// The template it ran.
    pub template: String,
    /// Where it is.
    pub phase: Phase,
    /// Unix milliseconds.
    pub started: Option<i64>,
    /// Unix milliseconds.
    pub finished: Option<i64>,
    /// Why it failed, or what happened.
    pub message: String,
    /// What it produced.
    pub outputs: Outputs,
}

impl Node {
    /// The name Argo shows: the last component of the node name.
    pub fn display_name(&self) -> &str {
        display_name(&self.name)
    }
}

/// The last component of an Argo node name: `wf[0].a(1:x)` → `a(1:x)`,
/// `wf[0]` → `[0]`.
pub fn display_name(name: &str) -> &str {
    let mut depth = 0usize;
    let mut cut = 0;
    for (i, c) in name.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth = depth.saturating_sub(1),
            '.' if depth == 0 => cut = i + 1,
            '[' if depth == 0 => cut = i,
            _ => {}
        }
    }
    &name[cut..]
}

/// An artifact recorded for a node: an input it loaded or an output it saved.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ArtifactRecord {
    /// The node.
    pub node: u32,
    /// The artifact's name.
    pub name: String,
    /// `input` or `output`.
    pub direction: Direction,
    /// Where it is.
    pub location: Location,
    /// When it is deleted.
    pub gc: crate::workflow::GcStrategy,
    /// Deleted by GC.
    pub deleted: bool,
    /// The last GC failure.
    pub error: Option<String>,
}

/// Input or output.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    /// Loaded before the step.
    Input,
    /// Saved after the step.
    Output,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_names_follow_argo() {
        assert_eq!(display_name("wf"), "wf");
        assert_eq!(display_name("wf[0]"), "[0]");
        assert_eq!(display_name("wf[0].a"), "a");
        assert_eq!(display_name("wf[0].a(1:x.y)"), "a(1:x.y)");
        assert_eq!(display_name("wf.t.onExit"), "onExit");
        assert_eq!(display_name("wf[0].r(0)"), "r(0)");
    }
}
