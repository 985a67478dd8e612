//! The driver processes of a run (the registry, ferry_workflow::registry,
//! says which drivers exist and how each starts). The pool starts each
//! driver once per run, on first use, on a unix socket under
//! `<run>/artifact-plugins/<name>/socket`, and every step of the run shares it:
//! a template with 15 artifacts on one driver pays one start-up, not 15.

use ferry_sdk::client::DriverClient;
use ferry_workflow::registry::{DEFAULT_TIMEOUT_SECONDS, DriverSpec, Registry, RegistryError};
use ferry_workflow::values::Location;
use parking_lot::Mutex;
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::process::{Child, Command};
use tokio::sync::OnceCell;

/// How long drivers get to exit after SIGTERM at the end of a run or step.
pub const DRIVER_GRACE: Duration = Duration::from_secs(10);

/// The label on every container of a run (main and driver containers):
/// the run's uid, unique across runs and homes.
pub(crate) const RUN_LABEL: &str = "ferry.run";

/// The label naming a container's pod (or the run, for GC drivers).
pub(crate) const GROUP_LABEL: &str = "ferry.group";

/// A registry or driver failure.
#[derive(Debug, thiserror::Error)]
pub enum DriverError {
    /// The registry refused the driver.
    #[error(transparent)]
    Registry(#[from] RegistryError),
    /// The driver did not start.
    #[error("artifact driver {name:?} did not start: {message}")]
    Start {
        /// The driver.
        name: String,
        /// Why, with the tail of its log.
        message: String,
    },
}

/// The SDK client's form of a location.
pub trait ToClient {
    /// The location as the driver client takes it.
    fn to_client(&self) -> ferry_sdk::client::Location;
}

impl ToClient for Location {
    fn to_client(&self) -> ferry_sdk::client::Location {
        ferry_sdk::client::Location::new(&self.driver, &self.configuration, &self.key)
    }
}

/// Restarts of one driver in one run before its calls fail for good: a
/// driver that keeps dying is broken, not unlucky.
pub const MAX_RESTARTS: u32 = 3;

/// Pauses between retries of a call that failed transiently, doubling up to this.
const MAX_RETRY_PAUSE: Duration = Duration::from_secs(8);

/// Resolves a command's program: beside the running executable first (so a
/// build tree works without installing), then `PATH`.
pub(crate) fn resolve_program(program: &str) -> PathBuf {
    if program.contains('/') {
        return PathBuf::from(program);
    }
    if let Ok(exe) = std::env::current_exe() {
        for dir in exe.parent().into_iter().chain(exe.parent().and_then(Path::parent)) {
            let candidate = dir.join(program);
            if candidate.is_file() {
                return candidate;
            }
        }
    }
    PathBuf::from(program)
}

struct Started {
    client: DriverClient,
    pid: Option<u32>,
    startup: Duration,
}

/// Where a pool's drivers run.
#[derive(Clone, Debug, Default)]
pub enum Launcher {
    /// Processes of this host, from each entry's `command` (the local runtime).
    #[default]
    Process,
    /// Containers of each entry's `image`, as Argo runs plugins (the Docker runtime).
    Container(ContainerLauncher),
    /// Drivers that something else runs and already serves: driver name →
    /// its socket, as a pod's sidecars or a driver embedded in the same
    /// process serve them. The pool starts and stops nothing; it connects,
    /// and a driver that goes away is not restarted, since the pool cannot.
    Attached(BTreeMap<String, PathBuf>),
}

/// How a driver runs as a container: its socket directory is the only
/// thing mounted at `/tmp/artifact-plugins/<name>`, as Argo mounts a plugin's
/// socket volume, and the directories whose paths Load and Save requests
/// name are mounted at their own paths, so a request means the same file
/// on both sides.
#[derive(Clone, Debug, Default)]
pub struct ContainerLauncher {
    /// Registered image → local image (`--image-map`).
    pub images: BTreeMap<String, String>,
    /// Host directories mounted at the same path: (path, read-only).
    pub mounts: Vec<(PathBuf, bool)>,
    /// Argo's container name prefix for the role (`init-artifact-`,
    /// `artifact-plugin-`), used in container and log names.
    pub role: String,
    /// The pod (or run) the containers belong to, for names and labels.
    pub group: String,
    /// The run's uid, labelled on each container so a resume removes what
    /// a killed `ferry` left running.
    pub run: String,
}

/// Environment a driver container receives from `ferry`'s own: secrets
/// (`FERRY_SECRET_*`), transfer settings and the clouds' credential
/// variables. Passed by name (`-e NAME`), so no value is on a command line.
const FORWARDED_ENV: [&str; 5] = ["FERRY_", "AWS_", "GOOGLE_", "ALIBABA_CLOUD_", "RUST_LOG"];

impl ContainerLauncher {
    fn container_name(&self, driver: &str) -> String {
        let raw =
            format!("ferry-{}-{}{driver}-{}", self.group, self.role, &uuid::Uuid::new_v4().simple().to_string()[..6]);
        raw.chars()
            .map(|c| if c.is_ascii_alphanumeric() || c == '-' || c == '.' || c == '_' { c } else { '-' })
            .collect()
    }

    /// `docker run` in the foreground: the CLI's exit status is the
    /// container's, and a SIGTERM sent to the CLI reaches the driver (its
    /// signal proxy), as the kubelet's reaches a sidecar.
    fn command(&self, spec: &DriverSpec, socket_dir: &Path, container: &str) -> Result<Command, DriverError> {
        let fail = |message: String| DriverError::Start { name: spec.name.clone(), message };
        let image = self.images.get(&spec.image).unwrap_or(&spec.image);
        if image.is_empty() {
            return Err(fail(
                "the registry gives it no image, and --runtime docker runs drivers from their images".into(),
            ));
        }
        let mut cmd = Command::new("docker");
        cmd.args(["run", "--rm", "--pull", "never", "--name", container, "--network", "host"]);
        cmd.arg("--label").arg(format!("{}={}", GROUP_LABEL, self.group));
        cmd.arg("--label").arg(format!("{}={}", RUN_LABEL, self.run));
        // The invoking user, so what a driver writes into the step
        // directory belongs to whoever ran ferry.
        cmd.arg("--user").arg(format!("{}:{}", nix::unistd::getuid(), nix::unistd::getgid()));
        cmd.arg("-v").arg(format!("{}:/tmp/artifact-plugins/{}", socket_dir.display(), spec.name));
        for (dir, read_only) in &self.mounts {
            std::fs::create_dir_all(dir).map_err(|e| fail(format!("creating {}: {e}", dir.display())))?;
            let mode = if *read_only { ":ro" } else { "" };
            cmd.arg("-v").arg(format!("{}:{}{mode}", dir.display(), dir.display()));
        }
        let forwarded = std::env::vars_os().filter_map(|(k, _)| k.into_string().ok()).filter(|k| {
            FORWARDED_ENV.iter().any(|p| k.starts_with(p))
                && k != ferry_sdk::server::EXIT_WITH_PARENT_ENV
                && k != "FERRY_HOME"
                && k != ferry_sdk::metrics::METRICS_ADDR_ENV
                && !spec.env.contains_key(k)
        });
        for name in forwarded.chain(spec.env.keys().cloned()) {
            cmd.arg("-e").arg(name);
        }
        cmd.envs(&spec.env);
        cmd.arg(image).arg(format!("/tmp/artifact-plugins/{}/socket", spec.name));
        Ok(cmd)
    }
}

/// The driver processes of one run.
pub struct DriverPool {
    registry: Registry,
    sockets: PathBuf,
    logs: PathBuf,
    slots: Mutex<HashMap<String, Arc<OnceCell<Started>>>>,
    children: Mutex<Vec<Running>>,
    scratch: Option<PathBuf>,
    launcher: Launcher,
    restarts: Mutex<HashMap<String, u32>>,
}

struct Running {
    name: String,
    child: Child,
    /// The container's name, when the driver runs in one.
    container: Option<String>,
}

impl DriverPool {
    /// A pool placing sockets under `sockets/<name>/socket` and driver logs
    /// in `logs/driver-<name>.log`.
    pub fn new(registry: Registry, sockets: PathBuf, logs: PathBuf) -> DriverPool {
        DriverPool {
            registry,
            sockets,
            logs,
            slots: Mutex::new(HashMap::new()),
            children: Mutex::new(Vec::new()),
            scratch: None,
            launcher: Launcher::Process,
            restarts: Mutex::new(HashMap::new()),
        }
    }

    /// A pool whose sockets go under `preferred` (`<preferred>/<name>/socket`)
    /// when that path fits a unix socket's `sun_path` (108 bytes, leaving room
    /// for "/<49-char name>/socket"), else under a scratch directory
    /// `ferry-<tag>` of the temp dir, removed at shutdown.
    pub(crate) fn with_short_sockets(
        registry: Registry,
        preferred: Option<PathBuf>,
        tag: &str,
        logs: PathBuf,
    ) -> DriverPool {
        if let Some(sockets) = preferred.filter(|p| p.as_os_str().len() <= 50) {
            return DriverPool::new(registry, sockets, logs);
        }
        let scratch = std::env::temp_dir().join(format!("ferry-{tag}"));
        DriverPool::new(registry, scratch.join("artifact-plugins"), logs).removing_at_shutdown(scratch)
    }

    /// Starts the drivers with `launcher` instead of as host processes.
    #[must_use]
    pub fn with_launcher(mut self, launcher: Launcher) -> DriverPool {
        self.launcher = launcher;
        self
    }

    /// Starts every driver of `names` now, concurrently (sidecars start with
    /// the main container, not at the first save).
    pub async fn start_all(&self, names: &std::collections::BTreeSet<String>) -> Result<(), DriverError> {
        let starts = names.iter().map(|n| self.client(n, 0));
        futures::future::try_join_all(starts).await.map(|_| ())
    }

    /// Removes `dir` (a short-lived socket directory of the pool's own) at shutdown.
    #[must_use]
    pub fn removing_at_shutdown(mut self, dir: PathBuf) -> DriverPool {
        self.scratch = Some(dir);
        self
    }

    /// A client for `name`, starting the driver on first use. Concurrent
    /// first uses share one start.
    pub async fn client(&self, name: &str, timeout_seconds: u32) -> Result<DriverClient, DriverError> {
        let spec = self.registry.get(name)?.clone();
        let slot = self.slots.lock().entry(name.to_string()).or_default().clone();
        let started = slot.get_or_try_init(|| self.start(&spec, timeout_seconds)).await?;
        Ok(started.client.clone())
    }

    /// Runs `op` with a client of driver `name`. A driver that died (killed,
    /// crashed, OOM) is started again and the call made again, up to
    /// [`MAX_RESTARTS`] times per driver in this run; then the error says how
    /// it died. A call that failed transiently (the driver's own retries ran
    /// out) is made again with backoff while less than the retry bound
    /// (`FERRY_RETRY_TIMEOUT`) has passed since the first failure. Every
    /// driver call may be repeated: Save overwrites, Load writes atomically,
    /// Delete is idempotent.
    pub async fn call<T, F, Fut>(&self, name: &str, timeout_seconds: u32, mut op: F) -> ferry_sdk::Result<T>
    where
        F: FnMut(DriverClient) -> Fut,
        Fut: std::future::Future<Output = ferry_sdk::Result<T>>,
    {
        // Measured from the first failure, not from the call: a Save that
        // ran for an hour before failing still gets its retries (which
        // resume from the driver's journal).
        let mut failing_since: Option<Instant> = None;
        let bound = ferry_sdk::env::duration(ferry_sdk::env::RETRY_TIMEOUT_ENV, ferry_sdk::env::DEFAULT_RETRY_TIMEOUT)?;
        let mut pause = Duration::from_millis(500);
        loop {
            let client = self
                .client(name, timeout_seconds)
                .await
                .map_err(|e| ferry_sdk::Error::new(ferry_sdk::ErrorKind::Other, e.to_string()))?;
            let err = match op(client).await {
                Ok(v) => return Ok(v),
                Err(e) => e,
            };
            if let Some(how) = self.reap_dead(name, err.kind() == ferry_sdk::ErrorKind::Transient).await {
                let restarts = {
                    let mut r = self.restarts.lock();
                    let n = r.entry(name.to_string()).or_default();
                    *n += 1;
                    *n
                };
                if restarts > MAX_RESTARTS {
                    return Err(ferry_sdk::Error::new(
                        ferry_sdk::ErrorKind::Other,
                        format!(
                            "artifact driver {name:?} died ({how}); it was restarted {MAX_RESTARTS} times in this run already, giving up: {err}"
                        ),
                    ));
                }
                tracing::warn!(driver = %name, %how, restarts, "artifact driver died; starting it again and repeating the call");
                crate::telemetry::retried(name, "driver_died");
                continue;
            }
            if err.kind() == ferry_sdk::ErrorKind::Transient
                && failing_since.get_or_insert_with(Instant::now).elapsed() < bound
            {
                tracing::warn!(driver = %name, error = %err, "driver call failed transiently; trying again");
                crate::telemetry::retried(name, "transient");
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(MAX_RETRY_PAUSE);
                continue;
            }
            return Err(err);
        }
    }

    /// [`call`](Self::call) of the driver of `at`, in a span naming the
    /// driver, the `rpc` and the key (never the configuration, which may
    /// hold credentials).
    #[tracing::instrument(level = "debug", name = "driver_call", skip_all, fields(driver = %at.driver, rpc = rpc, key = %at.key))]
    pub(crate) async fn call_at<T, F, Fut>(&self, rpc: &'static str, at: &Location, op: F) -> ferry_sdk::Result<T>
    where
        F: FnMut(DriverClient) -> Fut,
        Fut: std::future::Future<Output = ferry_sdk::Result<T>>,
    {
        let measured = crate::telemetry::Call::start(&at.driver, rpc);
        let result = self.call(&at.driver, at.timeout, op).await;
        measured.finish(result.as_ref().err().map(ferry_sdk::Error::kind));
        result
    }

    /// If driver `name` has exited, forgets it (the next use starts it again)
    /// and says how it ended. A call cut by the driver's death can fail a
    /// moment before the exit is visible, so `settle` waits briefly for it.
    async fn reap_dead(&self, name: &str, settle: bool) -> Option<String> {
        let tries = if settle { 15 } else { 1 };
        for i in 0..tries {
            if i > 0 {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            let status = {
                let mut children = self.children.lock();
                let at = children.iter_mut().position(|r| r.name == name && matches!(r.child.try_wait(), Ok(Some(_))));
                at.map(|i| children.remove(i)).and_then(|mut r| r.child.try_wait().ok().flatten())
            };
            if let Some(status) = status {
                self.slots.lock().remove(name);
                return Some(describe_exit(status));
            }
        }
        None
    }

    /// How long each started driver took from spawn to a ready socket.
    pub fn startups(&self) -> Vec<(String, Duration, Option<u32>)> {
        let slots = self.slots.lock().clone();
        let mut out: Vec<_> =
            slots.iter().filter_map(|(n, s)| s.get().map(|s| (n.clone(), s.startup, s.pid))).collect();
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out
    }

    async fn start(&self, spec: &DriverSpec, timeout_seconds: u32) -> Result<Started, DriverError> {
        let fail = |message: String| DriverError::Start { name: spec.name.clone(), message };
        let container = match &self.launcher {
            Launcher::Attached(sockets) => return attach(spec, sockets, timeout_seconds).await,
            Launcher::Process => None,
            Launcher::Container(c) => Some(c),
        };
        let dir = self.sockets.join(&spec.name);
        std::fs::create_dir_all(&dir).map_err(|e| fail(format!("creating {}: {e}", dir.display())))?;
        std::fs::create_dir_all(&self.logs).map_err(|e| fail(format!("creating {}: {e}", self.logs.display())))?;
        let socket = dir.join("socket");
        let log_path = match container {
            None => self.logs.join(format!("driver-{}.log", spec.name)),
            Some(c) => self.logs.join(format!("{}.{}{}.log", c.group, c.role, spec.name)),
        };
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)
            .map_err(|e| fail(format!("opening {}: {e}", log_path.display())))?;
        let (mut command, container) = match container {
            None => {
                let (program, args) = spec.command.split_first().ok_or_else(|| fail("empty command".into()))?;
                let program = resolve_program(program);
                let mut command = Command::new(&program);
                command
                    .args(args)
                    .arg(&socket)
                    // `ferry`'s own metrics address: a driver binding it too would fail to start.
                    .env_remove(ferry_sdk::metrics::METRICS_ADDR_ENV)
                    .envs(&spec.env)
                    // A driver must not outlive a killed `ferry`.
                    .env(ferry_sdk::server::EXIT_WITH_PARENT_ENV, "1");
                (command, None)
            }
            Some(c) => {
                let name = c.container_name(&spec.name);
                (c.command(spec, &dir, &name)?, Some(name))
            }
        };
        let began = Instant::now();
        let mut child = command
            .stdin(std::process::Stdio::null())
            .stdout(log.try_clone().map_err(|e| fail(e.to_string()))?)
            .stderr(log)
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| {
                let program = command.as_std().get_program().to_string_lossy().into_owned();
                fail(format!("running {program}: {e} (is it installed?)"))
            })?;
        let pid = child.id();
        let connected = tokio::select! {
            connected = DriverClient::connect(&socket, connect_timeout(spec, timeout_seconds)) => connected.map_err(|e| fail(format!("{e}{}", log_tail(&log_path)))),
            status = child.wait() => {
                let status = status.map(|s| s.to_string()).unwrap_or_else(|e| e.to_string());
                Err(fail(format!("exited before serving ({status}){}", log_tail(&log_path))))
            }
        };
        let client = match connected {
            Ok(client) => client,
            Err(e) => {
                // Dropping the docker CLI would leave its container behind.
                if let Some(container) = &container {
                    remove_container(container).await;
                }
                return Err(e);
            }
        };
        self.children.lock().push(Running { name: spec.name.clone(), child, container });
        tracing::debug!(driver = %spec.name, ms = began.elapsed().as_millis() as u64, "driver ready");
        Ok(Started { client, pid, startup: began.elapsed() })
    }

    /// Stops every driver as Kubernetes stops a sidecar: SIGTERM, then a kill
    /// after `grace`. Returns the drivers that did not exit 0.
    pub async fn shutdown(&self, grace: Duration) -> Vec<String> {
        let children: Vec<Running> = self.children.lock().drain(..).collect();
        self.slots.lock().clear();
        let mut waits = Vec::new();
        for Running { name, mut child, container } in children {
            if let Some(pid) = child.id().and_then(|p| i32::try_from(p).ok()) {
                let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::Signal::SIGTERM);
            }
            waits.push(async move {
                match tokio::time::timeout(grace, child.wait()).await {
                    Ok(Ok(status)) if status.success() => None,
                    Ok(Ok(status)) => Some(format!("{name} ({status})")),
                    Ok(Err(e)) => Some(format!("{name} ({e})")),
                    Err(_) => {
                        // Killing the docker CLI would leave its container running.
                        if let Some(container) = &container {
                            remove_container(container).await;
                        }
                        let _ = child.kill().await;
                        Some(format!("{name} (killed after {grace:?})"))
                    }
                }
            });
        }
        let failed = futures::future::join_all(waits).await.into_iter().flatten().collect();
        if let Some(dir) = &self.scratch {
            let _ = std::fs::remove_dir_all(dir);
        }
        failed
    }
}

/// Connects to a driver that something else serves (see [`Launcher::Attached`]).
async fn attach(
    spec: &DriverSpec,
    sockets: &BTreeMap<String, PathBuf>,
    timeout_seconds: u32,
) -> Result<Started, DriverError> {
    let fail = |message: String| DriverError::Start { name: spec.name.clone(), message };
    let socket = sockets.get(&spec.name).ok_or_else(|| {
        fail(format!("not among the attached drivers ({})", sockets.keys().cloned().collect::<Vec<_>>().join(", ")))
    })?;
    let began = Instant::now();
    let client =
        DriverClient::connect(socket, connect_timeout(spec, timeout_seconds)).await.map_err(|e| fail(e.to_string()))?;
    Ok(Started { client, pid: None, startup: began.elapsed() })
}

/// How long to wait for a driver's socket: the artifact's own timeout, else
/// the registry's, else Argo's default.
fn connect_timeout(spec: &DriverSpec, timeout_seconds: u32) -> Duration {
    Duration::from_secs(u64::from(match (timeout_seconds, spec.connection_timeout_seconds) {
        (0, 0) => DEFAULT_TIMEOUT_SECONDS,
        (0, t) | (t, _) => t,
    }))
}

/// "killed by signal 9 (SIGKILL)" or "exited with code 3".
fn describe_exit(status: std::process::ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("exited with code {code}"),
        (None, Some(sig)) => match nix::sys::signal::Signal::try_from(sig) {
            Ok(s) => format!("killed by signal {sig} ({})", s.as_str()),
            Err(_) => format!("killed by signal {sig}"),
        },
        (None, None) => status.to_string(),
    }
}

/// Removes a driver container that will not stop or never served.
async fn remove_container(container: &str) {
    let _ = Command::new("docker").args(["rm", "-f", container]).output().await;
}

fn log_tail(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().rev().take(5).collect();
    if lines.is_empty() {
        String::new()
    } else {
        format!("; last lines of {}:\n  {}", path.display(), lines.into_iter().rev().collect::<Vec<_>>().join("\n  "))
    }
}
