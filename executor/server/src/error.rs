//! The server's one error type: each kind is an HTTP status, and each
//! message names what was wrong without any driver configuration in it.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

/// What went wrong with a request.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// No such run, node or artifact (404).
    #[error("{0}")]
    NotFound(String),
    /// The artifact was recorded but artifact GC deleted it (410).
    #[error("{0}")]
    Gone(String),
    /// A malformed request: a path with `..`, a bad range, a bad form (400).
    #[error("{0}")]
    BadRequest(String),
    /// No valid token (401).
    #[error("a valid bearer token is required (Authorization: Bearer …, or log in at /login)")]
    Unauthorized,
    /// A cross-site request for an action (403).
    #[error("{0}")]
    Forbidden(String),
    /// The request conflicts with the run's state (409).
    #[error("{0}")]
    Conflict(String),
    /// An upload over the limit (413).
    #[error("{0}")]
    TooLarge(String),
    /// A range outside the object (416), with the object's size.
    #[error("range not satisfiable: the object has {0} bytes")]
    RangeNotSatisfiable(u64),
    /// The server itself failed: a local file, its socket, a task (500).
    #[error("{0}")]
    Internal(String),
    /// A driver call failed; its kind picks the status.
    #[error("artifact driver: {0}")]
    Driver(#[from] ferry_sdk::Error),
    /// The engine failed (state database, driver start, plan).
    #[error("{0}")]
    Engine(#[from] ferry_engine::Error),
}

/// The server's result.
pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    /// The HTTP status of this error.
    pub fn status(&self) -> StatusCode {
        use ferry_sdk::ErrorKind;
        match self {
            Error::NotFound(_) => StatusCode::NOT_FOUND,
            Error::Gone(_) => StatusCode::GONE,
            Error::BadRequest(_) => StatusCode::BAD_REQUEST,
            Error::Unauthorized => StatusCode::UNAUTHORIZED,
            Error::Forbidden(_) => StatusCode::FORBIDDEN,
            Error::Conflict(_) => StatusCode::CONFLICT,
            Error::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            Error::RangeNotSatisfiable(_) => StatusCode::RANGE_NOT_SATISFIABLE,
            Error::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
            Error::Driver(e) => match e.kind() {
                ErrorKind::NotFound => StatusCode::NOT_FOUND,
                ErrorKind::InvalidArgument => StatusCode::BAD_REQUEST,
                ErrorKind::PermissionDenied => StatusCode::FORBIDDEN,
                ErrorKind::Unsupported => StatusCode::NOT_IMPLEMENTED,
                ErrorKind::Transient => StatusCode::SERVICE_UNAVAILABLE,
                _ => StatusCode::BAD_GATEWAY,
            },
            Error::Engine(ferry_engine::Error::NotFound(_)) => StatusCode::NOT_FOUND,
            Error::Engine(ferry_engine::Error::Conflict(_)) => StatusCode::CONFLICT,
            Error::Engine(ferry_engine::Error::Load(_) | ferry_engine::Error::Plan(_)) => StatusCode::BAD_REQUEST,
            Error::Engine(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

/// Plain text, as argo-server answers its artifact routes.
impl IntoResponse for Error {
    fn into_response(self) -> Response {
        let status = self.status();
        if status.is_server_error() {
            tracing::warn!(status = status.as_u16(), "{self}");
        }
        let mut response = (status, format!("{self}\n")).into_response();
        if let Error::RangeNotSatisfiable(size) = self
            && let Ok(v) = format!("bytes */{size}").parse()
        {
            response.headers_mut().insert(axum::http::header::CONTENT_RANGE, v);
        }
        response
    }
}

/// An error of the JSON API: `{"code": 404, "message": "…"}`.
#[derive(Debug)]
pub(crate) struct ApiError(pub(crate) Error);

impl<E: Into<Error>> From<E> for ApiError {
    fn from(e: E) -> Self {
        ApiError(e.into())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.0.status();
        if status.is_server_error() {
            tracing::warn!(status = status.as_u16(), "{}", self.0);
        }
        let body = serde_json::json!({ "code": status.as_u16(), "message": self.0.to_string() });
        (status, axum::Json(body)).into_response()
    }
}
