//! A request the server cannot decode is the caller's error.
//!
//! tonic answers a message it cannot decode (a `string` field that is not
//! UTF-8, a truncated message) with `INTERNAL`, which clients read as a fault
//! of the driver and retry or report as such. The request is what is wrong:
//! this response map turns that one status into `INVALID_ARGUMENT`, keeping
//! its message (which names the field).

use http::HeaderValue;

/// The `grpc-message` tonic-prost gives a decode failure, raw or percent-encoded.
const DECODE_FAILURE: [&[u8]; 2] = [b"failed to decode Protobuf message", b"failed%20to%20decode%20Protobuf%20message"];

/// Rewrites a trailers-only `INTERNAL` decode failure to `INVALID_ARGUMENT`.
pub fn decode_failure_as_invalid_argument<B>(mut response: http::Response<B>) -> http::Response<B> {
    let headers = response.headers();
    let internal = headers.get("grpc-status").is_some_and(|v| v.as_bytes() == b"13");
    let decode = headers
        .get("grpc-message")
        .is_some_and(|m| DECODE_FAILURE.iter().any(|prefix| m.as_bytes().starts_with(prefix)));
    if internal && decode {
        response.headers_mut().insert("grpc-status", HeaderValue::from_static("3"));
    }
    response
}
