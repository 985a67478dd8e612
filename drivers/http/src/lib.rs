//! # ferry-driver-http
//!
//! Argo's `http:` artifact behind the plugin contract: Load and OpenStream
//! GET the configured `url`, streaming; Save and SaveStream PUT to it.
//! Configuration mirrors Argo's block: `url`, `headers`, and
//! `auth.basicAuth` with `usernameSecret` / `passwordSecret`. The key only
//! names the object for listings (Ferry's executor sets it to the URL's last
//! path segment); the URL is the location.
//!
//! With `repoURL` in place of `url`, the configuration names a repository
//! instead of one object, as Argo's Artifactory repository does: each key is
//! the object at `{repoURL}/{key}` (every segment percent-encoded), so one
//! configuration serves many artifacts, key-only ones included, on any
//! server that accepts PUT (Artifactory, Nexus raw, WebDAV, nginx `dav`).
//!
//! A URL is never a directory, listing is empty, and Delete is refused:
//! Argo's HTTP artifacts have no garbage collection either. Of Ferry's
//! ObjectService only sizes are served (a HEAD's `Content-Length`); ranges
//! are not.

use ferry_sdk::secrets::{SecretRef, Secrets};
use ferry_sdk::{ArtifactKey, ByteStream, Capabilities, Driver, Error, ErrorKind, Result};
use futures::{StreamExt, TryStreamExt};
use serde::Deserialize;

/// The driver's configuration, as in Argo's `http:` block.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct HttpConfig {
    /// The object's URL; the key is not part of it.
    #[serde(default)]
    pub url: Option<String>,
    /// A repository's URL; each key is the object under it.
    #[serde(default, rename = "repoURL")]
    pub repo_url: Option<String>,
    /// Extra request headers.
    #[serde(default)]
    pub headers: Vec<Header>,
    /// Credentials.
    pub auth: Option<Auth>,
}

/// One request header.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Header {
    /// Its name.
    pub name: String,
    /// Its value.
    pub value: String,
}

/// `auth:` of the block.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Auth {
    /// HTTP basic authentication.
    pub basic_auth: Option<BasicAuth>,
}

/// `auth.basicAuth`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct BasicAuth {
    /// The user name's secret.
    pub username_secret: SecretRef,
    /// The password's secret.
    pub password_secret: SecretRef,
}

/// A configured request target.
pub struct Target {
    url: reqwest::Url,
    /// `url` is a repository: the key's segments are appended to it.
    keyed: bool,
    headers: reqwest::header::HeaderMap,
    basic: Option<(String, String)>,
}

/// The HTTP driver.
pub struct HttpDriver {
    client: reqwest::Client,
}

impl Default for HttpDriver {
    fn default() -> Self {
        // A sidecar's bursts (Argo's parallel step outputs) would otherwise
        // leave one idle connection per request in the pool for 90 s.
        let client = reqwest::Client::builder()
            .pool_max_idle_per_host(4)
            .pool_idle_timeout(std::time::Duration::from_secs(30))
            .build()
            .unwrap_or_default();
        HttpDriver { client }
    }
}

fn status_error(url: &reqwest::Url, status: reqwest::StatusCode) -> Error {
    let kind = match status.as_u16() {
        404 | 410 => ErrorKind::NotFound,
        401 | 403 => ErrorKind::PermissionDenied,
        408 | 429 | 500..=599 => ErrorKind::Transient,
        _ => ErrorKind::Other,
    };
    Error::new(kind, format!("{}: HTTP {status}", shown(url)))
}

/// The URL without its query, for messages: signed URLs carry credentials there.
fn shown(url: &reqwest::Url) -> reqwest::Url {
    let mut shown = url.clone();
    shown.set_query(None);
    shown
}

fn request_error(e: reqwest::Error) -> Error {
    let kind = if e.is_timeout() || e.is_connect() { ErrorKind::Transient } else { ErrorKind::Other };
    Error::new(kind, e.without_url().to_string())
}

impl Target {
    /// The object's URL: the configured one, or the key under the repository.
    fn url(&self, key: &ArtifactKey) -> Result<reqwest::Url> {
        if !self.keyed {
            return Ok(self.url.clone());
        }
        if key.as_str().is_empty() {
            return Err(Error::invalid_argument("an empty key names no object under repoURL"));
        }
        let mut url = self.url.clone();
        url.path_segments_mut()
            .map_err(|()| Error::invalid_field("repoURL", "cannot be a base URL"))?
            .pop_if_empty()
            .extend(key.as_str().split('/'));
        Ok(url)
    }
}

impl HttpDriver {
    fn request(&self, method: reqwest::Method, t: &Target, url: reqwest::Url) -> reqwest::RequestBuilder {
        let mut r = self.client.request(method, url).headers(t.headers.clone());
        if let Some((user, password)) = &t.basic {
            r = r.basic_auth(user, Some(password));
        }
        r
    }
}

impl Driver for HttpDriver {
    type Target = Target;

    async fn connect(&self, configuration: &str) -> Result<Target> {
        let c: HttpConfig = ferry_sdk::config::parse(configuration)?;
        let (field, raw, keyed) = match (&c.url, &c.repo_url) {
            (Some(url), None) => ("url", url, false),
            (None, Some(repo)) => ("repoURL", repo, true),
            (Some(_), Some(_)) => {
                return Err(Error::invalid_field(
                    "repoURL",
                    "give `url` (one object) or `repoURL` (keys under it), not both",
                ));
            }
            (None, None) => return Err(Error::invalid_field("url", "missing: give `url` or `repoURL`")),
        };
        let url = reqwest::Url::parse(raw).map_err(|e| Error::invalid_field(field, e))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(Error::invalid_field(field, "only http and https are supported"));
        }
        if keyed && (url.query().is_some() || url.fragment().is_some()) {
            return Err(Error::invalid_field(
                field,
                "a repository URL takes no query or fragment: keys are appended to its path",
            ));
        }
        let mut headers = reqwest::header::HeaderMap::new();
        for (i, h) in c.headers.iter().enumerate() {
            let bad = |what: &str| Error::invalid_field(&format!("headers[{i}]"), format!("invalid header {what}"));
            let name = reqwest::header::HeaderName::from_bytes(h.name.as_bytes()).map_err(|_| bad("name"))?;
            let value = reqwest::header::HeaderValue::from_str(&h.value).map_err(|_| bad("value"))?;
            headers.append(name, value);
        }
        let basic = match c.auth.and_then(|a| a.basic_auth) {
            Some(b) => {
                let secrets = Secrets::from_env();
                Some((
                    secrets.resolve(&b.username_secret).await?.expose().to_string(),
                    secrets.resolve(&b.password_secret).await?.expose().to_string(),
                ))
            }
            None => None,
        };
        Ok(Target { url, keyed, headers, basic })
    }

    fn capabilities(&self) -> Capabilities {
        let mut c = Capabilities::default();
        c.directories = false;
        c
    }

    async fn open_stream(&self, t: &Target, key: &ArtifactKey) -> Result<ByteStream> {
        let url = t.url(key)?;
        let response = self.request(reqwest::Method::GET, t, url.clone()).send().await.map_err(request_error)?;
        if !response.status().is_success() {
            return Err(status_error(&url, response.status()));
        }
        Ok(response.bytes_stream().map_err(request_error).boxed())
    }

    /// The `Content-Length` of a HEAD of the URL; Unsupported when the server
    /// sends none (a chunked answer). `open_range` keeps the SDK's default,
    /// Unsupported: a server may ignore `Range` and send the whole body, and
    /// Argo's HTTP artifacts promise nothing about it.
    async fn size(&self, t: &Target, key: &ArtifactKey) -> Result<u64> {
        let url = t.url(key)?;
        let response = self.request(reqwest::Method::HEAD, t, url.clone()).send().await.map_err(request_error)?;
        if !response.status().is_success() {
            return Err(status_error(&url, response.status()));
        }
        // The header, not `content_length()`: for a HEAD that is the empty body's.
        let length = response.headers().get(reqwest::header::CONTENT_LENGTH);
        length
            .and_then(|v| v.to_str().ok()?.parse().ok())
            .ok_or_else(|| Error::unsupported(format!("{}: the server tells no Content-Length for it", shown(&url))))
    }

    async fn save_stream(&self, t: &Target, key: &ArtifactKey, data: ByteStream) -> Result<()> {
        let url = t.url(key)?;
        let body = reqwest::Body::wrap_stream(data);
        let response =
            self.request(reqwest::Method::PUT, t, url.clone()).body(body).send().await.map_err(request_error)?;
        if !response.status().is_success() {
            return Err(status_error(&url, response.status()));
        }
        Ok(())
    }

    async fn delete_object(&self, _t: &Target, _key: &ArtifactKey) -> Result<()> {
        Err(Error::new(ErrorKind::Unsupported, "http artifacts cannot be deleted (Argo has no GC for them either)"))
    }

    async fn list(&self, _t: &Target, _key: &ArtifactKey) -> Result<Vec<ArtifactKey>> {
        Ok(Vec::new())
    }
}
