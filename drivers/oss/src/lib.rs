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
use ferry_driver_s3::{Addressing, CreateBucketOptions, Credentials, DEFAULT_ABORT_INCOMPLETE_DAYS, S3Config};
use ferry_sdk::config::check_header_value;
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

    /// The same bucket described for the S3 engine: virtual-hosted (the only
    /// style OSS accepts), writing no lifecycle rule of its own (OSS writes
    /// [`OssConfig::lifecycle`]). Its credential fields are the
    /// configuration's secret references; [`OssConfig::credentials`] says who
    /// requests are signed as.
    pub fn to_s3(&self) -> S3Config {
        S3Config {
            endpoint: self.endpoint.clone(),
            bucket: self.bucket.clone(),
            region: self.region(),
            insecure: self.insecure,
            access_key_secret: self.access_key_secret.clone(),
            secret_key_secret: self.secret_key_secret.clone(),
            addressing: Some(Addressing::Virtual),
            create_bucket_if_not_present: self.create_bucket_if_not_present.then(CreateBucketOptions::default),
            abort_incomplete_multipart_upload_days: Some(0),
            ..S3Config::default()
        }
    }

    /// Who requests are signed as: with `useSDKCreds` and no key secrets,
    /// OSS's own environment variables (the S3 engine's chain reads AWS's);
    /// else the key secrets, with `securityToken` as the session token.
    pub async fn credentials(&self) -> Result<Credentials> {
        if self.use_sdk_creds && self.access_key_secret.is_none() {
            let var = |n: &str| std::env::var(n).ok().filter(|v| !v.is_empty());
            let (Some(id), Some(secret)) = (var("ALIBABA_CLOUD_ACCESS_KEY_ID"), var("ALIBABA_CLOUD_ACCESS_KEY_SECRET"))
            else {
                return Err(Error::invalid_config(
                    "invalid configuration: `useSDKCreds: true` needs ALIBABA_CLOUD_ACCESS_KEY_ID and ALIBABA_CLOUD_ACCESS_KEY_SECRET in the driver's environment",
                ));
            };
            let token = var("ALIBABA_CLOUD_SECURITY_TOKEN");
            check_header_value("the access key id", &id)?;
            check_header_value("the secret access key", &secret)?;
            if let Some(t) = &token {
                check_header_value("the session token", t)?;
            }
            return Ok(Credentials::Keys { access_key_id: id, secret_access_key: secret, session_token: token });
        }
        let mut credentials = self.to_s3().credentials().await?;
        if let Credentials::Keys { session_token, .. } = &mut credentials
            && !self.security_token.is_empty()
        {
            check_header_value("the session token", &self.security_token)?;
            *session_token = Some(self.security_token.clone());
        }
        Ok(credentials)
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
        let overrides = ferry_driver_s3::resolve::Overrides::from_env().map_err(Error::invalid_config)?;
        let connection = oss.to_s3().connect_with(oss.credentials().await?, overrides).await?;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_s3_view_is_composed_not_parsed() {
        let oss = OssConfig::parse(
            "{endpoint: oss-cn-hangzhou-internal.aliyuncs.com, bucket: b, createBucketIfNotPresent: true, \
              accessKeySecret: {name: o, key: id}, secretKeySecret: {name: o, key: secret}}",
        )
        .unwrap();
        let s3 = oss.to_s3();
        assert_eq!((s3.endpoint.as_str(), s3.bucket.as_str()), ("oss-cn-hangzhou-internal.aliyuncs.com", "b"));
        assert_eq!(s3.region, "cn-hangzhou");
        assert_eq!(s3.addressing, Some(Addressing::Virtual));
        assert!(s3.create_bucket_if_not_present.is_some());
        assert_eq!(s3.abort_incomplete_multipart_upload_days, Some(0), "OSS writes its own rules");
        assert_eq!(s3.access_key_secret, oss.access_key_secret);
        assert!(!s3.use_sdk_creds && s3.session_token_secret.is_none() && s3.encryption_options.is_none());
    }

    #[tokio::test]
    async fn without_key_secrets_requests_are_anonymous_and_half_a_pair_is_refused() {
        let bare = OssConfig::parse("{endpoint: oss-cn-test.aliyuncs.com, bucket: b, securityToken: t}").unwrap();
        assert!(matches!(bare.credentials().await.unwrap(), Credentials::Anonymous));
        let half = OssConfig::parse(
            "{endpoint: oss-cn-test.aliyuncs.com, bucket: b, secretKeySecret: {name: o, key: secret}}",
        )
        .unwrap();
        let err = half.credentials().await.unwrap_err();
        assert!(err.to_string().contains("give both"), "{err}");
    }
}
