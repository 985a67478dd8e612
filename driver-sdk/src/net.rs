//! HTTP for drivers over object stores: short connect and first-byte
//! timeouts kept apart from the idle read timeout, retries of transient
//! failures over a bounded wall time, and errors that name the host and the
//! cause (connection refused, DNS, TLS, timed out) rather than "error sending
//! request".
//!
//! A driver hands [`Connector`] to its object_store builder
//! (`with_http_connector`) together with [`NetOptions::retry_config`].
//!
//! | variable | meaning | default |
//! |---|---|---|
//! | `FERRY_CONNECT_TIMEOUT` | time to open a connection (TCP and TLS) | 10 s |
//! | `FERRY_FIRST_BYTE_TIMEOUT` | time without progress before the response headers: nothing of the request body taken, or no answer after it | 30 s |
//! | `FERRY_READ_TIMEOUT` | time without a byte of the response body | 300 s |
//! | `FERRY_RETRY_TIMEOUT` | wall time over which a streak of failures of one request or one upload is retried (an upload that moves forward starts a new streak) | 60 s |
//!
//! Each is a duration as [`crate::env::duration`] reads it: whole seconds
//! (`300`), or with a unit (`300s`, `5m`), above zero.

use crate::error::{Error, Result};
use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use object_store::client::{
    DnsResolver, HttpClient, HttpConnector, HttpError, HttpErrorKind, HttpRequest, HttpResponse, HttpResponseBody,
    HttpService,
};
use object_store::{BackoffConfig, ClientOptions, RetryConfig};
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

/// `FERRY_CONNECT_TIMEOUT`.
pub const CONNECT_TIMEOUT_ENV: &str = "FERRY_CONNECT_TIMEOUT";
/// `FERRY_FIRST_BYTE_TIMEOUT`.
pub const FIRST_BYTE_TIMEOUT_ENV: &str = "FERRY_FIRST_BYTE_TIMEOUT";
/// `FERRY_READ_TIMEOUT`.
pub const READ_TIMEOUT_ENV: &str = "FERRY_READ_TIMEOUT";
pub use crate::env::RETRY_TIMEOUT_ENV;
pub use crate::error::NetError;

/// Longest pause between two retries: short enough that a server back after
/// an outage is found within seconds, and that the wall-time bound is not
/// overshot by much.
const MAX_BACKOFF: Duration = Duration::from_secs(4);

/// Request bodies are handed to the connection in slices of this size, so
/// that a stalled upload shows as no progress within the first-byte timeout.
const SLICE: usize = 64 << 10;

/// Network timeouts and the retry bound; see the module documentation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct NetOptions {
    /// Opening a connection.
    pub connect_timeout: Duration,
    /// No progress before the response headers.
    pub first_byte_timeout: Duration,
    /// No byte of the response body. Long by default: a server assembling a
    /// multi-GiB object may be silent for minutes (S3 itself sends spaces).
    pub read_timeout: Duration,
    /// Retries of one request (and resumes of one upload) stop after this.
    pub retry_timeout: Duration,
}

impl Default for NetOptions {
    fn default() -> Self {
        NetOptions {
            connect_timeout: Duration::from_secs(10),
            first_byte_timeout: Duration::from_secs(30),
            read_timeout: Duration::from_secs(300),
            retry_timeout: crate::env::DEFAULT_RETRY_TIMEOUT,
        }
    }
}

impl NetOptions {
    /// The defaults, overridden by the `FERRY_*_TIMEOUT` variables where set.
    pub fn from_env() -> Result<Self> {
        let d = NetOptions::default();
        Ok(NetOptions {
            connect_timeout: crate::env::duration(CONNECT_TIMEOUT_ENV, d.connect_timeout)?,
            first_byte_timeout: crate::env::duration(FIRST_BYTE_TIMEOUT_ENV, d.first_byte_timeout)?,
            read_timeout: crate::env::duration(READ_TIMEOUT_ENV, d.read_timeout)?,
            retry_timeout: crate::env::duration(RETRY_TIMEOUT_ENV, d.retry_timeout)?,
        })
    }

    /// object_store's retry settings: bounded by wall time, not by count (a
    /// count of 10 is spent in under 4 s, less than a server restart takes).
    pub fn retry_config(&self) -> RetryConfig {
        RetryConfig {
            backoff: BackoffConfig { init_backoff: Duration::from_millis(100), max_backoff: MAX_BACKOFF, base: 2.0 },
            max_retries: 1000,
            retry_timeout: self.retry_timeout,
        }
    }

    /// The longest one request can take to fail when every attempt hangs: the
    /// retry bound, plus the attempt running when it passed, plus one pause.
    pub fn worst_case_failure(&self) -> Duration {
        self.retry_timeout + self.connect_timeout.max(self.first_byte_timeout) + MAX_BACKOFF
    }
}

/// The object_store [`HttpConnector`] with Ferry's timeouts and error messages.
#[derive(Clone, Debug)]
pub struct Connector {
    options: NetOptions,
    roots: Vec<reqwest::Certificate>,
}

impl Connector {
    /// A connector with `options`, trusting the system's roots.
    pub fn new(options: NetOptions) -> Self {
        Connector { options, roots: Vec::new() }
    }

    /// Also trusts the certificates of a PEM bundle; `what` names where it
    /// came from in the error.
    pub fn with_root_certificates(mut self, pem: &[u8], what: &str) -> Result<Self> {
        let certs = reqwest::Certificate::from_pem_bundle(pem)
            .map_err(|e| Error::invalid_config(format!("invalid configuration: {what}: {e}")))?;
        if certs.is_empty() {
            return Err(Error::invalid_config(format!("invalid configuration: {what} holds no PEM certificate")));
        }
        self.roots.extend(certs);
        Ok(self)
    }

    /// The options in force.
    pub fn options(&self) -> &NetOptions {
        &self.options
    }
}

impl HttpConnector for Connector {
    fn connect(&self, client_options: &ClientOptions) -> object_store::Result<HttpClient> {
        let mut builder = reqwest::Client::builder()
            .user_agent(concat!("ferry/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(self.options.connect_timeout);
        if !self.roots.is_empty() {
            builder = builder.tls_certs_merge(self.roots.iter().cloned());
        }
        if let Some(resolver) = client_options.dns_resolver() {
            builder = builder.dns_resolver(Arc::new(Resolver(resolver.clone())));
        }
        let client =
            builder.build().map_err(|e| object_store::Error::Generic { store: "HTTP", source: Box::new(e) })?;
        Ok(HttpClient::new(Service { client, options: self.options }))
    }
}

/// object_store's resolver seen as reqwest's.
struct Resolver(Arc<dyn DnsResolver>);

impl reqwest::dns::Resolve for Resolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let lookup = self.0.resolve(name.as_str());
        Box::pin(async move {
            let ips = lookup.await?;
            let addrs: reqwest::dns::Addrs = Box::new(ips.into_iter().map(|ip| std::net::SocketAddr::new(ip, 0)));
            Ok(addrs)
        })
    }
}

#[derive(Debug)]
struct Service {
    client: reqwest::Client,
    options: NetOptions,
}

#[async_trait::async_trait]
impl HttpService for Service {
    async fn call(&self, req: HttpRequest) -> std::result::Result<HttpResponse, HttpError> {
        let (parts, body) = req.into_parts();
        let url = reqwest::Url::parse(&parts.uri.to_string()).map_err(|e| HttpError::new(HttpErrorKind::Unknown, e))?;
        let host = parts.uri.authority().map_or_else(|| "(no host)".to_string(), |a| a.to_string());
        let mut request = reqwest::Request::new(parts.method, url);
        *request.headers_mut() = parts.headers;
        *request.body_mut() = Some(reqwest::Body::wrap(body));
        let response =
            execute(&self.client, request, &self.options).await.map_err(|(kind, e)| HttpError::new(kind, e))?;
        let response: http::Response<reqwest::Body> = response.into();
        let (parts, body) = response.into_parts();
        Ok(HttpResponse::from_parts(parts, HttpResponseBody::new(ToHttpError(body, host))))
    }
}

/// A response body whose errors are object_store's.
struct ToHttpError(reqwest::Body, String);

impl Body for ToHttpError {
    type Data = Bytes;
    type Error = HttpError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<std::result::Result<Frame<Bytes>, HttpError>>> {
        match Pin::new(&mut self.0).poll_frame(cx) {
            Poll::Ready(Some(Err(e))) => {
                let (kind, net) = classify(&e, &self.1);
                Poll::Ready(Some(Err(HttpError::new(kind, net))))
            }
            Poll::Ready(Some(Ok(frame))) => Poll::Ready(Some(Ok(frame))),
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Pending => Poll::Pending,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.0.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.0.size_hint()
    }
}

/// Sends `request` with `client` under `options`' first-byte and idle read
/// timeouts; for drivers that use reqwest directly. A failure is a
/// [`NetError`] naming the host and the cause, with the kind object_store's
/// retry loop would give it.
pub async fn execute(
    client: &reqwest::Client,
    mut request: reqwest::Request,
    options: &NetOptions,
) -> std::result::Result<reqwest::Response, (HttpErrorKind, NetError)> {
    let url = request.url();
    let host: Arc<str> = match (url.host_str(), url.port()) {
        (Some(h), Some(p)) => format!("{h}:{p}").into(),
        (Some(h), None) => h.into(),
        _ => "(no host)".into(),
    };
    let progress = Arc::new(Progress::new());
    if let Some(body) = request.body_mut().take() {
        *request.body_mut() =
            Some(reqwest::Body::wrap(Tracked { inner: body, pending: None, progress: progress.clone() }));
    }
    let limit = options.first_byte_timeout;
    let stalled = async {
        loop {
            let idle = progress.idle();
            if idle >= limit {
                return;
            }
            tokio::time::sleep(limit - idle).await;
        }
    };
    let response = tokio::select! {
        r = client.execute(request) => r.map_err(|e| classify(&e, &host))?,
        () = stalled => {
            return Err((
                HttpErrorKind::Timeout,
                NetError::new(&host, format!("timed out: no response within {} s ({FIRST_BYTE_TIMEOUT_ENV})", limit.as_secs())),
            ));
        }
    };
    // The URL travels in the parts' extensions, and comes back with them.
    let response: http::Response<reqwest::Body> = response.into();
    let (parts, body) = response.into_parts();
    let idle = options.read_timeout;
    let body = IdleLimited { inner: body, timer: Box::pin(tokio::time::sleep(idle)), idle, host };
    Ok(reqwest::Response::from(http::Response::from_parts(parts, reqwest::Body::wrap(body))))
}

/// When the request last made progress (milliseconds since `start`).
struct Progress {
    start: Instant,
    last_ms: AtomicU64,
}

impl Progress {
    fn new() -> Self {
        Progress { start: Instant::now(), last_ms: AtomicU64::new(0) }
    }

    fn touch(&self) {
        self.last_ms.store(self.start.elapsed().as_millis() as u64, Ordering::Relaxed);
    }

    fn idle(&self) -> Duration {
        self.start.elapsed().saturating_sub(Duration::from_millis(self.last_ms.load(Ordering::Relaxed)))
    }
}

/// The request body, in slices, noting each one the connection takes.
struct Tracked<B> {
    inner: B,
    pending: Option<Bytes>,
    progress: Arc<Progress>,
}

impl<B> Tracked<B> {
    fn slice(&mut self, mut data: Bytes) -> Frame<Bytes> {
        if data.len() > SLICE {
            self.pending = Some(data.split_off(SLICE));
        }
        self.progress.touch();
        Frame::data(data)
    }
}

impl<B: Body<Data = Bytes> + Unpin> Body for Tracked<B> {
    type Data = Bytes;
    type Error = B::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<std::result::Result<Frame<Bytes>, B::Error>>> {
        if let Some(data) = self.pending.take() {
            return Poll::Ready(Some(Ok(self.slice(data))));
        }
        match Pin::new(&mut self.inner).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => match frame.into_data() {
                Ok(data) => Poll::Ready(Some(Ok(self.slice(data)))),
                Err(frame) => Poll::Ready(Some(Ok(frame))),
            },
            other => other,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.pending.is_none() && self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        let mut hint = self.inner.size_hint();
        if let Some(p) = &self.pending {
            let extra = p.len() as u64;
            hint.set_lower(hint.lower() + extra);
            if let Some(upper) = hint.upper() {
                hint.set_upper(upper + extra);
            }
        }
        hint
    }
}

/// The response body, failing when no byte comes for `idle`.
struct IdleLimited {
    inner: reqwest::Body,
    timer: Pin<Box<tokio::time::Sleep>>,
    idle: Duration,
    host: Arc<str>,
}

impl Body for IdleLimited {
    type Data = Bytes;
    type Error = Box<dyn std::error::Error + Send + Sync>;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<std::result::Result<Frame<Bytes>, Self::Error>>> {
        match Pin::new(&mut self.inner).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                let deadline = tokio::time::Instant::now() + self.idle;
                self.timer.as_mut().reset(deadline);
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(Some(Err(e))) => {
                let (_, net) = classify(&e, &self.host);
                Poll::Ready(Some(Err(Box::new(net))))
            }
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Pending => match self.timer.as_mut().poll(cx) {
                Poll::Ready(()) => Poll::Ready(Some(Err(Box::new(NetError::new(
                    &self.host,
                    format!(
                        "timed out: no data for {} s while reading the response ({READ_TIMEOUT_ENV})",
                        self.idle.as_secs()
                    ),
                ))))),
                Poll::Pending => Poll::Pending,
            },
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// Names the cause of a failed request by walking its error chain, and picks
/// the kind object_store's retry loop acts on (connect and request errors are
/// retried, timeouts and cut connections when the request is idempotent).
fn classify(err: &reqwest::Error, host: &str) -> (HttpErrorKind, NetError) {
    use std::io::ErrorKind as Io;
    let mut kind = if err.is_timeout() {
        HttpErrorKind::Timeout
    } else if err.is_connect() {
        HttpErrorKind::Connect
    } else if err.is_decode() {
        HttpErrorKind::Decode
    } else {
        HttpErrorKind::Unknown
    };
    let mut cause: Option<String> = None;
    let mut transient = true;
    let mut innermost = err.to_string();
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(err);
    while let Some(e) = source {
        innermost = e.to_string();
        if let Some(net) = e.downcast_ref::<NetError>() {
            let kind = if net.cause.starts_with("timed out") { HttpErrorKind::Timeout } else { kind };
            return (kind, NetError { host: net.host.clone(), cause: net.cause.clone(), transient: net.transient });
        }
        if let Some(io) = e.downcast_ref::<std::io::Error>() {
            let (k, text) = match io.kind() {
                Io::ConnectionRefused => (HttpErrorKind::Connect, "connection refused"),
                Io::ConnectionReset => (HttpErrorKind::Interrupted, "connection reset by the server"),
                Io::ConnectionAborted => (HttpErrorKind::Interrupted, "connection aborted"),
                Io::BrokenPipe => (HttpErrorKind::Interrupted, "connection closed by the server while sending"),
                Io::UnexpectedEof => (HttpErrorKind::Interrupted, "connection closed by the server"),
                Io::TimedOut => (HttpErrorKind::Timeout, "timed out"),
                Io::HostUnreachable | Io::NetworkUnreachable => (HttpErrorKind::Connect, "host unreachable"),
                _ => (kind, ""),
            };
            if !text.is_empty() && cause.is_none() {
                // A connect error keeps its kind: it is retried whatever the method.
                if kind != HttpErrorKind::Connect {
                    kind = k;
                }
                cause = Some(text.to_string());
            }
        }
        if let Some(h) = e.downcast_ref::<hyper::Error>() {
            if h.is_closed() || h.is_incomplete_message() || h.is_body_write_aborted() {
                if kind == HttpErrorKind::Unknown {
                    kind = HttpErrorKind::Request;
                }
                cause.get_or_insert_with(|| "connection closed by the server before the response".into());
            } else if h.is_timeout() {
                kind = HttpErrorKind::Timeout;
            }
        }
        let text = e.to_string();
        if cause.is_none() && text.starts_with("dns error") {
            cause = Some(format!("DNS lookup failed: {}", innermost_of(e)));
            // A name that does not resolve is a configuration error far more
            // often than a blip: fail now rather than after the retry bound.
            kind = HttpErrorKind::Unknown;
            transient = false;
        }
        if cause.is_none() && (text.contains("certificate") || text.contains("tls") || text.contains("TLS")) {
            cause = Some(format!("TLS failed: {}", innermost_of(e)));
            // A certificate the client does not trust stays untrusted: no retry.
            kind = HttpErrorKind::Unknown;
            transient = false;
        }
        source = e.source();
    }
    let cause = match cause {
        Some(c) if kind == HttpErrorKind::Timeout && !c.contains("timed out") => format!("timed out: {c}"),
        Some(c) => c,
        None if kind == HttpErrorKind::Timeout && err.is_connect() => "timed out connecting".to_string(),
        None if kind == HttpErrorKind::Timeout => "timed out".to_string(),
        None if err.is_connect() => format!("could not connect: {innermost}"),
        None => innermost,
    };
    (kind, NetError { host: host.to_string(), cause, transient })
}

fn innermost_of(mut e: &(dyn std::error::Error + 'static)) -> String {
    while let Some(s) = e.source() {
        e = s;
    }
    e.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retries_are_bounded_by_wall_time_not_count() {
        let o = NetOptions { retry_timeout: Duration::from_secs(7), ..NetOptions::default() };
        let r = o.retry_config();
        assert_eq!(r.retry_timeout, Duration::from_secs(7));
        // 1000 retries at up to 4 s apart outlast any bound worth setting.
        assert!(r.max_retries as u64 * MAX_BACKOFF.as_secs() > 3600);
        assert!(o.worst_case_failure() <= Duration::from_secs(7 + 30 + 4));
    }

    #[tokio::test]
    async fn a_refused_connection_names_host_and_cause() {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let client = reqwest::Client::new();
        let err = client.get(format!("http://127.0.0.1:{port}/x")).send().await.unwrap_err();
        let (kind, e) = classify(&err, &format!("127.0.0.1:{port}"));
        assert_eq!(kind, HttpErrorKind::Connect);
        let text = e.to_string();
        assert_eq!(text, format!("127.0.0.1:{port}: connection refused"));
    }

    #[tokio::test]
    async fn an_unknown_host_says_dns() {
        let client = reqwest::Client::new();
        let err = client.get("http://no-such-host.invalid/x").send().await.unwrap_err();
        let (kind, e) = classify(&err, "no-such-host.invalid");
        let text = e.to_string();
        assert!(text.starts_with("no-such-host.invalid: DNS lookup failed: "), "{text}");
        assert_eq!(kind, HttpErrorKind::Unknown, "not retried for the whole bound");
        assert!(!e.is_transient());
    }
}
