//! Secrets read through the Kubernetes API, for a driver running in a pod
//! whose secret was neither put in its environment nor mounted.
//!
//! Only tried in a cluster (`KUBERNETES_SERVICE_HOST` is set, as the kubelet
//! sets it in every pod), with the pod's service account and its namespace.
//! Values are kept for [`CACHE_TTL`], so a step with many artifacts asks
//! once, and a rotated secret is seen within a minute.

use crate::config::{Secret, SecretRef};
use crate::error::{Error, ErrorKind, Result};
use k8s_openapi::api::core::v1::Secret as KubeSecret;
use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

/// How long a value read from the API is reused.
pub const CACHE_TTL: Duration = Duration::from_secs(60);

/// How long one lookup may take (connect, TLS, the GET).
const LOOKUP_TIMEOUT: Duration = Duration::from_secs(10);

type Cache = Mutex<HashMap<SecretRef, (Instant, Secret)>>;

fn cache() -> &'static Cache {
    static CACHE: OnceLock<Cache> = OnceLock::new();
    CACHE.get_or_init(Default::default)
}

/// True inside a pod.
pub fn in_cluster() -> bool {
    std::env::var_os("KUBERNETES_SERVICE_HOST").is_some_and(|h| !h.is_empty())
}

/// Reads `secret` from the pod's namespace. Blocking: configuration is
/// parsed synchronously, so the lookup runs on a thread of its own with its
/// own runtime, which is safe from inside the driver's async handlers.
pub fn lookup(secret: &SecretRef) -> Result<Secret> {
    if let Ok(cache) = cache().lock()
        && let Some((at, value)) = cache.get(secret)
        && at.elapsed() < CACHE_TTL
    {
        return Ok(value.clone());
    }
    let wanted = secret.clone();
    let value = std::thread::scope(|s| {
        s.spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| Error::new(ErrorKind::Other, format!("{wanted}: starting a runtime: {e}")))?;
            runtime.block_on(async {
                match tokio::time::timeout(LOOKUP_TIMEOUT, get(&wanted)).await {
                    Ok(result) => result,
                    Err(_) => Err(Error::new(
                        ErrorKind::Transient,
                        format!("{wanted}: the Kubernetes API did not answer within {LOOKUP_TIMEOUT:?}"),
                    )),
                }
            })
        })
        .join()
        .unwrap_or_else(|_| Err(Error::new(ErrorKind::Other, "the secret lookup thread panicked")))
    })?;
    if let Ok(mut cache) = cache().lock() {
        cache.insert(secret.clone(), (Instant::now(), value.clone()));
    }
    Ok(value)
}

async fn get(secret: &SecretRef) -> Result<Secret> {
    let config = kube::Config::incluster().map_err(|e| {
        Error::invalid_config(format!(
            "{secret}: not in the environment nor mounted, and no in-cluster API access: {e}"
        ))
    })?;
    let namespace = config.default_namespace.clone();
    let client = kube::Client::try_from(config)
        .map_err(|e| Error::new(ErrorKind::Other, format!("{secret}: Kubernetes client: {e}")))?;
    let api: kube::Api<KubeSecret> = kube::Api::namespaced(client, &namespace);
    let found = api.get(&secret.name).await.map_err(|e| describe(secret, &namespace, &e))?;
    value_of(secret, &namespace, &found)
}

/// The value of the key, from `data` (base64 on the wire) or `stringData`.
fn value_of(secret: &SecretRef, namespace: &str, found: &KubeSecret) -> Result<Secret> {
    if let Some(bytes) = found.data.as_ref().and_then(|d| d.get(&secret.key)) {
        return String::from_utf8(bytes.0.clone())
            .map(Secret::new)
            .map_err(|_| Error::invalid_config(format!("{secret} in namespace {namespace:?} is not UTF-8")));
    }
    if let Some(text) = found.string_data.as_ref().and_then(|d| d.get(&secret.key)) {
        return Ok(Secret::new(text.clone()));
    }
    let keys: Vec<&String> = found.data.iter().flat_map(|d| d.keys()).collect();
    Err(Error::invalid_config(format!(
        "{secret}: secret {:?} in namespace {namespace:?} has no key {:?} (it has: {})",
        secret.name,
        secret.key,
        keys.iter().map(|k| k.as_str()).collect::<Vec<_>>().join(", ")
    )))
}

/// An API failure as the SDK's error, naming the secret and namespace and,
/// for a refusal, what the service account lacks. Never the value.
fn describe(secret: &SecretRef, namespace: &str, err: &kube::Error) -> Error {
    let status = match err {
        kube::Error::Api(status) => Some(status.code),
        _ => None,
    };
    match status {
        Some(403) => Error::new(
            ErrorKind::PermissionDenied,
            format!(
                "{secret}: reading secret {:?} in namespace {namespace:?} was denied: the pod's service account needs \
                 `get` on secrets there (see deploy/argo/component/rbac.yaml), or put the secret in the driver's \
                 environment as {}",
                secret.name,
                crate::config::Secrets::env_var_name(secret)
            ),
        ),
        Some(401) => Error::new(
            ErrorKind::PermissionDenied,
            format!("{secret}: the Kubernetes API refused the pod's service account token"),
        ),
        Some(404) => Error::invalid_config(format!(
            "{secret}: no secret {:?} in namespace {namespace:?} (nor in the environment or a mounted volume)",
            secret.name
        )),
        Some(code) if code == 429 || code >= 500 => {
            Error::new(ErrorKind::Transient, format!("{secret}: the Kubernetes API answered {code}: {err}"))
        }
        _ => Error::new(ErrorKind::Other, format!("{secret}: reading it from the Kubernetes API: {err}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::ByteString;
    use std::collections::BTreeMap;

    fn api_error(code: u16) -> kube::Error {
        let status: kube::core::Status = serde_json::from_value(serde_json::json!({
            "status": "Failure", "message": "secrets \"s3\" is forbidden", "reason": "Forbidden", "code": code
        }))
        .unwrap();
        kube::Error::Api(Box::new(status))
    }

    #[test]
    fn a_refusal_names_the_secret_the_namespace_and_the_missing_permission() {
        let r = SecretRef { name: "s3".into(), key: "secretKey".into() };
        let err = describe(&r, "argo", &api_error(403));
        assert_eq!(err.kind(), ErrorKind::PermissionDenied);
        let text = err.to_string();
        assert!(text.contains("\"s3\"") && text.contains("\"argo\"") && text.contains("`get` on secrets"), "{text}");
        assert!(text.contains("FERRY_SECRET_S3_SECRETKEY"), "{text}");
        assert_eq!(describe(&r, "argo", &api_error(404)).kind(), ErrorKind::InvalidConfig);
        assert_eq!(describe(&r, "argo", &api_error(503)).kind(), ErrorKind::Transient);
    }

    #[test]
    fn keys_come_from_data_and_a_missing_key_lists_the_others_not_their_values() {
        let r = SecretRef { name: "s3".into(), key: "accessKey".into() };
        let mut found = KubeSecret {
            data: Some(BTreeMap::from([("accessKey".to_string(), ByteString(b"AKIA".to_vec()))])),
            ..Default::default()
        };
        assert_eq!(value_of(&r, "argo", &found).unwrap().expose(), "AKIA");
        found.data = Some(BTreeMap::from([("other".to_string(), ByteString(b"hidden-value".to_vec()))]));
        let text = value_of(&r, "argo", &found).unwrap_err().to_string();
        assert!(text.contains("no key \"accessKey\"") && text.contains("other") && !text.contains("hidden-value"));
    }
}
