//! ferry-driver-http's part of Ferry's ObjectService, against a real HTTP
//! server (Python's `http.server`, which answers HEAD with Content-Length):
//! sizes from a HEAD, ranges not offered.

use ferry_sdk::ErrorKind;
use ferry_sdk::client::Location;
use ferry_test_servers::{DriverProcess, PythonFileServer};

const BIN: &str = env!("CARGO_BIN_EXE_ferry-driver-http");

#[tokio::test(flavor = "multi_thread")]
async fn sizes_come_from_a_head_and_ranges_are_not_offered() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("report.txt"), vec![b'x'; 12_345]).unwrap();
    let server = PythonFileServer::start(dir.path());
    let port = server.port;
    let d = DriverProcess::start(BIN, &[]).await;
    let at = |path: &str| Location::new("http", format!("{{url: 'http://127.0.0.1:{port}/{path}'}}"), "report.txt");

    assert_eq!(d.client.stat(&at("report.txt")).await.unwrap(), Some(12_345));
    assert_eq!(d.client.stat(&at("missing.txt")).await.unwrap_err().kind(), ErrorKind::NotFound);
    assert!(d.client.open_range(&at("report.txt"), 0, 10).await.unwrap().is_none());
}
