//! `ferry-driver-s3 SOCKET_PATH`: S3 and S3-compatible storage as an Argo artifact driver.
fn main() -> std::process::ExitCode {
    ferry_sdk::run_with(ferry_driver_s3::driver)
}
