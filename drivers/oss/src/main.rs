//! `ferry-driver-oss SOCKET_PATH`: Alibaba Cloud OSS as an Argo artifact driver.
fn main() -> std::process::ExitCode {
    ferry_sdk::run_with(ferry_driver_oss::driver)
}
