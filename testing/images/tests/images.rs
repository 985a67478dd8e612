//! Each driver image run as Argo runs a plugin container (see the crate docs).
//! `#[ignore]`d without the images; `scripts/test.sh` builds them and runs these.

use ferry_image_tests::{driver_image, shared_dir};
use ferry_sdk::client::{DriverClient, Location};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use testcontainers::core::Mount;
use testcontainers::runners::AsyncRunner;
use testcontainers::{ContainerAsync, ContainerRequest, GenericImage, ImageExt};

const NEEDS_IMAGES: &str = "needs Docker and the driver images of deploy/images/build.sh: scripts/test.sh";

/// A driver container serving on `/tmp/artifact-plugins/<driver>/socket`,
/// which is `socket` on this side of the shared volume.
struct Plugin {
    container: ContainerAsync<GenericImage>,
    socket: PathBuf,
    _sockets: tempfile::TempDir,
}

async fn start(
    driver: &str,
    with: impl FnOnce(ContainerRequest<GenericImage>) -> ContainerRequest<GenericImage>,
) -> Plugin {
    let sockets = shared_dir();
    let inside = format!("/tmp/artifact-plugins/{driver}");
    let request = driver_image(driver)
        .with_cmd([format!("{inside}/socket")])
        .with_mount(Mount::bind_mount(sockets.path().to_string_lossy(), inside));
    let container =
        with(request).start().await.unwrap_or_else(|e| panic!("starting the {driver} image ({NEEDS_IMAGES}): {e}"));
    let socket = sockets.path().join("socket");
    let started = Instant::now();
    while !socket.exists() {
        assert!(started.elapsed() < Duration::from_secs(30), "{driver}: no socket 30 s after the container started");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    Plugin { container, socket, _sockets: sockets }
}

/// Stops the container as the kubelet would (SIGTERM, then a grace period)
/// and checks Argo's rule: exit code 0, and the socket gone.
async fn stop_cleanly(driver: &str, plugin: Plugin) {
    plugin.container.stop_with_timeout(Some(10)).await.expect("docker stop");
    let code = plugin.container.exit_code().await.expect("exit code");
    assert_eq!(code, Some(0), "{driver}: exit code after SIGTERM");
    assert!(!plugin.socket.exists(), "{driver}: the socket is left behind after exit");
}

/// Every image: serves on the path it is given, as a non-root user, and exits 0 on SIGTERM.
async fn serves_as_non_root_and_stops_cleanly(driver: &str) {
    let plugin = start(driver, |r| r).await;
    let owner = std::fs::metadata(&plugin.socket).expect("socket").uid();
    assert_ne!(owner, 0, "{driver}: the socket was created by root; the image must run as a non-root user");
    let client = DriverClient::connect(&plugin.socket, Duration::from_secs(10)).await.expect("connect");
    client.supports_save_stream().await.expect("GetCapabilities");
    stop_cleanly(driver, plugin).await;
}

#[tokio::test]
#[ignore = "needs Docker and the driver images of deploy/images/build.sh: scripts/test.sh"]
async fn docker_fs_image_lifecycle() {
    serves_as_non_root_and_stops_cleanly("fs").await;
}

#[tokio::test]
#[ignore = "needs Docker and the driver images of deploy/images/build.sh: scripts/test.sh"]
async fn docker_s3_image_lifecycle() {
    serves_as_non_root_and_stops_cleanly("s3").await;
}

#[tokio::test]
#[ignore = "needs Docker and the driver images of deploy/images/build.sh: scripts/test.sh"]
async fn docker_oss_image_lifecycle() {
    serves_as_non_root_and_stops_cleanly("oss").await;
}

#[tokio::test]
#[ignore = "needs Docker and the driver images of deploy/images/build.sh: scripts/test.sh"]
async fn docker_gcs_image_lifecycle() {
    serves_as_non_root_and_stops_cleanly("gcs").await;
}

#[tokio::test]
#[ignore = "needs Docker and the driver images of deploy/images/build.sh: scripts/test.sh"]
async fn docker_git_image_lifecycle() {
    serves_as_non_root_and_stops_cleanly("git").await;
}

#[tokio::test]
#[ignore = "needs Docker and the driver images of deploy/images/build.sh: scripts/test.sh"]
async fn docker_http_image_lifecycle() {
    serves_as_non_root_and_stops_cleanly("http").await;
}

/// The fs image moves files between a step's volume and its store: Save and
/// Load through the shared volume, as the sidecar and init container do.
#[tokio::test]
#[ignore = "needs Docker and the driver images of deploy/images/build.sh: scripts/test.sh"]
async fn docker_fs_image_moves_files_through_the_shared_volume() {
    let (store, work) = (shared_dir(), shared_dir());
    let (store_path, work_path) =
        (store.path().to_string_lossy().into_owned(), work.path().to_string_lossy().into_owned());
    let plugin = start("fs", |r| {
        r.with_mount(Mount::bind_mount(store_path.clone(), "/store"))
            .with_mount(Mount::bind_mount(work_path.clone(), work_path.clone()))
    })
    .await;
    let client = DriverClient::connect(&plugin.socket, Duration::from_secs(10)).await.expect("connect");
    let at = Location::new("fs", "root: /store", "runs/1/out.bin");
    let data: Vec<u8> = (0..3 << 20).map(|i: u32| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect();
    let src = work.path().join("out.bin");
    std::fs::write(&src, &data).expect("write");
    client.save(&at, &src).await.expect("Save");
    let stored = store.path().join("runs/1/out.bin");
    assert_eq!(std::fs::read(&stored).expect("stored object"), data, "the object in the store");
    assert_ne!(std::fs::metadata(&stored).expect("stored").uid(), 0, "written by a non-root user");

    let dst: &Path = &work.path().join("in/loaded.bin");
    client.load(&at, dst).await.expect("Load");
    assert_eq!(std::fs::read(dst).expect("loaded"), data, "the loaded file");

    let missing = client.load(&at.with_key("runs/1/absent"), &work.path().join("absent")).await;
    let err = missing.expect_err("loading a missing key must fail");
    assert_eq!(err.kind(), ferry_sdk::ErrorKind::NotFound, "{err}");
    stop_cleanly("fs", plugin).await;
}

/// Without its socket argument the image exits non-zero and says why.
#[tokio::test]
#[ignore = "needs Docker and the driver images of deploy/images/build.sh: scripts/test.sh"]
async fn docker_image_without_a_socket_argument_exits_non_zero() {
    let container =
        driver_image("fs").start().await.unwrap_or_else(|e| panic!("starting the fs image ({NEEDS_IMAGES}): {e}"));
    let started = Instant::now();
    while container.is_running().await.expect("inspect") {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "still running 10 s after starting with no socket argument"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let code = container.exit_code().await.expect("exit code");
    assert!(matches!(code, Some(c) if c != 0), "exit code {code:?}");
    let stderr = String::from_utf8_lossy(&container.stderr_to_vec().await.expect("logs")).into_owned();
    assert!(stderr.contains("socket"), "the message should name the missing socket path: {stderr:?}");
}
