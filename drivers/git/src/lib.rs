//! # ferry-driver-git
//!
//! Argo's `git:` artifact behind the plugin contract, and more: Load clones
//! the configured revision into the destination (shallow with `depth`, with
//! submodules unless `disableSubmodules`); the key, usually empty, picks a
//! path inside the repository. Every other read comes from a bare cache
//! repository kept per configuration and refreshed by incremental fetches
//! (ListObjects, IsDirectory, OpenStream, Load of a key); OpenStream of a
//! directory (or the root) streams a tar of it. Of Ferry's ObjectService only
//! sizes of files are served (from the tree); ranges are not. Save commits a
//! file or directory to a branch and pushes it, which Argo's built-in git
//! artifacts cannot do; concurrent Saves share one push.
//!
//! The git CLI does all of it (fetches, reads, commits, pushes, clones and
//! submodules), streaming blobs so memory stays flat whatever their size.
//! Credentials reach it through the child's environment only.

mod auth;
mod cache;
mod classify;
mod cli;
mod fetch;
pub mod settings;
mod tarball;
mod tree;
mod write;

use auth::Auth;
use cache::Cache;
use ferry_sdk::{ArtifactKey, ByteStream, Capabilities, DeleteTarget, Driver, Error, ErrorKind, Result};
use settings::{GitConfig, Start};
use std::path::Path;
use std::sync::{Arc, Mutex};
use tokio::sync::oneshot;
use tree::Node;
use write::Change;

pub use settings::GitConfig as Config;

/// A change waiting for the next commit, and where its outcome goes.
type Pending = (Change, oneshot::Sender<Result<()>>);

/// One configuration: the parsed settings, its credentials, its cache
/// repository and the commit reads see.
pub struct Target {
    cfg: Arc<GitConfig>,
    auth: Arc<Auth>,
    cache: Arc<Cache>,
    snapshot: tokio::sync::Mutex<Option<Snapshot>>,
    /// Changes queued while a commit is being pushed; the next writer takes
    /// them all into one push. Writers elsewhere are handled by retrying the push.
    pending: Mutex<Vec<Pending>>,
    writes: tokio::sync::Mutex<()>,
}

/// The tree reads see, and what the server said the revision was when it
/// was fetched (`git ls-remote`'s answer; empty when unknown).
#[derive(Clone)]
struct Snapshot {
    tree: String,
    seen: String,
}

/// The git driver.
#[derive(Default)]
pub struct GitDriver;

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> Result<T> + Send + 'static) -> Result<T> {
    tokio::task::spawn_blocking(f).await.map_err(|e| Error::other(format!("git task failed: {e}")))?
}

/// The same failure again, for each change of a batch that failed as a whole.
fn again(e: &Error) -> Error {
    Error::new(e.kind(), e.message().to_string())
}

impl Target {
    /// The tree reads see. Every read asks the server where the revision
    /// points now (one `ls-remote` round trip) and fetches only when that
    /// changed, so a read never sees an older version than the server has,
    /// whichever process or configuration pushed it. A commit id cannot
    /// move and is never asked about again.
    async fn snapshot(&self) -> Result<Snapshot> {
        let mut slot = self.snapshot.lock().await;
        let url = self.cfg.repo.trim();
        let what = match self.cfg.start() {
            Start::Commit(id) => {
                if let Some(s) = slot.as_ref() {
                    return Ok(s.clone());
                }
                if self.cache.has_commit(&self.auth, &id).await {
                    let fresh = self.snapshot_of(id, String::new()).await?;
                    *slot = Some(fresh.clone());
                    return Ok(fresh);
                }
                id
            }
            Start::Ref(name) => name,
            Start::RemoteHead => "HEAD".to_string(),
        };
        let seen = self.cache.remote_refs(&self.auth, url, &what).await?;
        if let Some(s) = slot.as_ref()
            && !seen.is_empty()
            && s.seen == seen
        {
            return Ok(s.clone());
        }
        let Some(commit) = self.cache.fetch(&self.auth, url, &what, cache::READ_REF).await? else {
            let rev = self.cfg.revision.as_deref().or(self.cfg.branch.as_deref()).unwrap_or("HEAD");
            return Err(Error::not_found(format!("revision {rev:?} not found in {}", classify::redact(url))));
        };
        let fresh = self.snapshot_of(commit, seen).await?;
        *slot = Some(fresh.clone());
        Ok(fresh)
    }

    async fn snapshot_of(&self, commit: String, seen: String) -> Result<Snapshot> {
        let cache = self.cache.clone();
        let tree = blocking(move || tree::root(cache.path(), &commit)).await?;
        Ok(Snapshot { tree, seen })
    }

    /// What `key` names in the configured revision.
    async fn node(&self, key: &ArtifactKey) -> Result<Option<Node>> {
        let snap = self.snapshot().await?;
        let (cache, key) = (self.cache.clone(), key.clone());
        blocking(move || tree::lookup(cache.path(), &snap.tree, &key)).await
    }

    /// The branch writes go to, or why this configuration is read-only.
    fn write_branch(&self, operation: &str) -> Result<(String, bool)> {
        match self.cfg.write_branch() {
            Some(b) => Ok((b, self.cfg.branch.is_some())),
            None => Err(Error::unsupported(format!(
                "{operation} refused: this configuration is read-only (no `branch`, and `revision` is {}); \
                 set `branch` to the branch {operation} should commit to",
                match &self.cfg.revision {
                    Some(r) => format!("{r:?}, a commit or tag"),
                    None => "unset".into(),
                }
            ))),
        }
    }

    /// Queues `change` and waits for the commit that carries it. Whoever
    /// holds the write lock next commits everything queued by then, one
    /// commit per change and one push, so concurrent Saves cost one fetch
    /// and one push between them rather than one each.
    async fn commit(&self, operation: &str, change: Change) -> Result<()> {
        let (branch, explicit) = self.write_branch(operation)?;
        let (tx, rx) = oneshot::channel();
        self.pending.lock().expect("write queue poisoned").push((change, tx));
        {
            let _leader = self.writes.lock().await;
            let batch = std::mem::take(&mut *self.pending.lock().expect("write queue poisoned"));
            if !batch.is_empty() {
                // Spawned, so a caller that goes away mid-push does not abandon the others' changes.
                let (cache, cfg, auth, name) =
                    (self.cache.clone(), self.cfg.clone(), self.auth.clone(), branch.clone());
                let pushed = tokio::spawn(async move {
                    let to = write::Destination { cache: &cache, cfg: &cfg, auth: &auth, branch: &name, explicit };
                    push_batch(&to, batch).await
                });
                // Nothing to tell the reads: each asks the server before it reads.
                let _ = pushed.await;
            }
        }
        rx.await.unwrap_or_else(|_| Err(Error::other("the commit carrying this change was abandoned")))
    }
}

/// Commits a batch and tells each change its outcome. A batch that fails for a reason one change could
/// cause (a file that vanished, a bad key) is retried one change at a
/// time, so one bad Save never fails the others.
async fn push_batch(to: &write::Destination<'_>, batch: Vec<Pending>) {
    let (changes, outcomes): (Vec<Change>, Vec<_>) = batch.into_iter().unzip();
    match write::commit(to, &changes).await {
        Ok(_) => {
            for outcome in outcomes {
                let _ = outcome.send(Ok(()));
            }
        }
        Err(e) if changes.len() > 1 && !matches!(e.kind(), ErrorKind::Transient | ErrorKind::PermissionDenied) => {
            for (change, outcome) in changes.into_iter().zip(outcomes) {
                let _ = outcome.send(write::commit(to, std::slice::from_ref(&change)).await.map(drop));
            }
        }
        Err(e) => {
            for outcome in outcomes {
                let _ = outcome.send(Err(again(&e)));
            }
        }
    }
}

fn submodule(key: &ArtifactKey) -> Error {
    Error::not_found(format!("{:?} is a submodule; its files live in another repository", key.as_str()))
}

fn not_found(key: &ArtifactKey) -> Error {
    Error::not_found(format!("no file or directory at {:?} in the configured revision", key.as_str()))
}

impl Driver for GitDriver {
    type Target = Target;

    async fn connect(&self, configuration: &str) -> Result<Target> {
        let cfg = GitConfig::parse(configuration)?;
        let auth = Auth::resolve(&cfg).await?;
        let cache = Cache::create(&auth).await?;
        Ok(Target {
            cfg: Arc::new(cfg),
            auth: Arc::new(auth),
            cache: Arc::new(cache),
            snapshot: tokio::sync::Mutex::new(None),
            pending: Mutex::new(Vec::new()),
            writes: tokio::sync::Mutex::new(()),
        })
    }

    /// GetCapabilities carries no configuration, so this is what the driver
    /// can do at best; a read-only configuration refuses writes per call.
    fn capabilities(&self) -> Capabilities {
        // The empty key is the repository itself: what ferry sends for a git
        // artifact, which carries no key in Argo.
        Capabilities::default().with_root_key()
    }

    async fn open_stream(&self, t: &Target, key: &ArtifactKey) -> Result<ByteStream> {
        match self.node_of(t, key).await? {
            Node::File { id, .. } | Node::Link(id) => Ok(tarball::blob(t.cache.clone(), id)),
            Node::Tree(id) => Ok(tarball::tar(t.cache.clone(), id)),
            Node::Submodule => Err(submodule(key)),
        }
    }

    /// A file's size from its tree entry, without reading the blob. A
    /// directory streams as a tar whose size is known only once it is
    /// built, so its size is Unsupported. `open_range` keeps the SDK's
    /// default, Unsupported.
    async fn size(&self, t: &Target, key: &ArtifactKey) -> Result<u64> {
        match self.node_of(t, key).await? {
            Node::File { size, .. } => Ok(size),
            Node::Link(id) => {
                let cache = t.cache.clone();
                let size = blocking(move || cli::local(cache.path(), &["cat-file", "-s", &id])).await?;
                size.trim().parse().map_err(|_| Error::other(format!("git cat-file -s answered {size:?}")))
            }
            Node::Tree(_) => Err(Error::unsupported(format!(
                "{:?} is a directory, streamed as a tar whose size is known only once it is built",
                key.as_str()
            ))),
            Node::Submodule => Err(submodule(key)),
        }
    }

    async fn save_stream(&self, t: &Target, key: &ArtifactKey, data: ByteStream) -> Result<()> {
        key.require_object("save")?;
        t.write_branch("save")?;
        let spool = tempfile::NamedTempFile::new().map_err(|e| Error::from(e).context("spooling the upload"))?;
        let path = spool.path().to_path_buf();
        ferry_sdk::local::write_atomically(&path, data).await?;
        self.save(t, key, &path).await
    }

    async fn delete_object(&self, t: &Target, key: &ArtifactKey) -> Result<()> {
        key.require_object("delete")?;
        self.refuse_delete(t)?;
        t.commit("delete", Change::RemoveFile(key.clone())).await
    }

    async fn list(&self, t: &Target, key: &ArtifactKey) -> Result<Vec<ArtifactKey>> {
        let Some(Node::Tree(id)) = t.node(key).await? else { return Ok(Vec::new()) };
        let cache = t.cache.clone();
        let files = blocking(move || tree::files(cache.path(), &id)).await?;
        files.into_iter().filter(|(_, node)| *node != Node::Submodule).map(|(path, _)| key.join(&path)).collect()
    }

    async fn exists(&self, t: &Target, key: &ArtifactKey) -> Result<bool> {
        Ok(matches!(t.node(key).await?, Some(Node::File { .. } | Node::Link(_))))
    }

    async fn is_directory(&self, t: &Target, key: &ArtifactKey) -> Result<bool> {
        Ok(matches!(t.node(key).await?, Some(Node::Tree(_))))
    }

    async fn delete(&self, t: &Target, key: &ArtifactKey, target: DeleteTarget) -> Result<()> {
        self.refuse_delete(t)?;
        if key.is_root() {
            let (branch, _) = t.write_branch("delete")?;
            let _one_at_a_time = t.writes.lock().await;
            let result = write::delete_branch(&t.cfg, &t.auth, &branch).await;
            *t.snapshot.lock().await = None;
            return result;
        }
        match target {
            // `update-index --force-remove` of a directory's path removes nothing.
            DeleteTarget::Object => t.commit("delete", Change::RemoveFile(key.clone())).await,
            DeleteTarget::Directory => t.commit("delete", Change::RemoveTree(key.clone())).await,
        }
    }

    async fn save_file(&self, t: &Target, key: &ArtifactKey, src: &Path) -> Result<()> {
        self.save(t, key, src).await
    }

    async fn save(&self, t: &Target, key: &ArtifactKey, src: &Path) -> Result<()> {
        t.commit("save", Change::Put(key.clone(), src.to_path_buf())).await
    }

    async fn load(&self, t: &Target, key: &ArtifactKey, dst: &Path) -> Result<()> {
        if key.is_root() {
            return checkout(t, dst).await;
        }
        let node = self.node_of(t, key).await?;
        let (cache, dst) = (t.cache.clone(), dst.to_path_buf());
        blocking(move || {
            let parent = dst.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
            std::fs::create_dir_all(parent).map_err(Error::from)?;
            // Written beside the destination and renamed, so it appears complete or not at all.
            let staging = tempfile::Builder::new()
                .prefix(".ferry-git-")
                .tempdir_in(parent)
                .map_err(|e| Error::from(e).context(format!("creating a directory in {}", parent.display())))?;
            let tmp = staging.path().join("x");
            tree::write_out(cache.path(), &node, &tmp)?;
            if dst.is_dir() && !dst.is_symlink() {
                std::fs::remove_dir_all(&dst).map_err(Error::from)?;
            }
            std::fs::rename(&tmp, &dst).map_err(|e| Error::from(e).context(format!("moving into {}", dst.display())))
        })
        .await
    }
}

impl GitDriver {
    async fn node_of(&self, t: &Target, key: &ArtifactKey) -> Result<Node> {
        t.node(key).await?.ok_or_else(|| not_found(key))
    }
    fn refuse_delete(&self, t: &Target) -> Result<()> {
        if t.cfg.allow_delete {
            Ok(())
        } else {
            Err(Error::unsupported(
                "delete refused: git artifacts are kept unless the configuration sets `allowDelete: true` \
                 (Delete then commits the removal of the key, or deletes `branch` for the empty key)",
            ))
        }
    }
}

/// Load of the root key: a clone with a worktree in `dst`, like Argo's.
async fn checkout(t: &Target, dst: &Path) -> Result<()> {
    fetch::checkout(&t.cfg, &t.auth, dst).await
}
