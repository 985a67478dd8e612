//! Stream framing: a driver's byte stream cut into the frames of OpenStream
//! (Argo's client reads them) or of ReadRange, with bounded memory and a
//! failure never shown as an end.

use super::shutdown::CallGuard;
use crate::stream::ByteStream;
use bytes::{Bytes, BytesMut};
use ferry_proto as pb;
use futures::{Stream, StreamExt};
use std::pin::Pin;
use std::time::Duration;
use tonic::Status;

/// The largest `data` payload of one OpenStream frame. Argo's client keeps
/// gRPC's default 4 MiB receive limit; 2 MiB leaves room and matches the
/// chunk size Argo itself sends in SaveStream.
pub const MAX_FRAME_BYTES: usize = 2 << 20;

/// Below this size, chunks are gathered into one frame (HTTP streams yield
/// many small pieces); larger chunks travel as they are, without a copy.
const COALESCE_BELOW: usize = 256 << 10;

/// The frames of one streaming response.
pub(crate) type FrameStream<F> = Pin<Box<dyn Stream<Item = std::result::Result<F, Status>> + Send>>;

/// One message of a streaming response that carries an object's bytes.
pub(crate) trait Frame: Sized + Send + 'static {
    /// The operation, as logs name it.
    const OP: &'static str;

    /// A frame carrying `data`.
    fn data(data: Bytes) -> Self;

    /// The frame that marks a complete stream, where the protocol has one.
    fn end() -> Option<Self>;
}

impl Frame for pb::OpenStreamResponse {
    const OP: &'static str = "open_stream";

    fn data(data: Bytes) -> Self {
        pb::OpenStreamResponse { data, ..Default::default() }
    }

    /// Argo's client needs an explicit end, and drops data sent in it.
    fn end() -> Option<Self> {
        Some(pb::OpenStreamResponse { data: Bytes::new(), is_end: true, error: String::new() })
    }
}

impl Frame for pb::ferry_v1::ReadRangeResponse {
    const OP: &'static str = "read_range";

    fn data(data: Bytes) -> Self {
        pb::ferry_v1::ReadRangeResponse { data }
    }

    /// A ReadRange ends with the call's OK status; failures are error statuses.
    fn end() -> Option<Self> {
        None
    }
}

/// `FERRY_STREAM_IDLE_TIMEOUT`: seconds an OpenStream may wait for its
/// client to take the next frame before it fails.
pub const STREAM_IDLE_TIMEOUT_ENV: &str = "FERRY_STREAM_IDLE_TIMEOUT";

/// Default of [`STREAM_IDLE_TIMEOUT_ENV`]: the HTTP clients' idle read
/// timeout, so a reader stalled this long is gone for any practical purpose.
pub const DEFAULT_STREAM_IDLE_TIMEOUT: Duration = Duration::from_secs(300);

/// Frames a byte stream: small pieces are gathered, no frame carries more
/// than [`MAX_FRAME_BYTES`], a failure becomes an error status (never a clean
/// end), and the stream ends with the protocol's end frame, if any (for
/// OpenStream one `is_end` frame without data). At most a few frames are
/// in flight, so memory stays bounded however slow the client reads. A client
/// that takes no frame for `idle` gets an error status in place of the rest
/// (trailers are not held back by flow control, so it arrives even then) and
/// its stream slot is freed; the stream never just stops.
pub(crate) fn frames<F: Frame>(
    data: ByteStream,
    key: String,
    call: (CallGuard, tokio::sync::OwnedSemaphorePermit),
    idle: Duration,
) -> FrameStream<F> {
    let (tx, rx) = tokio::sync::mpsc::channel::<std::result::Result<F, Status>>(2);
    let (fail_tx, fail_rx) = tokio::sync::oneshot::channel::<Status>();
    tokio::spawn(async move {
        let _call = call;
        let stalled = std::sync::atomic::AtomicBool::new(false);
        // False when the stream must stop: the client went away, or stalled.
        let send = |item: std::result::Result<F, Status>| {
            let (tx, stalled) = (tx.clone(), &stalled);
            async move {
                match tokio::time::timeout(idle, tx.send(item)).await {
                    Ok(sent) => sent.is_ok(),
                    Err(_) => {
                        stalled.store(true, std::sync::atomic::Ordering::Relaxed);
                        false
                    }
                }
            }
        };
        let frame = |data: Bytes| Ok(F::data(data));
        let pump = async {
            let mut data = data;
            let mut small = BytesMut::new();
            loop {
                let next = if small.is_empty() {
                    data.next().await
                } else {
                    // Flush gathered bytes as soon as nothing more is ready.
                    match futures::FutureExt::now_or_never(data.next()) {
                        Some(item) => item,
                        None => {
                            if !send(frame(small.split().freeze())).await {
                                return;
                            }
                            continue;
                        }
                    }
                };
                match next {
                    Some(Ok(chunk)) if chunk.len() < COALESCE_BELOW && small.len() + chunk.len() <= MAX_FRAME_BYTES => {
                        small.extend_from_slice(&chunk);
                    }
                    Some(Ok(mut chunk)) => {
                        if !small.is_empty() && !send(frame(small.split().freeze())).await {
                            return;
                        }
                        while !chunk.is_empty() {
                            let piece = chunk.split_to(chunk.len().min(MAX_FRAME_BYTES));
                            if !send(frame(piece)).await {
                                // The client went away; dropping `data` cancels the read.
                                return;
                            }
                        }
                    }
                    Some(Err(err)) => {
                        tracing::warn!(op = F::OP, key, error = %err, "failed mid-stream");
                        send(Err(Status::from(err))).await;
                        return;
                    }
                    None => break,
                }
            }
            if !small.is_empty() && !send(frame(small.split().freeze())).await {
                return;
            }
            if let Some(end) = F::end() {
                send(Ok(end)).await;
            }
        };
        pump.await;
        if stalled.load(std::sync::atomic::Ordering::Relaxed) {
            tracing::warn!(op = F::OP, key, idle_seconds = idle.as_secs(), "client took no data; stream failed");
            let _ = fail_tx.send(Status::deadline_exceeded(format!(
                "the client took no data for {} s ({STREAM_IDLE_TIMEOUT_ENV}); the stream is incomplete",
                idle.as_secs()
            )));
        }
    });
    // The failure goes first: the frames queued behind a stalled client are
    // never delivered, and the status ends the call as an error.
    let failed = futures::stream::once(fail_rx).filter_map(|r| std::future::ready(r.ok().map(Err)));
    let frames = tokio_stream::wrappers::ReceiverStream::new(rx);
    futures::stream::select_with_strategy(failed, frames, |_: &mut ()| futures::stream::PollNext::Left).boxed()
}
