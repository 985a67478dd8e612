//! Downloads into local files: one stream for small objects, parallel ranges
//! of one generation for large ones, and in both cases the whole object's
//! CRC32C checked against what GCS stores before the file appears. Also the
//! ranged media read behind `ferry.v1.ObjectService`'s ReadRange.

use crate::api::{self, Api};
use crate::upload::checked_stream;
use bytes::Bytes;
use ferry_sdk::{ByteStream, Error, ErrorKind, Result, TransferOptions};
use futures::{StreamExt, TryStreamExt};
use std::path::Path;
use std::sync::{Arc, Mutex};

/// Downloads `name` to `dst`; the file appears whole and checked, or not at all.
pub async fn load_file(api: &Api, name: &str, dst: &Path, options: &TransferOptions) -> Result<()> {
    let response = api.read(name, None, None).await?;
    let expected = api::header_crc(&response);
    let size = response.content_length();
    let generation = response.headers().get("x-goog-generation").and_then(|v| v.to_str().ok()).map(str::to_string);
    let what = api.display(name);
    let (Some(size), Some(generation)) = (size, generation) else {
        let data = checked_stream(response, expected, what);
        return ferry_sdk::local::write_atomically(dst, data).await.map(drop);
    };
    if size <= options.multipart_threshold {
        let data = checked_stream(response, expected, what);
        return ferry_sdk::local::write_atomically(dst, data).await.map(drop);
    }

    // Each range hashes exactly its own bytes; the range CRCs combine into the
    // object's, so the check costs no second pass over the file.
    let part = options.part_size_for(size);
    let parts = size.div_ceil(part) as usize;
    let crcs = Arc::new(Mutex::new(vec![None; parts]));
    let range_len = |i: usize| part.min(size - i as u64 * part);
    let first = hashed(checked_stream(response, None, what.clone()), range_len(0), crcs.clone(), 0);
    ferry_sdk::store::download_ranges(dst, size, first, part, options.download_concurrency, &what, |start, end| {
        let (generation, what, crcs) = (generation.clone(), what.clone(), crcs.clone());
        async move {
            let r = api.read(name, Some((start, end)), Some(&generation)).await?;
            Ok(hashed(checked_stream(r, None, what), end - start, crcs, (start / part) as usize))
        }
    })
    .await?;
    let crcs = crcs.lock().expect("range checksums").clone();
    let whole = crcs.iter().enumerate().try_fold(0u32, |acc, (i, crc)| {
        let crc = (*crc)?;
        Some(if i == 0 { crc } else { crc32c::crc32c_combine(acc, crc, range_len(i) as usize) })
    });
    match (whole, expected) {
        (Some(got), Some(want)) if got != want => {
            tokio::fs::remove_file(dst).await.ok();
            Err(Error::new(
                ErrorKind::Transient,
                format!("{what}: the bytes downloaded do not match the object's CRC32C"),
            ))
        }
        (None, _) => {
            tokio::fs::remove_file(dst).await.ok();
            Err(Error::other(format!("{what}: a range ended before its checksum was taken")))
        }
        _ => Ok(()),
    }
}

/// Passes `body` through, hashing its first `len` bytes into `slot` of `crcs`
/// once all of them have gone by.
fn hashed(body: ByteStream, len: u64, crcs: Arc<Mutex<Vec<Option<u32>>>>, slot: usize) -> ByteStream {
    let mut crc = 0u32;
    let mut seen = 0u64;
    body.inspect_ok(move |b: &Bytes| {
        if seen >= len {
            return;
        }
        let take = (len - seen).min(b.len() as u64) as usize;
        crc = crc32c::crc32c_append(crc, &b[..take]);
        seen += take as u64;
        if seen == len {
            crcs.lock().expect("range checksums")[slot] = Some(crc);
        }
    })
    .boxed()
}

/// Streams bytes `range` of `name`, clamped to the object's end, from the
/// generation whose size the clamping used. GCS answers a range starting at
/// or past the end with 416, so the size comes first.
pub async fn read_range(api: &Api, name: &str, range: std::ops::Range<u64>) -> Result<ByteStream> {
    let what = api.display(name);
    let meta = api.stat(name).await?.ok_or_else(|| Error::not_found(format!("{what}: no such object")))?;
    let range = ferry_sdk::store::clamp_range(range, meta.size);
    if range.is_empty() {
        return Ok(futures::stream::empty().boxed());
    }
    let whole = range == (0..meta.size);
    let generation = Some(meta.generation.as_str()).filter(|g| !g.is_empty());
    let response = api.read(name, Some((range.start, range.end)), generation).await?;
    // A server that ignores Range answers 200 with the whole object, whose
    // first bytes are not the range's.
    if !whole && response.status() != reqwest::StatusCode::PARTIAL_CONTENT {
        return Err(Error::other(format!("{what}: HTTP {} to a ranged read; expected 206", response.status())));
    }
    // Only the whole object has a checksum to compare with.
    let crc = if whole { meta.crc32c() } else { None };
    let len = range.end - range.start;
    let data = checked_stream(response, crc, what.clone());
    Ok(ferry_sdk::store::check_length(data, len, format!("{what}, bytes {range:?}")))
}
