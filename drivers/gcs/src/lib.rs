//! # ferry-driver-gcs
//!
//! Google Cloud Storage as an Argo artifact driver, over GCS's JSON API.
//!
//! Configuration mirrors Argo's `gcs:` artifact (`bucket`,
//! `serviceAccountKeySecret`; the key travels separately), plus `endpoint`
//! for emulators and private endpoints and `anonymous` for public buckets.
//! Without a key, application default credentials are used, as Argo does:
//! GKE workload identity, `GOOGLE_APPLICATION_CREDENTIALS`, the metadata
//! server.
//!
//! Transfers: files over the multipart threshold go up through resumable
//! sessions journaled in the bucket, so a killed upload continues where it
//! stopped, from any process ([`upload`]); large downloads come down in
//! parallel ranges pinned to the object's generation; every transfer ends
//! with a whole-object CRC32C check. Requests that are safe to repeat are
//! retried on transient failures only (408, 429, 5xx, lost connections).
//!
//! Ferry's `ferry.v1.ObjectService` is served too: Stat from the object's
//! metadata, ReadRange as a ranged media read pinned to one generation.

pub mod api;
pub mod auth;
mod download;
pub mod upload;

use api::{Api, DEFAULT_ENDPOINT};
use auth::Auth;
use ferry_sdk::net::NetOptions;
use ferry_sdk::secrets::{SecretRef, Secrets};
use ferry_sdk::{
    ArtifactKey, ByteStream, DeleteTarget, Driver, Error, ErrorKind, Result, TransferOptions, store::UPLOADS_PREFIX,
};
use futures::{StreamExt, TryStreamExt};
use serde::Deserialize;
use std::path::Path;
use std::time::Duration;

/// The environment variable Google's client libraries read for an emulator's
/// `host:port`; when set and no `endpoint` is configured, requests go there
/// over plain HTTP without credentials, as those libraries do.
pub const EMULATOR_HOST_ENV: &str = "STORAGE_EMULATOR_HOST";

/// The driver's configuration: Argo's `gcs:` block and Ferry's additions.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct GcsConfig {
    /// The bucket.
    pub bucket: String,
    /// A secret holding a service-account JSON key. Without it, application
    /// default credentials are used (unless `anonymous`).
    pub service_account_key_secret: Option<SecretRef>,
    /// Ferry: the API's base URL, for emulators and private endpoints
    /// (`http://127.0.0.1:4443`, `https://storage-foo.p.googleapis.com`).
    pub endpoint: Option<String>,
    /// Ferry: send no credentials (public buckets, emulators).
    #[serde(default)]
    pub anonymous: bool,
}

/// One configured bucket.
pub struct Bucket {
    api: Api,
}

impl Bucket {
    /// The JSON API client, for tests and tools.
    pub fn api(&self) -> &Api {
        &self.api
    }
}

/// The GCS driver.
pub struct GcsDriver {
    http: reqwest::Client,
    net: NetOptions,
    options: TransferOptions,
}

/// The driver with transfer options from the environment (`FERRY_PART_SIZE`
/// and friends) and the network timeouts and retry bound from
/// `FERRY_CONNECT_TIMEOUT`, `FERRY_FIRST_BYTE_TIMEOUT`, `FERRY_READ_TIMEOUT`
/// and `FERRY_RETRY_TIMEOUT` (see [`ferry_sdk::net`]).
pub fn driver() -> Result<GcsDriver> {
    let net = NetOptions::from_env()?;
    // No read timeout here: ferry_sdk::net applies the first-byte timeout
    // to the wait for an answer and the idle one to the body, apart.
    let http = reqwest::Client::builder()
        // Resumable sessions answer 308 without a Location: not a redirect.
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(net.connect_timeout)
        // Bursts (32 parallel Saves) would otherwise leave every connection
        // they opened idle in the pool for 90 s.
        .pool_max_idle_per_host(8)
        .pool_idle_timeout(Duration::from_secs(30))
        .build()
        .map_err(|e| Error::other(format!("building the HTTP client: {e}")))?;
    Ok(GcsDriver { http, net, options: TransferOptions::from_env()? })
}

/// The object name of `key`; the journal prefix is reserved.
fn object_name(key: &ArtifactKey) -> Result<&str> {
    let name = key.as_str();
    if name == UPLOADS_PREFIX || name.starts_with(&format!("{UPLOADS_PREFIX}/")) {
        return Err(Error::new(
            ErrorKind::InvalidArgument,
            format!("key {name:?}: `{UPLOADS_PREFIX}/` is reserved for Ferry's upload journals"),
        ));
    }
    Ok(name)
}

fn base_url(config: &GcsConfig) -> Result<(String, bool)> {
    let bad = |why: String| Error::invalid_field("endpoint", why);
    let (raw, emulator) = match (&config.endpoint, std::env::var(EMULATOR_HOST_ENV)) {
        (Some(e), _) => (e.clone(), false),
        (None, Ok(host)) if !host.is_empty() => {
            (if host.contains("://") { host } else { format!("http://{host}") }, true)
        }
        _ => (DEFAULT_ENDPOINT.to_string(), false),
    };
    let url = reqwest::Url::parse(&raw).map_err(|e| bad(format!("{} is not a URL ({e})", ferry_sdk::shown(&raw))))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(bad(format!("{}: only http and https are supported", ferry_sdk::shown(&raw))));
    }
    if url.query().is_some() {
        return Err(bad(format!("{}: no query string allowed", ferry_sdk::shown(&raw))));
    }
    Ok((raw.trim_end_matches('/').to_string(), emulator))
}

impl Driver for GcsDriver {
    type Target = Bucket;

    async fn connect(&self, configuration: &str) -> Result<Bucket> {
        let config: GcsConfig = ferry_sdk::config::parse(configuration)?;
        if config.bucket.is_empty() {
            return Err(Error::invalid_field("bucket", "must not be empty"));
        }
        let (base, emulator) = base_url(&config)?;
        let auth = match (&config.service_account_key_secret, config.anonymous || emulator) {
            (Some(r), _) => {
                let key = Secrets::from_env().resolve(r).await?;
                Auth::service_account(key.expose(), "serviceAccountKeySecret")?
            }
            (None, true) => Auth::Anonymous,
            (None, false) => Auth::application_default()?,
        };
        Ok(Bucket { api: Api::new(self.http.clone(), base, config.bucket, auth).with_net(self.net) })
    }

    async fn open_stream(&self, b: &Bucket, key: &ArtifactKey) -> Result<ByteStream> {
        let name = object_name(key.require_object("open")?)?;
        let response = b.api.read(name, None, None).await?;
        let expected = api::header_crc(&response);
        Ok(upload::checked_stream(response, expected, b.api.display(name)))
    }

    async fn save_stream(&self, b: &Bucket, key: &ArtifactKey, data: ByteStream) -> Result<()> {
        let name = object_name(key.require_object("save")?)?;
        upload::save_stream(&b.api, name, data, &self.options).await
    }

    async fn delete_object(&self, b: &Bucket, key: &ArtifactKey) -> Result<()> {
        let name = object_name(key.require_object("delete")?)?;
        b.api.delete(name).await
    }

    async fn list(&self, b: &Bucket, key: &ArtifactKey) -> Result<Vec<ArtifactKey>> {
        let prefix = if key.is_root() { String::new() } else { format!("{}/", key.as_str()) };
        let names = b.api.list(&prefix).await?;
        names
            .iter()
            // Journals are Ferry's bookkeeping, and `dir/` markers (written by
            // consoles and gsutil) are not objects of the artifact.
            .filter(|n| !n.starts_with(&format!("{UPLOADS_PREFIX}/")) && !n.ends_with('/'))
            .map(|n| ArtifactKey::parse(n))
            .collect()
    }

    /// The JSON API's object metadata: one small request, no media read.
    async fn size(&self, b: &Bucket, key: &ArtifactKey) -> Result<u64> {
        let name = object_name(key.require_object("stat")?)?;
        match b.api.stat(name).await? {
            Some(meta) => Ok(meta.size),
            None => Err(Error::not_found(format!("{}: no such object", b.api.display(name)))),
        }
    }

    /// A ranged media read of the generation the range was clamped against.
    async fn open_range(&self, b: &Bucket, key: &ArtifactKey, range: std::ops::Range<u64>) -> Result<ByteStream> {
        let name = object_name(key.require_object("read a range")?)?;
        download::read_range(&b.api, name, range).await
    }

    async fn exists(&self, b: &Bucket, key: &ArtifactKey) -> Result<bool> {
        if key.is_root() {
            return Ok(false);
        }
        Ok(b.api.stat(object_name(key)?).await?.is_some())
    }

    async fn delete(&self, b: &Bucket, key: &ArtifactKey, target: DeleteTarget) -> Result<()> {
        let name = object_name(key.require_object("delete")?)?;
        // Unfinished uploads first, so none completes after its artifact is gone.
        upload::abort_deleted(&b.api, name, target).await?;
        match target {
            DeleteTarget::Object => b.api.delete(name).await,
            DeleteTarget::Directory => {
                let children = self.list(b, key).await?;
                futures::stream::iter(children)
                    .map(|child| async move { b.api.delete(child.as_str()).await })
                    .buffer_unordered(16)
                    .try_collect::<()>()
                    .await
            }
        }
    }

    async fn save_file(&self, b: &Bucket, key: &ArtifactKey, src: &Path) -> Result<()> {
        let name = object_name(key.require_object("save")?)?;
        let report = upload::save_file(&b.api, name, src, &self.options).await?;
        if report.resumed_bytes > 0 {
            tracing::info!(object = %b.api.display(name), resumed = report.resumed_bytes, sent = report.sent_bytes, "resumed an interrupted upload");
        }
        Ok(())
    }

    async fn load_file(&self, b: &Bucket, key: &ArtifactKey, dst: &Path) -> Result<()> {
        let name = object_name(key.require_object("load")?)?;
        download::load_file(&b.api, name, dst, &self.options).await
    }
}
