//! Prometheus metrics of a `ferry` process about the runs it drives, served
//! at `http://$FERRY_METRICS_ADDR/metrics` (the variable the drivers read)
//! by `ferry run`, `ferry resume` and `ferry server` when it is set: nodes
//! started and finished, pod durations, and every driver call the executor
//! makes (outcome, duration, bytes moved, retries, driver restarts). These
//! are the operator's view of the executor; a workflow's own
//! `metrics.prometheus` are written per run by [`crate::metrics`].
//!
//! Recording is a no-op until [`serve_from_env`] has enabled it.

use ferry_sdk::ErrorKind;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use std::net::SocketAddr;
use std::sync::OnceLock;
use std::time::Duration;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CallLabels {
    driver: String,
    rpc: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabels {
    driver: String,
    rpc: &'static str,
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RetryLabels {
    driver: String,
    reason: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct MovedLabels {
    driver: String,
    direction: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KindLabels {
    kind: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct NodeLabels {
    kind: &'static str,
    phase: &'static str,
}

struct Telemetry {
    registry: Registry,
    calls: Family<OutcomeLabels, Counter>,
    call_duration: Family<CallLabels, Histogram, fn() -> Histogram>,
    calls_in_flight: Family<CallLabels, Gauge>,
    retries: Family<RetryLabels, Counter>,
    bytes: Family<MovedLabels, Counter>,
    nodes_started: Family<KindLabels, Counter>,
    nodes_finished: Family<NodeLabels, Counter>,
    pod_duration: Histogram,
}

fn seconds_histogram() -> Histogram {
    // 1 ms to about 9 hours, the drivers' scale, so the two compare.
    Histogram::new(exponential_buckets(0.001, 2.5, 18))
}

impl Telemetry {
    fn new() -> Telemetry {
        let mut t = Telemetry {
            calls: Family::default(),
            call_duration: Family::new_with_constructor(seconds_histogram as fn() -> Histogram),
            calls_in_flight: Family::default(),
            retries: Family::default(),
            bytes: Family::default(),
            nodes_started: Family::default(),
            nodes_finished: Family::default(),
            pod_duration: seconds_histogram(),
            registry: Registry::with_prefix("ferry"),
        };
        t.registry.register(
            "driver_calls",
            "Driver calls made by the executor, by driver, RPC and outcome (ok, not_found, error)",
            t.calls.clone(),
        );
        t.registry.register(
            "driver_call_duration_seconds",
            "Time from a driver call's start to its answer, retries included",
            t.call_duration.clone(),
        );
        t.registry.register("driver_calls_in_flight", "Driver calls in progress", t.calls_in_flight.clone());
        t.registry.register(
            "driver_call_retries",
            "Driver calls made again, by reason (transient: the driver's own retries ran out; \
             driver_died: the driver was started again)",
            t.retries.clone(),
        );
        t.registry.register(
            "artifact_bytes",
            "Artifact bytes moved through drivers, by direction (upload: Save, download: Load)",
            t.bytes.clone(),
        );
        t.registry.register("nodes_started", "Nodes that began running, by kind", t.nodes_started.clone());
        t.registry.register(
            "nodes_finished",
            "Nodes that ended, by kind and phase (Succeeded, Failed, Error, Skipped, Omitted)",
            t.nodes_finished.clone(),
        );
        t.registry.register("pod_duration_seconds", "Run time of finished pod nodes", t.pod_duration.clone());
        t
    }
}

static TELEMETRY: OnceLock<Telemetry> = OnceLock::new();

fn enabled() -> Option<&'static Telemetry> {
    TELEMETRY.get()
}

/// Starts the endpoint when `FERRY_METRICS_ADDR` is set and enables
/// recording; the address it listens on, or `None` when the variable is unset.
pub async fn serve_from_env() -> ferry_sdk::Result<Option<SocketAddr>> {
    let Some(addr) = ferry_sdk::metrics::addr_from_env()? else {
        return Ok(None);
    };
    TELEMETRY.get_or_init(Telemetry::new);
    ferry_sdk::metrics::serve(addr, encode).await.map(Some)
}

fn encode() -> String {
    let mut out = String::new();
    if let Some(t) = enabled() {
        let _ = prometheus_client::encoding::text::encode(&mut out, &t.registry);
    }
    out
}

/// One driver call, in flight until it is finished or dropped.
pub(crate) struct Call {
    driver: String,
    rpc: &'static str,
    started: std::time::Instant,
    done: bool,
}

impl Call {
    pub(crate) fn start(driver: &str, rpc: &'static str) -> Call {
        if let Some(t) = enabled() {
            t.calls_in_flight.get_or_create(&CallLabels { driver: driver.to_string(), rpc }).inc();
        }
        Call { driver: driver.to_string(), rpc, started: std::time::Instant::now(), done: false }
    }

    pub(crate) fn finish(mut self, error: Option<ErrorKind>) {
        self.done = true;
        self.record(match error {
            None => "ok",
            Some(ErrorKind::NotFound) => "not_found",
            Some(_) => "error",
        });
    }

    fn record(&self, outcome: &'static str) {
        if let Some(t) = enabled() {
            let (driver, rpc) = (self.driver.clone(), self.rpc);
            t.calls.get_or_create(&OutcomeLabels { driver: driver.clone(), rpc, outcome }).inc();
            t.call_duration.get_or_create(&CallLabels { driver, rpc }).observe(self.started.elapsed().as_secs_f64());
        }
    }
}

impl Drop for Call {
    fn drop(&mut self) {
        if !self.done {
            // The run was interrupted while the call was under way.
            self.record("cancelled");
        }
        if let Some(t) = enabled() {
            t.calls_in_flight.get_or_create(&CallLabels { driver: self.driver.clone(), rpc: self.rpc }).dec();
        }
    }
}

/// A driver call made again, and why.
pub(crate) fn retried(driver: &str, reason: &'static str) {
    if let Some(t) = enabled() {
        t.retries.get_or_create(&RetryLabels { driver: driver.to_string(), reason }).inc();
    }
}

/// Which way artifact bytes went through a driver.
#[derive(Clone, Copy)]
pub(crate) enum Direction {
    Upload,
    Download,
}

/// Artifact bytes moved through `driver`.
pub(crate) fn moved(driver: &str, direction: Direction, bytes: u64) {
    if let Some(t) = enabled() {
        let direction = match direction {
            Direction::Upload => "upload",
            Direction::Download => "download",
        };
        t.bytes.get_or_create(&MovedLabels { driver: driver.to_string(), direction }).inc_by(bytes);
    }
}

/// The artifact bytes at `path` (a file or a tree) moved through `driver`;
/// measured only while metrics are on, on the blocking pool.
pub(crate) async fn moved_path(driver: &str, direction: Direction, path: &std::path::Path) {
    if enabled().is_none() {
        return;
    }
    let path = path.to_path_buf();
    let sized = tokio::task::spawn_blocking(move || ferry_sdk::local::tree_size(&path).ok()).await;
    if let Ok(Some((bytes, _))) = sized {
        moved(driver, direction, bytes);
    }
}

pub(crate) fn node_started(kind: &'static str) {
    if let Some(t) = enabled() {
        t.nodes_started.get_or_create(&KindLabels { kind }).inc();
    }
}

/// A node ended; `ran` is a pod's run time.
pub(crate) fn node_finished(kind: &'static str, phase: &'static str, ran: Option<Duration>) {
    if let Some(t) = enabled() {
        t.nodes_finished.get_or_create(&NodeLabels { kind, phase }).inc();
        if let Some(ran) = ran {
            t.pod_duration.observe(ran.as_secs_f64());
        }
    }
}
