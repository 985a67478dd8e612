//! What a case works with: a connected client, keys unique to the case, local
//! scratch space and, in managed mode, the driver process itself.

use crate::profile::Profile;
use anyhow::{Context as _, Result, bail, ensure};
use bytes::Bytes;
use ferry_sdk::ErrorKind;
use ferry_sdk::client::{DriverClient, Location};
use futures::StreamExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Shared by every case of one run.
pub struct RunContext {
    /// The profile under test.
    pub profile: Profile,
    /// Connection to the driver under test.
    pub client: DriverClient,
    /// Random id separating this run's keys and files from any other run's.
    pub run_id: String,
    /// Local scratch directory shared with the driver (Load and Save pass paths).
    pub work: PathBuf,
    /// `plugin.configuration` with `{sharedDir}` filled in.
    pub configuration: String,
    /// The isolated second configuration, if the profile has one.
    pub alt_configuration: Option<String>,
    /// What GetCapabilities answered.
    pub supports_save_stream: bool,
    /// The managed driver process, if the runner started it.
    pub driver: Option<Arc<std::sync::Mutex<ManagedDriver>>>,
    /// Seed of every payload, printed so failures can be replayed.
    pub seed: u64,
    /// Open descriptors of the managed driver right after it became ready.
    pub baseline_fds: Option<usize>,
    /// What the cases observed about the driver (the capability profile).
    pub observed: std::sync::Mutex<serde_json::Map<String, serde_json::Value>>,
}

/// One case's view of the run.
#[derive(Clone)]
pub struct Cx {
    /// The run.
    pub run: Arc<RunContext>,
    /// The case ID, which keys and paths are scoped by.
    pub id: &'static str,
}

impl Cx {
    /// The full key for `name` inside this case's namespace.
    pub fn key(&self, name: &str) -> String {
        format!("{}{}/{}/{}", self.run.profile.plugin.key_prefix, self.run.run_id, self.id, name)
    }

    /// Location of `name` under the main configuration.
    pub fn at(&self, name: &str) -> Location {
        Location::new(&self.run.profile.driver.name, &self.run.configuration, self.key(name))
    }

    /// A location with an arbitrary raw key (for malformed-key cases).
    pub fn raw_at(&self, key: &str) -> Location {
        Location::new(&self.run.profile.driver.name, &self.run.configuration, key)
    }

    /// A location with another configuration string.
    pub fn with_config(&self, configuration: &str, name: &str) -> Location {
        Location::new(&self.run.profile.driver.name, configuration, self.key(name))
    }

    /// Runs a profile hook for the object `name`; fails if the command fails.
    pub fn hook(&self, argv: &[String], name: &str) -> Result<()> {
        let (program, args) = argv.split_first().context("empty hook command")?;
        let status = Command::new(program)
            .args(args)
            .env("FERRY_CONFORMANCE_KEY", self.key(name))
            .env("FERRY_CONFORMANCE_SHARED_DIR", &self.run.work)
            .status()
            .with_context(|| format!("running hook {argv:?}"))?;
        ensure!(status.success(), "hook {argv:?} failed: {status}");
        Ok(())
    }

    /// Records an observation in the capability profile.
    pub fn observe(&self, what: &str, value: impl Into<serde_json::Value>) {
        self.run.observed.lock().expect("observations").insert(what.to_string(), value.into());
    }

    /// The client.
    pub fn client(&self) -> &DriverClient {
        &self.run.client
    }

    /// A local path for this case; its parent exists, the path itself does not.
    pub fn path(&self, name: &str) -> PathBuf {
        let p = self.run.work.join(self.id).join(name);
        std::fs::create_dir_all(p.parent().expect("has parent")).expect("creating scratch directory");
        p
    }

    /// Reproducible pseudo-random bytes (xorshift from the run's seed).
    pub fn payload(&self, len: usize, salt: u64) -> Vec<u8> {
        let mut state = self.run.seed ^ salt.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ 0x2545_F491_4F6C_DD1D;
        let mut out = Vec::with_capacity(len);
        while out.len() < len {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            out.extend_from_slice(&state.to_le_bytes());
        }
        out.truncate(len);
        out
    }

    /// Writes `data` to a local file and saves it under `name`.
    pub async fn save_bytes(&self, name: &str, data: &[u8]) -> Result<()> {
        let src = self.path(&format!("src/{name}"));
        std::fs::write(&src, data)?;
        self.client().save(&self.at(name), &src).await.with_context(|| format!("Save of {}", self.key(name)))
    }

    /// Loads `name` into a fresh local file and returns its bytes.
    pub async fn load_bytes(&self, name: &str) -> Result<Vec<u8>> {
        let dst = self.path(&format!("load/{name}.tmp"));
        let _ = std::fs::remove_file(&dst);
        self.client().load(&self.at(name), &dst).await.with_context(|| format!("Load of {}", self.key(name)))?;
        ensure!(dst.is_file(), "Load succeeded but {} is not a regular file", dst.display());
        Ok(std::fs::read(&dst)?)
    }

    /// The bytes OpenStream returns for `location`.
    pub async fn stream_location(&self, location: &Location) -> Result<Vec<u8>> {
        let mut stream = self.client().open_stream(location).await?;
        let mut out = Vec::new();
        while let Some(chunk) = stream.next().await {
            out.extend_from_slice(&chunk?);
        }
        Ok(out)
    }

    /// The bytes OpenStream returns for `name`.
    pub async fn stream_bytes(&self, name: &str) -> Result<Vec<u8>> {
        self.stream_location(&self.at(name)).await.with_context(|| format!("OpenStream of {}", self.key(name)))
    }

    /// Saves `data` under `name`, then checks it through both Load and OpenStream.
    pub async fn round_trip(&self, name: &str, data: &[u8]) -> Result<()> {
        self.save_bytes(name, data).await?;
        same(&self.load_bytes(name).await?, data, "Load")?;
        same(&self.stream_bytes(name).await?, data, "OpenStream")
    }

    /// Saves a local tree built from `(relative path, bytes)` under `name`.
    pub async fn save_tree(&self, name: &str, files: &[(&str, Vec<u8>)]) -> Result<PathBuf> {
        let root = self.path(&format!("tree/{name}"));
        for (rel, data) in files {
            let p = root.join(rel);
            std::fs::create_dir_all(p.parent().expect("parent"))?;
            std::fs::write(p, data)?;
        }
        self.client()
            .save(&self.at(name), &root)
            .await
            .with_context(|| format!("Save of directory {}", self.key(name)))?;
        Ok(root)
    }

    /// Asserts `result` failed cleanly: an error with a non-empty message.
    pub fn failed_cleanly<T>(&self, what: &str, result: ferry_sdk::Result<T>) -> Result<ferry_sdk::Error> {
        match result {
            Ok(_) => bail!("{what} succeeded; it must fail"),
            Err(e) if e.message().trim().is_empty() => bail!("{what} failed without a message"),
            Err(e) => Ok(e),
        }
    }

    /// Asserts the driver still answers.
    pub async fn still_serving(&self) -> Result<()> {
        let mut raw = self.client().raw();
        match raw.get_capabilities(ferry_sdk::pb::GetCapabilitiesRequest {}).await {
            Ok(_) => Ok(()),
            Err(s) if s.code() == tonic::Code::Unimplemented => Ok(()),
            Err(s) => bail!("driver no longer answers: {s}"),
        }
    }

    /// Whether `err` says the key was not found (by any channel).
    pub fn is_not_found(err: &ferry_sdk::Error) -> bool {
        err.kind() == ErrorKind::NotFound
    }

    /// Streams of owned chunks for SaveStream.
    pub fn chunks(data: &[u8], size: usize) -> ferry_sdk::ByteStream {
        let parts: Vec<ferry_sdk::Result<Bytes>> =
            data.chunks(size.max(1)).map(|c| Ok(Bytes::copy_from_slice(c))).collect();
        futures::stream::iter(parts).boxed()
    }
}

/// Compares bytes by length and SHA-256, reporting both on mismatch.
pub fn same(got: &[u8], want: &[u8], via: &str) -> Result<()> {
    use sha2::Digest;
    if got == want {
        return Ok(());
    }
    let h = |b: &[u8]| format!("{:x}", sha2::Sha256::digest(b));
    bail!(
        "{via}: got {} bytes (sha256 {}), want {} bytes (sha256 {})",
        got.len(),
        &h(got)[..16],
        want.len(),
        &h(want)[..16]
    )
}

/// A driver process the runner started: `command… <socket>`, or a container
/// of the profile's image with the socket path as its only argument.
pub struct ManagedDriver {
    /// The program itself, or the attached `docker run` that exits with the container's code.
    child: Child,
    /// The container's name, when the driver runs in one.
    container: Option<String>,
    /// The driver's process id on this host, found once the container runs.
    pid: std::sync::OnceLock<u32>,
    /// Where the driver listens.
    pub socket: PathBuf,
    /// Where its stderr goes (scanned for secrets).
    pub stderr_path: PathBuf,
}

impl ManagedDriver {
    /// Starts the profile's command with `socket` appended, stderr to `stderr_path`.
    /// `shared` is the directory the driver and the runner exchange files in.
    pub fn start(profile: &Profile, shared: &Path, socket: &Path, stderr_path: &Path) -> Result<ManagedDriver> {
        Self::start_with_args(profile, shared, &[socket.to_string_lossy().into_owned()], socket, stderr_path)
    }

    /// Starts the profile's command with exactly `args` appended.
    pub fn start_with_args(
        profile: &Profile,
        shared: &Path,
        args: &[String],
        socket: &Path,
        stderr_path: &Path,
    ) -> Result<ManagedDriver> {
        let launch = profile.launch.as_ref().context("managed mode needs launch.command in the profile")?;
        let stderr = std::fs::OpenOptions::new().create(true).append(true).open(stderr_path)?;
        let (mut command, container) = match &launch.image {
            None => {
                let mut command = Command::new(&launch.command[0]);
                command.args(&launch.command[1..]).envs(profile.launch_env()?);
                (command, None)
            }
            Some(image) => {
                let name = format!("ferry-conformance-{}", uuid::Uuid::new_v4().simple());
                let mut command = Command::new("docker");
                // Host networking: the profile's configuration names servers on 127.0.0.1.
                command.args(["run", "--rm", "--name", &name, "--network", "host", "--stop-timeout", "30"]);
                command.args(["-v", &crate::container::shared_volume(shared)?]);
                for (k, v) in profile.launch_env()? {
                    command.args(["-e", &format!("{k}={v}")]);
                }
                command.arg(image);
                (command, Some(name))
            }
        };
        let child = command
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::from(stderr.try_clone()?))
            .stderr(Stdio::from(stderr))
            .spawn()
            .with_context(|| format!("starting {:?}", launch.image.as_ref().map_or(&launch.command[0], |i| i)))?;
        let pid = std::sync::OnceLock::new();
        if container.is_none() {
            let _ = pid.set(child.id());
        }
        Ok(ManagedDriver {
            child,
            container,
            pid,
            socket: socket.to_path_buf(),
            stderr_path: stderr_path.to_path_buf(),
        })
    }

    /// The driver's process id on this host (for a container, its entrypoint's).
    pub fn pid(&self) -> Result<u32> {
        if self.container.is_some() && !crate::container::sees_host_pids()? {
            bail!(
                "the driver container's process is not visible from the suite's container: \
                 run ferry/conformance with --pid host to measure its memory and descriptors"
            );
        }
        self.running_pid()
    }

    /// The process id the engine or the spawn reported; for a container, once it runs.
    fn running_pid(&self) -> Result<u32> {
        if let Some(pid) = self.pid.get() {
            return Ok(*pid);
        }
        let name = self.container.as_deref().expect("a process's pid is set at start");
        let started = Instant::now();
        loop {
            let out = Command::new("docker").args(["inspect", "-f", "{{.State.Pid}}", name]).output()?;
            let pid: u32 = String::from_utf8_lossy(&out.stdout).trim().parse().unwrap_or(0);
            if pid != 0 {
                return Ok(*self.pid.get_or_init(|| pid));
            }
            ensure!(started.elapsed() < Duration::from_secs(30), "container {name} is not running after 30 s");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// `VmHWM` (peak RSS) in KiB.
    pub fn peak_rss_kib(&self) -> Result<u64> {
        proc_status_kib(self.pid()?, "VmHWM:")
    }

    /// Resets the peak-RSS high-water mark, so the next reading covers only
    /// what happens from now on.
    pub fn reset_peak_rss(&self) -> Result<()> {
        std::fs::write(format!("/proc/{}/clear_refs", self.pid()?), "5").context("resetting VmHWM")?;
        Ok(())
    }

    /// Open file descriptors.
    pub fn open_fds(&self) -> Result<usize> {
        Ok(std::fs::read_dir(format!("/proc/{}/fd", self.pid()?))?.count())
    }

    /// Whether the process has exited, and how.
    pub fn try_exit(&mut self) -> Result<Option<std::process::ExitStatus>> {
        Ok(self.child.try_wait()?)
    }

    /// Sends SIGTERM and waits up to `grace` for the exit. Returns the exit
    /// code (None if killed by a signal) and how long it took.
    pub fn terminate(&mut self, grace: Duration) -> Result<(Option<i32>, Duration)> {
        let started = Instant::now();
        // Straight to the driver's process, as the kubelet's SIGTERM reaches a
        // plugin container's entrypoint: the engine's kill signals exactly that,
        // and needs no sight of the host's processes.
        let pid = self.running_pid()?;
        match &self.container {
            Some(name) => {
                let out = Command::new("docker").args(["kill", "--signal", "TERM", name]).output()?;
                // A driver that already exited has nothing to be signalled.
                ensure!(
                    out.status.success() || self.child.try_wait()?.is_some(),
                    "docker kill --signal TERM {name}: {}",
                    String::from_utf8_lossy(&out.stderr).trim()
                );
            }
            None => {
                let pid = rustix::process::Pid::from_raw(pid as i32).context("a driver process id is not 0")?;
                rustix::process::kill_process(pid, rustix::process::Signal::TERM).context("sending SIGTERM")?;
            }
        }
        while started.elapsed() < grace {
            if let Some(status) = self.child.try_wait()? {
                return Ok((status.code(), started.elapsed()));
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        self.kill();
        bail!("driver did not exit within {grace:?} of SIGTERM (killed)")
    }

    /// Kills the driver; for a container, the container itself, not only the attached client.
    fn kill(&mut self) {
        if let Some(name) = &self.container {
            let _ =
                Command::new("docker").args(["rm", "-f", name]).stdout(Stdio::null()).stderr(Stdio::null()).status();
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for ManagedDriver {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            self.kill();
        }
    }
}

fn proc_status_kib(pid: u32, field: &str) -> Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let line = status.lines().find(|l| l.starts_with(field)).with_context(|| format!("{field} missing"))?;
    Ok(line.split_whitespace().nth(1).context("malformed /proc status")?.parse()?)
}
