//! Telling a finished client stream from a cancelled one.
//!
//! tonic's server-side decoder turns a client's `RST_STREAM(CANCEL)` into a
//! clean end of the request stream. For SaveStream that would commit a
//! truncated upload whenever a client gives up half-way, which Argo's client
//! does when its reader fails. This layer watches each request body below
//! tonic and records whether it really reached its end.

use bytes::Bytes;
use http_body::{Body, Frame};
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};

/// Put in every request's extensions: whether its body ended with END_STREAM.
#[derive(Clone, Debug, Default)]
pub struct BodyEnd(Arc<AtomicBool>);

impl BodyEnd {
    /// True once the body has been read to a clean end.
    pub fn reached(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }
}

/// Wraps a request body, noting a clean end in its [`BodyEnd`].
pub struct Watched<B> {
    inner: B,
    end: BodyEnd,
}

impl<B> Body for Watched<B>
where
    B: Body<Data = Bytes> + Unpin,
{
    type Data = Bytes;
    type Error = B::Error;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, B::Error>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        if let Poll::Ready(None) = polled {
            self.end.0.store(true, Ordering::SeqCst);
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

/// The request mapping to install on any server hosting a
/// [`DriverService`](crate::DriverService):
/// `Server::builder().layer(tower::util::MapRequestLayer::new(ferry_sdk::server::watch))`.
/// [`serve`](crate::serve) does this itself. Without it, SaveStream refuses
/// every upload, since a cancelled one could not be told from a complete one.
pub fn watch(mut request: http::Request<tonic::body::Body>) -> http::Request<tonic::body::Body> {
    let end = BodyEnd::default();
    request.extensions_mut().insert(end.clone());
    request.map(|inner| tonic::body::Body::new(Watched { inner, end }))
}

/// Ends a SaveStream's data with an error when the client cancelled instead
/// of finishing, so the driver aborts the upload instead of committing a
/// truncated object. `end` is the request's [`BodyEnd`], if [`watch`] ran.
pub(crate) struct CancelledAtEnd {
    end: Option<BodyEnd>,
    checked: bool,
}

impl CancelledAtEnd {
    pub(crate) fn new(end: Option<BodyEnd>) -> Self {
        CancelledAtEnd { end, checked: false }
    }
}

impl futures::Stream for CancelledAtEnd {
    type Item = crate::Result<Bytes>;

    fn poll_next(mut self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if self.checked {
            return Poll::Ready(None);
        }
        self.checked = true;
        Poll::Ready(match &self.end {
            Some(end) if end.reached() => None,
            Some(_) => Some(Err(crate::Error::new(
                crate::ErrorKind::Transient,
                "SaveStream cancelled by the client before its end; nothing saved",
            ))),
            // Fail safe: without the watcher a cancel looks like a clean end.
            None => Some(Err(crate::Error::other(
                "this server lacks the ferry_sdk::server::watch layer, so SaveStream cannot tell a \
                 cancelled upload from a complete one; refusing to save",
            ))),
        })
    }
}
