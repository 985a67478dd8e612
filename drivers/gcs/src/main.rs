//! `ferry-driver-gcs SOCKET_PATH`: Google Cloud Storage as an Argo artifact driver.
fn main() -> std::process::ExitCode {
    ferry_sdk::run_with(ferry_driver_gcs::driver)
}
