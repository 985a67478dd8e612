//! Parallel ranged download of one large object into a local file: the first
//! part comes from the GET already open, the others from ranged GETs pinned
//! to the same ETag, each written at its offset.

use crate::error::{Error, ErrorKind, Result};
use crate::transfer::{Staging, local_error};
use bytes::Bytes;
use futures::{Stream, StreamExt, TryStreamExt};
use object_store::path::Path as StorePath;
use object_store::{GetOptions, GetRange, ObjectMeta, ObjectStore};
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::Arc;

/// Downloads the object `meta` describes to `dst` (staged, renamed into place
/// when whole). `first` is the body of a plain GET of it.
pub(crate) async fn download(
    store: &Arc<dyn ObjectStore>,
    path: &StorePath,
    meta: &ObjectMeta,
    mut first: impl Stream<Item = object_store::Result<Bytes>> + Unpin + Send,
    dst: &Path,
    part_size: u64,
    concurrency: usize,
) -> Result<()> {
    let size = meta.size;
    let staging = Staging::beside(dst).await?;
    let file = std::fs::File::create(staging.path()).map_err(|e| local_error(e, "creating", staging.path()))?;
    file.set_len(size).map_err(|e| local_error(e, "sizing", staging.path()))?;
    let file = Arc::new(file);

    // Part 0 from the open GET; dropping the rest of it closes that connection.
    let first_len = part_size.min(size);
    let got = write_range(&mut first, file.clone(), 0, first_len, staging.path()).await?;
    drop(first);
    if got < first_len {
        return Err(short(path, 0, got, first_len));
    }

    let parts = size.div_ceil(part_size);
    let etag = meta.e_tag.clone();
    futures::stream::iter(1..parts)
        .map(|i| {
            let (start, end) = (i * part_size, ((i + 1) * part_size).min(size));
            let options = GetOptions {
                range: Some(GetRange::Bounded(start..end)),
                // The object must not change between parts.
                if_match: etag.clone(),
                ..GetOptions::default()
            };
            let file = file.clone();
            let target = staging.path().to_path_buf();
            async move {
                let mut body = store.get_opts(path, options).await?.into_stream();
                let got = write_range(&mut body, file, start, end - start, &target).await?;
                if got != end - start {
                    return Err(short(path, start, got, end - start));
                }
                Ok(())
            }
        })
        .buffer_unordered(concurrency)
        .try_collect::<()>()
        .await?;
    staging.commit(dst).await
}

/// Bytes gathered before one positioned write: large enough that the thread
/// hop per write vanishes, small enough that memory stays far below a part
/// per range in flight.
const WRITE_BATCH: usize = 1 << 20;

/// Writes up to `len` bytes of `body` at `offset` onwards; returns how many came.
async fn write_range(
    body: &mut (impl Stream<Item = object_store::Result<Bytes>> + Unpin + Send),
    file: Arc<std::fs::File>,
    offset: u64,
    len: u64,
    target: &Path,
) -> Result<u64> {
    let mut done = 0u64;
    let mut batch = bytes::BytesMut::with_capacity(WRITE_BATCH);
    while done + (batch.len() as u64) < len {
        let Some(chunk) = body.next().await else { break };
        let chunk = chunk?;
        let room = (len - done - batch.len() as u64) as usize;
        batch.extend_from_slice(&chunk[..chunk.len().min(room)]);
        if batch.len() >= WRITE_BATCH {
            let n = batch.len() as u64;
            write_at(file.clone(), batch.split().freeze(), offset + done, target).await?;
            done += n;
        }
    }
    if !batch.is_empty() {
        let n = batch.len() as u64;
        write_at(file, batch.freeze(), offset + done, target).await?;
        done += n;
    }
    Ok(done)
}

async fn write_at(file: Arc<std::fs::File>, data: Bytes, offset: u64, target: &Path) -> Result<()> {
    let target = target.to_path_buf();
    tokio::task::spawn_blocking(move || {
        file.write_all_at(&data, offset).map_err(|e| local_error(e, "writing", &target))
    })
    .await
    .map_err(|e| Error::other(format!("write task failed: {e}")))?
}

fn short(path: &StorePath, offset: u64, got: u64, wanted: u64) -> Error {
    Error::new(ErrorKind::Transient, format!("{path}: the range at {offset} returned {got} of {wanted} bytes"))
}
