//! `ferry-driver-git SOCKET_PATH`: Argo's `git:` artifacts (and commits pushed on Save) as an artifact driver.
fn main() -> std::process::ExitCode {
    ferry_sdk::run(ferry_driver_git::GitDriver)
}
