//! Serving a [`Driver`] on a unix socket as `artifact.ArtifactService`, the way
//! Argo runs plugins: socket path as the last argument, graceful exit 0 on SIGTERM.

use crate::driver::Driver;
use crate::error::{Error, ErrorKind, KIND_HEADER, Result};
use crate::key::ArtifactKey;
use crate::stream::ByteStream;
use bytes::{Bytes, BytesMut};
use ferry_proto as pb;
use ferry_proto::artifact_service_server::{ArtifactService, ArtifactServiceServer};
use futures::{Stream, StreamExt};
use std::collections::HashMap;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tonic::{Request, Response, Status, Streaming};

/// The largest `data` payload of one OpenStream frame. Argo's client keeps
/// gRPC's default 4 MiB receive limit; 2 MiB leaves room and matches the
/// chunk size Argo itself sends in SaveStream.
pub const MAX_FRAME_BYTES: usize = 2 << 20;

/// Environment variable bounding how long in-flight calls may run after
/// SIGTERM before the driver exits anyway.
pub const SHUTDOWN_GRACE_ENV: &str = "FERRY_SHUTDOWN_GRACE_SECONDS";

/// Default grace period: below the 10 s `terminationGracePeriodSeconds` Argo's
/// own test cluster uses, so the driver exits 0 before being killed.
pub const DEFAULT_SHUTDOWN_GRACE: Duration = Duration::from_secs(8);

/// How long a connected target is reused for one configuration string
/// before it is connected anew, so rotated secrets are picked up.
const TARGET_TTL: Duration = Duration::from_secs(300);
const TARGET_CACHE_ENTRIES: usize = 64;

/// Connected targets by configuration string, with when each was connected.
type TargetCache<T> = Mutex<HashMap<String, (Arc<T>, Instant)>>;

/// How long shutdown waits for calls already sent to reach their handlers.
const SETTLE: Duration = Duration::from_millis(100);

/// Counts calls in progress, so shutdown can end as soon as the last one
/// finishes. Waiting for connections to close instead would wait out the
/// whole grace period: Argo never closes its client connections.
#[derive(Clone, Default)]
struct InFlight(Arc<(std::sync::atomic::AtomicUsize, tokio::sync::Notify)>);

/// Held for the duration of one call (for OpenStream, until the stream ends).
struct CallGuard(InFlight);

impl InFlight {
    fn enter(&self) -> CallGuard {
        self.0.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        CallGuard(self.clone())
    }

    /// Resolves once no call has been in progress for [`SETTLE`]: a request
    /// already sent when the signal came may still be on its way to a handler.
    async fn idle(&self) {
        loop {
            let notified = self.0.1.notified();
            if self.0.0.load(std::sync::atomic::Ordering::SeqCst) == 0 {
                tokio::time::sleep(SETTLE).await;
                if self.0.0.load(std::sync::atomic::Ordering::SeqCst) == 0 {
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
        if self.0.0.0.fetch_sub(1, std::sync::atomic::Ordering::SeqCst) == 1 {
            self.0.0.1.notify_waiters();
        }
    }
}

/// The gRPC service around a [`Driver`]: translates the proto messages, maps
/// errors to the wire, frames streams and caches connected targets.
pub struct DriverService<D: Driver> {
    driver: Arc<D>,
    targets: TargetCache<D::Target>,
    in_flight: InFlight,
    streams: Arc<tokio::sync::Semaphore>,
    max_streams: usize,
    stream_idle: Duration,
}

/// `FERRY_MAX_STREAMS`: OpenStreams served at once.
pub const MAX_STREAMS_ENV: &str = "FERRY_MAX_STREAMS";

/// Default of [`MAX_STREAMS_ENV`]. Each open stream holds a few frames (about
/// 1 MiB at most), so 64 stay well inside the 256 MiB a driver container gets.
pub const DEFAULT_MAX_STREAMS: usize = 64;

/// How long an OpenStream waits for a free slot before RESOURCE_EXHAUSTED.
const STREAM_QUEUE_WAIT: Duration = Duration::from_secs(5);

/// The limit of open streams from [`MAX_STREAMS_ENV`], else [`DEFAULT_MAX_STREAMS`].
pub fn max_streams() -> Result<usize> {
    Ok(crate::config::env_positive(MAX_STREAMS_ENV)?.map_or(DEFAULT_MAX_STREAMS, |n| n as usize))
}

impl<D: Driver> DriverService<D> {
    /// Wraps `driver`, serving at most [`DEFAULT_MAX_STREAMS`] OpenStreams at once.
    pub fn new(driver: D) -> Self {
        DriverService {
            driver: Arc::new(driver),
            targets: Mutex::new(HashMap::new()),
            in_flight: InFlight::default(),
            streams: Arc::new(tokio::sync::Semaphore::new(DEFAULT_MAX_STREAMS)),
            max_streams: DEFAULT_MAX_STREAMS,
            stream_idle: DEFAULT_STREAM_IDLE_TIMEOUT,
        }
    }

    /// Serves at most `n` OpenStreams at once: a client that opens streams and
    /// never reads them holds their buffers, and without a bound a thousand of
    /// them exhaust the driver's memory. Further ones wait a few seconds for
    /// a slot, then get RESOURCE_EXHAUSTED; other calls are not affected.
    #[must_use]
    pub fn with_max_streams(mut self, n: usize) -> Self {
        self.streams = Arc::new(tokio::sync::Semaphore::new(n.max(1)));
        self.max_streams = n.max(1);
        self
    }

    /// Fails an OpenStream whose client has taken no data for `idle`, freeing
    /// its slot (see [`DriverService::with_max_streams`]).
    #[must_use]
    pub fn with_stream_idle_timeout(mut self, idle: Duration) -> Self {
        self.stream_idle = idle;
        self
    }

    async fn connected(&self, raw: &str) -> Result<Arc<D::Target>> {
        if let Some((target, at)) = self.targets.lock().expect("target cache poisoned").get(raw)
            && at.elapsed() < TARGET_TTL
        {
            return Ok(target.clone());
        }
        let target = Arc::new(self.driver.connect(raw).await?);
        let mut cache = self.targets.lock().expect("target cache poisoned");
        if cache.len() >= TARGET_CACHE_ENTRIES {
            cache.retain(|_, (_, at)| at.elapsed() < TARGET_TTL);
            if cache.len() >= TARGET_CACHE_ENTRIES {
                cache.clear();
            }
        }
        cache.insert(raw.to_string(), (target.clone(), Instant::now()));
        Ok(target)
    }

    /// The connected target and the key of a request's artifact.
    async fn locate(&self, artifact: Option<&pb::Artifact>) -> Result<(Arc<D::Target>, ArtifactKey)> {
        let artifact = artifact.ok_or_else(|| Error::invalid_argument("request carries no artifact"))?;
        let plugin = artifact
            .plugin
            .as_ref()
            .ok_or_else(|| Error::invalid_argument(format!("artifact {:?} has no plugin block", artifact.name)))?;
        let key = ArtifactKey::parse(&plugin.key)?;
        if key.is_root() && !self.driver.capabilities().root_key {
            // Argo never sends one; a template parameter that rendered empty
            // does, and on an object store it would load the whole bucket.
            return Err(Error::invalid_argument(format!(
                "artifact {:?} has an empty key; a key naming an object or directory is required",
                artifact.name
            )));
        }
        let target = self
            .connected(&plugin.configuration)
            .await
            .map_err(|e| e.context(format!("artifact {:?} (plugin {:?})", artifact.name, plugin.name)))?;
        Ok((target, key))
    }

    fn refuse_if_read_only(&self, operation: &str) -> Result<()> {
        if self.driver.capabilities().read_only {
            Err(Error::unsupported(format!("{operation} refused: this driver is read-only")))
        } else {
            Ok(())
        }
    }
}

fn key_of(artifact: Option<&pb::Artifact>) -> String {
    artifact.and_then(|a| a.plugin.as_ref()).map(|p| p.key.clone()).unwrap_or_default()
}

/// Load, Save and Delete answer in-band (`success=false`, as Argo expects),
/// except a missing key, which is a `NOT_FOUND` status so clients can tell it
/// apart. The kind rides along in response metadata for Ferry's own client.
fn in_band<T>(
    op: &'static str,
    key: &str,
    started: Instant,
    result: Result<()>,
    build: impl FnOnce(bool, String) -> T,
) -> std::result::Result<Response<T>, Status> {
    let ms = started.elapsed().as_millis() as u64;
    match result {
        Ok(()) => {
            tracing::info!(op, key, ms, "ok");
            Ok(Response::new(build(true, String::new())))
        }
        Err(err) if err.kind() == ErrorKind::NotFound => {
            tracing::info!(op, key, ms, error = %err, "not found");
            Err(err.into())
        }
        Err(err) => {
            tracing::warn!(op, key, ms, kind = %err.kind(), error = %err, "failed");
            Ok(with_kind(Response::new(build(false, err.to_string())), err.kind()))
        }
    }
}

/// Tags an in-band error response with its kind for Ferry's client.
fn with_kind<T>(mut response: Response<T>, kind: ErrorKind) -> Response<T> {
    if let Ok(v) = kind.as_str().parse() {
        response.metadata_mut().insert(KIND_HEADER, v);
    }
    response
}

type FrameStream = Pin<Box<dyn Stream<Item = std::result::Result<pb::OpenStreamResponse, Status>> + Send>>;

#[tonic::async_trait]
impl<D: Driver> ArtifactService for DriverService<D> {
    async fn load(
        &self,
        request: Request<pb::LoadArtifactRequest>,
    ) -> std::result::Result<Response<pb::LoadArtifactResponse>, Status> {
        let _call = self.in_flight.enter();
        let started = Instant::now();
        let req = request.into_inner();
        let key = key_of(req.input_artifact.as_ref());
        let result = async {
            if req.path.is_empty() {
                return Err(Error::invalid_argument("load request has an empty path"));
            }
            let (target, key) = self.locate(req.input_artifact.as_ref()).await?;
            self.driver.load(&target, &key, Path::new(&req.path)).await
        }
        .await;
        in_band("load", &key, started, result, |success, error| pb::LoadArtifactResponse { success, error })
    }

    type OpenStreamStream = FrameStream;

    async fn open_stream(
        &self,
        request: Request<pb::OpenStreamRequest>,
    ) -> std::result::Result<Response<Self::OpenStreamStream>, Status> {
        let call = self.in_flight.enter();
        let req = request.into_inner();
        let key = key_of(req.artifact.as_ref());
        let permit = match tokio::time::timeout(STREAM_QUEUE_WAIT, self.streams.clone().acquire_owned()).await {
            Ok(Ok(permit)) => permit,
            _ => {
                tracing::info!(op = "open_stream", key, limit = self.max_streams, "too many open streams; refused");
                let mut status = Status::resource_exhausted(format!(
                    "{} streams are open already ({MAX_STREAMS_ENV}); try again later",
                    self.max_streams
                ));
                if let Ok(v) = ErrorKind::Transient.as_str().parse() {
                    status.metadata_mut().insert(KIND_HEADER, v);
                }
                return Err(status);
            }
        };
        let opened = async {
            let (target, key) = self.locate(req.artifact.as_ref()).await?;
            self.driver.open_stream(&target, &key).await
        }
        .await;
        match opened {
            Ok(data) => {
                tracing::info!(op = "open_stream", key, "streaming");
                Ok(Response::new(frames(data, key, (call, permit), self.stream_idle)))
            }
            Err(err) => {
                tracing::info!(op = "open_stream", key, kind = %err.kind(), error = %err, "failed");
                Err(err.into())
            }
        }
    }

    async fn save(
        &self,
        request: Request<pb::SaveArtifactRequest>,
    ) -> std::result::Result<Response<pb::SaveArtifactResponse>, Status> {
        let _call = self.in_flight.enter();
        let started = Instant::now();
        let req = request.into_inner();
        let key = key_of(req.output_artifact.as_ref());
        let result = async {
            self.refuse_if_read_only("save")?;
            if req.path.is_empty() {
                return Err(Error::invalid_argument("save request has an empty path"));
            }
            let (target, key) = self.locate(req.output_artifact.as_ref()).await?;
            self.driver.save(&target, &key, Path::new(&req.path)).await
        }
        .await;
        in_band("save", &key, started, result, |success, error| pb::SaveArtifactResponse { success, error })
    }

    async fn delete(
        &self,
        request: Request<pb::DeleteArtifactRequest>,
    ) -> std::result::Result<Response<pb::DeleteArtifactResponse>, Status> {
        let _call = self.in_flight.enter();
        let started = Instant::now();
        let req = request.into_inner();
        let key = key_of(req.artifact.as_ref());
        // `ArtifactKey` drops the trailing `/`, so what to delete is read from the wire key.
        let what = crate::driver::DeleteTarget::of_raw_key(&key);
        let result = async {
            self.refuse_if_read_only("delete")?;
            let (target, key) = self.locate(req.artifact.as_ref()).await?;
            self.driver.delete(&target, &key, what).await
        }
        .await;
        in_band("delete", &key, started, result, |success, error| pb::DeleteArtifactResponse { success, error })
    }

    async fn list_objects(
        &self,
        request: Request<pb::ListObjectsRequest>,
    ) -> std::result::Result<Response<pb::ListObjectsResponse>, Status> {
        let _call = self.in_flight.enter();
        let req = request.into_inner();
        let result = async {
            let (target, key) = self.locate(req.artifact.as_ref()).await?;
            let objects = self.driver.list(&target, &key).await?;
            if objects.is_empty() && !key.is_root() && !self.driver.exists(&target, &key).await? {
                return Err(Error::not_found(format!("no object or directory at key {key:?}")));
            }
            Ok(objects.into_iter().map(|k| k.as_str().to_string()).collect())
        }
        .await;
        match result {
            Ok(objects) => Ok(Response::new(pb::ListObjectsResponse { objects, error: String::new() })),
            Err(err) if err.kind() == ErrorKind::NotFound => Err(err.into()),
            Err(err) => {
                tracing::warn!(op = "list_objects", kind = %err.kind(), error = %err, "failed");
                let response = pb::ListObjectsResponse { objects: vec![], error: err.to_string() };
                Ok(with_kind(Response::new(response), err.kind()))
            }
        }
    }

    async fn is_directory(
        &self,
        request: Request<pb::IsDirectoryRequest>,
    ) -> std::result::Result<Response<pb::IsDirectoryResponse>, Status> {
        let _call = self.in_flight.enter();
        let req = request.into_inner();
        let result = async {
            let (target, key) = self.locate(req.artifact.as_ref()).await?;
            self.driver.is_directory(&target, &key).await
        }
        .await;
        // argo-server turns any IsDirectory error into HTTP 500 for every file
        // view, so a missing key is simply "not a directory".
        match result {
            Ok(is_directory) => Ok(Response::new(pb::IsDirectoryResponse { is_directory, error: String::new() })),
            Err(err) if err.kind() == ErrorKind::NotFound => Ok(Response::new(pb::IsDirectoryResponse::default())),
            Err(err) => {
                tracing::warn!(op = "is_directory", kind = %err.kind(), error = %err, "failed");
                let response = pb::IsDirectoryResponse { is_directory: false, error: err.to_string() };
                Ok(with_kind(Response::new(response), err.kind()))
            }
        }
    }

    async fn save_stream(
        &self,
        request: Request<Streaming<pb::SaveStreamArtifactRequest>>,
    ) -> std::result::Result<Response<pb::SaveArtifactResponse>, Status> {
        let call = self.in_flight.enter();
        if !self.driver.capabilities().save_stream {
            return Err(Status::unimplemented("this driver does not accept SaveStream; use Save"));
        }
        let started = Instant::now();
        let body_end = request.extensions().get::<crate::body_end::BodyEnd>().cloned();
        let mut inbound = request.into_inner();
        let first = inbound
            .message()
            .await?
            .ok_or_else(|| Status::invalid_argument("SaveStream closed before its first message"))?;
        let key = key_of(first.output_artifact.as_ref());
        let result = async {
            self.refuse_if_read_only("save")?;
            let (target, key) = self.locate(first.output_artifact.as_ref()).await?;
            let rest = inbound.map(|message| match message {
                Ok(m) if m.output_artifact.is_some() => {
                    Err(Error::invalid_argument("SaveStream: output_artifact may only be sent in the first message"))
                }
                Ok(m) => Ok(m.chunk),
                Err(status) => Err(Error::from(status).context("SaveStream client stream failed")),
            });
            let data: ByteStream = futures::stream::once(std::future::ready(Ok(first.chunk)))
                .chain(rest)
                .chain(CancelledAtEnd { end: body_end, checked: false })
                .filter(|chunk| std::future::ready(!matches!(chunk, Ok(c) if c.is_empty())))
                .boxed();
            // On a cancel (RST_STREAM) tonic drops this handler at once, and
            // with it any upload future it awaits: no abort would run and
            // the multipart upload would stay behind. In its own task the
            // save lives on, sees the request stream fail, and cleans up as
            // on any other error; the in-flight guard keeps shutdown waiting
            // for that.
            let driver = self.driver.clone();
            let task = tokio::spawn(async move {
                let _call = call;
                driver.save_stream(&target, &key, data).await
            });
            task.await.map_err(|e| Error::other(format!("SaveStream task failed: {e}")))?
        }
        .await;
        in_band("save_stream", &key, started, result, |success, error| pb::SaveArtifactResponse { success, error })
    }

    async fn get_capabilities(
        &self,
        _request: Request<pb::GetCapabilitiesRequest>,
    ) -> std::result::Result<Response<pb::GetCapabilitiesResponse>, Status> {
        let caps = self.driver.capabilities();
        Ok(Response::new(pb::GetCapabilitiesResponse { supports_save_stream: caps.save_stream && !caps.read_only }))
    }
}

/// Below this size, chunks are gathered into one frame (HTTP streams yield
/// many small pieces); larger chunks travel as they are, without a copy.
const COALESCE_BELOW: usize = 256 << 10;

/// Ends a SaveStream's data with an error when the client cancelled instead
/// of finishing (see [`crate::body_end`]), so the driver aborts the upload.
struct CancelledAtEnd {
    end: Option<crate::body_end::BodyEnd>,
    checked: bool,
}

impl Stream for CancelledAtEnd {
    type Item = Result<Bytes>;

    fn poll_next(mut self: Pin<&mut Self>, _: &mut std::task::Context<'_>) -> std::task::Poll<Option<Self::Item>> {
        if self.checked {
            return std::task::Poll::Ready(None);
        }
        self.checked = true;
        std::task::Poll::Ready(match &self.end {
            Some(end) if end.reached() => None,
            Some(_) => Some(Err(Error::new(
                ErrorKind::Transient,
                "SaveStream cancelled by the client before its end; nothing saved",
            ))),
            // Fail safe: without the watcher a cancel looks like a clean end.
            None => Some(Err(Error::other(
                "this server lacks the ferry_sdk::body_end::watch layer, so SaveStream cannot tell a \
                 cancelled upload from a complete one; refusing to save",
            ))),
        })
    }
}

/// `FERRY_STREAM_IDLE_TIMEOUT`: seconds an OpenStream may wait for its
/// client to take the next frame before it fails.
pub const STREAM_IDLE_TIMEOUT_ENV: &str = "FERRY_STREAM_IDLE_TIMEOUT";

/// Default of [`STREAM_IDLE_TIMEOUT_ENV`]: the HTTP clients' idle read
/// timeout, so a reader stalled this long is gone for any practical purpose.
pub const DEFAULT_STREAM_IDLE_TIMEOUT: Duration = Duration::from_secs(300);

/// Frames a byte stream for OpenStream: small pieces are gathered, no frame
/// carries more than [`MAX_FRAME_BYTES`], a failure becomes an error status
/// (never a clean end), and the stream ends with one `is_end` frame without
/// data, since Argo drops data sent in that frame. At most a few frames are
/// in flight, so memory stays bounded however slow the client reads. A client
/// that takes no frame for `idle` gets an error status in place of the rest
/// (trailers are not held back by flow control, so it arrives even then) and
/// its stream slot is freed; the stream never just stops.
fn frames(
    data: ByteStream,
    key: String,
    call: (CallGuard, tokio::sync::OwnedSemaphorePermit),
    idle: Duration,
) -> FrameStream {
    type Item = std::result::Result<pb::OpenStreamResponse, Status>;
    let (tx, rx) = tokio::sync::mpsc::channel::<Item>(2);
    let (fail_tx, fail_rx) = tokio::sync::oneshot::channel::<Status>();
    tokio::spawn(async move {
        let _call = call;
        let stalled = std::sync::atomic::AtomicBool::new(false);
        // False when the stream must stop: the client went away, or stalled.
        let send = |item: Item| {
            let (tx, stalled) = (tx.clone(), &stalled);
            async move {
                match tokio::time::timeout(idle, tx.send(item)).await {
                    Ok(sent) => sent.is_ok(),
                    Err(_) => {
                        stalled.store(true, std::sync::atomic::Ordering::Relaxed);
                        false
                    }
                }
            }
        };
        let frame = |data: Bytes| Ok(pb::OpenStreamResponse { data, ..Default::default() });
        let pump = async {
            let mut data = data;
            let mut small = BytesMut::new();
            loop {
                let next = if small.is_empty() {
                    data.next().await
                } else {
                    // Flush gathered bytes as soon as nothing more is ready.
                    match futures::FutureExt::now_or_never(data.next()) {
                        Some(item) => item,
                        None => {
                            if !send(frame(small.split().freeze())).await {
                                return;
                            }
                            continue;
                        }
                    }
                };
                match next {
                    Some(Ok(chunk)) if chunk.len() < COALESCE_BELOW && small.len() + chunk.len() <= MAX_FRAME_BYTES => {
                        small.extend_from_slice(&chunk);
                    }
                    Some(Ok(mut chunk)) => {
                        if !small.is_empty() && !send(frame(small.split().freeze())).await {
                            return;
                        }
                        while !chunk.is_empty() {
                            let piece = chunk.split_to(chunk.len().min(MAX_FRAME_BYTES));
                            if !send(frame(piece)).await {
                                // The client went away; dropping `data` cancels the read.
                                return;
                            }
                        }
                    }
                    Some(Err(err)) => {
                        tracing::warn!(op = "open_stream", key, error = %err, "failed mid-stream");
                        send(Err(Status::from(err))).await;
                        return;
                    }
                    None => break,
                }
            }
            if !small.is_empty() && !send(frame(small.split().freeze())).await {
                return;
            }
            send(Ok(pb::OpenStreamResponse { data: Bytes::new(), is_end: true, error: String::new() })).await;
        };
        pump.await;
        if stalled.load(std::sync::atomic::Ordering::Relaxed) {
            tracing::warn!(
                op = "open_stream",
                key,
                idle_seconds = idle.as_secs(),
                "client took no data; stream failed"
            );
            let _ = fail_tx.send(Status::deadline_exceeded(format!(
                "the client took no data for {} s ({STREAM_IDLE_TIMEOUT_ENV}); the stream is incomplete",
                idle.as_secs()
            )));
        }
    });
    // The failure goes first: the frames queued behind a stalled client are
    // never delivered, and the status ends the call as an error.
    let failed = futures::stream::once(fail_rx).filter_map(|r| std::future::ready(r.ok().map(Err)));
    let frames = tokio_stream::wrappers::ReceiverStream::new(rx);
    futures::stream::select_with_strategy(failed, frames, |_: &mut ()| futures::stream::PollNext::Left).boxed()
}

/// The socket path Argo passes as the last argument; a `unix://` prefix is
/// accepted and stripped.
pub fn socket_path_from_args(args: impl IntoIterator<Item = String>) -> Result<PathBuf> {
    let raw = args.into_iter().skip(1).last().ok_or_else(|| {
        Error::invalid_argument("usage: <driver> SOCKET_PATH (for example /tmp/artifact-plugins/NAME/socket)")
    })?;
    let path = raw.strip_prefix("unix://").unwrap_or(&raw);
    if path.is_empty() {
        return Err(Error::invalid_argument("the socket path is empty"));
    }
    Ok(PathBuf::from(path))
}

/// Binds `socket`: creates its directory (Argo may start the driver before it
/// exists) and replaces a stale socket, but never a file that is not a socket.
pub fn bind(socket: &Path) -> Result<tokio::net::UnixListener> {
    use std::os::unix::fs::FileTypeExt;
    if let Some(dir) = socket.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| Error::from(e).context(format!("creating {}", dir.display())))?;
    }
    match std::fs::symlink_metadata(socket) {
        Ok(meta) if meta.file_type().is_socket() => std::fs::remove_file(socket)
            .map_err(|e| Error::from(e).context(format!("removing stale socket {}", socket.display())))?,
        Ok(_) => {
            return Err(Error::invalid_argument(format!(
                "{} exists and is not a socket; refusing to replace it",
                socket.display()
            )));
        }
        Err(_) => {}
    }
    tokio::net::UnixListener::bind(socket).map_err(|e| Error::from(e).context(format!("binding {}", socket.display())))
}

/// Serves `driver` on `socket` until `shutdown` resolves, then lets in-flight
/// calls finish for at most `grace` and removes the socket.
pub async fn serve<D: Driver>(
    socket: &Path,
    driver: D,
    shutdown: impl Future<Output = ()> + Send + 'static,
    grace: Duration,
) -> Result<()> {
    let listener = bind(socket)?;
    let (health, health_service) = tonic_health::server::health_reporter();
    // By name, not by type: a generic await here makes `serve` non-Send for
    // drivers built from closures (a rustc higher-ranked lifetime limitation).
    health.set_service_status(ferry_proto::SERVICE_NAME, tonic_health::ServingStatus::Serving).await;
    let reflection = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(ferry_proto::FILE_DESCRIPTOR_SET)
        .build_v1()
        .map_err(|e| Error::other(format!("building reflection service: {e}")))?;

    let service = DriverService::new(driver)
        .with_max_streams(max_streams()?)
        .with_stream_idle_timeout(crate::config::env_seconds(STREAM_IDLE_TIMEOUT_ENV, DEFAULT_STREAM_IDLE_TIMEOUT)?);
    let in_flight = service.in_flight.clone();
    let (stopping_tx, mut stopping_rx) = tokio::sync::watch::channel(false);
    let signal = async move {
        shutdown.await;
        tracing::info!("shutting down: no new calls, waiting for in-flight ones");
        let _ = stopping_tx.send(true);
    };
    let server = tonic::transport::Server::builder()
        .layer(tower::util::MapRequestLayer::new(crate::body_end::watch))
        .layer(tower::util::MapResponseLayer::new(crate::decode_status::decode_failure_as_invalid_argument))
        .add_service(health_service)
        .add_service(reflection)
        .add_service(ArtifactServiceServer::new(service))
        .serve_with_incoming_shutdown(tokio_stream::wrappers::UnixListenerStream::new(listener), signal);
    tracing::info!(socket = %socket.display(), "serving artifact.ArtifactService");
    let drained = async move {
        let _ = stopping_rx.wait_for(|stopping| *stopping).await;
        tokio::select! {
            () = in_flight.idle() => tracing::info!("all calls finished"),
            () = tokio::time::sleep(grace) => {
                tracing::warn!(grace_seconds = grace.as_secs(), "grace period over with calls still in flight; exiting");
            }
        }
    };
    let result = tokio::select! {
        r = server => r.map_err(|e| Error::other(format!("gRPC server failed: {e}"))),
        () = drained => Ok(()),
    };
    let _ = std::fs::remove_file(socket);
    result
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

/// `FERRY_MAX_BLOCKING_THREADS`: threads for blocking work (file I/O).
pub const MAX_BLOCKING_THREADS_ENV: &str = "FERRY_MAX_BLOCKING_THREADS";

/// Default of [`MAX_BLOCKING_THREADS_ENV`].
pub const DEFAULT_MAX_BLOCKING_THREADS: usize = 64;

fn max_blocking_threads() -> Result<usize> {
    Ok(crate::config::env_positive(MAX_BLOCKING_THREADS_ENV)?.map_or(DEFAULT_MAX_BLOCKING_THREADS, |n| n as usize))
}

/// The grace period from [`SHUTDOWN_GRACE_ENV`], else [`DEFAULT_SHUTDOWN_GRACE`].
pub fn shutdown_grace() -> Result<Duration> {
    match std::env::var(SHUTDOWN_GRACE_ENV) {
        Ok(v) => {
            v.trim().parse::<u64>().map(Duration::from_secs).map_err(|_| {
                Error::invalid_config(format!("{SHUTDOWN_GRACE_ENV}={v:?} is not a whole number of seconds"))
            })
        }
        Err(_) => Ok(DEFAULT_SHUTDOWN_GRACE),
    }
}

/// Sets up logging on stderr: `FERRY_LOG` (or `RUST_LOG`) filters, default
/// `info`; `FERRY_LOG_FORMAT=json` switches to one JSON object per line.
pub fn init_tracing() {
    use tracing_subscriber::EnvFilter;
    let filter = std::env::var("FERRY_LOG")
        .ok()
        .and_then(|f| EnvFilter::try_new(f).ok())
        .or_else(|| EnvFilter::try_from_default_env().ok())
        .unwrap_or_else(|| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    let _ = if std::env::var("FERRY_LOG_FORMAT").is_ok_and(|f| f.eq_ignore_ascii_case("json")) {
        builder.json().try_init()
    } else {
        builder.try_init()
    };
}

/// Set by a parent that starts the driver as its child process (Ferry's
/// executor): the driver shuts down when that parent dies, even by SIGKILL,
/// instead of living on as an orphan. In a container (Argo) it is unset.
pub const EXIT_WITH_PARENT_ENV: &str = "FERRY_EXIT_WITH_PARENT";

/// Resolves when the process that started us is gone (we were re-parented),
/// if [`EXIT_WITH_PARENT_ENV`] is `1`; never otherwise.
async fn parent_gone() {
    if std::env::var(EXIT_WITH_PARENT_ENV).as_deref() != Ok("1") {
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
    init_tracing();
    let outcome = (|| {
        let socket = socket_path_from_args(std::env::args())?;
        let grace = shutdown_grace()?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            // Blocking work (file reads and copies) queues beyond this
            // instead of growing to tokio's 512 threads under a flood.
            .max_blocking_threads(max_blocking_threads()?)
            .enable_all()
            .build()
            .map_err(|e| Error::other(format!("starting the async runtime: {e}")))?;
        runtime.block_on(async {
            let signal = shutdown_signal()?;
            let orphaned = parent_gone();
            let shutdown = async move {
                tokio::select! {
                    () = signal => {}
                    () = orphaned => tracing::info!("parent process gone: shutting down"),
                }
            };
            serve(&socket, driver, shutdown, grace).await
        })
    })();
    match outcome {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(err) => {
            tracing::error!(kind = %err.kind(), error = %err, "driver failed");
            eprintln!("error: {err}");
            std::process::ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn socket_path_is_the_last_argument() {
        let args = |a: &[&str]| a.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(socket_path_from_args(args(&["drv", "/tmp/x/socket"])).unwrap(), PathBuf::from("/tmp/x/socket"));
        assert_eq!(socket_path_from_args(args(&["drv", "unix:///tmp/s"])).unwrap(), PathBuf::from("/tmp/s"));
        assert!(socket_path_from_args(args(&["drv"])).is_err());
    }

    #[test]
    fn bind_refuses_to_replace_a_regular_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("socket");
        std::fs::write(&path, "precious").unwrap();
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let err = rt.block_on(async { bind(&path).map(drop) }).unwrap_err();
        assert!(err.to_string().contains("not a socket"), "{err}");
        assert_eq!(std::fs::read(&path).unwrap(), b"precious");
    }
}
