//! Where artifacts go: artifact repositories (Argo's `artifact-repositories`
//! ConfigMap format) and the translation of every artifact block — `plugin:`
//! and Argo's built-in `s3:`, `oss:`, `gcs:`, `git:`, `http:` — into one
//! [`Location`] that a Ferry driver serves.

use crate::model::{ArchiveLocation, Artifact, ConfigMap, PluginLocation};
use crate::values::Location;
use serde::{Deserialize, Serialize};
use serde_yaml_ng::{Mapping, Value};

/// The annotation naming the default key of an `artifact-repositories` ConfigMap.
pub const DEFAULT_ANNOTATION: &str = "workflows.argoproj.io/default-artifact-repository";

/// Argo's default `keyFormat`.
pub const DEFAULT_KEY_FORMAT: &str = "{{workflow.name}}/{{pod.name}}";

/// A resolved artifact repository: a location whose key is a key format.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Repository {
    /// Driver, configuration, and `keyFormat` as the key.
    pub location: Location,
    /// Archive each step's main log as an artifact.
    pub archive_logs: bool,
    /// Where it came from, for messages: `configmap/key` or `ferry default`.
    pub source: String,
}

/// A repository that cannot be used.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct RepositoryError(pub String);

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RepositorySpec {
    archive_logs: Option<bool>,
    plugin: Option<PluginRepository>,
    s3: Option<Mapping>,
    oss: Option<Mapping>,
    gcs: Option<Mapping>,
    artifactory: Option<Value>,
    azure: Option<Value>,
    hdfs: Option<Value>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct PluginRepository {
    name: String,
    #[serde(default)]
    key_format: String,
    configuration: String,
    #[serde(default)]
    connection_timeout_seconds: u32,
}

impl Repository {
    /// Ferry's embedded default: the fs driver under `root`.
    pub fn embedded(root: &std::path::Path) -> Repository {
        Repository {
            location: Location {
                driver: "fs".into(),
                configuration: format!("root: {}\n", root.display()),
                key: DEFAULT_KEY_FORMAT.into(),
                timeout: 0,
            },
            archive_logs: false,
            source: "ferry default (fs driver)".into(),
        }
    }

    /// Parses one entry of an `artifact-repositories` ConfigMap.
    pub fn parse(text: &str, source: &str) -> Result<Repository, RepositoryError> {
        let spec: RepositorySpec =
            serde_yaml_ng::from_str(text).map_err(|e| RepositoryError(format!("artifact repository {source}: {e}")))?;
        for (name, present) in [
            ("artifactory", spec.artifactory.is_some()),
            ("azure", spec.azure.is_some()),
            ("hdfs", spec.hdfs.is_some()),
        ] {
            if present {
                return Err(RepositoryError(format!(
                    "artifact repository {source}: `{name}` has no Ferry driver; use `plugin`, `s3`, `oss` or `gcs`"
                )));
            }
        }
        let location = if let Some(p) = spec.plugin {
            let key = if p.key_format.is_empty() { DEFAULT_KEY_FORMAT.to_string() } else { p.key_format };
            Location { driver: p.name, configuration: p.configuration, key, timeout: p.connection_timeout_seconds }
        } else if let Some((driver, block)) =
            [("s3", spec.s3), ("oss", spec.oss), ("gcs", spec.gcs)].into_iter().find_map(|(d, b)| b.map(|b| (d, b)))
        {
            let mut block = block;
            let key_format = take_string(&mut block, "keyFormat");
            let prefix = take_string(&mut block, "keyPrefix");
            let key = match (key_format, prefix) {
                (Some(k), _) if !k.is_empty() => k,
                (_, Some(p)) if !p.is_empty() => format!("{}/{DEFAULT_KEY_FORMAT}", p.trim_end_matches('/')),
                _ => DEFAULT_KEY_FORMAT.to_string(),
            };
            Location { driver: driver.into(), configuration: to_yaml(&block), key, timeout: 0 }
        } else {
            return Err(RepositoryError(format!(
                "artifact repository {source}: names no location (plugin, s3, oss or gcs)"
            )));
        };
        Ok(Repository { location, archive_logs: spec.archive_logs.unwrap_or(false), source: source.to_string() })
    }

    /// Resolves the repository for a workflow as Argo does: the ref's
    /// ConfigMap and key, else the `artifact-repositories` ConfigMap's default
    /// key, else `fallback`.
    pub fn resolve(
        config_maps: &[ConfigMap],
        reference: Option<&crate::model::ArtifactRepositoryRef>,
        fallback: Repository,
    ) -> Result<Repository, RepositoryError> {
        let cm_name =
            reference.map(|r| r.config_map.as_str()).filter(|s| !s.is_empty()).unwrap_or("artifact-repositories");
        let Some(cm) = config_maps.iter().find(|c| c.metadata.name == cm_name) else {
            return match reference {
                Some(_) => Err(RepositoryError(format!(
                    "artifactRepositoryRef: ConfigMap {cm_name:?} not found among the files given (pass it with the workflow)"
                ))),
                None => Ok(fallback),
            };
        };
        let key = match reference.map(|r| r.key.as_str()).filter(|k| !k.is_empty()) {
            Some(k) => k.to_string(),
            None => match cm.metadata.annotations.get(DEFAULT_ANNOTATION) {
                Some(k) => k.clone(),
                None if reference.is_none() => return Ok(fallback),
                None => {
                    return Err(RepositoryError(format!(
                        "artifactRepositoryRef: no key given and ConfigMap {cm_name:?} has no {DEFAULT_ANNOTATION} annotation"
                    )));
                }
            },
        };
        let text = cm
            .data
            .get(&key)
            .ok_or_else(|| RepositoryError(format!("artifact repository: ConfigMap {cm_name:?} has no key {key:?}")))?;
        Repository::parse(text, &format!("{cm_name}/{key}"))
    }

    /// A template's `archiveLocation`, when it names a full location.
    pub fn from_archive_location(a: &ArchiveLocation, base: &Repository) -> Repository {
        let location = if let Some(p) = &a.plugin {
            Some(plugin_location(p))
        } else {
            [("s3", &a.s3), ("oss", &a.oss), ("gcs", &a.gcs)]
                .into_iter()
                .find_map(|(d, b)| b.as_ref().map(|b| builtin_location(d, b)))
        };
        match location {
            Some(mut loc) if !loc.configuration.is_empty() => {
                if loc.key.is_empty() {
                    loc.key = DEFAULT_KEY_FORMAT.into();
                }
                Repository {
                    location: loc,
                    archive_logs: a.archive_logs.unwrap_or(base.archive_logs),
                    source: "archiveLocation".into(),
                }
            }
            _ => Repository { archive_logs: a.archive_logs.unwrap_or(base.archive_logs), ..base.clone() },
        }
    }
}

fn take_string(map: &mut Mapping, key: &str) -> Option<String> {
    map.remove(key).and_then(|v| match v {
        Value::String(s) => Some(s),
        other => serde_yaml_ng::to_string(&other).ok().map(|s| s.trim().to_string()),
    })
}

fn to_yaml(map: &Mapping) -> String {
    if map.is_empty() { String::new() } else { serde_yaml_ng::to_string(map).unwrap_or_default() }
}

fn builtin_location(driver: &str, block: &Mapping) -> Location {
    let mut block = block.clone();
    let key = take_string(&mut block, "key").unwrap_or_default();
    Location { driver: driver.into(), configuration: to_yaml(&block), key, timeout: 0 }
}

fn plugin_location(p: &PluginLocation) -> Location {
    Location {
        driver: p.name.clone(),
        configuration: p.configuration.clone(),
        key: p.key.clone(),
        timeout: p.connection_timeout_seconds,
    }
}

/// What an artifact block says about its location.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Declared {
    /// No location at all.
    Nothing,
    /// Only a key: the repository supplies the rest (Argo's key-only artifacts).
    KeyOnly(String),
    /// A full location (the key may still be empty for outputs).
    Full(Location),
}

/// Reads the location an artifact block declares.
pub fn declared(a: &Artifact) -> Declared {
    let location = if let Some(p) = &a.plugin {
        plugin_location(p)
    } else if let Some((driver, block)) = [("s3", &a.s3), ("oss", &a.oss), ("gcs", &a.gcs), ("git", &a.git)]
        .into_iter()
        .find_map(|(d, b)| b.as_ref().map(|b| (d, b)))
    {
        builtin_location(driver, block)
    } else if let Some(block) = &a.http {
        // The URL is the location and stays in the configuration; the key only
        // names the object (its last path segment) for listings.
        let url = block.get("url").and_then(|u| u.as_str()).unwrap_or_default();
        let path = url.split(['?', '#']).next().unwrap_or_default();
        let name = path.trim_end_matches('/').rsplit('/').next().filter(|n| !n.is_empty() && !n.contains(':'));
        Location {
            driver: "http".into(),
            configuration: to_yaml(block),
            key: name.unwrap_or("index").to_string(),
            timeout: 0,
        }
    } else {
        return Declared::Nothing;
    };
    let complete = if a.plugin.is_some() {
        !location.driver.is_empty() && !location.configuration.is_empty()
    } else {
        // git and http carry no key; s3, oss and gcs need more than a key.
        a.git.is_some() || a.http.is_some() || !location.configuration.is_empty()
    };
    if complete { Declared::Full(location) } else { Declared::KeyOnly(location.key) }
}

/// The driver an artifact's location uses: its own, else the repository's.
pub fn driver_of(a: &Artifact, repo: &Repository) -> String {
    match declared(a) {
        Declared::Full(loc) => loc.driver,
        Declared::KeyOnly(_) | Declared::Nothing => repo.location.driver.clone(),
    }
}

/// How many artifact blocks an artifact has (more than one is an error).
pub fn location_count(a: &Artifact) -> usize {
    [
        a.plugin.is_some(),
        a.s3.is_some(),
        a.oss.is_some(),
        a.gcs.is_some(),
        a.git.is_some(),
        a.http.is_some(),
        a.raw.is_some(),
    ]
    .into_iter()
    .filter(|b| *b)
    .count()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Metadata;
    use std::collections::BTreeMap;

    fn cm(name: &str, default: Option<&str>, data: &[(&str, &str)]) -> ConfigMap {
        let mut annotations = BTreeMap::new();
        if let Some(d) = default {
            annotations.insert(DEFAULT_ANNOTATION.to_string(), d.to_string());
        }
        ConfigMap {
            api_version: "v1".into(),
            kind: "ConfigMap".into(),
            metadata: Metadata { name: name.into(), annotations, ..Default::default() },
            data: data.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
        }
    }

    #[test]
    fn default_annotation_picks_the_key() {
        let maps = [cm(
            "artifact-repositories",
            Some("mine"),
            &[("mine", "plugin:\n  name: fs\n  configuration: 'root: /x'\n  keyFormat: 'runs/{{workflow.name}}'\n")],
        )];
        let fallback = Repository::embedded(std::path::Path::new("/d"));
        let r = Repository::resolve(&maps, None, fallback.clone()).unwrap();
        assert_eq!(r.location.driver, "fs");
        assert_eq!(r.location.key, "runs/{{workflow.name}}");
        assert_eq!(Repository::resolve(&[], None, fallback.clone()).unwrap(), fallback);
    }

    #[test]
    fn s3_repository_becomes_the_s3_driver_with_the_key_format_removed() {
        let r = Repository::parse("s3:\n  bucket: b\n  endpoint: e:9000\n  keyPrefix: p/\n", "cm/k").unwrap();
        assert_eq!(r.location.driver, "s3");
        assert_eq!(r.location.key, "p/{{workflow.name}}/{{pod.name}}");
        assert!(!r.location.configuration.contains("keyPrefix"));
        assert!(r.location.configuration.contains("bucket: b"));
    }

    #[test]
    fn a_missing_ref_is_a_clear_error() {
        let fallback = Repository::embedded(std::path::Path::new("/d"));
        let reference = crate::model::ArtifactRepositoryRef { config_map: "repos".into(), key: "k".into() };
        let err = Repository::resolve(&[], Some(&reference), fallback).unwrap_err();
        assert!(err.0.contains("\"repos\""), "{err}");
    }

    #[test]
    fn key_only_and_full_blocks_are_told_apart() {
        let mut a = Artifact { name: "a".into(), ..Default::default() };
        assert_eq!(declared(&a), Declared::Nothing);
        a.s3 = Some(serde_yaml_ng::from_str("key: x/y.tgz").unwrap());
        assert_eq!(declared(&a), Declared::KeyOnly("x/y.tgz".into()));
        a.s3 = Some(serde_yaml_ng::from_str("{key: x, bucket: b}").unwrap());
        assert!(matches!(declared(&a), Declared::Full(l) if l.driver == "s3" && l.key == "x"));
        a.s3 = None;
        a.plugin = Some(PluginLocation { key: "k".into(), ..Default::default() });
        assert_eq!(declared(&a), Declared::KeyOnly("k".into()));
    }
}
