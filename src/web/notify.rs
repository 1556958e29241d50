//! The notifications' state over the API: `GET /api/notify` (any signed-in user: the
//! armed mode and, per target, what it sent, failed and let expire, its last delivery and
//! last error, whether MQTT is connected and how many messages wait) and `PUT
//! /api/notify/armed {"mode": "home"|"away"|"off"}` (admins; kept across restarts,
//! audited). Never a target's URL, address or secret.

use super::error::AppError;
use super::error::blocking;
use super::{AppState, ClientIp, Operator};
use crate::config::notify::ArmedMode;
use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use serde_json::{Value, json};
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;

type St = State<Arc<AppState>>;

fn state(s: &AppState) -> Result<Arc<crate::notify::NotifyState>, AppError> {
    s.notify
        .clone()
        .ok_or_else(|| AppError::not_found("notifications are not running here"))
}

pub async fn status(State(s): St) -> Result<Json<Value>, AppError> {
    let n = state(&s)?;
    let store = s.store.clone();
    let names: Vec<String> = n.targets.iter().map(|t| t.name.clone()).collect();
    let pending = blocking(move || {
        names
            .iter()
            .map(|t| Ok(store.outbox_pending(t)?))
            .collect::<Result<Vec<i64>, AppError>>()
    })
    .await?;
    let targets: Vec<Value> = n
        .targets
        .iter()
        .zip(pending)
        .map(|(t, pending)| {
            let last = t.snapshot();
            json!({
                "name": t.name, "type": t.kind,
                "sent": t.sent.load(Relaxed), "failed": t.failed.load(Relaxed),
                "rejected": t.rejected.load(Relaxed),
                "expired": t.expired.load(Relaxed), "pending": pending,
                "last_ok_ms": last.last_ok_ms, "last_error": last.last_error,
                "last_error_ms": last.last_error_ms, "connected": last.connected,
            })
        })
        .collect();
    Ok(Json(
        json!({"armed": n.armed().as_str(), "targets": targets}),
    ))
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Armed {
    mode: ArmedMode,
}

pub async fn set_armed(
    State(s): St,
    Operator(p): Operator,
    ClientIp(ip): ClientIp,
    body: Bytes,
) -> Result<Json<Value>, AppError> {
    let Armed { mode } = serde_json::from_slice(&body)
        .map_err(|e| AppError::bad_request(format!("bad JSON body: {e}")))?;
    let n = state(&s)?;
    blocking(move || Ok(n.set_armed(mode)?)).await?;
    s.audit
        .log(Some(&p.user), ip, "notify_armed", mode.as_str());
    tracing::info!("notifications armed: {} (by {})", mode.as_str(), p.user);
    Ok(Json(json!({"armed": mode.as_str()})))
}
