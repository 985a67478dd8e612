//! The "driver in 30 lines" from the docs, served on a real unix socket: the
//! SDK's defaults must give it files, directories, recursive delete and
//! not-found semantics without any more code, and leave Ferry's optional
//! `ferry.v1.ObjectService` unoffered.

#[path = "../examples/memory_driver.rs"]
mod memory_driver;

use bytes::Bytes;
use ferry_sdk::client::{DriverClient, Location};
use ferry_sdk::{ArtifactKey, ByteStream, Driver, Error, ErrorKind, Result};
use futures::StreamExt;
use std::time::Duration;
use tonic_reflection::pb::v1::ServerReflectionRequest;
use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;

async fn start() -> (DriverClient, tokio::sync::oneshot::Sender<()>, tokio::task::JoinHandle<()>, tempfile::TempDir) {
    start_driver(memory_driver::Memory::default()).await
}

async fn start_driver<D: Driver>(
    driver: D,
) -> (DriverClient, tokio::sync::oneshot::Sender<()>, tokio::task::JoinHandle<()>, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("plugins/memory/socket");
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let sock = socket.clone();
    let server = tokio::spawn(async move {
        let shutdown = async move {
            let _ = stopped.await;
        };
        ferry_sdk::serve(&sock, driver, shutdown, Duration::from_secs(2)).await.unwrap();
    });
    let client = DriverClient::connect(&socket, Duration::from_secs(5)).await.unwrap();
    (client, stop, server, dir)
}

#[tokio::test]
async fn the_thirty_line_driver_is_complete() {
    let (client, stop, server, dir) = start().await;
    let at = |key: &str| Location::new("memory", "", key);

    let src = dir.path().join("out");
    std::fs::create_dir_all(src.join("sub/ünï")).unwrap();
    std::fs::write(src.join("a.txt"), b"a").unwrap();
    std::fs::write(src.join("sub/ünï/b"), vec![7u8; 3 << 20]).unwrap();
    client.save(&at("wf/out"), &src).await.unwrap();
    assert_eq!(client.list(&at("wf/out")).await.unwrap(), vec!["wf/out/a.txt", "wf/out/sub/ünï/b"]);
    assert!(client.is_directory(&at("wf/out")).await.unwrap());

    let dst = dir.path().join("in.tmp");
    client.load(&at("wf/out"), &dst).await.unwrap();
    assert_eq!(std::fs::read(dst.join("sub/ünï/b")).unwrap(), vec![7u8; 3 << 20]);

    // OpenStream re-frames the single 3 MiB chunk into frames of at most 2 MiB.
    let mut raw = client.raw();
    let req = ferry_sdk::pb::OpenStreamRequest { artifact: Some(at("wf/out/sub/ünï/b").to_artifact()) };
    let mut frames = raw.open_stream(req).await.unwrap().into_inner();
    let mut sizes = Vec::new();
    while let Some(f) = frames.message().await.unwrap() {
        sizes.push((f.data.len(), f.is_end));
    }
    assert_eq!(sizes, vec![(2 << 20, false), (1 << 20, false), (0, true)]);

    // Without the trailing `/` Delete names one object, and none is at `wf/out`.
    client.delete(&at("wf/out")).await.unwrap();
    assert!(client.is_directory(&at("wf/out")).await.unwrap());
    client.delete(&at("wf/out/")).await.unwrap();
    client.delete(&at("wf/out/")).await.unwrap();
    assert_eq!(client.list(&at("wf/out")).await.unwrap_err().kind(), ErrorKind::NotFound);
    let err = client.load(&at("wf/out"), &dir.path().join("gone")).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound);
    assert_eq!(client.open_stream(&at("nothing")).await.err().map(|e| e.kind()), Some(ErrorKind::NotFound));

    stop.send(()).unwrap();
    server.await.unwrap();
    assert!(!dir.path().join("plugins/memory/socket").exists());
}

#[tokio::test]
async fn a_driver_without_sizes_or_ranges_answers_none_not_an_error() {
    let (client, _stop, _server, _dir) = start().await;
    let at = Location::new("memory", "", "wf/a");
    client.save_stream(&at, futures::stream::iter([Ok(Bytes::from_static(b"abc"))]).boxed()).await.unwrap();
    assert_eq!(client.stat(&at).await.unwrap(), None);
    assert!(client.open_range(&at, 0, 2).await.unwrap().is_none());
    // The raw answer is UNIMPLEMENTED, as from a driver written without the extension.
    let req = ferry_sdk::pb::ferry_v1::StatRequest { artifact: Some(at.to_artifact()) };
    assert_eq!(client.raw_objects().stat(req).await.unwrap_err().code(), tonic::Code::Unimplemented);
}

/// What server reflection answers `request` with, as grpcurl asks it.
async fn reflect(client: &DriverClient, request: MessageRequest) -> MessageResponse {
    let channel = DriverClient::channel(client.socket(), Duration::from_secs(5)).await.unwrap();
    let mut reflection = ServerReflectionClient::new(channel);
    let ask = ServerReflectionRequest { host: String::new(), message_request: Some(request) };
    let mut answers = reflection.server_reflection_info(futures::stream::iter([ask])).await.unwrap().into_inner();
    answers.message().await.unwrap().and_then(|a| a.message_response).expect("an answer")
}

#[tokio::test]
async fn reflection_and_health_show_both_services() {
    let (client, _stop, _server, _dir) = start().await;
    let MessageResponse::ListServicesResponse(list) =
        reflect(&client, MessageRequest::ListServices(String::new())).await
    else {
        panic!("not a service list")
    };
    let names: Vec<_> = list.service.into_iter().map(|s| s.name).collect();
    for service in [ferry_sdk::pb::SERVICE_NAME, ferry_sdk::pb::ferry_v1::SERVICE_NAME] {
        assert!(names.iter().any(|n| n == service), "{service} missing from {names:?}");
        // grpcurl describes a service from the file holding it, with its imports.
        let described = reflect(&client, MessageRequest::FileContainingSymbol(service.into())).await;
        assert!(matches!(described, MessageResponse::FileDescriptorResponse(f) if !f.file_descriptor_proto.is_empty()));
        let channel = DriverClient::channel(client.socket(), Duration::from_secs(5)).await.unwrap();
        let health = tonic_health::pb::health_client::HealthClient::new(channel)
            .check(tonic_health::pb::HealthCheckRequest { service: service.into() })
            .await
            .unwrap();
        assert_eq!(health.into_inner().status, tonic_health::pb::health_check_response::ServingStatus::Serving as i32);
    }
}

/// The memory driver, with ranges whose stream fails after its first bytes,
/// as a connection cut mid-body does.
#[derive(Default)]
struct CutRanges(memory_driver::Memory);

impl Driver for CutRanges {
    type Target = ();

    async fn connect(&self, configuration: &str) -> Result<()> {
        self.0.connect(configuration).await
    }

    async fn open_stream(&self, _: &(), key: &ArtifactKey) -> Result<ByteStream> {
        self.0.open_stream(&(), key).await
    }

    async fn save_stream(&self, _: &(), key: &ArtifactKey, data: ByteStream) -> Result<()> {
        self.0.save_stream(&(), key, data).await
    }

    async fn delete_object(&self, _: &(), key: &ArtifactKey) -> Result<()> {
        self.0.delete_object(&(), key).await
    }

    async fn list(&self, _: &(), key: &ArtifactKey) -> Result<Vec<ArtifactKey>> {
        self.0.list(&(), key).await
    }

    async fn open_range(&self, _: &(), _: &ArtifactKey, _: std::ops::Range<u64>) -> Result<ByteStream> {
        let items = [Ok(Bytes::from_static(b"abc")), Err(Error::new(ErrorKind::Transient, "connection reset"))];
        Ok(futures::stream::iter(items).boxed())
    }
}

#[tokio::test]
async fn a_range_that_fails_part_way_ends_in_an_error_not_early() {
    let (client, _stop, _server, _dir) = start_driver(CutRanges::default()).await;
    let mut data = client.open_range(&Location::new("memory", "", "wf/a"), 0, 100).await.unwrap().unwrap();
    let mut got = Vec::new();
    let err = loop {
        match data.next().await {
            Some(Ok(chunk)) => got.extend_from_slice(&chunk),
            Some(Err(e)) => break e,
            None => panic!("the stream ended cleanly after {} bytes", got.len()),
        }
    };
    assert_eq!(err.kind(), ErrorKind::Transient);
    assert!(err.to_string().contains("connection reset"), "{err}");
    assert!(data.next().await.is_none(), "nothing after the error");
}

/// The memory driver with a slow `connect` that counts its calls.
#[derive(Default)]
struct SlowConnect {
    inner: memory_driver::Memory,
    connects: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

impl Driver for SlowConnect {
    type Target = ();

    async fn connect(&self, configuration: &str) -> Result<()> {
        self.connects.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        tokio::time::sleep(Duration::from_millis(200)).await;
        self.inner.connect(configuration).await
    }

    async fn open_stream(&self, _: &(), key: &ArtifactKey) -> Result<ByteStream> {
        self.inner.open_stream(&(), key).await
    }

    async fn save_stream(&self, _: &(), key: &ArtifactKey, data: ByteStream) -> Result<()> {
        self.inner.save_stream(&(), key, data).await
    }

    async fn delete_object(&self, _: &(), key: &ArtifactKey) -> Result<()> {
        self.inner.delete_object(&(), key).await
    }

    async fn list(&self, _: &(), key: &ArtifactKey) -> Result<Vec<ArtifactKey>> {
        self.inner.list(&(), key).await
    }
}

#[tokio::test]
async fn parallel_first_calls_of_a_configuration_share_one_connect() {
    let driver = SlowConnect::default();
    let connects = driver.connects.clone();
    let (client, _stop, _server, _dir) = start_driver(driver).await;
    let calls = (0..16).map(|i| {
        let client = client.clone();
        async move { client.is_directory(&Location::new("memory", "same", format!("k{i}"))).await }
    });
    for answer in futures::future::join_all(calls).await {
        assert!(!answer.unwrap());
    }
    assert_eq!(connects.load(std::sync::atomic::Ordering::SeqCst), 1, "one target for one configuration");
    client.is_directory(&Location::new("memory", "other", "k")).await.unwrap();
    assert_eq!(connects.load(std::sync::atomic::Ordering::SeqCst), 2, "another configuration connects anew");
}

#[test]
fn the_docs_show_exactly_the_tested_example() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let doc = std::fs::read_to_string(root.join("docs/write-a-driver.md")).unwrap();
    let example = std::fs::read_to_string(root.join("driver-sdk/examples/memory_driver.rs")).unwrap();
    let block = doc.split("```rust\n").nth(1).and_then(|rest| rest.split("```").next()).expect("a rust block");
    assert_eq!(block, example, "docs/write-a-driver.md must show driver-sdk/examples/memory_driver.rs verbatim");
    let code_lines = example.lines().filter(|l| !l.trim().is_empty() && !l.trim_start().starts_with("//")).count();
    assert!(code_lines <= 40, "the example grew to {code_lines} lines");
}
