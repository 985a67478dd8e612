//! Who may ask: a bearer token when one is set (always, off loopback), and
//! actions only from this server's own pages or from non-browser clients.

use crate::error::Error;
use crate::state::AppState;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, Method, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use subtle::ConstantTimeEq;

/// The cookie the login page sets, so a browser's downloads carry the token.
pub(crate) const COOKIE: &str = "ferry_token";

/// The token a request carries: `Authorization: Bearer …`, else the cookie.
fn presented(headers: &HeaderMap) -> Option<&str> {
    if let Some(v) = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()) {
        return v.strip_prefix("Bearer ").map(str::trim);
    }
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|c| c.trim().strip_prefix(COOKIE)?.strip_prefix('='))
}

/// Whether `given` is the token, compared in constant time.
pub(crate) fn matches(token: &str, given: &str) -> bool {
    // Lengths are compared in the open: they say nothing of the bytes.
    token.len() == given.len() && bool::from(token.as_bytes().ct_eq(given.as_bytes()))
}

/// Refuses a request without the token (when one is set), and a cross-site
/// request for anything that is not a read. The login page and the UI's
/// static files are open, so a browser can log in.
pub(crate) async fn guard(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let path = request.uri().path();
    let open = path == "/login" || path.starts_with("/static/") || path == "/healthz";
    if let Some(token) = &state.options.token
        && !open
        && !presented(request.headers()).is_some_and(|g| matches(token, g))
    {
        // A person opening a page is sent to log in; a script is told why.
        let wants_html = request
            .headers()
            .get(header::ACCEPT)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|a| a.contains("text/html"));
        if request.method() == Method::GET && wants_html && !path.starts_with("/api/") {
            return Redirect::to("/login").into_response();
        }
        return Error::Unauthorized.into_response();
    }
    if !is_read(request.method())
        && let Err(e) = same_origin(request.headers())
    {
        return e.into_response();
    }
    next.run(request).await
}

fn is_read(m: &Method) -> bool {
    matches!(*m, Method::GET | Method::HEAD | Method::OPTIONS)
}

/// CSRF: a browser names the page a request comes from (`Origin`,
/// `Sec-Fetch-Site`); an action is taken only from this server's own pages.
/// Clients that are not browsers (curl, scripts) send neither.
fn same_origin(headers: &HeaderMap) -> Result<(), Error> {
    if let Some(site) = headers.get("sec-fetch-site").and_then(|v| v.to_str().ok())
        && !matches!(site, "same-origin" | "none")
    {
        return Err(Error::Forbidden(format!("refused a {site} request: actions come only from this server's pages")));
    }
    if let Some(origin) = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) {
        let host = headers.get(header::HOST).and_then(|v| v.to_str().ok()).unwrap_or_default();
        let origin_host = origin.split_once("://").map_or(origin, |(_, h)| h);
        if origin_host != host {
            return Err(Error::Forbidden(format!(
                "refused a request from origin {origin}: actions come only from this server's pages"
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, v.parse().unwrap());
        }
        h
    }

    #[test]
    fn a_token_comes_from_the_header_or_the_cookie() {
        assert_eq!(presented(&headers(&[("authorization", "Bearer abc")])), Some("abc"));
        assert_eq!(presented(&headers(&[("cookie", "x=1; ferry_token=abc")])), Some("abc"));
        assert_eq!(presented(&headers(&[("cookie", "ferry_tokens=abc")])), None);
        assert_eq!(presented(&headers(&[])), None);
        assert!(matches("secret", "secret"));
        assert!(!matches("secret", "secreT") && !matches("secret", "secret2") && !matches("secret", ""));
    }

    #[test]
    fn actions_from_other_sites_are_refused() {
        assert!(same_origin(&headers(&[])).is_ok(), "curl sends no origin");
        assert!(same_origin(&headers(&[("host", "127.0.0.1:2746"), ("origin", "http://127.0.0.1:2746")])).is_ok());
        assert!(same_origin(&headers(&[("host", "127.0.0.1:2746"), ("origin", "https://evil.example")])).is_err());
        assert!(same_origin(&headers(&[("sec-fetch-site", "cross-site")])).is_err());
        assert!(same_origin(&headers(&[("sec-fetch-site", "same-origin")])).is_ok());
    }
}
