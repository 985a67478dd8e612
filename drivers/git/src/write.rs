//! Save and Delete as commits pushed with the git CLI (gix cannot push yet).
//!
//! Everything happens in a throwaway bare repository with a depth-1 fetch of
//! the branch and a temporary index, so no worktree of the whole repository
//! is ever checked out: the cost is the size of what changes.

use crate::auth::Auth;
use crate::cli::git;
use crate::settings::GitConfig;
use ferry_sdk::{ArtifactKey, Error, ErrorKind, Result};
use std::path::Path;
use std::time::Duration;

/// What a commit does to the branch.
pub enum Change<'a> {
    /// Put the local file or directory `src` at the key (the root key: the whole tree).
    Put(&'a ArtifactKey, &'a Path),
    /// Remove exactly the file at the key.
    RemoveFile(&'a ArtifactKey),
    /// Remove the key and everything under it.
    RemoveTree(&'a ArtifactKey),
}

/// Pushes racing with other writers are retried from a fresh fetch this many times.
const ATTEMPTS: u32 = 8;

/// Commits `change` to `branch` and pushes it. A change that leaves the tree
/// as it was makes no commit.
pub async fn commit(c: &GitConfig, auth: &Auth, branch: &str, explicit_branch: bool, change: Change<'_>) -> Result<()> {
    let mut attempt = 0;
    loop {
        attempt += 1;
        match commit_once(c, auth, branch, explicit_branch, &change).await {
            Err(e) if attempt < ATTEMPTS && is_push_race(&e) => {
                tokio::time::sleep(Duration::from_millis(50 * u64::from(attempt))).await;
            }
            other => return other,
        }
    }
}

fn is_push_race(e: &Error) -> bool {
    let m = e.message();
    m.contains("git push failed")
        && (m.contains("non-fast-forward")
            || m.contains("fetch first")
            || m.contains("failed to update ref")
            || m.contains("cannot lock ref")
            || m.contains("stale info"))
}

/// Deletes `branch` on the remote; a branch that is already gone is success.
pub async fn delete_branch(c: &GitConfig, auth: &Auth, branch: &str) -> Result<()> {
    let work = tempfile::tempdir().map_err(|e| Error::from(e).context("creating a work directory"))?;
    git(auth, work.path(), &["init", "--bare", "-q", "."], &[]).await?;
    let spec = format!(":refs/heads/{branch}");
    match git(auth, work.path(), &["push", "-q", c.repo.trim(), &spec], &[]).await {
        Err(e) if e.message().contains("remote ref does not exist") => Ok(()),
        other => other.map(drop),
    }
}

async fn commit_once(
    c: &GitConfig,
    auth: &Auth,
    branch: &str,
    explicit_branch: bool,
    change: &Change<'_>,
) -> Result<()> {
    let work = tempfile::tempdir().map_err(|e| Error::from(e).context("creating a work directory"))?;
    let dir = work.path();
    let index = dir.join("ferry-index");
    let index = index.to_str().ok_or_else(|| Error::other("temporary directory path is not UTF-8"))?;
    let url = c.repo.trim();
    git(auth, dir, &["init", "--bare", "-q", "."], &[]).await?;
    // Index commands refuse to run without a worktree; an empty one stands in.
    let empty = tempfile::tempdir().map_err(|e| Error::from(e).context("creating a work directory"))?;
    let env = [("GIT_DIR", utf8(dir)?), ("GIT_INDEX_FILE", index), ("GIT_WORK_TREE", utf8(empty.path())?)];

    let parent = match fetch_tip(auth, dir, url, &format!("refs/heads/{branch}")).await? {
        Some(tip) => Some(tip),
        None if !explicit_branch => {
            return Err(Error::unsupported(format!(
                "this configuration is read-only: revision {branch:?} is not a branch of the repository \
                 (a tag or a commit cannot move); set `branch` to the branch Save should commit to"
            )));
        }
        None if matches!(change, Change::RemoveFile(_) | Change::RemoveTree(_)) => return Ok(()),
        // A new branch starts at `revision` when one is set, else as an empty history.
        None => match c.revision.as_deref() {
            Some(rev) => Some(fetch_tip(auth, dir, url, rev).await?.ok_or_else(|| {
                Error::not_found(format!("revision {rev:?} not found (it is where the new branch {branch:?} starts)"))
            })?),
            None => None,
        },
    };
    match &parent {
        Some(p) => git(auth, dir, &["read-tree", p], &env).await?,
        None => git(auth, dir, &["read-tree", "--empty"], &env).await?,
    };
    let no_worktree = format!("--work-tree={}", utf8(empty.path())?);
    let key_text = match change {
        Change::Put(k, _) | Change::RemoveFile(k) | Change::RemoveTree(k) => k.as_str(),
    };
    match change {
        Change::RemoveFile(key) => {
            git(auth, dir, &["update-index", "--force-remove", "--", key.as_str()], &env).await?;
        }
        Change::RemoveTree(key) => {
            let args = [no_worktree.as_str(), "rm", "-r", "-q", "--cached", "--ignore-unmatch", "--", key.as_str()];
            git(auth, dir, &args, &env).await?;
        }
        Change::Put(key, src) => put(auth, dir, &env, &no_worktree, key, src).await?,
    }
    // The parent's blobs were never fetched; the remote has them.
    let tree = git(auth, dir, &["write-tree", "--missing-ok"], &env).await?.trim().to_string();
    if let Some(p) = &parent {
        let old = git(auth, dir, &["rev-parse", &format!("{p}^{{tree}}")], &[]).await?;
        if old.trim() == tree {
            return Ok(());
        }
    }
    let message = c.commit.message.replace("{key}", if key_text.is_empty() { "/" } else { key_text });
    let mut args = vec!["commit-tree", tree.as_str(), "-m", message.as_str()];
    if let Some(p) = &parent {
        args.extend(["-p", p.as_str()]);
    }
    let who = [
        ("GIT_AUTHOR_NAME", c.commit.author_name.as_str()),
        ("GIT_AUTHOR_EMAIL", c.commit.author_email.as_str()),
        ("GIT_COMMITTER_NAME", c.commit.author_name.as_str()),
        ("GIT_COMMITTER_EMAIL", c.commit.author_email.as_str()),
    ];
    let commit = git(auth, dir, &args, &who).await?.trim().to_string();
    let spec = format!("{commit}:refs/heads/{branch}");
    git(auth, dir, &["push", "-q", url, &spec], &[]).await?;
    Ok(())
}

async fn put(
    auth: &Auth,
    dir: &Path,
    env: &[(&str, &str)],
    no_worktree: &str,
    key: &ArtifactKey,
    src: &Path,
) -> Result<()> {
    let meta =
        tokio::fs::metadata(src).await.map_err(|e| Error::from(e).context(format!("reading {}", src.display())))?;
    // Whatever was at the key goes, and so does any file where the key needs a directory.
    if key.is_root() {
        git(auth, dir, &["read-tree", "--empty"], env).await?;
    } else {
        git(auth, dir, &[no_worktree, "rm", "-r", "-q", "--cached", "--ignore-unmatch", "--", key.as_str()], env)
            .await?;
        let mut ancestor = String::new();
        for segment in key.as_str().split('/').collect::<Vec<_>>().split_last().map(|(_, a)| a).unwrap_or(&[]) {
            if !ancestor.is_empty() {
                ancestor.push('/');
            }
            ancestor.push_str(segment);
            git(auth, dir, &["update-index", "--force-remove", "--", &ancestor], env).await?;
        }
    }
    if meta.is_file() {
        if key.is_root() {
            return Err(Error::invalid_argument("saving a single file needs a key naming its path in the repository"));
        }
        let blob = git(auth, dir, &["hash-object", "-w", "--", utf8(src)?], &[]).await?;
        use std::os::unix::fs::PermissionsExt;
        let mode = if meta.permissions().mode() & 0o111 != 0 { "100755" } else { "100644" };
        let info = format!("{mode},{},{}", blob.trim(), key.as_str());
        git(auth, dir, &["update-index", "--add", "--cacheinfo", &info], env).await?;
        return Ok(());
    }
    if !meta.is_dir() {
        return Err(Error::invalid_argument(format!("{} is neither a regular file nor a directory", src.display())));
    }
    // The directory's own tree, built in a second index: `-f` because the
    // artifact's files are saved whatever a .gitignore inside it says.
    let src_index = dir.join("ferry-src-index");
    let src_env = [("GIT_INDEX_FILE", utf8(&src_index)?)];
    let with_src = format!("--work-tree={}", utf8(src)?);
    git(auth, dir, &[with_src.as_str(), "add", "-A", "-f", "."], &src_env).await?;
    let tree = git(auth, dir, &["write-tree"], &src_env).await?;
    if key.is_root() {
        git(auth, dir, &["read-tree", tree.trim()], env).await?;
    } else {
        let prefix = format!("--prefix={}/", key.as_str());
        git(auth, dir, &[no_worktree, "read-tree", &prefix, tree.trim()], env).await?;
    }
    Ok(())
}

/// The commit `refspec` points to on the remote, or `None` when it does not exist.
async fn fetch_tip(auth: &Auth, dir: &Path, url: &str, refspec: &str) -> Result<Option<String>> {
    // Without blobs: only the trees are needed to build the next one. Servers
    // without filter support ignore the option and send everything.
    let args = ["fetch", "-q", "--depth", "1", "--no-tags", "--filter=blob:none", url, refspec];
    match git(auth, dir, &args, &[]).await {
        Ok(_) => Ok(Some(git(auth, dir, &["rev-parse", "FETCH_HEAD^{commit}"], &[]).await?.trim().to_string())),
        Err(e) if e.kind() == ErrorKind::NotFound && e.message().contains("remote ref") => Ok(None),
        Err(e) => Err(e),
    }
}

fn utf8(p: &Path) -> Result<&str> {
    p.to_str().ok_or_else(|| Error::invalid_argument(format!("{} is not a UTF-8 path", p.display())))
}
