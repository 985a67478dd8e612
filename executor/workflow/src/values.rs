//! What steps produce and hand on: phases, outputs, and the artifact values
//! and locations that flow between steps. The engine persists these; tags
//! (`{{steps.X.outputs.parameters.p}}`) read them.

use crate::strategy::Strategy;
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
}

impl std::fmt::Display for Phase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.pad(self.as_str())
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

/// An artifact as it flows between steps: where it is and how it was packed.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ArtifactValue {
    /// Its location, if stored.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location: Option<Location>,
    /// Inline contents (`raw:`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub raw: Option<String>,
    /// The archive strategy it was saved with (stored as its text: `tar`, `tar:9`, `none`, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub archive: Option<Strategy>,
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
    /// A daemon's address (`{{steps.X.ip}}`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip: Option<String>,
}

impl Outputs {
    /// Nothing recorded.
    pub fn is_empty(&self) -> bool {
        self.parameters.is_empty()
            && self.artifacts.is_empty()
            && self.result.is_none()
            && self.exit_code.is_none()
            && self.ip.is_none()
    }
}
