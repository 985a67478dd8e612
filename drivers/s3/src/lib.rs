//! # ferry-driver-s3
//!
//! S3 and S3-compatible storage behind Argo's artifact plugin contract. The
//! configuration takes the fields of Argo's `s3:` artifact block, so an
//! existing block moves into `plugin.configuration` unchanged:
//!
//! ```yaml
//! endpoint: s3.amazonaws.com      # host[:port], no scheme; `insecure: true` for http
//! bucket: my-bucket
//! region: us-east-1
//! accessKeySecret: {name: my-s3, key: accessKey}
//! secretKeySecret: {name: my-s3, key: secretKey}
//! ```
//!
//! Transfers go through the SDK's object_store adapter: single PUT below
//! 16 MiB, parallel multipart above it (part size grows so 10,000 parts reach
//! 5 TiB), uploads of files resumable across processes, streaming both ways.
//! Bucket creation and lifecycle rules go through [`bucket::BucketAdmin`].

pub mod bucket;
pub mod resolve;

use bucket::{BucketAdmin, LifecycleRules};
use ferry_sdk::config::check_header_value;
use ferry_sdk::net::{Connector, NetOptions};
use ferry_sdk::secrets::{Secret, SecretRef, Secrets};
use ferry_sdk::{Error, ObjectStoreDriver, Result, Store, StoreConnector, TransferOptions};
use object_store::ClientOptions;
use object_store::aws::{AmazonS3, AmazonS3Builder, AmazonS3ConfigKey};
use object_store::client::HttpConnector;
use serde::Deserialize;
use std::sync::Arc;

/// Days after which a multipart upload no process resumed is aborted by the
/// lifecycle rule Ferry writes into buckets it creates.
pub const DEFAULT_ABORT_INCOMPLETE_DAYS: u32 = 7;

/// The configuration: Argo's `S3Artifact` fields, plus `addressing` and
/// `abortIncompleteMultipartUploadDays`.
///
/// Layers on this engine (OSS) fill it in code, as
/// `S3Config { bucket, ..Default::default() }`, and hand their own
/// [`Credentials`] to [`S3Config::connect_with`].
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct S3Config {
    /// `host[:port]` of the service (a scheme is accepted and overrides `insecure`).
    #[serde(default)]
    pub endpoint: String,
    /// The bucket.
    pub bucket: String,
    /// The region (`us-east-1` when empty).
    #[serde(default)]
    pub region: String,
    /// Plain http instead of https.
    #[serde(default)]
    pub insecure: bool,
    /// Access key id.
    pub access_key_secret: Option<SecretRef>,
    /// Secret access key.
    pub secret_key_secret: Option<SecretRef>,
    /// Session token (temporary credentials).
    pub session_token_secret: Option<SecretRef>,
    /// Use the environment's credential chain (env, web identity / IRSA, instance metadata).
    #[serde(default, rename = "useSDKCreds")]
    pub use_sdk_creds: bool,
    /// `path` (bucket in the path, the default for custom endpoints) or `virtual` (bucket in the host name).
    pub addressing: Option<Addressing>,
    /// Server-side encryption.
    pub encryption_options: Option<EncryptionOptions>,
    /// A PEM CA certificate (bundle) to trust for the endpoint, from a secret.
    pub ca_secret: Option<SecretRef>,
    /// Create the bucket when it does not exist.
    pub create_bucket_if_not_present: Option<CreateBucketOptions>,
    /// Lifecycle rule written into a bucket this driver creates (0: none).
    pub abort_incomplete_multipart_upload_days: Option<u32>,
    /// Not supported: refused with a clear error.
    #[serde(rename = "roleARN")]
    pub role_arn: Option<String>,
}

/// Who requests are signed as: what a configuration's credential fields
/// resolve to ([`S3Config::credentials`]), or what a layer on this engine
/// brings itself.
#[derive(Clone, Default)]
pub enum Credentials {
    /// Unsigned requests (public buckets).
    #[default]
    Anonymous,
    /// The environment's chain: `AWS_*` variables, web identity (IRSA),
    /// instance metadata.
    Environment,
    /// A key pair, with a session token for temporary credentials. Every
    /// value travels in (or signs) an HTTP header, so whoever builds this
    /// checks them with [`check_header_value`] first.
    Keys {
        /// The access key id.
        access_key_id: String,
        /// The secret access key.
        secret_access_key: String,
        /// The session token of temporary credentials.
        session_token: Option<String>,
    },
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Credentials::Anonymous => f.write_str("Anonymous"),
            Credentials::Environment => f.write_str("Environment"),
            Credentials::Keys { session_token, .. } => {
                write!(f, "Keys(***{})", if session_token.is_some() { ", session token ***" } else { "" })
            }
        }
    }
}

/// `createBucketIfNotPresent`, as in Argo.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct CreateBucketOptions {
    /// Create the bucket with S3 Object Lock enabled.
    #[serde(default)]
    pub object_locking: bool,
}

/// Bucket addressing.
#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Addressing {
    /// `https://endpoint/bucket/key`.
    Path,
    /// `https://bucket.endpoint/key`.
    Virtual,
}

/// `encryptionOptions`, as in Argo.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct EncryptionOptions {
    /// SSE-S3 (or SSE-KMS when `kmsKeyId` is set).
    #[serde(default)]
    pub enable_encryption: bool,
    /// The KMS key for SSE-KMS.
    #[serde(default)]
    pub kms_key_id: String,
    /// Not supported by the underlying client: refused when set.
    #[serde(default)]
    pub kms_encryption_context: String,
    /// SSE-C: a secret holding the 32-byte key, base64-encoded.
    pub server_side_customer_key_secret: Option<SecretRef>,
}

fn unsupported(field: &str, why: &str) -> Error {
    Error::invalid_config(format!("invalid configuration: field `{field}` is not supported by ferry-driver-s3: {why}"))
}

/// A configured S3 bucket: the object store and the bucket-level client.
pub struct Connection {
    /// Objects.
    pub store: Arc<AmazonS3>,
    /// Bucket creation and lifecycle.
    pub admin: BucketAdmin,
    /// Whether this connection created the bucket.
    pub created_bucket: bool,
}

impl Connection {
    /// The SDK's view of this connection.
    pub fn into_store(self) -> Store {
        let bucket = ferry_sdk::shown(self.admin.bucket.name());
        Store::resumable(self.store).labelled(format!("bucket {bucket}"))
    }
}

impl S3Config {
    /// Reads a configuration string.
    pub fn parse(configuration: &str) -> Result<Self> {
        ferry_sdk::config::parse(configuration)
    }

    /// Validates the configuration, resolves its secrets and connects (with
    /// `FERRY_RESOLVE`'s host overrides); creates the bucket, with a rule
    /// aborting forgotten multipart uploads, when asked to.
    pub async fn connect(&self) -> Result<Connection> {
        let credentials = self.credentials().await?;
        let overrides = resolve::Overrides::from_env().map_err(Error::invalid_config)?;
        let connection = self.connect_with(credentials, overrides).await?;
        let rules = self.abort_rule();
        if connection.created_bucket && !rules.is_empty() {
            // A convenience, not the user's request: a server without
            // lifecycle support (s3s-fs, some appliances) still gets its bucket.
            if let Err(e) = connection.admin.put_lifecycle(&rules).await {
                tracing::warn!(error = %e, bucket = %self.bucket, "could not add the rule aborting incomplete multipart uploads");
            }
        }
        Ok(connection)
    }

    fn abort_rule(&self) -> LifecycleRules {
        LifecycleRules {
            abort_incomplete_multipart_days: self
                .abort_incomplete_multipart_upload_days
                .unwrap_or(DEFAULT_ABORT_INCOMPLETE_DAYS),
            infrequent_access_class: "STANDARD_IA",
            ..LifecycleRules::default()
        }
    }

    /// What the credential fields say: both `accessKeySecret` and
    /// `secretKeySecret` (and `sessionTokenSecret`) resolved to keys,
    /// `useSDKCreds` to the environment's chain, none to anonymous requests.
    pub async fn credentials(&self) -> Result<Credentials> {
        self.validate()?;
        let secrets = Secrets::from_env();
        match (&self.access_key_secret, &self.secret_key_secret) {
            (Some(a), Some(s)) => Ok(Credentials::Keys {
                access_key_id: header_secret(&secrets, "accessKeySecret", a).await?.expose().to_string(),
                secret_access_key: header_secret(&secrets, "secretKeySecret", s).await?.expose().to_string(),
                session_token: match &self.session_token_secret {
                    Some(t) => Some(header_secret(&secrets, "sessionTokenSecret", t).await?.expose().to_string()),
                    None => None,
                },
            }),
            (None, None) if self.use_sdk_creds => Ok(Credentials::Environment),
            (None, None) => Ok(Credentials::Anonymous),
            _ => Err(Error::invalid_config(
                "invalid configuration: give both `accessKeySecret` and `secretKeySecret`, or neither",
            )),
        }
    }

    /// Validates, connects as `credentials` (host names resolved through
    /// `overrides` first, if any) and creates the bucket when asked to,
    /// writing no lifecycle rule: the entry for layers on this engine, which
    /// bring their own credentials and rules. The credential fields of this
    /// configuration are not read.
    pub async fn connect_with(
        &self,
        credentials: Credentials,
        overrides: Option<resolve::Overrides>,
    ) -> Result<Connection> {
        self.validate()?;
        let signed = !matches!(credentials, Credentials::Anonymous);
        let (builder, client_options, connector) = self.builder(credentials, overrides).await?;
        let store =
            Arc::new(builder.build().map_err(|e| Error::invalid_config(format!("invalid configuration: {e}")))?);
        let admin = BucketAdmin {
            bucket: self.admin_bucket()?,
            client: connector.connect(&client_options)?,
            credentials: signed.then(|| store.credentials().clone()),
        };
        let mut connection = Connection { store, admin, created_bucket: false };
        if let Some(create) = &self.create_bucket_if_not_present
            && connection.admin.ensure_exists(create.object_locking).await?
        {
            tracing::info!(bucket = %self.bucket, "created bucket");
            connection.created_bucket = true;
        }
        Ok(connection)
    }

    fn endpoint_url(&self) -> String {
        if self.endpoint.is_empty() {
            let region = if self.region.is_empty() { "us-east-1" } else { &self.region };
            format!("https://s3.{region}.amazonaws.com")
        } else if self.endpoint.contains("://") {
            self.endpoint.clone()
        } else {
            format!("{}://{}", if self.insecure { "http" } else { "https" }, self.endpoint)
        }
    }

    fn admin_bucket(&self) -> Result<rusty_s3::Bucket> {
        let url = self.endpoint_url().parse().map_err(|e| Error::invalid_field("endpoint", e))?;
        let style = if self.addressing == Some(Addressing::Virtual) {
            rusty_s3::UrlStyle::VirtualHost
        } else {
            rusty_s3::UrlStyle::Path
        };
        rusty_s3::Bucket::new(url, style, self.bucket.clone(), self.region_or_default().to_string())
            .map_err(|e| Error::invalid_config(format!("invalid configuration: fields `endpoint` and `bucket`: {e}")))
    }

    /// Refuses values that would fail (or panic) inside the HTTP client: a
    /// region, bucket or endpoint with control or non-ASCII characters, and
    /// an endpoint that is more than `[scheme://]host[:port]`. A path there
    /// sent every request elsewhere and Save answered NOT_FOUND.
    fn check_values(&self) -> Result<()> {
        check_header_value("field `region`", &self.region)?;
        check_header_value("field `bucket`", &self.bucket)?;
        if self.bucket.contains(['/', '?', '#', ' ']) {
            return Err(Error::invalid_field("bucket", "a bucket name has no '/', '?', '#' or space"));
        }
        if let Some(e) = &self.encryption_options {
            check_header_value("field `encryptionOptions.kmsKeyId`", &e.kms_key_id)?;
        }
        if self.endpoint.is_empty() {
            return Ok(());
        }
        check_header_value("field `endpoint`", &self.endpoint)?;
        let shown = ferry_sdk::shown(&self.endpoint);
        let url = url::Url::parse(&self.endpoint_url())
            .map_err(|e| Error::invalid_field("endpoint", format!("{shown}: {e}")))?;
        let only_host = url.host_str().is_some_and(|h| !h.is_empty())
            && matches!(url.scheme(), "http" | "https")
            && url.path() == "/"
            && url.query().is_none()
            && url.fragment().is_none()
            && url.username().is_empty()
            && url.password().is_none();
        if !only_host {
            return Err(Error::invalid_field(
                "endpoint",
                format!(
                    "{shown} is not host[:port] (as in Argo): a path, query or credentials there would send every \
                     request elsewhere"
                ),
            ));
        }
        Ok(())
    }

    fn region_or_default(&self) -> &str {
        if self.region.is_empty() { "us-east-1" } else { &self.region }
    }

    /// Refuses what no connection can come of: fields this driver does not
    /// support, a missing bucket, values unfit for an HTTP request.
    fn validate(&self) -> Result<()> {
        if self.role_arn.is_some() {
            return Err(unsupported(
                "roleARN",
                "assume the role outside the driver (IRSA / web identity with useSDKCreds: true)",
            ));
        }
        if self.bucket.is_empty() {
            return Err(Error::missing_field("bucket"));
        }
        if let Some(e) = &self.encryption_options
            && !e.kms_encryption_context.is_empty()
        {
            return Err(unsupported(
                "encryptionOptions.kmsEncryptionContext",
                "set the context through the KMS key policy instead",
            ));
        }
        self.check_values()
    }

    /// The object_store builder, client options and HTTP connector this
    /// configuration, `credentials` and the environment's `FERRY_*_TIMEOUT`s
    /// describe.
    async fn builder(
        &self,
        credentials: Credentials,
        overrides: Option<resolve::Overrides>,
    ) -> Result<(AmazonS3Builder, ClientOptions, Connector)> {
        let secrets = Secrets::from_env();
        // No limit on a whole request: a 20 GiB stream to argo-server or the
        // Complete of a huge upload takes minutes. What fails is a connection
        // that cannot be opened, no answer, or a body that stalls (see
        // ferry_sdk::net for the separate timeouts), and retries end after a
        // bounded wall time.
        let net = NetOptions::from_env()?;
        let mut connector = Connector::new(net);
        let mut options = ClientOptions::new().with_allow_http(true);
        if let Some(ca) = &self.ca_secret {
            let pem = secrets.resolve(ca).await?;
            connector = connector.with_root_certificates(pem.expose().as_bytes(), "field `caSecret`")?;
        }
        if let Some(o) = overrides {
            options = options.with_dns_resolver(Arc::new(o));
        }
        let from_env = self.use_sdk_creds || matches!(credentials, Credentials::Environment);
        let mut b = if from_env { AmazonS3Builder::from_env() } else { AmazonS3Builder::new() };
        b = self.with_location(b.with_bucket_name(&self.bucket).with_region(self.region_or_default()));
        b = match credentials {
            Credentials::Anonymous => b.with_skip_signature(true),
            Credentials::Environment => b,
            Credentials::Keys { access_key_id, secret_access_key, session_token } => {
                let b = b.with_access_key_id(access_key_id).with_secret_access_key(secret_access_key);
                match session_token {
                    Some(t) => b.with_token(t),
                    None => b,
                }
            }
        };
        b = self.with_encryption(b, &secrets).await?;
        b = b
            .with_client_options(options.clone())
            .with_retry(net.retry_config())
            .with_http_connector(connector.clone());
        Ok((b, options, connector))
    }

    /// `b` pointed at the configured endpoint, if any, in the configured addressing style.
    fn with_location(&self, b: AmazonS3Builder) -> AmazonS3Builder {
        if self.endpoint.is_empty() {
            return b;
        }
        let url = self.endpoint_url();
        let virtual_hosted = self.addressing == Some(Addressing::Virtual);
        let b = b.with_virtual_hosted_style_request(virtual_hosted);
        if virtual_hosted {
            // object_store expects the bucket in a virtual-hosted endpoint.
            let (scheme, host) = url.split_once("://").unwrap_or(("https", &url));
            b.with_endpoint(format!("{scheme}://{}.{host}", self.bucket))
        } else {
            b.with_endpoint(url)
        }
    }

    /// `b` with the configured server-side encryption, if any.
    async fn with_encryption(&self, b: AmazonS3Builder, secrets: &Secrets) -> Result<AmazonS3Builder> {
        let Some(e) = &self.encryption_options else { return Ok(b) };
        Ok(if let Some(k) = &e.server_side_customer_key_secret {
            b.with_ssec_encryption(
                header_secret(secrets, "encryptionOptions.serverSideCustomerKeySecret", k).await?.expose(),
            )
        } else if e.enable_encryption && !e.kms_key_id.is_empty() {
            b.with_sse_kms_encryption(&e.kms_key_id)
        } else if e.enable_encryption {
            b.with_config(
                "aws_server_side_encryption".parse::<AmazonS3ConfigKey>().map_err(|e| Error::other(e.to_string()))?,
                "AES256",
            )
        } else {
            b
        })
    }
}

/// The value of the secret `r` names in `field`, which travels in (or
/// signs) an HTTP header.
async fn header_secret(secrets: &Secrets, field: &str, r: &SecretRef) -> Result<Secret> {
    let value = secrets.resolve(r).await?;
    check_header_value(&format!("field `{field}` ({r})"), value.expose())?;
    Ok(value)
}

/// Builds an S3 store from a configuration string.
#[derive(Clone, Copy, Debug, Default)]
pub struct S3Stores;

impl StoreConnector for S3Stores {
    async fn connect(&self, configuration: &str) -> Result<Store> {
        Ok(S3Config::parse(configuration)?.connect().await?.into_store())
    }
}

/// The S3 driver, ready for [`ferry_sdk::run`]. Transfer tuning comes from the
/// environment (see [`TransferOptions::from_env`]).
pub fn driver() -> Result<ObjectStoreDriver<S3Stores>> {
    Ok(ObjectStoreDriver::new(S3Stores).with_options(TransferOptions::from_env()?))
}
