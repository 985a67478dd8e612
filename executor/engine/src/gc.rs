//! Artifact garbage collection: deletes a run's output artifacts through
//! their drivers, with retries, and records what was deleted so a failed
//! collection is retried later instead of forgotten.

use crate::drivers::{DriverPool, ToClient};
use crate::status::{ArtifactRecord, Direction, GcState};
use crate::store::{Store, StoreError, WorkflowRecord};
use ferry_workflow::model::GcStrategy;
use futures::StreamExt;
use parking_lot::Mutex;

/// What a collection did.
#[derive(Clone, Debug, Default)]
pub struct GcReport {
    /// Artifacts deleted now.
    pub deleted: usize,
    /// Artifacts that could not be deleted, with why.
    pub failed: Vec<String>,
    /// Artifacts kept for a later strategy (deletion).
    pub kept: usize,
}

impl GcReport {
    /// The state stored with the workflow.
    pub fn state(&self) -> GcState {
        if !self.failed.is_empty() {
            GcState::Failed { artifacts: self.failed.len() }
        } else if self.kept > 0 {
            GcState::PendingDeletion
        } else if self.deleted > 0 {
            GcState::Done
        } else {
            GcState::None
        }
    }
}

/// Deletes every not yet deleted output artifact of `wf` whose strategy is
/// one of `strategies`, through `pool`.
pub(crate) async fn collect(
    store: &Mutex<Store>,
    wf: &WorkflowRecord,
    pool: &DriverPool,
    strategies: &[GcStrategy],
) -> Result<GcReport, StoreError> {
    let records = store.lock().artifacts(wf.id)?;
    let outputs: Vec<ArtifactRecord> = records
        .into_iter()
        .filter(|r| r.direction == Direction::Output && !r.deleted && r.gc != GcStrategy::Never)
        .collect();
    let (due, kept): (Vec<_>, Vec<_>) = outputs.into_iter().partition(|r| strategies.contains(&r.gc));
    let results: Vec<ArtifactRecord> = futures::stream::iter(due)
        .map(|mut r| async move {
            match delete_with_retries(pool, &r).await {
                Ok(()) => {
                    r.deleted = true;
                    r.error = None;
                }
                Err(e) => r.error = Some(e.to_string()),
            }
            r
        })
        .buffer_unordered(8)
        .collect()
        .await;
    let mut report = GcReport { kept: kept.len(), ..Default::default() };
    for r in &results {
        match &r.error {
            None => report.deleted += 1,
            Some(e) => report.failed.push(format!(
                "node {} artifact {} ({} key {:?}): {e}",
                r.node, r.name, r.location.driver, r.location.key
            )),
        }
    }
    let mut store = store.lock();
    store.save(wf.id, &[], &results)?;
    store.set_gc(wf.id, report.state())?;
    Ok(report)
}

async fn delete_with_retries(pool: &DriverPool, r: &ArtifactRecord) -> Result<(), ferry_sdk::Error> {
    // The pool restarts a dead driver and retries transient failures within
    // FERRY_RETRY_TIMEOUT; a permanent failure (permission, configuration)
    // is not worth repeating, and repeating a timed-out one five times is
    // what kept `ferry delete` against a blackholed endpoint waiting 25 min.
    let at = r.location.to_client();
    pool.call_at("delete", &r.location, |client| {
        let at = at.clone();
        async move { client.delete(&at).await }
    })
    .await
}
