//! What a workflow run is made of once it runs: its nodes and the artifacts
//! they loaded and saved. These are the records the controller persists and
//! the CLI shows.

use ferry_workflow::model::GcStrategy;
use ferry_workflow::values::{Location, Outputs, Phase};
use serde::{Deserialize, Serialize};

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
    /// A suspend template: waits for a duration or a decision.
    Suspend,
    /// An HTTP template: one request.
    #[serde(rename = "HTTP")]
    Http,
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
            7 => NodeKind::Suspend,
            8 => NodeKind::Http,
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
            NodeKind::Suspend => "Suspend",
            NodeKind::Http => "HTTP",
        }
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
    pub gc: GcStrategy,
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

/// Where a run's artifact garbage collection stands. Stored as its text
/// (`none`, `done`, `pending deletion`, `failed: N artifact(s) not deleted`),
/// which is also how `ferry list`, `ferry get` and the JSON report show it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum GcState {
    /// Nothing was collected (no artifact had a strategy that was due).
    #[default]
    None,
    /// Every due artifact was deleted.
    Done,
    /// Artifacts wait for the run's deletion (`OnWorkflowDeletion`).
    PendingDeletion,
    /// Some artifacts could not be deleted; `ferry resume` retries them.
    Failed {
        /// How many.
        artifacts: usize,
    },
}

impl GcState {
    /// Reads the stored text; `None` for text no version of Ferry wrote.
    pub fn parse(text: &str) -> Option<GcState> {
        Some(match text {
            "none" => GcState::None,
            "done" => GcState::Done,
            "pending deletion" => GcState::PendingDeletion,
            _ => {
                let count = text.strip_prefix("failed: ")?.strip_suffix(" artifact(s) not deleted")?;
                GcState::Failed { artifacts: count.parse().ok()? }
            }
        })
    }

    /// Some artifacts are left to retry.
    pub fn is_failed(self) -> bool {
        matches!(self, GcState::Failed { .. })
    }
}

impl std::fmt::Display for GcState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            GcState::None => f.write_str("none"),
            GcState::Done => f.write_str("done"),
            GcState::PendingDeletion => f.write_str("pending deletion"),
            GcState::Failed { artifacts } => write!(f, "failed: {artifacts} artifact(s) not deleted"),
        }
    }
}

impl Serialize for GcState {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for GcState {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<GcState, D::Error> {
        let text = String::deserialize(d)?;
        GcState::parse(&text).ok_or_else(|| serde::de::Error::custom(format!("unknown GC state {text:?}")))
    }
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

    #[test]
    fn gc_states_keep_the_text_stored_by_earlier_versions() {
        for (text, state) in [
            ("none", GcState::None),
            ("done", GcState::Done),
            ("pending deletion", GcState::PendingDeletion),
            ("failed: 3 artifact(s) not deleted", GcState::Failed { artifacts: 3 }),
        ] {
            assert_eq!(GcState::parse(text), Some(state), "{text}");
            assert_eq!(state.to_string(), text);
            assert_eq!(serde_json::to_value(state).unwrap(), serde_json::json!(text));
            assert_eq!(serde_json::from_value::<GcState>(serde_json::json!(text)).unwrap(), state);
        }
        assert!(GcState::Failed { artifacts: 1 }.is_failed() && !GcState::PendingDeletion.is_failed());
        for unknown in ["pending", "failed", "failed: many artifact(s) not deleted", ""] {
            assert_eq!(GcState::parse(unknown), None, "{unknown}");
        }
    }
}
