//! The local-filesystem driver: Ferry's embedded default and the SDK's worked
//! example. It is object_store's `LocalFileSystem` behind the SDK's
//! [`ObjectStoreDriver`], plus what a filesystem needs and an object store
//! does not: no key may resolve outside `root`, not even through a symlink
//! someone placed inside it, and writes are staged and renamed into place.
//!
//! Configuration (YAML or JSON):
//!
//! ```yaml
//! root: /var/lib/ferry/artifacts   # absolute; created if missing
//! ```

mod confined;

pub use confined::{ConfinedStore, STAGING_DIR};
use ferry_sdk::local::{self, Staging, local_error};
use ferry_sdk::{
    ArtifactKey, ByteStream, DeleteTarget, Driver, Error, KeyEncoding, ObjectStoreDriver, Result, Store,
    StoreConnector, TransferOptions,
};
use serde::Deserialize;
use std::path::PathBuf;
use std::sync::Arc;

/// The driver's name, as registered in `artifactDrivers`.
pub const DRIVER: &str = "fs";

/// What an artifact's `configuration` holds for this driver.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FsConfig {
    /// The directory every key lives under. Must be absolute.
    pub root: PathBuf,
}

/// Builds the confined store for one configuration string.
pub fn build_store(configuration: &str) -> Result<ConfinedStore> {
    let config: FsConfig = ferry_sdk::config::parse(configuration)?;
    let shown = ferry_sdk::shown(&config.root.to_string_lossy());
    if !config.root.is_absolute() {
        return Err(Error::invalid_field("root", format!("{shown} must be an absolute path")));
    }
    std::fs::create_dir_all(&config.root).map_err(|e| Error::from(e).context(format!("creating root {shown}")))?;
    ConfinedStore::new(&config.root)
}

/// One configured root: the confined store, also as the [`Store`] the
/// generic adapter works on.
#[derive(Clone, Debug)]
pub struct FsRoot {
    confined: Arc<ConfinedStore>,
    store: Store,
}

/// The filesystem driver: the generic object_store adapter for reads (whole,
/// by range, and sizes), lists and deletes, plus writes that are staged in the root's staging directory
/// and renamed into place. Saving a file is a kernel-side copy
/// (`copy_file_range`), as `cp` does, instead of two trips through user space.
pub struct FsDriver {
    inner: ObjectStoreDriver<FsStores>,
}

/// Builds confined stores from configuration strings. On its own, in an
/// [`ObjectStoreDriver`], it is a complete but slower driver: [`FsDriver`]
/// adds the staged kernel-side writes.
#[derive(Clone, Copy, Debug, Default)]
pub struct FsStores;

impl StoreConnector for FsStores {
    async fn connect(&self, configuration: &str) -> Result<Store> {
        Ok(Store::new(Arc::new(build_store(configuration)?)))
    }
}

/// The filesystem driver, ready for [`ferry_sdk::run`].
pub fn driver() -> FsDriver {
    let options = TransferOptions::default().with_key_encoding(KeyEncoding::Escaped);
    FsDriver { inner: ObjectStoreDriver::new(FsStores).with_options(options) }
}

impl FsDriver {
    /// The file `key` names, and a staging path for writing it.
    fn target(&self, root: &FsRoot, key: &ArtifactKey) -> Result<(PathBuf, Staging)> {
        key.require_object("save")?;
        let file = root.confined.file_path(&self.inner.store_path(key)?).map_err(Error::from)?;
        if file.is_dir() {
            return Err(Error::invalid_argument(format!(
                "key {key:?} is a directory in this filesystem store; a file cannot share its name"
            )));
        }
        let staging_dir = root.confined.staging_dir();
        std::fs::create_dir_all(&staging_dir).map_err(|e| local_error(e, "creating", &staging_dir))?;
        if let Some(parent) = file.parent() {
            std::fs::create_dir_all(parent).map_err(|e| local_error(e, "creating", parent))?;
        }
        Ok((file, Staging::in_dir(&staging_dir)))
    }
}

impl Driver for FsDriver {
    type Target = FsRoot;

    async fn connect(&self, configuration: &str) -> Result<FsRoot> {
        let confined = Arc::new(build_store(configuration)?);
        Ok(FsRoot { store: Store::new(confined.clone()), confined })
    }

    async fn open_stream(&self, root: &FsRoot, key: &ArtifactKey) -> Result<ByteStream> {
        self.inner.open_stream(&root.store, key).await
    }

    async fn save_stream(&self, root: &FsRoot, key: &ArtifactKey, data: ByteStream) -> Result<()> {
        let (file, staging) = self.target(root, key)?;
        local::write_staged(staging, &file, data).await.map(drop)
    }

    async fn save_file(&self, root: &FsRoot, key: &ArtifactKey, src: &std::path::Path) -> Result<()> {
        let (file, staging) = self.target(root, key)?;
        let from = src.to_path_buf();
        let to = staging.path().to_path_buf();
        tokio::task::spawn_blocking(move || std::fs::copy(&from, &to))
            .await
            .map_err(|e| Error::other(format!("copy task failed: {e}")))?
            .map_err(|e| local_error(e, "copying", src))?;
        staging.commit(&file).await
    }

    async fn load_file(&self, root: &FsRoot, key: &ArtifactKey, dst: &std::path::Path) -> Result<()> {
        self.inner.load_file(&root.store, key, dst).await
    }

    async fn delete_object(&self, root: &FsRoot, key: &ArtifactKey) -> Result<()> {
        self.inner.delete_object(&root.store, key).await
    }

    async fn delete(&self, root: &FsRoot, key: &ArtifactKey, target: DeleteTarget) -> Result<()> {
        self.inner.delete(&root.store, key, target).await
    }

    async fn list(&self, root: &FsRoot, key: &ArtifactKey) -> Result<Vec<ArtifactKey>> {
        self.inner.list(&root.store, key).await
    }

    async fn exists(&self, root: &FsRoot, key: &ArtifactKey) -> Result<bool> {
        self.inner.exists(&root.store, key).await
    }

    async fn size(&self, root: &FsRoot, key: &ArtifactKey) -> Result<u64> {
        self.inner.size(&root.store, key).await
    }

    async fn open_range(&self, root: &FsRoot, key: &ArtifactKey, range: std::ops::Range<u64>) -> Result<ByteStream> {
        self.inner.open_range(&root.store, key, range).await
    }

    async fn is_directory(&self, root: &FsRoot, key: &ArtifactKey) -> Result<bool> {
        self.inner.is_directory(&root.store, key).await
    }
}
