//! The driver's own bare repository, one per configuration, kept for the
//! configuration's life: reads come from it, Saves build their commits in
//! it, and each fetch brings only what it lacks (one commit deep), so the
//! cost of a read or write after the first is the size of what changed,
//! not of the branch.

use crate::auth::Auth;
use crate::cli::git;
use ferry_sdk::{Error, ErrorKind, Result};
use std::path::Path;

/// git's settings for this repository, chosen so no git child holds a large
/// object in memory: blobs over 1 MiB are stored whole (no deltas) and
/// streamed by `cat-file`, `index-pack`, `hash-object` and `pack-objects`,
/// and packs are mapped 16 MiB at a time. Fetched packs are kept as they
/// arrive (`unpack-objects` would inflate every object and deflate it again
/// as a loose one); zlib's fastest level, since artifacts are mostly
/// compressed already (tgz is Argo's default) and the rest compress almost
/// as well. Nothing runs in the background.
const SETTINGS: [(&str, &str); 8] = [
    ("core.bigFileThreshold", "1m"),
    ("transfer.unpackLimit", "1"),
    ("core.compression", "1"),
    ("core.packedGitWindowSize", "16m"),
    ("core.packedGitLimit", "64m"),
    ("core.deltaBaseCacheLimit", "8m"),
    ("gc.auto", "0"),
    ("fetch.writeCommitGraph", "false"),
];

pub struct Cache {
    dir: tempfile::TempDir,
    /// One fetch at a time: concurrent fetches race on `shallow` and `FETCH_HEAD`.
    fetching: tokio::sync::Mutex<()>,
}

impl Cache {
    /// An empty bare repository in the temporary directory.
    pub async fn create(auth: &Auth) -> Result<Cache> {
        let dir = tempfile::Builder::new()
            .prefix("ferry-git-")
            .tempdir()
            .map_err(|e| Error::from(e).context("creating the git cache directory"))?;
        git(auth, dir.path(), &["init", "--bare", "-q", "."], &[]).await?;
        for (name, value) in SETTINGS {
            git(auth, dir.path(), &["config", name, value], &[]).await?;
        }
        Ok(Cache { dir, fetching: tokio::sync::Mutex::new(()) })
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Fetches `what` (a ref, a short name the remote resolves, or a commit
    /// id) one commit deep from `url` into the local ref `into` and returns
    /// the commit, or `None` when the remote has no such ref. The local refs
    /// are what makes fetches incremental: git offers them to the server as
    /// commits it has, so only objects they lack are sent.
    pub async fn fetch(&self, auth: &Auth, url: &str, what: &str, into: &str) -> Result<Option<String>> {
        let _one_at_a_time = self.fetching.lock().await;
        let spec = format!("+{what}:{into}");
        let args = [
            "fetch",
            "-q",
            "--depth",
            "1",
            "--no-tags",
            "--no-recurse-submodules",
            "--no-write-fetch-head",
            url,
            &spec,
        ];
        match git(auth, self.path(), &args, &[]).await {
            Ok(_) => Ok(Some(self.commit_of(auth, into).await?)),
            Err(e) if e.kind() == ErrorKind::NotFound && e.message().contains("remote ref") => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// What the server says `what` (a ref or a short name) points to: its
    /// `ls-remote` lines, empty when nothing matches. One round trip, and
    /// no pack: cheaper than a fetch that finds nothing new.
    pub async fn remote_refs(&self, auth: &Auth, url: &str, what: &str) -> Result<String> {
        git(auth, self.path(), &["ls-remote", "-q", url, what], &[]).await
    }

    /// Records that the remote's `what`, fetched into `into`, is now `commit`
    /// (a commit this repository pushed), so the next fetch starts from it.
    pub async fn set(&self, auth: &Auth, into: &str, commit: &str) -> Result<()> {
        git(auth, self.path(), &["update-ref", into, commit], &[]).await.map(drop)
    }

    async fn commit_of(&self, auth: &Auth, name: &str) -> Result<String> {
        let commit = git(auth, self.path(), &["rev-parse", "--verify", &format!("{name}^{{commit}}")], &[]).await?;
        Ok(commit.trim().to_string())
    }

    /// Whether the commit `id` is already here (a pinned revision never changes).
    pub async fn has_commit(&self, auth: &Auth, id: &str) -> bool {
        git(auth, self.path(), &["cat-file", "-e", &format!("{id}^{{commit}}")], &[]).await.is_ok()
    }
}

/// The local ref the revision reads see is fetched into.
pub const READ_REF: &str = "refs/ferry/read";

/// The local ref the remote `branch` is fetched into before a write.
pub fn branch_ref(branch: &str) -> String {
    format!("refs/ferry/heads/{branch}")
}
