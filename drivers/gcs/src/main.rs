//! `ferry-driver-gcs SOCKET_PATH`: Google Cloud Storage as an Argo artifact driver.
fn main() -> std::process::ExitCode {
    match ferry_driver_gcs::driver() {
        Ok(driver) => ferry_sdk::run(driver),
        Err(e) => {
            eprintln!("ferry-driver-gcs: {e}");
            std::process::ExitCode::from(2)
        }
    }
}
