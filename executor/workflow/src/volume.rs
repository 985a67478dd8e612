//! Kubernetes volumes as workflows declare them (`spec.volumes`,
//! `spec.volumeClaimTemplates`, a template's `volumes`, a container's
//! `volumeMounts`), and what each becomes in a local run: a directory.

use serde::{Deserialize, Serialize};
use serde_yaml_ng::Value;

/// A volume of the workflow or of one template.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Volume {
    /// The name mounts refer to.
    pub name: String,
    /// A directory of each pod, empty at its start.
    pub empty_dir: Option<Value>,
    /// A directory (or file) of this host.
    pub host_path: Option<HostPath>,
    /// A claim that outlives runs: a directory of the Ferry home.
    pub persistent_volume_claim: Option<ClaimRef>,
    /// The keys of a ConfigMap, as files.
    pub config_map: Option<ConfigMapVolume>,
    /// The keys of a secret, as files.
    pub secret: Option<SecretVolume>,
}

/// `hostPath:` of a volume.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct HostPath {
    /// The path on this host.
    pub path: String,
    /// `DirectoryOrCreate`, `Directory`, `FileOrCreate`, `File`, or empty (no check).
    #[serde(default, rename = "type")]
    pub kind: String,
}

/// `persistentVolumeClaim:` of a volume.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ClaimRef {
    /// The claim's name.
    pub claim_name: String,
    /// Mounted read-only everywhere.
    #[serde(default)]
    pub read_only: bool,
}

/// One key of a ConfigMap or secret volume placed at a path of its own.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct KeyToPath {
    /// The key.
    pub key: String,
    /// The file's path in the volume.
    pub path: String,
    /// Recorded: the file's mode.
    pub mode: Option<u32>,
}

/// `configMap:` of a volume.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ConfigMapVolume {
    /// The ConfigMap (a document of the workflow's files).
    pub name: String,
    /// Only these keys, at these paths (every key, named by itself, when empty).
    #[serde(default)]
    pub items: Vec<KeyToPath>,
    /// A missing ConfigMap or key is an empty volume, not an error.
    #[serde(default)]
    pub optional: bool,
    /// Recorded: the files' mode.
    pub default_mode: Option<u32>,
}

/// `secret:` of a volume.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct SecretVolume {
    /// The secret: a directory of `FERRY_SECRETS_DIR`, one file per key.
    pub secret_name: String,
    /// Only these keys, at these paths (every key when empty).
    #[serde(default)]
    pub items: Vec<KeyToPath>,
    /// A missing secret or key is an empty volume, not an error.
    #[serde(default)]
    pub optional: bool,
    /// Recorded: the files' mode.
    pub default_mode: Option<u32>,
}

/// An entry of `volumeClaimTemplates`: a claim made for one run.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ClaimTemplate {
    /// Its name (`metadata.name`), which mounts refer to.
    pub metadata: ClaimMetadata,
    /// Recorded: size, access modes and storage class mean nothing locally.
    pub spec: Option<Value>,
}

/// `metadata:` of a claim template.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ClaimMetadata {
    /// The name.
    pub name: String,
    /// Recorded.
    pub labels: Option<Value>,
    /// Recorded.
    pub annotations: Option<Value>,
}

/// `volumeClaimGC:`: when a run's claims are deleted.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ClaimGc {
    /// `OnWorkflowSuccess` (Argo's default) or `OnWorkflowCompletion`.
    #[serde(default)]
    pub strategy: ClaimGcStrategy,
}

/// When a run's claims are deleted.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
pub enum ClaimGcStrategy {
    /// When the run succeeds (kept for a look after a failure).
    #[default]
    OnWorkflowSuccess,
    /// When the run ends, whatever its outcome.
    OnWorkflowCompletion,
}

/// `volumeMounts:` entry of a container or script.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct VolumeMount {
    /// The volume.
    pub name: String,
    /// Where the step sees it.
    pub mount_path: String,
    /// Mounted read-only.
    #[serde(default)]
    pub read_only: bool,
    /// Only this path inside the volume.
    #[serde(default)]
    pub sub_path: String,
    /// Recorded.
    pub mount_propagation: Option<Value>,
}

impl Volume {
    /// What kind of volume it is, for messages; `None` when it names no
    /// source Ferry knows (or more than one).
    pub fn kind(&self) -> Option<&'static str> {
        let kinds = [
            self.empty_dir.as_ref().map(|_| "emptyDir"),
            self.host_path.as_ref().map(|_| "hostPath"),
            self.persistent_volume_claim.as_ref().map(|_| "persistentVolumeClaim"),
            self.config_map.as_ref().map(|_| "configMap"),
            self.secret.as_ref().map(|_| "secret"),
        ];
        let mut set = kinds.into_iter().flatten();
        match (set.next(), set.next()) {
            (Some(kind), None) => Some(kind),
            _ => None,
        }
    }
}

impl Volume {
    /// What makes this volume unusable in a local run, if anything.
    /// `config_maps` are the names of the ConfigMaps among the files.
    pub fn problem(&self, config_maps: &dyn Fn(&str) -> bool) -> Option<String> {
        let Some(kind) = self.kind() else {
            return Some(format!(
                "volume {:?} needs exactly one of emptyDir, hostPath, persistentVolumeClaim, configMap or secret (others need a cluster)",
                self.name
            ));
        };
        match kind {
            "hostPath" => self
                .host_path
                .as_ref()
                .filter(|h| !h.path.starts_with('/'))
                .map(|h| format!("hostPath {:?} is not absolute", h.path)),
            "configMap" => {
                self.config_map.as_ref().filter(|c| !c.optional && !config_maps(&c.name)).map(|c| {
                    format!("ConfigMap {:?} is not among the workflow's files (add it, or set optional)", c.name)
                })
            }
            _ => None,
        }
    }
}

impl VolumeMount {
    /// What makes this mount unusable, if anything; `known` says whether a
    /// volume or claim template has the name.
    pub fn problem(&self, known: bool) -> Option<String> {
        let escapes = std::path::Path::new(&self.sub_path)
            .components()
            .any(|c| !matches!(c, std::path::Component::Normal(_) | std::path::Component::CurDir));
        if !known {
            Some(format!("no volume of the template or workflow, and no volumeClaimTemplate, is named {:?}", self.name))
        } else if !self.mount_path.starts_with('/') {
            Some(format!("mountPath {:?} is not absolute", self.mount_path))
        } else if escapes {
            Some(format!("subPath {:?} leaves the volume", self.sub_path))
        } else {
            None
        }
    }
}
