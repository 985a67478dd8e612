//! `ferry-driver-oss SOCKET_PATH`: Alibaba Cloud OSS as an Argo artifact driver.
fn main() -> std::process::ExitCode {
    match ferry_driver_oss::driver() {
        Ok(driver) => ferry_sdk::run(driver),
        Err(e) => {
            eprintln!("ferry-driver-oss: {e}");
            std::process::ExitCode::from(2)
        }
    }
}
