//! The driver registry: which artifact drivers a run may use and how each
//! starts. It reads Argo's workflow-controller ConfigMap format
//! (`artifactDrivers: [{name, image, connectionTimeoutSeconds}]`), extended
//! with `command` and `env` so the same file says how to start a driver
//! locally.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::Path;

/// Ferry's reference drivers, registered unless a registry file overrides them.
pub const BUILTIN_DRIVERS: [&str; 6] = ["fs", "s3", "oss", "gcs", "git", "http"];

/// Argo's default `connectionTimeoutSeconds`.
pub const DEFAULT_TIMEOUT_SECONDS: u32 = 5;

/// One `artifactDrivers` entry.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct DriverSpec {
    /// The plugin name artifacts refer to.
    pub name: String,
    /// The image Argo runs (recorded; used by the container runtimes).
    #[serde(default)]
    pub image: String,
    /// Seconds to wait for the socket.
    #[serde(default)]
    pub connection_timeout_seconds: u32,
    /// Ferry's extension: how to start the driver locally. The socket path
    /// is appended as the last argument, as Argo does.
    #[serde(default)]
    pub command: Vec<String>,
    /// Ferry's extension: extra environment for the local process.
    #[serde(default)]
    pub env: BTreeMap<String, String>,
}

/// The drivers a run may use.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Registry {
    /// By name.
    pub drivers: BTreeMap<String, DriverSpec>,
}

/// A registry failure.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    /// The registry file is malformed.
    #[error("driver registry {file}: {message}")]
    Invalid {
        /// The file.
        file: String,
        /// What is wrong.
        message: String,
    },
    /// No such driver.
    #[error("artifact driver {0:?} is not registered (known: {1})")]
    Unknown(String, String),
    /// A name Argo could not build container names from.
    #[error(
        "driver name {0:?} must be a DNS-1123 label of at most 49 characters (Argo builds container names from it)"
    )]
    BadName(String),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RegistryFile {
    artifact_drivers: Vec<DriverSpec>,
}

impl Registry {
    /// Ferry's reference drivers, started from binaries named
    /// `ferry-driver-<name>` beside the `ferry` executable or on `PATH`.
    pub fn builtin() -> Registry {
        let version = env!("CARGO_PKG_VERSION");
        let drivers = BUILTIN_DRIVERS
            .iter()
            .map(|name| {
                let spec = DriverSpec {
                    name: name.to_string(),
                    image: format!("ferry/driver-{name}:{version}"),
                    connection_timeout_seconds: 0,
                    command: vec![format!("ferry-driver-{name}")],
                    env: BTreeMap::new(),
                };
                (name.to_string(), spec)
            })
            .collect();
        Registry { drivers }
    }

    /// Adds the entries of a registry file over these: a workflow-controller
    /// ConfigMap (`data.artifactDrivers` holds the list as text) or a plain
    /// `artifactDrivers:` document.
    pub fn merge_file(&mut self, file: &Path) -> Result<(), RegistryError> {
        let text = std::fs::read_to_string(file)
            .map_err(|e| RegistryError::Invalid { file: file.display().to_string(), message: e.to_string() })?;
        self.merge_text(&text, &file.display().to_string())
    }

    /// As [`Registry::merge_file`], from text.
    pub fn merge_text(&mut self, text: &str, file: &str) -> Result<(), RegistryError> {
        let err = |message: String| RegistryError::Invalid { file: file.to_string(), message };
        let value: serde_yaml_ng::Value = serde_yaml_ng::from_str(text).map_err(|e| err(e.to_string()))?;
        let entries: Vec<DriverSpec> = if value.get("kind").and_then(|k| k.as_str()) == Some("ConfigMap") {
            let list = value
                .get("data")
                .and_then(|d| d.get("artifactDrivers"))
                .and_then(|v| v.as_str())
                .ok_or_else(|| err("ConfigMap has no data.artifactDrivers".into()))?;
            serde_yaml_ng::from_str(list).map_err(|e| err(format!("data.artifactDrivers: {e}")))?
        } else {
            let parsed: RegistryFile = serde_yaml_ng::from_str(text).map_err(|e| err(e.to_string()))?;
            parsed.artifact_drivers
        };
        self.merge(entries).map_err(|e| err(e.to_string()))
    }

    /// Adds entries over these; an entry without `command` keeps the
    /// existing command for that name.
    pub fn merge(&mut self, entries: Vec<DriverSpec>) -> Result<(), RegistryError> {
        for mut spec in entries {
            if !valid_name(&spec.name) {
                return Err(RegistryError::BadName(spec.name));
            }
            if spec.command.is_empty() {
                match self.drivers.get(&spec.name) {
                    Some(old) => spec.command = old.command.clone(),
                    None => spec.command = vec![format!("ferry-driver-{}", spec.name)],
                }
            }
            self.drivers.insert(spec.name.clone(), spec);
        }
        Ok(())
    }

    /// One driver's entry.
    pub fn get(&self, name: &str) -> Result<&DriverSpec, RegistryError> {
        self.drivers.get(name).ok_or_else(|| {
            RegistryError::Unknown(name.to_string(), self.drivers.keys().cloned().collect::<Vec<_>>().join(", "))
        })
    }
}

fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 49
        && name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !name.starts_with('-')
        && !name.ends_with('-')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_workflow_controller_configmap() {
        let mut r = Registry::builtin();
        r.merge_text(
            "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: workflow-controller-configmap}\ndata:\n  artifactDrivers: |\n    - name: my-s3\n      image: example/s3:1\n      connectionTimeoutSeconds: 10\n      command: [/opt/s3-driver, --verbose]\n",
            "cm.yaml",
        )
        .unwrap();
        let d = r.get("my-s3").unwrap();
        assert_eq!(d.command, ["/opt/s3-driver", "--verbose"]);
        assert_eq!(d.connection_timeout_seconds, 10);
        assert!(r.get("fs").is_ok());
    }

    #[test]
    fn an_entry_without_command_keeps_the_builtin_one() {
        let mut r = Registry::builtin();
        r.merge_text("artifactDrivers:\n- name: s3\n  image: mine/s3:2\n", "f").unwrap();
        assert_eq!(r.get("s3").unwrap().command, ["ferry-driver-s3"]);
        assert_eq!(r.get("s3").unwrap().image, "mine/s3:2");
    }

    #[test]
    fn bad_names_and_unknown_drivers_are_clear() {
        let mut r = Registry::builtin();
        let err = r.merge_text("artifactDrivers:\n- name: My_Driver\n", "f").unwrap_err();
        assert!(err.to_string().contains("My_Driver"), "{err}");
        let err = r.get("nope").unwrap_err().to_string();
        assert!(err.contains("\"nope\"") && err.contains("fs"), "{err}");
    }
}
