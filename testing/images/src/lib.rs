//! # ferry-image-tests
//!
//! The driver images built by `deploy/images/build.sh`, started through
//! testcontainers the way Argo starts a plugin container: the image's
//! entrypoint with the socket path as its only argument, the socket in a
//! volume shared with the caller, the image's own non-root user, and SIGTERM
//! to stop it. The tests are in `tests/`; they need the images, so they are
//! `#[ignore]`d in a plain `cargo test` and named `docker_*`, the tests
//! `scripts/test.sh` runs only when Docker works, after it has built them.
//!
//! Image names come from `FERRY_IMAGE_PREFIX` (default `ferry/driver-`) and
//! `FERRY_IMAGE_TAG` (default `dev`), so the same tests run against images
//! from a registry where one is reachable.

use testcontainers::GenericImage;
use testcontainers::core::WaitFor;

/// The image of one driver: `${FERRY_IMAGE_PREFIX}<driver>:${FERRY_IMAGE_TAG}`.
pub fn driver_image(driver: &str) -> GenericImage {
    let prefix = std::env::var("FERRY_IMAGE_PREFIX").unwrap_or_else(|_| "ferry/driver-".into());
    let tag = std::env::var("FERRY_IMAGE_TAG").unwrap_or_else(|_| "dev".into());
    // Readiness is the socket appearing in the shared volume, which the tests watch themselves.
    GenericImage::new(format!("{prefix}{driver}"), tag).with_wait_for(WaitFor::Nothing)
}

/// The name of one driver's image, as `--image-map` and `docker` take it.
pub fn driver_image_name(driver: &str) -> String {
    let image = driver_image(driver);
    format!("{}:{}", testcontainers::Image::name(&image), testcontainers::Image::tag(&image))
}

/// The S3 server image: `FERRY_S3_SERVER_IMAGE` (`name:tag`), default
/// `ferry/s3s-fs:dev`, which `testing/images/servers.sh` builds. Its
/// entrypoint must take s3s-fs's arguments (`--host --port --access-key
/// --secret-key DIR`).
pub fn s3_server_image() -> GenericImage {
    image_from_env("FERRY_S3_SERVER_IMAGE", "ferry/s3s-fs:dev")
}

/// The GCS server image: `FERRY_GCS_SERVER_IMAGE` (`name:tag`), default
/// `ferry/fake-gcs-server:dev`, which `testing/images/servers.sh` builds;
/// upstream `fsouza/fake-gcs-server` takes the same arguments.
pub fn gcs_server_image() -> GenericImage {
    image_from_env("FERRY_GCS_SERVER_IMAGE", "ferry/fake-gcs-server:dev")
}

fn image_from_env(var: &str, default: &str) -> GenericImage {
    let image = std::env::var(var).unwrap_or_else(|_| default.into());
    let (name, tag) = image.rsplit_once(':').filter(|(_, t)| !t.contains('/')).unwrap_or((&image, "latest"));
    GenericImage::new(name, tag).with_wait_for(WaitFor::Nothing)
}

/// A directory anyone may write, like the emptyDir Argo shares with a plugin
/// container (the images run as a non-root user).
pub fn shared_dir() -> tempfile::TempDir {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o777)).expect("chmod");
    dir
}
