//! The web UI: one page and its script and styles, built into the binary
//! (no CDN, works offline), plus the login page that sets the token cookie.

use crate::auth::{self, COOKIE};
use crate::state::AppState;
use axum::Form;
use axum::Router;
use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::get;
use serde::Deserialize;

const INDEX: &str = include_str!("../assets/index.html");
const SCRIPT: &str = include_str!("../assets/app.js");
const STYLE: &str = include_str!("../assets/app.css");
const LOGIN: &str = include_str!("../assets/login.html");

/// The page's own script and styles only: nothing inline, nothing from elsewhere.
const PAGE_POLICY: &str =
    "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; frame-ancestors 'none'";

pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/", get(|| async { page(INDEX) }))
        .route("/static/app.js", get(|| async { asset(SCRIPT, "text/javascript; charset=utf-8") }))
        .route("/static/app.css", get(|| async { asset(STYLE, "text/css; charset=utf-8") }))
        .route("/login", get(|| async { page(LOGIN) }).post(login))
        .route("/healthz", get(|| async { "ok\n" }))
}

fn page(html: &'static str) -> Response {
    let mut r = Html(html).into_response();
    r.headers_mut().insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(PAGE_POLICY));
    r.headers_mut().insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    r
}

fn asset(body: &'static str, kind: &'static str) -> Response {
    ([(header::CONTENT_TYPE, kind), (header::CACHE_CONTROL, "no-cache")], body).into_response()
}

#[derive(Deserialize)]
pub(crate) struct LoginForm {
    token: String,
}

/// Checks the token and keeps it in an HttpOnly, same-site cookie, so the
/// page's fetches and artifact links carry it.
async fn login(State(state): State<AppState>, Form(form): Form<LoginForm>) -> Response {
    let ok = match &state.options.token {
        Some(t) => auth::matches(t, form.token.trim()),
        None => true,
    };
    if !ok {
        return Redirect::to("/login?failed").into_response();
    }
    let cookie = format!("{COOKIE}={}; Path=/; HttpOnly; SameSite=Strict", form.token.trim());
    let mut r = Redirect::to("/").into_response();
    if let Ok(v) = HeaderValue::from_str(&cookie) {
        r.headers_mut().insert(header::SET_COOKIE, v);
    }
    r
}
