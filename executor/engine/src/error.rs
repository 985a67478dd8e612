//! What can go wrong while a step runs. Every failure on the run path is a
//! [`StepError`]: a driver's error keeps its [`ferry_sdk::ErrorKind`], an
//! archive's and a runtime's their cause, so whoever handles it can tell a
//! permanent failure from a transient one. The text is what the node's
//! message shows.

use crate::archive;
use crate::runtime::RuntimeError;
use crate::store::StoreError;
use std::path::PathBuf;

/// Why a step (or one of its artifacts) failed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum StepError {
    /// A driver call failed.
    #[error("{context}: {source}")]
    Driver {
        /// What was being done (`artifact a failed to load from fs key "k"`).
        context: String,
        /// The driver's error, with its kind.
        #[source]
        source: ferry_sdk::Error,
    },
    /// Packing or unpacking an artifact failed.
    #[error("{context}{}{source}", if .context.is_empty() { "" } else { ": " })]
    Archive {
        /// Which artifact (may be empty).
        context: String,
        /// The archive's error.
        #[source]
        source: archive::Error,
    },
    /// The runtime could not run the step.
    #[error(transparent)]
    Runtime(#[from] RuntimeError),
    /// The state database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A local file operation failed.
    #[error("{action} {}: {source}", .path.display())]
    Io {
        /// What was being done (`creating`, `writing`).
        action: &'static str,
        /// The path.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// A blocking worker panicked or was cancelled.
    #[error("worker failed: {0}")]
    Worker(#[from] tokio::task::JoinError),
    /// An input that was required was not given.
    #[error("{at} was not supplied")]
    Missing {
        /// Where (`inputs.parameters.p`).
        at: String,
    },
    /// Drivers beside the step (its init containers, its sidecars) did not exit 0.
    #[error("{which} failed: {}", .names.join(", "))]
    Containers {
        /// `init containers` or `sidecars`.
        which: &'static str,
        /// The drivers.
        names: Vec<String>,
    },
    /// A required field is empty.
    #[error("{at} is required")]
    Required {
        /// Where (`outputs.artifacts.a.path`).
        at: String,
    },
    /// A path the step gave leads out of its files.
    #[error("{0}")]
    Refused(String),
    /// Walking a directory failed.
    #[error(transparent)]
    Walk(#[from] walkdir::Error),
    /// Something the workflow says cannot be used as it is.
    #[error("{at}: {problem}")]
    Invalid {
        /// Where (`inputs.parameters.p`, `withParam`, `outputs.artifacts.a`).
        at: String,
        /// What is wrong.
        problem: String,
    },
    /// What the workflow crate's checks report as text (naming the field).
    #[error("{0}")]
    Workflow(String),
    /// A `withSequence` that stands for no items.
    #[error(transparent)]
    Sequence(#[from] ferry_workflow::sequence::SequenceError),
    /// A template could not be turned into JSON for substitution.
    #[error(transparent)]
    Json(#[from] serde_json::Error),
    /// A template that is not in the plan.
    #[error("template {0:?} not found")]
    TemplateNotFound(String),
    /// A failure with where it happened prefixed (`artifact a: …`).
    #[error("{context}: {source}")]
    In {
        /// Where.
        context: String,
        /// The failure.
        #[source]
        source: Box<StepError>,
    },
}

impl StepError {
    /// Invalid input `at` a place, for the reason `problem`.
    pub(crate) fn invalid(at: impl Into<String>, problem: impl ToString) -> StepError {
        StepError::Invalid { at: at.into(), problem: problem.to_string() }
    }

    /// This error with `context` in front.
    pub(crate) fn within(self, context: impl Into<String>) -> StepError {
        StepError::In { context: context.into(), source: Box::new(self) }
    }

    /// A local file operation's error, for `map_err`.
    pub(crate) fn io(action: &'static str, path: &std::path::Path) -> impl FnOnce(std::io::Error) -> StepError {
        let path = path.to_path_buf();
        move |source| StepError::Io { action, path, source }
    }
}
