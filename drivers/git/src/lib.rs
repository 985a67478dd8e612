//! # ferry-driver-git
//!
//! Argo's `git:` artifact behind the plugin contract, and more: Load clones
//! the configured revision into the destination (shallow with `depth`, with
//! submodules unless `disableSubmodules`); the key, usually empty, picks a
//! path inside the repository. ListObjects, IsDirectory and OpenStream read
//! the commit's tree from a cached bare clone; OpenStream of a directory (or
//! the root) streams a tar of it. Of Ferry's ObjectService only sizes of
//! files are served (from blob headers); ranges are not. Save commits a file or directory to a
//! branch and pushes it, which Argo's built-in git artifacts cannot do.
//!
//! gix does the fetching and reading (inside `spawn_blocking`); the git CLI
//! does what gix cannot yet: push and submodules. Credentials reach gix as a
//! callback and the CLI through the child's environment only.

mod auth;
mod classify;
mod cli;
mod fetch;
pub mod settings;
mod tarball;
mod tree;
mod write;

use auth::Auth;
use bytes::Bytes;
use ferry_sdk::{ArtifactKey, ByteStream, Capabilities, DeleteTarget, Driver, Error, Result};
use futures::StreamExt;
use gix::ObjectId;
use settings::{GitConfig, Start};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tree::Node;

pub use settings::GitConfig as Config;

/// How long a cached clone of a branch or tag is trusted before it is fetched
/// again; a commit id never changes, so its clone is kept for the configuration's life.
const REFRESH_AFTER: Duration = Duration::from_secs(15);

/// The chunk size of a file streamed by OpenStream.
const CHUNK: usize = 256 << 10;

/// One configuration: the parsed settings, its credentials and its cached clone.
pub struct Target {
    cfg: Arc<GitConfig>,
    auth: Arc<Auth>,
    snapshot: tokio::sync::Mutex<Option<Arc<Snapshot>>>,
    /// Writes through one configuration go one at a time; writers elsewhere are handled by retrying the push.
    writes: tokio::sync::Mutex<()>,
}

/// A bare clone of the configured revision.
struct Snapshot {
    _dir: tempfile::TempDir,
    repo: gix::ThreadSafeRepository,
    tree: ObjectId,
    fetched: Instant,
}

/// The git driver.
#[derive(Default)]
pub struct GitDriver;

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> Result<T> + Send + 'static) -> Result<T> {
    tokio::task::spawn_blocking(f).await.map_err(|e| Error::other(format!("git task failed: {e}")))?
}

impl Target {
    /// The cached clone, fetched on first use and again once it is stale.
    async fn snapshot(&self) -> Result<Arc<Snapshot>> {
        let mut slot = self.snapshot.lock().await;
        if let Some(s) = slot.as_ref() {
            let pinned = matches!(self.cfg.start(), Start::Commit(_));
            if pinned || s.fetched.elapsed() < REFRESH_AFTER {
                return Ok(s.clone());
            }
        }
        let (cfg, auth) = (self.cfg.clone(), self.auth.clone());
        let fresh = blocking(move || {
            let dir = tempfile::Builder::new()
                .prefix("ferry-git-")
                .tempdir()
                .map_err(|e| Error::from(e).context("creating the clone cache directory"))?;
            let (repo, commit) = fetch::clone(&cfg, &auth, &dir.path().join("repo.git"), fetch::Kind::TreeOnly)?;
            let tree = tree::root(&repo, commit)?;
            Ok(Snapshot { _dir: dir, repo: repo.into_sync(), tree, fetched: Instant::now() })
        })
        .await?;
        let fresh = Arc::new(fresh);
        *slot = Some(fresh.clone());
        Ok(fresh)
    }

    /// What `key` names in the configured revision.
    async fn node(&self, key: &ArtifactKey) -> Result<(Arc<Snapshot>, Option<Node>)> {
        let snap = self.snapshot().await?;
        let (s, key) = (snap.clone(), key.clone());
        let node = blocking(move || tree::lookup(&s.repo.to_thread_local(), s.tree, &key)).await?;
        Ok((snap, node))
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

    async fn commit(&self, operation: &str, change: write::Change<'_>) -> Result<()> {
        let (branch, explicit) = self.write_branch(operation)?;
        let _one_at_a_time = self.writes.lock().await;
        let result = write::commit(&self.cfg, &self.auth, &branch, explicit, change).await;
        // Reads after a write must see it, whatever happened.
        *self.snapshot.lock().await = None;
        result
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
        Ok(Target {
            cfg: Arc::new(cfg),
            auth: Arc::new(auth),
            snapshot: tokio::sync::Mutex::new(None),
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
        let (snap, node) = self.node_of(t, key).await?;
        match node {
            Node::File(id, _) | Node::Link(id) => {
                let data = blocking(move || tree::blob(&snap.repo.to_thread_local(), id)).await?;
                let data = Bytes::from(data);
                let chunks: Vec<Result<Bytes>> = (0..data.len().div_ceil(CHUNK))
                    .map(|i| Ok(data.slice(i * CHUNK..((i + 1) * CHUNK).min(data.len()))))
                    .collect();
                Ok(futures::stream::iter(chunks).boxed())
            }
            Node::Tree(id) => Ok(tarball::stream(snap.repo.clone(), id)),
            Node::Submodule => Err(submodule(key)),
        }
    }

    /// A file's size from its blob's header, without reading the blob. A
    /// directory streams as a tar whose size is known only once it is
    /// built, so its size is Unsupported. `open_range` keeps the SDK's
    /// default, Unsupported: a blob is read whole whatever part is wanted,
    /// so a range would save nothing over OpenStream.
    async fn size(&self, t: &Target, key: &ArtifactKey) -> Result<u64> {
        let (snap, node) = self.node_of(t, key).await?;
        match node {
            Node::File(id, _) | Node::Link(id) => {
                blocking(move || tree::blob_size(&snap.repo.to_thread_local(), id)).await
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
        t.commit("delete", write::Change::RemoveFile(key)).await
    }

    async fn list(&self, t: &Target, key: &ArtifactKey) -> Result<Vec<ArtifactKey>> {
        let (snap, node) = t.node(key).await?;
        let Some(Node::Tree(id)) = node else { return Ok(Vec::new()) };
        let files = blocking(move || tree::files(&snap.repo.to_thread_local(), id)).await?;
        files.into_iter().map(|(path, _)| key.join(&path)).collect()
    }

    async fn exists(&self, t: &Target, key: &ArtifactKey) -> Result<bool> {
        Ok(matches!(t.node(key).await?.1, Some(Node::File(..) | Node::Link(_))))
    }

    async fn is_directory(&self, t: &Target, key: &ArtifactKey) -> Result<bool> {
        Ok(matches!(t.node(key).await?.1, Some(Node::Tree(_))))
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
            DeleteTarget::Object => t.commit("delete", write::Change::RemoveFile(key)).await,
            DeleteTarget::Directory => t.commit("delete", write::Change::RemoveTree(key)).await,
        }
    }

    async fn save_file(&self, t: &Target, key: &ArtifactKey, src: &Path) -> Result<()> {
        self.save(t, key, src).await
    }

    async fn save(&self, t: &Target, key: &ArtifactKey, src: &Path) -> Result<()> {
        t.commit("save", write::Change::Put(key, src)).await
    }

    async fn load(&self, t: &Target, key: &ArtifactKey, dst: &Path) -> Result<()> {
        if key.is_root() {
            return checkout(t, dst).await;
        }
        let (snap, node) = self.node_of(t, key).await?;
        let dst = dst.to_path_buf();
        blocking(move || {
            let parent = dst.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
            std::fs::create_dir_all(parent).map_err(Error::from)?;
            // Written beside the destination and renamed, so it appears complete or not at all.
            let staging = tempfile::Builder::new()
                .prefix(".ferry-git-")
                .tempdir_in(parent)
                .map_err(|e| Error::from(e).context(format!("creating a directory in {}", parent.display())))?;
            let tmp = staging.path().join("x");
            tree::write_out(&snap.repo.to_thread_local(), node, &tmp)?;
            if dst.is_dir() && !dst.is_symlink() {
                std::fs::remove_dir_all(&dst).map_err(Error::from)?;
            }
            std::fs::rename(&tmp, &dst).map_err(|e| Error::from(e).context(format!("moving into {}", dst.display())))
        })
        .await
    }
}

impl GitDriver {
    async fn node_of(&self, t: &Target, key: &ArtifactKey) -> Result<(Arc<Snapshot>, Node)> {
        match t.node(key).await? {
            (snap, Some(node)) => Ok((snap, node)),
            (_, None) => Err(not_found(key)),
        }
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
    let (cfg, auth, to) = (t.cfg.clone(), t.auth.clone(), dst.to_path_buf());
    blocking(move || fetch::clone(&cfg, &auth, &to, fetch::Kind::Worktree).map(drop)).await?;
    let result = async {
        // gix has no checkout of the main worktree after a fetch; HEAD already
        // points at the configured commit, so a hard reset writes its files.
        cli::git(&t.auth, dst, &["reset", "--hard", "-q", "HEAD"], &[]).await?;
        if !t.cfg.disable_submodules && tokio::fs::try_exists(dst.join(".gitmodules")).await.unwrap_or(false) {
            cli::git(&t.auth, dst, &["submodule", "update", "--init", "--recursive", "--force"], &[]).await?;
        }
        Ok(())
    }
    .await;
    if result.is_err() {
        let _ = tokio::fs::remove_dir_all(dst).await;
    }
    result
}
