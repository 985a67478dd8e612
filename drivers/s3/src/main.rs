//! `ferry-driver-s3 SOCKET_PATH`: S3 and S3-compatible storage as an Argo artifact driver.
// glibc keeps freed part buffers in per-thread arenas; with a blocking
// thread per write, peak RSS on a 20 GiB load grew past 128 MiB. mimalloc
// returns them.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    match ferry_driver_s3::driver() {
        Ok(driver) => ferry_sdk::run(driver),
        Err(e) => {
            eprintln!("ferry-driver-s3: {e}");
            std::process::ExitCode::from(2)
        }
    }
}
