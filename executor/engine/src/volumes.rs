//! The directories a step's `volumeMounts` stand for in a local run, with
//! the lifetime Kubernetes gives each kind of volume:
//!
//! - `emptyDir`: the pod's own, `<pod>/volumes/<name>`, removed when the step ends;
//! - `hostPath`: the host's path itself;
//! - `persistentVolumeClaim`: `$FERRY_HOME/volumes/<claim>`, kept across runs;
//! - `volumeClaimTemplates`: the run's, `<run>/volumes/<name>`, shared by its
//!   steps and removed per `volumeClaimGC`;
//! - `configMap` / `secret`: the pod's, the keys written as files (a secret's
//!   keys read from `FERRY_SECRETS_DIR/<secret>/<key>`), read-only.

use crate::runtime::{Mounted, RuntimeError};
use ferry_workflow::model::Template;
use ferry_workflow::plan::Plan;
use ferry_workflow::values::Phase;
use ferry_workflow::volume::{ClaimGcStrategy, KeyToPath, Volume, VolumeMount};
use std::collections::BTreeMap;
use std::path::{Component, Path, PathBuf};

/// Where the pod's own volumes live, under its directory.
const POD_VOLUMES: &str = "volumes";

/// The mounts of `template`'s container or script, resolved against its
/// volumes, the workflow's and the run's claims.
pub(crate) fn mounts(
    plan: &Plan,
    run_dir: &Path,
    pod_dir: &Path,
    template: &Template,
) -> Result<Vec<Mounted>, RuntimeError> {
    mounts_of(plan, run_dir, pod_dir, template, main_mounts(template))
}

/// The `volumeMounts` of a template's main container.
pub(crate) fn main_mounts(template: &Template) -> &[VolumeMount] {
    match (&template.container, &template.script) {
        (Some(c), _) => &c.volume_mounts,
        (None, Some(s)) => &s.volume_mounts,
        _ => &[],
    }
}

/// The directories of `wanted`, volumes of `template`'s pod (whose
/// directory is `pod_dir`: its emptyDirs) or of the run.
pub(crate) fn mounts_of(
    plan: &Plan,
    run_dir: &Path,
    pod_dir: &Path,
    template: &Template,
    wanted: &[VolumeMount],
) -> Result<Vec<Mounted>, RuntimeError> {
    let mut mounted = Vec::new();
    for m in wanted {
        let invalid =
            |why: String| RuntimeError::Invalid(format!("template {}: volumeMounts {}: {why}", template.name, m.name));
        let volume = template.volumes.iter().chain(&plan.spec.volumes).find(|v| v.name == m.name);
        let claim = plan.spec.volume_claim_templates.iter().any(|c| c.metadata.name == m.name);
        if let Some(why) = m.problem(volume.is_some() || claim) {
            return Err(invalid(why));
        }
        let (dir, read_only) = match volume {
            Some(v) => volume_dir(plan, run_dir, pod_dir, v).map_err(invalid)?,
            None => (run_dir.join(POD_VOLUMES).join(&m.name), false),
        };
        let source = dir.join(&m.sub_path);
        if source.symlink_metadata().is_err() {
            std::fs::create_dir_all(&source).map_err(crate::runtime::io("creating", &source))?;
        }
        mounted.push(Mounted {
            path: m.mount_path.trim_end_matches('/').to_string(),
            source,
            read_only: read_only || m.read_only,
        });
    }
    Ok(mounted)
}

/// A relative path inside a volume; `None` if it would leave it.
fn sub_path(sub: &str) -> Option<PathBuf> {
    let path = Path::new(sub);
    path.components().all(|c| matches!(c, Component::Normal(_) | Component::CurDir)).then(|| path.to_path_buf())
}

/// The directory a volume is, made ready, and whether it is read-only by nature.
fn volume_dir(plan: &Plan, run_dir: &Path, pod_dir: &Path, v: &Volume) -> Result<(PathBuf, bool), String> {
    let own = pod_dir.join(POD_VOLUMES).join(&v.name);
    match v.kind() {
        Some("emptyDir") => Ok((own, false)),
        Some("hostPath") => {
            host_path(v.host_path.as_ref().map(|h| (h.path.as_str(), h.kind.as_str())).unwrap_or_default())
        }
        Some("persistentVolumeClaim") => {
            let claim = v.persistent_volume_claim.as_ref().ok_or("no claim")?;
            if sub_path(&claim.claim_name).is_none_or(|p| p.components().count() != 1) {
                return Err(format!("claimName {:?} is not a name", claim.claim_name));
            }
            Ok((claims_dir(run_dir).join(&claim.claim_name), claim.read_only))
        }
        Some("configMap") => {
            let cm = v.config_map.as_ref().ok_or("no configMap")?;
            let data = match plan.config_maps.get(&cm.name) {
                Some(data) => data.clone(),
                None if cm.optional => BTreeMap::new(),
                None => return Err(format!("ConfigMap {:?} is not among the workflow's files", cm.name)),
            };
            write_keys(&own, &data, &cm.items, cm.optional)?;
            Ok((own, true))
        }
        Some("secret") => {
            let secret = v.secret.as_ref().ok_or("no secret")?;
            let data = read_secret(&secret.secret_name, secret.optional)?;
            write_keys(&own, &data, &secret.items, secret.optional)?;
            Ok((own, true))
        }
        _ => Err(format!(
            "volume {:?} needs exactly one of emptyDir, hostPath, persistentVolumeClaim, configMap or secret (others need a cluster)",
            v.name
        )),
    }
}

/// The home a run's directory (`<home>/runs/<run>`) belongs to.
pub(crate) fn home_of(run_dir: &Path) -> PathBuf {
    run_dir.ancestors().nth(2).unwrap_or(Path::new(".")).to_path_buf()
}

/// The home's claims, `$FERRY_HOME/volumes`: a run's directory is `runs/<wf>` of the home.
fn claims_dir(run_dir: &Path) -> PathBuf {
    home_of(run_dir).join(POD_VOLUMES)
}

fn host_path((path, kind): (&str, &str)) -> Result<(PathBuf, bool), String> {
    let p = PathBuf::from(path);
    if !p.is_absolute() {
        return Err(format!("hostPath {path:?} is not absolute"));
    }
    let made = match kind {
        "" | "DirectoryOrCreate" if !p.exists() => std::fs::create_dir_all(&p),
        "FileOrCreate" if !p.exists() => std::fs::File::create(&p).map(drop),
        "Directory" if !p.is_dir() => return Err(format!("hostPath {path:?} is not a directory (type Directory)")),
        "File" if !p.is_file() => return Err(format!("hostPath {path:?} is not a file (type File)")),
        "" | "DirectoryOrCreate" | "FileOrCreate" | "Directory" | "File" => Ok(()),
        other => {
            return Err(format!(
                "hostPath type {other:?} is not one Ferry supports (DirectoryOrCreate, Directory, FileOrCreate, File)"
            ));
        }
    };
    made.map_err(|e| format!("creating hostPath {path:?}: {e}"))?;
    Ok((p, false))
}

/// A secret's keys: the files of `FERRY_SECRETS_DIR/<name>/`, the drivers' convention.
fn read_secret(name: &str, optional: bool) -> Result<BTreeMap<String, String>, String> {
    let dir =
        ferry_sdk::env::path("FERRY_SECRETS_DIR").unwrap_or_else(|| PathBuf::from("/var/run/secrets/ferry")).join(name);
    let entries = match std::fs::read_dir(&dir) {
        Ok(entries) => entries,
        Err(_) if optional => return Ok(BTreeMap::new()),
        Err(e) => return Err(format!("secret {name:?}: reading {}: {e}", dir.display())),
    };
    let mut data = BTreeMap::new();
    for entry in entries.filter_map(Result::ok).filter(|e| e.path().is_file()) {
        let text = std::fs::read_to_string(entry.path()).map_err(|e| format!("secret {name:?}: {e}"))?;
        data.insert(entry.file_name().to_string_lossy().into_owned(), text);
    }
    Ok(data)
}

/// One key of a secret (an HTTP header's or an env var's `secretKeyRef`).
pub(crate) fn secret_key(name: &str, key: &str) -> Result<String, String> {
    read_secret(name, false)?.remove(key).ok_or_else(|| format!("secret {name:?} has no key {key:?}"))
}

/// Writes a ConfigMap's or secret's keys as files of `dir` (only `items`, at
/// their paths, when given).
fn write_keys(dir: &Path, data: &BTreeMap<String, String>, items: &[KeyToPath], optional: bool) -> Result<(), String> {
    let files: Vec<(&str, &str)> = if items.is_empty() {
        data.keys().map(|k| (k.as_str(), k.as_str())).collect()
    } else {
        items.iter().map(|i| (i.key.as_str(), i.path.as_str())).collect()
    };
    let _ = std::fs::remove_dir_all(dir);
    std::fs::create_dir_all(dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
    for (key, path) in files {
        let Some(value) = data.get(key) else {
            if optional {
                continue;
            }
            return Err(format!("key {key:?} is missing"));
        };
        let rel = sub_path(path)
            .filter(|p| p.components().count() > 0)
            .ok_or_else(|| format!("path {path:?} of key {key:?} leaves the volume"))?;
        let file = dir.join(rel);
        if let Some(parent) = file.parent() {
            std::fs::create_dir_all(parent).map_err(|e| format!("creating {}: {e}", parent.display()))?;
        }
        std::fs::write(&file, value).map_err(|e| format!("writing {}: {e}", file.display()))?;
    }
    Ok(())
}

/// Removes what lives only as long as one step: its emptyDir, ConfigMap and secret copies.
pub(crate) fn release_pod(pod_dir: &Path) {
    let _ = std::fs::remove_dir_all(pod_dir.join(POD_VOLUMES));
}

/// Removes the run's claims when `volumeClaimGC` says so for how it ended.
pub(crate) fn release_run(plan: &Plan, run_dir: &Path, phase: Phase) {
    let strategy = plan.spec.volume_claim_gc.as_ref().map(|g| g.strategy).unwrap_or_default();
    let due = match strategy {
        ClaimGcStrategy::OnWorkflowCompletion => phase.is_done(),
        ClaimGcStrategy::OnWorkflowSuccess => phase == Phase::Succeeded,
    };
    if due {
        let _ = std::fs::remove_dir_all(run_dir.join(POD_VOLUMES));
    }
}
