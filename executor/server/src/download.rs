//! argo-server's artifact routes, answered through the artifact's driver:
//!
//! - `/artifacts/{ns}/{wf}/{nodeId}/{name}` and `/input-artifacts/…`: the object, streamed;
//! - `/artifacts-by-uid/{uid}/{nodeId}/{name}` and `/input-artifacts-by-uid/…`;
//! - `/artifact-files/{ns}/{workflows|archived-workflows}/{wf|uid}/{nodeId}/{inputs|outputs}/{name}[/{path…}]`:
//!   a directory artifact redirects to its listing (`…/`), a path inside it
//!   downloads that file.
//!
//! Bytes go from the driver's stream to the socket: nothing is staged on the
//! server's disk or held whole in memory.

use crate::error::{Error, Result};
use crate::lookup::{self, Run};
use crate::state::AppState;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use ferry_engine::{Direction, ToClient};
use ferry_sdk::client::{DriverClient, Location};
use futures::TryStreamExt;
use std::ops::RangeInclusive;

/// argo-server's headers for artifact content: a sandboxing CSP, so an HTML
/// artifact cannot script the server's origin, and no framing elsewhere.
pub(crate) const CONTENT_SECURITY_POLICY: &str =
    "sandbox allow-same-origin; base-uri 'none'; default-src 'none'; img-src 'self'; style-src 'self' 'unsafe-inline'";

/// What a download URL names, found and checked.
struct Wanted {
    run: Run,
    location: ferry_workflow::values::Location,
    /// The URL is a directory (`…/`).
    listing: bool,
    /// `/artifact-files/`: directories are told apart from files.
    browse: bool,
}

/// The URL's path split on `/` and percent-decoded, after the route's own
/// first segment. Splitting before decoding keeps `%2F` from making a segment.
fn segments(uri: &Uri) -> Result<Vec<String>> {
    let path = uri.path();
    path.split('/')
        .skip(2)
        .map(|s| {
            percent_encoding::percent_decode_str(s)
                .decode_utf8()
                .map(|c| c.into_owned())
                .map_err(|_| Error::BadRequest(format!("path segment {s:?} is not UTF-8 once decoded")))
        })
        .collect()
}

fn bad_shape(expected: &str) -> Error {
    Error::BadRequest(format!("expected {expected}"))
}

/// `/artifacts/…` and `/input-artifacts/…`: `{ns}/{wf}/{nodeId}/{name}`.
fn by_name(state: &AppState, uri: &Uri, direction: Direction) -> Result<Wanted> {
    let s = segments(uri)?;
    let [ns, wf, node, name] = s.as_slice() else {
        return Err(bad_shape("/artifacts/{namespace}/{workflow}/{nodeId}/{artifactName}"));
    };
    let run = lookup::run(state, wf, false)?.in_namespace(ns)?;
    found(state, run, node, direction, name, None, false, false)
}

/// `/artifacts-by-uid/…` and `/input-artifacts-by-uid/…`: `{uid}/{nodeId}/{name}`.
fn by_uid(state: &AppState, uri: &Uri, direction: Direction) -> Result<Wanted> {
    let s = segments(uri)?;
    let [uid, node, name] = s.as_slice() else {
        return Err(bad_shape("/artifacts-by-uid/{uid}/{nodeId}/{artifactName}"));
    };
    let run = lookup::run(state, uid, true)?;
    found(state, run, node, direction, name, None, false, false)
}

/// `/artifact-files/{ns}/{workflows|archived-workflows}/{id}/{nodeId}/{inputs|outputs}/{name}[/{path…}]`.
fn by_file(state: &AppState, uri: &Uri) -> Result<Wanted> {
    let s = segments(uri)?;
    let shape = "/artifact-files/{namespace}/workflows/{name}/{nodeId}/{inputs|outputs}/{artifactName}[/{path}]";
    let (Some([ns, kind, id, node, direction, name]), rest) = (s.get(..6), s.get(6..).unwrap_or_default()) else {
        return Err(bad_shape(shape));
    };
    let by_uid = match kind.as_str() {
        "workflows" => false,
        // Ferry keeps every run in its home: an "archived" one is found by uid.
        "archived-workflows" => true,
        _ => return Err(bad_shape(shape)),
    };
    let direction = match direction.as_str() {
        "outputs" => Direction::Output,
        "inputs" => Direction::Input,
        _ => return Err(bad_shape(shape)),
    };
    let run = lookup::run(state, id, by_uid)?.in_namespace(ns)?;
    let sub = lookup::sub_path(rest)?;
    let listing = uri.path().ends_with('/');
    found(state, run, node, direction, name, sub, listing, true)
}

#[allow(clippy::too_many_arguments)]
fn found(
    state: &AppState,
    run: Run,
    node: &str,
    direction: Direction,
    name: &str,
    sub: Option<String>,
    listing: bool,
    browse: bool,
) -> Result<Wanted> {
    let nodes = state.home.store().nodes(run.record.id).map_err(ferry_engine::Error::from)?;
    let node = lookup::node(&run, &nodes, node)?;
    let record = lookup::artifact(&state.home, &run, node, direction, name)?;
    let mut location = record.location;
    if let Some(sub) = sub {
        location.key = format!("{}/{sub}", location.key.trim_end_matches('/'));
    }
    Ok(Wanted { run, location, listing, browse })
}

pub(crate) async fn output(State(state): State<AppState>, uri: Uri, headers: HeaderMap) -> Response {
    let wanted = by_name(&state, &uri, Direction::Output);
    answer(state, wanted, &uri, &headers).await
}

pub(crate) async fn input(State(state): State<AppState>, uri: Uri, headers: HeaderMap) -> Response {
    let wanted = by_name(&state, &uri, Direction::Input);
    answer(state, wanted, &uri, &headers).await
}

pub(crate) async fn output_by_uid(State(state): State<AppState>, uri: Uri, headers: HeaderMap) -> Response {
    let wanted = by_uid(&state, &uri, Direction::Output);
    answer(state, wanted, &uri, &headers).await
}

pub(crate) async fn input_by_uid(State(state): State<AppState>, uri: Uri, headers: HeaderMap) -> Response {
    let wanted = by_uid(&state, &uri, Direction::Input);
    answer(state, wanted, &uri, &headers).await
}

pub(crate) async fn file(State(state): State<AppState>, uri: Uri, headers: HeaderMap) -> Response {
    let wanted = by_file(&state, &uri);
    answer(state, wanted, &uri, &headers).await
}

async fn answer(state: AppState, wanted: Result<Wanted>, uri: &Uri, headers: &HeaderMap) -> Response {
    let result = async {
        let wanted = wanted?;
        let pool = state.pools.get(&state.home, &wanted.run.record)?;
        let client = pool.client(&wanted.location.driver, wanted.location.timeout).await.map_err(engine)?;
        let location = wanted.location.to_client();
        if wanted.listing {
            return listing(&client, &location, uri).await;
        }
        if wanted.browse && is_directory(&client, &location).await? {
            return Ok(redirect(&format!("{}/", uri.path())));
        }
        // The pool stays alive (held by the body) until the last byte is sent.
        stream(&client, &location, headers, pool).await
    }
    .await;
    result.unwrap_or_else(IntoResponse::into_response)
}

fn engine(e: ferry_engine::DriverError) -> Error {
    Error::Engine(e.into())
}

/// Whether the key is a directory; a driver that cannot tell says no, as
/// argo-server treats UNIMPLEMENTED.
async fn is_directory(client: &DriverClient, location: &Location) -> Result<bool> {
    match client.is_directory(location).await {
        Ok(d) => Ok(d),
        Err(e) if e.kind() == ferry_sdk::ErrorKind::Unsupported => Ok(false),
        Err(e) => Err(e.into()),
    }
}

fn redirect(to: &str) -> Response {
    let mut r = StatusCode::TEMPORARY_REDIRECT.into_response();
    if let Ok(v) = HeaderValue::from_str(to) {
        r.headers_mut().insert(header::LOCATION, v);
    }
    r
}

fn security_headers(headers: &mut HeaderMap) {
    headers.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CONTENT_SECURITY_POLICY));
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("SAMEORIGIN"));
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
}

/// An HTML listing of a directory artifact's first level, as argo-server
/// renders it; a root `index.html` is redirected to instead.
async fn listing(client: &DriverClient, location: &Location, uri: &Uri) -> Result<Response> {
    let objects = client.list(location).await?;
    let prefix = format!("{}/", location.key.trim_end_matches('/'));
    let relative: Vec<&str> = objects.iter().filter_map(|o| o.strip_prefix(&prefix)).collect();
    if relative.is_empty() {
        return Err(Error::NotFound(format!("{} is not a directory artifact: nothing is stored under it", uri.path())));
    }
    if relative.contains(&"index.html") {
        return Ok(redirect(&format!("{}index.html", uri.path())));
    }
    let mut entries: Vec<String> = relative
        .iter()
        .map(|r| match r.split_once('/') {
            Some((dir, _)) => format!("{dir}/"),
            None => (*r).to_string(),
        })
        .collect();
    entries.sort();
    entries.dedup();
    let mut html = String::from("<!doctype html>\n<html><head><meta charset=\"utf-8\"><title>");
    html.push_str(&html_escape::encode_text(uri.path()));
    html.push_str("</title></head><body><ul>\n<li><a href=\"..\">..</a></li>\n");
    for e in &entries {
        let (name, slash) = e.strip_suffix('/').map_or((e.as_str(), ""), |n| (n, "/"));
        let href = lookup::encode_segment(name);
        html.push_str(&format!(
            "<li><a href=\"./{}{slash}\">{}</a></li>\n",
            html_escape::encode_double_quoted_attribute(&href),
            html_escape::encode_text(e)
        ));
    }
    html.push_str("</ul></body></html>\n");
    let mut r = ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], html).into_response();
    security_headers(r.headers_mut());
    Ok(r)
}

/// The object, streamed: with `Content-Length` and byte ranges when the
/// driver tells sizes (Ferry's `ObjectService`), else the whole object in
/// chunks. A stream that fails part-way aborts the response, so a client
/// never sees a short object as complete.
async fn stream<T: Send + Sync + 'static>(
    client: &DriverClient,
    location: &Location,
    request: &HeaderMap,
    keep: T,
) -> Result<Response> {
    let size = client.stat(location).await?;
    let range = match (size, request.get(header::RANGE)) {
        (Some(size), Some(value)) if !request.contains_key(header::IF_RANGE) => wanted_range(value, size)?,
        _ => None,
    };
    let (status, data, length) = match (range, size) {
        (Some(r), Some(size)) => {
            let len = r.end() - r.start() + 1;
            match client.open_range(location, *r.start(), len).await? {
                Some(data) => (StatusCode::PARTIAL_CONTENT, data, Some((len, Some((r, size))))),
                None => (StatusCode::OK, client.open_stream(location).await?, Some((size, None))),
            }
        }
        (_, size) => (StatusCode::OK, client.open_stream(location).await?, size.map(|s| (s, None))),
    };
    let key = location.key.clone();
    let body = Body::from_stream(
        data.map_ok(move |b| {
            let _ = &keep;
            b
        })
        .inspect_err(move |e| tracing::warn!(key = %key, "artifact stream failed part-way; the response is cut: {e}"))
        .map_err(std::io::Error::other),
    );
    let mut r = Response::new(body);
    *r.status_mut() = status;
    let h = r.headers_mut();
    let name = location.key.rsplit('/').next().unwrap_or_default();
    let mime = mime_guess::from_path(name).first_or_octet_stream();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_str(mime.essence_str()).unwrap_or(HeaderValue::from_static("application/octet-stream")),
    );
    if let Ok(v) = HeaderValue::from_str(&content_disposition(name)) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    if let Some((len, partial)) = length {
        h.insert(header::CONTENT_LENGTH, HeaderValue::from(len));
        h.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
        if let Some((r, size)) = partial
            && let Ok(v) = HeaderValue::from_str(&format!("bytes {}-{}/{size}", r.start(), r.end()))
        {
            h.insert(header::CONTENT_RANGE, v);
        }
    }
    security_headers(h);
    Ok(r)
}

/// The one range a `Range` header asks for, if it is one this server
/// serves: several ranges or a malformed header get the whole object (as
/// RFC 9110 allows); a range wholly past the end is 416.
fn wanted_range(value: &HeaderValue, size: u64) -> Result<Option<RangeInclusive<u64>>> {
    let Ok(text) = value.to_str() else { return Ok(None) };
    let Ok(parsed) = http_range_header::parse_range_header(text) else { return Ok(None) };
    match parsed.validate(size) {
        Ok(ranges) if ranges.len() == 1 => Ok(ranges.into_iter().next()),
        Ok(_) => Ok(None),
        Err(_) => Err(Error::RangeNotSatisfiable(size)),
    }
}

/// `filename="…"` as argo-server sends it, plus RFC 6266's `filename*` for
/// names that are not plain ASCII.
fn content_disposition(name: &str) -> String {
    let plain: String =
        name.chars().map(|c| if c.is_ascii_graphic() && c != '"' && c != '\\' || c == ' ' { c } else { '_' }).collect();
    let encoded = lookup::encode_segment(name);
    format!("filename=\"{plain}\"; filename*=UTF-8''{encoded}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_range_is_served_several_or_malformed_get_the_whole_object() {
        let r = |s: &str| wanted_range(&HeaderValue::from_str(s).unwrap(), 100);
        assert_eq!(r("bytes=0-9").unwrap(), Some(0..=9));
        assert_eq!(r("bytes=90-").unwrap(), Some(90..=99));
        assert_eq!(r("bytes=-5").unwrap(), Some(95..=99));
        assert_eq!(r("bytes=90-500").unwrap(), Some(90..=99));
        assert_eq!(r("bytes=0-1,5-6").unwrap(), None);
        assert_eq!(r("pages=1").unwrap(), None);
        assert!(matches!(r("bytes=100-"), Err(Error::RangeNotSatisfiable(100))));
    }

    #[test]
    fn file_names_are_quoted_safely() {
        assert_eq!(content_disposition("a.txt"), "filename=\"a.txt\"; filename*=UTF-8''a.txt");
        assert!(content_disposition("x\"y\n.txt").starts_with("filename=\"x_y_.txt\""));
    }
}
