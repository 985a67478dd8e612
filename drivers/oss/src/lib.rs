//! # ferry-driver-oss
//!
//! Alibaba Cloud OSS behind Argo's artifact plugin contract, through OSS's
//! S3-compatible API with virtual-hosted addressing (the only style OSS
//! accepts). The configuration takes the fields of Argo's `oss:` artifact
//! block; the engine — resumable parallel multipart, streaming, directories —
//! is ferry-driver-s3's.
//!
//! ```yaml
//! endpoint: oss-cn-hangzhou.aliyuncs.com
//! bucket: my-bucket
//! accessKeySecret: {name: my-oss, key: accessKey}
//! secretKeySecret: {name: my-oss, key: secretKey}
//! lifecycleRule: {markInfrequentAccessAfterDays: 30, markDeletionAfterDays: 90}
//! ```

use ferry_driver_s3::bucket::LifecycleRules;
use ferry_driver_s3::{Addressing, CreateBucketOptions, DEFAULT_ABORT_INCOMPLETE_DAYS, S3Config};
use ferry_sdk::secrets::SecretRef;
use ferry_sdk::{Error, ObjectStoreDriver, Result, Store, StoreConnector, TransferOptions};
use serde::Deserialize;

/// The configuration: Argo's `OSSArtifact` fields, plus `region`, `insecure`
/// and `abortIncompleteMultipartUploadDays`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct OssConfig {
    /// `oss-<region>.aliyuncs.com` (or `-internal`), optionally with a scheme.
    pub endpoint: String,
    /// The bucket.
    pub bucket: String,
    /// AccessKey ID.
    pub access_key_secret: Option<SecretRef>,
    /// AccessKey secret.
    pub secret_key_secret: Option<SecretRef>,
    /// An STS security token, as a plain value (as in Argo).
    #[serde(default)]
    pub security_token: String,
    /// Create the bucket when it does not exist.
    #[serde(default)]
    pub create_bucket_if_not_present: bool,
    /// Bucket lifecycle rule, written on every configuration (as Argo does).
    pub lifecycle_rule: Option<LifecycleRule>,
    /// Credentials from the environment (`ALIBABA_CLOUD_ACCESS_KEY_ID`,
    /// `ALIBABA_CLOUD_ACCESS_KEY_SECRET`, `ALIBABA_CLOUD_SECURITY_TOKEN`).
    #[serde(default, rename = "useSDKCreds")]
    pub use_sdk_creds: bool,
    /// The signing region; derived from the endpoint (`oss-cn-hangzhou` →
    /// `cn-hangzhou`) when empty.
    #[serde(default)]
    pub region: String,
    /// Plain http when the endpoint has no scheme.
    #[serde(default)]
    pub insecure: bool,
    /// Days after which an unfinished multipart upload is aborted, in the
    /// rules this driver writes (default 7; 0: no such rule).
    pub abort_incomplete_multipart_upload_days: Option<u32>,
}

/// `lifecycleRule`, as in Argo.
#[derive(Clone, Copy, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct LifecycleRule {
    /// Move objects to the IA storage class after this many days (0: never).
    #[serde(default)]
    pub mark_infrequent_access_after_days: u32,
    /// Delete objects after this many days (0: never).
    #[serde(default)]
    pub mark_deletion_after_days: u32,
}

impl OssConfig {
    /// Reads and validates a configuration string.
    pub fn parse(configuration: &str) -> Result<Self> {
        let c: OssConfig = ferry_sdk::config::parse(configuration)?;
        if let Some(r) = c.lifecycle_rule
            && r.mark_infrequent_access_after_days > 0
            && r.mark_deletion_after_days > 0
            && r.mark_infrequent_access_after_days >= r.mark_deletion_after_days
        {
            return Err(Error::invalid_field(
                "lifecycleRule",
                format!(
                    "markInfrequentAccessAfterDays ({}) must be less than markDeletionAfterDays ({})",
                    r.mark_infrequent_access_after_days, r.mark_deletion_after_days
                ),
            ));
        }
        if c.endpoint.is_empty() {
            return Err(Error::missing_field("endpoint"));
        }
        Ok(c)
    }

    /// The signing region.
    pub fn region(&self) -> String {
        if !self.region.is_empty() {
            return self.region.clone();
        }
        let host = self.endpoint.split("://").last().unwrap_or_default();
        let first = host.split(['.', ':']).next().unwrap_or_default();
        first.strip_prefix("oss-").unwrap_or(first).trim_end_matches("-internal").to_string()
    }

    /// The same bucket described for the S3 engine.
    pub fn to_s3(&self) -> Result<S3Config> {
        let mut s3: S3Config = ferry_sdk::config::parse("{bucket: placeholder}")?;
        s3.endpoint = self.endpoint.clone();
        s3.bucket = self.bucket.clone();
        s3.region = self.region();
        s3.insecure = self.insecure;
        s3.addressing = Some(Addressing::Virtual);
        s3.create_bucket_if_not_present = self.create_bucket_if_not_present.then(CreateBucketOptions::default);
        s3.abort_incomplete_multipart_upload_days = Some(0);
        if self.use_sdk_creds && self.access_key_secret.is_none() {
            // OSS's own variable names; the S3 engine reads AWS's.
            let var = |n: &str| std::env::var(n).ok().filter(|v| !v.is_empty());
            let (Some(id), Some(secret)) = (var("ALIBABA_CLOUD_ACCESS_KEY_ID"), var("ALIBABA_CLOUD_ACCESS_KEY_SECRET"))
            else {
                return Err(Error::invalid_config(
                    "invalid configuration: `useSDKCreds: true` needs ALIBABA_CLOUD_ACCESS_KEY_ID and ALIBABA_CLOUD_ACCESS_KEY_SECRET in the driver's environment",
                ));
            };
            s3.static_credentials = Some((id, secret));
            s3.session_token = var("ALIBABA_CLOUD_SECURITY_TOKEN");
        } else {
            s3.access_key_secret = self.access_key_secret.clone();
            s3.secret_key_secret = self.secret_key_secret.clone();
            if !self.security_token.is_empty() {
                s3.session_token = Some(self.security_token.clone());
            }
        }
        Ok(s3)
    }

    /// The rules this configuration asks for.
    pub fn lifecycle(&self) -> LifecycleRules {
        let rule = self.lifecycle_rule.unwrap_or_default();
        LifecycleRules {
            abort_incomplete_multipart_days: self
                .abort_incomplete_multipart_upload_days
                .unwrap_or(DEFAULT_ABORT_INCOMPLETE_DAYS),
            infrequent_access_after_days: (rule.mark_infrequent_access_after_days > 0)
                .then_some(rule.mark_infrequent_access_after_days),
            delete_after_days: (rule.mark_deletion_after_days > 0).then_some(rule.mark_deletion_after_days),
            // OSS maps S3's STANDARD_IA to its IA class.
            infrequent_access_class: "STANDARD_IA",
        }
    }
}

/// Builds OSS stores from configuration strings.
#[derive(Clone, Copy, Debug, Default)]
pub struct OssStores;

impl StoreConnector for OssStores {
    async fn connect(&self, configuration: &str) -> Result<Store> {
        let oss = OssConfig::parse(configuration)?;
        let connection = oss.to_s3()?.open().await?;
        let rules = oss.lifecycle();
        if (oss.lifecycle_rule.is_some() || connection.created_bucket) && !rules.is_empty() {
            connection.admin.put_lifecycle(&rules).await?;
        }
        Ok(connection.into_store())
    }
}

/// The OSS driver, ready for [`ferry_sdk::run`].
pub fn driver() -> Result<ObjectStoreDriver<OssStores>> {
    Ok(ObjectStoreDriver::new(OssStores).with_options(TransferOptions::from_env()?))
}
