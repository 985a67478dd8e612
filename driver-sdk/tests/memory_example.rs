//! The "driver in 30 lines" from the docs, served on a real unix socket: the
//! SDK's defaults must give it files, directories, recursive delete and
//! not-found semantics without any more code.

#[path = "../examples/memory_driver.rs"]
mod memory_driver;

use ferry_sdk::ErrorKind;
use ferry_sdk::client::{DriverClient, Location};
use std::time::Duration;

async fn start() -> (DriverClient, tokio::sync::oneshot::Sender<()>, tokio::task::JoinHandle<()>, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("plugins/memory/socket");
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let sock = socket.clone();
    let server = tokio::spawn(async move {
        let shutdown = async move {
            let _ = stopped.await;
        };
        ferry_sdk::serve(&sock, memory_driver::Memory::default(), shutdown, Duration::from_secs(2)).await.unwrap();
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
