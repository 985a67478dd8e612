//! The byte stream every transfer moves.

use crate::error::Result;
use bytes::Bytes;
use futures::stream::BoxStream;

/// A stream of an object's bytes, in order. An `Err` item means the transfer
/// failed: consumers must never treat the bytes before it as the whole object.
pub type ByteStream = BoxStream<'static, Result<Bytes>>;
