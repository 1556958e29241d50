//! `GET /api/offsite` (admins): where off-site copies stand: the bucket and this box's
//! prefix, clips queued, uploaded and failed with their bytes, body bytes sent, the last
//! upload and the last error. Never a credential. Each clip's own state is in the clip
//! list (`offsite`: local, queued, uploaded or "failed: reason").

use super::error::AppError;
use super::error::blocking;
use super::{Admin, AppState};
use axum::Json;
use axum::extract::State;
use serde_json::{Value, json};
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;

pub async fn status(State(s): State<Arc<AppState>>, _: Admin) -> Result<Json<Value>, AppError> {
    let Some(h) = s.offsite.clone() else {
        return Ok(Json(json!({"enabled": false})));
    };
    let store = s.store.clone();
    let counts = blocking(move || Ok(store.offsite_counts()?)).await?;
    let sent = h
        .throttle
        .as_ref()
        .map_or(0, |t| t.sent_bytes.load(Relaxed));
    let last_error = h.status.error();
    Ok(Json(json!({
        "enabled": true, "bucket": h.bucket, "prefix": h.prefix,
        "queued": counts.queued, "uploaded": counts.uploaded, "failed": counts.failed,
        "waiting_bytes": counts.waiting_bytes, "uploaded_bytes": counts.uploaded_bytes,
        "records_pending": counts.records_pending,
        "sent_bytes": sent,
        "uploads_since_start": h.status.uploaded_total.load(Relaxed),
        "failures_since_start": h.status.failed_total.load(Relaxed),
        "last_upload_ms": match h.status.last_upload_ms.load(Relaxed) { 0 => None, ms => Some(ms) },
        "last_error": (!last_error.is_empty()).then_some(last_error),
    })))
}
