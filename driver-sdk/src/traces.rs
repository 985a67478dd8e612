//! OpenTelemetry traces of a driver process: one span per gRPC call,
//! continuing the trace of the caller's W3C `traceparent`, exported over
//! OTLP/HTTP when [`OTLP_ENDPOINT_ENV`] or [`OTLP_TRACES_ENDPOINT_ENV`] is
//! set. Off by default, like [metrics](crate::metrics): unset, no layer is
//! installed, no span is made and no thread is started.
//!
//! The variables are the standard ones of the OpenTelemetry SDKs, read by
//! `opentelemetry-otlp` itself (`OTEL_EXPORTER_OTLP_HEADERS`, `_TIMEOUT`,
//! `_PROTOCOL` and their `_TRACES_` forms), so a driver is set up like any
//! other instrumented process of the cluster. Spans leave from the batch
//! processor's own thread with a blocking HTTP client: exporting never
//! competes with transfers for the driver's runtime, and it can flush after
//! that runtime has gone.

use opentelemetry::propagation::{Extractor, TextMapPropagator};
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::SdkTracerProvider;
use std::pin::Pin;
use std::sync::OnceLock;
use std::task::{Context, Poll};
use std::time::Duration;
use tracing_opentelemetry::OpenTelemetrySpanExt;

/// `OTEL_EXPORTER_OTLP_ENDPOINT`: base URL of an OTLP/HTTP receiver
/// (`http://collector:4318`); spans go to its `/v1/traces`.
pub const OTLP_ENDPOINT_ENV: &str = "OTEL_EXPORTER_OTLP_ENDPOINT";

/// `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`: the full URL spans are posted to;
/// wins over [`OTLP_ENDPOINT_ENV`].
pub const OTLP_TRACES_ENDPOINT_ENV: &str = "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT";

/// `OTEL_EXPORTER_OTLP_PROTOCOL`: `http/protobuf` (the default) or
/// `http/json`. `grpc` is not built in: such a driver warns and exports
/// `http/protobuf`, to the same endpoint.
pub const OTLP_PROTOCOL_ENV: &str = "OTEL_EXPORTER_OTLP_PROTOCOL";

/// `OTEL_SERVICE_NAME`: the `service.name` of the spans; unset, the
/// binary's name (`ferry-driver-fs`).
pub const SERVICE_NAME_ENV: &str = "OTEL_SERVICE_NAME";

/// How long shutdown waits for the last spans to leave: within the
/// default shutdown grace, so a receiver that is down cannot hold up a
/// driver that Kubernetes is about to kill anyway.
const FLUSH_TIMEOUT: Duration = Duration::from_secs(5);

/// The target of the call spans, and the filter directive that keeps them
/// out of log lines.
const RPC_SPAN_TARGET: &str = "ferry_sdk::rpc";
pub(crate) const RPC_SPAN_DIRECTIVE_OFF: &str = "ferry_sdk::rpc=off";

type OtelLayer<S> = tracing_opentelemetry::OpenTelemetryLayer<S, opentelemetry_sdk::trace::SdkTracer>;

static PROVIDER: OnceLock<SdkTracerProvider> = OnceLock::new();

/// Whether spans are exported (set once, at start-up).
pub fn enabled() -> bool {
    PROVIDER.get().is_some()
}

/// The layer that turns `tracing` spans into exported OpenTelemetry spans,
/// when an endpoint variable is set; `None` otherwise, and also when the
/// exporter cannot be built (the reason is returned, for a warning once
/// logging is up: traces must not stop a driver from moving artifacts).
pub(crate) fn layer<S>() -> (Option<OtelLayer<S>>, Vec<String>)
where
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
{
    let mut warnings = Vec::new();
    let set = |name| crate::env::text(name).ok().flatten().is_some_and(|v| !v.trim().is_empty());
    if !set(OTLP_ENDPOINT_ENV) && !set(OTLP_TRACES_ENDPOINT_ENV) {
        return (None, warnings);
    }
    for name in ["OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", OTLP_PROTOCOL_ENV] {
        if let Ok(Some(p)) = crate::env::text(name)
            && p.trim().eq_ignore_ascii_case("grpc")
        {
            warnings.push(format!("{name}=grpc is not supported by Ferry's drivers; exporting http/protobuf"));
        }
    }
    let exporter = match opentelemetry_otlp::SpanExporter::builder().with_http().build() {
        Ok(e) => e,
        Err(e) => {
            warnings.push(format!("traces off: building the OTLP exporter: {e}"));
            return (None, warnings);
        }
    };
    let provider =
        SdkTracerProvider::builder().with_batch_exporter(exporter).with_resource(resource(&binary_name())).build();
    let tracer = provider.tracer("ferry-sdk");
    if PROVIDER.set(provider).is_err() {
        // A second logging set-up: the first provider's layer is the one installed.
        return (None, warnings);
    }
    (Some(tracing_opentelemetry::layer().with_tracer(tracer)), warnings)
}

/// The resource of every span: what the SDK finds in `OTEL_SERVICE_NAME`
/// and `OTEL_RESOURCE_ATTRIBUTES`, with `service.name` defaulting to the
/// binary, so each driver shows apart without configuration.
fn resource(binary: &str) -> Resource {
    let detected = Resource::builder().build();
    let named = detected
        .get(&opentelemetry::Key::new("service.name"))
        .is_some_and(|name| !name.as_str().starts_with("unknown_service"));
    if named { detected } else { Resource::builder().with_service_name(binary.to_string()).build() }
}

fn binary_name() -> String {
    std::env::args_os()
        .next()
        .and_then(|a| std::path::Path::new(&a).file_name().map(|f| f.to_string_lossy().into_owned()))
        .filter(|n| !n.is_empty())
        .unwrap_or_else(|| "ferry-driver".to_string())
}

/// Exports the spans still queued and stops the exporter; a no-op while
/// traces are off. Called by [`run`](crate::run) after the server has
/// stopped, however it stopped.
pub fn shutdown() {
    if let Some(provider) = PROVIDER.get()
        && let Err(e) = provider.shutdown_with_timeout(FLUSH_TIMEOUT)
    {
        tracing::warn!(error = %e, "exporting the last spans");
    }
}

/// The caller's trace context from W3C `traceparent` and `tracestate`
/// request headers (gRPC metadata are HTTP/2 headers); an empty context,
/// so a new trace, when they are absent or malformed.
pub fn parent_context(headers: &http::HeaderMap) -> opentelemetry::Context {
    TraceContextPropagator::new().extract(&Headers(headers))
}

struct Headers<'a>(&'a http::HeaderMap);

impl Extractor for Headers<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|v| v.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(http::HeaderName::as_str).collect()
    }
}

/// `rpc.service` and `rpc.method` of a gRPC path, `/artifact.ArtifactService/Load`.
fn rpc_names(path: &str) -> (&str, &str) {
    let path = path.strip_prefix('/').unwrap_or(path);
    path.split_once('/').unwrap_or((path, ""))
}

/// The span of one gRPC call, child of the caller's span when it sent one.
/// Only names and outcome: a request's configuration may hold secrets, so
/// nothing of the body is recorded here (the driver's own events, which
/// name the key, land inside it).
fn rpc_span<B>(request: &http::Request<B>) -> tracing::Span {
    let (service, method) = rpc_names(request.uri().path());
    let name = format!("{service}/{method}");
    let span = tracing::info_span!(
        target: RPC_SPAN_TARGET,
        "rpc",
        otel.name = name.as_str(),
        otel.kind = "server",
        otel.status_code = tracing::field::Empty,
        rpc.system = "grpc",
        rpc.service = service,
        rpc.method = method,
        rpc.grpc.status_code = tracing::field::Empty,
        "error.type" = tracing::field::Empty,
    );
    // Fails only without the OpenTelemetry layer, when there is nothing to parent.
    let _ = span.set_parent(parent_context(request.headers()));
    span
}

/// Records the gRPC status and Ferry's error kind, from response headers or
/// trailers, whichever carries them.
fn record_outcome(span: &tracing::Span, headers: &http::HeaderMap) {
    if let Some(kind) = headers.get(crate::error::KIND_HEADER).and_then(|v| v.to_str().ok()) {
        span.record("error.type", kind);
        // Load, Save and Delete answer failures in-band, with status OK.
        span.record("otel.status_code", "error");
    }
    if let Some(code) = headers.get("grpc-status").and_then(|v| v.to_str().ok()).and_then(|c| c.parse::<i64>().ok()) {
        span.record("rpc.grpc.status_code", code);
        if code != 0 {
            span.record("otel.status_code", "error");
        }
    }
}

/// The tower layer of [`serve`](crate::serve) that gives every call its
/// span (`rpc.*` fields, gRPC status, Ferry's error kind), open until the
/// response's last frame (a stream's end, not its headers) and entered
/// while the response is produced, so the driver's events land in it.
/// While traces are off it only passes requests and responses through.
#[derive(Clone, Copy, Debug, Default)]
pub struct RpcSpanLayer;

impl<S> tower::Layer<S> for RpcSpanLayer {
    type Service = RpcSpanService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        RpcSpanService { inner }
    }
}

/// The service of [`RpcSpanLayer`].
#[derive(Clone, Debug)]
pub struct RpcSpanService<S> {
    inner: S,
}

impl<S, B, RB> tower::Service<http::Request<B>> for RpcSpanService<S>
where
    S: tower::Service<http::Request<B>, Response = http::Response<RB>>,
{
    type Response = http::Response<SpanBody<RB>>;
    type Error = S::Error;
    type Future = SpanFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        let span = enabled().then(|| rpc_span(&request));
        let inner = match &span {
            Some(span) => span.in_scope(|| self.inner.call(request)),
            None => self.inner.call(request),
        };
        SpanFuture { inner, span }
    }
}

pin_project_lite::pin_project! {
    /// The response future of [`RpcSpanService`].
    pub struct SpanFuture<F> {
        #[pin]
        inner: F,
        span: Option<tracing::Span>,
    }
}

impl<F, RB, E> std::future::Future for SpanFuture<F>
where
    F: std::future::Future<Output = Result<http::Response<RB>, E>>,
{
    type Output = Result<http::Response<SpanBody<RB>>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let response = {
            let _entered = this.span.as_ref().map(tracing::Span::enter);
            std::task::ready!(this.inner.poll(cx))
        };
        let span = this.span.take();
        Poll::Ready(response.map(|response| {
            if let Some(span) = &span {
                record_outcome(span, response.headers());
            }
            response.map(|inner| SpanBody { inner, span })
        }))
    }
}

pin_project_lite::pin_project! {
    /// A response body holding its call's span until its last frame.
    pub struct SpanBody<B> {
        #[pin]
        inner: B,
        span: Option<tracing::Span>,
    }
}

impl<B: http_body::Body> http_body::Body for SpanBody<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
        let this = self.project();
        let Some(span) = this.span.as_ref() else {
            return this.inner.poll_frame(cx);
        };
        let polled = span.in_scope(|| this.inner.poll_frame(cx));
        match &polled {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(trailers) = frame.trailers_ref() {
                    record_outcome(span, trailers);
                }
            }
            Poll::Ready(Some(Err(_))) => {
                span.record("otel.status_code", "error");
                *this.span = None;
            }
            Poll::Ready(None) => *this.span = None,
            Poll::Pending => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry::trace::TraceContextExt;

    fn headers(pairs: &[(&'static str, &str)]) -> http::HeaderMap {
        pairs.iter().map(|(k, v)| (http::HeaderName::from_static(k), v.parse().unwrap())).collect()
    }

    #[test]
    fn the_parent_is_the_callers_traceparent() {
        let h = headers(&[
            ("traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"),
            ("tracestate", "argo=1"),
        ]);
        let cx = parent_context(&h);
        let parent = cx.span().span_context().clone();
        assert!(parent.is_valid() && parent.is_remote() && parent.is_sampled());
        assert_eq!(parent.trace_id().to_string(), "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_eq!(parent.span_id().to_string(), "00f067aa0ba902b7");
        assert_eq!(parent.trace_state().get("argo"), Some("1"));
    }

    #[test]
    fn no_or_a_malformed_traceparent_is_no_parent() {
        assert!(!parent_context(&http::HeaderMap::new()).span().span_context().is_valid());
        let h = headers(&[("traceparent", "00-00000000000000000000000000000000-00f067aa0ba902b7-01")]);
        assert!(!parent_context(&h).span().span_context().is_valid());
        let h = headers(&[("traceparent", "not a trace")]);
        assert!(!parent_context(&h).span().span_context().is_valid());
    }

    #[test]
    fn the_log_directive_names_the_span_target() {
        assert_eq!(RPC_SPAN_DIRECTIVE_OFF, format!("{RPC_SPAN_TARGET}=off"));
    }

    #[test]
    fn service_and_method_come_from_the_path() {
        assert_eq!(rpc_names("/artifact.ArtifactService/Load"), ("artifact.ArtifactService", "Load"));
        assert_eq!(rpc_names("/ferry.v1.ObjectService/ReadRange"), ("ferry.v1.ObjectService", "ReadRange"));
        assert_eq!(rpc_names("/odd"), ("odd", ""));
    }

    #[test]
    fn an_unnamed_service_is_named_after_the_binary() {
        if std::env::var_os(SERVICE_NAME_ENV).is_none() && std::env::var_os("OTEL_RESOURCE_ATTRIBUTES").is_none() {
            let r = resource("ferry-driver-fs");
            let name = r.get(&opentelemetry::Key::new("service.name")).map(|v| v.as_str().into_owned());
            assert_eq!(name.as_deref(), Some("ferry-driver-fs"));
        }
    }
}
