//! Mutexes and semaphores (`synchronization:`) held across every `ferry`
//! process of one home: the state database is the lock table. A lock is
//! released when its holder ends, fails or is stopped (the guard's drop),
//! and a lock whose process is gone (killed while holding it) is freed by
//! the next process that wants it.

use crate::runtime::{boot_id, start_time};
use crate::store::{LockOwner, Store, StoreError};
use ferry_workflow::synchronization::Lock;
use parking_lot::Mutex;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// How often a waiter asks again.
const POLL: Duration = Duration::from_millis(100);

/// Locks held until dropped.
pub(crate) struct Held {
    store: Arc<Mutex<Store>>,
    keys: Vec<String>,
    holder: String,
}

impl Drop for Held {
    fn drop(&mut self) {
        let store = self.store.lock();
        for key in &self.keys {
            if let Err(e) = store.unlock(key, &self.holder) {
                tracing::warn!(%key, error = %e, "releasing a lock failed; the next holder frees it when this process is gone");
            }
        }
    }
}

/// This process, as a lock owner.
fn me() -> LockOwner {
    let pid = std::process::id() as i32;
    LockOwner { pid: i64::from(pid), started: start_time(pid).map_or(0, |t| t as i64), boot: boot_id() }
}

/// Whether the process that took a lock still runs.
fn alive(owner: &LockOwner) -> bool {
    owner.boot == boot_id()
        && i32::try_from(owner.pid).ok().and_then(start_time).is_some_and(|t| t as i64 == owner.started)
}

/// Takes `locks` in order for `holder`, waiting for each; `waiting` is told
/// what is waited for (`<key>`, holders, limit). `None` when cancelled first.
pub(crate) async fn acquire(
    store: &Arc<Mutex<Store>>,
    locks: &[Lock],
    holder: &str,
    cancel: &CancellationToken,
    mut waiting: impl FnMut(&Lock, usize),
) -> Result<Option<Held>, StoreError> {
    let owner = me();
    let mut held = Held { store: store.clone(), keys: Vec::new(), holder: holder.to_string() };
    for lock in locks {
        let mut told = false;
        loop {
            let now = ferry_workflow::time::now_ms();
            let (taken, holders) = store.lock().try_lock(&lock.key, holder, lock.limit, &owner, alive, now)?;
            if taken {
                held.keys.push(lock.key.clone());
                break;
            }
            if !told {
                waiting(lock, holders);
                told = true;
            }
            tokio::select! {
                () = tokio::time::sleep(POLL) => {}
                () = cancel.cancelled() => return Ok(None),
            }
        }
    }
    Ok(Some(held))
}
