//! `POST /upload-artifacts/{ns}/{workflowTemplate}/{artifactName}`:
//! argo-server's upload of an input artifact for a WorkflowTemplate's
//! `spec.arguments.artifacts`, answered `{"name", "key"}` with the key under
//! `uploads/{ns}/{uuid}/{file name}`.
//!
//! The multipart `file` field goes to the driver's SaveStream as it
//! arrives: nothing is staged on this server's disk. Only a driver without
//! SaveStream gets a temporary file and Save, as argo-server does.

use crate::error::{Error, Result};
use crate::state::AppState;
use axum::Json;
use axum::extract::{Multipart, Path, State};
use bytes::Bytes;
use ferry_engine::ToClient;
use ferry_sdk::client::DriverClient;
use ferry_workflow::model::Documents;
use ferry_workflow::repository::{Declared, Repository, declared};
use ferry_workflow::values::Location;
use futures::StreamExt;
use serde_json::{Value, json};
use std::path::PathBuf;
use tokio::io::AsyncWriteExt;

pub(crate) async fn upload(
    State(state): State<AppState>,
    Path((namespace, template, artifact)): Path<(String, String, String)>,
    multipart: Multipart,
) -> Result<Json<Value>> {
    // Everything is checked before a byte of the body is read.
    let location = template_location(&state, &namespace, &template, &artifact)?;
    let pool = state.pools.uploads(&state.options.registry);
    let client = pool.client(&location.driver, location.timeout).await.map_err(|e| Error::Engine(e.into()))?;
    let key = receive(&state, &client, location, &namespace, multipart).await?;
    Ok(Json(json!({ "name": artifact, "key": key })))
}

/// Where the template's artifact lives: its own location, else the
/// repository of the template (its `artifactRepositoryRef`, the
/// `artifact-repositories` ConfigMap among the templates, or Ferry's default).
fn template_location(state: &AppState, namespace: &str, template: &str, artifact: &str) -> Result<Location> {
    let files = state.options.template_files()?;
    let docs = Documents::load(&files).map_err(|e| Error::BadRequest(format!("templates: {e}")))?;
    let ns_of = |m: &ferry_workflow::model::Metadata| {
        if m.namespace.is_empty() { "default".to_string() } else { m.namespace.clone() }
    };
    let (_, wft) = docs
        .templates
        .iter()
        .find(|(_, t)| t.metadata.name == template && ns_of(&t.metadata) == namespace)
        .ok_or_else(|| {
            Error::NotFound(format!("no WorkflowTemplate {namespace}/{template} among the server's templates"))
        })?;
    let art = wft.spec.arguments.artifacts.iter().find(|a| a.name == artifact).ok_or_else(|| {
        Error::NotFound(format!(
            "artifact {artifact:?} not found in WorkflowTemplate {namespace}/{template} arguments.artifacts"
        ))
    })?;
    if let Declared::Full(loc) = declared(art) {
        return Ok(loc);
    }
    let config_maps: Vec<_> = docs.config_maps.iter().map(|(_, c)| c.clone()).collect();
    let fallback = Repository::embedded(&state.home.artifacts_dir());
    let repo = Repository::resolve(&config_maps, wft.spec.artifact_repository_ref.as_ref(), fallback)
        .map_err(|e| Error::BadRequest(e.to_string()))?;
    Ok(repo.location)
}

/// The upload's key for a file name the client sent: only its last
/// component, so no name can climb out of `uploads/{ns}/{uuid}/`.
fn upload_key(namespace: &str, file_name: &str) -> Result<String> {
    let dns = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.';
    if namespace.is_empty() || namespace.starts_with('.') || !namespace.chars().all(dns) {
        return Err(Error::BadRequest(format!("invalid namespace {namespace:?}")));
    }
    let base = file_name.replace('\\', "/");
    let base = base.rsplit('/').next().unwrap_or_default();
    if base.is_empty() || base == "." || base == ".." || base.contains('\0') {
        return Err(Error::BadRequest(format!("invalid file name {file_name:?}")));
    }
    Ok(format!("uploads/{namespace}/{}/{base}", uuid::Uuid::new_v4()))
}

/// Reads the form up to its `file` field and stores that field's bytes.
async fn receive(
    state: &AppState,
    client: &DriverClient,
    mut location: Location,
    namespace: &str,
    mut multipart: Multipart,
) -> Result<String> {
    let limit = state.options.max_upload_bytes;
    loop {
        let field = multipart.next_field().await.map_err(form)?;
        let Some(field) = field else {
            return Err(Error::BadRequest("the form has no `file` field".into()));
        };
        if field.name() != Some("file") {
            continue;
        }
        let file_name = field.file_name().unwrap_or_default().to_string();
        location.key = upload_key(namespace, &file_name)?;
        let loc = location.to_client();
        let counted = limited(field, limit);
        if client.supports_save_stream().await? {
            let (tx, rx) = tokio::sync::mpsc::channel::<ferry_sdk::Result<Bytes>>(4);
            let data = tokio_stream::wrappers::ReceiverStream::new(rx).boxed();
            let (saved, pumped) = tokio::join!(client.save_stream(&loc, data), pump(counted, tx));
            // The body's own failure (too large, cut) explains a failed save best.
            pumped?;
            saved?;
        } else {
            let dir = state.options.scratch_dir();
            std::fs::create_dir_all(&dir).map_err(|e| Error::Internal(format!("creating {}: {e}", dir.display())))?;
            let tmp =
                tempfile::NamedTempFile::new_in(&dir).map_err(|e| Error::Internal(format!("temporary file: {e}")))?;
            spill(counted, tmp.path().to_path_buf()).await?;
            client.save(&loc, tmp.path()).await?;
        }
        return Ok(location.key);
    }
}

fn form(e: axum::extract::multipart::MultipartError) -> Error {
    if e.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
        return Error::TooLarge(e.body_text());
    }
    Error::BadRequest(format!("reading the upload form: {}", e.body_text()))
}

/// The field's bytes, failing once more than `limit` have come.
fn limited(
    field: axum::extract::multipart::Field<'_>,
    limit: u64,
) -> impl futures::Stream<Item = Result<Bytes>> + Send + '_ {
    let mut seen = 0u64;
    field.map(move |chunk| {
        let chunk = chunk.map_err(form)?;
        seen += chunk.len() as u64;
        if seen > limit {
            return Err(Error::TooLarge(format!("the upload is over the limit of {limit} bytes (--max-upload-bytes)")));
        }
        Ok(chunk)
    })
}

/// Hands the body to the driver's stream. On a failure the channel closes
/// with an error item, so the driver aborts and stores nothing.
async fn pump(
    body: impl futures::Stream<Item = Result<Bytes>>,
    tx: tokio::sync::mpsc::Sender<ferry_sdk::Result<Bytes>>,
) -> Result<()> {
    let mut body = std::pin::pin!(body);
    while let Some(item) = body.next().await {
        match item {
            Ok(b) => {
                if tx.send(Ok(b)).await.is_err() {
                    // The driver stopped reading: its own error says why.
                    return Ok(());
                }
            }
            Err(e) => {
                let _ = tx.send(Err(ferry_sdk::Error::other(e.to_string()))).await;
                return Err(e);
            }
        }
    }
    Ok(())
}

async fn spill(body: impl futures::Stream<Item = Result<Bytes>>, path: PathBuf) -> Result<()> {
    let io = |e: std::io::Error| Error::Internal(format!("writing {}: {e}", path.display()));
    let mut file = tokio::fs::File::create(&path).await.map_err(io)?;
    let mut body = std::pin::pin!(body);
    while let Some(b) = body.next().await {
        file.write_all(&b?).await.map_err(io)?;
    }
    file.flush().await.map_err(io)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upload_keys_keep_only_the_file_name() {
        for (given, base) in [("a.txt", "a.txt"), ("../../etc/passwd", "passwd"), ("C:\\x\\..\\y.bin", "y.bin")] {
            let key = upload_key("ns", given).unwrap();
            assert!(key.starts_with("uploads/ns/") && key.ends_with(&format!("/{base}")), "{given} → {key}");
            assert_eq!(key.split('/').count(), 4, "{key}");
        }
        for bad in ["", "..", "dir/", "x/.", "a\0b"] {
            assert!(upload_key("ns", bad).is_err(), "{bad:?}");
        }
        for bad_ns in ["", "..", "a/b", "A", ".hidden"] {
            assert!(upload_key(bad_ns, "f").is_err(), "{bad_ns:?}");
        }
    }
}
