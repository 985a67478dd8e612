//! ferry-driver-http saves one object per URL: a directory is refused
//! before any request, so nothing at the URL is overwritten by a part of it.
//! Against a real HTTP server (Python's `http.server`, which logs every
//! request it gets).

use ferry_sdk::ErrorKind;
use ferry_sdk::client::Location;
use ferry_test_servers::{DriverProcess, PythonFileServer};

const BIN: &str = env!("CARGO_BIN_EXE_ferry-driver-http");

#[tokio::test(flavor = "multi_thread")]
async fn a_directory_save_is_refused_before_any_request() {
    let served = tempfile::tempdir().unwrap();
    let server = PythonFileServer::start(served.path());
    let port = server.port;
    let d = DriverProcess::start(BIN, &[]).await;
    let at = Location::new("http", format!("{{url: 'http://127.0.0.1:{port}/upload'}}"), "upload");

    let tree = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(tree.path().join("sub")).unwrap();
    std::fs::write(tree.path().join("a.txt"), "a").unwrap();
    std::fs::write(tree.path().join("sub/b.txt"), "b").unwrap();
    let err = d.client.save(&at, tree.path()).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unsupported, "{err}");
    assert!(err.to_string().contains("is a directory"), "{err}");
    // The server is up and logs requests: a GET shows in its log, no PUT ever did.
    let _ = d.client.stat(&Location::new("http", format!("{{url: 'http://127.0.0.1:{port}/'}}"), "x")).await;
    let seen = server.requests();
    assert!(seen.contains("\"HEAD / "), "the server's log shows requests: {seen}");
    assert!(!seen.contains("PUT"), "the driver sent a PUT for a directory: {seen}");
}
