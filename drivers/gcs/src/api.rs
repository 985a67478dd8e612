//! The slice of GCS's JSON API the driver uses: object metadata, media
//! reads, listings, deletes, single-request uploads and resumable sessions.
//!
//! Why not a GCS crate: `object_store` speaks the XML API, which the emulator
//! we test against does not serve, and Google's own `google-cloud-storage`
//! lists, stats and deletes over gRPC and keeps resumable session URIs
//! private, so an upload could not be resumed by another process.

use crate::auth::Auth;
use backon::{ExponentialBuilder, Retryable};
use base64::Engine;
use bytes::Bytes;
use ferry_sdk::net::NetOptions;
use ferry_sdk::{Error, ErrorKind, Result};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use reqwest::{Method, RequestBuilder, Response, StatusCode};
use serde::Deserialize;
use std::time::Duration;

/// Everything but RFC 3986's unreserved characters, so `/` in an object name
/// becomes `%2F` as the JSON API requires.
const NAME: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'.').remove(b'_').remove(b'~');

/// Where requests go when no endpoint is configured.
pub const DEFAULT_ENDPOINT: &str = "https://storage.googleapis.com";

/// What the driver needs of an object's metadata.
#[derive(Clone, Debug, Deserialize)]
pub struct ObjectMeta {
    /// Its size in bytes (a string on the wire).
    #[serde(deserialize_with = "u64_string")]
    pub size: u64,
    /// Its generation, which changes on every overwrite.
    #[serde(default)]
    pub generation: String,
    /// Base64 of the big-endian CRC32C of its bytes.
    #[serde(default)]
    pub crc32c: Option<String>,
}

impl ObjectMeta {
    /// The CRC32C, when the server reported one.
    pub fn crc32c(&self) -> Option<u32> {
        self.crc32c.as_deref().and_then(decode_crc)
    }
}

fn u64_string<'de, D: serde::Deserializer<'de>>(d: D) -> std::result::Result<u64, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Num {
        S(String),
        N(u64),
    }
    match Num::deserialize(d)? {
        Num::S(s) => s.parse().map_err(serde::de::Error::custom),
        Num::N(n) => Ok(n),
    }
}

/// Base64 of a big-endian CRC32C, as GCS writes checksums.
pub fn encode_crc(crc: u32) -> String {
    base64::engine::general_purpose::STANDARD.encode(crc.to_be_bytes())
}

/// The inverse of [`encode_crc`].
pub fn decode_crc(raw: &str) -> Option<u32> {
    let bytes = base64::engine::general_purpose::STANDARD.decode(raw).ok()?;
    Some(u32::from_be_bytes(bytes.try_into().ok()?))
}

/// The CRC32C in an `x-goog-hash` header (`crc32c=...,md5=...`).
pub fn header_crc(response: &Response) -> Option<u32> {
    response
        .headers()
        .get_all("x-goog-hash")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|v| v.split(',').find_map(|part| part.trim().strip_prefix("crc32c=")).and_then(decode_crc))
}

/// One request of a resumable upload.
pub struct Chunk {
    /// Offset of its first byte in the object.
    pub start: u64,
    /// Its bytes.
    pub body: reqwest::Body,
    /// How many bytes `body` holds.
    pub len: u64,
    /// The object's size, when known (always on the last chunk).
    pub total: Option<u64>,
    /// The whole object's CRC32C, on the last chunk.
    pub crc: Option<u32>,
}

/// Where a resumable session stands.
#[derive(Debug)]
pub enum Session {
    /// Bytes `0..persisted` are stored; send from `persisted` on.
    Incomplete {
        /// How many bytes the server holds.
        persisted: u64,
    },
    /// The object is finished.
    Done(ObjectMeta),
    /// The session expired or was cancelled: start over.
    Gone,
}

/// One bucket on one endpoint, with its credentials.
pub struct Api {
    http: reqwest::Client,
    base: String,
    bucket: String,
    auth: Auth,
    net: NetOptions,
}

/// The first pause after a transient failure.
const FIRST_PAUSE: Duration = Duration::from_millis(200);

/// Paces attempts after transient failures over the wall-time bound
/// (`FERRY_RETRY_TIMEOUT`): an outage lasts seconds, whatever the number of
/// attempts made in them.
///
/// The bound is on a streak of failures, measured from its first one: an
/// upload that has run for an hour must still survive an outage in its last
/// minute. [`Retry::progressed`] ends a streak.
pub struct Retry {
    failing_since: std::sync::Mutex<Option<std::time::Instant>>,
    bound: Duration,
    pause: Duration,
}

impl Retry {
    /// Whether `e` may be tried again: transient, and within the bound of the
    /// current streak of failures (which `e` starts if it is the first).
    pub fn allows(&self, e: &Error) -> bool {
        if e.kind() != ErrorKind::Transient {
            return false;
        }
        let mut since = self.failing_since.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        since.get_or_insert_with(std::time::Instant::now).elapsed() < self.bound
    }

    /// The operation moved forward: the next failure starts a new streak.
    pub fn progressed(&mut self) {
        *self.failing_since.get_mut().unwrap_or_else(std::sync::PoisonError::into_inner) = None;
        self.pause = FIRST_PAUSE;
    }

    /// Waits before the next attempt (doubling, up to 4 s).
    pub async fn pause(&mut self) {
        tokio::time::sleep(self.pause).await;
        self.pause = (self.pause * 2).min(Duration::from_secs(4));
    }
}

impl Api {
    /// A client for `bucket` at `base` (no trailing slash).
    pub fn new(http: reqwest::Client, base: String, bucket: String, auth: Auth) -> Api {
        Api { http, base, bucket, auth, net: NetOptions::default() }
    }

    /// Uses `net`'s first-byte and read timeouts and retry bound.
    #[must_use]
    pub fn with_net(mut self, net: NetOptions) -> Api {
        self.net = net;
        self
    }

    /// A pacer for retrying one operation.
    pub fn retry(&self) -> Retry {
        Retry { failing_since: std::sync::Mutex::new(None), bound: self.net.retry_timeout, pause: FIRST_PAUSE }
    }

    /// `gs://bucket/name`, for messages.
    pub fn display(&self, name: &str) -> String {
        format!("gs://{}/{name}", self.bucket)
    }

    fn object_url(&self, name: &str) -> String {
        format!(
            "{}/storage/v1/b/{}/o/{}",
            self.base,
            utf8_percent_encode(&self.bucket, NAME),
            utf8_percent_encode(name, NAME)
        )
    }

    async fn request(&self, method: Method, url: &str) -> Result<RequestBuilder> {
        let mut r = self.http.request(method, url);
        if let Some(token) = self.auth.token().await? {
            r = r.bearer_auth(token);
        }
        Ok(r)
    }

    /// Sends `r`, turning transport failures and error statuses into errors
    /// about `what`. 308 is not an error: resumable sessions answer it.
    async fn send(&self, r: RequestBuilder, what: &str) -> Result<Response> {
        let response = self.transport(r, what).await?;
        let status = response.status();
        if status.is_success() || status == StatusCode::PERMANENT_REDIRECT {
            return Ok(response);
        }
        Err(status_error(response, what).await)
    }

    /// Sends `r` under the network timeouts; a failure names host and cause.
    async fn transport(&self, r: RequestBuilder, what: &str) -> Result<Response> {
        let (client, request) = r.build_split();
        let request = request.map_err(|e| transport_error(e, what))?;
        ferry_sdk::net::execute(&client, request, &self.net).await.map_err(|(_, e)| {
            let kind = if e.is_transient() { ErrorKind::Transient } else { ErrorKind::Other };
            Error::new(kind, format!("{what}: {e}"))
        })
    }

    /// Idempotent calls retried on transient failures only.
    async fn retried<T, F, Fut>(&self, call: F) -> Result<T>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<T>>,
    {
        let retry = self.retry();
        call.retry(backoff()).when(|e: &Error| retry.allows(e)).await
    }

    /// The object's metadata, or `None` when there is no such object.
    pub async fn stat(&self, name: &str) -> Result<Option<ObjectMeta>> {
        let url = self.object_url(name);
        let what = self.display(name);
        let found = self
            .retried(|| async {
                let r = self.request(Method::GET, &url).await?.query(&[("fields", "size,generation,crc32c")]);
                match self.send(r, &what).await {
                    Ok(response) => {
                        Ok(Some(response.json::<ObjectMeta>().await.map_err(|e| transport_error(e, &what))?))
                    }
                    Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
                    Err(e) => Err(e),
                }
            })
            .await?;
        Ok(found)
    }

    /// Opens the object's bytes, or bytes `range` of them, pinned to
    /// `generation` when given. A missing object is NotFound.
    pub async fn read(&self, name: &str, range: Option<(u64, u64)>, generation: Option<&str>) -> Result<Response> {
        let url = self.object_url(name);
        let what = self.display(name);
        self.retried(|| async {
            let mut r = self.request(Method::GET, &url).await?.query(&[("alt", "media")]);
            if let Some(g) = generation {
                r = r.query(&[("ifGenerationMatch", g)]);
            }
            if let Some((start, end)) = range {
                r = r.header(reqwest::header::RANGE, format!("bytes={start}-{}", end - 1));
            }
            self.send(r, &what).await
        })
        .await
    }

    /// Every object name starting with `prefix`, across pages.
    pub async fn list(&self, prefix: &str) -> Result<Vec<String>> {
        #[derive(Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct Page {
            #[serde(default)]
            items: Vec<Item>,
            next_page_token: Option<String>,
        }
        #[derive(Deserialize)]
        struct Item {
            name: String,
        }
        let url = format!("{}/storage/v1/b/{}/o", self.base, utf8_percent_encode(&self.bucket, NAME));
        let what = self.display(prefix);
        let mut names = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let page: Page = self
                .retried(|| async {
                    let mut r = self.request(Method::GET, &url).await?.query(&[
                        ("prefix", prefix),
                        ("maxResults", "1000"),
                        ("fields", "items(name),nextPageToken"),
                    ]);
                    if let Some(t) = &token {
                        r = r.query(&[("pageToken", t)]);
                    }
                    self.send(r, &what).await?.json::<Page>().await.map_err(|e| transport_error(e, &what))
                })
                .await?;
            names.extend(page.items.into_iter().map(|i| i.name));
            match page.next_page_token.filter(|t| !t.is_empty()) {
                Some(t) => token = Some(t),
                None => return Ok(names),
            }
        }
    }

    /// Deletes the object; success when there is none.
    pub async fn delete(&self, name: &str) -> Result<()> {
        let url = self.object_url(name);
        let what = self.display(name);
        self.retried(|| async {
            match self.send(self.request(Method::DELETE, &url).await?, &what).await {
                Ok(_) => Ok(()),
                Err(e) if e.kind() == ErrorKind::NotFound => Ok(()),
                Err(e) => Err(e),
            }
        })
        .await
    }

    /// Uploads `body` as the whole object in one request.
    pub async fn upload(&self, name: &str, body: reqwest::Body) -> Result<ObjectMeta> {
        let url = format!("{}/upload/storage/v1/b/{}/o", self.base, utf8_percent_encode(&self.bucket, NAME));
        let what = self.display(name);
        let r = self
            .request(Method::POST, &url)
            .await?
            .query(&[("uploadType", "media"), ("name", name)])
            .header(reqwest::header::CONTENT_TYPE, "application/octet-stream")
            .body(body);
        self.send(r, &what).await?.json().await.map_err(|e| transport_error(e, &what))
    }

    /// Uploads small `data` in one request, retried on transient failures.
    pub async fn upload_bytes(&self, name: &str, data: Bytes) -> Result<ObjectMeta> {
        self.retried(|| self.upload(name, reqwest::Body::from(data.clone()))).await
    }

    /// Starts a resumable upload of `name` (of `size` bytes, when known) and
    /// returns the session URI. The URI authorises the upload by itself, so
    /// it is never logged.
    pub async fn start_session(&self, name: &str, size: Option<u64>) -> Result<String> {
        let url = format!("{}/upload/storage/v1/b/{}/o", self.base, utf8_percent_encode(&self.bucket, NAME));
        let what = self.display(name);
        let session = self
            .retried(|| async {
                let mut r = self
                    .request(Method::POST, &url)
                    .await?
                    .query(&[("uploadType", "resumable"), ("name", name)])
                    .json(&serde_json::json!({ "name": name, "contentType": "application/octet-stream" }));
                if let Some(size) = size {
                    r = r.header("X-Upload-Content-Length", size);
                }
                let response = self.send(r, &what).await?;
                response
                    .headers()
                    .get(reqwest::header::LOCATION)
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_string)
                    .ok_or_else(|| Error::other(format!("{what}: the server started no upload session (no Location)")))
            })
            .await?;
        Ok(session)
    }

    /// Sends one chunk of the upload. The last one carries the whole
    /// object's CRC32C, so a server that checks it refuses to finish a wrong
    /// object.
    pub async fn put_chunk(&self, session: &str, name: &str, chunk: Chunk) -> Result<Session> {
        let Chunk { start, body: data, len, total, crc } = chunk;
        let what = self.display(name);
        let range = match (len, total) {
            (0, Some(t)) => format!("bytes */{t}"),
            (_, t) => {
                format!("bytes {start}-{}/{}", start + len - 1, t.map(|t| t.to_string()).unwrap_or_else(|| "*".into()))
            }
        };
        let mut r = self
            .request(Method::PUT, session)
            .await?
            .header(reqwest::header::CONTENT_RANGE, range)
            .header(reqwest::header::CONTENT_LENGTH, len)
            .body(data);
        if let Some(crc) = crc {
            r = r.header("x-goog-hash", format!("crc32c={}", encode_crc(crc)));
        }
        session_state(self.transport(r, &what).await?, &what).await
    }

    /// Asks how much of the upload the server holds.
    pub async fn query(&self, session: &str, name: &str, total: u64) -> Result<Session> {
        let what = self.display(name);
        self.retried(|| async {
            let r = self
                .request(Method::PUT, session)
                .await?
                .header(reqwest::header::CONTENT_RANGE, format!("bytes */{total}"))
                .header(reqwest::header::CONTENT_LENGTH, 0)
                .body(Bytes::new());
            session_state(self.transport(r, &what).await?, &what).await
        })
        .await
    }

    /// Cancels an upload session; its parts are discarded by the server.
    pub async fn cancel(&self, session: &str, name: &str) -> Result<()> {
        let what = self.display(name);
        let response = self.transport(self.request(Method::DELETE, session).await?, &what).await?;
        // GCS answers a cancel with 499; a session already gone is as good.
        match response.status().as_u16() {
            499 | 404 | 410 => Ok(()),
            s if (200..300).contains(&s) => Ok(()),
            _ => Err(status_error(response, &what).await),
        }
    }
}

async fn session_state(response: Response, what: &str) -> Result<Session> {
    match response.status().as_u16() {
        // `Range: bytes=0-N` says what is stored; no Range means nothing is.
        308 => {
            let persisted = response
                .headers()
                .get(reqwest::header::RANGE)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.strip_prefix("bytes=0-"))
                .and_then(|n| n.parse::<u64>().ok())
                .map_or(0, |last| last + 1);
            Ok(Session::Incomplete { persisted })
        }
        200 | 201 => Ok(Session::Done(response.json().await.map_err(|e| transport_error(e, what))?)),
        404 | 410 => Ok(Session::Gone),
        _ => Err(status_error(response, what).await),
    }
}

fn backoff() -> ExponentialBuilder {
    ExponentialBuilder::default()
        .with_min_delay(Duration::from_millis(200))
        .with_max_delay(Duration::from_secs(4))
        .without_max_times()
        .with_jitter()
}

/// A failure to get an answer at all.
pub fn transport_error(e: reqwest::Error, what: &str) -> Error {
    let kind = if e.is_timeout() || e.is_connect() || e.is_request() || e.is_body() {
        ErrorKind::Transient
    } else {
        ErrorKind::Other
    };
    // Without the URL: a session URI authorises its upload.
    let e = e.without_url();
    Error::new(kind, format!("{what}: {e}{}", source_chain(&e)))
}

fn source_chain(e: &dyn std::error::Error) -> String {
    let mut out = String::new();
    let mut next = e.source();
    while let Some(s) = next {
        out.push_str(": ");
        out.push_str(&s.to_string());
        next = s.source();
    }
    out
}

/// An error status, with GCS's own message when it sent one.
pub async fn status_error(response: Response, what: &str) -> Error {
    let status = response.status();
    let kind = match status.as_u16() {
        404 => ErrorKind::NotFound,
        401 | 403 => ErrorKind::PermissionDenied,
        408 | 429 | 500..=599 => ErrorKind::Transient,
        _ => ErrorKind::Other,
    };
    #[derive(Deserialize)]
    struct Body {
        error: Detail,
    }
    #[derive(Deserialize)]
    struct Detail {
        message: String,
    }
    let text = response.text().await.unwrap_or_default();
    let detail = serde_json::from_str::<Body>(&text)
        .map(|b| b.error.message)
        .unwrap_or_else(|_| text.chars().take(200).collect::<String>().trim().to_string());
    let detail = if detail.is_empty() { String::new() } else { format!(": {detail}") };
    Error::new(kind, format!("{what}: HTTP {status}{detail}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The bound runs from the first failure of a streak, not from when the
    /// operation began: an upload that has run longer than the bound must
    /// still be retried when it first fails, and progress starts a new streak.
    #[test]
    fn the_retry_window_is_a_streak_of_failures() {
        let mut retry =
            Retry { failing_since: std::sync::Mutex::new(None), bound: Duration::from_millis(50), pause: FIRST_PAUSE };
        let transient = Error::new(ErrorKind::Transient, "connection reset");
        std::thread::sleep(Duration::from_millis(80));
        assert!(retry.allows(&transient), "a first failure after a long run is retried");
        std::thread::sleep(Duration::from_millis(80));
        assert!(!retry.allows(&transient), "a streak longer than the bound is not");
        retry.progressed();
        assert!(retry.allows(&transient), "progress starts a new streak");
        assert!(!retry.allows(&Error::new(ErrorKind::PermissionDenied, "denied")), "permanent errors never are");
    }
}
