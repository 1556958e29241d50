//! The dashboard's files, compiled into the binary (no CDN, no inline script): the app
//! page at `/` (signed in), the login page and the static assets (public, nothing secret
//! in them), plus `/api/me` for the app.

use super::error::AppError;
use super::{SessionId, csrf_token};
use crate::auth::Principal;
use axum::Extension;
use axum::extract::Path;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use serde_json::json;

const INDEX_HTML: &str = include_str!("assets/index.html");
const LOGIN_HTML: &str = include_str!("assets/login.html");
const APP_CSS: &str = include_str!("assets/app.css");
const ICON_SVG: &str = include_str!("assets/icon.svg");

/// The dashboard's scripts, ES modules that import what they use (app.js is the entry).
const SCRIPTS: &[(&str, &str)] = &[
    ("app.js", include_str!("assets/app.js")),
    ("dom.js", include_str!("assets/dom.js")),
    ("insights.js", include_str!("assets/insights.js")),
    ("cameras.js", include_str!("assets/cameras.js")),
    ("live.js", include_str!("assets/live.js")),
    ("login.js", include_str!("assets/login.js")),
    ("review.js", include_str!("assets/review.js")),
    ("timeline.js", include_str!("assets/timeline.js")),
];

/// Paths served without a login.
pub fn is_public(path: &str) -> bool {
    path == "/healthz" || path == "/login" || path.starts_with("/assets/")
}

fn page(body: &'static str) -> Response {
    ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], body).into_response()
}

pub async fn index() -> Response {
    page(INDEX_HTML)
}

pub async fn login() -> Response {
    page(LOGIN_HTML)
}

pub async fn asset(Path(file): Path<String>) -> Result<Response, AppError> {
    let script = SCRIPTS.iter().find(|(name, _)| *name == file);
    let (body, kind) = match (file.as_str(), script) {
        (_, Some((_, js))) => (*js, "text/javascript; charset=utf-8"),
        ("app.css", None) => (APP_CSS, "text/css; charset=utf-8"),
        ("icon.svg", None) => (ICON_SVG, "image/svg+xml"),
        _ => return Err(AppError::not_found("no such asset")),
    };
    Ok(([(header::CONTENT_TYPE, kind)], body).into_response())
}

pub async fn me(
    Extension(p): Extension<Principal>,
    session: Option<Extension<SessionId>>,
) -> axum::Json<serde_json::Value> {
    axum::Json(json!({
        "username": p.user,
        "user_type": p.role.as_str(),
        "csrf_token": session.map(|s| csrf_token(&s.0.0)),
    }))
}
