//! `GET /api/analytics?from=&to=&camera=&label=&tz_offset_min=`: the analytics summary
//! (store/analytics.rs) of events that started in [from, to) (ms since the epoch; by
//! default the last 7 days), in the viewer's time zone for days and hours of the day.
//! A range longer than 366 days is refused: the answer's size grows with it.

use super::error::AppError;
use super::error::blocking;
use super::{AppState, JsonQuery};
use crate::store::AnalyticsQuery;
use axum::Json;
use axum::extract::State;
use serde_json::{Value, json};
use std::sync::Arc;

const DAY_MS: i64 = 86_400_000;
const MAX_RANGE_DAYS: i64 = 366;

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Params {
    from: Option<i64>,
    to: Option<i64>,
    camera: Option<String>,
    label: Option<String>,
    /// Minutes east of UTC (the browser's `-getTimezoneOffset()`).
    #[serde(default)]
    tz_offset_min: i64,
}

pub async fn analytics(
    State(s): State<Arc<AppState>>,
    JsonQuery(p): JsonQuery<Params>,
) -> Result<Json<Value>, AppError> {
    let to_ms = p.to.unwrap_or_else(|| s.auth.now_ms());
    let from_ms = p.from.unwrap_or(to_ms - 7 * DAY_MS);
    if from_ms >= to_ms {
        return Err(AppError::bad_request("from must be before to"));
    }
    if to_ms - from_ms > MAX_RANGE_DAYS * DAY_MS {
        return Err(AppError::bad_request(format!(
            "the range may span at most {MAX_RANGE_DAYS} days"
        )));
    }
    if p.tz_offset_min.abs() > 14 * 60 {
        return Err(AppError::bad_request(
            "tz_offset_min must be within -840..=840",
        ));
    }
    let q = AnalyticsQuery {
        from_ms,
        to_ms,
        camera: p.camera,
        label: p.label,
        tz_offset_ms: p.tz_offset_min * 60_000,
    };
    let store = s.store.clone();
    let started = std::time::Instant::now();
    let summary = blocking(move || Ok(store.analytics(&q)?)).await?;
    let mut body = json!(summary);
    body["from_ms"] = json!(from_ms);
    body["to_ms"] = json!(to_ms);
    body["tz_offset_min"] = json!(p.tz_offset_min);
    body["query_ms"] = json!(started.elapsed().as_secs_f64() * 1000.0);
    Ok(Json(body))
}
