//! Readiness probes of daemon steps: Kubernetes' `exec`, `httpGet` and
//! `tcpSocket` checks, tried until one succeeds.

use crate::runtime::{PodSpec, Runtime};
use ferry_workflow::model::{AnyString, Probe};
use std::time::Duration;

/// Waits until `probe` succeeds against `pod`, reached at `address`: first
/// after `initialDelaySeconds`, then every `periodSeconds`, for as long as
/// the caller waits (a readiness probe that fails does not stop the pod).
/// `Err` when the probe cannot be tried at all.
pub(crate) async fn wait_ready(
    runtime: &dyn Runtime,
    pod: &PodSpec,
    address: &str,
    probe: &Probe,
) -> Result<(), String> {
    tokio::time::sleep(Duration::from_secs(probe.initial_delay_seconds.unwrap_or(0))).await;
    let period = Duration::from_secs(probe.period_seconds.unwrap_or(10).max(1));
    // Kubernetes' smallest period is a second; a daemon that is ready sooner
    // should not keep its dependents waiting that long between early tries.
    let mut wait = Duration::from_millis(100);
    loop {
        if try_once(runtime, pod, address, probe).await? {
            return Ok(());
        }
        tokio::time::sleep(wait).await;
        wait = (wait * 2).min(period);
    }
}

/// One try of `probe`.
async fn try_once(runtime: &dyn Runtime, pod: &PodSpec, address: &str, probe: &Probe) -> Result<bool, String> {
    let timeout = Duration::from_secs(probe.timeout_seconds.unwrap_or(1).max(1));
    if let Some(exec) = &probe.exec {
        return Ok(runtime.exec_probe(pod, &exec.command, timeout).await);
    }
    if let Some(http) = &probe.http_get {
        let host = if http.host.is_empty() { address } else { &http.host };
        let scheme = if http.scheme.eq_ignore_ascii_case("https") { "https" } else { "http" };
        let path = if http.path.starts_with('/') { http.path.clone() } else { format!("/{}", http.path) };
        let url = format!("{scheme}://{host}:{}{path}", port(&http.port)?);
        // As the kubelet: HTTPS probes do not verify the certificate.
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .tls_danger_accept_invalid_certs(true)
            .build()
            .map_err(|e| format!("httpGet probe: {e}"))?;
        let mut request = client.get(&url);
        for h in &http.http_headers {
            request = request.header(&h.name, &h.value);
        }
        return Ok(matches!(request.send().await, Ok(r) if (200..400).contains(&r.status().as_u16())));
    }
    if let Some(tcp) = &probe.tcp_socket {
        let host = if tcp.host.is_empty() { address } else { &tcp.host };
        let connect = tokio::net::TcpStream::connect((host, port(&tcp.port)?));
        return Ok(matches!(tokio::time::timeout(timeout, connect).await, Ok(Ok(_))));
    }
    Err("the probe has none of exec, httpGet, tcpSocket".into())
}

/// A probe's port: a number (named ports need the pod's `ports`, which are
/// only recorded).
fn port(port: &AnyString) -> Result<u16, String> {
    port.0.parse().map_err(|_| format!("probe port {:?} is not a port number (named ports are not supported)", port.0))
}
