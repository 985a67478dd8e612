//! The git CLI, for what gix cannot do yet: push and submodules.

use crate::auth::Auth;
use crate::classify::{kind_of_text, redact};
use ferry_sdk::{Error, ErrorKind, Result};
use std::path::Path;
use std::process::Stdio;

/// Runs `git args…` in `dir` with the configuration's credentials and returns
/// stdout. A failure's message is git's stderr, with URL passwords masked.
pub async fn git(auth: &Auth, dir: &Path, args: &[&str], extra_env: &[(&str, &str)]) -> Result<String> {
    let mut cmd = tokio::process::Command::new("git");
    auth.apply(&mut cmd);
    cmd.args(args)
        .current_dir(dir)
        .envs(extra_env.iter().copied())
        // The user's global config must not change what a driver does (hooks, signing, helpers).
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let out = cmd.output().await.map_err(|e| {
        let kind = if e.kind() == std::io::ErrorKind::NotFound { ErrorKind::Unsupported } else { ErrorKind::Other };
        Error::new(kind, format!("running git: {e} (the git CLI is needed for Save, Delete and submodules)"))
    })?;
    if out.status.success() {
        return Ok(String::from_utf8_lossy(&out.stdout).into_owned());
    }
    let stderr = redact(String::from_utf8_lossy(&out.stderr).trim());
    let verb = args.iter().find(|a| !a.starts_with('-') && !a.contains('=')).copied().unwrap_or("git");
    Err(Error::new(kind_of_text(&stderr), format!("git {verb} failed: {stderr}")))
}
