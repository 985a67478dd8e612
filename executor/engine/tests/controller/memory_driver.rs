//! A real ferry-sdk driver, `ObjectStoreDriver` over object_store's
//! `InMemory`, served in this process on a unix socket by the SDK's own
//! `serve`: artifacts go through the same gRPC contract as in production,
//! and the test reads the stored objects back from memory.

use ferry_sdk::{ObjectStoreDriver, Store, StoreConnector};
use futures::StreamExt;
use object_store::memory::InMemory;
use object_store::{ObjectStore, ObjectStoreExt};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// Every configuration names the same store.
struct Shared(Arc<dyn ObjectStore>);

impl StoreConnector for Shared {
    async fn connect(&self, _configuration: &str) -> ferry_sdk::Result<Store> {
        Ok(Store::new(self.0.clone()))
    }
}

/// The driver, served until dropped.
pub struct MemoryDriver {
    pub socket: PathBuf,
    store: Arc<InMemory>,
    _dir: tempfile::TempDir,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl MemoryDriver {
    /// Serves a new, empty store.
    pub fn serve() -> MemoryDriver {
        let dir = tempfile::tempdir().unwrap();
        let socket = dir.path().join("memory").join("socket");
        let store = Arc::new(InMemory::new());
        let driver = ObjectStoreDriver::new(Shared(store.clone()));
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let at = socket.clone();
        tokio::spawn(async move {
            let shutdown = async move {
                let _ = stopped.await;
            };
            ferry_sdk::serve(&at, driver, shutdown, Duration::from_secs(1)).await.unwrap();
        });
        MemoryDriver { socket, store, _dir: dir, stop: Some(stop) }
    }

    /// Every stored object: key → contents.
    pub async fn objects(&self) -> Vec<(String, Vec<u8>)> {
        let metas: Vec<_> = self.store.list(None).map(|m| m.unwrap().location).collect().await;
        let mut out = Vec::new();
        for path in metas {
            let bytes = self.store.get(&path).await.unwrap().bytes().await.unwrap();
            out.push((path.to_string(), bytes.to_vec()));
        }
        out.sort();
        out
    }
}

impl Drop for MemoryDriver {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}
