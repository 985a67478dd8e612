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
//! 5 TiB), multipart aborted on failure, streaming both ways.

use ferry_sdk::config::{SecretRef, Secrets};
use ferry_sdk::{Error, ObjectStoreDriver, Result, StoreBuilder, TransferOptions};
use object_store::ObjectStore;
use object_store::aws::{AmazonS3Builder, AmazonS3ConfigKey};
use serde::Deserialize;
use std::sync::Arc;

/// The configuration: Argo's `S3Artifact` fields, plus `addressing`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct S3Config {
    /// `host[:port]` of the service (a scheme is accepted and overrides `insecure`).
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
    /// Not supported yet: refused with a clear error.
    #[serde(rename = "roleARN")]
    pub role_arn: Option<String>,
    /// Not supported yet: refused with a clear error.
    pub create_bucket_if_not_present: Option<serde::de::IgnoredAny>,
    /// Not supported yet: refused with a clear error.
    pub ca_secret: Option<SecretRef>,
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

fn unsupported(field: &str) -> Error {
    Error::invalid_config(format!("invalid configuration: field `{field}` is not supported by ferry-driver-s3 yet"))
}

/// Builds an S3 store from a configuration string.
#[derive(Clone, Copy, Debug, Default)]
pub struct S3Stores;

impl S3Stores {
    /// Parses and validates a configuration, resolving its secrets.
    pub fn builder(configuration: &str) -> Result<AmazonS3Builder> {
        let c: S3Config = ferry_sdk::config::parse(configuration)?;
        if c.role_arn.is_some() {
            return Err(unsupported("roleARN"));
        }
        if c.create_bucket_if_not_present.is_some() {
            return Err(unsupported("createBucketIfNotPresent"));
        }
        if c.ca_secret.is_some() {
            return Err(unsupported("caSecret"));
        }
        if c.bucket.is_empty() {
            return Err(Error::invalid_config("invalid configuration: field `bucket` is required"));
        }
        let secrets = Secrets::from_env();
        let mut b = if c.use_sdk_creds { AmazonS3Builder::from_env() } else { AmazonS3Builder::new() };
        b = b.with_bucket_name(&c.bucket).with_region(if c.region.is_empty() { "us-east-1" } else { &c.region });
        if !c.endpoint.is_empty() {
            let url = if c.endpoint.contains("://") {
                c.endpoint.clone()
            } else {
                format!("{}://{}", if c.insecure { "http" } else { "https" }, c.endpoint)
            };
            b = b.with_endpoint(url).with_allow_http(true);
            let virtual_hosted = c.addressing == Some(Addressing::Virtual);
            b = b.with_virtual_hosted_style_request(virtual_hosted);
            if virtual_hosted {
                // object_store expects the bucket in a virtual-hosted endpoint.
                let scheme_end = c.endpoint.find("://").map(|i| i + 3);
                let url = match scheme_end {
                    Some(i) => format!("{}{}.{}", &c.endpoint[..i], c.bucket, &c.endpoint[i..]),
                    None => format!("{}://{}.{}", if c.insecure { "http" } else { "https" }, c.bucket, c.endpoint),
                };
                b = b.with_endpoint(url);
            }
        }
        match (&c.access_key_secret, &c.secret_key_secret) {
            (Some(a), Some(s)) => {
                b = b
                    .with_access_key_id(secrets.resolve(a)?.expose())
                    .with_secret_access_key(secrets.resolve(s)?.expose());
                if let Some(t) = &c.session_token_secret {
                    b = b.with_token(secrets.resolve(t)?.expose());
                }
            }
            (None, None) if c.use_sdk_creds => {}
            (None, None) => b = b.with_skip_signature(true),
            _ => {
                return Err(Error::invalid_config(
                    "invalid configuration: give both `accessKeySecret` and `secretKeySecret`, or neither",
                ));
            }
        }
        if let Some(e) = &c.encryption_options {
            if !e.kms_encryption_context.is_empty() {
                return Err(unsupported("encryptionOptions.kmsEncryptionContext"));
            }
            if let Some(k) = &e.server_side_customer_key_secret {
                b = b.with_ssec_encryption(secrets.resolve(k)?.expose());
            } else if e.enable_encryption && !e.kms_key_id.is_empty() {
                b = b.with_sse_kms_encryption(&e.kms_key_id);
            } else if e.enable_encryption {
                b = b.with_config(
                    "aws_server_side_encryption"
                        .parse::<AmazonS3ConfigKey>()
                        .map_err(|e| Error::other(e.to_string()))?,
                    "AES256",
                );
            }
        }
        Ok(b)
    }
}

impl StoreBuilder for S3Stores {
    async fn build(&self, configuration: &str) -> Result<Arc<dyn ObjectStore>> {
        let store = S3Stores::builder(configuration)?
            .build()
            .map_err(|e| Error::invalid_config(format!("invalid configuration: {e}")))?;
        Ok(Arc::new(store))
    }
}

/// The S3 driver, ready for [`ferry_sdk::run`].
pub fn driver() -> ObjectStoreDriver<S3Stores> {
    ObjectStoreDriver::new(S3Stores).with_options(TransferOptions::default())
}
