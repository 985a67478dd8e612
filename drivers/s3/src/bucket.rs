//! Bucket-level calls object_store does not make: create a bucket, set its
//! lifecycle rules. Signed with SigV4 by `rusty-s3` and sent through the same
//! HTTP client options (CA, DNS) as every object call.

use bytes::Bytes;
use ferry_sdk::{Error, ErrorKind, Result};
use md5::{Digest, Md5};
use object_store::aws::AwsCredentialProvider;
use object_store::client::{HttpClient, HttpRequestBody};
use rusty_s3::{Bucket, Credentials, S3Action};
use std::time::Duration;

/// How long a signed bucket request stays valid: it is sent at once.
const SIGNED_FOR: Duration = Duration::from_secs(60);

/// Rules Ferry writes into a bucket's lifecycle configuration.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LifecycleRules {
    /// Abort multipart uploads this many days after they started (0: no rule).
    pub abort_incomplete_multipart_days: u32,
    /// Move objects to infrequent-access storage after this many days.
    pub infrequent_access_after_days: Option<u32>,
    /// Delete objects after this many days.
    pub delete_after_days: Option<u32>,
    /// The storage class infrequent access is called by the service.
    pub infrequent_access_class: &'static str,
}

impl LifecycleRules {
    /// Whether there is any rule to write.
    pub fn is_empty(&self) -> bool {
        self.abort_incomplete_multipart_days == 0
            && self.infrequent_access_after_days.is_none()
            && self.delete_after_days.is_none()
    }

    /// The `LifecycleConfiguration` document of S3's API.
    pub fn to_xml(&self) -> String {
        let mut rules = String::new();
        let mut rule = |id: &str, action: String| {
            rules.push_str(&format!(
                "<Rule><ID>{id}</ID><Filter><Prefix></Prefix></Filter><Status>Enabled</Status>{action}</Rule>"
            ));
        };
        if self.abort_incomplete_multipart_days > 0 {
            rule(
                "ferry-abort-incomplete-multipart-uploads",
                format!(
                    "<AbortIncompleteMultipartUpload><DaysAfterInitiation>{}</DaysAfterInitiation></AbortIncompleteMultipartUpload>",
                    self.abort_incomplete_multipart_days
                ),
            );
        }
        if let Some(days) = self.infrequent_access_after_days {
            rule(
                "ferry-infrequent-access",
                format!(
                    "<Transition><Days>{days}</Days><StorageClass>{}</StorageClass></Transition>",
                    self.infrequent_access_class
                ),
            );
        }
        if let Some(days) = self.delete_after_days {
            rule("ferry-expiration", format!("<Expiration><Days>{days}</Days></Expiration>"));
        }
        format!(
            "<LifecycleConfiguration xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">{rules}</LifecycleConfiguration>"
        )
    }
}

/// Signs and sends bucket-level requests.
pub struct BucketAdmin {
    pub(crate) bucket: Bucket,
    pub(crate) client: HttpClient,
    pub(crate) credentials: Option<AwsCredentialProvider>,
}

impl BucketAdmin {
    async fn credentials(&self) -> Result<Credentials> {
        let provider = self.credentials.as_ref().ok_or_else(|| {
            Error::invalid_config("invalid configuration: creating a bucket or setting its lifecycle needs credentials")
        })?;
        let c = provider.get_credential().await?;
        Ok(match &c.token {
            Some(token) => Credentials::new_with_token(c.key_id.clone(), c.secret_key.clone(), token.clone()),
            None => Credentials::new(c.key_id.clone(), c.secret_key.clone()),
        })
    }

    /// Creates the bucket unless it exists. Returns whether it was created.
    pub async fn ensure_exists(&self, object_locking: bool) -> Result<bool> {
        let creds = self.credentials().await?;
        let head = self.bucket.head_bucket(Some(&creds)).sign(SIGNED_FOR);
        let status = self.send(http::Method::HEAD, head, Bytes::new(), &[]).await?.0;
        if status.is_success() {
            return Ok(false);
        }
        if status != http::StatusCode::NOT_FOUND {
            return Err(status_error(status, &format!("checking bucket {}", self.bucket.name()), ""));
        }
        let mut create = self.bucket.create_bucket(&creds);
        let mut headers: Vec<(&str, &str)> = Vec::new();
        if object_locking {
            create.headers_mut().insert("x-amz-bucket-object-lock-enabled", "true");
            headers.push(("x-amz-bucket-object-lock-enabled", "true"));
        }
        let body = create.body();
        let url = create.sign(SIGNED_FOR);
        let (status, text) = self.send(http::Method::PUT, url, Bytes::from(body), &headers).await?;
        match status {
            s if s.is_success() => Ok(true),
            // Another step created it meanwhile.
            http::StatusCode::CONFLICT
                if text.contains("BucketAlreadyOwnedByYou") || text.contains("BucketAlreadyExists") =>
            {
                Ok(false)
            }
            s => Err(status_error(s, &format!("creating bucket {}", self.bucket.name()), &text)),
        }
    }

    /// Replaces the bucket's lifecycle configuration with `rules`.
    pub async fn put_lifecycle(&self, rules: &LifecycleRules) -> Result<()> {
        let creds = self.credentials().await?;
        let body = rules.to_xml();
        let md5 = base64_md5(body.as_bytes());
        let headers = [("content-md5", md5.as_str())];
        let mut url = self.bucket.base_url().clone();
        url.set_query(None);
        let signed = rusty_s3::signing::sign(
            &jiff_now(),
            rusty_s3::Method::Put,
            url,
            creds.key(),
            creds.secret(),
            creds.token(),
            self.bucket.region(),
            SIGNED_FOR.as_secs(),
            [("lifecycle", "")].into_iter(),
            headers.into_iter(),
        );
        let (status, text) = self.send(http::Method::PUT, signed, Bytes::from(body), &headers).await?;
        if status.is_success() {
            Ok(())
        } else {
            Err(status_error(status, &format!("setting the lifecycle rules of bucket {}", self.bucket.name()), &text))
        }
    }

    /// The bucket's lifecycle configuration document, as the server returns it.
    pub async fn get_lifecycle(&self) -> Result<String> {
        let creds = self.credentials().await?;
        let mut url = self.bucket.base_url().clone();
        url.set_query(None);
        let signed = rusty_s3::signing::sign(
            &jiff_now(),
            rusty_s3::Method::Get,
            url,
            creds.key(),
            creds.secret(),
            creds.token(),
            self.bucket.region(),
            SIGNED_FOR.as_secs(),
            [("lifecycle", "")].into_iter(),
            std::iter::empty(),
        );
        let (status, text) = self.send(http::Method::GET, signed, Bytes::new(), &[]).await?;
        if status.is_success() {
            Ok(text)
        } else {
            Err(status_error(status, &format!("reading the lifecycle rules of bucket {}", self.bucket.name()), &text))
        }
    }

    async fn send(
        &self,
        method: http::Method,
        url: url::Url,
        body: Bytes,
        headers: &[(&str, &str)],
    ) -> Result<(http::StatusCode, String)> {
        // Servers want a length even on an empty PUT (411 otherwise).
        let length = (method == http::Method::PUT).then(|| body.len().to_string());
        let mut req = http::Request::builder().method(method).uri(url.as_str());
        if let Some(length) = &length {
            req = req.header(http::header::CONTENT_LENGTH, length);
        }
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let req = req.body(HttpRequestBody::from(body)).map_err(|e| Error::other(format!("building request: {e}")))?;
        let resp = self.client.execute(req).await.map_err(|e| {
            // `with_source` appends the cause's text: naming it here too printed it twice.
            Error::new(ErrorKind::Transient, format!("bucket {}", self.bucket.name())).with_source(e)
        })?;
        let status = resp.status();
        let text = resp.into_body().bytes().await.map(|b| String::from_utf8_lossy(&b).into_owned()).unwrap_or_default();
        Ok((status, text))
    }
}

fn jiff_now() -> jiff::Timestamp {
    jiff::Timestamp::now()
}

fn base64_md5(data: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(Md5::digest(data))
}

fn status_error(status: http::StatusCode, doing: &str, body: &str) -> Error {
    let kind = match status.as_u16() {
        401 | 403 => ErrorKind::PermissionDenied,
        404 => ErrorKind::NotFound,
        501 => ErrorKind::Unsupported,
        408 | 429 | 500..=599 => ErrorKind::Transient,
        _ => ErrorKind::Other,
    };
    let code = body.split("<Code>").nth(1).and_then(|s| s.split("</Code>").next()).unwrap_or("");
    Error::new(kind, format!("{doing}: the server answered {status} {code}").trim_end().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lifecycle_xml_has_one_rule_per_setting() {
        let rules = LifecycleRules {
            abort_incomplete_multipart_days: 2,
            infrequent_access_after_days: Some(30),
            delete_after_days: None,
            infrequent_access_class: "STANDARD_IA",
        };
        let xml = rules.to_xml();
        assert_eq!(xml.matches("<Rule>").count(), 2);
        assert!(xml.contains("<DaysAfterInitiation>2</DaysAfterInitiation>"));
        assert!(xml.contains("<Days>30</Days><StorageClass>STANDARD_IA</StorageClass>"));
        assert!(LifecycleRules::default().is_empty());
    }

    #[test]
    fn status_errors_carry_kind_and_s3_code() {
        let e =
            status_error(http::StatusCode::FORBIDDEN, "creating bucket b", "<Error><Code>AccessDenied</Code></Error>");
        assert_eq!(e.kind(), ErrorKind::PermissionDenied);
        assert_eq!(e.message(), "creating bucket b: the server answered 403 Forbidden AccessDenied");
    }
}
