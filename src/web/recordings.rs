//! Recorded time: the timeline of a camera (`GET /api/timeline`), one MP4 for any range of
//! it (`GET /api/recordings/{camera}.mp4?from=MS&to=MS`, streamed, seekable with `Range`,
//! `&download=1` for a named attachment) and the keep flag of an event
//! (`POST /api/events/{id}/keep`). Ranges are checked before anything is read: a bad one
//! is a JSON 400, an unknown camera 404, and every playback and export is audited.
//!
//! The MP4's response headers say how its timeline maps to wall time:
//! `X-Sentrix-Start-Ms` (wall ms of its first frame), `X-Sentrix-End-Ms`,
//! `X-Sentrix-Gaps` (gaps skipped in the file, as `at_media_ms:from_ms-to_ms` separated
//! by commas), `X-Sentrix-Ends-Early-At` (the export stopped at a change of stream
//! format) and `X-Sentrix-Codec` (the RFC 6381 codec, for Media Source players).

use super::error::AppError;
use super::error::blocking;
use super::{AppState, ClientIp, JsonQuery, Operator, media};
use crate::auth::Principal;
use crate::playback::{Export, ExportError, MAX_RANGE_MS};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue};
use axum::response::Response;
use axum::{Extension, Json};
use serde_json::{Value, json};
use std::sync::Arc;

type St = State<Arc<AppState>>;

/// The widest window a timeline request may cover.
const MAX_TIMELINE_MS: i64 = 7 * 24 * 3600 * 1000;
/// How far in the future a range may start (clock skew between browser and box).
const FUTURE_SLACK_MS: i64 = 60_000;

#[derive(serde::Deserialize)]
pub(super) struct RangeParams {
    camera: Option<String>,
    from: Option<String>,
    to: Option<String>,
    download: Option<String>,
}

/// A checked range request: the camera and [from_ms, to_ms).
struct Window {
    camera: String,
    from_ms: i64,
    to_ms: i64,
}

fn millis(name: &str, value: Option<&str>) -> Result<i64, AppError> {
    let v = value
        .ok_or_else(|| AppError::bad_request(format!("{name} is required (ms since the epoch)")))?;
    v.trim().parse::<i64>().map_err(|_| {
        AppError::bad_request(format!(
            "{name} must be a whole number of ms since the epoch, not {:?}",
            truncate(v)
        ))
    })
}

fn truncate(s: &str) -> String {
    s.chars().take(40).collect()
}

/// Checks camera, order, length and the future; `max_ms` bounds the width.
fn window(
    s: &AppState,
    camera: &str,
    q: &RangeParams,
    max_ms: i64,
    now_ms: i64,
) -> Result<Window, AppError> {
    if !s.has_camera(camera) {
        return Err(AppError::not_found(format!(
            "no camera {:?}",
            truncate(camera)
        )));
    }
    let from_ms = millis("from", q.from.as_deref())?;
    let to_ms = millis("to", q.to.as_deref())?;
    if from_ms >= to_ms {
        return Err(AppError::bad_request("from must be before to"));
    }
    if to_ms - from_ms > max_ms {
        return Err(AppError::bad_request(format!(
            "at most {} hours at once",
            max_ms / 3_600_000
        )));
    }
    if from_ms > now_ms + FUTURE_SLACK_MS {
        return Err(AppError::bad_request("the range starts in the future"));
    }
    Ok(Window {
        camera: camera.to_string(),
        from_ms,
        to_ms,
    })
}

/// `GET /api/timeline?camera=ID&from=MS&to=MS`: spans, gaps and events.
pub(super) async fn timeline(
    State(s): St,
    JsonQuery(q): JsonQuery<RangeParams>,
) -> Result<Json<Value>, AppError> {
    let camera = q
        .camera
        .clone()
        .ok_or_else(|| AppError::bad_request("camera is required"))?;
    let now = crate::base::clock::wall_ms();
    let w = window(&s, &camera, &q, MAX_TIMELINE_MS, now)?;
    let store = s.store.clone();
    let t = blocking(move || Ok(store.timeline(&w.camera, w.from_ms, w.to_ms, now)?)).await?;
    // Where an event's footage starts and ends around it (the player starts at its pre-roll).
    let (pre_ms, post_ms) = s.store.retention().event_margin_ms;
    let mut v = json!(t);
    v["pre_roll_ms"] = json!(pre_ms);
    v["post_roll_ms"] = json!(post_ms);
    Ok(Json(v))
}

impl From<ExportError> for AppError {
    fn from(e: ExportError) -> Self {
        match e {
            ExportError::NothingRecorded(..) => AppError::not_found(e.to_string()),
            ExportError::TooLong(_) => AppError::bad_request(e.to_string()),
            ExportError::Store(e) => e.into(),
            e @ ExportError::Media { .. } => AppError::gone(e.to_string()),
        }
    }
}

impl media::RandomAccess for Export {
    fn total_len(&self) -> u64 {
        self.len()
    }

    fn read_range(&self, offset: u64, len: u64) -> Result<Vec<u8>, String> {
        self.read_at(offset, len).map_err(|e| e.to_string())
    }
}

/// `GET /api/recordings/{camera}.mp4?from=MS&to=MS[&download=1]`.
pub(super) async fn export(
    State(s): St,
    Path(file): Path<String>,
    JsonQuery(q): JsonQuery<RangeParams>,
    headers: HeaderMap,
    Extension(p): Extension<Principal>,
    ClientIp(ip): ClientIp,
) -> Result<Response, AppError> {
    let camera = file
        .strip_suffix(".mp4")
        .ok_or_else(|| AppError::not_found("recordings are /api/recordings/{camera}.mp4"))?;
    let w = window(&s, camera, &q, MAX_RANGE_MS, crate::base::clock::wall_ms())?;
    let download = q
        .download
        .as_deref()
        .is_some_and(|d| d == "1" || d == "true");
    let what = format!("{} {}..{}", w.camera, w.from_ms, w.to_ms);
    s.audit.log(
        Some(&p.user),
        ip,
        if download {
            "recording_export"
        } else {
            "recording_play"
        },
        &what,
    );
    let store = s.store.clone();
    let (cam, from, to) = (w.camera.clone(), w.from_ms, w.to_ms);
    let export =
        blocking(move || Export::plan(&store, &cam, from, to).map_err(AppError::from)).await?;
    let name = download.then(|| file_name(&w.camera, export.start_ms, export.end_ms));
    let extra = mapping_headers(&export);
    let mut resp = media::serve(export, "video/mp4", &headers, name, None).await?;
    resp.headers_mut().extend(extra);
    Ok(resp)
}

/// `sentrix-<camera>-<start>-<end>.mp4` in UTC, e.g. `sentrix-door-20261129T101500Z-20261129T111500Z.mp4`.
fn file_name(camera: &str, start_ms: i64, end_ms: i64) -> String {
    format!(
        "sentrix-{camera}-{}-{}.mp4",
        crate::base::clock::utc_stamp(start_ms),
        crate::base::clock::utc_stamp(end_ms)
    )
}

fn mapping_headers(e: &Export) -> HeaderMap {
    let gaps: Vec<String> = e
        .gaps
        .iter()
        .map(|g| format!("{}:{}-{}", g.at_media_ms, g.from_ms, g.to_ms))
        .collect();
    let mut pairs = vec![
        ("x-sentrix-start-ms", e.start_ms.to_string()),
        ("x-sentrix-end-ms", e.end_ms.to_string()),
        ("x-sentrix-duration-ms", e.duration_ms.to_string()),
        ("x-sentrix-codec", e.codec.clone()),
        ("x-sentrix-gaps", gaps.join(",")),
    ];
    if let Some(at) = e.ends_early_at_ms {
        pairs.push(("x-sentrix-ends-early-at", at.to_string()));
    }
    let mut h = HeaderMap::new();
    for (k, v) in pairs {
        if let Ok(v) = HeaderValue::from_str(&v) {
            h.insert(k, v);
        }
    }
    h
}

#[derive(serde::Deserialize)]
pub(super) struct KeepBody {
    keep: bool,
}

/// `POST /api/events/{id}/keep` with `{"keep": true|false}`.
pub(super) async fn keep(
    State(s): St,
    Path(id): Path<i64>,
    Operator(p): Operator,
    ClientIp(ip): ClientIp,
    body: axum::body::Bytes,
) -> Result<Json<Value>, AppError> {
    let KeepBody { keep } = serde_json::from_slice(&body).map_err(|e| {
        AppError::bad_request(format!("bad JSON body: {e}; send {{\"keep\": true}}"))
    })?;
    let store = s.store.clone();
    blocking(move || Ok(store.set_event_keep(id, keep)?)).await?;
    s.audit.log(
        Some(&p.user),
        ip,
        if keep { "event_keep" } else { "event_unkeep" },
        &id.to_string(),
    );
    Ok(Json(json!({"id": id, "keep": keep})))
}
