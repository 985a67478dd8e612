//! ferry-driver-http's part of Ferry's ObjectService, against a real HTTP
//! server (Python's `http.server`, which answers HEAD with Content-Length):
//! sizes from a HEAD, ranges not offered.

use ferry_sdk::ErrorKind;
use ferry_sdk::client::Location;
use ferry_test_servers::{DriverProcess, free_port, wait_for_port};
use std::process::{Child, Command, Stdio};

const BIN: &str = env!("CARGO_BIN_EXE_ferry-driver-http");

/// `python3 -m http.server` serving a directory, stopped on drop.
struct FileServer(Child);

impl Drop for FileServer {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn sizes_come_from_a_head_and_ranges_are_not_offered() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("report.txt"), vec![b'x'; 12_345]).unwrap();
    let port = free_port();
    let child = Command::new("python3")
        .args(["-m", "http.server", "--bind", "127.0.0.1", &port.to_string()])
        .current_dir(dir.path())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("python3 is missing");
    let _server = FileServer(child);
    wait_for_port("python3 -m http.server", port);
    let d = DriverProcess::start(BIN, &[]).await;
    let at = |path: &str| Location::new("http", format!("{{url: 'http://127.0.0.1:{port}/{path}'}}"), "report.txt");

    assert_eq!(d.client.stat(&at("report.txt")).await.unwrap(), Some(12_345));
    assert_eq!(d.client.stat(&at("missing.txt")).await.unwrap_err().kind(), ErrorKind::NotFound);
    assert!(d.client.open_range(&at("report.txt"), 0, 10).await.unwrap().is_none());
}
