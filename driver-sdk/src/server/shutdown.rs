//! How a driver stops: the signals that start it, the calls it waits for,
//! for how long, and the parent whose death also stops it.

use crate::error::{Error, Result};
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use tokio::sync::Notify;

/// Environment variable bounding how long in-flight calls may run after
/// SIGTERM before the driver exits anyway.
pub const SHUTDOWN_GRACE_ENV: &str = "FERRY_SHUTDOWN_GRACE_SECONDS";

/// Default grace period: below the 10 s `terminationGracePeriodSeconds` Argo's
/// own test cluster uses, so the driver exits 0 before being killed.
pub const DEFAULT_SHUTDOWN_GRACE: Duration = Duration::from_secs(8);

/// How long shutdown waits for calls already sent to reach their handlers.
const SETTLE: Duration = Duration::from_millis(100);

/// Counts calls in progress, so shutdown can end as soon as the last one
/// finishes. Waiting for connections to close instead would wait out the
/// whole grace period: Argo never closes its client connections.
#[derive(Clone, Default)]
pub(crate) struct InFlight {
    calls: Arc<Calls>,
}

#[derive(Default)]
struct Calls {
    /// Calls between [`InFlight::enter`] and the drop of their guard.
    running: AtomicUsize,
    /// Woken each time `running` drops to zero.
    none_left: Notify,
}

/// Held for the duration of one call (for OpenStream, until the stream ends).
pub(crate) struct CallGuard {
    in_flight: InFlight,
}

impl InFlight {
    pub(crate) fn enter(&self) -> CallGuard {
        self.calls.running.fetch_add(1, Ordering::SeqCst);
        CallGuard { in_flight: self.clone() }
    }

    /// Resolves once no call has been in progress for [`SETTLE`]: a request
    /// already sent when the signal came may still be on its way to a handler.
    pub(crate) async fn idle(&self) {
        loop {
            let notified = self.calls.none_left.notified();
            if self.calls.running.load(Ordering::SeqCst) == 0 {
                tokio::time::sleep(SETTLE).await;
                if self.calls.running.load(Ordering::SeqCst) == 0 {
                    return;
                }
                continue;
            }
            notified.await;
        }
    }
}

impl Drop for CallGuard {
    fn drop(&mut self) {
        let calls = &self.in_flight.calls;
        if calls.running.fetch_sub(1, Ordering::SeqCst) == 1 {
            calls.none_left.notify_waiters();
        }
    }
}

/// Resolves on SIGTERM or SIGINT. The handlers are installed when this is
/// called, not when the future is first polled, so a SIGTERM that arrives
/// while the driver is still binding its socket also ends in exit 0. Must be
/// called inside a Tokio runtime.
pub fn shutdown_signal() -> Result<impl Future<Output = ()> + Send + 'static> {
    use tokio::signal::unix::{SignalKind, signal};
    let install = |kind| signal(kind).map_err(|e| Error::other(format!("installing signal handler: {e}")));
    let mut term = install(SignalKind::terminate())?;
    let mut int = install(SignalKind::interrupt())?;
    Ok(async move {
        tokio::select! {
            _ = term.recv() => {}
            _ = int.recv() => {}
        }
    })
}

/// The grace period from [`SHUTDOWN_GRACE_ENV`], else [`DEFAULT_SHUTDOWN_GRACE`].
pub fn shutdown_grace() -> Result<Duration> {
    crate::env::duration_or_zero(SHUTDOWN_GRACE_ENV, DEFAULT_SHUTDOWN_GRACE)
}

/// Set by a parent that starts the driver as its child process (Ferry's
/// executor): the driver shuts down when that parent dies, even by SIGKILL,
/// instead of living on as an orphan. In a container (Argo) it is unset.
pub const EXIT_WITH_PARENT_ENV: &str = "FERRY_EXIT_WITH_PARENT";

/// Whether [`EXIT_WITH_PARENT_ENV`] is on.
pub(crate) fn exit_with_parent() -> Result<bool> {
    crate::env::flag(EXIT_WITH_PARENT_ENV, false)
}

/// Resolves when the process that started us is gone (we were re-parented)
/// if `watch` is set; never otherwise.
pub(crate) async fn parent_gone(watch: bool) {
    if !watch {
        return std::future::pending().await;
    }
    let parent = std::os::unix::process::parent_id();
    loop {
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
        if std::os::unix::process::parent_id() != parent {
            return;
        }
    }
}
