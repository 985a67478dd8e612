//! Parallel ranged download of one large object into a local file: the first
//! part comes from the GET already open, the others from ranged GETs pinned
//! to the same object version, each written at its offset.

use crate::error::{Error, ErrorKind, Result};
use crate::local::{Staging, local_error};
use crate::stream::ByteStream;
use bytes::Bytes;
use futures::{Stream, StreamExt, TryStreamExt};
use object_store::path::Path as StorePath;
use object_store::{GetOptions, GetRange, ObjectMeta, ObjectStore};
use std::future::Future;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::Arc;

/// Downloads the object `meta` describes to `dst` (staged, renamed into place
/// when whole). `first` is the body of a plain GET of it.
pub(crate) async fn download(
    store: &Arc<dyn ObjectStore>,
    path: &StorePath,
    meta: &ObjectMeta,
    first: impl Stream<Item = object_store::Result<Bytes>> + Unpin + Send + 'static,
    dst: &Path,
    part_size: u64,
    concurrency: usize,
) -> Result<()> {
    let etag = meta.e_tag.clone();
    let first = first.map_err(Error::from).boxed();
    download_ranges(dst, meta.size, first, part_size, concurrency, path.as_ref(), |start, end| {
        let options = GetOptions {
            range: Some(GetRange::Bounded(start..end)),
            // The object must not change between parts.
            if_match: etag.clone(),
            ..GetOptions::default()
        };
        async move { Ok(store.get_opts(path, options).await?.into_stream().map_err(Error::from).boxed()) }
    })
    .await
}

/// Downloads an object of `size` bytes to `dst` in ranges of `part_size`,
/// `concurrency` at once, staged and renamed into place when whole. `first`
/// is the body of a plain GET of the object (only its first part is read);
/// `fetch(start, end)` opens the body of the bytes `start..end`, and must pin
/// the object version (ETag, generation) so parts cannot mix two objects.
/// `what` names the object in errors.
pub async fn download_ranges<F, Fut>(
    dst: &Path,
    size: u64,
    mut first: ByteStream,
    part_size: u64,
    concurrency: usize,
    what: &str,
    fetch: F,
) -> Result<()>
where
    F: Fn(u64, u64) -> Fut + Sync,
    Fut: Future<Output = Result<ByteStream>> + Send,
{
    let staging = Staging::beside(dst).await?;
    let file = std::fs::File::create(staging.path()).map_err(|e| local_error(e, "creating", staging.path()))?;
    file.set_len(size).map_err(|e| local_error(e, "sizing", staging.path()))?;
    let file = Arc::new(file);

    // Part 0 from the open GET; dropping the rest of it closes that connection.
    let first_len = part_size.min(size);
    let got = write_range(&mut first, file.clone(), 0, first_len, staging.path()).await?;
    drop(first);
    if got < first_len {
        return Err(short(what, 0, got, first_len));
    }

    let parts = size.div_ceil(part_size);
    let fetch = &fetch;
    futures::stream::iter(1..parts)
        .map(|i| {
            let (start, end) = (i * part_size, ((i + 1) * part_size).min(size));
            let file = file.clone();
            let target = staging.path().to_path_buf();
            async move {
                let mut body = fetch(start, end).await?;
                let got = write_range(&mut body, file, start, end - start, &target).await?;
                if got != end - start {
                    return Err(short(what, start, got, end - start));
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
    body: &mut ByteStream,
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

fn short(what: &str, offset: u64, got: u64, wanted: u64) -> Error {
    Error::new(ErrorKind::Transient, format!("{what}: the range at {offset} returned {got} of {wanted} bytes"))
}
