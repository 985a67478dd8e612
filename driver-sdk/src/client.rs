//! A typed client for any driver speaking `artifact.ArtifactService` on a unix
//! socket, and Ferry's optional `ferry.v1.ObjectService` where the driver
//! offers it. The executor and the conformance suite both use it.

use crate::error::{Error, ErrorKind, Result};
use crate::stream::ByteStream;
use bytes::Bytes;
use ferry_proto as pb;
use ferry_proto::artifact_service_client::ArtifactServiceClient;
use ferry_proto::ferry_v1::{self, object_service_client::ObjectServiceClient};
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
    /// Ferry's extension service, on the same connection.
    objects: ObjectServiceClient<Channel>,
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
                    let inner = ArtifactServiceClient::new(channel.clone())
                        .max_decoding_message_size(8 << 20)
                        .max_encoding_message_size(8 << 20);
                    let objects = ObjectServiceClient::new(channel).max_decoding_message_size(8 << 20);
                    return Ok(DriverClient { inner, objects, socket });
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

    /// The raw generated client of `ferry.v1.ObjectService`, for callers
    /// that test the wire itself.
    pub fn raw_objects(&self) -> ObjectServiceClient<Channel> {
        self.objects.clone()
    }

    /// Whether the driver accepts SaveStream. `UNIMPLEMENTED` means no, as in Argo.
    pub async fn supports_save_stream(&self) -> Result<bool> {
        let answer = offered(self.inner.clone().get_capabilities(pb::GetCapabilitiesRequest {}).await)?;
        Ok(answer.is_some_and(|r| r.supports_save_stream))
    }

    /// The size in bytes of the object at `location`, through Ferry's
    /// `ferry.v1.ObjectService`: `None` when the driver does not offer it
    /// (it answers `UNIMPLEMENTED`: a driver written in another language, or
    /// one whose storage cannot tell), an error of kind
    /// [`ErrorKind::NotFound`] for a missing key.
    pub async fn stat(&self, location: &Location) -> Result<Option<u64>> {
        let request = ferry_v1::StatRequest { artifact: Some(location.to_artifact()) };
        Ok(offered(self.objects.clone().stat(request).await)?.map(|r| r.size))
    }

    /// The bytes `offset..offset + length` of the object at `location`,
    /// through Ferry's `ferry.v1.ObjectService`, clamped to the object's end
    /// (a range past the end yields fewer bytes or none, not an error):
    /// `None` when the driver does not offer it (`UNIMPLEMENTED`), an error
    /// of kind [`ErrorKind::NotFound`] for a missing key. A stream the driver
    /// fails part-way ends with an `Err` item, never early.
    pub async fn open_range(&self, location: &Location, offset: u64, length: u64) -> Result<Option<ByteStream>> {
        let request = ferry_v1::ReadRangeRequest { artifact: Some(location.to_artifact()), offset, length };
        let Some(frames) = offered(self.objects.clone().read_range(request).await)? else { return Ok(None) };
        Ok(Some(byte_stream(frames, |f: ferry_v1::ReadRangeResponse| Step::Data(f.data))))
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
        let frames = self
            .inner
            .clone()
            .open_stream(pb::OpenStreamRequest { artifact: Some(location.to_artifact()) })
            .await?
            .into_inner();
        Ok(byte_stream(frames, |f: pb::OpenStreamResponse| {
            if !f.error.is_empty() {
                Step::Fail(Error::other(f.error))
            } else if f.is_end && !f.data.is_empty() {
                Step::Fail(Error::other("driver sent data in the is_end frame, which Argo drops"))
            } else if f.is_end {
                Step::End
            } else {
                Step::Data(f.data)
            }
        }))
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

/// What one frame of a streamed response means.
enum Step {
    /// Bytes of the object.
    Data(Bytes),
    /// The protocol's explicit end: no frame may follow.
    End,
    /// A frame that reports a failure or breaks the protocol.
    Fail(Error),
}

/// The bytes of a streamed response, each frame read by `step`. It ends with
/// the call's OK status or an [`Step::End`] frame; a failed call, a
/// [`Step::Fail`] frame or frames after the end are its last item, an `Err`,
/// so a broken stream is never mistaken for a shorter object.
fn byte_stream<F: Send + 'static>(frames: tonic::Streaming<F>, step: fn(F) -> Step) -> ByteStream {
    let frames = frames.map(|frame| frame.map_err(Error::from));
    futures::stream::unfold((frames, false), move |(mut frames, ended)| async move {
        if ended {
            return None;
        }
        match frames.next().await? {
            Err(e) => Some((Err(e), (frames, true))),
            Ok(f) => match step(f) {
                Step::Data(data) => Some((Ok(data), (frames, false))),
                Step::Fail(e) => Some((Err(e), (frames, true))),
                Step::End => {
                    frames.next().await.map(|_| (Err(Error::other("driver sent frames after is_end")), (frames, true)))
                }
            },
        }
    })
    .boxed()
}

/// The answer of a call a driver may not offer: `None` for `UNIMPLEMENTED`.
fn offered<T>(answer: std::result::Result<tonic::Response<T>, tonic::Status>) -> Result<Option<T>> {
    match answer {
        Ok(r) => Ok(Some(r.into_inner())),
        Err(s) if s.code() == tonic::Code::Unimplemented => Ok(None),
        Err(s) => Err(s.into()),
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
