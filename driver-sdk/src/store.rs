//! Any [`object_store::ObjectStore`] as a complete driver, and the parts a
//! storage driver that is not built on object_store can reuse: the journal
//! prefix of resumable uploads, the parallel ranged download, and the range
//! clamping and length check of [`Driver::open_range`].

use crate::driver::{DeleteTarget, Driver};
use crate::error::{Error, ErrorKind, Result};
use crate::key::ArtifactKey;
use crate::local::{self, Staging, local_error};
use crate::multipart::{self, FileUpload};
use crate::ranged;
use crate::stream::ByteStream;
use bytes::{Bytes, BytesMut};
use futures::{StreamExt, TryStreamExt};
use object_store::multipart::MultipartStore;
use object_store::path::Path as StorePath;
use object_store::{
    GetOptions, GetRange, GetResult, GetResultPayload, ObjectStore, ObjectStoreExt, PutPayload, WriteMultipart,
};
use std::future::Future;
use std::path::Path;
use std::sync::Arc;
use tokio::io::AsyncReadExt;

pub use crate::multipart::{UPLOADS_PREFIX, UploadReport};
pub use crate::ranged::download_ranges;

/// S3's ceiling on parts per multipart upload; part sizes grow so that any
/// object up to the service maximum fits in it.
pub const MAX_PARTS: u64 = 10_000;

/// How keys become object_store paths.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum KeyEncoding {
    /// The key is the object name, byte for byte (S3, GCS, OSS): an object
    /// written by Argo's built-in driver is found under the same key.
    #[default]
    Verbatim,
    /// Characters object_store reserves (`%`, `#`, `*`, ...) are
    /// percent-encoded in the path and decoded again when listing. Needed for
    /// `LocalFileSystem`, which reads paths as URLs.
    Escaped,
}

/// Tuning of uploads and downloads. Peak memory per transfer is about
/// `part_size × max_concurrency`.
#[derive(Clone, Copy, Debug)]
#[non_exhaustive]
pub struct TransferOptions {
    /// Files up to this size go up in one PUT; larger ones as multipart.
    pub multipart_threshold: u64,
    /// Part size of multipart uploads (raised for huge files to stay within [`MAX_PARTS`]).
    pub part_size: u64,
    /// Parts of one upload in flight at once.
    pub max_concurrency: usize,
    /// Ranges of one download in flight at once. Downloads hold about 1 MiB
    /// per range, not a part, so more can fly than for uploads.
    pub download_concurrency: usize,
    /// How keys map to object paths.
    pub key_encoding: KeyEncoding,
    /// Wall time over which an interrupted file upload is resumed within one
    /// Save (`FERRY_RETRY_TIMEOUT`); the journal is kept when it runs out.
    pub retry_timeout: std::time::Duration,
}

impl Default for TransferOptions {
    fn default() -> Self {
        TransferOptions {
            multipart_threshold: 16 << 20,
            part_size: 8 << 20,
            max_concurrency: 4,
            download_concurrency: 8,
            key_encoding: KeyEncoding::Verbatim,
            retry_timeout: crate::env::DEFAULT_RETRY_TIMEOUT,
        }
    }
}

impl TransferOptions {
    /// Sets the multipart threshold.
    #[must_use]
    pub fn with_multipart_threshold(mut self, bytes: u64) -> Self {
        self.multipart_threshold = bytes;
        self
    }

    /// Sets the part size (object stores need at least 5 MiB except for the last part).
    #[must_use]
    pub fn with_part_size(mut self, bytes: u64) -> Self {
        self.part_size = bytes;
        self
    }

    /// Sets how many parts of one upload may be in flight.
    #[must_use]
    pub fn with_max_concurrency(mut self, parts: usize) -> Self {
        self.max_concurrency = parts.max(1);
        self
    }

    /// Sets how many ranges of one download may be in flight.
    #[must_use]
    pub fn with_download_concurrency(mut self, ranges: usize) -> Self {
        self.download_concurrency = ranges.max(1);
        self
    }

    /// Sets the key encoding.
    #[must_use]
    pub fn with_key_encoding(mut self, encoding: KeyEncoding) -> Self {
        self.key_encoding = encoding;
        self
    }

    /// The defaults, overridden by `FERRY_PART_SIZE`, `FERRY_MAX_CONCURRENCY`,
    /// `FERRY_DOWNLOAD_CONCURRENCY`, `FERRY_MULTIPART_THRESHOLD` and `FERRY_RETRY_TIMEOUT` where set (sizes as bytes or with a
    /// `Ki`/`Mi`/`Gi` suffix). Peak memory of one upload is about part size ×
    /// concurrency.
    pub fn from_env() -> Result<Self> {
        let mut o = TransferOptions::default();
        if let Some(v) = crate::env::size("FERRY_PART_SIZE")? {
            if v < 5 << 20 {
                return Err(Error::invalid_config("FERRY_PART_SIZE: parts must be at least 5Mi (S3's minimum)"));
            }
            o.part_size = v;
        }
        if let Some(v) = crate::env::size("FERRY_MULTIPART_THRESHOLD")? {
            o.multipart_threshold = v;
        }
        if let Some(n) = crate::env::positive("FERRY_MAX_CONCURRENCY")? {
            o.max_concurrency = n as usize;
        }
        if let Some(n) = crate::env::positive("FERRY_DOWNLOAD_CONCURRENCY")? {
            o.download_concurrency = n as usize;
        }
        o.retry_timeout = crate::env::duration(crate::env::RETRY_TIMEOUT_ENV, o.retry_timeout)?;
        Ok(o)
    }

    /// The part size for an object of `size` bytes.
    pub fn part_size_for(&self, size: u64) -> u64 {
        self.part_size.max(size.div_ceil(MAX_PARTS))
    }
}

/// A configured store: the objects, and when the store has the low-level
/// multipart API, what makes uploads of files resumable.
#[derive(Clone)]
pub struct Store {
    objects: Arc<dyn ObjectStore>,
    multipart: Option<Arc<dyn MultipartStore>>,
    /// Where the objects live, for messages (`bucket "b"`).
    label: Option<String>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("objects", &self.objects.to_string())
            .field("resumable", &self.is_resumable())
            .finish()
    }
}

impl Store {
    /// A store whose large uploads go through object_store's `WriteMultipart`
    /// (aborted on failure, never resumed).
    pub fn new(objects: Arc<dyn ObjectStore>) -> Self {
        Store { objects, multipart: None, label: None }
    }

    /// A store whose file uploads resume after an interruption, even in
    /// another process: see [`UPLOADS_PREFIX`] for where the journal lives.
    pub fn resumable<S: ObjectStore + MultipartStore>(store: Arc<S>) -> Self {
        Store { objects: store.clone(), multipart: Some(store), label: None }
    }

    /// Names where the objects live (`bucket "b"`) in error messages, next to
    /// the key. Never a host path: messages reach the workflow's status.
    #[must_use]
    pub fn labelled(mut self, label: impl Into<String>) -> Self {
        self.label = Some(label.into());
        self
    }

    /// An object_store failure about `key`, as the SDK's error naming the
    /// key (and where it lives) instead of the store's own path.
    fn error_at(&self, key: &ArtifactKey) -> impl Fn(object_store::Error) -> Error + '_ {
        let at = match &self.label {
            Some(label) => format!("key {} in {label}", crate::shown(key.as_str())),
            None => format!("key {}", crate::shown(key.as_str())),
        };
        move |e| Error::from(e).context(&at)
    }

    /// The object store.
    pub fn objects(&self) -> &Arc<dyn ObjectStore> {
        &self.objects
    }

    /// Whether file uploads are resumable.
    pub fn is_resumable(&self) -> bool {
        self.multipart.is_some()
    }
}

impl From<Arc<dyn ObjectStore>> for Store {
    fn from(objects: Arc<dyn ObjectStore>) -> Self {
        Store::new(objects)
    }
}

/// Connects the store one `configuration` string describes: the
/// [`Driver::connect`] step of an [`ObjectStoreDriver`]. Any
/// `Fn(&str) -> Result<Arc<dyn ObjectStore>>` is a `StoreConnector`.
pub trait StoreConnector: Send + Sync + 'static {
    /// Parses `configuration` and connects.
    fn connect(&self, configuration: &str) -> impl Future<Output = Result<Store>> + Send;
}

impl<F> StoreConnector for F
where
    F: Fn(&str) -> Result<Arc<dyn ObjectStore>> + Send + Sync + 'static,
{
    fn connect(&self, configuration: &str) -> impl Future<Output = Result<Store>> + Send {
        std::future::ready(self(configuration).map(Store::new))
    }
}

/// A [`Driver`] over object stores: files and directories, idempotent delete
/// of one object or a directory, bounded-memory streaming both ways, parallel multipart
/// uploads and parallel directory transfer.
///
/// ```
/// use std::sync::Arc;
/// use ferry_sdk::{ObjectStoreDriver, TransferOptions};
/// use object_store::memory::InMemory;
///
/// let store: Arc<dyn object_store::ObjectStore> = Arc::new(InMemory::new());
/// let driver = ObjectStoreDriver::new(move |_: &str| Ok(store.clone()))
///     .with_options(TransferOptions::default().with_part_size(16 << 20));
/// # let _ = driver;
/// ```
pub struct ObjectStoreDriver<C> {
    connector: C,
    options: TransferOptions,
}

impl<C: StoreConnector> ObjectStoreDriver<C> {
    /// A driver whose stores come from `connector`.
    pub fn new(connector: C) -> Self {
        ObjectStoreDriver { connector, options: TransferOptions::default() }
    }

    /// Replaces the transfer options.
    #[must_use]
    pub fn with_options(mut self, options: TransferOptions) -> Self {
        self.options = options;
        self
    }

    /// The transfer options in force.
    pub fn options(&self) -> &TransferOptions {
        &self.options
    }

    /// The object_store path of `key` under this driver's key encoding.
    pub fn store_path(&self, key: &ArtifactKey) -> Result<StorePath> {
        if key.as_str() == UPLOADS_PREFIX || key.as_str().starts_with(&format!("{UPLOADS_PREFIX}/")) {
            return Err(Error::invalid_argument(format!(
                "key {key:?}: {UPLOADS_PREFIX}/ is reserved for the journals of unfinished uploads"
            )));
        }
        match self.options.key_encoding {
            KeyEncoding::Verbatim => {
                StorePath::parse(key.as_str()).map_err(|e| Error::invalid_argument(format!("key {key:?}: {e}")))
            }
            KeyEncoding::Escaped if key.is_root() => Ok(StorePath::default()),
            KeyEncoding::Escaped => Ok(StorePath::from_iter(key.as_str().split('/'))),
        }
    }

    fn key(&self, path: &StorePath) -> Result<ArtifactKey> {
        match self.options.key_encoding {
            KeyEncoding::Verbatim => ArtifactKey::parse(path.as_ref()),
            KeyEncoding::Escaped => {
                let decoded = percent_encoding::percent_decode_str(path.as_ref())
                    .decode_utf8()
                    .map_err(|_| Error::other(format!("stored path {path} is not UTF-8")))?;
                ArtifactKey::parse(&decoded)
            }
        }
    }

    async fn put_multipart(
        &self,
        store: &Store,
        path: &StorePath,
        part_size: u64,
        first: Bytes,
        mut rest: impl futures::Stream<Item = Result<Bytes>> + Unpin + Send,
    ) -> Result<()> {
        let upload = store.objects.put_multipart(path).await?;
        let mut writer = WriteMultipart::new_with_chunk_size(upload, part_size as usize);
        let result = async {
            writer.put(first);
            while let Some(chunk) = rest.next().await {
                let chunk = chunk?;
                writer.wait_for_capacity(self.options.max_concurrency).await?;
                writer.put(chunk);
            }
            Ok::<_, Error>(())
        }
        .await;
        match result {
            Ok(()) => writer.finish().await.map(drop).map_err(Error::from),
            Err(err) => {
                // Abort so no parts stay behind to be billed or found later.
                if let Err(abort) = writer.abort().await {
                    tracing::warn!(error = %abort, "aborting multipart upload failed");
                }
                Err(err)
            }
        }
    }
}

impl<C: StoreConnector> Driver for ObjectStoreDriver<C> {
    type Target = Store;

    fn connect(&self, configuration: &str) -> impl Future<Output = Result<Self::Target>> + Send {
        self.connector.connect(configuration)
    }

    async fn open_stream(&self, store: &Self::Target, key: &ArtifactKey) -> Result<ByteStream> {
        key.require_object("open a stream")?;
        let result = store.objects.get(&self.store_path(key)?).await.map_err(store.error_at(key))?;
        let expected = result.meta.size;
        Ok(check_length(body(result)?, expected, format!("key {key:?}")))
    }

    async fn size(&self, store: &Self::Target, key: &ArtifactKey) -> Result<u64> {
        key.require_object("stat")?;
        Ok(store.objects.head(&self.store_path(key)?).await.map_err(store.error_at(key))?.size)
    }

    async fn open_range(
        &self,
        store: &Self::Target,
        key: &ArtifactKey,
        range: std::ops::Range<u64>,
    ) -> Result<ByteStream> {
        key.require_object("read a range")?;
        let path = self.store_path(key)?;
        // The size first: a ranged GET starting past the end is an error
        // (HTTP 416) on most stores, and clamping needs the size anyway.
        let meta = store.objects.head(&path).await.map_err(store.error_at(key))?;
        let range = clamp_range(range, meta.size);
        if range.is_empty() {
            return Ok(futures::stream::empty().boxed());
        }
        let options = GetOptions {
            range: Some(GetRange::Bounded(range.clone())),
            // The bytes must come from the object the range was clamped to.
            if_match: meta.e_tag,
            ..GetOptions::default()
        };
        let result = store.objects.get_opts(&path, options).await.map_err(store.error_at(key))?;
        Ok(check_length(body(result)?, range.end - range.start, format!("key {key:?}, bytes {range:?}")))
    }

    async fn save_stream(&self, store: &Self::Target, key: &ArtifactKey, data: ByteStream) -> Result<()> {
        key.require_object("save")?;
        let path = self.store_path(key)?;
        let threshold = self.options.multipart_threshold as usize;
        let mut data = data;
        let mut head = BytesMut::new();
        while head.len() <= threshold {
            match data.next().await {
                Some(chunk) => head.extend_from_slice(&chunk?),
                None => {
                    store.objects.put(&path, PutPayload::from(head.freeze())).await?;
                    return Ok(());
                }
            }
        }
        // Size unknown up front: use the configured part size.
        self.put_multipart(store, &path, self.options.part_size, head.freeze(), data).await
    }

    async fn save_file(&self, store: &Self::Target, key: &ArtifactKey, src: &Path) -> Result<()> {
        key.require_object("save")?;
        let path = self.store_path(key)?;
        let mut file = tokio::fs::File::open(src).await.map_err(|e| local_error(e, "opening", src))?;
        let size = file.metadata().await.map_err(|e| local_error(e, "reading", src))?.len();
        if let (Some(multipart), true) = (&store.multipart, size > self.options.multipart_threshold) {
            drop(file);
            let report = FileUpload {
                objects: &store.objects,
                multipart,
                path: &path,
                src,
                size,
                part_size: self.options.part_size_for(size),
                concurrency: self.options.max_concurrency,
                retry_for: self.options.retry_timeout,
            }
            .run()
            .await?;
            tracing::info!(key = %key, parts = report.parts, reused = report.reused, bytes_sent = report.bytes_sent, "multipart upload done");
            // Parts are read at fixed offsets up to the size taken at the
            // start: a file that shrank fails the read, one that grew is
            // saved as it was.
            return Ok(());
        } else if size <= self.options.multipart_threshold {
            let mut buf = Vec::with_capacity(size as usize);
            file.read_to_end(&mut buf).await.map_err(|e| local_error(e, "reading", src))?;
            if buf.len() as u64 != size {
                return Err(changed(src, size, buf.len() as u64));
            }
            store.objects.put(&path, PutPayload::from(buf)).await?;
            return Ok(());
        } else {
            let part = self.options.part_size_for(size);
            let mut parts = part_stream(file, part as usize, src.to_path_buf());
            let first = parts.next().await.unwrap_or_else(|| Ok(Bytes::new()))?;
            self.put_multipart(store, &path, part, first, parts).await?;
        }
        // A source that changed size under us must not pass as a good copy.
        let stored = store.objects.head(&path).await?.size;
        if stored != size {
            return Err(changed(src, size, stored));
        }
        Ok(())
    }

    async fn load_file(&self, store: &Self::Target, key: &ArtifactKey, dst: &Path) -> Result<()> {
        key.require_object("load")?;
        let path = self.store_path(key)?;
        let result = store.objects.get(&path).await.map_err(store.error_at(key))?;
        let expected = result.meta.size;
        let written = match result.payload {
            // Large remote objects come down in parallel ranges, as upload does.
            GetResultPayload::Stream(s) if expected > self.options.multipart_threshold => {
                let part = self.options.part_size_for(expected);
                ranged::download(&store.objects, &path, &result.meta, s, dst, part, self.options.download_concurrency)
                    .await?;
                expected
            }
            GetResultPayload::File(mut file, _) => {
                // Local to local: let the kernel copy (copy_file_range) instead
                // of moving every byte through user space.
                let staging = Staging::beside(dst).await?;
                let target = staging.path().to_path_buf();
                let n = tokio::task::spawn_blocking(move || {
                    let mut out = std::fs::File::create(&target)?;
                    std::io::copy(&mut file, &mut out)
                })
                .await
                .map_err(|e| Error::other(format!("copy task failed: {e}")))?
                .map_err(|e| local_error(e, "writing", dst))?;
                staging.commit(dst).await?;
                n
            }
            GetResultPayload::Stream(s) => local::write_atomically(dst, s.map_err(Error::from).boxed()).await?,
        };
        if written != expected {
            let _ = tokio::fs::remove_file(dst).await;
            return Err(Error::new(
                ErrorKind::Transient,
                format!("key {key:?}: read {written} bytes, the store reported {expected}"),
            ));
        }
        Ok(())
    }

    async fn delete_object(&self, store: &Self::Target, key: &ArtifactKey) -> Result<()> {
        key.require_object("delete")?;
        match store.objects.delete(&self.store_path(key)?).await {
            Ok(()) => Ok(()),
            Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    async fn delete(&self, store: &Self::Target, key: &ArtifactKey, target: DeleteTarget) -> Result<()> {
        key.require_object("delete")?;
        let path = self.store_path(key)?;
        match target {
            DeleteTarget::Object => {
                if let Err(e) = self.delete_object(store, key).await {
                    // A filesystem refuses to unlink a directory; a key naming
                    // one holds no object, so there is nothing to delete.
                    if self.exists(store, key).await? {
                        return Err(e);
                    }
                }
            }
            DeleteTarget::Directory => {
                let children = store.objects.list(Some(&path)).map_ok(|meta| meta.location).boxed();
                store.objects.delete_stream(children).try_for_each(|_| std::future::ready(Ok(()))).await.or_else(
                    |e| match e {
                        object_store::Error::NotFound { .. } => Ok(()),
                        e => Err(Error::from(e)),
                    },
                )?;
            }
        }
        if let Some(multipart) = &store.multipart {
            let aborted = multipart::abort_deleted(&store.objects, multipart, &path, target).await?;
            if aborted > 0 {
                tracing::info!(key = %key, aborted, "aborted unfinished uploads of the deleted key");
            }
        }
        Ok(())
    }

    async fn list(&self, store: &Self::Target, key: &ArtifactKey) -> Result<Vec<ArtifactKey>> {
        let prefix = self.store_path(key)?;
        let prefix = (!key.is_root()).then_some(&prefix);
        let paths: Vec<StorePath> = store.objects.list(prefix).map_ok(|meta| meta.location).try_collect().await?;
        let reserved = format!("{UPLOADS_PREFIX}/");
        let mut keys = paths
            .iter()
            .filter(|p| !p.as_ref().starts_with(&reserved))
            .map(|p| self.key(p))
            .collect::<Result<Vec<_>>>()?;
        keys.sort();
        keys.dedup();
        Ok(keys)
    }

    async fn exists(&self, store: &Self::Target, key: &ArtifactKey) -> Result<bool> {
        if key.is_root() {
            return Ok(false);
        }
        match store.objects.head(&self.store_path(key)?).await {
            Ok(_) => Ok(true),
            Err(object_store::Error::NotFound { .. }) => Ok(false),
            Err(e) => Err(e.into()),
        }
    }

    async fn is_directory(&self, store: &Self::Target, key: &ArtifactKey) -> Result<bool> {
        let prefix = self.store_path(key)?;
        let prefix = (!key.is_root()).then_some(&prefix);
        // The first child answers; a 10,000-object prefix is not listed whole.
        match store.objects.list(prefix).next().await {
            Some(Ok(_)) => Ok(true),
            Some(Err(e)) => Err(e.into()),
            None => Ok(false),
        }
    }
}

fn changed(src: &Path, size: u64, got: u64) -> Error {
    Error::other(format!(
        "{} had {size} bytes when the save started and {got} at its end; was it written during the save?",
        src.display()
    ))
}

/// Reads a file in whole parts of `part` bytes (the last may be shorter).
fn part_stream(
    file: tokio::fs::File,
    part: usize,
    path: std::path::PathBuf,
) -> impl futures::Stream<Item = Result<Bytes>> + Unpin + Send {
    Box::pin(futures::stream::try_unfold((file, path), move |(mut file, path)| async move {
        let mut buf = BytesMut::with_capacity(part);
        while buf.len() < part {
            let n = (&mut file)
                .take((part - buf.len()) as u64)
                .read_buf(&mut buf)
                .await
                .map_err(|e| local_error(e, "reading", &path))?;
            if n == 0 {
                break;
            }
        }
        Ok(if buf.is_empty() { None } else { Some((buf.freeze(), (file, path))) })
    }))
}

/// Read size when streaming a local file to a client: every open stream holds
/// a few of these, and argo-server may serve many downloads at once.
const STREAM_CHUNK: usize = 256 << 10;

/// The body of a GET: a local file read in [`STREAM_CHUNK`] pieces from
/// the start of the range asked for, anything else as the store streams it.
fn body(result: GetResult) -> Result<ByteStream> {
    match result.payload {
        GetResultPayload::File(file, path) => local_file_stream(file, path, result.range),
        GetResultPayload::Stream(s) => Ok(s.map_err(Error::from).boxed()),
    }
}

/// `range` cut to an object of `size` bytes: it ends at the object's end at
/// the latest, and is empty when it starts at or past it. What
/// [`Driver::open_range`] serves of a range that reaches past the end.
///
/// ```
/// use ferry_sdk::store::clamp_range;
/// assert_eq!(clamp_range(2..5, 10), 2..5);
/// assert_eq!(clamp_range(8..20, 10), 8..10);
/// assert!(clamp_range(12..20, 10).is_empty());
/// ```
pub fn clamp_range(range: std::ops::Range<u64>, size: u64) -> std::ops::Range<u64> {
    let end = range.end.min(size);
    range.start.min(end)..end
}

/// Streams the bytes `range` of a local file in [`STREAM_CHUNK`] pieces, each read on a blocking
/// thread when the reader asks for it (object_store's own chunking, 8 KiB,
/// costs a thread hop per 8 KiB). Nothing is read ahead and no thread is held
/// between reads, so a client that stops reading costs an open file, not a
/// blocking thread: a thousand stalled streams must not take every blocking
/// thread the runtime has and starve the other calls.
fn local_file_stream(
    mut file: std::fs::File,
    path: std::path::PathBuf,
    range: std::ops::Range<u64>,
) -> Result<ByteStream> {
    use std::io::{Read, Seek};
    // A seek moves the file offset only; it does not wait for the disk.
    file.seek(std::io::SeekFrom::Start(range.start)).map_err(|e| local_error(e, "reading", &path))?;
    let file = file.take(range.end.saturating_sub(range.start));
    Ok(futures::stream::try_unfold(Some((file, path)), |state| async move {
        let Some((mut file, path)) = state else { return Ok(None) };
        let (file, path, read) = tokio::task::spawn_blocking(move || {
            let mut buf = vec![0u8; STREAM_CHUNK];
            let read = file.read(&mut buf).map(|n| {
                buf.truncate(n);
                buf
            });
            (file, path, read)
        })
        .await
        .map_err(|e| Error::other(format!("read task failed: {e}")))?;
        match read {
            Ok(buf) if buf.is_empty() => Ok(None),
            Ok(buf) => Ok(Some((Bytes::from(buf), Some((file, path))))),
            Err(e) => Err(local_error(e, "reading", &path)),
        }
    })
    .boxed())
}

/// Fails the stream if it ends before `expected` bytes, so a connection cut
/// mid-body is an error rather than a shorter object, or runs past them, so a
/// server that ignored a range is not taken for the range. `what` names the
/// object (and range) in the error.
pub fn check_length(stream: ByteStream, expected: u64, what: String) -> ByteStream {
    futures::stream::unfold(Some((stream, 0u64)), move |state| {
        let what = what.clone();
        async move {
            let (mut stream, seen) = state?;
            let fail = |why: String| Some((Err(Error::new(ErrorKind::Transient, format!("{what}: {why}"))), None));
            match stream.next().await {
                Some(Ok(chunk)) => {
                    let seen = seen + chunk.len() as u64;
                    if seen > expected {
                        return fail(format!("stream ran past the {expected} bytes expected"));
                    }
                    Some((Ok(chunk), Some((stream, seen))))
                }
                Some(Err(e)) => Some((Err(e), None)),
                None if seen == expected => None,
                None => fail(format!("stream ended after {seen} of {expected} bytes")),
            }
        }
    })
    .boxed()
}
