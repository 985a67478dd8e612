//! The local runtime's sandbox: a step runs in its own mount and PID
//! namespaces (and a user namespace when `ferry` is not root), so it sees
//! the file system a container would give it without a single path of its
//! command being rewritten:
//!
//! - its own root, `<pod>/root`: any path that is not the host's (`/out`,
//!   `/argo/staging/script`) is the step's own, and so is a private `/tmp`;
//! - every other top-level directory of the host, read-only;
//! - its declared directories (where its artifacts, parameter files and
//!   volumes live) mounted at their real absolute paths, writable;
//! - a fresh `/proc`, in a PID namespace whose first process is a small
//!   init: when the step's main process ends, or `ferry` dies (even by
//!   SIGKILL), every process the step started ends with it.
//!
//! `ferry __sandbox SPEC` runs [`main`]: the runtime writes the `Spec`
//! into the pod directory and starts the step through it. Three processes
//! take part, each started as a program (no fork in this code, so no
//! unsafe): the supervisor (makes the namespaces, relays the exit status,
//! and kills the namespace when its stdin, a pipe from `ferry`, closes),
//! the namespace's init (`ferry __sandbox --init SPEC`, PID 1: builds the
//! file system, starts the step, reaps), and the step.
//!
//! A step killed by a signal exits with 128 + the signal's number, as a
//! container runtime reports it.

use nix::mount::{MntFlags, MsFlags, mount, umount2};
use nix::sched::{CloneFlags, unshare};
use nix::sys::signal::{SigSet, Signal};
use nix::sys::wait::{WaitStatus, waitpid};
use nix::unistd::{Pid, chdir, getgid, getuid, pivot_root};
use serde::{Deserialize, Serialize};
use std::io::Read;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Component, Path, PathBuf};

/// The argument that makes the `ferry` binary run [`main`].
pub const SANDBOX_ARG: &str = "__sandbox";

/// The exit code of a sandbox that could not be set up (nothing of the step ran).
pub const SETUP_FAILED: i32 = 125;

/// What the sandbox builds, written by the runtime into the pod directory.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub(crate) struct Spec {
    /// The step's own root directory.
    pub root: PathBuf,
    /// Directories placed at their real paths, outermost first.
    pub mounts: Vec<Mount>,
    /// The working directory, inside the sandbox.
    pub cwd: String,
    /// The step's command and arguments, unchanged.
    pub argv: Vec<String>,
}

/// A directory of this host mounted at a path of the step.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Mount {
    /// The absolute path the step sees.
    pub target: String,
    /// The directory on this host.
    pub source: PathBuf,
    /// Mounted read-only.
    pub read_only: bool,
    /// A copy of the host directory at `target`: the host's entries are
    /// mounted read-only into `source` (where it has none of that name)
    /// before it is mounted, and removed from it when the step ends.
    #[serde(default)]
    pub mirror: bool,
}

/// Why the sandbox could not be set up.
#[derive(Debug, thiserror::Error)]
#[error("{action}: {source}")]
struct SetupError {
    action: String,
    #[source]
    source: std::io::Error,
}

type Setup<T> = Result<T, SetupError>;

fn failed<E: Into<std::io::Error>>(action: impl std::fmt::Display) -> impl FnOnce(E) -> SetupError {
    let action = action.to_string();
    move |e| SetupError { action, source: e.into() }
}

/// The entry point of `ferry __sandbox` (`SPEC`, `--init SPEC` or
/// `--probe`). Call it before any thread starts: a process becomes a
/// namespace's member only while it is single-threaded.
pub fn main(args: &[String]) -> i32 {
    let outcome = match args {
        [flag] if flag == "--probe" => probe(),
        [flag, probe] if flag == "--init" && probe == "--probe" => mount_proc().map(|()| 0),
        [flag, spec] if flag == "--init" => read_spec(Path::new(spec)).and_then(|spec| init(&spec)),
        [spec] => supervise(Path::new(spec)),
        _ => Err(SetupError {
            action: format!("usage: ferry {SANDBOX_ARG} SPEC"),
            source: std::io::ErrorKind::InvalidInput.into(),
        }),
    };
    match outcome {
        Ok(code) => code,
        Err(e) => {
            eprintln!("ferry sandbox: {e}");
            SETUP_FAILED
        }
    }
}

fn read_spec(path: &Path) -> Setup<Spec> {
    let text = std::fs::read(path).map_err(failed(format!("reading {}", path.display())))?;
    serde_json::from_slice(&text).map_err(failed(format!("reading {}", path.display())))
}

/// Whether this host lets `ferry` make the namespaces: a sandbox of
/// nothing, whose init only mounts its /proc.
fn probe() -> Setup<i32> {
    enter_namespaces()?;
    let status = this_program()?
        .args([SANDBOX_ARG, "--init", "--probe"])
        .status()
        .map_err(failed("starting the sandbox's init"))?;
    Ok(exit_code(status))
}

fn this_program() -> Setup<std::process::Command> {
    let exe = std::env::current_exe().map_err(failed("finding this program"))?;
    Ok(std::process::Command::new(exe))
}

/// New user (when not root), mount and PID namespaces, with mounts private
/// so nothing done here reaches the host. The PID namespace is the next
/// child's: it is that namespace's init.
fn enter_namespaces() -> Setup<()> {
    let (uid, gid) = (getuid(), getgid());
    if !uid.is_root() {
        unshare(CloneFlags::CLONE_NEWUSER).map_err(failed("creating a user namespace"))?;
        // The step keeps its own user and group: files it writes are the user's.
        for (file, line) in [
            ("setgroups", "deny".to_string()),
            ("uid_map", format!("{uid} {uid} 1")),
            ("gid_map", format!("{gid} {gid} 1")),
        ] {
            let path = format!("/proc/self/{file}");
            std::fs::write(&path, line).map_err(failed(format!("writing {path}")))?;
        }
    }
    unshare(CloneFlags::CLONE_NEWNS | CloneFlags::CLONE_NEWPID).map_err(failed("creating mount and PID namespaces"))?;
    mount(None::<&str>, "/", None::<&str>, MsFlags::MS_REC | MsFlags::MS_PRIVATE, None::<&str>)
        .map_err(failed("making mounts private"))
}

/// The supervisor: makes the namespaces, starts their init, and exits as
/// the step did.
fn supervise(spec_file: &Path) -> Setup<i32> {
    // `ferry` stops a step by signalling its process group, which the step
    // gets; the supervisor stays to report how it ended. Blocked, not
    // ignored: children start with no signal blocked.
    let stop_signals = stop_signals();
    stop_signals.thread_block().map_err(failed("blocking signals"))?;
    enter_namespaces()?;
    // The init watches stdin: the supervisor cannot start a thread once
    // it has made a PID namespace.
    let mut init = this_program()?
        .arg(SANDBOX_ARG)
        .arg("--init")
        .arg(spec_file)
        .spawn()
        .map_err(failed("starting the sandbox's init"))?;
    let status = init.wait().map_err(failed("waiting for the sandbox's init"))?;
    Ok(exit_code(status))
}

fn stop_signals() -> SigSet {
    let mut set = SigSet::empty();
    for sig in [Signal::SIGTERM, Signal::SIGINT, Signal::SIGHUP] {
        set.add(sig);
    }
    set
}

/// An exit status as a container runtime reports it: the code, or 128 +
/// the signal.
fn exit_code(status: std::process::ExitStatus) -> i32 {
    use std::os::unix::process::ExitStatusExt;
    status.code().or_else(|| status.signal().map(|s| 128 + s)).unwrap_or(SETUP_FAILED)
}

/// PID 1 of the step's namespace: builds the step's file system, starts
/// the step, reaps whatever is orphaned, and exits as the step did; its
/// exit ends every other process of the namespace.
fn init(spec: &Spec) -> Setup<i32> {
    // Whatever happens to the supervisor happens to the namespace.
    let _ = nix::sys::prctl::set_pdeathsig(Signal::SIGKILL);
    let placeholders = build_root(spec)?;
    mount_proc()?;
    // A closed stdin means `ferry` is gone: the namespace ends with it.
    std::thread::spawn(|| {
        let mut sink = [0u8; 64];
        let mut stdin = std::io::stdin();
        while matches!(stdin.read(&mut sink), Ok(n) if n > 0) {}
        std::process::exit(SETUP_FAILED)
    });
    let step = match start_step(spec)? {
        Ok(pid) => pid,
        Err(code) => {
            remove_placeholders(&placeholders);
            return Ok(code);
        }
    };
    loop {
        match waitpid(None, None) {
            Ok(WaitStatus::Exited(pid, code)) if pid == step => {
                remove_placeholders(&placeholders);
                return Ok(code);
            }
            Ok(WaitStatus::Signaled(pid, sig, _)) if pid == step => {
                remove_placeholders(&placeholders);
                return Ok(128 + sig as i32);
            }
            Ok(_) | Err(nix::errno::Errno::EINTR) => {}
            Err(e) => return Err(failed("waiting for the step")(e)),
        }
    }
}

/// The /proc of the namespace: what `ps` and `/proc/self` of the step show.
fn mount_proc() -> Setup<()> {
    let flags = MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC;
    mount(Some("proc"), "/proc", Some("proc"), flags, None::<&str>).map_err(failed("mounting /proc"))
}

/// Starts the step as its container would: its command unchanged, in its
/// working directory, no stdin, and default signal handling (Command resets
/// the mask and SIGPIPE). A command that cannot be started is the step's
/// failure, with the exit code a shell would give it, not the sandbox's.
fn start_step(spec: &Spec) -> Setup<Result<Pid, i32>> {
    let cwd = if spec.cwd.is_empty() { "/" } else { spec.cwd.as_str() };
    std::fs::create_dir_all(cwd).map_err(failed(format!("creating the working directory {cwd}")))?;
    let (program, args) = spec.argv.split_first().ok_or_else(|| SetupError {
        action: "the step has no command".into(),
        source: std::io::ErrorKind::InvalidInput.into(),
    })?;
    match std::process::Command::new(program).args(args).current_dir(cwd).stdin(std::process::Stdio::null()).spawn() {
        Ok(child) => Ok(Ok(Pid::from_raw(i32::try_from(child.id()).unwrap_or(i32::MAX)))),
        Err(e) => {
            eprintln!("cannot run {program:?}: {e}");
            Ok(Err(if e.kind() == std::io::ErrorKind::NotFound { 127 } else { 126 }))
        }
    }
}

/// Mounts the step's view under its root and makes it the root. Returns
/// the host entries placed in the step's copies of host directories.
fn build_root(spec: &Spec) -> Setup<Vec<PathBuf>> {
    let root = &spec.root;
    // Opened before any mount: the host directories mounted below may
    // cover the path a source is reached by (an input staged at
    // `<root>/work/in` is under the host's `/work` once that is mounted).
    let sources = spec
        .mounts
        .iter()
        .map(|m| {
            nix::fcntl::open(
                &m.source,
                nix::fcntl::OFlag::O_PATH | nix::fcntl::OFlag::O_CLOEXEC,
                nix::sys::stat::Mode::empty(),
            )
            .map_err(failed(format!("opening {}", m.source.display())))
        })
        .collect::<Setup<Vec<OwnedFd>>>()?;
    let dirs: Vec<bool> = spec.mounts.iter().map(|m| std::fs::metadata(&m.source).is_ok_and(|m| m.is_dir())).collect();
    bind(root, root, false)?;
    let entries = std::fs::read_dir("/").map_err(failed("listing /"))?;
    for entry in entries {
        let entry = entry.map_err(failed("listing /"))?;
        let name = entry.file_name();
        let inside = root.join(&name);
        match name.to_str() {
            // The step's own: a private /tmp, and a /proc of its PID namespace.
            Some("tmp" | "proc") => {
                std::fs::create_dir_all(&inside).map_err(failed(format!("creating {}", inside.display())))?
            }
            Some("dev") => {
                create_mount_point(&inside, true)?;
                bind(&entry.path(), &inside, false)?;
            }
            _ => place_host_entry(&entry.path(), &inside)?,
        }
    }
    let mut mirrored = Vec::new();
    let mut placeholders = Vec::new();
    for (m, fd) in spec.mounts.iter().zip(&sources).filter(|(m, _)| m.mirror) {
        let inside = PathBuf::from(format!("/proc/self/fd/{}", fd.as_raw_fd()));
        let entries = std::fs::read_dir(&m.target).map_err(failed(format!("listing {}", m.target)))?;
        for entry in entries {
            let entry = entry.map_err(failed(format!("listing {}", m.target)))?;
            let at = inside.join(entry.file_name());
            if std::fs::symlink_metadata(&at).is_err() {
                place_host_entry(&entry.path(), &at)?;
                placeholders.push(Path::new(&m.target).join(entry.file_name()));
            }
        }
    }
    for ((m, fd), dir) in spec.mounts.iter().zip(&sources).zip(dirs) {
        // Even a directory of the step's own root is mounted again: a host
        // directory mounted above may cover it (`/mnt` for `/mnt/out`).
        let target = inside_root(root, &m.target);
        make_mount_point(root, &m.target, dir, &mut mirrored)?;
        bind(Path::new(&format!("/proc/self/fd/{}", fd.as_raw_fd())), &target, m.read_only)?;
    }
    for dir in mirrored {
        set_read_only(&dir, false)?;
    }
    chdir(root).map_err(failed(format!("entering {}", root.display())))?;
    pivot_root(".", ".").map_err(failed("pivot_root"))?;
    umount2(".", MntFlags::MNT_DETACH).map_err(failed("detaching the host's root"))?;
    chdir("/").map_err(failed("entering /"))?;
    Ok(placeholders)
}

/// Takes the host's entries out of the step's copies of host directories
/// (paths inside the sandbox), so its directory holds only what it wrote.
fn remove_placeholders(placeholders: &[PathBuf]) {
    for p in placeholders {
        let _ = umount2(p, MntFlags::MNT_DETACH);
        match std::fs::symlink_metadata(p) {
            Ok(meta) if meta.is_dir() => drop(std::fs::remove_dir(p)),
            Ok(_) => drop(std::fs::remove_file(p)),
            Err(_) => {}
        }
    }
}

fn inside_root(root: &Path, target: &str) -> PathBuf {
    root.join(target.trim_start_matches('/'))
}

/// Puts one entry of the host's `/` (or of a mirrored directory) at
/// `inside`, read-only: a directory or file is bind-mounted, a symbolic link
/// copied.
fn place_host_entry(host: &Path, inside: &Path) -> Setup<()> {
    let meta = std::fs::symlink_metadata(host).map_err(failed(format!("reading {}", host.display())))?;
    if meta.file_type().is_symlink() {
        if std::fs::symlink_metadata(inside).is_err() {
            let link = std::fs::read_link(host).map_err(failed(format!("reading {}", host.display())))?;
            std::os::unix::fs::symlink(&link, inside).map_err(failed(format!("linking {}", inside.display())))?;
        }
        return Ok(());
    }
    create_mount_point(inside, meta.is_dir())?;
    bind(host, inside, true)
}

fn create_mount_point(path: &Path, dir: bool) -> Setup<()> {
    if std::fs::symlink_metadata(path).is_ok() {
        return Ok(());
    }
    let made = if dir { std::fs::create_dir(path) } else { std::fs::File::create(path).map(drop) };
    made.map_err(failed(format!("creating {}", path.display())))
}

/// Creates `target` under `root`, a directory (or, unless `dir`, its last
/// part a file) to mount on. Where a read-only host
/// directory stands in the way (`/mnt` for `/mnt/out`), that directory is
/// mirrored: a tmpfs holding its entries, each mounted read-only, in which
/// the missing directory can be made.
fn make_mount_point(root: &Path, target: &str, dir: bool, mirrored: &mut Vec<PathBuf>) -> Setup<()> {
    let mut at = root.to_path_buf();
    let mut host = PathBuf::from("/");
    let parts: Vec<_> = Path::new(target).components().filter(|c| matches!(c, Component::Normal(_))).collect();
    for (i, part) in parts.iter().enumerate() {
        let Component::Normal(name) = part else { continue };
        let as_dir = dir || i + 1 < parts.len();
        let next = at.join(name);
        host.push(name);
        match std::fs::symlink_metadata(&next) {
            Ok(meta) if meta.file_type().is_symlink() => {
                return Err(SetupError {
                    action: format!("mounting at {target}: {} is a symbolic link", host.display()),
                    source: std::io::ErrorKind::InvalidInput.into(),
                });
            }
            Ok(_) => {}
            Err(_) => {
                if let Err(e) = create_mount_point(&next, as_dir) {
                    if e.source.raw_os_error() != Some(nix::libc::EROFS) {
                        return Err(e);
                    }
                    let parent = host.parent().unwrap_or(Path::new("/"));
                    mirror(parent, &at)?;
                    mirrored.push(at.clone());
                    create_mount_point(&next, as_dir)?;
                }
            }
        }
        at = next;
    }
    Ok(())
}

fn mirror(host: &Path, inside: &Path) -> Setup<()> {
    mount(Some("tmpfs"), inside, Some("tmpfs"), MsFlags::MS_NOSUID | MsFlags::MS_NODEV, Some("mode=0755"))
        .map_err(failed(format!("mounting a tmpfs at {}", inside.display())))?;
    let entries = std::fs::read_dir(host).map_err(failed(format!("listing {}", host.display())))?;
    for entry in entries {
        let entry = entry.map_err(failed(format!("listing {}", host.display())))?;
        place_host_entry(&entry.path(), &inside.join(entry.file_name()))?;
    }
    Ok(())
}

fn bind(source: &Path, target: &Path, read_only: bool) -> Setup<()> {
    mount(Some(source), target, None::<&str>, MsFlags::MS_BIND | MsFlags::MS_REC, None::<&str>)
        .map_err(failed(format!("mounting {} at {}", source.display(), target.display())))?;
    if read_only { set_read_only(target, true) } else { Ok(()) }
}

/// Makes the mount at `path` (and, when `recursive`, every mount under it)
/// read-only, keeping its other flags: a bind remount must repeat them,
/// and in a user namespace may not drop them.
fn set_read_only(path: &Path, recursive: bool) -> Setup<()> {
    use nix::sys::statvfs::{FsFlags, statvfs};
    let targets = if recursive { mounts_under(path)? } else { vec![path.to_path_buf()] };
    for (i, target) in targets.iter().enumerate() {
        let flags = match statvfs(target) {
            Ok(stat) => stat.flags(),
            // A mount this user cannot reach (under a directory it may not
            // enter) is out of the step's reach too.
            Err(_) if i > 0 => continue,
            Err(e) => return Err(failed(format!("reading the flags of {}", target.display()))(e)),
        };
        let mut ms = MsFlags::MS_REMOUNT | MsFlags::MS_BIND | MsFlags::MS_RDONLY;
        for (fs, m) in [
            (FsFlags::ST_NOSUID, MsFlags::MS_NOSUID),
            (FsFlags::ST_NODEV, MsFlags::MS_NODEV),
            (FsFlags::ST_NOEXEC, MsFlags::MS_NOEXEC),
            (FsFlags::ST_NOATIME, MsFlags::MS_NOATIME),
            (FsFlags::ST_NODIRATIME, MsFlags::MS_NODIRATIME),
            (FsFlags::ST_RELATIME, MsFlags::MS_RELATIME),
        ] {
            if flags.contains(fs) {
                ms |= m;
            }
        }
        mount(None::<&str>, target, None::<&str>, ms, None::<&str>)
            .map_err(failed(format!("making {} read-only", target.display())))?;
    }
    Ok(())
}

/// The mount points at or under `path`, outermost first, from this mount
/// namespace's table.
fn mounts_under(path: &Path) -> Setup<Vec<PathBuf>> {
    let table = std::fs::read_to_string("/proc/self/mountinfo").map_err(failed("reading /proc/self/mountinfo"))?;
    let mut points: Vec<PathBuf> = table
        .lines()
        .filter_map(|line| line.split(' ').nth(4))
        .map(|point| PathBuf::from(unescape_mount_point(point)))
        .filter(|point| point.starts_with(path))
        .collect();
    points.sort_by_key(|p| p.components().count());
    points.dedup();
    Ok(points)
}

/// The kernel writes space, tab, newline and backslash in a mount point as
/// octal escapes (`\040`).
fn unescape_mount_point(point: &str) -> String {
    let mut out = String::with_capacity(point.len());
    let mut rest = point;
    while let Some(i) = rest.find('\\') {
        out.push_str(&rest[..i]);
        let code = rest.get(i + 1..i + 4).and_then(|o| u8::from_str_radix(o, 8).ok());
        match code {
            Some(byte) => {
                out.push(char::from(byte));
                rest = &rest[i + 4..];
            }
            None => {
                out.push('\\');
                rest = &rest[i + 1..];
            }
        }
    }
    out.push_str(rest);
    out
}
