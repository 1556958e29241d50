//! Review items (store/review.rs): the list the dashboard lands on, one item with its
//! events and the recording that covers it, and the reviewed marks, which are per user.
//! Any signed-in user may mark what they have reviewed (it also acknowledges the events).

use super::error::{AppError, blocking};
use super::{AppState, ClientIp, JsonQuery};
use crate::auth::Principal;
use crate::store::{ReviewQuery, Severity};
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::{Extension, Json};
use serde_json::{Value, json};
use std::sync::Arc;

type St = State<Arc<AppState>>;

#[derive(serde::Deserialize)]
pub struct ReviewParams {
    camera: Option<String>,
    severity: Option<String>,
    reviewed: Option<bool>,
    since: Option<i64>,
    until: Option<i64>,
    limit: Option<u32>,
}

/// `severity=` of the list: absent, alerts and detections; `any`, motion too; or one.
fn listed_severity(text: Option<&str>) -> Result<(Option<Severity>, bool), AppError> {
    match text {
        None => Ok((None, true)),
        Some("any") => Ok((None, false)),
        Some(one) => Ok((severity(Some(one))?, false)),
    }
}

fn severity(text: Option<&str>) -> Result<Option<Severity>, AppError> {
    text.map(|t| {
        Severity::parse(t).ok_or_else(|| {
            AppError::bad_request(format!("severity {t:?} is not alert, detection or motion"))
        })
    })
    .transpose()
}

/// `GET /api/review`: items newest first (motion-only ones only when asked for, with
/// `severity=motion` or `any`), with the caller's unreviewed count per severity.
pub async fn list(
    State(s): St,
    Extension(p): Extension<Principal>,
    JsonQuery(q): JsonQuery<ReviewParams>,
) -> Result<Json<Value>, AppError> {
    let (severity, hide_motion) = listed_severity(q.severity.as_deref())?;
    let query = ReviewQuery {
        camera: q.camera,
        severity,
        hide_motion,
        reviewed: q.reviewed,
        since_ms: q.since,
        until_ms: q.until,
        limit: Some(q.limit.unwrap_or(100).min(1000)),
    };
    let store = s.store.clone();
    let (items, counts) = blocking(move || {
        let items = store.review_items(&query, &p.user)?;
        Ok((items, store.unreviewed_counts(&query, &p.user)?))
    })
    .await?;
    let unreviewed: serde_json::Map<String, Value> = counts
        .into_iter()
        .map(|(sev, n)| (sev.as_str().to_string(), json!(n)))
        .collect();
    Ok(Json(json!({"items": items, "unreviewed": unreviewed})))
}

/// `GET /api/review/{id}`: the item, its events, and the span and clips to play it from
/// (its pre-roll to its post-roll).
pub async fn one(
    State(s): St,
    Path(id): Path<i64>,
    Extension(p): Extension<Principal>,
) -> Result<Json<Value>, AppError> {
    let store = s.store.clone();
    let (pre_ms, post_ms) = s.store.retention().event_margin_ms;
    let (item, events, media) = blocking(move || {
        let item = store.review_item(id, &p.user)?;
        let events = store.review_item_events(id, 1000)?;
        let from_ms = item.start_ms - pre_ms;
        let to_ms = item.end_ms.map_or(i64::MAX / 2, |e| e + post_ms);
        let media = store.media_overlapping(&item.camera_id, from_ms, to_ms)?;
        Ok((item, events, media))
    })
    .await?;
    // The preview: the first clip or segment holding the item's start (else its first
    // media), from that start — played as recorded, nothing re-encoded.
    let preview = media
        .iter()
        .find(|m| m.start_ms <= item.start_ms && m.end_ms > item.start_ms)
        .or(media.first())
        .map(|m| json!({"clip_id": m.id, "offset_s": (item.start_ms - m.start_ms).max(0) as f64 / 1000.0}));
    let mut clip_ids: Vec<i64> = events.iter().filter_map(|e| e.clip_id).collect();
    clip_ids.sort_unstable();
    clip_ids.dedup();
    let recording = json!({
        "from_ms": item.start_ms - pre_ms,
        "to_ms": item.end_ms.map(|e| e + post_ms),
        "clip_ids": clip_ids,
        "preview": preview,
    });
    Ok(Json(
        json!({"item": item, "events": events, "recording": recording}),
    ))
}

/// `POST /api/review/{id}/reviewed`.
pub async fn mark(
    State(s): St,
    Path(id): Path<i64>,
    Extension(p): Extension<Principal>,
    ClientIp(ip): ClientIp,
) -> Result<Json<Value>, AppError> {
    let store = s.store.clone();
    let user = p.user.clone();
    let now_ms = crate::base::clock::wall_ms();
    let acknowledges = p.role.operates();
    blocking(move || {
        let who = crate::store::Reviewer {
            name: &user,
            acknowledges,
        };
        Ok(store.mark_reviewed(id, who, now_ms)?)
    })
    .await?;
    s.audit
        .log(Some(&p.user), ip, "review_reviewed", &id.to_string());
    announce_reviewed(&s, &[id]).await;
    Ok(Json(json!({"id": id, "reviewed": true})))
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct MarkAll {
    before_ms: i64,
    camera: Option<String>,
    severity: Option<String>,
}

/// `POST /api/review/reviewed` with `{before_ms, camera?, severity?}`: "mark all as
/// reviewed", only what it names.
pub async fn mark_all(
    State(s): St,
    Extension(p): Extension<Principal>,
    ClientIp(ip): ClientIp,
    body: Bytes,
) -> Result<Json<Value>, AppError> {
    let req: MarkAll = serde_json::from_slice(&body)
        .map_err(|e| AppError::bad_request(format!("bad JSON body: {e}")))?;
    let sev = severity(req.severity.as_deref())?;
    let store = s.store.clone();
    let user = p.user.clone();
    let now_ms = crate::base::clock::wall_ms();
    let camera = req.camera.clone();
    let acknowledges = p.role.operates();
    let ids = blocking(move || {
        let who = crate::store::Reviewer {
            name: &user,
            acknowledges,
        };
        Ok(store.mark_all_reviewed(who, req.before_ms, camera.as_deref(), sev, now_ms)?)
    })
    .await?;
    let marked = ids.len();
    announce_reviewed(&s, &ids).await;
    let what = format!(
        "{marked} items before {} (camera {}, severity {})",
        req.before_ms,
        req.camera.as_deref().unwrap_or("any"),
        sev.map_or("any", Severity::as_str)
    );
    s.audit.log(Some(&p.user), ip, "review_reviewed_all", &what);
    Ok(Json(json!({"marked": marked})))
}

/// Says on the review bus that items were reviewed (one notice per camera, for its newest
/// item), so live dashboards and MQTT's unreviewed-alerts sensor follow.
async fn announce_reviewed(s: &AppState, ids: &[i64]) {
    let Some(bus) = s.live.review_bus.clone() else {
        return;
    };
    let store = s.store.clone();
    let ids = ids.to_vec();
    let items = blocking(move || {
        let mut newest: std::collections::BTreeMap<String, crate::store::ReviewItem> =
            Default::default();
        for id in ids {
            let item = store.review_item(id, "")?;
            let newer = newest
                .get(&item.camera_id)
                .is_none_or(|had| had.start_ms < item.start_ms);
            if newer {
                newest.insert(item.camera_id.clone(), item);
            }
        }
        Ok(newest.into_values().collect::<Vec<_>>())
    })
    .await;
    for item in items.unwrap_or_default() {
        let _ = bus.send(crate::store::ReviewNotice {
            kind: "reviewed",
            item,
        });
    }
}
