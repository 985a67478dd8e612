//! `ferry-driver-http SOCKET_PATH`: Argo's `http:` artifacts as an artifact driver.
fn main() -> std::process::ExitCode {
    ferry_sdk::run(ferry_driver_http::HttpDriver::default())
}
