//! Where a step's process runs. The controller hands a [`PodSpec`] to a
//! [`Runtime`]; this module has the local one, which runs the command as a
//! process of this host in a per-step directory, and [`docker`] the one
//! that runs it as a container. (Kubernetes pods are rendered by
//! ferry-render-k8s, not run.)

pub(crate) mod docker;
pub mod sandbox;

use crate::drivers::Launcher;
use crate::store::WorkflowRecord;
use async_trait::async_trait;
use ferry_workflow::model::{EnvVar, SCRIPT_PATH, Sidecar, Template};
use ferry_workflow::naming::{INIT_DRIVER_PREFIX, SIDECAR_DRIVER_PREFIX};
use parking_lot::Mutex;
use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::AsyncReadExt;
use tokio_util::sync::CancellationToken;

/// Argo keeps at most this much standard output as `outputs.result`.
pub(crate) const MAX_RESULT_BYTES: usize = 256 << 10;

/// One step's process, in container terms.
#[derive(Clone, Debug, Default)]
pub struct PodSpec {
    /// The pod name (`{{pod.name}}`).
    pub name: String,
    /// The run's uid, which container runtimes label the pod's containers
    /// with, so a resume finds those an earlier attempt left running.
    pub run: String,
    /// The step's directory on this host.
    pub dir: PathBuf,
    /// The template's image.
    pub image: String,
    /// Command and arguments, as the container would see them.
    pub argv: Vec<String>,
    /// The container gave no `command`: `argv` holds only its `args`, for
    /// the image's own entrypoint (which only a container runtime knows).
    pub image_entrypoint: bool,
    /// Environment added to the process.
    pub env: Vec<(String, String)>,
    /// The container's working directory (empty: the runtime's default).
    pub working_dir: String,
    /// Files to create before the start (container path, contents): script sources.
    pub files: Vec<(String, String)>,
    /// Container paths the step reads or writes (artifacts, parameter files).
    pub paths: Vec<String>,
    /// Volumes mounted into the step.
    pub volumes: Vec<Mounted>,
    /// Where the combined output goes.
    pub log: PathBuf,
    /// Killed after this long.
    pub deadline: Option<Duration>,
    /// The pod (a sidecar of the same step) whose network this one joins,
    /// so the step's containers reach each other on localhost as in a
    /// Kubernetes pod. The local runtime ignores it: every step shares the
    /// host's network.
    pub network_of: Option<String>,
}

/// A directory of this host that a step sees at `path` (a volume).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Mounted {
    /// The absolute path the step sees.
    pub path: String,
    /// The directory on this host.
    pub source: PathBuf,
    /// Mounted read-only.
    pub read_only: bool,
}

/// How a step's process ended.
#[derive(Clone, Debug, Default)]
pub struct PodExit {
    /// The exit code, when it exited.
    pub code: Option<i32>,
    /// The signal that ended it, when killed.
    pub signal: Option<i32>,
    /// Standard output, at most 256 KiB (as Argo keeps for `outputs.result`).
    pub stdout: String,
    /// Killed at its deadline.
    pub timed_out: bool,
    /// Killed because the run was stopped.
    pub cancelled: bool,
}

/// Runs steps.
#[async_trait]
pub trait Runtime: Send + Sync {
    /// Where a container path of this pod lives on this host, so the
    /// controller can load inputs before the start and read outputs after.
    fn host_path(&self, pod: &PodSpec, path: &str) -> PathBuf;

    /// Whether the step sees its root at `/` (a container, the sandbox), so
    /// an absolute link it writes names a path of the step, not of this host.
    fn rooted(&self) -> bool {
        true
    }

    /// Runs the step to its end. An `Err` means it could not run at all.
    async fn run(&self, pod: &PodSpec, cancel: CancellationToken) -> Result<PodExit, RuntimeError>;

    /// How the drivers of one step start when the runtime runs them beside
    /// the step, as Argo does: `None` (the default) means the run's shared
    /// pool of host processes serves every step.
    fn step_drivers(&self, _pod: &PodSpec, _role: DriverRole) -> Option<Launcher> {
        None
    }

    /// How the run's own drivers (artifact GC after the run) start.
    fn run_drivers(&self, _run: &WorkflowRecord) -> Launcher {
        Launcher::Process
    }

    /// The address at which other steps reach this running pod
    /// (`{{steps.X.ip}}` of a daemon): loopback by default, as every local
    /// step shares the host's network.
    async fn address(&self, _pod: &PodSpec) -> Result<String, RuntimeError> {
        Ok("127.0.0.1".to_string())
    }

    /// Runs a probe's command for the running pod, with the pod's
    /// environment: whether it exited 0 within `timeout`. By default on
    /// this host, in the pod's directory.
    async fn exec_probe(&self, pod: &PodSpec, argv: &[String], timeout: Duration) -> bool {
        let Some((program, args)) = argv.split_first() else { return false };
        let mut command = tokio::process::Command::new(program);
        command
            .args(args)
            .current_dir(&pod.dir)
            .envs(pod.env.iter().map(|(k, v)| (k, v)))
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .kill_on_drop(true);
        matches!(tokio::time::timeout(timeout, command.status()).await, Ok(Ok(status)) if status.success())
    }

    /// Makes sure nothing an earlier `ferry` process started for `run` is
    /// still running (that process was killed, its steps and their drivers
    /// were not), so a re-run step never shares its output with an orphan.
    /// Whatever runtime the earlier attempts used.
    fn stop_earlier_steps(&self, run: &WorkflowRecord) -> Result<(), RuntimeError> {
        stop_earlier_attempts(run)
    }
}

/// The file in a run's directory saying that an attempt ran containers,
/// so every later attempt, in whatever runtime, looks for them.
pub(crate) const CONTAINERS_RECORD: &str = "containers";

/// Kills the process groups recorded by local steps of earlier attempts and
/// removes the containers of earlier Docker attempts (by their run label).
pub(crate) fn stop_earlier_attempts(run: &WorkflowRecord) -> Result<(), RuntimeError> {
    stop_recorded_groups(&run.dir)?;
    if run.dir.join(CONTAINERS_RECORD).exists() {
        docker::remove_run_containers(&run.uid)?;
    }
    Ok(())
}

/// Resolves when a step with this deadline must be stopped; never without one.
async fn until_deadline(deadline: Option<Duration>) {
    match deadline {
        Some(d) => tokio::time::sleep(d).await,
        None => std::future::pending().await,
    }
}

/// Why a runtime could not run a step (a step that ran and failed is a
/// [`PodExit`], not an error).
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
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
    /// A program (the step's, or docker) could not be started or waited for.
    #[error("{action}: {source}")]
    Process {
        /// What was being done (`starting "sh"`).
        action: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The pod cannot run as its template declares it.
    #[error("{0}")]
    Invalid(String),
    /// Docker refused, or something an earlier attempt started could not be stopped.
    #[error("{0}")]
    Refused(String),
}

pub(crate) fn io(action: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> RuntimeError {
    let path = path.to_path_buf();
    move |source| RuntimeError::Io { action, path, source }
}

pub(crate) fn process(action: String) -> impl FnOnce(std::io::Error) -> RuntimeError {
    move |source| RuntimeError::Process { action, source }
}

/// A step's two groups of drivers, in Argo's pod layout.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DriverRole {
    /// Load the inputs before the main container (`init-artifact-<name>`).
    Init,
    /// Save the outputs, started beside the main container (`artifact-plugin-<name>`).
    Sidecar,
}

impl DriverRole {
    /// Argo's container name prefix for the role.
    pub fn prefix(self) -> &'static str {
        match self {
            DriverRole::Init => INIT_DRIVER_PREFIX,
            DriverRole::Sidecar => SIDECAR_DRIVER_PREFIX,
        }
    }
}

impl PodSpec {
    /// The pod `template` runs as, in its directory under `run_dir` (made here).
    pub fn from_template(run_dir: &Path, pod_name: &str, template: &Template) -> Result<PodSpec, RuntimeError> {
        let dir = pod_dir(run_dir, pod_name);
        let logs = run_dir.join("logs");
        std::fs::create_dir_all(dir.join("root")).map_err(io("creating", &dir))?;
        std::fs::create_dir_all(&logs).map_err(io("creating", &logs))?;
        let mut pod = PodSpec {
            name: pod_name.to_string(),
            dir,
            log: logs.join(format!("{pod_name}.log")),
            ..Default::default()
        };
        if let Some(c) = &template.container {
            pod.image = c.image.clone();
            pod.argv = c.command.iter().chain(&c.args).cloned().collect();
            pod.image_entrypoint = c.command.is_empty();
            pod.env = env_pairs(&c.env);
            pod.working_dir = c.working_dir.clone();
        } else if let Some(s) = &template.script {
            pod.image = s.image.clone();
            let (command, args) = s.command_and_args();
            pod.argv = command.into_iter().chain(args).collect();
            pod.files.push((SCRIPT_PATH.to_string(), s.source.clone()));
            pod.env = env_pairs(&s.env);
            pod.working_dir = s.working_dir.clone();
            pod.paths.push(SCRIPT_PATH.to_string());
        } else {
            return Err(RuntimeError::Invalid(format!(
                "template {} runs nothing (no container, script, steps or dag)",
                template.name
            )));
        }
        pod.paths.extend(template.inputs.artifacts.iter().map(|a| a.path.clone()));
        pod.paths.extend(template.outputs.artifacts.iter().map(|a| a.path.clone()));
        pod.paths
            .extend(template.outputs.parameters.iter().filter_map(|p| p.value_from.as_ref().map(|v| v.path.clone())));
        pod.paths.retain(|p| !p.is_empty());
        if !pod.working_dir.is_empty() {
            pod.paths.push(pod.working_dir.clone());
        }
        Ok(pod)
    }

    /// A sidecar of this pod: its own process (its own directory and log,
    /// `<pod>-<sidecar>.log`), seeing `volumes` and nothing else of the step.
    pub fn sidecar(&self, sidecar: &Sidecar, volumes: Vec<Mounted>) -> Result<PodSpec, RuntimeError> {
        let name = format!("{}-{}", self.name, sidecar.name);
        let dir = self.dir.join("sidecars").join(&sidecar.name);
        std::fs::create_dir_all(dir.join("root")).map_err(io("creating", &dir))?;
        let log = self.log.with_file_name(format!("{name}.log"));
        Ok(PodSpec {
            name,
            run: self.run.clone(),
            dir,
            image: sidecar.image.clone(),
            argv: sidecar.command.iter().chain(&sidecar.args).cloned().collect(),
            image_entrypoint: sidecar.command.is_empty(),
            env: env_pairs(&sidecar.env),
            working_dir: sidecar.working_dir.clone(),
            volumes,
            log,
            ..PodSpec::default()
        })
    }

    /// The step's own directories, mounted at their real paths (in a
    /// container, or the local sandbox): the parent of each declared path,
    /// so a file the step creates or renames lands in the step directory,
    /// or the path itself where its parent is `/`; none inside another.
    pub(crate) fn own_dirs(&self) -> Vec<String> {
        let mut dirs: Vec<String> = self
            .paths
            .iter()
            .chain(self.files.iter().map(|(p, _)| p))
            .filter(|p| p.starts_with('/') && p.len() > 1 && self.volume_at(p).is_none())
            .map(|p| {
                let p = p.trim_end_matches('/');
                match Path::new(p).parent().and_then(Path::to_str) {
                    Some(parent) if parent != "/" => parent.to_string(),
                    _ => p.to_string(),
                }
            })
            .collect();
        dirs.sort();
        dirs.dedup();
        let mut outer: Vec<String> = Vec::new();
        for d in dirs {
            if !outer.iter().any(|o| d.strip_prefix(o.as_str()).is_some_and(|rest| rest.starts_with('/'))) {
                outer.push(d);
            }
        }
        outer
    }

    /// Makes the step's directories (`dirs`, in its root) and writes its
    /// files, through `text` (the mapping mode rewrites paths in them).
    /// Script files are executable, as Argo writes them.
    pub(crate) fn stage(&self, dirs: &[String], text: impl Fn(&str) -> String) -> Result<(), RuntimeError> {
        use std::os::unix::fs::PermissionsExt;
        for dir in dirs {
            let host = host_path(self, dir);
            std::fs::create_dir_all(&host).map_err(io("creating", &host))?;
        }
        for (path, contents) in &self.files {
            let host = host_path(self, path);
            if let Some(parent) = host.parent() {
                std::fs::create_dir_all(parent).map_err(io("creating", parent))?;
            }
            std::fs::write(&host, text(contents)).map_err(io("writing", &host))?;
            std::fs::set_permissions(&host, std::fs::Permissions::from_mode(0o755)).map_err(io("writing", &host))?;
        }
        Ok(())
    }
}

impl PodSpec {
    /// The step's path whose tree holds `path`: the volume's mount path, or `/`.
    pub(crate) fn tree_of<'a>(&'a self, path: &'a str) -> &'a str {
        self.volume_at(path).map_or("/", |(v, _)| v.path.as_str())
    }

    /// Whether `relative` (a path of the step, without its leading `/`) is
    /// the step's own in a rooted runtime: under one of its own directories
    /// or volumes, in its `/tmp`, or anywhere the host has no such top-level
    /// directory. Elsewhere the step sees the host's files.
    pub(crate) fn owns(&self, relative: &Path) -> bool {
        let path = Path::new("/").join(relative);
        let under = |dir: &str| path.starts_with(dir);
        let top = relative.components().next().map(|c| c.as_os_str().to_owned());
        match top {
            None => true,
            Some(top) if top == "tmp" || !Path::new("/").join(&top).exists() => true,
            Some(_) => {
                let sandboxed = sandbox_dirs(self).unwrap_or_default();
                self.own_dirs().iter().chain(&sandboxed).any(|d| under(d))
                    || self.volumes.iter().any(|v| under(&v.path))
            }
        }
    }

    /// The volume holding `path`, and where under it `path` is.
    fn volume_at<'a>(&'a self, path: &'a str) -> Option<(&'a Mounted, &'a str)> {
        self.volumes
            .iter()
            .filter_map(|v| {
                let rest = path.strip_prefix(v.path.as_str())?;
                (rest.is_empty() || rest.starts_with('/')).then(|| (v, rest.trim_start_matches('/')))
            })
            .max_by_key(|(v, _)| v.path.len())
    }
}

/// Where a path of the step lives on this host: in the volume mounted
/// there, else under its root, as every runtime lays a step out.
pub(crate) fn host_path(pod: &PodSpec, path: &str) -> PathBuf {
    match pod.volume_at(path) {
        Some((volume, "")) => volume.source.clone(),
        Some((volume, rest)) => volume.source.join(rest),
        None => pod.dir.join("root").join(path.trim_start_matches('/')),
    }
}

fn is_system_dir(dir: &str) -> bool {
    const SYSTEM: [&str; 19] = [
        "/bin", "/sbin", "/usr", "/etc", "/lib", "/lib64", "/dev", "/proc", "/sys", "/run", "/var", "/tmp", "/home",
        "/root", "/mnt", "/media", "/opt", "/srv", "/boot",
    ];
    dir == "/" || SYSTEM.iter().any(|s| dir == *s || dir.strip_prefix(s).is_some_and(|rest| rest.starts_with('/')))
}

/// Runs steps as processes of this host, each in its own directory
/// `<pod>/root`. How a step sees its paths is the runtime's [`Isolation`].
#[derive(Clone, Debug, Default)]
pub struct LocalRuntime {
    isolation: Isolation,
    /// Image → a program of this host that stands for its entrypoint, for
    /// containers that give no `command` (`--image-map` of the local runtime).
    entrypoints: BTreeMap<String, String>,
}

/// How a local step's declared paths reach its directory.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum Isolation {
    /// Linux namespaces: the step sees its declared paths at their real
    /// paths, a private `/tmp`, the rest of the host read-only, and ends
    /// with every process it started (see [`sandbox`]). Steps start as
    /// `<launcher> __sandbox SPEC`.
    Namespaces {
        /// The program that runs [`sandbox::main`] for `__sandbox`.
        launcher: PathBuf,
    },
    /// No namespaces (the host does not allow them): declared paths are
    /// rewritten in the command, arguments, environment and script to their
    /// place under the step's root, and the step shares the host's file system.
    #[default]
    PathMapping,
}

impl LocalRuntime {
    /// Steps run in the path-mapping mode.
    pub fn path_mapping() -> Self {
        LocalRuntime::default()
    }

    /// Steps run in namespaces through `launcher` when this host allows
    /// them; otherwise in the path-mapping mode, saying so once, with why.
    pub fn detect(launcher: PathBuf) -> Self {
        let probe = std::process::Command::new(&launcher)
            .args([sandbox::SANDBOX_ARG, "--probe"])
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .output();
        let reason = match probe {
            Ok(out) if out.status.success() => {
                return LocalRuntime { isolation: Isolation::Namespaces { launcher }, ..LocalRuntime::default() };
            }
            Ok(out) => String::from_utf8_lossy(&out.stderr).trim().to_string(),
            Err(e) => format!("starting {}: {e}", launcher.display()),
        };
        tracing::warn!(
            %reason,
            "this host does not let ferry make Linux namespaces: local steps run in the path-mapping mode \
             (declared paths rewritten in their commands, the host's file system shared; see docs/executor.md)"
        );
        LocalRuntime::path_mapping()
    }

    /// Runs a container of image `FROM` that gives no command with the
    /// program `TO` of this host (its `args` after), for each `FROM=TO`.
    pub fn with_entrypoints(mut self, image_map: &[String]) -> Result<Self, RuntimeError> {
        for (image, program) in parse_image_map(image_map)? {
            // A step runs in its own directory: the program is named by its absolute path.
            let absolute = std::path::absolute(&program)
                .map_err(|e| RuntimeError::Invalid(format!("--image-map {image}={program}: {e}")))?;
            if matches!(self.isolation, Isolation::Namespaces { .. }) && absolute.starts_with("/tmp") {
                return Err(RuntimeError::Invalid(format!(
                    "--image-map {image}={program}: the program is under /tmp, of which each sandboxed step has its own: put it elsewhere"
                )));
            }
            self.entrypoints.insert(image, absolute.to_string_lossy().into_owned());
        }
        Ok(self)
    }

    /// How steps see their paths.
    pub fn isolation(&self) -> &Isolation {
        &self.isolation
    }

    /// What the path-mapping mode maps: the declared paths, and the
    /// directories holding them, since a step names its paths through their
    /// directory too (`/out/a$i`); system and shared directories (/tmp,
    /// /home, ...) stay the host's, since host paths passed in parameters
    /// live there.
    fn mapped_paths(pod: &PodSpec) -> Vec<String> {
        let mut paths = pod.paths.clone();
        paths.extend(pod.volumes.iter().map(|v| v.path.clone()));
        paths.extend(pod.files.iter().map(|(p, _)| p.clone()));
        let parents: Vec<String> = paths
            .iter()
            .filter_map(|p| Path::new(p).parent().map(|d| d.to_string_lossy().into_owned()))
            .filter(|d| d.starts_with('/') && !is_system_dir(d))
            .collect();
        for d in parents {
            if !paths.contains(&d) {
                paths.push(d);
            }
        }
        paths.retain(|p| p.starts_with('/') && p.len() > 1);
        // Longest first, so /tmp/out/x wins over /tmp/out.
        paths.sort_by_key(|p| std::cmp::Reverse(p.len()));
        paths.dedup();
        paths
    }

    /// Rewrites every whole-path occurrence of a mapped path in `text`.
    fn map_text(pod: &PodSpec, mapped: &[String], text: &str) -> String {
        let mut out = String::with_capacity(text.len());
        let bytes = text.as_bytes();
        let mut i = 0;
        'scan: while i < text.len() {
            if bytes[i] == b'/' && (i == 0 || !is_path_byte(bytes[i - 1])) {
                for p in mapped {
                    let end = i + p.len();
                    if text[i..].starts_with(p.as_str()) && (end == text.len() || !is_name_byte(bytes[end])) {
                        out.push_str(&host_path(pod, p).to_string_lossy());
                        i = end;
                        continue 'scan;
                    }
                }
            }
            let ch = text[i..].chars().next().unwrap_or('\0');
            out.push(ch);
            i += ch.len_utf8().max(1);
        }
        out
    }

    /// The step's process, ready to spawn, in the runtime's isolation.
    fn command(&self, pod: &PodSpec) -> Result<tokio::process::Command, RuntimeError> {
        let root = host_path(pod, "/");
        let (mut command, env_text): (tokio::process::Command, TextMap<'_>) = match &self.isolation {
            Isolation::Namespaces { launcher } => {
                let spec = sandbox_spec(pod)?;
                pod.stage(&[], str::to_string)?;
                let file = pod.dir.join("sandbox.json");
                let text = serde_json::to_vec(&spec).map_err(|e| RuntimeError::Invalid(e.to_string()))?;
                std::fs::write(&file, text).map_err(io("writing", &file))?;
                let mut command = tokio::process::Command::new(launcher);
                command.arg(sandbox::SANDBOX_ARG).arg(&file).current_dir(&pod.dir).env("FERRY_ROOT", "/");
                // The sandbox kills the step when this pipe closes: when the
                // run drops it, or this process dies.
                command.stdin(std::process::Stdio::piped());
                (command, Box::new(str::to_string))
            }
            Isolation::PathMapping => {
                let mapped = Self::mapped_paths(pod);
                // An image has the parents of the paths it uses (/tmp at
                // least); the step's empty root does not.
                for path in &mapped {
                    if let Some(parent) = host_path(pod, path).parent() {
                        std::fs::create_dir_all(parent).map_err(io("creating", parent))?;
                    }
                }
                for volume in &pod.volumes {
                    let link = pod.dir.join("root").join(volume.path.trim_start_matches('/'));
                    if let Some(parent) = link.parent() {
                        std::fs::create_dir_all(parent).map_err(io("creating", parent))?;
                    }
                    let _ = std::fs::remove_file(&link);
                    std::os::unix::fs::symlink(&volume.source, &link).map_err(io("linking", &link))?;
                }
                let map = move |text: &str| Self::map_text(pod, &mapped, text);
                pod.stage(&[], &map)?;
                let cwd = if pod.working_dir.is_empty() { root.clone() } else { host_path(pod, &pod.working_dir) };
                std::fs::create_dir_all(&cwd).map_err(io("creating", &cwd))?;
                let argv: Vec<String> = pod.argv.iter().map(|a| map(a)).collect();
                let (program, args) =
                    argv.split_first().ok_or_else(|| RuntimeError::Invalid("the template has no command".into()))?;
                let mut command = tokio::process::Command::new(program);
                command.args(args).current_dir(&cwd).env("FERRY_ROOT", &root).stdin(std::process::Stdio::null());
                (command, Box::new(map))
            }
        };
        command
            // A container starts with its image's environment, never the
            // executor's: the drivers' secrets (FERRY_SECRET_*, cloud
            // credentials) stay with the drivers.
            .env_clear()
            .envs(STEP_ENV.iter().filter_map(|k| Some((k, std::env::var_os(k)?))))
            .envs(pod.env.iter().map(|(k, v)| (k, env_text(v))))
            .env("FERRY_POD_NAME", &pod.name)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .process_group(0)
            .kill_on_drop(true);
        Ok(command)
    }
}

/// How a runtime mode turns the text of a step's environment (the path-mapping mode rewrites paths).
type TextMap<'a> = Box<dyn Fn(&str) -> String + 'a>;

/// Where a local step's own directories would hide what the host needs to run it.
const HOST_SYSTEM_DIRS: [&str; 13] =
    ["/usr", "/etc", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32", "/dev", "/proc", "/sys", "/run", "/boot"];

/// The directories of the host a sandboxed step gets its own copy of: for
/// each declared path (and the working directory), the deepest directory
/// on the way that the host has (`/mnt` for `/mnt/out/part.json`, since the
/// host has no `/mnt/out`). The step then sees that directory's host entries
/// read-only and creates the rest itself, in its root, as in a container
/// where nothing of an output's path exists before the step makes it. Paths
/// that reach `/` or `/tmp` first are the step's own already. Outermost only.
fn sandbox_dirs(pod: &PodSpec) -> Result<Vec<String>, RuntimeError> {
    let declared = pod.paths.iter().chain(pod.files.iter().map(|(p, _)| p));
    // A declared path that is a system directory of the host, or inside
    // one, would hide the host's (the step's own copy of the deepest host
    // directory on its way replaces it): `/etc` as an output names the
    // image's files in Argo, which the local runtime does not have.
    for path in declared.clone().filter(|p| pod.volume_at(p).is_none()) {
        let path = path.trim_end_matches('/');
        let under = |s: &str| path == s || path.strip_prefix(s).is_some_and(|rest| rest.starts_with('/'));
        if let Some(system) = HOST_SYSTEM_DIRS.into_iter().find(|s| under(s)) {
            return Err(RuntimeError::Invalid(format!(
                "the step declares {path}, the host's {system} in the local runtime, which has no image to take it \
                 from: use a path elsewhere, or --runtime docker"
            )));
        }
    }
    let starts = declared
        .filter(|p| p.starts_with('/') && p.len() > 1 && pod.volume_at(p).is_none() && **p != pod.working_dir)
        .filter_map(|p| Path::new(p.trim_end_matches('/')).parent().map(Path::to_path_buf))
        .chain((!pod.working_dir.is_empty()).then(|| PathBuf::from(&pod.working_dir)));
    let mut dirs: Vec<String> = Vec::new();
    for start in starts {
        let Some(dir) = start.ancestors().find(|d| d.exists()).and_then(Path::to_str) else { continue };
        if dir == "/" || dir == "/tmp" || dir.starts_with("/tmp/") || start.as_os_str() == dir && dir == pod.working_dir
        {
            continue;
        }
        dirs.push(dir.to_string());
    }
    dirs.sort();
    dirs.dedup();
    let mut outer: Vec<String> = Vec::new();
    for d in dirs {
        if !outer.iter().any(|o| d.strip_prefix(o.as_str()).is_some_and(|rest| rest.starts_with('/'))) {
            outer.push(d);
        }
    }
    Ok(outer)
}

/// The sandbox of `pod`: its own copies of host directories (see
/// [`sandbox_dirs`]), then its volumes.
fn sandbox_spec(pod: &PodSpec) -> Result<sandbox::Spec, RuntimeError> {
    let mut mounts = Vec::new();
    for dir in sandbox_dirs(pod)? {
        let source = host_path(pod, &dir);
        std::fs::create_dir_all(&source).map_err(io("creating", &source))?;
        mounts.push(sandbox::Mount { target: dir, source, read_only: false, mirror: true });
    }
    mounts.extend(pod.volumes.iter().map(|v| sandbox::Mount {
        target: v.path.clone(),
        source: v.source.clone(),
        read_only: v.read_only,
        mirror: false,
    }));
    // Outer directories first, so an inner mount lands on the outer one.
    mounts.sort_by_key(|m| Path::new(&m.target).components().count());
    Ok(sandbox::Spec { root: host_path(pod, "/"), mounts, cwd: pod.working_dir.clone(), argv: pod.argv.clone() })
}

fn is_name_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.')
}

fn is_path_byte(b: u8) -> bool {
    is_name_byte(b) || b == b'/'
}

#[async_trait]
impl Runtime for LocalRuntime {
    fn host_path(&self, pod: &PodSpec, path: &str) -> PathBuf {
        host_path(pod, path)
    }

    fn rooted(&self) -> bool {
        matches!(self.isolation, Isolation::Namespaces { .. })
    }

    /// Loopback, once the pod's process has started (its record is written
    /// right after the start).
    async fn address(&self, pod: &PodSpec) -> Result<String, RuntimeError> {
        let started = std::time::Instant::now();
        while !pod.dir.join(PROCESS_RECORD).exists() {
            if started.elapsed() > Duration::from_secs(30) {
                return Err(RuntimeError::Refused(format!("the process of pod {} did not start in 30 s", pod.name)));
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        Ok("127.0.0.1".to_string())
    }

    async fn run(&self, pod: &PodSpec, cancel: CancellationToken) -> Result<PodExit, RuntimeError> {
        let mapped;
        let pod = match self.entrypoints.get(&pod.image).filter(|_| pod.image_entrypoint) {
            Some(program) => {
                let argv = std::iter::once(program.clone()).chain(pod.argv.iter().cloned()).collect();
                mapped = PodSpec { argv, image_entrypoint: false, ..pod.clone() };
                &mapped
            }
            None => pod,
        };
        if pod.image_entrypoint {
            return Err(RuntimeError::Invalid(format!(
                "container.command is empty; the local runtime cannot know the entrypoint of image {:?}, so give the command (or use --runtime docker)",
                pod.image
            )));
        }
        let program = pod.argv.first().cloned().unwrap_or_default();
        let mut command = self.command(pod)?;
        let log =
            std::fs::OpenOptions::new().create(true).append(true).open(&pod.log).map_err(io("opening", &pod.log))?;
        let log = Arc::new(Mutex::new(log));
        let mut child = command.spawn().map_err(process(format!("starting {program:?}")))?;
        // Held open while the step runs: see `command`.
        let _lifeline = child.stdin.take();
        let stdout = child.stdout.take().map(|s| tokio::spawn(copy_output(s, log.clone(), MAX_RESULT_BYTES)));
        let stderr = child.stderr.take().map(|s| tokio::spawn(copy_output(s, log.clone(), 64 << 10)));
        let pid = child.id().and_then(|p| i32::try_from(p).ok());
        // Recorded before the step can do much, so a resume after this
        // process is killed finds the group (see `stop_earlier_steps`).
        let record = pod.dir.join(PROCESS_RECORD);
        if let Some(pid) = pid {
            let line = format!("{pid} {} {}\n", start_time(pid).unwrap_or(0), boot_id());
            if let Err(e) = std::fs::write(&record, line) {
                let _ = stop(Some(pid), &mut child).await;
                return Err(io("recording the step's process in", &record)(e));
            }
        }
        let deadline = until_deadline(pod.deadline);
        let mut exit = PodExit::default();
        let status = tokio::select! {
            status = child.wait() => status,
            () = deadline => { exit.timed_out = true; stop(pid, &mut child).await }
            () = cancel.cancelled() => { exit.cancelled = true; stop(pid, &mut child).await }
        }
        .map_err(process(format!("waiting for {program:?}")))?;
        // A container ends with its main process; so do the step's
        // background processes, which could otherwise still write its
        // outputs while they are saved.
        if let Some(pid) = pid {
            let _ = nix::sys::signal::killpg(nix::unistd::Pid::from_raw(pid), nix::sys::signal::Signal::SIGKILL);
        }
        let _ = std::fs::remove_file(&record);
        use std::os::unix::process::ExitStatusExt;
        exit.code = status.code();
        exit.signal = status.signal();
        if let Some(task) = stdout {
            exit.stdout = task.await.unwrap_or_default();
        }
        let stderr = match stderr {
            Some(task) => task.await.unwrap_or_default(),
            None => String::new(),
        };
        if exit.code == Some(sandbox::SETUP_FAILED)
            && !exit.timed_out
            && !exit.cancelled
            && let Some(why) = stderr.lines().find_map(|l| l.strip_prefix("ferry sandbox: "))
        {
            return Err(RuntimeError::Refused(format!("the step's sandbox could not be set up: {why}")));
        }
        Ok(exit)
    }
}

/// What a local step inherits from `ferry`'s environment: enough to find
/// programs and behave like the user's shell, nothing that could be a
/// credential. Everything else comes from the template's `env`.
pub(crate) const STEP_ENV: [&str; 7] = ["PATH", "HOME", "USER", "LANG", "LC_ALL", "TZ", "TERM"];

/// The file in a pod's directory naming its running process group:
/// `<pgid> <start time of the leader in clock ticks since boot> <boot id>`.
const PROCESS_RECORD: &str = "process";

/// This boot's id: process numbers and start times mean nothing across a
/// reboot, so a record from another boot names no process of ours.
pub(crate) fn boot_id() -> String {
    std::fs::read_to_string("/proc/sys/kernel/random/boot_id").map(|id| id.trim().to_string()).unwrap_or_default()
}

/// When `pid` started (field 22 of /proc/<pid>/stat), telling a live
/// process from a later one that reuses its number.
pub(crate) fn start_time(pid: i32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may hold spaces and parentheses.
    stat.rsplit_once(')')?.1.split_whitespace().nth(19)?.parse().ok()
}

/// Whether any process of group `pgid` is still alive (zombies are not: an
/// orphan's zombie waits for a reaper, but writes nothing).
fn group_alive(pgid: i32) -> bool {
    let Ok(dir) = std::fs::read_dir("/proc") else { return false };
    dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok()).any(|pid| {
        std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
            let fields: Vec<&str> =
                stat.rsplit_once(')').map(|(_, r)| r.split_whitespace().collect()).unwrap_or_default();
            fields.first().is_some_and(|state| *state != "Z") && fields.get(2) == Some(&pgid.to_string().as_str())
        })
    })
}

/// Kills the process groups recorded under `<run_dir>/pods/*/process`.
fn stop_recorded_groups(run_dir: &Path) -> Result<(), RuntimeError> {
    use nix::sys::signal::{Signal, killpg};
    let Ok(pods) = std::fs::read_dir(run_dir.join("pods")) else { return Ok(()) };
    for pod in pods.filter_map(|e| e.ok()) {
        let record = pod.path().join(PROCESS_RECORD);
        let Ok(text) = std::fs::read_to_string(&record) else { continue };
        let mut parts = text.split_whitespace();
        let mut number = || parts.next().and_then(|p| p.parse::<u64>().ok());
        let (Some(pgid), Some(started)) = (number(), number()) else { continue };
        let recorded_boot = parts.next().unwrap_or_default();
        let Ok(pgid) = i32::try_from(pgid) else { continue };
        // Never kill on a guess: without the leader's start time, or from
        // another boot, the number may belong to anyone by now.
        let ours = started != 0 && !recorded_boot.is_empty() && recorded_boot == boot_id();
        // A leader with another start time is a new process that got the
        // number after the whole group was gone (a number stays taken
        // while any member of its group lives); no leader at all means
        // members may remain, and the group id is still theirs.
        let reused = start_time(pgid).is_some_and(|now| now != started);
        if ours && !reused && group_alive(pgid) {
            tracing::warn!(pgid, pod = %pod.path().display(), "stopping a step an earlier ferry process left running");
            let _ = killpg(nix::unistd::Pid::from_raw(pgid), Signal::SIGKILL);
            let began = std::time::Instant::now();
            while group_alive(pgid) {
                if began.elapsed() > Duration::from_secs(10) {
                    return Err(RuntimeError::Refused(format!(
                        "process group {pgid} of an earlier attempt of step {} survives SIGKILL; not re-running it beside that process",
                        pod.file_name().to_string_lossy()
                    )));
                }
                std::thread::sleep(Duration::from_millis(10));
            }
        }
        std::fs::remove_file(&record).map_err(io("removing", &record))?;
    }
    Ok(())
}

/// Stops a step's whole process group: SIGTERM, then SIGKILL after 2 s.
async fn stop(pid: Option<i32>, child: &mut tokio::process::Child) -> std::io::Result<std::process::ExitStatus> {
    use nix::sys::signal::{Signal, killpg};
    if let Some(pid) = pid {
        let _ = killpg(nix::unistd::Pid::from_raw(pid), Signal::SIGTERM);
    }
    match tokio::time::timeout(Duration::from_secs(2), child.wait()).await {
        Ok(status) => status,
        Err(_) => {
            if let Some(pid) = pid {
                let _ = killpg(nix::unistd::Pid::from_raw(pid), Signal::SIGKILL);
            }
            child.wait().await
        }
    }
}

/// Copies a stream into the log, keeping the first `keep` bytes as text.
pub(crate) async fn copy_output(
    mut from: impl tokio::io::AsyncRead + Unpin,
    log: Arc<Mutex<std::fs::File>>,
    keep: usize,
) -> String {
    let mut kept = Vec::new();
    let mut buf = vec![0u8; 16 << 10];
    loop {
        match from.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                let _ = log.lock().write_all(&buf[..n]);
                let room = keep.saturating_sub(kept.len());
                kept.extend_from_slice(&buf[..n.min(room)]);
            }
        }
    }
    String::from_utf8_lossy(&kept).into_owned()
}

/// The pod directory layout shared by runtimes. A pod that already has a
/// directory was started by an earlier `ferry` process of this run (a
/// resumed run): its attempt gets a fresh directory, `<pod>.2`, `<pod>.3`,
/// so it never writes into what the earlier attempt left.
/// `--image-map` entries, `FROM=TO`, by `FROM`.
pub(crate) fn parse_image_map(entries: &[String]) -> Result<BTreeMap<String, String>, RuntimeError> {
    let mut map = BTreeMap::new();
    for entry in entries {
        let (from, to) = entry.split_once('=').filter(|(f, t)| !f.is_empty() && !t.is_empty()).ok_or_else(|| {
            RuntimeError::Invalid(format!("--image-map {entry:?}: expected TEMPLATE_IMAGE=LOCAL_IMAGE"))
        })?;
        map.insert(from.to_string(), to.to_string());
    }
    Ok(map)
}

/// A container's `env` as the process's environment.
fn env_pairs(vars: &[EnvVar]) -> Vec<(String, String)> {
    vars.iter().map(|e| (e.name.clone(), e.value.clone())).collect()
}

pub(crate) fn pod_dir(run_dir: &Path, pod_name: &str) -> PathBuf {
    let first = run_dir.join("pods").join(pod_name);
    (1u32..)
        .map(|n| if n == 1 { first.clone() } else { first.with_file_name(format!("{pod_name}.{n}")) })
        .find(|d| std::fs::symlink_metadata(d).is_err())
        .expect("some attempt number is free")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A resume kills a recorded group only when the record proves it is
    /// ours: this boot, and the leader's start time. Anything else may be
    /// another program's group by now.
    #[test]
    fn only_groups_recorded_in_this_boot_are_killed() {
        use std::os::unix::process::CommandExt;
        let run = tempfile::tempdir().unwrap();
        let pod = run.path().join("pods/p");
        std::fs::create_dir_all(&pod).unwrap();
        let mut child = std::process::Command::new("sleep").arg("30").process_group(0).spawn().unwrap();
        let pid = child.id() as i32;
        let started = start_time(pid).unwrap();
        for (record, killed) in [
            (format!("{pid} {started} another-boot\n"), false),
            (format!("{pid} 0 {}\n", boot_id()), false),
            (format!("{pid} {started}\n"), false),
            (format!("{pid} {started} {}\n", boot_id()), true),
        ] {
            std::fs::write(pod.join(PROCESS_RECORD), &record).unwrap();
            stop_recorded_groups(run.path()).unwrap();
            let exited = child.try_wait().unwrap().is_some();
            assert_eq!(exited, killed, "record {record:?}");
            assert!(!pod.join(PROCESS_RECORD).exists(), "the record is consumed");
        }
    }

    fn pod() -> PodSpec {
        PodSpec {
            dir: PathBuf::from("/r/pods/p"),
            paths: vec!["/tmp/out".into(), "/tmp/out/x".into(), "/data".into()],
            ..Default::default()
        }
    }

    #[test]
    fn a_declared_host_system_directory_is_refused_and_others_get_their_own_copy() {
        let pod =
            |paths: &[&str]| PodSpec { paths: paths.iter().map(|p| p.to_string()).collect(), ..Default::default() };
        for refused in [&["/etc"][..], &["/tmp/a", "/usr/local/out/"], &["/etc/app/conf"], &["/dev/shm/x"]] {
            let err = sandbox_dirs(&pod(refused)).unwrap_err().to_string();
            assert!(err.contains("the host's /") && err.contains("--runtime docker"), "{refused:?}: {err}");
        }
        // A path under /tmp needs no copy (the step's /tmp is its own); one
        // at the top gets none of the host's directories; one under /opt a
        // copy of the deepest host directory on its way.
        let dirs = sandbox_dirs(&pod(&["/tmp/x/y", "/result.txt", "/opt/ferry-test-out/a"])).unwrap();
        assert_eq!(dirs, ["/opt"]);
    }

    #[test]
    fn only_whole_declared_paths_are_mapped() {
        let p = pod();
        let mapped = LocalRuntime::mapped_paths(&p);
        assert_eq!(
            LocalRuntime::map_text(&p, &mapped, "cat /tmp/out > /data"),
            "cat /r/pods/p/root/tmp/out > /r/pods/p/root/data"
        );
        assert_eq!(LocalRuntime::map_text(&p, &mapped, "ls /tmp/out/x/y"), "ls /r/pods/p/root/tmp/out/x/y");
        assert_eq!(
            LocalRuntime::map_text(&p, &mapped, "ls /tmp/output /database /x/data"),
            "ls /tmp/output /database /x/data"
        );
        assert_eq!(LocalRuntime::map_text(&p, &mapped, "open('/data/f.txt')"), "open('/r/pods/p/root/data/f.txt')");
        assert_eq!(LocalRuntime::map_text(&p, &mapped, "é /data"), "é /r/pods/p/root/data");
    }

    #[tokio::test]
    async fn runs_captures_and_times_out() {
        let dir = tempfile::tempdir().unwrap();
        let mut p = PodSpec {
            name: "p".into(),
            dir: dir.path().to_path_buf(),
            argv: vec!["sh".into(), "-c".into(), "echo hello; echo oops >&2; cat /in/f; exit 3".into()],
            files: vec![("/in/f".into(), "file\n".into())],
            paths: vec!["/in/f".into()],
            log: dir.path().join("log"),
            ..Default::default()
        };
        let exit = LocalRuntime::path_mapping().run(&p, CancellationToken::new()).await.unwrap();
        assert_eq!(exit.code, Some(3));
        assert_eq!(exit.stdout, "hello\nfile\n");
        let log = std::fs::read_to_string(dir.path().join("log")).unwrap();
        assert!(log.contains("oops") && log.contains("hello"), "{log}");
        p.argv = vec!["sh".into(), "-c".into(), "sleep 30".into()];
        p.deadline = Some(Duration::from_millis(200));
        let exit = LocalRuntime::path_mapping().run(&p, CancellationToken::new()).await.unwrap();
        assert!(exit.timed_out && exit.code.is_none(), "{exit:?}");
    }
}
