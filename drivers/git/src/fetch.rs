//! Argo's Load of the whole repository with the git CLI: a clone with a
//! worktree at the configured revision, history as deep as `depth` says,
//! the extra `fetch` refspecs, and submodules unless disabled.

use crate::auth::Auth;
use crate::cli::git;
use crate::settings::{GitConfig, Start};
use ferry_sdk::{Error, ErrorKind, Result};
use std::path::Path;

/// Process-level settings of the clone's git children, not written into
/// the clone's own config: blobs over 1 MiB are streamed, never held whole.
const STREAM_BIG_BLOBS: [&str; 2] = ["-c", "core.bigFileThreshold=1m"];

/// Clones `c.repo` into `dest` (which must not exist or be empty) and checks
/// out the configured revision; on failure a `dest` this call created is removed.
pub async fn checkout(c: &GitConfig, auth: &Auth, dest: &Path) -> Result<()> {
    let existed = tokio::fs::try_exists(dest).await.unwrap_or(true);
    let result = clone_and_checkout(c, auth, dest).await;
    if result.is_err() && !existed {
        let _ = tokio::fs::remove_dir_all(dest).await;
    }
    result
}

async fn clone_and_checkout(c: &GitConfig, auth: &Auth, dest: &Path) -> Result<()> {
    let parent = dest.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    tokio::fs::create_dir_all(parent)
        .await
        .map_err(|e| Error::from(e).context(format!("creating {}", parent.display())))?;
    let dest_text = dest.to_str().ok_or_else(|| Error::invalid_argument("the destination path is not UTF-8"))?;
    let depth = c.depth().map(|d| d.to_string());
    let mut deepen: Vec<&str> = Vec::new();
    if let Some(d) = &depth {
        deepen.extend(["--depth", d]);
    }
    let start = c.start();
    let mut args: Vec<&str> = STREAM_BIG_BLOBS.to_vec();
    args.extend(["clone", "-q", "--no-checkout", "--no-recurse-submodules"]);
    args.extend(&deepen);
    if c.single_branch {
        args.push("--single-branch");
    }
    // `--branch` takes branch and tag names; full refs and commits are fetched after the clone.
    if let Start::Ref(name) = &start
        && !name.starts_with("refs/")
    {
        args.extend(["--branch", name]);
    }
    args.extend(["--", c.repo.trim(), dest_text]);
    git(auth, parent, &args, &[]).await.map_err(|e| not_found_if_missing(c, e))?;

    let fetch = |what: Vec<&str>| {
        let mut args: Vec<&str> = STREAM_BIG_BLOBS.to_vec();
        args.extend(["fetch", "-q", "--no-tags"]);
        args.extend(&deepen);
        args.push("origin");
        args.extend(what);
        args.into_iter().map(String::from).collect::<Vec<_>>()
    };
    if !c.fetch.is_empty() {
        let args = fetch(c.fetch.iter().map(String::as_str).collect());
        git(auth, dest, &args.iter().map(String::as_str).collect::<Vec<_>>(), &[]).await?;
    }
    let target = match &start {
        Start::Commit(id) => {
            let present = git(auth, dest, &["cat-file", "-e", &format!("{id}^{{commit}}")], &[]).await.is_ok();
            if !present {
                let args = fetch(vec![id.as_str()]);
                let args: Vec<&str> = args.iter().map(String::as_str).collect();
                git(auth, dest, &args, &[]).await.map_err(|e| not_found_if_missing(c, e))?;
            }
            id.clone()
        }
        Start::Ref(name) if name.starts_with("refs/") => {
            let args = fetch(vec![name.as_str()]);
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            git(auth, dest, &args, &[]).await.map_err(|e| not_found_if_missing(c, e))?;
            git(auth, dest, &["rev-parse", "--verify", "FETCH_HEAD^{commit}"], &[]).await?.trim().to_string()
        }
        _ => "HEAD".to_string(),
    };
    // `HEAD` keeps a cloned branch checked out as that branch; anything else is detached at the commit.
    if target == "HEAD" {
        git(auth, dest, &["rev-parse", "--verify", "HEAD^{commit}"], &[])
            .await
            .map_err(|e| not_found_if_missing(c, e))?;
        git(auth, dest, &["reset", "-q", "--hard", "HEAD"], &[]).await?;
    } else {
        git(auth, dest, &["checkout", "-q", "--force", "--detach", &target], &[]).await?;
    }
    if !c.disable_submodules && tokio::fs::try_exists(dest.join(".gitmodules")).await.unwrap_or(false) {
        git(auth, dest, &["submodule", "update", "--init", "--recursive", "--force"], &[]).await?;
    }
    Ok(())
}

/// git words a revision missing on the remote in several ways; all mean NotFound.
fn not_found_if_missing(c: &GitConfig, e: Error) -> Error {
    let m = e.message().to_ascii_lowercase();
    let missing = m.contains("not found in upstream")
        || m.contains("remote ref")
        || m.contains("not our ref")
        || m.contains("unknown revision")
        || m.contains("needed a single revision")
        || m.contains("invalid reference");
    if missing && !matches!(e.kind(), ErrorKind::PermissionDenied | ErrorKind::Transient) {
        let rev = c.revision.as_deref().or(c.branch.as_deref()).unwrap_or("HEAD");
        Error::not_found(format!("revision {rev:?} not found: {}", e.message()))
    } else {
        e
    }
}
