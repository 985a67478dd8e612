//! A driver's whole process: logging, the command line, the runtime and
//! the exit code.

use super::serve;
use super::shutdown::{exit_with_parent, parent_gone, shutdown_grace, shutdown_signal};
use super::socket::socket_path_from_args;
use crate::driver::Driver;
use crate::error::{Error, Result};

/// `FERRY_MAX_BLOCKING_THREADS`: threads for blocking work (file I/O).
pub const MAX_BLOCKING_THREADS_ENV: &str = "FERRY_MAX_BLOCKING_THREADS";

/// Default of [`MAX_BLOCKING_THREADS_ENV`].
pub const DEFAULT_MAX_BLOCKING_THREADS: usize = 64;

fn max_blocking_threads() -> Result<usize> {
    Ok(crate::env::positive(MAX_BLOCKING_THREADS_ENV)?.map_or(DEFAULT_MAX_BLOCKING_THREADS, |n| n as usize))
}

/// Everything a driver's `main` needs: logging, the socket path from the
/// command line, a runtime, SIGTERM handling. Exits 0 after a clean shutdown.
///
/// ```no_run
/// use std::sync::Arc;
/// use object_store::{ObjectStore, memory::InMemory};
///
/// fn main() -> std::process::ExitCode {
///     let store: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
///     ferry_sdk::run(ferry_sdk::ObjectStoreDriver::new(move |_: &str| Ok(store.clone())))
/// }
/// ```
pub fn run<D: Driver>(driver: D) -> std::process::ExitCode {
    run_with(|| Ok(driver))
}

/// As [`run`], for a driver whose construction can fail (it reads its
/// environment, say): `make` runs once logging is set up, and its error is a
/// start-up failure like any other, exit code 1. See the crate documentation
/// for the exit codes.
///
/// ```no_run
/// fn main() -> std::process::ExitCode {
///     ferry_sdk::run_with(|| {
///         let options = ferry_sdk::TransferOptions::from_env()?;
///         let store: std::sync::Arc<dyn object_store::ObjectStore> =
///             std::sync::Arc::new(object_store::memory::InMemory::new());
///         Ok(ferry_sdk::ObjectStoreDriver::new(move |_: &str| Ok(store.clone())).with_options(options))
///     })
/// }
/// ```
pub fn run_with<D: Driver>(make: impl FnOnce() -> Result<D>) -> std::process::ExitCode {
    crate::logging::init_driver("info");
    let outcome = (|| {
        let driver = make()?;
        let socket = socket_path_from_args(std::env::args())?;
        let grace = shutdown_grace()?;
        let watch_parent = exit_with_parent()?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            // Blocking work (file reads and copies) queues beyond this
            // instead of growing to tokio's 512 threads under a flood.
            .max_blocking_threads(max_blocking_threads()?)
            .enable_all()
            .build()
            .map_err(|e| Error::other(format!("starting the async runtime: {e}")))?;
        runtime.block_on(async {
            crate::metrics::serve_from_env().await?;
            let signal = shutdown_signal()?;
            let orphaned = parent_gone(watch_parent);
            let shutdown = async move {
                tokio::select! {
                    () = signal => {}
                    () = orphaned => tracing::info!("parent process gone: shutting down"),
                }
            };
            serve(&socket, driver, shutdown, grace).await
        })
    })();
    // After the runtime is gone, so the spans of the last calls are closed;
    // the exporter has its own thread and needs no runtime.
    crate::traces::shutdown();
    match outcome {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(err) => {
            tracing::error!(kind = %err.kind(), error = %err, "driver failed");
            eprintln!("error: {err}");
            std::process::ExitCode::FAILURE
        }
    }
}
