//! The gRPC service around a [`Driver`]: the eight RPCs of
//! `artifact.ArtifactService` translated into driver calls, errors put on the
//! channel Argo reads for each, and connected targets cached. Ferry's own
//! `ferry.v1.ObjectService` on the same state is in `object`.

use super::frames::{DEFAULT_STREAM_IDLE_TIMEOUT, Frame, FrameStream, frames};
use super::shutdown::{CallGuard, InFlight};
use crate::body_end::CancelledAtEnd;
use crate::driver::Driver;
use crate::error::{Error, ErrorKind, KIND_HEADER, Result};
use crate::key::ArtifactKey;
use crate::metrics::{Call, Direction};
use crate::stream::ByteStream;
use ferry_proto as pb;
use ferry_proto::artifact_service_server::ArtifactService;
use futures::StreamExt;
use std::collections::HashMap;
use std::future::Future;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tonic::{Request, Response, Status, Streaming};

/// How long a connected target is reused for one configuration string
/// before it is connected anew, so rotated secrets are picked up.
const TARGET_TTL: Duration = Duration::from_secs(300);
const TARGET_CACHE_ENTRIES: usize = 64;

/// Connected targets by configuration string, with when each entry was made.
/// The cell makes the first calls of a configuration share one `connect`:
/// thirty parallel first calls would otherwise make thirty targets (for the
/// git driver, thirty cache repositories racing each other's pushes).
type TargetCache<T> = Mutex<HashMap<String, (Arc<tokio::sync::OnceCell<Arc<T>>>, Instant)>>;

/// The gRPC service around a [`Driver`]: translates the proto messages, maps
/// errors to the wire, frames streams and caches connected targets.
///
/// It implements both `artifact.ArtifactService` (Argo's) and
/// `ferry.v1.ObjectService` (Ferry's optional extension). To host both on
/// one server, as [`serve`](crate::serve) does, share one instance so they
/// share the target cache, the stream limit and the in-flight count:
///
/// ```
/// # use std::sync::Arc;
/// # use ferry_sdk::pb::{artifact_service_server::ArtifactServiceServer, ferry_v1::object_service_server::ObjectServiceServer};
/// # let store: Arc<dyn object_store::ObjectStore> = Arc::new(object_store::memory::InMemory::new());
/// # let driver = ferry_sdk::ObjectStoreDriver::new(move |_: &str| Ok(store.clone()));
/// let service = Arc::new(ferry_sdk::DriverService::new(driver));
/// let router = tonic::transport::Server::builder()
///     .add_service(ArtifactServiceServer::from_arc(service.clone()))
///     .add_service(ObjectServiceServer::from_arc(service));
/// # let _ = router;
/// ```
pub struct DriverService<D: Driver> {
    driver: Arc<D>,
    targets: TargetCache<D::Target>,
    in_flight: InFlight,
    streams: Arc<tokio::sync::Semaphore>,
    max_streams: usize,
    stream_idle: Duration,
}

/// `FERRY_MAX_STREAMS`: streams (OpenStream and ReadRange) served at once.
pub const MAX_STREAMS_ENV: &str = "FERRY_MAX_STREAMS";

/// Default of [`MAX_STREAMS_ENV`]. Each open stream holds a few frames (about
/// 1 MiB at most), so 64 stay well inside the 256 MiB a driver container gets.
pub const DEFAULT_MAX_STREAMS: usize = 64;

/// How long an OpenStream waits for a free slot before RESOURCE_EXHAUSTED.
const STREAM_QUEUE_WAIT: Duration = Duration::from_secs(5);

/// The limit of open streams from [`MAX_STREAMS_ENV`], else [`DEFAULT_MAX_STREAMS`].
pub fn max_streams() -> Result<usize> {
    Ok(crate::env::positive(MAX_STREAMS_ENV)?.map_or(DEFAULT_MAX_STREAMS, |n| n as usize))
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

    /// The calls in progress, for shutdown to wait on.
    pub(super) fn in_flight(&self) -> InFlight {
        self.in_flight.clone()
    }

    /// Counts one call in progress until the guard drops.
    pub(super) fn enter(&self) -> CallGuard {
        self.in_flight.enter()
    }

    /// The driver served.
    pub(super) fn driver(&self) -> &D {
        &self.driver
    }

    async fn connected(&self, raw: &str) -> Result<Arc<D::Target>> {
        let slot = {
            let mut cache = self.targets.lock().expect("target cache poisoned");
            match cache.get(raw) {
                Some((slot, at)) if at.elapsed() < TARGET_TTL => slot.clone(),
                _ => {
                    if cache.len() >= TARGET_CACHE_ENTRIES {
                        cache.retain(|_, (_, at)| at.elapsed() < TARGET_TTL);
                        if cache.len() >= TARGET_CACHE_ENTRIES {
                            cache.clear();
                        }
                    }
                    let slot = Arc::new(tokio::sync::OnceCell::new());
                    cache.insert(raw.to_string(), (slot.clone(), Instant::now()));
                    slot
                }
            }
        };
        // A failed connect leaves the cell empty: the next call tries again.
        let target = slot.get_or_try_init(|| async { self.driver.connect(raw).await.map(Arc::new) }).await?;
        Ok(target.clone())
    }

    /// The connected target and the key of a request's artifact.
    pub(super) async fn locate(&self, artifact: Option<&pb::Artifact>) -> Result<(Arc<D::Target>, ArtifactKey)> {
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

    /// Answers a streaming call: waits for a stream slot, opens the driver's
    /// stream with `open` and cuts it into `F` frames. OpenStream and
    /// ReadRange differ only in `open` and the frames.
    pub(super) async fn stream<F, Fut>(
        &self,
        artifact: Option<&pb::Artifact>,
        open: impl FnOnce(Arc<D>, Arc<D::Target>, ArtifactKey) -> Fut,
    ) -> std::result::Result<Response<FrameStream<F>>, Status>
    where
        F: Frame,
        Fut: Future<Output = Result<ByteStream>>,
    {
        let call = self.in_flight.enter();
        let measured = Call::start(F::OP);
        let key = key_of(artifact);
        let permit = self.stream_slot(F::OP, &key).await?;
        let opened = async {
            let (target, key) = self.locate(artifact).await?;
            open(self.driver.clone(), target, key).await
        }
        .await;
        match opened {
            Ok(data) => {
                tracing::info!(op = F::OP, key, "streaming");
                let data = crate::metrics::metered(data, measured, Direction::Download);
                Ok(Response::new(frames(data, key, (call, permit), self.stream_idle)))
            }
            Err(err) => {
                tracing::info!(op = F::OP, key, kind = %err.kind(), error = %err, "failed");
                measured.finish(Some(err.kind()));
                Err(err.into())
            }
        }
    }

    /// One of the [`DriverService::with_max_streams`] slots, or
    /// RESOURCE_EXHAUSTED once none frees up within [`STREAM_QUEUE_WAIT`].
    async fn stream_slot(
        &self,
        op: &'static str,
        key: &str,
    ) -> std::result::Result<tokio::sync::OwnedSemaphorePermit, Status> {
        if let Ok(Ok(permit)) = tokio::time::timeout(STREAM_QUEUE_WAIT, self.streams.clone().acquire_owned()).await {
            return Ok(permit);
        }
        tracing::info!(op, key, limit = self.max_streams, "too many open streams; refused");
        let mut status = Status::resource_exhausted(format!(
            "{} streams are open already ({MAX_STREAMS_ENV}); try again later",
            self.max_streams
        ));
        if let Ok(v) = ErrorKind::Transient.as_str().parse() {
            status.metadata_mut().insert(KIND_HEADER, v);
        }
        Err(status)
    }

    fn refuse_if_read_only(&self, operation: &str) -> Result<()> {
        if self.driver.capabilities().read_only {
            Err(Error::unsupported(format!("{operation} refused: this driver is read-only")))
        } else {
            Ok(())
        }
    }
}

pub(super) fn key_of(artifact: Option<&pb::Artifact>) -> String {
    artifact.and_then(|a| a.plugin.as_ref()).map(|p| p.key.clone()).unwrap_or_default()
}

/// Load, Save and Delete answer in-band (`success=false`, as Argo expects),
/// except a missing key, which is a `NOT_FOUND` status so clients can tell it
/// apart. The kind rides along in response metadata for Ferry's own client.
fn in_band<T>(
    call: Call,
    op: &'static str,
    key: &str,
    started: Instant,
    result: Result<()>,
    build: impl FnOnce(bool, String) -> T,
) -> std::result::Result<Response<T>, Status> {
    call.finish(result.as_ref().err().map(Error::kind));
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

#[tonic::async_trait]
impl<D: Driver> ArtifactService for DriverService<D> {
    async fn load(
        &self,
        request: Request<pb::LoadArtifactRequest>,
    ) -> std::result::Result<Response<pb::LoadArtifactResponse>, Status> {
        let _call = self.in_flight.enter();
        let measured = Call::start("load");
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
        if result.is_ok() {
            let (bytes, files) = crate::metrics::local_size(Path::new(&req.path)).await;
            measured.moved(Direction::Download, bytes, files);
        }
        in_band(measured, "load", &key, started, result, |success, error| pb::LoadArtifactResponse { success, error })
    }

    type OpenStreamStream = FrameStream<pb::OpenStreamResponse>;

    async fn open_stream(
        &self,
        request: Request<pb::OpenStreamRequest>,
    ) -> std::result::Result<Response<Self::OpenStreamStream>, Status> {
        let req = request.into_inner();
        self.stream(req.artifact.as_ref(), |driver, target, key| async move { driver.open_stream(&target, &key).await })
            .await
    }

    async fn save(
        &self,
        request: Request<pb::SaveArtifactRequest>,
    ) -> std::result::Result<Response<pb::SaveArtifactResponse>, Status> {
        let _call = self.in_flight.enter();
        let measured = Call::start("save");
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
        if result.is_ok() {
            let (bytes, files) = crate::metrics::local_size(Path::new(&req.path)).await;
            measured.moved(Direction::Upload, bytes, files);
        }
        in_band(measured, "save", &key, started, result, |success, error| pb::SaveArtifactResponse { success, error })
    }

    async fn delete(
        &self,
        request: Request<pb::DeleteArtifactRequest>,
    ) -> std::result::Result<Response<pb::DeleteArtifactResponse>, Status> {
        let _call = self.in_flight.enter();
        let measured = Call::start("delete");
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
        in_band(measured, "delete", &key, started, result, |success, error| pb::DeleteArtifactResponse {
            success,
            error,
        })
    }

    async fn list_objects(
        &self,
        request: Request<pb::ListObjectsRequest>,
    ) -> std::result::Result<Response<pb::ListObjectsResponse>, Status> {
        let _call = self.in_flight.enter();
        let measured = Call::start("list_objects");
        let req = request.into_inner();
        let result = async {
            let (target, key) = self.locate(req.artifact.as_ref()).await?;
            let objects = self.driver.list(&target, &key).await?;
            // As Argo's drivers do, an empty listing of a key that names no
            // object either is NotFound. The listing is the answer, though:
            // a server that keeps objects as files fails a HEAD of a key that
            // is an emptied directory on its disk, and that is still empty.
            if objects.is_empty() && !key.is_root() {
                match self.driver.exists(&target, &key).await {
                    Ok(false) => return Err(Error::not_found(format!("no object or directory at key {key:?}"))),
                    Ok(true) => {}
                    Err(e) => {
                        tracing::debug!(key = %key, error = %e, "existence of a key with an empty listing unknown")
                    }
                }
            }
            Ok(objects.into_iter().map(|k| k.as_str().to_string()).collect())
        }
        .await;
        measured.finish(result.as_ref().err().map(Error::kind));
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
        let measured = Call::start("is_directory");
        let req = request.into_inner();
        let result = async {
            let (target, key) = self.locate(req.artifact.as_ref()).await?;
            self.driver.is_directory(&target, &key).await
        }
        .await;
        measured.finish(result.as_ref().err().map(Error::kind));
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
        let measured = Call::start("save_stream");
        let received = Arc::new(std::sync::atomic::AtomicU64::new(0));
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
                .chain(CancelledAtEnd::new(body_end))
                .filter(|chunk| std::future::ready(!matches!(chunk, Ok(c) if c.is_empty())))
                .inspect({
                    let received = received.clone();
                    move |chunk| {
                        if let Ok(c) = chunk {
                            received.fetch_add(c.len() as u64, std::sync::atomic::Ordering::Relaxed);
                        }
                    }
                })
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
        if result.is_ok() {
            measured.moved(Direction::Upload, received.load(std::sync::atomic::Ordering::Relaxed), 1);
        }
        in_band(measured, "save_stream", &key, started, result, |success, error| pb::SaveArtifactResponse {
            success,
            error,
        })
    }

    async fn get_capabilities(
        &self,
        _request: Request<pb::GetCapabilitiesRequest>,
    ) -> std::result::Result<Response<pb::GetCapabilitiesResponse>, Status> {
        let caps = self.driver.capabilities();
        Ok(Response::new(pb::GetCapabilitiesResponse { supports_save_stream: caps.save_stream && !caps.read_only }))
    }
}
