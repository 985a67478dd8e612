//! The git CLI: every read of the driver's cache repository, every write and
//! push, and submodules. gix remains only for Argo's Load of the whole
//! repository (a clone with a worktree).

use crate::auth::Auth;
use crate::classify::{kind_of_text, redact};
use ferry_sdk::{Error, ErrorKind, Result};
use std::path::Path;
use std::process::Stdio;

/// The environment of every git child. The user's global config must not
/// change what a driver does (hooks, signing, helpers), and pathspecs are
/// keys, never patterns.
const ISOLATED: [(&str, &str); 3] =
    [("GIT_CONFIG_NOSYSTEM", "1"), ("GIT_CONFIG_GLOBAL", "/dev/null"), ("GIT_LITERAL_PATHSPECS", "1")];

fn spawn_error(e: std::io::Error) -> Error {
    let kind = if e.kind() == std::io::ErrorKind::NotFound { ErrorKind::Unsupported } else { ErrorKind::Other };
    Error::new(kind, format!("running git: {e} (the git driver needs the git CLI)"))
}

fn failure(args: &[&str], stderr: &[u8]) -> Error {
    let stderr = redact(String::from_utf8_lossy(stderr).trim());
    let verb = args.iter().find(|a| !a.starts_with('-') && !a.contains('=')).copied().unwrap_or("git");
    Error::new(kind_of_text(&stderr), format!("git {verb} failed: {stderr}"))
}

/// Runs `git args…` in `dir` with the configuration's credentials and returns
/// stdout. A failure's message is git's stderr, with URL passwords masked.
pub async fn git(auth: &Auth, dir: &Path, args: &[&str], extra_env: &[(&str, &str)]) -> Result<String> {
    let mut cmd = tokio::process::Command::new("git");
    auth.apply(&mut cmd);
    cmd.envs(ISOLATED)
        .args(args)
        .current_dir(dir)
        .envs(extra_env.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let out = cmd.output().await.map_err(spawn_error)?;
    if out.status.success() {
        return Ok(String::from_utf8_lossy(&out.stdout).into_owned());
    }
    Err(failure(args, &out.stderr))
}

/// A local command on the repository at `dir` (no network, so no
/// credentials), for the blocking readers.
pub fn local(dir: &Path, args: &[&str]) -> Result<String> {
    let out = local_command(dir, args).stdin(Stdio::null()).output().map_err(spawn_error)?;
    if out.status.success() {
        return Ok(String::from_utf8_lossy(&out.stdout).into_owned());
    }
    Err(failure(args, &out.stderr))
}

/// `git args…` in `dir`, isolated like every other child, not yet started.
pub fn local_command(dir: &Path, args: &[&str]) -> std::process::Command {
    let mut cmd = std::process::Command::new("git");
    cmd.envs(ISOLATED).args(args).current_dir(dir);
    cmd
}
