//! The one error type of the HTTP layer: every failure becomes `{"error": Kind, "message":
//! …}` with the right status, in one place. Internal errors are logged with their detail
//! and answered with a generic message: no path, key or camera URL ever leaves here.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

#[derive(Debug)]
pub struct AppError {
    pub status: StatusCode,
    pub kind: &'static str,
    pub message: String,
    pub retry_after_s: Option<u64>,
    /// For 416: the file's length, sent as `Content-Range: bytes */N`.
    pub unsatisfied_total: Option<u64>,
    /// For a refused config entry: each `(key, message)`, sent as `problems`.
    pub problems: Vec<(String, String)>,
}

impl AppError {
    fn new(status: StatusCode, kind: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            kind,
            message: message.into(),
            retry_after_s: None,
            unsatisfied_total: None,
            problems: Vec::new(),
        }
    }
    pub fn bad_request(m: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "BadRequest", m)
    }
    pub fn unauthorized() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "Unauthorized",
            "log in with a user name and password",
        )
    }
    pub fn forbidden(m: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "Forbidden", m)
    }
    pub fn not_found(m: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "NotFound", m)
    }
    /// 410: the thing existed but cannot be had any more (a damaged or vanished file).
    pub fn gone(m: impl Into<String>) -> Self {
        Self::new(StatusCode::GONE, "Gone", m)
    }
    pub fn conflict(m: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, "Conflict", m)
    }
    pub fn too_many(retry_after_s: u64, m: impl Into<String>) -> Self {
        Self {
            retry_after_s: Some(retry_after_s),
            ..Self::new(StatusCode::TOO_MANY_REQUESTS, "TooManyRequests", m)
        }
    }
    pub fn range_not_satisfiable(total: u64) -> Self {
        Self {
            unsatisfied_total: Some(total),
            ..Self::new(
                StatusCode::RANGE_NOT_SATISFIABLE,
                "RangeNotSatisfiable",
                format!("the range is outside the {total}-byte file"),
            )
        }
    }
    /// Logs `detail` and answers a generic 500.
    pub fn internal(detail: impl std::fmt::Display) -> Self {
        tracing::error!("http: {detail}");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "Internal",
            "internal error; see the server log",
        )
    }
}

impl From<crate::store::StoreError> for AppError {
    fn from(e: crate::store::StoreError) -> Self {
        match e {
            crate::store::StoreError::NotFound(id) => Self::not_found(format!("{id} not found")),
            e @ crate::store::StoreError::Unservable { .. } => Self::gone(e.to_string()),
            // The file's own words (no path): truncated, tampered, wrong key…
            crate::store::StoreError::Clip(e) => {
                Self::gone(format!("the file cannot be served: {e}"))
            }
            crate::store::StoreError::Io { error, .. }
                if error.kind() == std::io::ErrorKind::NotFound =>
            {
                Self::gone("the file is gone")
            }
            e => Self::internal(e),
        }
    }
}

impl From<crate::auth::LoginError> for AppError {
    fn from(e: crate::auth::LoginError) -> Self {
        match e {
            crate::auth::LoginError::Locked { retry_after_s } => {
                Self::too_many(retry_after_s, "too many failed logins: try again later")
            }
            crate::auth::LoginError::Throttled { retry_after_s } => Self::too_many(
                retry_after_s,
                "too many password checks from this address: wait a minute",
            ),
            crate::auth::LoginError::Refused => Self::unauthorized(),
            crate::auth::LoginError::TokenExpired => Self::new(
                StatusCode::UNAUTHORIZED,
                "Unauthorized",
                "this API token has expired",
            ),
            crate::auth::LoginError::Internal(e) => Self::internal(e),
        }
    }
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        let mut body = serde_json::json!({"error": self.kind, "message": self.message});
        if !self.problems.is_empty() {
            body["problems"] = self
                .problems
                .iter()
                .map(|(key, message)| serde_json::json!({"key": key, "message": message}))
                .collect();
        }
        let mut resp = (self.status, axum::Json(body)).into_response();
        let h = resp.headers_mut();
        if self.status == StatusCode::UNAUTHORIZED {
            h.insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Basic realm=\"sentrix\", charset=\"UTF-8\""),
            );
        }
        if let Some(s) = self.retry_after_s
            && let Ok(v) = HeaderValue::from_str(&s.to_string())
        {
            h.insert(header::RETRY_AFTER, v);
        }
        if let Some(total) = self.unsatisfied_total
            && let Ok(v) = HeaderValue::from_str(&format!("bytes */{total}"))
        {
            h.insert(header::CONTENT_RANGE, v);
        }
        resp
    }
}

/// Runs `f` (SQLite, file I/O) on the blocking pool: a handler never blocks a runtime thread.
pub async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, AppError> + Send + 'static,
) -> Result<T, AppError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(AppError::internal)?
}
