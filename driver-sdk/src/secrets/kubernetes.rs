//! The last source of the secret chain: the Kubernetes API, for a driver
//! running in a pod whose secret was neither put in its environment nor
//! mounted.
//!
//! Only tried in a cluster (`KUBERNETES_SERVICE_HOST` is set, as the kubelet
//! sets it in every pod), with the pod's service account and its namespace.
//! Values are kept for [`CACHE_TTL`], so a step with many artifacts asks
//! once, and a rotated secret is seen within a minute. The lookup is a plain
//! future on the caller's runtime, bounded by [`LOOKUP_TIMEOUT`].

use crate::error::{Error, ErrorKind, Result};
use k8s_openapi::api::core::v1::Secret as KubeSecret;
use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

/// How long a value read from the API is reused.
const CACHE_TTL: Duration = Duration::from_secs(60);

/// How long one lookup may take (connect, TLS, the GET).
const LOOKUP_TIMEOUT: Duration = Duration::from_secs(10);

/// Values by (secret name, key), with when each was read.
type Cache = Mutex<HashMap<(String, String), (Instant, String)>>;

fn cache() -> &'static Cache {
    static CACHE: OnceLock<Cache> = OnceLock::new();
    CACHE.get_or_init(Default::default)
}

/// True inside a pod.
pub(super) fn in_cluster() -> bool {
    std::env::var_os("KUBERNETES_SERVICE_HOST").is_some_and(|h| !h.is_empty())
}

/// The value of `key` in the secret `name` of the pod's namespace. Errors
/// name the secret and namespace, never a value; the caller adds which
/// reference it was resolving.
pub(super) async fn get(name: &str, key: &str) -> Result<String> {
    let id = (name.to_string(), key.to_string());
    if let Ok(cache) = cache().lock()
        && let Some((at, value)) = cache.get(&id)
        && at.elapsed() < CACHE_TTL
    {
        return Ok(value.clone());
    }
    let config = kube::Config::incluster().map_err(|e| {
        Error::invalid_config(format!("not in the environment nor mounted, and no in-cluster API access: {e}"))
    })?;
    let value = lookup(config, name, key, LOOKUP_TIMEOUT).await?;
    if let Ok(mut cache) = cache().lock() {
        cache.insert(id, (Instant::now(), value.clone()));
    }
    Ok(value)
}

/// One GET of the secret through the API server `config` names, given up
/// after `timeout`.
async fn lookup(config: kube::Config, name: &str, key: &str, timeout: Duration) -> Result<String> {
    let namespace = config.default_namespace.clone();
    // A driver with the `http` feature also gets rustls's aws-lc-rs (through
    // reqwest) beside kube's ring; rustls then has no process default and
    // kube's TLS set-up panics. reqwest names its provider itself, so making
    // ring the default changes nothing else.
    if rustls::crypto::CryptoProvider::get_default().is_none() {
        let _ = rustls::crypto::ring::default_provider().install_default();
    }
    let client =
        kube::Client::try_from(config).map_err(|e| Error::new(ErrorKind::Other, format!("Kubernetes client: {e}")))?;
    let api: kube::Api<KubeSecret> = kube::Api::namespaced(client, &namespace);
    let found = match tokio::time::timeout(timeout, api.get(name)).await {
        Ok(found) => found.map_err(|e| describe(name, &namespace, &e))?,
        Err(_) => {
            return Err(Error::new(
                ErrorKind::Transient,
                format!("the Kubernetes API did not answer within {timeout:?}"),
            ));
        }
    };
    value_of(name, key, &namespace, &found)
}

/// The value of the key, from `data` (base64 on the wire) or `stringData`.
fn value_of(name: &str, key: &str, namespace: &str, found: &KubeSecret) -> Result<String> {
    if let Some(bytes) = found.data.as_ref().and_then(|d| d.get(key)) {
        return String::from_utf8(bytes.0.clone())
            .map_err(|_| Error::invalid_config(format!("its value in namespace {namespace:?} is not UTF-8")));
    }
    if let Some(text) = found.string_data.as_ref().and_then(|d| d.get(key)) {
        return Ok(text.clone());
    }
    let keys: Vec<&String> = found.data.iter().flat_map(|d| d.keys()).collect();
    Err(Error::invalid_config(format!(
        "secret {name:?} in namespace {namespace:?} has no key {key:?} (it has: {})",
        keys.iter().map(|k| k.as_str()).collect::<Vec<_>>().join(", ")
    )))
}

/// An API failure as the SDK's error, naming the secret and namespace and,
/// for a refusal, what the service account lacks. Never the value.
fn describe(name: &str, namespace: &str, err: &kube::Error) -> Error {
    let status = match err {
        kube::Error::Api(status) => Some(status.code),
        _ => None,
    };
    match status {
        Some(403) => Error::new(
            ErrorKind::PermissionDenied,
            format!(
                "reading secret {name:?} in namespace {namespace:?} was denied: the pod's service account needs \
                 `get` on secrets there (see deploy/argo/component/rbac.yaml)"
            ),
        ),
        Some(401) => {
            Error::new(ErrorKind::PermissionDenied, "the Kubernetes API refused the pod's service account token")
        }
        Some(404) => Error::invalid_config(format!(
            "no secret {name:?} in namespace {namespace:?} (nor in the environment or a mounted volume)"
        )),
        Some(code) if code == 429 || code >= 500 => {
            Error::new(ErrorKind::Transient, format!("the Kubernetes API answered {code}: {err}"))
        }
        _ => Error::new(ErrorKind::Other, format!("reading it from the Kubernetes API: {err}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::ByteString;
    use std::collections::BTreeMap;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    fn api_error(code: u16) -> kube::Error {
        let status: kube::core::Status = serde_json::from_value(serde_json::json!({
            "status": "Failure", "message": "secrets \"s3\" is forbidden", "reason": "Forbidden", "code": code
        }))
        .unwrap();
        kube::Error::Api(Box::new(status))
    }

    #[test]
    fn a_refusal_names_the_secret_the_namespace_and_the_missing_permission() {
        let err = describe("s3", "argo", &api_error(403));
        assert_eq!(err.kind(), ErrorKind::PermissionDenied);
        let text = err.to_string();
        assert!(text.contains("\"s3\"") && text.contains("\"argo\"") && text.contains("`get` on secrets"), "{text}");
        assert_eq!(describe("s3", "argo", &api_error(404)).kind(), ErrorKind::InvalidConfig);
        assert_eq!(describe("s3", "argo", &api_error(503)).kind(), ErrorKind::Transient);
    }

    #[test]
    fn keys_come_from_data_and_a_missing_key_lists_the_others_not_their_values() {
        let mut found = KubeSecret {
            data: Some(BTreeMap::from([("accessKey".to_string(), ByteString(b"AKIA".to_vec()))])),
            ..Default::default()
        };
        assert_eq!(value_of("s3", "accessKey", "argo", &found).unwrap(), "AKIA");
        found.data = Some(BTreeMap::from([("other".to_string(), ByteString(b"hidden-value".to_vec()))]));
        let text = value_of("s3", "accessKey", "argo", &found).unwrap_err().to_string();
        assert!(text.contains("no key \"accessKey\"") && text.contains("other") && !text.contains("hidden-value"));
    }

    /// The lookup used to run on a thread of its own that the calling worker
    /// joined, so a silent API server stopped every task on that worker for
    /// up to 10 s. On a single-threaded runtime that is every task: here a
    /// ticker must keep running while the lookup waits out its timeout.
    #[test]
    fn waiting_for_a_silent_api_server_blocks_no_other_task() {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        runtime.block_on(async {
            // Accepts connections and never answers, like a blackholed API server.
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let url = format!("http://{}", listener.local_addr().unwrap());
            let silent = tokio::spawn(async move {
                let mut held = Vec::new();
                while let Ok((conn, _)) = listener.accept().await {
                    held.push(conn);
                }
            });
            let ticks = Arc::new(AtomicUsize::new(0));
            let ticker = tokio::spawn({
                let ticks = ticks.clone();
                async move {
                    loop {
                        tokio::time::sleep(Duration::from_millis(10)).await;
                        ticks.fetch_add(1, Ordering::Relaxed);
                    }
                }
            });
            let config = kube::Config::new(url.parse().unwrap());
            let started = Instant::now();
            let err = lookup(config, "s3", "accessKey", Duration::from_millis(500)).await.unwrap_err();
            let waited = started.elapsed();
            assert_eq!(err.kind(), ErrorKind::Transient, "{err}");
            assert!(err.to_string().contains("did not answer"), "{err}");
            assert!(waited >= Duration::from_millis(500), "gave up early: {waited:?}");
            // 500 ms at one tick per 10 ms: a blocked thread would show none.
            let seen = ticks.load(Ordering::Relaxed);
            assert!(seen >= 20, "only {seen} ticks while the lookup waited {waited:?}");
            ticker.abort();
            silent.abort();
        });
    }
}
