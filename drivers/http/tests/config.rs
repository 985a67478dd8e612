//! ferry-driver-http as a separate process: no configuration value makes it
//! panic (issue 14); each is answered and the driver keeps serving.

use ferry_test_servers::{DriverProcess, Field};

const BIN: &str = env!("CARGO_BIN_EXE_ferry-driver-http");

#[tokio::test(flavor = "multi_thread")]
async fn hostile_configuration_values_never_crash_the_driver() {
    let secrets = tempfile::tempdir().unwrap();
    let d = DriverProcess::start(BIN, &[("FERRY_SECRETS_DIR", secrets.path().to_str().unwrap())]).await;
    // A server that has nothing: every request is answered 404.
    let server = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/index", server.local_addr().unwrap());
    std::thread::spawn(move || {
        use std::io::{Read, Write};
        for mut conn in server.incoming().flatten() {
            let mut buf = [0u8; 4096];
            let _ = conn.read(&mut buf);
            let _ = conn.write_all(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
        }
    });
    let fields = [
        Field::Value { name: "url", template: "{}", good: &url },
        Field::Value { name: "headers", template: "[{name: X-Test, value: {}}]", good: "ok" },
    ];
    let sent = ferry_test_servers::survives_hostile_configurations(&d, "http", secrets.path(), &fields, "k").await;
    assert!(sent >= 15, "{sent}");
}
