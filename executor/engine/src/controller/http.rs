//! An HTTP template: `ferry` makes the request itself (Argo's agent pod
//! does), the response body becomes the node's `outputs.result`, and the
//! node succeeds on a 2xx status or when its `successCondition` holds.

use super::Controller;
use super::outcome::Ended;
use crate::volumes;
use base64::Engine;
use ferry_workflow::expression;
use ferry_workflow::model::{Http, Template};
use ferry_workflow::values::{Outputs, Phase};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// Argo keeps the whole body; Ferry keeps at most this much of it, as a
/// pod's `outputs.result` is capped.
const MAX_BODY: usize = crate::runtime::MAX_RESULT_BYTES;

impl Controller {
    pub(super) async fn run_http(&self, id: u32, template: &Template, cancel: CancellationToken) -> Ended {
        self.set_running(id);
        let Some(http) = &template.http else { return Ended::error("the template has no http") };
        tokio::select! {
            ended = request(http) => ended,
            () = cancel.cancelled() => Ended::new(self.cancel_phase(), ""),
        }
    }
}

/// Makes the request and judges the response. A request that cannot be
/// made or answered fails the node with the reason, as in Argo.
async fn request(http: &Http) -> Ended {
    let failed = |why: String| Ended::new(Phase::Failed, why);
    let method = if http.method.is_empty() { "GET" } else { http.method.as_str() };
    let Ok(method) = reqwest::Method::from_bytes(method.as_bytes()) else {
        return Ended::error(format!("http.method {method:?} is not an HTTP method"));
    };
    let client = match reqwest::Client::builder().tls_danger_accept_invalid_certs(http.insecure_skip_verify).build() {
        Ok(client) => client,
        Err(e) => return Ended::error(format!("http: {e}")),
    };
    let mut request = client.request(method.clone(), &http.url);
    if let Some(seconds) = http.timeout_seconds {
        request = request.timeout(Duration::from_secs(seconds));
    }
    let body = match &http.body_from {
        Some(from) => match base64::engine::general_purpose::STANDARD.decode(from.bytes.trim()) {
            Ok(bytes) => bytes,
            Err(e) => return Ended::error(format!("http.bodyFrom.bytes is not base64: {e}")),
        },
        None => http.body.clone().into_bytes(),
    };
    let mut sent_headers = serde_json::Map::new();
    for h in &http.headers {
        let value = match h.value_from.as_ref().and_then(|v| v.secret_key_ref.as_ref()) {
            Some(key) => match volumes::secret_key(&key.name, &key.key) {
                Ok(value) => value,
                Err(why) => return Ended::error(format!("http.headers {}: {why}", h.name)),
            },
            None => h.value.clone(),
        };
        request = request.header(&h.name, &value);
        if let Some(values) = sent_headers.entry(h.name.clone()).or_insert_with(|| serde_json::json!([])).as_array_mut()
        {
            values.push(value.into());
        }
    }
    let response = match request.body(body.clone()).send().await {
        Ok(response) => response,
        Err(e) => return failed(format!("http request to {} failed: {}", http.url, error_chain(&e))),
    };
    let status = response.status().as_u16();
    let mut headers = serde_json::Map::new();
    for (name, value) in response.headers() {
        let value = String::from_utf8_lossy(value.as_bytes()).into_owned();
        if let Some(values) =
            headers.entry(canonical(name.as_str())).or_insert_with(|| serde_json::json!([])).as_array_mut()
        {
            values.push(value.into());
        }
    }
    let text = match response.bytes().await {
        Ok(bytes) => String::from_utf8_lossy(&bytes[..bytes.len().min(MAX_BODY)]).into_owned(),
        Err(e) => return failed(format!("reading the response of {}: {}", http.url, error_chain(&e))),
    };
    let outputs = Outputs { result: Some(text.clone()), ..Outputs::default() };
    let (phase, message) = if http.success_condition.trim().is_empty() {
        match status {
            200..=299 => (Phase::Succeeded, String::new()),
            _ => (Phase::Failed, format!("received non-2xx response code: {status}")),
        }
    } else {
        let scope = serde_json::json!({
            "request": {
                "method": method.as_str(),
                "url": http.url,
                "body": http.body,
                "bodyBytes": String::from_utf8_lossy(&body),
                "headers": sent_headers,
            },
            "response": {"statusCode": status, "body": text, "headers": headers},
        });
        match expression::evaluate_bool_json(&http.success_condition, scope) {
            Ok(true) => (Phase::Succeeded, String::new()),
            Ok(false) => (Phase::Failed, format!("successCondition '{}' evaluated false", http.success_condition)),
            Err(e) => (Phase::Failed, format!("successCondition: {e}")),
        }
    };
    Ended { phase, message, outputs }
}

/// Go's canonical header name (`content-type` → `Content-Type`), as Argo's
/// `response.headers` keys are.
fn canonical(name: &str) -> String {
    name.split('-')
        .map(|part| {
            let mut chars = part.chars();
            chars.next().map(|c| c.to_ascii_uppercase().to_string() + chars.as_str()).unwrap_or_default()
        })
        .collect::<Vec<_>>()
        .join("-")
}

/// An error with its causes (reqwest's own text says only "error sending request").
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}
