//! Starting a driver image when the suite itself runs in a container (the
//! `ferry/conformance` image with the Docker socket mounted): the driver is a
//! sibling container, so it can share only what the engine can mount by name,
//! and its process is visible only when the suite shares the host's PIDs.

use anyhow::{Context as _, Result, bail};
use serde::Deserialize;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// The suite's own container, as the engine describes it.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Inspected {
    mounts: Vec<Mount>,
    host_config: HostConfig,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Mount {
    #[serde(rename = "Type")]
    kind: String,
    #[serde(default)]
    name: Option<String>,
    source: String,
    destination: PathBuf,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct HostConfig {
    #[serde(default)]
    pid_mode: String,
}

/// `None` on a plain host; the inspected container otherwise. Read once.
fn this_container() -> Result<Option<&'static Inspected>> {
    static SELF: OnceLock<Option<Inspected>> = OnceLock::new();
    if let Some(found) = SELF.get() {
        return Ok(found.as_ref());
    }
    // Docker creates this file in every container it runs; but the engine we
    // talk to may not be the one running us (a CI machine that is itself a
    // container), and then we are, for it, on a plain host.
    let found = match own_id() {
        Some(id) if Path::new("/.dockerenv").exists() => inspect_self(&id)?,
        _ => None,
    };
    Ok(SELF.get_or_init(|| found).as_ref())
}

fn inspect_self(id: &str) -> Result<Option<Inspected>> {
    let out = Command::new("docker")
        .args(["inspect", "--type", "container", "--format", "{{json .}}", id])
        .output()
        .context("running `docker inspect` on this container: is there a docker CLI?")?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    if !out.status.success() && stderr.to_lowercase().contains("no such") {
        return Ok(None);
    }
    if !out.status.success() {
        bail!(
            "`docker inspect {id}` failed: {}: mount the Docker socket (-v /var/run/docker.sock:/var/run/docker.sock) \
             and give this user its group (--group-add $(stat -c %g /var/run/docker.sock))",
            stderr.trim()
        );
    }
    serde_json::from_slice(&out.stdout).map(Some).context("reading `docker inspect` of this container")
}

/// The engine bind-mounts /etc/hostname from the container's own directory,
/// whose name is the full id; a custom --hostname hides the short id, not that.
fn own_id() -> Option<String> {
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
    let re = regex::Regex::new(r"/containers/([0-9a-f]{64})/").expect("valid regex");
    if let Some(c) = re.captures(&mountinfo) {
        return Some(c[1].to_string());
    }
    std::env::var("HOSTNAME").ok().filter(|h| !h.is_empty())
}

/// The `docker run -v` argument that gives a driver container the shared
/// directory at the same path: the path itself on a plain host; in a
/// container, the volume or bind of this container that holds it (only that
/// one: never the Docker socket or anything else mounted here).
pub fn shared_volume(shared: &Path) -> Result<String> {
    match this_container()? {
        None => {
            let shared = shared.to_string_lossy();
            Ok(format!("{shared}:{shared}"))
        }
        Some(me) => volume_holding(me, shared),
    }
}

fn volume_holding(me: &Inspected, shared: &Path) -> Result<String> {
    let holder =
        me.mounts.iter().filter(|m| shared.starts_with(&m.destination)).max_by_key(|m| m.destination.as_os_str().len());
    let Some(m) = holder else {
        bail!(
            "the work directory {} is on no volume of this container, so a driver container cannot share it: \
             keep the image's /tmp volume, or mount a volume and pass --work-dir on it",
            shared.display()
        );
    };
    let source = match (m.kind.as_str(), &m.name) {
        ("volume", Some(name)) => name.as_str(),
        _ => m.source.as_str(),
    };
    Ok(format!("{source}:{}", m.destination.display()))
}

/// Whether a host PID the engine reports names a process this suite can see:
/// always on a plain host; in a container only with `--pid host`.
pub fn sees_host_pids() -> Result<bool> {
    Ok(this_container()?.is_none_or(|me| me.host_config.pid_mode == "host"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inspect_output_of_the_engine_parses() {
        // The fields read, as `docker inspect --format '{{json .}}'` prints them (Docker 28).
        let json = r#"{"Id":"ab","HostConfig":{"PidMode":"host","NetworkMode":"host"},
            "Mounts":[{"Type":"volume","Name":"3f2e","Source":"/var/lib/docker/volumes/3f2e/_data","Destination":"/tmp","Driver":"local","Mode":"","RW":true,"Propagation":""},
                      {"Type":"bind","Source":"/var/run/docker.sock","Destination":"/var/run/docker.sock","Mode":"","RW":true,"Propagation":"rprivate"}]}"#;
        let me: Inspected = serde_json::from_str(json).unwrap();
        assert_eq!(me.host_config.pid_mode, "host");
        assert_eq!(me.mounts[0].name.as_deref(), Some("3f2e"));
        assert_eq!(me.mounts[1].kind, "bind");
    }

    #[test]
    fn the_innermost_mount_holding_the_work_directory_is_shared_and_nothing_else() {
        let me = Inspected {
            mounts: vec![
                Mount {
                    kind: "volume".into(),
                    name: Some("vol".into()),
                    source: "/v/_data".into(),
                    destination: "/tmp".into(),
                },
                Mount { kind: "bind".into(), name: None, source: "/home/a/w".into(), destination: "/tmp/w".into() },
                Mount {
                    kind: "bind".into(),
                    name: None,
                    source: "/var/run/docker.sock".into(),
                    destination: "/var/run/docker.sock".into(),
                },
            ],
            host_config: HostConfig { pid_mode: String::new() },
        };
        assert_eq!(volume_holding(&me, Path::new("/tmp/ferry-conformance-1/r-1")).unwrap(), "vol:/tmp");
        assert_eq!(volume_holding(&me, Path::new("/tmp/w/r-1")).unwrap(), "/home/a/w:/tmp/w");
        // A path component, not a string prefix: /tmp/wx is in the /tmp volume.
        assert_eq!(volume_holding(&me, Path::new("/tmp/wx")).unwrap(), "vol:/tmp");
        let err = volume_holding(&me, Path::new("/work/r-1")).unwrap_err().to_string();
        assert!(err.contains("/work/r-1") && err.contains("--work-dir"), "{err}");
    }
}
