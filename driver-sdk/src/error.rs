//! The SDK's one error type. Callers match on [`ErrorKind`], never on message text.

use std::fmt;

/// What went wrong, as a caller needs to know it to decide what to do next.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The key (or local path) does not exist. On the wire: gRPC `NOT_FOUND`.
    NotFound,
    /// The `configuration` string is malformed, has unknown fields, or names a missing secret.
    InvalidConfig,
    /// The request itself is malformed: no plugin block, an unsafe key, an empty path.
    InvalidArgument,
    /// The storage refused the credentials or the key escapes the driver's root.
    PermissionDenied,
    /// Worth retrying: throttling, 5xx, a reset connection, a timeout.
    Transient,
    /// The driver does not implement this operation (for example Save on a read-only driver).
    Unsupported,
    /// Anything else.
    Other,
}

impl ErrorKind {
    /// A stable lowercase name, used in messages and in the `ferry-error-kind` response header.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::NotFound => "not-found",
            ErrorKind::InvalidConfig => "invalid-config",
            ErrorKind::InvalidArgument => "invalid-argument",
            ErrorKind::PermissionDenied => "permission-denied",
            ErrorKind::Transient => "transient",
            ErrorKind::Unsupported => "unsupported",
            ErrorKind::Other => "other",
        }
    }

    /// The inverse of [`ErrorKind::as_str`]; unknown names become [`ErrorKind::Other`].
    pub fn from_name(name: &str) -> ErrorKind {
        match name {
            "not-found" => ErrorKind::NotFound,
            "invalid-config" => ErrorKind::InvalidConfig,
            "invalid-argument" => ErrorKind::InvalidArgument,
            "permission-denied" => ErrorKind::PermissionDenied,
            "transient" => ErrorKind::Transient,
            "unsupported" => ErrorKind::Unsupported,
            _ => ErrorKind::Other,
        }
    }

    /// The gRPC status code a failure of this kind travels as when it travels as a status.
    pub fn grpc_code(self) -> tonic::Code {
        match self {
            ErrorKind::NotFound => tonic::Code::NotFound,
            ErrorKind::InvalidConfig | ErrorKind::InvalidArgument => tonic::Code::InvalidArgument,
            ErrorKind::PermissionDenied => tonic::Code::PermissionDenied,
            ErrorKind::Transient => tonic::Code::Unavailable,
            ErrorKind::Unsupported => tonic::Code::Unimplemented,
            ErrorKind::Other => tonic::Code::Internal,
        }
    }

    /// The kind a status code stands for, used by the client.
    pub fn from_grpc_code(code: tonic::Code) -> ErrorKind {
        match code {
            tonic::Code::NotFound => ErrorKind::NotFound,
            tonic::Code::InvalidArgument | tonic::Code::OutOfRange => ErrorKind::InvalidArgument,
            tonic::Code::PermissionDenied | tonic::Code::Unauthenticated => ErrorKind::PermissionDenied,
            tonic::Code::Unavailable
            | tonic::Code::DeadlineExceeded
            | tonic::Code::ResourceExhausted
            | tonic::Code::Aborted => ErrorKind::Transient,
            tonic::Code::Unimplemented => ErrorKind::Unsupported,
            _ => ErrorKind::Other,
        }
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An error with a [`kind`](Error::kind), a message meant for the person reading
/// the workflow's status, and the underlying cause.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct Error {
    kind: ErrorKind,
    message: String,
    #[source]
    source: Option<Box<dyn std::error::Error + Send + Sync + 'static>>,
}

/// `Result` with the SDK's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// An error of `kind` with `message`.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Error { kind, message: message.into(), source: None }
    }

    /// Attaches the underlying cause; its text is appended to the message shown to users.
    #[must_use]
    pub fn with_source(mut self, source: impl std::error::Error + Send + Sync + 'static) -> Self {
        self.message = format!("{}: {}", self.message, source);
        self.source = Some(Box::new(source));
        self
    }

    /// Prefixes the message with where it happened, keeping the kind.
    #[must_use]
    pub fn context(mut self, what: impl fmt::Display) -> Self {
        self.message = format!("{what}: {}", self.message);
        self
    }

    /// What went wrong.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// The message without the kind.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// Shorthand for a [`ErrorKind::NotFound`] error.
    pub fn not_found(message: impl Into<String>) -> Self {
        Error::new(ErrorKind::NotFound, message)
    }

    /// Shorthand for a [`ErrorKind::InvalidConfig`] error.
    pub fn invalid_config(message: impl Into<String>) -> Self {
        Error::new(ErrorKind::InvalidConfig, message)
    }

    /// An [`ErrorKind::InvalidConfig`] error about one field of a driver's
    /// configuration, in the form every driver uses:
    /// ``invalid configuration: field `endpoint`: <why>``. `field` is the
    /// path as the user wrote it (`encryptionOptions.kmsKeyId`, `headers[2]`).
    pub fn invalid_field(field: &str, why: impl fmt::Display) -> Self {
        Error::invalid_config(format!("invalid configuration: field `{field}`: {why}"))
    }

    /// An [`ErrorKind::InvalidConfig`] error for a required field left out or
    /// empty: ``invalid configuration: field `bucket` is required``.
    pub fn missing_field(field: &str) -> Self {
        Error::invalid_config(format!("invalid configuration: field `{field}` is required"))
    }

    /// Shorthand for a [`ErrorKind::InvalidArgument`] error.
    pub fn invalid_argument(message: impl Into<String>) -> Self {
        Error::new(ErrorKind::InvalidArgument, message)
    }

    /// Shorthand for a [`ErrorKind::Unsupported`] error.
    pub fn unsupported(message: impl Into<String>) -> Self {
        Error::new(ErrorKind::Unsupported, message)
    }

    /// Shorthand for a [`ErrorKind::Other`] error.
    pub fn other(message: impl Into<String>) -> Self {
        Error::new(ErrorKind::Other, message)
    }

    /// Whether retrying the same call may succeed.
    pub fn is_transient(&self) -> bool {
        self.kind == ErrorKind::Transient
    }
}

impl From<std::io::Error> for Error {
    fn from(err: std::io::Error) -> Self {
        use std::io::ErrorKind as Io;
        let kind = match err.kind() {
            Io::NotFound => ErrorKind::NotFound,
            Io::PermissionDenied => ErrorKind::PermissionDenied,
            Io::Interrupted
            | Io::TimedOut
            | Io::ConnectionReset
            | Io::ConnectionAborted
            | Io::BrokenPipe
            | Io::WouldBlock => ErrorKind::Transient,
            Io::InvalidInput | Io::InvalidData => ErrorKind::InvalidArgument,
            _ => ErrorKind::Other,
        };
        Error { kind, message: err.to_string(), source: Some(Box::new(err)) }
    }
}

impl From<object_store::Error> for Error {
    fn from(err: object_store::Error) -> Self {
        use object_store::Error as Os;
        let kind = match &err {
            Os::NotFound { .. } => ErrorKind::NotFound,
            Os::PermissionDenied { .. } | Os::Unauthenticated { .. } => ErrorKind::PermissionDenied,
            Os::InvalidPath { .. } => ErrorKind::InvalidArgument,
            Os::NotSupported { .. } | Os::NotImplemented { .. } => ErrorKind::Unsupported,
            Os::UnknownConfigurationKey { .. } => ErrorKind::InvalidConfig,
            Os::Generic { source, .. } if looks_transient(source.as_ref()) => ErrorKind::Transient,
            // A listing's 403 comes as Generic (object_store maps only some
            // request kinds); it is a credentials problem like any other.
            Os::Generic { source, .. } if matches!(final_status(source.as_ref()), Some(401 | 403)) => {
                ErrorKind::PermissionDenied
            }
            _ => ErrorKind::Other,
        };
        let message = match &err {
            // Its text carries the store's own path (a host path for a
            // filesystem) and the server's raw body; the caller names the key.
            Os::NotFound { source, .. } => match server_code(&source.to_string()) {
                Some(code) => format!("not found (server error code {code})"),
                None => "not found".to_string(),
            },
            _ => without_body(&err.to_string()),
        };
        Error { kind, message, source: Some(Box::new(err)) }
    }
}

/// The `<Code>` of an S3-style XML error body in `text`.
fn server_code(text: &str) -> Option<&str> {
    let start = text.find("<Code>")? + "<Code>".len();
    let len = text[start..].find("</Code>")?;
    Some(&text[start..start + len]).filter(|c| !c.is_empty() && c.len() <= 64)
}

/// `text` with a raw XML error body replaced by the server's error code and
/// message: bodies break one-line displays (`ferry get`) and say nothing
/// the code does not.
fn without_body(text: &str) -> String {
    let Some(at) = text.find("<?xml").or_else(|| text.find("<Error>")) else { return text.to_string() };
    let head = text[..at].trim_end().trim_end_matches(':');
    let detail = |tag: &str| {
        let open = format!("<{tag}>");
        let start = text.find(&open)? + open.len();
        let len = text[start..].find(&format!("</{tag}>"))?;
        Some(crate::shown(&text[start..start + len]))
    };
    match (server_code(text), detail("Message")) {
        (Some(code), Some(m)) => format!("{head}: server error code {code}: {m}"),
        (Some(code), None) => format!("{head}: server error code {code}"),
        _ => format!("{head} (the server's body was not an S3 error)"),
    }
}

/// A network failure: the host and what happened, in words. Made by the
/// SDK's HTTP connector (`net`); kept here so telling transient failures
/// from permanent ones needs nothing from the connector.
#[cfg(feature = "http")]
#[derive(Debug)]
pub struct NetError {
    pub(crate) host: String,
    pub(crate) cause: String,
    pub(crate) transient: bool,
}

#[cfg(feature = "http")]
impl NetError {
    pub(crate) fn new(host: &str, cause: impl Into<String>) -> Self {
        NetError { host: host.to_string(), cause: cause.into(), transient: true }
    }

    /// Whether another attempt may succeed: not for a name that does not
    /// resolve or a certificate that is not trusted.
    pub fn is_transient(&self) -> bool {
        self.transient
    }

    /// `host[:port]` of the request.
    pub fn host(&self) -> &str {
        &self.host
    }

    /// What happened: "connection refused", "timed out ...", "DNS lookup failed: ...".
    pub fn cause(&self) -> &str {
        &self.cause
    }
}

#[cfg(feature = "http")]
impl std::fmt::Display for NetError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.host, self.cause)
    }
}

#[cfg(feature = "http")]
impl std::error::Error for NetError {}

/// object_store reports exhausted retries and I/O failures as `Generic`; the
/// cause chain tells whether another attempt could succeed.
fn looks_transient(err: &(dyn std::error::Error + 'static)) -> bool {
    let mut cur = Some(err);
    while let Some(e) = cur {
        // The SDK's HTTP connector knows: refused, reset and timed out are
        // worth another try later, DNS and TLS failures are not.
        #[cfg(feature = "http")]
        if let Some(net) = e.downcast_ref::<NetError>() {
            return net.is_transient();
        }
        if let Some(io) = e.downcast_ref::<std::io::Error>() {
            return Error::from(std::io::Error::new(io.kind(), "")).is_transient();
        }
        // 5xx, 408 and 429 are what object_store's retry loop retries.
        if let Some(code) = status_in(e)
            && (code >= 500 || code == 408 || code == 429)
        {
            return true;
        }
        cur = e.source();
    }
    false
}

/// The HTTP status object_store's retry error names in its message (its type
/// is private), in `e` itself.
fn status_in(e: &(dyn std::error::Error + 'static)) -> Option<u16> {
    let text = e.to_string();
    let at = text.find("status code: ")? + "status code: ".len();
    text.get(at..at + 3)?.parse().ok()
}

/// The first HTTP status named along the cause chain of `err`.
fn final_status(err: &(dyn std::error::Error + 'static)) -> Option<u16> {
    let mut cur = Some(err);
    while let Some(e) = cur {
        if let Some(code) = status_in(e) {
            return Some(code);
        }
        cur = e.source();
    }
    None
}

/// The longest message a status carries. It travels in the `grpc-message`
/// header, and clients refuse response headers over 8 KiB: a longer one
/// reached them as RESOURCE_EXHAUSTED instead of the real error.
const MAX_STATUS_MESSAGE_BYTES: usize = 4 << 10;

impl From<Error> for tonic::Status {
    fn from(err: Error) -> Self {
        let mut message = err.message;
        if message.len() > MAX_STATUS_MESSAGE_BYTES {
            let mut cut = MAX_STATUS_MESSAGE_BYTES;
            while !message.is_char_boundary(cut) {
                cut -= 1;
            }
            let total = message.len();
            message.truncate(cut);
            message.push_str(&format!("…(message cut from {total} bytes)"));
        }
        let mut status = tonic::Status::new(err.kind.grpc_code(), message);
        if let Ok(v) = err.kind.as_str().parse() {
            status.metadata_mut().insert(KIND_HEADER, v);
        }
        status
    }
}

impl From<tonic::Status> for Error {
    fn from(status: tonic::Status) -> Self {
        let kind = status
            .metadata()
            .get(KIND_HEADER)
            .and_then(|v| v.to_str().ok())
            .map(ErrorKind::from_name)
            .unwrap_or_else(|| ErrorKind::from_grpc_code(status.code()));
        let message = if status.message().is_empty() {
            format!("driver answered {:?}", status.code())
        } else {
            status.message().to_string()
        };
        Error::new(kind, message)
    }
}

/// The longest part of a user's value ever echoed in a message.
pub const SHOWN_BYTES: usize = 256;

/// A user-supplied value (a key, an endpoint, a path) as messages echo it:
/// quoted, and cut to [`SHOWN_BYTES`] with its full length after. Messages
/// travel in gRPC status headers, whose 8 KiB limit a 10 KB key exceeded,
/// so the caller saw RESOURCE_EXHAUSTED instead of the real error.
///
/// ```
/// assert_eq!(ferry_sdk::shown("a/b"), "\"a/b\"");
/// let long = ferry_sdk::shown(&"k".repeat(10_000));
/// assert!(long.len() < 300 && long.ends_with("…(10000 bytes)"));
/// ```
pub fn shown(value: &str) -> String {
    if value.len() <= SHOWN_BYTES {
        return format!("{value:?}");
    }
    let mut cut = SHOWN_BYTES;
    while !value.is_char_boundary(cut) {
        cut -= 1;
    }
    format!("{:?}…({} bytes)", &value[..cut], value.len())
}

/// Response metadata key carrying an [`ErrorKind`] name next to in-band
/// (`success=false`) errors, so Ferry clients keep the kind while Argo, which
/// ignores metadata, still sees the plain message.
pub const KIND_HEADER: &str = "ferry-error-kind";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kind_survives_status_round_trip() {
        for kind in [
            ErrorKind::NotFound,
            ErrorKind::InvalidConfig,
            ErrorKind::InvalidArgument,
            ErrorKind::PermissionDenied,
            ErrorKind::Transient,
            ErrorKind::Unsupported,
            ErrorKind::Other,
        ] {
            let status: tonic::Status = Error::new(kind, "boom").into();
            let back = Error::from(status);
            assert_eq!(back.kind(), kind);
            assert_eq!(back.message(), "boom");
            assert_eq!(ErrorKind::from_name(kind.as_str()), kind);
        }
    }

    #[test]
    fn field_errors_read_the_same_in_every_driver() {
        let e = Error::invalid_field("headers[2]", "invalid header value");
        assert_eq!(e.kind(), ErrorKind::InvalidConfig);
        assert_eq!(e.to_string(), "invalid configuration: field `headers[2]`: invalid header value");
        let e = Error::missing_field("bucket");
        assert_eq!(
            (e.kind(), e.to_string()),
            (ErrorKind::InvalidConfig, "invalid configuration: field `bucket` is required".into())
        );
    }

    #[test]
    fn io_errors_map_to_kinds() {
        let e = Error::from(std::io::Error::from(std::io::ErrorKind::NotFound));
        assert_eq!(e.kind(), ErrorKind::NotFound);
        let e = Error::from(std::io::Error::from(std::io::ErrorKind::ConnectionReset));
        assert!(e.is_transient());
    }

    #[test]
    fn long_messages_are_cut_to_fit_a_status_header() {
        let status: tonic::Status = Error::invalid_argument("é".repeat(10_000)).into();
        assert!(status.message().len() < 4200, "{}", status.message().len());
        assert!(status.message().ends_with("…(message cut from 20000 bytes)"));
        assert_eq!(shown("ab"), "\"ab\"");
        let long = shown(&"é".repeat(200));
        assert!(long.starts_with("\"éé") && long.ends_with("…(400 bytes)"), "{long}");
    }

    #[test]
    fn store_errors_carry_the_server_code_not_the_body_or_a_host_path() {
        let io = std::io::Error::from(std::io::ErrorKind::NotFound);
        let err = Error::from(object_store::Error::NotFound { path: "/srv/host/root/k".into(), source: Box::new(io) });
        assert_eq!((err.kind(), err.message()), (ErrorKind::NotFound, "not found"));
        let body = "Client error with status 404 Not Found: <?xml version=\"1.0\"?><Error><Code>NoSuchKey</Code><Message>The key does not exist</Message></Error>";
        let err = Error::from(object_store::Error::NotFound { path: "k".into(), source: body.into() });
        assert_eq!(err.message(), "not found (server error code NoSuchKey)");
        let err = Error::from(object_store::Error::Generic { store: "S3", source: body.into() });
        assert!(!err.message().contains('<') && err.message().contains("NoSuchKey"), "{err}");
    }

    #[test]
    fn status_without_header_uses_code() {
        let e = Error::from(tonic::Status::unavailable("down"));
        assert_eq!(e.kind(), ErrorKind::Transient);
    }
}
