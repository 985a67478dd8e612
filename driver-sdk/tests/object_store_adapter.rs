//! `ObjectStoreDriver` over object_store's own `InMemory` store, served on a
//! real unix socket: the multipart, streaming, size and range paths S3 and
//! OSS use.

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

/// The bytes of `offset..offset + length` through ReadRange, or the error
/// that ended the stream.
async fn read_range(client: &DriverClient, key: &str, offset: u64, length: u64) -> ferry_sdk::Result<Vec<u8>> {
    let mut s = client.open_range(&at(key), offset, length).await?.expect("the adapter serves ReadRange");
    let mut out = Vec::new();
    while let Some(c) = s.next().await {
        out.extend_from_slice(&c?);
    }
    Ok(out)
}

#[tokio::test]
async fn stat_tells_the_size_of_objects_and_not_found_of_the_rest() {
    let s = serve(TransferOptions::default()).await;
    s.store.put(&"wf/a".into(), pattern(5 << 20, 3).into()).await.unwrap();
    s.store.put(&"wf/empty".into(), Bytes::new().into()).await.unwrap();
    assert_eq!(s.client.stat(&at("wf/a")).await.unwrap(), Some(5 << 20));
    assert_eq!(s.client.stat(&at("wf/empty")).await.unwrap(), Some(0));
    // A directory holds objects but is none: OpenStream would not find it either.
    for missing in ["wf/nothing", "wf"] {
        let err = s.client.stat(&at(missing)).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::NotFound, "{missing}: {err}");
        assert!(err.to_string().contains(missing), "the error names the key: {err}");
    }
    // A malformed key is the caller's error, as in every other call.
    assert_eq!(s.client.stat(&at("a/../b")).await.unwrap_err().kind(), ErrorKind::InvalidArgument);
}

#[tokio::test]
async fn ranges_are_byte_exact_and_clamped_to_the_object() {
    let s = serve(TransferOptions::default()).await;
    let data = pattern((5 << 20) + 7, 4);
    let len = data.len() as u64;
    s.store.put(&"wf/r".into(), data.clone().into()).await.unwrap();
    let slice = |a: u64, b: u64| data[a as usize..b as usize].to_vec();
    let cases = [
        ("start", 0, 10, slice(0, 10)),
        ("middle, over several frames", 1000, 3 << 20, slice(1000, 1000 + (3 << 20))),
        ("end", len - 10, 10, slice(len - 10, len)),
        ("past the end, clamped", len - 10, 1000, slice(len - 10, len)),
        ("everything", 0, u64::MAX, data.clone()),
        ("at the end", len, 5, vec![]),
        ("past the end", len + 100, 5, vec![]),
        ("empty", 3, 0, vec![]),
    ];
    for (what, offset, length, want) in cases {
        let got = read_range(&s.client, "wf/r", offset, length).await.unwrap_or_else(|e| panic!("{what}: {e}"));
        assert!(got == want, "{what}: {} bytes, wanted {}", got.len(), want.len());
    }
    // A missing key is NOT_FOUND even when no byte is asked for.
    for length in [0, 10] {
        let err = s.client.open_range(&at("wf/none"), 0, length).await.err().expect("NOT_FOUND");
        assert_eq!(err.kind(), ErrorKind::NotFound, "length {length}: {err}");
    }
}

#[tokio::test]
async fn range_frames_are_bounded() {
    let s = serve(TransferOptions::default()).await;
    s.store.put(&"wf/big".into(), pattern(5 << 20, 5).into()).await.unwrap();
    let req = ferry_sdk::pb::ferry_v1::ReadRangeRequest {
        artifact: Some(at("wf/big").to_artifact()),
        offset: 1,
        length: 5 << 20,
    };
    let mut frames = s.client.raw_objects().read_range(req).await.unwrap().into_inner();
    let mut sizes = Vec::new();
    while let Some(f) = frames.message().await.unwrap() {
        sizes.push(f.data.len());
    }
    assert!(sizes.iter().all(|&n| n > 0 && n <= ferry_sdk::server::MAX_FRAME_BYTES), "{sizes:?}");
    assert_eq!(sizes.iter().sum::<usize>(), (5 << 20) - 1);
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
