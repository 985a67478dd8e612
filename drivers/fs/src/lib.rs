//! The local-filesystem driver: Ferry's embedded default and the SDK's worked
//! example. It is a configuration layer over [`ObjectStoreDriver`] and
//! object_store's `LocalFileSystem`, plus one safety rule that an object store
//! does not need: no key may resolve outside `root`, not even through a
//! symlink someone placed inside it.
//!
//! Configuration (YAML or JSON):
//!
//! ```yaml
//! root: /var/lib/ferry/artifacts   # absolute; created if missing
//! ```

mod confined;

pub use confined::ConfinedStore;
use ferry_sdk::{Error, KeyEncoding, ObjectStoreDriver, Result, StoreBuilder, TransferOptions};
use object_store::ObjectStore;
use serde::Deserialize;
use std::future::Future;
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

/// Builds the store for one configuration string.
pub fn build_store(configuration: &str) -> Result<Arc<dyn ObjectStore>> {
    let config: FsConfig = ferry_sdk::config::parse(configuration)?;
    if !config.root.is_absolute() {
        return Err(Error::invalid_config(format!(
            "invalid configuration: field `root`: {:?} must be an absolute path",
            config.root
        )));
    }
    std::fs::create_dir_all(&config.root)
        .map_err(|e| Error::from(e).context(format!("creating root {}", config.root.display())))?;
    Ok(Arc::new(ConfinedStore::new(&config.root)?))
}

/// Builds a [`ConfinedStore`] per configuration string.
#[derive(Clone, Copy, Debug, Default)]
pub struct FsStores;

impl StoreBuilder for FsStores {
    fn build(&self, configuration: &str) -> impl Future<Output = Result<Arc<dyn ObjectStore>>> + Send {
        std::future::ready(build_store(configuration))
    }
}

/// The filesystem driver.
pub type FsDriver = ObjectStoreDriver<FsStores>;

/// The filesystem driver, ready for [`ferry_sdk::run`].
pub fn driver() -> FsDriver {
    // Local disks gain nothing from many parts in flight; keep memory low.
    let options = TransferOptions::default()
        .with_key_encoding(KeyEncoding::Escaped)
        .with_part_size(8 << 20)
        .with_max_concurrency(2);
    ObjectStoreDriver::new(FsStores).with_options(options)
}
