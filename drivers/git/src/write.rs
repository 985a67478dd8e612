//! Save and Delete as commits built in the cache repository and pushed with
//! the git CLI (gix cannot push yet).
//!
//! Changes waiting on one configuration go out together: each becomes its
//! own commit (with its own message), chained on the branch tip, and one
//! push carries them all. A temporary index holds the tree being built, so
//! no worktree of the repository is ever checked out: the cost is the size
//! of what changes.

use crate::auth::Auth;
use crate::cache::{Cache, branch_ref};
use crate::cli::git;
use crate::settings::GitConfig;
use ferry_sdk::{ArtifactKey, Error, Result};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// What a commit does to the branch.
pub enum Change {
    /// Put the local file or directory at the key (the root key: the whole tree).
    Put(ArtifactKey, PathBuf),
    /// Remove exactly the file at the key.
    RemoveFile(ArtifactKey),
    /// Remove the key and everything under it.
    RemoveTree(ArtifactKey),
}

impl Change {
    fn key(&self) -> &ArtifactKey {
        match self {
            Change::Put(k, _) | Change::RemoveFile(k) | Change::RemoveTree(k) => k,
        }
    }
}

/// Where changes are committed: the branch of a configuration, built in its cache.
pub struct Destination<'a> {
    pub cache: &'a Cache,
    pub cfg: &'a GitConfig,
    pub auth: &'a Auth,
    pub branch: &'a str,
    /// Whether the configuration names `branch` (which may then be created), or it is `revision`.
    pub explicit: bool,
}

/// Pushes racing with other writers are retried from a fresh fetch this many times.
const ATTEMPTS: u32 = 8;

/// Commits `changes` to `branch`, one commit each, and pushes them; returns
/// the branch's commit afterwards (`None`: the branch does not exist). A
/// change that leaves the tree as it was makes no commit.
pub async fn commit(to: &Destination<'_>, changes: &[Change]) -> Result<Option<String>> {
    let mut attempt = 0;
    loop {
        attempt += 1;
        match commit_once(to, changes).await {
            Err(e) if attempt < ATTEMPTS && is_push_race(&e) => {
                tokio::time::sleep(Duration::from_millis(50 * u64::from(attempt))).await;
            }
            other => return other,
        }
    }
}

/// Whether `e` is a push that lost a race with another writer, so the
/// change is retried on the new tip.
pub fn is_push_race(e: &Error) -> bool {
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

async fn commit_once(to: &Destination<'_>, changes: &[Change]) -> Result<Option<String>> {
    let Destination { cache, cfg: c, auth, branch, explicit: explicit_branch } = *to;
    let url = c.repo.trim();
    let only_removals = changes.iter().all(|c| !matches!(c, Change::Put(..)));
    let local = branch_ref(branch);
    let parent = match cache.fetch(auth, url, &format!("refs/heads/{branch}"), &local).await? {
        Some(tip) => Some(tip),
        None if !explicit_branch => {
            return Err(Error::unsupported(format!(
                "this configuration is read-only: revision {branch:?} is not a branch of the repository \
                 (a tag or a commit cannot move); set `branch` to the branch Save should commit to"
            )));
        }
        None if only_removals => return Ok(None),
        // A new branch starts at `revision` when one is set, else as an empty history.
        None => match c.revision.as_deref() {
            Some(rev) => Some(cache.fetch(auth, url, rev, &local).await?.ok_or_else(|| {
                Error::not_found(format!("revision {rev:?} not found (it is where the new branch {branch:?} starts)"))
            })?),
            None => None,
        },
    };
    let dir = cache.path();
    let work = tempfile::tempdir().map_err(|e| Error::from(e).context("creating a work directory"))?;
    let index = utf8(&work.path().join("index"))?.to_string();
    // Index commands refuse to run without a worktree; an empty one stands in.
    let empty = work.path().join("empty");
    std::fs::create_dir(&empty).map_err(|e| Error::from(e).context("creating a work directory"))?;
    let env = [("GIT_INDEX_FILE", index.as_str()), ("GIT_WORK_TREE", utf8(&empty)?)];
    match &parent {
        Some(p) => git(auth, dir, &["read-tree", p], &env).await?,
        None => git(auth, dir, &["read-tree", "--empty"], &env).await?,
    };
    let mut tip = parent.clone();
    let mut tip_tree = match &parent {
        Some(p) => Some(git(auth, dir, &["rev-parse", &format!("{p}^{{tree}}")], &[]).await?.trim().to_string()),
        None => None,
    };
    let who = [
        ("GIT_AUTHOR_NAME", c.commit.author_name.as_str()),
        ("GIT_AUTHOR_EMAIL", c.commit.author_email.as_str()),
        ("GIT_COMMITTER_NAME", c.commit.author_name.as_str()),
        ("GIT_COMMITTER_EMAIL", c.commit.author_email.as_str()),
    ];
    for change in changes {
        match change {
            Change::RemoveFile(key) => {
                git(auth, dir, &["update-index", "--force-remove", "--", key.as_str()], &env).await?;
            }
            Change::RemoveTree(key) => {
                let args = ["rm", "-r", "-q", "--cached", "--ignore-unmatch", "--", key.as_str()];
                git(auth, dir, &args, &env).await?;
            }
            Change::Put(key, src) => put(auth, dir, &env, work.path(), key, src).await?,
        }
        let tree = git(auth, dir, &["write-tree"], &env).await?.trim().to_string();
        if tip_tree.as_deref() == Some(tree.as_str()) {
            continue;
        }
        let key = change.key().as_str();
        let message = c.commit.message.replace("{key}", if key.is_empty() { "/" } else { key });
        let mut args = vec!["commit-tree", tree.as_str(), "-m", message.as_str()];
        if let Some(p) = &tip {
            args.extend(["-p", p.as_str()]);
        }
        tip = Some(git(auth, dir, &args, &who).await?.trim().to_string());
        tip_tree = Some(tree);
    }
    if tip != parent
        && let Some(commit) = &tip
    {
        let spec = format!("{commit}:refs/heads/{branch}");
        git(auth, dir, &["push", "-q", url, &spec], &[]).await?;
        cache.set(auth, &local, commit).await?;
    }
    Ok(tip)
}

async fn put(auth: &Auth, dir: &Path, env: &[(&str, &str)], work: &Path, key: &ArtifactKey, src: &Path) -> Result<()> {
    let meta =
        tokio::fs::metadata(src).await.map_err(|e| Error::from(e).context(format!("reading {}", src.display())))?;
    // Whatever was at the key goes, and so does any file where the key needs a directory.
    if key.is_root() {
        git(auth, dir, &["read-tree", "--empty"], env).await?;
    } else {
        git(auth, dir, &["rm", "-r", "-q", "--cached", "--ignore-unmatch", "--", key.as_str()], env).await?;
        let ancestors: Vec<&str> = key.as_str().match_indices('/').map(|(at, _)| &key.as_str()[..at]).collect();
        if !ancestors.is_empty() {
            let mut args = vec!["update-index", "--force-remove", "--"];
            args.extend(ancestors);
            git(auth, dir, &args, env).await?;
        }
    }
    if meta.is_file() {
        if key.is_root() {
            return Err(Error::invalid_argument("saving a single file needs a key naming its path in the repository"));
        }
        let blob = git(auth, dir, &["hash-object", "-w", "--no-filters", "--", utf8(src)?], &[]).await?;
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
    let src_index = work.join("src-index");
    // A directory saved earlier in the same batch left its index behind.
    let _ = std::fs::remove_file(&src_index);
    let src_env = [("GIT_INDEX_FILE", utf8(&src_index)?)];
    let with_src = format!("--work-tree={}", utf8(src)?);
    git(auth, dir, &[with_src.as_str(), "add", "-A", "-f", "."], &src_env).await?;
    let tree = git(auth, dir, &["write-tree"], &src_env).await?;
    if key.is_root() {
        git(auth, dir, &["read-tree", tree.trim()], env).await?;
    } else {
        let prefix = format!("--prefix={}/", key.as_str());
        git(auth, dir, &["read-tree", &prefix, tree.trim()], env).await?;
    }
    Ok(())
}

fn utf8(p: &Path) -> Result<&str> {
    p.to_str().ok_or_else(|| Error::invalid_argument(format!("{} is not a UTF-8 path", p.display())))
}
