//! `ferry-driver-s3 SOCKET_PATH`: S3 and S3-compatible storage as an Argo artifact driver.
fn main() -> std::process::ExitCode {
    match ferry_driver_s3::driver() {
        Ok(driver) => ferry_sdk::run(driver),
        Err(e) => {
            eprintln!("ferry-driver-s3: {e}");
            std::process::ExitCode::from(2)
        }
    }
}
