//! `ferry-driver-fs SOCKET_PATH`: serves the local filesystem as an Argo artifact driver.
fn main() -> std::process::ExitCode {
    ferry_sdk::run(ferry_driver_fs::driver())
}
