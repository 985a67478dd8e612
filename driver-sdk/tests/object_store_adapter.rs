//! `ObjectStoreDriver` over object_store's own `InMemory` store, served on a
//! real unix socket: the multipart and streaming paths S3 and OSS use.

use bytes::Bytes;
use ferry_sdk::client::{DriverClient, Location};
use ferry_sdk::{ErrorKind, ObjectStoreDriver, Store, StoreConnector, TransferOptions};
use futures::StreamExt;
use object_store::memory::InMemory;
use object_store::{ObjectStore, ObjectStoreExt};
use std::sync::Arc;
use std::time::Duration;

/// Every configuration gets the same store.
struct Shared(Arc<dyn ObjectStore>);

impl StoreConnector for Shared {
    async fn connect(&self, _configuration: &str) -> ferry_sdk::Result<Store> {
        Ok(Store::new(self.0.clone()))
    }
}

struct Served {
    client: DriverClient,
    store: Arc<InMemory>,
    dir: tempfile::TempDir,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl Drop for Served {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

async fn serve(options: TransferOptions) -> Served {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("socket");
    let store = Arc::new(InMemory::new());
    let shared: Arc<dyn ObjectStore> = store.clone();
    let driver = ObjectStoreDriver::new(Shared(shared)).with_options(options);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let sock = socket.clone();
    tokio::spawn(async move {
        let shutdown = async move {
            let _ = stopped.await;
        };
        ferry_sdk::serve(&sock, driver, shutdown, Duration::from_secs(1)).await.unwrap();
    });
    let client = DriverClient::connect(&socket, Duration::from_secs(5)).await.unwrap();
    Served { client, store, dir, stop: Some(stop) }
}

fn at(key: &str) -> Location {
    Location::new("memory", "", key)
}

fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len).map(|i| ((i * 131 + seed as usize) % 253) as u8).collect()
}

async fn read_all(client: &DriverClient, key: &str) -> Vec<u8> {
    let mut s = client.open_stream(&at(key)).await.unwrap();
    let mut out = Vec::new();
    while let Some(c) = s.next().await {
        out.extend_from_slice(&c.unwrap());
    }
    out
}

/// Small thresholds so a few MiB exercise multipart with several parts.
fn small_parts() -> TransferOptions {
    TransferOptions::default().with_multipart_threshold(5 << 20).with_part_size(5 << 20).with_max_concurrency(2)
}

#[tokio::test]
async fn multipart_file_and_stream_uploads_are_byte_exact() {
    let s = serve(small_parts()).await;
    let data = pattern(23 * 1024 * 1024 + 5, 1);
    let src = s.dir.path().join("big.bin");
    std::fs::write(&src, &data).unwrap();
    s.client.save(&at("wf/big.bin"), &src).await.unwrap();
    assert_eq!(s.store.head(&"wf/big.bin".into()).await.unwrap().size, data.len() as u64);
    assert_eq!(read_all(&s.client, "wf/big.bin").await, data);

    let dst = s.dir.path().join("big.tmp");
    s.client.load(&at("wf/big.bin"), &dst).await.unwrap();
    assert_eq!(std::fs::read(&dst).unwrap(), data);

    let chunks: Vec<_> = data.chunks(777_777).map(|c| Ok(Bytes::copy_from_slice(c))).collect();
    s.client.save_stream(&at("wf/streamed.bin"), futures::stream::iter(chunks).boxed()).await.unwrap();
    assert_eq!(read_all(&s.client, "wf/streamed.bin").await, data);

    // Below the threshold: a single PUT.
    s.client
        .save_stream(&at("wf/small"), futures::stream::iter(vec![Ok(Bytes::from_static(b"x"))]).boxed())
        .await
        .unwrap();
    assert_eq!(read_all(&s.client, "wf/small").await, b"x");
}

#[tokio::test]
async fn a_failed_multipart_stream_stores_nothing() {
    let s = serve(small_parts()).await;
    let chunks: Vec<ferry_sdk::Result<Bytes>> = vec![
        Ok(Bytes::from(pattern(12 << 20, 2))),
        Err(ferry_sdk::Error::new(ErrorKind::Transient, "source went away")),
    ];
    let err = s.client.save_stream(&at("wf/partial"), futures::stream::iter(chunks).boxed()).await.unwrap_err();
    assert!(err.to_string().contains("source went away"), "{err}");
    tokio::time::sleep(Duration::from_millis(200)).await;
    let listed: Vec<_> = s.store.list(None).map(|m| m.unwrap().location.to_string()).collect().await;
    assert!(listed.is_empty(), "{listed:?}");
}

#[tokio::test]
async fn keys_are_verbatim_and_directories_list_recursively() {
    let s = serve(TransferOptions::default()).await;
    let src = s.dir.path().join("tree");
    for rel in ["a", "b/c", "b/d/e", "odd #[]~%.txt"] {
        std::fs::create_dir_all(src.join(rel).parent().unwrap()).unwrap();
        std::fs::write(src.join(rel), rel).unwrap();
    }
    s.client.save(&at("p"), &src).await.unwrap();
    s.client.save(&at("px/z"), &src.join("a")).await.unwrap();
    // Verbatim keys: what Argo's built-in S3 driver wrote is found under the same name.
    let names: Vec<_> = s.store.list(None).map(|m| m.unwrap().location.to_string()).collect().await;
    assert!(names.contains(&"p/odd #[]~%.txt".to_string()), "{names:?}");

    let mut listed = s.client.list(&at("p")).await.unwrap();
    listed.sort();
    assert_eq!(listed, vec!["p/a", "p/b/c", "p/b/d/e", "p/odd #[]~%.txt"]);
    assert!(s.client.is_directory(&at("p/b")).await.unwrap());
    assert!(!s.client.is_directory(&at("p/a")).await.unwrap());

    // The file key `p` is one object, and there is none: nothing under p/ goes.
    s.client.delete(&at("p")).await.unwrap();
    assert_eq!(s.client.list(&at("p")).await.unwrap().len(), 4);
    s.client.delete(&at("p/")).await.unwrap();
    let left: Vec<_> = s.store.list(None).map(|m| m.unwrap().location.to_string()).collect().await;
    assert_eq!(left, vec!["px/z"]);
}

#[test]
fn part_size_grows_so_ten_thousand_parts_reach_any_size() {
    let opts = TransferOptions::default();
    assert_eq!(opts.part_size_for(1 << 30), opts.part_size);
    let five_tib = 5u64 << 40;
    let part = opts.part_size_for(five_tib);
    assert!(part * ferry_sdk::store::MAX_PARTS >= five_tib);
    assert!(part >= opts.part_size);
}
