//! Credentials: a service-account key from a secret, application default
//! credentials (GOOGLE_APPLICATION_CREDENTIALS, gcloud's file, workload
//! identity federation, then the metadata server of GKE and GCE), or none.

use ferry_sdk::{Error, ErrorKind, Result};
use google_cloud_auth::credentials::{AccessTokenCredentials, Builder, service_account};

/// How requests are authorised.
pub enum Auth {
    /// No Authorization header: public buckets and emulators.
    Anonymous,
    /// Bearer tokens from Google's auth library, which caches and refreshes them.
    Google(AccessTokenCredentials),
}

impl Auth {
    /// Credentials from a service-account JSON key held in the secret named by
    /// `field`. Messages never quote the key.
    pub fn service_account(json: &str, field: &str) -> Result<Auth> {
        let bad = |why: &str| Error::invalid_field(field, why);
        let value: serde_json::Value = serde_json::from_str(json)
            .map_err(|_| bad("the secret is not JSON (expected a service-account key file)"))?;
        for required in ["client_email", "private_key"] {
            if !value.get(required).is_some_and(|v| v.is_string()) {
                return Err(bad(&format!("the key has no `{required}` (expected a service-account key file)")));
            }
        }
        let credentials = service_account::Builder::new(value)
            .build_access_token_credentials()
            .map_err(|_| bad("the service-account key could not be read"))?;
        Ok(Auth::Google(credentials))
    }

    /// Application default credentials, as every Google client library finds them.
    pub fn application_default() -> Result<Auth> {
        let credentials = Builder::default().build_access_token_credentials().map_err(|e| {
            Error::invalid_config(format!(
                "no serviceAccountKeySecret and no usable application default credentials: {e}"
            ))
        })?;
        Ok(Auth::Google(credentials))
    }

    /// The bearer token to send, if any.
    pub async fn token(&self) -> Result<Option<String>> {
        match self {
            Auth::Anonymous => Ok(None),
            Auth::Google(c) => match c.access_token().await {
                Ok(t) => Ok(Some(t.token)),
                Err(e) => {
                    let kind = if e.is_transient() { ErrorKind::Transient } else { ErrorKind::PermissionDenied };
                    Err(Error::new(kind, format!("getting a GCS access token: {e}")))
                }
            },
        }
    }
}
