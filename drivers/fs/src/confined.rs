//! `LocalFileSystem` that refuses every path resolving outside its root.

use async_trait::async_trait;
use bytes::Bytes;
use futures::stream::BoxStream;
use futures::{StreamExt, TryStreamExt};
use object_store::local::LocalFileSystem;
use object_store::path::Path;
use object_store::{
    CopyOptions, GetOptions, GetResult, ListResult, MultipartUpload, ObjectMeta, ObjectStore, PutMultipartOptions,
    PutOptions, PutPayload, PutResult, RenameOptions, Result,
};
use std::fmt;
use std::ops::Range;
use std::path::PathBuf;
use std::sync::Arc;

/// Name of the staging directory inside the root.
pub const STAGING_DIR: &str = ".ferry-staging";

/// A `LocalFileSystem` confined to its root: object_store follows symlinks,
/// so a link inside the root could otherwise read or write anywhere.
#[derive(Debug, Clone)]
pub struct ConfinedStore {
    inner: Arc<LocalFileSystem>,
    root: Arc<PathBuf>,
}

impl ConfinedStore {
    /// A store over `root`, which must exist.
    pub fn new(root: &std::path::Path) -> ferry_sdk::Result<Self> {
        let root = root
            .canonicalize()
            .map_err(|e| ferry_sdk::Error::from(e).context(format!("resolving root {}", root.display())))?;
        let inner = LocalFileSystem::new_with_prefix(&root)
            .map_err(ferry_sdk::Error::from)?
            // Empty directories left by deletes would otherwise read as nothing
            // at all to listing but still block a file of the same name.
            .with_automatic_cleanup(true);
        Ok(ConfinedStore { inner: Arc::new(inner), root: Arc::new(root) })
    }

    /// The root every key lives under.
    pub fn root(&self) -> &std::path::Path {
        &self.root
    }

    /// Where writes are staged before being renamed into place: inside the
    /// root (so the rename never crosses filesystems) but hidden from every
    /// listing and unreachable by any key.
    pub fn staging_dir(&self) -> PathBuf {
        self.root.join(STAGING_DIR)
    }

    /// The file `location` names, after checking it stays inside the root.
    pub fn file_path(&self, location: &Path) -> Result<PathBuf> {
        self.confine(location)?;
        self.inner.path_to_filesystem(location)
    }

    /// Fails unless `location`, with every symlink on its way resolved, stays
    /// under the root. Paths that do not exist yet are judged by their
    /// deepest existing ancestor, which is where a write would land.
    fn confine(&self, location: &Path) -> Result<()> {
        if location.parts().next().is_some_and(|first| first.as_ref() == STAGING_DIR) {
            return Err(object_store::Error::PermissionDenied {
                path: location.to_string(),
                source: format!("keys under {STAGING_DIR}/ are reserved for the driver's staging area").into(),
            });
        }
        let full = self.inner.path_to_filesystem(location)?;
        let mut probe = full.as_path();
        loop {
            if std::fs::symlink_metadata(probe).is_ok() {
                let real = probe
                    .canonicalize()
                    .map_err(|e| object_store::Error::Generic { store: "fs", source: Box::new(e) })?;
                if real.starts_with(self.root.as_path()) {
                    return Ok(());
                }
                return Err(object_store::Error::PermissionDenied {
                    path: location.to_string(),
                    source: format!(
                        "{} resolves to {}, outside the driver root {}",
                        full.display(),
                        real.display(),
                        self.root.display()
                    )
                    .into(),
                });
            }
            match probe.parent() {
                Some(parent) => probe = parent,
                None => return Ok(()),
            }
        }
    }
}

impl fmt::Display for ConfinedStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ConfinedStore({})", self.root.display())
    }
}

#[async_trait]
#[deny(clippy::missing_trait_methods)]
impl ObjectStore for ConfinedStore {
    async fn put_opts(&self, location: &Path, payload: PutPayload, opts: PutOptions) -> Result<PutResult> {
        self.confine(location)?;
        self.inner.put_opts(location, payload, opts).await
    }

    async fn put_multipart_opts(&self, location: &Path, opts: PutMultipartOptions) -> Result<Box<dyn MultipartUpload>> {
        self.confine(location)?;
        self.inner.put_multipart_opts(location, opts).await
    }

    async fn get_opts(&self, location: &Path, options: GetOptions) -> Result<GetResult> {
        self.confine(location)?;
        self.inner.get_opts(location, options).await
    }

    async fn get_ranges(&self, location: &Path, ranges: &[Range<u64>]) -> Result<Vec<Bytes>> {
        self.confine(location)?;
        self.inner.get_ranges(location, ranges).await
    }

    fn delete_stream(&self, locations: BoxStream<'static, Result<Path>>) -> BoxStream<'static, Result<Path>> {
        let checker = self.clone();
        let checked = locations.and_then(move |p| std::future::ready(checker.confine(&p).map(|()| p))).boxed();
        self.inner.delete_stream(checked)
    }

    fn list(&self, prefix: Option<&Path>) -> BoxStream<'static, Result<ObjectMeta>> {
        if let Some(p) = prefix
            && let Err(e) = self.confine(p)
        {
            return futures::stream::once(std::future::ready(Err(e))).boxed();
        }
        let checker = self.clone();
        self.inner
            .list(prefix)
            .try_filter(move |meta| {
                // Files reached through a symlinked directory that leaves the
                // root are not ours to show.
                // (Staged writes are refused by `confine` too, so they never show.)
                let inside = checker.confine(&meta.location).is_ok();
                if !inside {
                    tracing::warn!(path = %meta.location, "skipping path that resolves outside the root");
                }
                std::future::ready(inside)
            })
            .boxed()
    }

    fn list_with_offset(&self, prefix: Option<&Path>, offset: &Path) -> BoxStream<'static, Result<ObjectMeta>> {
        let offset = offset.clone();
        self.list(prefix).try_filter(move |m| std::future::ready(m.location > offset)).boxed()
    }

    async fn list_with_delimiter(&self, prefix: Option<&Path>) -> Result<ListResult> {
        if let Some(p) = prefix {
            self.confine(p)?;
        }
        let mut result = self.inner.list_with_delimiter(prefix).await?;
        result.objects.retain(|m| self.confine(&m.location).is_ok());
        result.common_prefixes.retain(|p| self.confine(p).is_ok());
        Ok(result)
    }

    async fn copy_opts(&self, from: &Path, to: &Path, options: CopyOptions) -> Result<()> {
        self.confine(from)?;
        self.confine(to)?;
        self.inner.copy_opts(from, to, options).await
    }

    async fn rename_opts(&self, from: &Path, to: &Path, options: RenameOptions) -> Result<()> {
        self.confine(from)?;
        self.confine(to)?;
        self.inner.rename_opts(from, to, options).await
    }
}
