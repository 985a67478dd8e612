//! The conformance suite against driver images started through
//! testcontainers as Argo runs a plugin container (the socket in a shared
//! volume, the image's own non-root user), with the storage server in a
//! container started the same way. The suite reaches the driver through
//! `--socket`; the cases that need to start and signal the driver themselves
//! are covered by `tests/images.rs` (SIGTERM → exit 0) and by
//! `ferry-conformance --image`. `#[ignore]`d without the images;
//! `scripts/test.sh` builds them and runs these.

use ferry_image_tests::{driver_image, gcs_server_image, shared_dir};
use ferry_test_servers::http_request;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use testcontainers::core::Mount;
use testcontainers::runners::AsyncRunner;
use testcontainers::{ContainerAsync, GenericImage, ImageExt};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port()
}

async fn wait_for_port(what: &str, port: u16) {
    let began = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(began.elapsed() < Duration::from_secs(30), "{what} is not listening on {port} after 30 s");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The profile's `launch.env`, which the driver container gets.
fn launch_env(profile: &str) -> Vec<(String, String)> {
    let doc: serde_yaml_ng::Value = serde_yaml_ng::from_str(profile).expect("profile YAML");
    doc["launch"]["env"]
        .as_mapping()
        .map(|m| m.iter().filter_map(|(k, v)| Some((k.as_str()?.to_string(), v.as_str()?.to_string()))).collect())
        .unwrap_or_default()
}

/// Runs `profile` (text) against the driver `driver`'s image; the suite's
/// verdict is its exit status.
async fn suite_against_image(driver: &str, profile: &str) {
    let sockets = shared_dir();
    let work = shared_dir();
    let inside = format!("/tmp/artifact-plugins/{driver}");
    let mut request = driver_image(driver)
        .with_cmd([format!("{inside}/socket")])
        .with_mount(Mount::bind_mount(sockets.path().to_string_lossy(), inside))
        // Load and Save name files in the suite's work directory, at the same path on both sides.
        .with_mount(Mount::bind_mount(work.path().to_string_lossy(), work.path().to_string_lossy()))
        .with_network("host");
    for (k, v) in launch_env(profile) {
        request = request.with_env_var(k, v);
    }
    let container: ContainerAsync<GenericImage> =
        request.start().await.unwrap_or_else(|e| panic!("starting the {driver} image: {e}"));
    let socket = sockets.path().join("socket");
    let began = Instant::now();
    while !socket.exists() {
        assert!(began.elapsed() < Duration::from_secs(30), "{driver}: no socket 30 s after the container started");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let profile_file = work.path().join(format!("{driver}.yaml"));
    std::fs::write(&profile_file, profile).expect("profile");
    let conformance = repo().join("target/debug/ferry-conformance");
    assert!(conformance.exists(), "{} is missing: cargo build --workspace first", conformance.display());
    let out = std::process::Command::new(conformance)
        .current_dir(repo())
        .arg("--profile")
        .arg(&profile_file)
        .arg("--socket")
        .arg(&socket)
        .arg("--work-dir")
        .arg(work.path())
        .output()
        .expect("running ferry-conformance");
    let report = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{driver} image failed the suite:\n{report}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Not a run that skipped its way to success: most cases ran.
    let passed: usize = report
        .lines()
        .find_map(|l| l.strip_suffix(" skipped").and_then(|l| l.split(" passed").next()?.trim().parse().ok()))
        .unwrap_or(0);
    assert!(passed >= 60, "{driver}: only {passed} cases passed:\n{report}");
    container.stop_with_timeout(Some(10)).await.expect("docker stop");
    assert_eq!(container.exit_code().await.expect("exit code"), Some(0), "{driver}: exit code after SIGTERM");
}

#[tokio::test]
#[ignore = "needs Docker and the images of deploy/images/build.sh and testing/images/servers.sh: scripts/test.sh"]
async fn docker_gcs_image_passes_the_suite_against_a_gcs_server_in_a_container() {
    let port = free_port();
    let url = format!("http://127.0.0.1:{port}");
    let _server = gcs_server_image()
        .with_network("host")
        .with_cmd([
            "-scheme".to_string(),
            "http".into(),
            "-host".into(),
            "127.0.0.1".into(),
            "-port".into(),
            port.to_string(),
            "-backend".into(),
            "memory".into(),
            "-external-url".into(),
            url.clone(),
            "-log-level".into(),
            "warn".into(),
        ])
        .start()
        .await
        .unwrap_or_else(|e| panic!("starting the GCS server image (testing/images/servers.sh builds it): {e}"));
    wait_for_port("the GCS server", port).await;
    for bucket in ["ferry-test", "ferry-test-alt"] {
        let (status, text) =
            http_request(port, "POST", "/storage/v1/b?project=test", &format!("{{\"name\": \"{bucket}\"}}"));
        assert_eq!(status, 200, "creating bucket {bucket}: {text}");
    }
    let profile = std::fs::read_to_string(repo().join("conformance/profiles/gcs.yaml")).expect("gcs profile");
    suite_against_image("gcs", &profile.replace("127.0.0.1:19017", &format!("127.0.0.1:{port}"))).await;
}

#[tokio::test]
#[ignore = "needs Docker and the images of deploy/images/build.sh: scripts/test.sh"]
async fn docker_fs_image_passes_the_suite() {
    let profile = std::fs::read_to_string(repo().join("conformance/profiles/fs.yaml")).expect("fs profile");
    suite_against_image("fs", &profile).await;
}
