//! Prometheus metrics of a driver process, served over HTTP at
//! `http://$FERRY_METRICS_ADDR/metrics` when that variable is set (off by
//! default: a sidecar beside every step should open no port it was not asked
//! to). The names follow Prometheus' conventions, in the OpenMetrics text
//! format of the `prometheus-client` crate; `docs/configuration.md` lists
//! every metric.
//!
//! Recording is a no-op until [`serve_from_env`] has enabled it, so a driver
//! without the variable pays for none of it.

use crate::error::{Error, ErrorKind, Result};
use crate::stream::ByteStream;
use bytes::Bytes;
use futures::Stream;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use std::net::SocketAddr;
use std::path::Path;
use std::pin::Pin;
use std::sync::OnceLock;
use std::task::{Context, Poll};
use std::time::Instant;

/// `FERRY_METRICS_ADDR`: `host:port` of the metrics endpoint (for example
/// `0.0.0.0:9090`); unset, no endpoint and no recording.
pub const METRICS_ADDR_ENV: &str = "FERRY_METRICS_ADDR";

/// Which way bytes moved, seen from the storage.
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq)]
pub enum Direction {
    /// Into the storage (Save, SaveStream).
    Upload,
    /// Out of the storage (Load, OpenStream, ReadRange).
    Download,
}

impl Direction {
    fn as_str(self) -> &'static str {
        match self {
            Direction::Upload => "upload",
            Direction::Download => "download",
        }
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RpcLabels {
    rpc: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabels {
    rpc: &'static str,
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ErrorLabels {
    rpc: &'static str,
    kind: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct MovedLabels {
    rpc: &'static str,
    direction: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OperationLabels {
    operation: &'static str,
}

struct Metrics {
    registry: Registry,
    requests: Family<OutcomeLabels, Counter>,
    errors: Family<ErrorLabels, Counter>,
    duration: Family<RpcLabels, Histogram, fn() -> Histogram>,
    in_flight: Family<RpcLabels, Gauge>,
    bytes: Family<MovedLabels, Counter>,
    objects: Family<MovedLabels, Counter>,
    retries: Family<OperationLabels, Counter>,
    resumed_parts: Counter,
    resumed_bytes: Counter,
}

fn duration_histogram() -> Histogram {
    // 1 ms to about 9 hours: an IsDirectory and a 5 TiB upload on one scale.
    Histogram::new(exponential_buckets(0.001, 2.5, 18))
}

impl Metrics {
    fn new() -> Metrics {
        let mut registry = Registry::with_prefix("ferry_driver");
        let requests = Family::<OutcomeLabels, Counter>::default();
        let errors = Family::<ErrorLabels, Counter>::default();
        let duration = Family::<RpcLabels, Histogram>::new_with_constructor(duration_histogram as fn() -> Histogram);
        let in_flight = Family::<RpcLabels, Gauge>::default();
        let bytes = Family::<MovedLabels, Counter>::default();
        let objects = Family::<MovedLabels, Counter>::default();
        let retries = Family::<OperationLabels, Counter>::default();
        let (resumed_parts, resumed_bytes) = (Counter::default(), Counter::default());
        registry.register(
            "requests",
            "Calls answered, by RPC and outcome (ok, error, not_found, cancelled)",
            requests.clone(),
        );
        registry.register("errors", "Failed calls by RPC and error kind", errors.clone());
        registry.register(
            "request_duration_seconds",
            "Time from a call's start to its answer (for streams: to the last byte)",
            duration.clone(),
        );
        registry.register("requests_in_flight", "Calls in progress, by RPC", in_flight.clone());
        registry.register(
            "bytes",
            "Bytes moved between the storage and the client, by RPC and direction",
            bytes.clone(),
        );
        registry.register("objects", "Files or objects moved, by RPC and direction", objects.clone());
        registry.register(
            "retries",
            "Requests to the storage sent again after a transient failure, by operation",
            retries.clone(),
        );
        registry.register(
            "resumed_parts",
            "Parts of an interrupted upload kept, not sent again",
            resumed_parts.clone(),
        );
        registry.register(
            "resumed_bytes",
            "Bytes of an interrupted upload kept, not sent again",
            resumed_bytes.clone(),
        );
        Metrics {
            registry,
            requests,
            errors,
            duration,
            in_flight,
            bytes,
            objects,
            retries,
            resumed_parts,
            resumed_bytes,
        }
    }
}

static METRICS: OnceLock<Metrics> = OnceLock::new();

fn enabled() -> Option<&'static Metrics> {
    METRICS.get()
}

/// The metrics in the OpenMetrics text format, or `None` while disabled.
pub fn encode() -> Option<String> {
    let m = enabled()?;
    let mut out = String::new();
    prometheus_client::encoding::text::encode(&mut out, &m.registry).ok()?;
    Some(out)
}

/// Starts the endpoint when [`METRICS_ADDR_ENV`] is set and enables
/// recording; the address it listens on, or `None` when the variable is unset.
pub async fn serve_from_env() -> Result<Option<SocketAddr>> {
    let Some(addr) = addr_from_env()? else {
        return Ok(None);
    };
    METRICS.get_or_init(Metrics::new);
    serve(addr, || encode().unwrap_or_default()).await.map(Some)
}

/// The address [`METRICS_ADDR_ENV`] names, or `None` when it is unset.
pub fn addr_from_env() -> Result<Option<SocketAddr>> {
    let Some(raw) = crate::env::text(METRICS_ADDR_ENV)? else {
        return Ok(None);
    };
    raw.parse().map(Some).map_err(|e| Error::invalid_config(format!("{METRICS_ADDR_ENV}={raw:?}: not host:port ({e})")))
}

/// Serves what `render` returns (OpenMetrics text) at `/metrics` on `addr`,
/// in the background, and returns the address bound. Drivers serve their
/// own registry through it, and `ferry` the metrics of its runs.
pub async fn serve(addr: SocketAddr, render: fn() -> String) -> Result<SocketAddr> {
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| Error::other(format!("{METRICS_ADDR_ENV}: listening on {addr}: {e}")))?;
    let bound = listener.local_addr().map_err(|e| Error::other(format!("{METRICS_ADDR_ENV}: {e}")))?;
    let scrape = move || async move {
        ([(http::header::CONTENT_TYPE, "application/openmetrics-text; version=1.0.0; charset=utf-8")], render())
    };
    let app = axum::Router::new().route("/metrics", axum::routing::get(scrape));
    tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            tracing::warn!(error = %e, "metrics endpoint stopped");
        }
    });
    tracing::info!(addr = %bound, "serving metrics at /metrics");
    Ok(bound)
}

/// One call, measured from its start: in flight until dropped, then counted
/// with its outcome. A no-op while metrics are disabled.
pub(crate) struct Call {
    rpc: &'static str,
    started: Instant,
    finished: bool,
}

impl Call {
    pub(crate) fn start(rpc: &'static str) -> Call {
        if let Some(m) = enabled() {
            m.in_flight.get_or_create(&RpcLabels { rpc }).inc();
        }
        Call { rpc, started: Instant::now(), finished: false }
    }

    /// Bytes and objects moved by this call.
    pub(crate) fn moved(&self, direction: Direction, bytes: u64, objects: u64) {
        if let Some(m) = enabled() {
            let labels = MovedLabels { rpc: self.rpc, direction: direction.as_str() };
            m.bytes.get_or_create(&labels).inc_by(bytes);
            m.objects.get_or_create(&labels).inc_by(objects);
        }
    }

    /// Counts the call with its outcome.
    pub(crate) fn finish(mut self, error: Option<ErrorKind>) {
        self.record(match error {
            None => "ok",
            Some(ErrorKind::NotFound) => "not_found",
            Some(_) => "error",
        });
        if let (Some(m), Some(kind)) = (enabled(), error) {
            m.errors.get_or_create(&ErrorLabels { rpc: self.rpc, kind: kind.as_str() }).inc();
        }
    }

    fn record(&mut self, outcome: &'static str) {
        self.finished = true;
        if let Some(m) = enabled() {
            m.requests.get_or_create(&OutcomeLabels { rpc: self.rpc, outcome }).inc();
            m.duration.get_or_create(&RpcLabels { rpc: self.rpc }).observe(self.started.elapsed().as_secs_f64());
        }
    }
}

impl Drop for Call {
    fn drop(&mut self) {
        if !self.finished {
            // The client went away (a cancelled stream, a deadline).
            self.record("cancelled");
        }
        if let Some(m) = enabled() {
            m.in_flight.get_or_create(&RpcLabels { rpc: self.rpc }).dec();
        }
    }
}

/// Counts the bytes of `data` as they pass, and finishes `call` when the
/// stream ends or fails.
pub(crate) fn metered(data: ByteStream, call: Call, direction: Direction) -> ByteStream {
    if enabled().is_none() {
        return data;
    }
    Box::pin(Metered { inner: data, call: Some(call), direction, bytes: 0 })
}

struct Metered {
    inner: ByteStream,
    call: Option<Call>,
    direction: Direction,
    bytes: u64,
}

impl Stream for Metered {
    type Item = Result<Bytes>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let polled = self.inner.as_mut().poll_next(cx);
        match &polled {
            Poll::Ready(Some(Ok(chunk))) => self.bytes += chunk.len() as u64,
            Poll::Ready(Some(Err(e))) => {
                let kind = e.kind();
                if let Some(call) = self.call.take() {
                    call.moved(self.direction, self.bytes, 0);
                    call.finish(Some(kind));
                }
            }
            Poll::Ready(None) => {
                let (direction, bytes) = (self.direction, self.bytes);
                if let Some(call) = self.call.take() {
                    call.moved(direction, bytes, 1);
                    call.finish(None);
                }
            }
            Poll::Pending => {}
        }
        polled
    }
}

impl Drop for Metered {
    fn drop(&mut self) {
        // Cut short by the client: what was sent still moved.
        if let Some(call) = &self.call {
            call.moved(self.direction, self.bytes, 0);
        }
    }
}

/// Size and file count of a local file or tree, for Save and Load: the files
/// [`walk_tree`](crate::local::walk_tree) yields, which are what a directory
/// Save uploads. Zeros while metrics are disabled (the walk is not free for
/// 10,000 files); the walk runs on the blocking pool, off the runtime.
pub(crate) async fn local_size(path: &Path) -> (u64, u64) {
    if enabled().is_none() {
        return (0, 0);
    }
    let path = path.to_path_buf();
    let sized = tokio::task::spawn_blocking(move || crate::local::tree_size(&path).ok());
    sized.await.ok().flatten().unwrap_or((0, 0))
}

/// Counts a request to the storage sent again after a transient failure.
pub fn retried(operation: &'static str) {
    if let Some(m) = enabled() {
        m.retries.get_or_create(&OperationLabels { operation }).inc();
    }
}

/// Counts parts of an interrupted upload that a resumed upload kept.
pub fn resumed(parts: u64, bytes: u64) {
    if let Some(m) = enabled() {
        m.resumed_parts.inc_by(parts);
        m.resumed_bytes.inc_by(bytes);
    }
}
