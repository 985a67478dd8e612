//! A typed client for any driver speaking `artifact.ArtifactService` on a unix
//! socket. The executor and the conformance suite both use it.

use crate::error::{Error, ErrorKind, Result};
use crate::stream::ByteStream;
use bytes::Bytes;
use ferry_proto as pb;
use ferry_proto::artifact_service_client::ArtifactServiceClient;
use futures::StreamExt;
use hyper_util::rt::TokioIo;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use tonic::transport::{Channel, Endpoint};

pub use crate::error::KIND_HEADER;

/// Where an artifact lives for a driver: the plugin block of an Argo artifact.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Location {
    /// The plugin (driver) name.
    pub plugin: String,
    /// The opaque configuration string handed to the driver.
    pub configuration: String,
    /// The object key.
    pub key: String,
}

impl Location {
    /// A location from its three parts.
    pub fn new(plugin: impl Into<String>, configuration: impl Into<String>, key: impl Into<String>) -> Self {
        Location { plugin: plugin.into(), configuration: configuration.into(), key: key.into() }
    }

    /// The same storage, another key.
    #[must_use]
    pub fn with_key(&self, key: impl Into<String>) -> Self {
        Location { key: key.into(), ..self.clone() }
    }

    /// The wire message for this location.
    pub fn to_artifact(&self) -> pb::Artifact {
        pb::Artifact {
            name: self.key.rsplit('/').next().unwrap_or_default().to_string(),
            plugin: Some(pb::PluginArtifact {
                name: self.plugin.clone(),
                configuration: self.configuration.clone(),
                connection_timeout_seconds: 0,
                key: self.key.clone(),
            }),
            ..Default::default()
        }
    }
}

/// A connection to one driver. Cheap to clone; clones share the connection.
#[derive(Clone, Debug)]
pub struct DriverClient {
    inner: ArtifactServiceClient<Channel>,
    socket: PathBuf,
}

impl DriverClient {
    /// Connects to the driver listening on `socket`, waiting up to `timeout`
    /// for the socket to appear and accept, as Argo's executor waits for a
    /// plugin container to start.
    pub async fn connect(socket: impl AsRef<Path>, timeout: Duration) -> Result<Self> {
        let socket = socket.as_ref().to_path_buf();
        let deadline = Instant::now() + timeout;
        let mut delay = Duration::from_millis(2);
        loop {
            match Self::try_connect(&socket, timeout).await {
                Ok(channel) => {
                    let inner = ArtifactServiceClient::new(channel)
                        .max_decoding_message_size(8 << 20)
                        .max_encoding_message_size(8 << 20);
                    return Ok(DriverClient { inner, socket });
                }
                Err(err) if Instant::now() + delay >= deadline => {
                    return Err(Error::new(
                        ErrorKind::Transient,
                        format!("driver socket {} not ready after {timeout:?}: {err}", socket.display()),
                    ));
                }
                Err(_) => {
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(Duration::from_millis(100));
                }
            }
        }
    }

    /// A plain gRPC channel to `socket`, for callers that speak other services
    /// (health, reflection) or call methods by path.
    pub async fn channel(socket: &Path, timeout: Duration) -> Result<Channel> {
        Self::try_connect(socket, timeout).await.map_err(|e| Error::new(ErrorKind::Transient, e))
    }

    async fn try_connect(socket: &Path, timeout: Duration) -> std::result::Result<Channel, String> {
        std::fs::metadata(socket).map_err(|e| e.to_string())?;
        let path = socket.to_path_buf();
        Endpoint::from_static("http://driver.invalid")
            .connect_timeout(timeout)
            .connect_with_connector(tower::service_fn(move |_| {
                let path = path.clone();
                async move { Ok::<_, std::io::Error>(TokioIo::new(tokio::net::UnixStream::connect(path).await?)) }
            }))
            .await
            .map_err(|e| format!("{e}: {}", std::error::Error::source(&e).map(|s| s.to_string()).unwrap_or_default()))
    }

    /// The socket this client talks to.
    pub fn socket(&self) -> &Path {
        &self.socket
    }

    /// The raw generated client, for callers that test the wire itself.
    pub fn raw(&self) -> ArtifactServiceClient<Channel> {
        self.inner.clone()
    }

    /// Whether the driver accepts SaveStream. `UNIMPLEMENTED` means no, as in Argo.
    pub async fn supports_save_stream(&self) -> Result<bool> {
        match self.inner.clone().get_capabilities(pb::GetCapabilitiesRequest {}).await {
            Ok(r) => Ok(r.into_inner().supports_save_stream),
            Err(s) if s.code() == tonic::Code::Unimplemented => Ok(false),
            Err(s) => Err(s.into()),
        }
    }

    /// Uploads the local file or directory `path` to `location`.
    pub async fn save(&self, location: &Location, path: &Path) -> Result<()> {
        let req = pb::SaveArtifactRequest {
            path: path.to_string_lossy().into_owned(),
            output_artifact: Some(location.to_artifact()),
        };
        let r = self.inner.clone().save(req).await?;
        in_band(r, |m| (m.success, m.error))
    }

    /// Downloads `location` to the local `path` (a file or a directory).
    pub async fn load(&self, location: &Location, path: &Path) -> Result<()> {
        let req = pb::LoadArtifactRequest {
            input_artifact: Some(location.to_artifact()),
            path: path.to_string_lossy().into_owned(),
        };
        let r = self.inner.clone().load(req).await?;
        in_band(r, |m| (m.success, m.error))
    }

    /// Deletes `location` and everything under it.
    pub async fn delete(&self, location: &Location) -> Result<()> {
        let r = self.inner.clone().delete(pb::DeleteArtifactRequest { artifact: Some(location.to_artifact()) }).await?;
        in_band(r, |m| (m.success, m.error))
    }

    /// Full keys of every object under `location`'s key.
    pub async fn list(&self, location: &Location) -> Result<Vec<String>> {
        let r =
            self.inner.clone().list_objects(pb::ListObjectsRequest { artifact: Some(location.to_artifact()) }).await?;
        error_field(r, |m| (m.objects, m.error))
    }

    /// Whether `location`'s key is a directory.
    pub async fn is_directory(&self, location: &Location) -> Result<bool> {
        let r =
            self.inner.clone().is_directory(pb::IsDirectoryRequest { artifact: Some(location.to_artifact()) }).await?;
        error_field(r, |m| (m.is_directory, m.error))
    }

    /// The bytes of `location`. Frame-level protocol violations (data in the
    /// `is_end` frame, frames after it, an `error` frame) become errors, so a
    /// broken stream is never mistaken for a shorter object.
    pub async fn open_stream(&self, location: &Location) -> Result<ByteStream> {
        let stream = self
            .inner
            .clone()
            .open_stream(pb::OpenStreamRequest { artifact: Some(location.to_artifact()) })
            .await?
            .into_inner();
        let frames = stream.map(|frame| frame.map_err(Error::from));
        Ok(futures::stream::unfold((frames, false), |(mut frames, ended)| async move {
            if ended {
                return None;
            }
            match frames.next().await {
                None => None,
                Some(Err(e)) => Some((Err(e), (frames, true))),
                Some(Ok(f)) if !f.error.is_empty() => Some((Err(Error::other(f.error)), (frames, true))),
                Some(Ok(f)) if f.is_end && !f.data.is_empty() => {
                    Some((Err(Error::other("driver sent data in the is_end frame, which Argo drops")), (frames, true)))
                }
                Some(Ok(f)) if f.is_end => {
                    frames.next().await.map(|_| (Err(Error::other("driver sent frames after is_end")), (frames, true)))
                }
                Some(Ok(f)) => Some((Ok(f.data), (frames, false))),
            }
        })
        .boxed())
    }

    /// Uploads `data` to `location` through SaveStream: one metadata frame,
    /// then chunks of at most 2 MiB, as Argo's argo-server sends them.
    pub async fn save_stream(&self, location: &Location, data: ByteStream) -> Result<()> {
        let first =
            pb::SaveStreamArtifactRequest { output_artifact: Some(location.to_artifact()), chunk: Bytes::new() };
        let (tx, rx) = tokio::sync::mpsc::channel::<Option<pb::SaveStreamArtifactRequest>>(2);
        let (fail_tx, fail_rx) = tokio::sync::oneshot::channel::<Error>();
        // The request stream ends cleanly only on an explicit end marker
        // (`None`), sent after the last chunk. If the source fails, the pump
        // stops without it, the call below is dropped (cancelling the RPC so
        // the driver aborts the upload), and the request stream never ends:
        // a clean end would commit a truncated object.
        let pump = tokio::spawn(async move {
            let mut data = data;
            while let Some(item) = data.next().await {
                match item {
                    Ok(bytes) => {
                        for chunk in split(bytes) {
                            let frame = pb::SaveStreamArtifactRequest { output_artifact: None, chunk };
                            if tx.send(Some(frame)).await.is_err() {
                                return;
                            }
                        }
                    }
                    Err(err) => {
                        let _ = fail_tx.send(err);
                        return;
                    }
                }
            }
            let _ = tx.send(None).await;
        });
        let _pump = tokio_util::task::AbortOnDropHandle::new(pump);
        let outbound = futures::stream::once(std::future::ready(first)).chain(UntilEndMarker(rx));
        let mut client = self.inner.clone();
        let call = client.save_stream(outbound);
        tokio::select! {
            response = call => in_band(response?, |m| (m.success, m.error)),
            Ok(err) = fail_rx => Err(err.context("reading the data to upload")),
        }
    }
}

/// Frames from a channel; ends only at an explicit `None`. A channel closed
/// without one (the producer failed or was aborted) stays pending for good.
struct UntilEndMarker(tokio::sync::mpsc::Receiver<Option<pb::SaveStreamArtifactRequest>>);

impl futures::Stream for UntilEndMarker {
    type Item = pb::SaveStreamArtifactRequest;

    fn poll_next(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Self::Item>> {
        use std::task::Poll;
        match self.0.poll_recv(cx) {
            Poll::Ready(Some(Some(frame))) => Poll::Ready(Some(frame)),
            Poll::Ready(Some(None)) => Poll::Ready(None),
            Poll::Ready(None) | Poll::Pending => Poll::Pending,
        }
    }
}

fn split(mut bytes: Bytes) -> Vec<Bytes> {
    const CHUNK: usize = 2 << 20;
    let mut out = Vec::with_capacity(bytes.len() / CHUNK + 1);
    while bytes.len() > CHUNK {
        out.push(bytes.split_to(CHUNK));
    }
    if !bytes.is_empty() {
        out.push(bytes);
    }
    out
}

fn header_kind(meta: &tonic::metadata::MetadataMap) -> ErrorKind {
    meta.get(KIND_HEADER).and_then(|v| v.to_str().ok()).map(ErrorKind::from_name).unwrap_or(ErrorKind::Other)
}

/// ListObjects and IsDirectory report failure only through their `error` field.
fn error_field<T, V>(response: tonic::Response<T>, parts: impl FnOnce(T) -> (V, String)) -> Result<V> {
    let kind = header_kind(response.metadata());
    let (value, error) = parts(response.into_inner());
    if error.is_empty() { Ok(value) } else { Err(Error::new(kind, error)) }
}

fn in_band<T>(response: tonic::Response<T>, parts: impl FnOnce(T) -> (bool, String)) -> Result<()> {
    let kind = header_kind(response.metadata());
    let (success, error) = parts(response.into_inner());
    if success {
        Ok(())
    } else if error.is_empty() {
        Err(Error::new(kind, "driver answered success=false without a message"))
    } else {
        Err(Error::new(kind, error))
    }
}
