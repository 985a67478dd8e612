//! Uploads: small objects in one request, large files through resumable
//! sessions that another process can continue, streams through sessions of
//! unknown length.
//!
//! A file upload keeps a journal object, `.ferry-uploads/<name>.upload.json`
//! in the same bucket (the prefix the SDK reserves for S3's journals too). It
//! holds the session URI, the file's size, the chunk size and the CRC32C of
//! every chunk the server has acknowledged. A later Save of the same file to
//! the same name, by any process, asks the session how much it holds,
//! re-reads and checks the journaled chunks, and sends only the rest.
//!
//! Every upload ends with a whole-object CRC32C check: the last chunk carries
//! it in `x-goog-hash` (GCS refuses to finish a mismatching object), and the
//! checksum GCS reports is compared again, so bytes changed between a kill
//! and its resume can never pass as the file.

use crate::api::{Api, Chunk, ObjectMeta, Session};
use bytes::{Bytes, BytesMut};
use ferry_sdk::local::local_error;
use ferry_sdk::store::UPLOADS_PREFIX;
use ferry_sdk::{ByteStream, DeleteTarget, Error, ErrorKind, Result, TransferOptions};
use futures::{StreamExt, TryStreamExt};
use serde::{Deserialize, Serialize};
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

/// File reads and request body pieces.
const READ_BLOCK: usize = 1 << 20;

/// Chunks of a resumable upload must be multiples of this (except the last).
const CHUNK_QUANTUM: u64 = 256 << 10;

/// How often one Save starts a new session when the one it had vanished.
const RESUME_ATTEMPTS: u32 = 3;

/// Environment variable: `false` skips the session status query when
/// resuming and trusts the journal instead. Only for fake-gcs-server, whose
/// status query finishes the half-uploaded object (its issue #2354).
pub const STATUS_QUERY_ENV: &str = "FERRY_GCS_STATUS_QUERY";

/// What a file upload did, for tests and benchmarks.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FileReport {
    /// Bytes the server already held from an earlier attempt.
    pub resumed_bytes: u64,
    /// Bytes sent by this Save.
    pub sent_bytes: u64,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
struct Journal {
    session: String,
    size: u64,
    chunk: u64,
    /// CRC32C of chunk i, for every chunk the server acknowledged.
    crcs: Vec<u32>,
}

/// The journal object of an upload to `name`.
pub fn journal_name(name: &str) -> String {
    format!("{UPLOADS_PREFIX}/{name}.upload.json")
}

/// Environment variable: the chunk size of resumable file uploads (default
/// [`DEFAULT_CHUNK`]). Chunks stream from the file, so their size costs no
/// memory; larger chunks mean fewer requests, smaller ones less to resend
/// where a server cannot resume inside a chunk.
pub const CHUNK_SIZE_ENV: &str = "FERRY_GCS_CHUNK_SIZE";

/// Default chunk size of resumable file uploads.
pub const DEFAULT_CHUNK: u64 = 256 << 20;

/// The chunk size of file uploads: [`CHUNK_SIZE_ENV`], rounded up to GCS's 256 KiB quantum.
pub fn file_chunk_size() -> Result<u64> {
    let chunk = ferry_sdk::env::size(CHUNK_SIZE_ENV)?.unwrap_or(DEFAULT_CHUNK).max(CHUNK_QUANTUM);
    Ok(chunk.div_ceil(CHUNK_QUANTUM) * CHUNK_QUANTUM)
}

/// Streams hold one chunk in memory, so theirs is the (smaller) part size.
fn stream_chunk_size(options: &TransferOptions) -> u64 {
    options.part_size.div_ceil(CHUNK_QUANTUM) * CHUNK_QUANTUM
}

fn status_query_enabled() -> Result<bool> {
    ferry_sdk::env::flag(STATUS_QUERY_ENV, true)
}

/// Uploads the file `src` as `name`.
pub async fn save_file(api: &Api, name: &str, src: &Path, options: &TransferOptions) -> Result<FileReport> {
    let size = tokio::fs::metadata(src).await.map_err(|e| local_error(e, "reading", src))?.len();
    if size <= options.multipart_threshold {
        return save_small_file(api, name, src, size).await;
    }
    let file = Arc::new(std::fs::File::open(src).map_err(|e| local_error(e, "opening", src))?);
    let upload = FileUpload { api, name, src, file, size, chunk: file_chunk_size()? };
    let mut report = FileReport::default();
    // One start-over when the finished object's checksum disagrees with the
    // file (the file changed under a resumed upload).
    match upload.run(false, &mut report).await? {
        Ok(()) => Ok(report),
        Err(mismatch) => {
            tracing::warn!(object = %api.display(name), error = %mismatch, "uploading again from the start");
            report = FileReport::default();
            upload.run(true, &mut report).await??;
            Ok(report)
        }
    }
}

async fn save_small_file(api: &Api, name: &str, src: &Path, size: u64) -> Result<FileReport> {
    let attempt = || async {
        let crc = Arc::new(AtomicU32::new(0));
        let read = Arc::new(AtomicU64::new(0));
        let (c, r) = (crc.clone(), read.clone());
        let body = ferry_sdk::local::file_stream(src).await?.inspect_ok(move |b: &Bytes| {
            c.store(crc32c::crc32c_append(c.load(Ordering::Relaxed), b), Ordering::Relaxed);
            r.fetch_add(b.len() as u64, Ordering::Relaxed);
        });
        let meta = api.upload(name, reqwest::Body::wrap_stream(body)).await?;
        Ok::<_, Error>((meta, crc.load(Ordering::Relaxed), read.load(Ordering::Relaxed)))
    };
    let mut retry = api.retry();
    let (meta, crc, read) = loop {
        match attempt().await {
            Err(e) if retry.allows(&e) => retry.pause().await,
            other => break other?,
        }
    };
    if read != size {
        api.delete(name).await?;
        return Err(Error::new(
            ErrorKind::Transient,
            format!("{}: the file was {size} bytes when the upload began and {read} at its end", src.display()),
        ));
    }
    check_object(api, name, &meta, size, crc).await??;
    Ok(FileReport { resumed_bytes: 0, sent_bytes: size })
}

/// Checks the finished object against what was sent; a mismatch is deleted
/// so it never passes as the artifact, and returned as the inner error.
async fn check_object(api: &Api, name: &str, meta: &ObjectMeta, size: u64, crc: u32) -> Result<Result<()>> {
    let crc_ok = meta.crc32c().is_none_or(|c| c == crc);
    if meta.size == size && crc_ok {
        return Ok(Ok(()));
    }
    api.delete(name).await?;
    Ok(Err(Error::other(format!(
        "{}: the stored object ({} bytes, CRC32C {:?}) does not match what was sent ({size} bytes, CRC32C {}); it was deleted",
        api.display(name),
        meta.size,
        meta.crc32c.as_deref().unwrap_or("none"),
        crate::api::encode_crc(crc),
    ))))
}

struct FileUpload<'a> {
    api: &'a Api,
    name: &'a str,
    src: &'a Path,
    file: Arc<std::fs::File>,
    size: u64,
    chunk: u64,
}

impl FileUpload<'_> {
    /// The CRC32C of bytes `start..start+len` of the file, read in 1 MiB blocks.
    async fn crc_range(&self, start: u64, len: u64) -> Result<u32> {
        let file = self.file.clone();
        let src = self.src.to_path_buf();
        tokio::task::spawn_blocking(move || {
            let mut buf = vec![0u8; READ_BLOCK.min(len as usize)];
            let (mut crc, mut done) = (0u32, 0u64);
            while done < len {
                let n = (len - done).min(buf.len() as u64) as usize;
                file.read_exact_at(&mut buf[..n], start + done).map_err(|e| local_error(e, "reading", &src))?;
                crc = crc32c::crc32c_append(crc, &buf[..n]);
                done += n as u64;
            }
            Ok(crc)
        })
        .await
        .map_err(|e| Error::other(format!("read task failed: {e}")))?
    }

    /// Bytes `start..start+len` of the file as a request body streamed from
    /// disk, their CRC32C left in `crc` once all were read.
    async fn range_body(&self, start: u64, len: u64, crc: Arc<AtomicU32>) -> Result<reqwest::Body> {
        use tokio::io::{AsyncReadExt, AsyncSeekExt};
        let mut file = tokio::fs::File::open(self.src).await.map_err(|e| local_error(e, "opening", self.src))?;
        file.seek(std::io::SeekFrom::Start(start)).await.map_err(|e| local_error(e, "reading", self.src))?;
        crc.store(0, Ordering::Relaxed);
        let stream = tokio_util::io::ReaderStream::with_capacity(file.take(len), READ_BLOCK).inspect_ok(move |b| {
            crc.store(crc32c::crc32c_append(crc.load(Ordering::Relaxed), b), Ordering::Relaxed);
        });
        Ok(reqwest::Body::wrap_stream(stream))
    }

    async fn write_journal(&self, journal: &Journal) -> Result<()> {
        let body =
            serde_json::to_vec(journal).map_err(|e| Error::other(format!("encoding the upload journal: {e}")))?;
        self.api.upload_bytes(&journal_name(self.name), Bytes::from(body)).await.map(drop)
    }

    async fn read_journal(&self) -> Result<Option<Journal>> {
        let name = journal_name(self.name);
        let response = match self.api.read(&name, None, None).await {
            Ok(r) => r,
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e),
        };
        let body = response.bytes().await.map_err(|e| crate::api::transport_error(e, &name))?;
        // A journal that cannot be read is an upload that cannot be resumed.
        Ok(serde_json::from_slice(&body).ok())
    }

    /// Finds a session to continue: the journaled one if it still holds a
    /// prefix of this very file, else a new one.
    async fn session(&self, fresh: bool, report: &mut FileReport) -> Result<(Journal, u64)> {
        if !fresh && let Some(journal) = self.read_journal().await? {
            if journal.size == self.size && journal.chunk == self.chunk {
                let state = if status_query_enabled()? {
                    self.api.query(&journal.session, self.name, self.size).await?
                } else {
                    Session::Incomplete { persisted: journal.crcs.len() as u64 * self.chunk }
                };
                match state {
                    Session::Incomplete { persisted } => {
                        if let Some(journal) = self.verify(journal, persisted).await? {
                            report.resumed_bytes = persisted;
                            ferry_sdk::metrics::resumed(persisted / self.chunk, persisted);
                            return Ok((journal, persisted));
                        }
                    }
                    Session::Done(_) | Session::Gone => {}
                }
            } else {
                self.api.cancel(&journal.session, self.name).await.ok();
            }
        }
        let session = self.api.start_session(self.name, Some(self.size)).await?;
        let journal = Journal { session, size: self.size, chunk: self.chunk, crcs: Vec::new() };
        self.write_journal(&journal).await?;
        Ok((journal, 0))
    }

    /// Re-reads the chunks the server holds. Journaled ones must match; the
    /// CRCs of the others (acknowledged but not yet journaled when the last
    /// attempt died) are computed, and the final whole-object check covers
    /// them. `None` when the file changed: that session is cancelled.
    async fn verify(&self, mut journal: Journal, persisted: u64) -> Result<Option<Journal>> {
        let held = persisted / self.chunk;
        for index in 0..held {
            let crc = self.crc_range(index * self.chunk, self.chunk.min(self.size - index * self.chunk)).await?;
            match journal.crcs.get(index as usize) {
                Some(&c) if c != crc => {
                    tracing::info!(object = %self.api.display(self.name), "the file changed since the interrupted upload; starting over");
                    self.api.cancel(&journal.session, self.name).await.ok();
                    return Ok(None);
                }
                Some(_) => {}
                None => journal.crcs.push(crc),
            }
        }
        journal.crcs.truncate(held as usize);
        Ok(Some(journal))
    }

    /// One pass: `Ok(Err(_))` when the finished object's checksum disagreed
    /// with the file (it was deleted; the file changed under a resume).
    async fn run(&self, fresh: bool, report: &mut FileReport) -> Result<Result<()>> {
        let (mut journal, mut offset) = self.session(fresh, report).await?;
        let mut resumes = 0;
        let mut retry = self.api.retry();
        let mut journaled = journal.crcs.len();
        loop {
            let index = offset / self.chunk;
            let start = index * self.chunk;
            let end = (start + self.chunk).min(self.size);
            let last = end == self.size;
            // Resumed inside a chunk: its head is on the server already.
            let head = if offset > start { Some(self.crc_range(start, offset - start).await?) } else { None };
            // The last chunk carries the whole object's checksum, so it is
            // read once before it is sent.
            let whole = if last {
                let mut crcs = journal.crcs.clone();
                crcs.push(self.crc_range(start, end - start).await?);
                Some(whole_crc(&crcs, self.chunk, self.size))
            } else {
                None
            };
            let tail = Arc::new(AtomicU32::new(0));
            let body = self.range_body(offset, end - offset, tail.clone()).await?;
            let sent = end - offset;

            // The journal of the chunks acknowledged so far goes up while this chunk does.
            let snapshot = (journal.crcs.len() > journaled).then(|| journal.clone());
            let put = self.api.put_chunk(
                &journal.session,
                self.name,
                Chunk { start: offset, body, len: sent, total: Some(self.size), crc: whole },
            );
            let write = async {
                match &snapshot {
                    Some(j) => self.write_journal(j).await.map(|()| Some(j.crcs.len())),
                    None => Ok(None),
                }
            };
            let (put, write) = futures::join!(put, write);
            if let Ok(Some(n)) = write {
                journaled = n;
            }
            let chunk_crc = || {
                let tail = tail.load(Ordering::Relaxed);
                match head {
                    Some(h) => crc32c::crc32c_combine(h, tail, sent as usize),
                    None => tail,
                }
            };

            match put {
                Ok(Session::Incomplete { persisted }) if persisted > offset => {
                    retry.progressed();
                    report.sent_bytes += persisted - offset;
                    if persisted >= end && journal.crcs.len() == index as usize {
                        journal.crcs.push(chunk_crc());
                    }
                    offset = persisted;
                    journal.crcs.truncate((offset / self.chunk) as usize);
                }
                Ok(Session::Incomplete { persisted }) => {
                    let stalled = Error::other(format!(
                        "{}: the upload session made no progress (the server holds {persisted} of {} bytes)",
                        self.api.display(self.name),
                        self.size
                    ));
                    return Err(self.give_up(&journal, stalled).await);
                }
                Ok(Session::Done(meta)) => {
                    report.sent_bytes += sent;
                    self.api.delete(&journal_name(self.name)).await?;
                    let crc = whole.unwrap_or_else(|| {
                        let mut crcs = journal.crcs.clone();
                        crcs.push(chunk_crc());
                        whole_crc(&crcs, self.chunk, self.size)
                    });
                    return check_object(self.api, self.name, &meta, self.size, crc).await;
                }
                Ok(Session::Gone) => {
                    // Expired or cancelled (a lifecycle rule, a Delete): start over.
                    resumes += 1;
                    if resumes > RESUME_ATTEMPTS {
                        return Err(Error::new(
                            ErrorKind::Transient,
                            format!("{}: the upload session keeps disappearing", self.api.display(self.name)),
                        ));
                    }
                    let session = self.api.start_session(self.name, Some(self.size)).await?;
                    journal = Journal { session, size: self.size, chunk: self.chunk, crcs: Vec::new() };
                    self.write_journal(&journal).await?;
                    journaled = 0;
                    offset = 0;
                }
                Err(e) if retry.allows(&e) => {
                    resumes += 1;
                    retry.pause().await;
                    tracing::warn!(object = %self.api.display(self.name), error = %e, attempt = resumes, "resuming the upload");
                    if status_query_enabled()? {
                        match self.api.query(&journal.session, self.name, self.size).await? {
                            Session::Incomplete { persisted } => {
                                offset = persisted;
                                journal.crcs.truncate((offset / self.chunk) as usize);
                            }
                            Session::Done(meta) => {
                                self.api.delete(&journal_name(self.name)).await?;
                                let mut crcs = journal.crcs.clone();
                                crcs.truncate(index as usize);
                                crcs.push(self.crc_range(start, end - start).await?);
                                let crc = whole_crc(&crcs, self.chunk, self.size);
                                return check_object(self.api, self.name, &meta, self.size, crc).await;
                            }
                            Session::Gone => offset = 0,
                        }
                    }
                    // Without the query, the chunk is simply sent again.
                    journal.crcs.truncate((offset / self.chunk) as usize);
                }
                // Left for a later Save to resume: the journal stays.
                Err(e) if e.kind() == ErrorKind::Transient => return Err(e),
                Err(e) => return Err(self.give_up(&journal, e).await),
            }
        }
    }

    /// Cancels the session and removes the journal, then returns `e`.
    async fn give_up(&self, journal: &Journal, e: Error) -> Error {
        self.api.cancel(&journal.session, self.name).await.ok();
        self.api.delete(&journal_name(self.name)).await.ok();
        e
    }
}

/// The CRC32C of the whole object from the CRCs of its chunks.
fn whole_crc(crcs: &[u32], chunk: u64, size: u64) -> u32 {
    crcs.iter().enumerate().fold(0, |acc, (i, &crc)| {
        let len = chunk.min(size - i as u64 * chunk) as usize;
        if i == 0 { crc } else { crc32c::crc32c_combine(acc, crc, len) }
    })
}

/// Uploads a stream of unknown length: one request when it fits in a chunk,
/// else a resumable session fed chunk by chunk (about two chunks in memory).
/// A failing stream cancels the session, so nothing appears.
pub async fn save_stream(api: &Api, name: &str, mut data: ByteStream, options: &TransferOptions) -> Result<()> {
    let chunk = stream_chunk_size(options) as usize;
    let mut buf = BytesMut::new();
    let mut ended = false;
    // Fill until more than a chunk is held, so a chunk is known not to be the last.
    async fn fill(data: &mut ByteStream, buf: &mut BytesMut, want: usize, ended: &mut bool) -> Result<()> {
        while !*ended && buf.len() <= want {
            match data.next().await {
                Some(piece) => buf.extend_from_slice(&piece?),
                None => *ended = true,
            }
        }
        Ok(())
    }
    fill(&mut data, &mut buf, chunk, &mut ended).await?;
    if ended {
        let bytes = buf.freeze();
        let crc = crc32c::crc32c(&bytes);
        let size = bytes.len() as u64;
        let meta = api.upload_bytes(name, bytes).await?;
        return check_object(api, name, &meta, size, crc).await?;
    }
    let session = api.start_session(name, None).await?;
    let result = async {
        let mut offset = 0u64;
        let mut crc = 0u32;
        loop {
            fill(&mut data, &mut buf, chunk, &mut ended).await?;
            let take = if ended { buf.len() } else { chunk };
            let piece = buf.split_to(take).freeze();
            crc = crc32c::crc32c_append(crc, &piece);
            let total = ended.then_some(offset + piece.len() as u64);
            let whole = ended.then_some(crc);
            let mut retry = api.retry();
            let state = loop {
                let chunk =
                    Chunk { start: offset, body: piece.clone().into(), len: piece.len() as u64, total, crc: whole };
                match api.put_chunk(&session, name, chunk).await {
                    Err(e) if retry.allows(&e) => retry.pause().await,
                    other => break other?,
                }
            };
            match state {
                Session::Incomplete { persisted } if !ended && persisted == offset + piece.len() as u64 => {
                    offset = persisted
                }
                Session::Done(meta) if ended => {
                    return check_object(api, name, &meta, offset + piece.len() as u64, crc).await?;
                }
                other => {
                    return Err(Error::other(format!(
                        "{}: unexpected upload state after {} bytes: {other:?}",
                        api.display(name),
                        offset + piece.len() as u64
                    )));
                }
            }
        }
    }
    .await;
    if result.is_err() {
        api.cancel(&session, name).await.ok();
    }
    result
}

/// Cancels the unfinished uploads a Delete of `name` gives up (of exactly
/// `name` for an object, of names under `name/` for a directory: the rule of
/// the objects themselves) and removes their journals, so deleting an
/// artifact leaves nothing billable.
pub async fn abort_deleted(api: &Api, name: &str, scope: DeleteTarget) -> Result<()> {
    let journals = api.list(&format!("{UPLOADS_PREFIX}/{name}")).await?;
    for journal in journals {
        let Some(target) =
            journal.strip_prefix(&format!("{UPLOADS_PREFIX}/")).and_then(|n| n.strip_suffix(".upload.json"))
        else {
            continue;
        };
        let deleted = match scope {
            DeleteTarget::Object => target == name,
            DeleteTarget::Directory => target.starts_with(&format!("{name}/")),
        };
        if !deleted {
            continue;
        }
        if let Ok(response) = api.read(&journal, None, None).await
            && let Ok(body) = response.bytes().await
            && let Ok(j) = serde_json::from_slice::<Journal>(&body)
        {
            api.cancel(&j.session, target).await?;
        }
        api.delete(&journal).await?;
    }
    Ok(())
}

/// Streams `response`'s body, checking the whole object's CRC32C against
/// `expected` at the end: a mismatch is an error item, never a quiet end.
pub fn checked_stream(response: reqwest::Response, expected: Option<u32>, what: String) -> ByteStream {
    let body = response.bytes_stream();
    let state = (body, 0u32, false);
    futures::stream::try_unfold(state, move |(mut body, crc, done)| {
        let what = what.clone();
        async move {
            if done {
                return Ok(None);
            }
            match body.next().await {
                Some(Ok(b)) => {
                    let crc = crc32c::crc32c_append(crc, &b);
                    Ok(Some((b, (body, crc, false))))
                }
                Some(Err(e)) => Err(crate::api::transport_error(e, &what)),
                None => match expected {
                    Some(x) if x != crc => Err(Error::new(
                        ErrorKind::Transient,
                        format!("{what}: the bytes read do not match the object's CRC32C"),
                    )),
                    _ => Ok(None),
                },
            }
        }
    })
    .boxed()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunk_checksums_combine_into_the_whole_objects() {
        let data: Vec<u8> = (0..10_000u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 7) as u8).collect();
        let chunk = 4096u64;
        let crcs: Vec<u32> = data.chunks(chunk as usize).map(crc32c::crc32c).collect();
        assert_eq!(whole_crc(&crcs, chunk, data.len() as u64), crc32c::crc32c(&data));
    }

    #[test]
    fn checksums_travel_as_gcs_writes_them() {
        // CRC32C("123456789") is 0xE3069283; GCS sends the big-endian bytes in base64.
        let crc = crc32c::crc32c(b"123456789");
        assert_eq!(crc, 0xE306_9283);
        assert_eq!(crate::api::encode_crc(crc), "4waSgw==");
        assert_eq!(crate::api::decode_crc("4waSgw=="), Some(crc));
        assert_eq!(crate::api::decode_crc("not base64"), None);
    }
}
