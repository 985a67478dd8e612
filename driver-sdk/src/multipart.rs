//! Resumable multipart uploads of local files.
//!
//! A Save that is interrupted (connection lost, driver killed, call cancelled)
//! leaves its multipart upload and a small journal object behind. The journal
//! names the upload and records, for every part the store acknowledged, a
//! 128-bit XXH3 checksum of the bytes sent and the ETag the store returned.
//! (In transit each part is already checked by the store: SigV4 signs its
//! SHA-256. The journal's checksum only has to tell whether the source still
//! holds the same bytes, so it is the fastest one.) A later Save of the
//! same key and the same source, by any process, re-reads each recorded part,
//! and sends again only those parts that are missing or whose bytes no longer
//! match. An upload that is given up (a permanent error, a source that changed
//! size, a Delete of the key) is aborted and its journal removed, so no parts
//! stay behind.
//!
//! The journal lives in the store itself, under [`UPLOADS_PREFIX`], because the
//! process that resumes may run in another pod on another node.

use crate::driver::DeleteTarget;
use crate::error::{Error, ErrorKind, Result};
use crate::local::local_error;
use bytes::Bytes;
use futures::{StreamExt, TryStreamExt};
use object_store::multipart::{MultipartStore, PartId};
use object_store::path::Path as StorePath;
use object_store::{MultipartId, ObjectStore, ObjectStoreExt, PutPayload};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Reserved top-level prefix holding the journals of unfinished uploads.
/// Keys under it are refused and listings of the root hide it.
pub const UPLOADS_PREFIX: &str = ".ferry-uploads";

/// Longest pause between two resumes of one upload.
const MAX_RESUME_PAUSE: Duration = Duration::from_secs(4);

/// The journal of one unfinished upload.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
struct Journal {
    /// The object being written (guards against hash-free name collisions).
    path: String,
    upload_id: String,
    /// Source size and part size: a resume needs both to be unchanged.
    size: u64,
    part_size: u64,
    /// Part index → what was sent and what the store answered.
    parts: BTreeMap<usize, PartRecord>,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
struct PartRecord {
    xxh3: String,
    etag: String,
}

/// Where the journal of an upload to `path` lives. Keyed by the object's own
/// path, so that deleting a directory finds the unfinished uploads under it.
pub(crate) fn journal_path(path: &StorePath) -> StorePath {
    StorePath::from(format!("{UPLOADS_PREFIX}/{path}.upload.json"))
}

/// Every journal under `prefix` (a directory key), or the one of `prefix` itself.
pub(crate) fn journal_dir(prefix: &StorePath) -> StorePath {
    StorePath::from(format!("{UPLOADS_PREFIX}/{prefix}"))
}

/// Counts of one upload, for logs and tests.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct UploadReport {
    /// Parts in the object.
    pub parts: usize,
    /// Parts already stored by an earlier attempt and verified against the source.
    pub reused: usize,
    /// Bytes sent in this call.
    pub bytes_sent: u64,
}

/// One file going up as a resumable multipart upload.
pub(crate) struct FileUpload<'a> {
    pub objects: &'a Arc<dyn ObjectStore>,
    pub multipart: &'a Arc<dyn MultipartStore>,
    pub path: &'a StorePath,
    pub src: &'a Path,
    pub size: u64,
    pub part_size: u64,
    pub concurrency: usize,
    /// Wall time over which the upload is resumed after transient failures
    /// (each resume continues the last; the HTTP client retries single
    /// requests below this). Time, not a count: an outage lasts seconds
    /// whatever the number of attempts made in them.
    pub retry_for: Duration,
}

impl FileUpload<'_> {
    /// Uploads the file, resuming an earlier attempt when one is recorded.
    pub async fn run(&self) -> Result<UploadReport> {
        let file = Arc::new(std::fs::File::open(self.src).map_err(|e| local_error(e, "opening", self.src))?);
        let mut total = UploadReport::default();
        // The bound is on a streak of failures, not on the whole upload: a
        // 100 GiB upload takes far longer than the bound, and an outage in its
        // last minute must be resumed like one in its first. Every part
        // acknowledged since the last failure starts the window again.
        let acked = std::sync::atomic::AtomicU64::new(0);
        let mut acked_at_failure = 0;
        let mut deadline = std::time::Instant::now() + self.retry_for;
        let mut attempt = 0u32;
        loop {
            attempt += 1;
            let result = self.attempt(&file, &mut total, &acked).await;
            let now_acked = acked.load(std::sync::atomic::Ordering::Relaxed);
            if result.is_err() && now_acked > acked_at_failure {
                acked_at_failure = now_acked;
                deadline = std::time::Instant::now() + self.retry_for;
                attempt = 1;
            }
            let time_left = std::time::Instant::now() < deadline;
            match result {
                Ok(()) => return Ok(total),
                Err(Failure::Keep(err)) if time_left => {
                    tracing::warn!(error = %err, attempt, "upload interrupted; resuming");
                    crate::metrics::retried("multipart_upload");
                    let pause = Duration::from_millis(200u64 << attempt.min(10)).min(MAX_RESUME_PAUSE);
                    tokio::time::sleep(pause.min(deadline.saturating_duration_since(std::time::Instant::now()))).await;
                }
                Err(Failure::Keep(err)) => {
                    // Left for a later Save to resume; the journal names it,
                    // and Delete of the key aborts it.
                    return Err(err.context("upload interrupted; a retried Save of the same file resumes it"));
                }
                Err(Failure::Vanished(err)) if time_left => {
                    // Aborted meanwhile (a lifecycle rule, a Delete): start over.
                    tracing::warn!(error = %err, "the recorded multipart upload is gone; starting a new one");
                    if let Err(e) = self.objects.delete(&journal_path(self.path)).await {
                        tracing::warn!(error = %e, "removing the upload journal failed");
                    }
                    // An upload that keeps vanishing must not spin.
                    tokio::time::sleep(Duration::from_millis(200u64 << attempt.min(4))).await;
                }
                Err(Failure::Vanished(err)) => return Err(Error::new(ErrorKind::Transient, err.message().to_string())),
                Err(Failure::GiveUp(err, id)) => {
                    if let Some(id) = id {
                        self.abandon(&id).await;
                    }
                    return Err(err);
                }
            }
        }
    }

    async fn attempt(
        &self,
        file: &Arc<std::fs::File>,
        total: &mut UploadReport,
        acked: &std::sync::atomic::AtomicU64,
    ) -> std::result::Result<(), Failure> {
        let parts = self.size.div_ceil(self.part_size) as usize;
        let journal = self.start().await.map_err(Failure::keep_or_give_up(None))?;
        let id = journal.upload_id.clone();
        let give_up = |e: Error| Failure::keep_or_give_up(Some(id.clone()))(e);
        let recorded = journal.parts.clone();
        let state = Arc::new(JournalWriter::new(self.objects.clone(), journal_path(self.path), journal));

        let results: Vec<(usize, PartId, bool, u64)> = futures::stream::iter(0..parts)
            .map(|idx| {
                let file = file.clone();
                let state = state.clone();
                let recorded = recorded.get(&idx).cloned();
                let id = id.clone();
                async move {
                    let (offset, len) =
                        (idx as u64 * self.part_size, self.part_size.min(self.size - idx as u64 * self.part_size));
                    let (data, sum) = read_part(file, offset, len as usize, self.src).await?;
                    if let Some(r) = recorded
                        && r.xxh3 == sum
                    {
                        crate::metrics::resumed(1, len);
                        return Ok((idx, PartId { content_id: r.etag }, true, 0));
                    }
                    let part = self.multipart.put_part(self.path, &id, idx, PutPayload::from(data)).await?;
                    state.record(idx, PartRecord { xxh3: sum, etag: part.content_id.clone() }).await?;
                    acked.fetch_add(len, std::sync::atomic::Ordering::Relaxed);
                    Ok((idx, part, false, len))
                }
            })
            .buffer_unordered(self.concurrency)
            .try_collect()
            .await
            .map_err(give_up)?;

        let mut ordered = results;
        ordered.sort_by_key(|r| r.0);
        total.parts = parts;
        total.reused = ordered.iter().filter(|r| r.2).count();
        total.bytes_sent += ordered.iter().map(|r| r.3).sum::<u64>();
        let ids = ordered.into_iter().map(|r| r.1).collect();
        if let Err(e) = self.multipart.complete_multipart(self.path, &id, ids).await {
            // The answer to a Complete can be lost (a timeout while the server
            // assembles a huge object); its retry then finds no upload. The
            // object itself says whether the first attempt went through.
            if !self.completed_meanwhile(parts).await {
                return Err(give_up(e.into()));
            }
            tracing::info!(upload = %id, "the multipart upload had completed although its Complete call failed");
        }
        // Best effort: a leftover journal of a completed upload only costs a
        // failed resume attempt, which starts over.
        if let Err(e) = self.objects.delete(&journal_path(self.path)).await {
            tracing::warn!(error = %e, "removing the upload journal failed");
        }
        Ok(())
    }

    /// Whether the object now at the path is this upload's: its size, and an
    /// S3-style multipart ETag (`"<md5>-<parts>"`) with our part count.
    async fn completed_meanwhile(&self, parts: usize) -> bool {
        match self.objects.head(self.path).await {
            Ok(meta) => {
                meta.size == self.size
                    && meta.e_tag.as_deref().is_some_and(|t| t.trim_matches('"').ends_with(&format!("-{parts}")))
            }
            Err(_) => false,
        }
    }

    /// The journal of an upload to continue, or of a new one.
    async fn start(&self) -> Result<Journal> {
        if let Some(old) = read_journal(self.objects, self.path).await? {
            if old.size == self.size && old.part_size == self.part_size && old.path == self.path.as_ref() {
                tracing::info!(upload = %old.upload_id, parts = old.parts.len(), "resuming multipart upload");
                return Ok(old);
            }
            // Another source: its parts cannot serve this one.
            abort_recorded(self.objects, self.multipart, self.path, &old).await;
        }
        let upload_id = self.multipart.create_multipart(self.path).await?;
        let journal = Journal {
            path: self.path.to_string(),
            upload_id,
            size: self.size,
            part_size: self.part_size,
            parts: BTreeMap::new(),
        };
        write_journal(self.objects, &journal_path(self.path), &journal).await?;
        Ok(journal)
    }

    async fn abandon(&self, id: &MultipartId) {
        if let Err(e) = self.multipart.abort_multipart(self.path, id).await {
            tracing::warn!(error = %e, "aborting multipart upload failed");
        }
        if let Err(e) = self.objects.delete(&journal_path(self.path)).await {
            tracing::warn!(error = %e, "removing the upload journal failed");
        }
    }
}

/// Why an attempt stopped: worth resuming later, or not.
enum Failure {
    Keep(Error),
    Vanished(Error),
    GiveUp(Error, Option<MultipartId>),
}

impl Failure {
    fn keep_or_give_up(id: Option<MultipartId>) -> impl Fn(Error) -> Failure {
        move |e: Error| {
            match e.kind() {
                ErrorKind::Transient => Failure::Keep(e),
                // Local read errors are never NotFound (see `local_error`), so
                // this is the upload itself missing from the store.
                ErrorKind::NotFound => Failure::Vanished(e),
                _ => Failure::GiveUp(e, id.clone()),
            }
        }
    }
}

/// Keeps the journal in the store current while parts finish, one write in
/// flight at a time: a part finishing while a write is under way is carried
/// by the next write, so a kill loses at most the parts of one round trip.
struct JournalWriter {
    objects: Arc<dyn ObjectStore>,
    at: StorePath,
    journal: Mutex<(Journal, u64)>,
    written: tokio::sync::Mutex<u64>,
}

impl JournalWriter {
    fn new(objects: Arc<dyn ObjectStore>, at: StorePath, journal: Journal) -> Self {
        JournalWriter { objects, at, journal: Mutex::new((journal, 0)), written: tokio::sync::Mutex::new(0) }
    }

    async fn record(&self, idx: usize, part: PartRecord) -> Result<()> {
        {
            let mut j = self.journal.lock().expect("journal lock");
            j.0.parts.insert(idx, part);
            j.1 += 1;
        }
        let mut written = self.written.lock().await;
        let (snapshot, version) = {
            let j = self.journal.lock().expect("journal lock");
            if j.1 <= *written {
                return Ok(());
            }
            (j.0.clone(), j.1)
        };
        write_journal(&self.objects, &self.at, &snapshot).await?;
        *written = version;
        Ok(())
    }
}

async fn read_journal(objects: &Arc<dyn ObjectStore>, path: &StorePath) -> Result<Option<Journal>> {
    match objects.get(&journal_path(path)).await {
        Ok(found) => {
            let bytes = found.bytes().await?;
            match serde_json::from_slice(&bytes) {
                Ok(j) => Ok(Some(j)),
                Err(e) => {
                    tracing::warn!(error = %e, journal = %journal_path(path), "ignoring an unreadable upload journal");
                    Ok(None)
                }
            }
        }
        Err(object_store::Error::NotFound { .. }) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

async fn write_journal(objects: &Arc<dyn ObjectStore>, at: &StorePath, journal: &Journal) -> Result<()> {
    let body = serde_json::to_vec(journal).map_err(|e| Error::other(format!("encoding the upload journal: {e}")))?;
    objects.put(at, PutPayload::from(body)).await?;
    Ok(())
}

/// Aborts the upload a journal names and removes the journal.
async fn abort_recorded(
    objects: &Arc<dyn ObjectStore>,
    multipart: &Arc<dyn MultipartStore>,
    path: &StorePath,
    journal: &Journal,
) {
    match multipart.abort_multipart(path, &journal.upload_id).await {
        Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
        Err(e) => {
            tracing::warn!(error = %e, upload = %journal.upload_id, "aborting an abandoned multipart upload failed")
        }
    }
    if let Err(e) = objects.delete(&journal_path(path)).await {
        tracing::warn!(error = %e, "removing the upload journal failed");
    }
}

/// Aborts the unfinished uploads a Delete of `path` gives up: the one of
/// exactly `path` for an object, those of objects under `path/` for a
/// directory (the same rule as the objects themselves). Returns how many.
pub(crate) async fn abort_deleted(
    objects: &Arc<dyn ObjectStore>,
    multipart: &Arc<dyn MultipartStore>,
    path: &StorePath,
    target: DeleteTarget,
) -> Result<usize> {
    let mut aborted = 0;
    if target == DeleteTarget::Object {
        if let Some(j) = read_journal(objects, path).await? {
            abort_recorded(objects, multipart, path, &j).await;
            aborted += 1;
        }
        return Ok(aborted);
    }
    let under: Vec<StorePath> = objects.list(Some(&journal_dir(path))).map_ok(|m| m.location).try_collect().await?;
    for journal in under {
        let Some(object) =
            journal.as_ref().strip_prefix(&format!("{UPLOADS_PREFIX}/")).and_then(|p| p.strip_suffix(".upload.json"))
        else {
            continue;
        };
        let object = StorePath::from(object);
        if let Some(j) = read_journal(objects, &object).await? {
            abort_recorded(objects, multipart, &object, &j).await;
            aborted += 1;
        }
    }
    Ok(aborted)
}

/// Reads `len` bytes at `offset` and their checksum, off the async threads.
async fn read_part(file: Arc<std::fs::File>, offset: u64, len: usize, src: &Path) -> Result<(Bytes, String)> {
    let shown = src.to_path_buf();
    // Allocated here, on a runtime thread, not on the blocking thread: glibc
    // gives every thread that allocates its own arena, and freed part buffers
    // sitting in a dozen arenas pushed peak RSS past the memory budget.
    let mut buf = vec![0u8; len];
    tokio::task::spawn_blocking(move || {
        file.read_exact_at(&mut buf, offset).map_err(|e| local_error(e, "reading", &shown))?;
        let sum = format!("{:032x}", xxhash_rust::xxh3::xxh3_128(&buf));
        Ok((Bytes::from(buf), sum))
    })
    .await
    .map_err(|e| Error::other(format!("read task failed: {e}")))?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn journals_sit_under_the_reserved_prefix_by_object_path() {
        let p = StorePath::from("a/b/file.bin");
        assert_eq!(journal_path(&p).as_ref(), ".ferry-uploads/a/b/file.bin.upload.json");
        assert!(journal_path(&p).as_ref().starts_with(journal_dir(&StorePath::from("a/b")).as_ref()));
    }
}
