//! Steps as Docker containers (`ferry run --runtime docker`). The step's
//! declared paths live in the same per-step directory as with the local
//! runtime, and are bind-mounted into the container at their own paths, so
//! the controller loads inputs into them before the start and saves outputs
//! from them after, through the drivers, exactly as for local steps.
//!
//! Each step is a pod-like group: the drivers its inputs use run first as
//! containers of their images (Argo's init containers) and stop before the
//! main container starts; the drivers its outputs use start beside the main
//! container (Argo's sidecars) and are stopped with SIGTERM after the saves.
//! Each has its own socket directory mounted at `/tmp/artifact-plugins/<name>`.

use crate::drivers::{ContainerLauncher, GROUP_LABEL, Launcher, RUN_LABEL};
use crate::runtime::{
    CONTAINERS_RECORD, DriverRole, MAX_RESULT_BYTES, PodExit, PodSpec, Runtime, RuntimeError, copy_output, io,
    parse_image_map, process, stop_earlier_attempts, until_deadline,
};
use crate::store::WorkflowRecord;
use async_trait::async_trait;
use parking_lot::Mutex;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// Runs each step's main container with `docker run`.
#[derive(Clone, Debug, Default)]
pub struct DockerRuntime {
    /// Template image → local image (no registry is reachable from some hosts).
    images: BTreeMap<String, String>,
    /// Host directories every driver container also sees at their own path
    /// (the embedded repository's root, for the fs driver).
    driver_mounts: Vec<PathBuf>,
}

impl DockerRuntime {
    /// A runtime that replaces each `FROM=TO` image of the map.
    pub fn new(image_map: &[String]) -> Result<DockerRuntime, RuntimeError> {
        Ok(DockerRuntime { images: parse_image_map(image_map)?, driver_mounts: Vec::new() })
    }

    /// Also mounts `dir` into every driver container at its own path.
    #[must_use]
    pub fn with_driver_mount(mut self, dir: PathBuf) -> DockerRuntime {
        self.driver_mounts.push(dir);
        self
    }

    fn launcher(&self, role: &str, group: &str, run: &str, mut mounts: Vec<(PathBuf, bool)>) -> Launcher {
        mounts.extend(self.driver_mounts.iter().map(|d| (d.clone(), false)));
        Launcher::Container(ContainerLauncher {
            images: self.images.clone(),
            mounts,
            role: role.to_string(),
            group: group.to_string(),
            run: run.to_string(),
        })
    }

    /// The image a template's image runs as.
    pub fn image<'a>(&'a self, template: &'a str) -> &'a str {
        self.images.get(template).map_or(template, String::as_str)
    }

    /// `docker run` of the step's main container named `name`, and the image it runs.
    fn command<'a>(
        &'a self,
        pod: &'a PodSpec,
        mounts: &[String],
        name: &str,
        network: Option<&str>,
    ) -> Result<(tokio::process::Command, &'a str), RuntimeError> {
        let invalid = |what: &str| RuntimeError::Invalid(what.into());
        let mut cmd = tokio::process::Command::new("docker");
        // Never pull: an image is either here or named in --image-map.
        cmd.args(["run", "--rm", "--pull", "never", "--name", name]);
        // Without a command the image's entrypoint runs the args, as in Kubernetes.
        let args = match pod.argv.split_first() {
            _ if pod.image_entrypoint => &pod.argv[..],
            Some((entrypoint, args)) => {
                cmd.args(["--entrypoint", entrypoint]);
                args
            }
            None => return Err(invalid("the template has no command")),
        };
        cmd.arg("--label").arg(format!("{RUN_LABEL}={}", pod.run));
        cmd.arg("--label").arg(format!("{GROUP_LABEL}={}", pod.name));
        if let Some(network) = network {
            cmd.arg("--network").arg(format!("container:{network}"));
        }
        for dir in mounts {
            cmd.arg("-v").arg(format!("{}:{dir}", self.host_path(pod, dir).display()));
        }
        for volume in &pod.volumes {
            let mode = if volume.read_only { ":ro" } else { "" };
            cmd.arg("-v").arg(format!("{}:{}{mode}", volume.source.display(), volume.path));
        }
        for (k, v) in &pod.env {
            cmd.arg("-e").arg(format!("{k}={v}"));
        }
        cmd.arg("-e").arg(format!("FERRY_POD_NAME={}", pod.name));
        if !pod.working_dir.is_empty() {
            cmd.args(["-w", &pod.working_dir]);
        }
        let image = self.image(&pod.image);
        if image.is_empty() {
            return Err(invalid("the template has no image"));
        }
        cmd.arg(image).args(args);
        Ok((cmd, image))
    }

    fn container_name(pod: &PodSpec) -> String {
        let safe: String =
            pod.name.chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' || c == '.' { c } else { '-' }).collect();
        format!("ferry-{safe}-{}", &uuid::Uuid::new_v4().simple().to_string()[..8])
    }
}

#[async_trait]
impl Runtime for DockerRuntime {
    fn host_path(&self, pod: &PodSpec, path: &str) -> PathBuf {
        super::host_path(pod, path)
    }

    fn step_drivers(&self, pod: &PodSpec, role: DriverRole) -> Option<Launcher> {
        // Loads and saves name files in the step directory; a sidecar also
        // reads the main container's log when logs are archived.
        let mut mounts = vec![(pod.dir.clone(), false)];
        if role == DriverRole::Sidecar {
            mounts.extend(pod.log.parent().map(|d| (d.to_path_buf(), true)));
        }
        Some(self.launcher(role.prefix(), &pod.name, &pod.run, mounts))
    }

    fn run_drivers(&self, run: &WorkflowRecord) -> Launcher {
        self.launcher("artifact-gc-", &run.name, &run.uid, Vec::new())
    }

    fn stop_earlier_steps(&self, run: &WorkflowRecord) -> Result<(), RuntimeError> {
        // Recorded before this attempt starts a container, so a resume
        // after this process is killed knows to look for them.
        let record = run.dir.join(CONTAINERS_RECORD);
        std::fs::write(&record, "").map_err(io("writing", &record))?;
        stop_earlier_attempts(run)
    }

    async fn address(&self, pod: &PodSpec) -> Result<String, RuntimeError> {
        let id = running_container(&pod.name, &CancellationToken::new()).await?;
        let format = "{{range .NetworkSettings.Networks}}{{.IPAddress}} {{end}}";
        let out = docker_output(&["inspect", "--format", format, &id]).await?;
        out.split_whitespace()
            .next()
            .map(str::to_string)
            .ok_or_else(|| RuntimeError::Refused(format!("container {id} of pod {} has no IP address", pod.name)))
    }

    async fn exec_probe(&self, pod: &PodSpec, argv: &[String], timeout: Duration) -> bool {
        let Ok(id) = running_container(&pod.name, &CancellationToken::new()).await else { return false };
        let mut command = tokio::process::Command::new("docker");
        command
            .arg("exec")
            .arg(&id)
            .args(argv)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .kill_on_drop(true);
        matches!(tokio::time::timeout(timeout, command.status()).await, Ok(Ok(status)) if status.success())
    }

    async fn run(&self, pod: &PodSpec, cancel: CancellationToken) -> Result<PodExit, RuntimeError> {
        let mounts = pod.own_dirs();
        pod.stage(&mounts, str::to_string)?;
        let name = Self::container_name(pod);
        let network = match &pod.network_of {
            Some(owner) => Some(running_container(owner, &cancel).await?),
            None => None,
        };
        let (mut cmd, image) = self.command(pod, &mounts, &name, network.as_deref())?;
        let log =
            std::fs::OpenOptions::new().create(true).append(true).open(&pod.log).map_err(io("opening", &pod.log))?;
        let log = Arc::new(Mutex::new(log));
        let mut child = cmd
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .map_err(process("starting docker".into()))?;
        let stdout = child.stdout.take().map(|s| tokio::spawn(copy_output(s, log.clone(), MAX_RESULT_BYTES)));
        let stderr = child.stderr.take().map(|s| tokio::spawn(copy_output(s, log.clone(), 64 << 10)));
        let deadline = until_deadline(pod.deadline);
        let mut exit = PodExit::default();
        let status = tokio::select! {
            status = child.wait() => status,
            () = deadline => { exit.timed_out = true; stop(&name, &mut child).await }
            () = cancel.cancelled() => { exit.cancelled = true; stop(&name, &mut child).await }
        }
        .map_err(process("waiting for docker".into()))?;
        if let Some(task) = stdout {
            exit.stdout = task.await.unwrap_or_default();
        }
        let stderr = match stderr {
            Some(task) => task.await.unwrap_or_default(),
            None => String::new(),
        };
        // docker run's own failures (no such image, bad option) are 125;
        // 126 and 127 are the entrypoint's, as in a shell.
        if status.code() == Some(125) && !exit.timed_out && !exit.cancelled {
            return Err(RuntimeError::Refused(format!("docker could not run image {image:?}: {}", stderr.trim())));
        }
        if exit.timed_out || exit.cancelled {
            return Ok(exit);
        }
        exit.code = status.code();
        Ok(exit)
    }
}

/// How long a container waits for the pod container whose network it
/// joins (`docker run` of a sidecar may still be creating it).
const NETWORK_WAIT: Duration = Duration::from_secs(60);

/// The id of the running container of pod `pod`, waiting for it to start.
async fn running_container(pod: &str, cancel: &CancellationToken) -> Result<String, RuntimeError> {
    let filter = format!("label={GROUP_LABEL}={pod}");
    let started = std::time::Instant::now();
    loop {
        let out = docker_output(&["ps", "-q", "--no-trunc", "--filter", &filter, "--filter", "status=running"]).await?;
        if let Some(id) = out.split_whitespace().next() {
            return Ok(id.to_string());
        }
        if started.elapsed() > NETWORK_WAIT || cancel.is_cancelled() {
            return Err(RuntimeError::Refused(format!("no running container of pod {pod} after {NETWORK_WAIT:?}")));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Standard output of a docker command that must succeed.
async fn docker_output(args: &[&str]) -> Result<String, RuntimeError> {
    let out = tokio::process::Command::new("docker")
        .args(args)
        .stdin(std::process::Stdio::null())
        .output()
        .await
        .map_err(process("running docker".into()))?;
    if !out.status.success() {
        let why = String::from_utf8_lossy(&out.stderr);
        return Err(RuntimeError::Refused(format!("docker {}: {}", args[0], why.trim())));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Removes every container labelled with run `uid`, running or not: a
/// killed `ferry` leaves its steps' containers and their drivers running
/// (the docker CLI it started dies with it or not; the container does not).
pub(crate) fn remove_run_containers(uid: &str) -> Result<(), RuntimeError> {
    let docker = |args: &[&str]| {
        let out = std::process::Command::new("docker")
            .args(args)
            .stdin(std::process::Stdio::null())
            .output()
            .map_err(|e| format!("running docker: {e}"))?;
        if !out.status.success() {
            return Err(format!("docker {}: {}", args[0], String::from_utf8_lossy(&out.stderr).trim()));
        }
        Ok(String::from_utf8_lossy(&out.stdout).split_whitespace().map(str::to_string).collect::<Vec<_>>())
    };
    let filter = format!("label={RUN_LABEL}={uid}");
    let list = || docker(&["ps", "-aq", "--no-trunc", "--filter", &filter]);
    let fail = |e: String| format!("cannot make sure no container of an earlier attempt of this run still runs: {e}");
    let ids = list().map_err(fail).map_err(RuntimeError::Refused)?;
    if ids.is_empty() {
        return Ok(());
    }
    tracing::warn!(containers = ids.len(), "removing the containers an earlier ferry process left running");
    let mut rm = vec!["rm", "-f"];
    rm.extend(ids.iter().map(String::as_str));
    // A container another removal already took is gone either way: the list
    // after says what is left.
    let removed = docker(&rm);
    let left = list().map_err(fail).map_err(RuntimeError::Refused)?;
    if !left.is_empty() {
        let why = removed.err().unwrap_or_default();
        return Err(RuntimeError::Refused(fail(format!("{} survive docker rm -f {why}", left.join(", ")))));
    }
    Ok(())
}

/// Stops the container (SIGTERM, SIGKILL after 2 s) and waits for `docker run` to return.
async fn stop(name: &str, child: &mut tokio::process::Child) -> std::io::Result<std::process::ExitStatus> {
    let _ = tokio::process::Command::new("docker")
        .args(["stop", "-t", "2", name])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .await;
    match tokio::time::timeout(Duration::from_secs(10), child.wait()).await {
        Ok(status) => status,
        Err(_) => {
            let _ = child.kill().await;
            child.wait().await
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_container_without_a_command_runs_the_images_entrypoint() {
        let rt = DockerRuntime::default();
        let argv = |pod: &PodSpec| {
            let (cmd, _) = rt.command(pod, &[], "c", None).unwrap();
            cmd.as_std().get_args().map(|a| a.to_string_lossy().into_owned()).collect::<Vec<_>>().join(" ")
        };
        let mut pod = PodSpec { image: "alpine".into(), argv: vec!["echo".into(), "hi".into()], ..Default::default() };
        assert!(argv(&pod).contains("--entrypoint echo") && argv(&pod).ends_with("alpine hi"), "{}", argv(&pod));
        pod.image_entrypoint = true;
        assert!(!argv(&pod).contains("--entrypoint") && argv(&pod).ends_with("alpine echo hi"), "{}", argv(&pod));
    }

    #[test]
    fn mounts_are_the_outermost_parents() {
        let pod = PodSpec {
            paths: vec!["/tmp/out.txt".into(), "/tmp/a/b".into(), "/data".into(), "/in/x/".into()],
            files: vec![("/argo/staging/script".into(), String::new())],
            ..Default::default()
        };
        assert_eq!(pod.own_dirs(), ["/argo/staging", "/data", "/in", "/tmp"]);
    }

    #[test]
    fn every_driver_container_is_labelled_with_the_run() {
        let rt = DockerRuntime::default();
        let pod = PodSpec { name: "p".into(), run: "uid-1".into(), log: "/r/logs/p.log".into(), ..Default::default() };
        let run = WorkflowRecord {
            id: 1,
            name: "wf".into(),
            uid: "uid-1".into(),
            phase: ferry_workflow::values::Phase::Running,
            message: String::new(),
            created: 0,
            finished: None,
            dir: "/r".into(),
            gc: Default::default(),
        };
        let launchers = [
            rt.step_drivers(&pod, DriverRole::Init),
            rt.step_drivers(&pod, DriverRole::Sidecar),
            Some(rt.run_drivers(&run)),
        ];
        for launcher in launchers {
            let Some(Launcher::Container(c)) = launcher else { panic!("not a container launcher") };
            assert_eq!(c.run, "uid-1");
        }
    }

    #[test]
    fn image_map_entries_are_checked() {
        let rt = DockerRuntime::new(&["alpine:3.20=ferry/busybox:dev".into()]).unwrap();
        assert_eq!(rt.image("alpine:3.20"), "ferry/busybox:dev");
        assert_eq!(rt.image("python:3"), "python:3");
        let err = DockerRuntime::new(&["alpine".into()]).unwrap_err().to_string();
        assert!(err.contains("--image-map \"alpine\"") && err.contains("TEMPLATE_IMAGE=LOCAL_IMAGE"), "{err}");
    }
}
