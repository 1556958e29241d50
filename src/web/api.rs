//! The routes (names from DESIGN.md "Contracts") and their handlers: health, cameras,
//! events, clips, sealed media, and the seed's `/auth/verify`. Handlers read the
//! authenticated `Principal` the guard put in the request; file access is audited.

use super::error::{AppError, blocking};
use super::{AppState, ClientIp, JsonQuery, Operator, SessionId, csrf_token, media};
use crate::auth::{Principal, Role};
use crate::store::{ClipRecord, EventQuery};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post, put};
use axum::{Extension, Json, Router};
use serde_json::{Value, json};
use std::sync::Arc;

type St = State<Arc<AppState>>;

pub fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/healthz", get(|| async { Json(json!({"status": "ok"})) }))
        .route("/", get(super::pages::index))
        .route("/login", get(super::pages::login))
        .route("/assets/{file}", get(super::pages::asset))
        .route("/api/me", get(super::pages::me))
        .route(
            "/api/users",
            get(super::accounts::list).post(super::accounts::add),
        )
        .route("/api/users/{name}", delete(super::accounts::remove))
        .route("/api/users/{name}/unlock", post(super::accounts::unlock))
        .route(
            "/api/users/{name}/password",
            put(super::accounts::set_password),
        )
        .route(
            "/api/tokens",
            get(super::tokens::list).post(super::tokens::create),
        )
        .route("/api/tokens/{name}", delete(super::tokens::revoke))
        .route("/api/notify", get(super::notify::status))
        .route("/api/notify/armed", put(super::notify::set_armed))
        .route("/api/offsite", get(super::offsite::status))
        .route("/api/health", get(health))
        .route("/api/cameras", get(cameras).post(super::cameras_admin::add))
        .route(
            "/api/cameras/{id}",
            put(super::cameras_admin::edit).delete(super::cameras_admin::remove),
        )
        .route(
            "/api/cameras/{id}/zones",
            put(super::cameras_admin::set_areas),
        )
        .route("/api/cameras/probe", post(super::probe::probe))
        .route("/api/onvif/discover", get(super::onvif::discover))
        .route("/api/onvif/profiles", post(super::onvif::profiles))
        .route("/api/cameras/{id}/trigger", post(super::live::trigger))
        .route("/api/cameras/{id}/snapshot.jpg", get(super::live::snapshot))
        .route("/api/cameras/{id}/live.mjpeg", get(super::live::mjpeg))
        .route("/api/cameras/{id}/live.mp4", get(super::live_mp4::live_mp4))
        .route("/api/events/stream", get(super::live::events_stream))
        .route("/metrics", get(super::metrics::metrics))
        .route("/api/events", get(events))
        .route("/api/events/{id}", get(event))
        .route("/api/events/{id}/ack", post(ack))
        .route("/api/events/{id}/snapshot.jpg", get(event_snapshot))
        .route("/api/events/{id}/keep", post(super::recordings::keep))
        .route("/api/review", get(super::review::list))
        .route("/api/review/reviewed", post(super::review::mark_all))
        .route("/api/review/{id}", get(super::review::one))
        .route("/api/review/{id}/reviewed", post(super::review::mark))
        .route("/api/analytics", get(super::analytics::analytics))
        .route("/api/timeline", get(super::recordings::timeline))
        .route("/api/recordings/{file}", get(super::recordings::export))
        .route("/api/clips", get(clips))
        .route("/api/clips/{id}", get(clip))
        .route("/clips/{file}", get(clip_file))
        .route("/recordings/{*path}", get(recording))
        .route("/auth/verify", post(verify))
        .route("/auth/logout", post(logout))
        .fallback(|| async { AppError::not_found("no such route") })
}

async fn health(State(s): St) -> Result<Json<Value>, AppError> {
    let store = s.store.clone();
    let (clips, used, damaged_files) = blocking(move || {
        let (clips, used) = store.totals()?;
        Ok((clips, used, store.damaged_file_count()?))
    })
    .await?;
    let scrub = s.store.scrub_totals();
    let (total, free) = crate::store::retention::fs_space(&s.recordings_root).unwrap_or((0, 0));
    let detectors: Vec<Value> = s
        .live
        .cameras()
        .iter()
        .filter_map(|(id, c)| {
            let st = c.detector_stats()?;
            Some(json!({"camera": id, "mean_infer_ms": st.mean_infer_ms,
                "effective_fps": st.effective_fps, "gated_share": st.gated_share}))
        })
        .collect();
    let retention = s.store.retention();
    // The same verdict as `sentrix healthcheck` and the watchdog, naming any failed part.
    let health = s.live.health.as_ref().map(|h| h.report());
    let status = health
        .as_ref()
        .map_or("ok", |h| match h["status"].as_str() {
            Some("ok") => "ok",
            _ => "unhealthy",
        });
    Ok(Json(json!({
        "status": status,
        "problems": health.as_ref().map(|h| h["problems"].clone()).unwrap_or(json!([])),
        "versions": {
            "sentrix": env!("CARGO_PKG_VERSION"),
            "gstreamer": gstreamer::version_string().to_string(),
        },
        "model": s.live.model,
        "retention": {
            "max_size_bytes": (retention.max_size_bytes != u64::MAX).then_some(retention.max_size_bytes),
            "event_days": (retention.event_ms > 0).then(|| retention.event_ms as f64 / 86_400_000.0),
            "continuous_days": (retention.continuous_ms > 0).then(|| retention.continuous_ms as f64 / 86_400_000.0),
            "min_free_percent": retention.min_free_percent,
        },
        "uptime_s": s.started.elapsed().as_secs(),
        "detectors": detectors,
        "cameras": s.camera_list().into_iter().map(|c| c.id).collect::<Vec<_>>(),
        "storage": {"clips": clips, "used_bytes": used, "total_bytes": total, "free_bytes": free,
            "damaged_files": damaged_files},
        "scrub": {
            "files": scrub.files, "bytes": scrub.bytes, "damaged": scrub.damaged,
            "mb_per_s": scrub.mb_per_s(), "passes": scrub.passes,
            "last_pass_end_ms": (scrub.last_pass_end_ms > 0).then_some(scrub.last_pass_end_ms),
            "last_pass_s": scrub.last_pass_ms as f64 / 1000.0,
        },
    })))
}

async fn cameras(State(s): St, Extension(p): Extension<Principal>) -> Json<Value> {
    // Each configured camera with its state and what health finds wrong with it, for the
    // tiles (the event stream carries later changes). An alarm-only camera's state says
    // so; its alarm address is for admins (it is what a stranger would need to send).
    let cameras: Vec<Value> = s
        .camera_list()
        .iter()
        .map(|c| {
            let status = s.live.camera(&c.id).map(|l| l.status().snapshot());
            let state = status.as_ref().map(|st| st.state.as_str());
            let idle = match (c.enabled, c.alarm_only) {
                (false, _) => "disabled",
                (true, true) => "alarm-only",
                (true, false) => "stopped",
            };
            let mut v = json!(c);
            v["state"] = json!(state.unwrap_or(idle));
            v["problem"] = json!(s.live.camera_problem(&c.id));
            v["trouble"] = json!(status.as_ref().and_then(|st| st.trouble.as_ref()));
            v["path"] = json!(status.as_ref().and_then(|st| st.path.as_ref()));
            if p.role == Role::Admin {
                v["alarm_address"] = json!(c.alarm_address);
            }
            v
        })
        .collect();
    Json(json!({ "cameras": cameras }))
}

#[derive(serde::Deserialize)]
struct EventParams {
    camera: Option<String>,
    label: Option<String>,
    since: Option<i64>,
    until: Option<i64>,
    limit: Option<u32>,
}

async fn events(
    State(s): St,
    JsonQuery(q): JsonQuery<EventParams>,
) -> Result<Json<Value>, AppError> {
    let store = s.store.clone();
    let query = EventQuery {
        camera: q.camera,
        label: q.label,
        since_ms: q.since,
        until_ms: q.until,
        limit: Some(q.limit.unwrap_or(100).min(1000)),
    };
    let (list, states) = blocking(move || {
        let list = store.events(&query)?;
        let clip_ids: Vec<i64> = list.iter().filter_map(|e| e.clip_id).collect();
        let states = store.offsite_states(&clip_ids)?;
        let salvaged = store.salvage_notes(&clip_ids)?;
        Ok((list, (states, salvaged)))
    })
    .await?;
    let (states, salvaged) = states;
    // Each event's clip's off-site copy: local, queued, uploaded or "failed: reason".
    let events: Vec<Value> = list
        .iter()
        .map(|e| {
            let mut v = json!(e);
            if let Some(id) = e.clip_id {
                v["clip_offsite"] = json!(states.get(&id).cloned().unwrap_or_default().label());
                v["clip_salvaged"] = json!(salvaged.get(&id));
            }
            v
        })
        .collect();
    Ok(Json(json!({ "events": events })))
}

async fn event(State(s): St, Path(id): Path<i64>) -> Result<Json<Value>, AppError> {
    let store = s.store.clone();
    Ok(Json(json!(blocking(move || Ok(store.event(id)?)).await?)))
}

async fn ack(
    State(s): St,
    Path(id): Path<i64>,
    Operator(p): Operator,
    ClientIp(ip): ClientIp,
) -> Result<Json<Value>, AppError> {
    let store = s.store.clone();
    let user = p.user.clone();
    let now_ms = crate::base::clock::wall_ms();
    blocking(move || Ok(store.acknowledge_event(id, &user, now_ms)?)).await?;
    s.audit.log(Some(&p.user), ip, "event_ack", &id.to_string());
    Ok(Json(json!({"acknowledged": true, "id": id})))
}

async fn event_snapshot(
    State(s): St,
    Path(id): Path<i64>,
    headers: HeaderMap,
    Extension(p): Extension<Principal>,
    ClientIp(ip): ClientIp,
) -> Result<Response, AppError> {
    let store = s.store.clone();
    let reader = blocking(move || Ok(store.open_event_snapshot(id)?)).await?;
    s.audit.log(
        Some(&p.user),
        ip,
        "file_access",
        &format!("event {id} snapshot"),
    );
    media::serve(reader, "image/jpeg", &headers, None, None).await
}

#[derive(serde::Deserialize)]
struct ClipParams {
    camera: Option<String>,
    since: Option<i64>,
    until: Option<i64>,
}

fn clip_json(c: &ClipRecord) -> Value {
    json!({
        "id": c.id, "camera_id": c.camera_id, "start_ms": c.start_ms, "end_ms": c.end_ms,
        "duration_ms": c.duration_ms, "frames": c.frames, "bytes": c.plain_bytes,
        "codec": c.codec, "width": c.width, "height": c.height, "labels": c.labels,
        "pre_roll_ms": c.pre_roll_ms, "post_roll_ms": c.post_roll_ms, "state": c.state.as_str(),
        "damage": (!c.damage.is_empty()).then_some(&c.damage),
        "salvaged": c.salvage_note(),
        "offsite": c.offsite.label(),
        "video": format!("/clips/{}.mp4", c.id), "thumbnail": format!("/clips/{}.jpg", c.id),
    })
}

async fn clips(State(s): St, JsonQuery(q): JsonQuery<ClipParams>) -> Result<Json<Value>, AppError> {
    let store = s.store.clone();
    let list = blocking(move || {
        Ok(store.clips(
            q.camera.as_deref(),
            q.since.unwrap_or(i64::MIN),
            q.until.unwrap_or(i64::MAX),
        )?)
    })
    .await?;
    Ok(Json(
        json!({ "clips": list.iter().map(clip_json).collect::<Vec<_>>() }),
    ))
}

/// One clip, with the damaged files found in it (the clip, its thumbnail, snapshots).
async fn clip(State(s): St, Path(id): Path<i64>) -> Result<Json<Value>, AppError> {
    let store = s.store.clone();
    let (clip, damaged) =
        blocking(move || Ok((store.clip(id)?, store.damaged_files_of(id)?))).await?;
    let mut v = clip_json(&clip);
    v["damaged_files"] = json!(damaged);
    Ok(Json(v))
}

#[derive(serde::Deserialize)]
struct FileParams {
    download: Option<u8>,
}

async fn clip_file(
    State(s): St,
    Path(file): Path<String>,
    JsonQuery(q): JsonQuery<FileParams>,
    headers: HeaderMap,
    Extension(p): Extension<Principal>,
    ClientIp(ip): ClientIp,
) -> Result<Response, AppError> {
    let (id, ext) = file
        .rsplit_once('.')
        .and_then(|(id, ext)| Some((id.parse::<i64>().ok()?, ext)))
        .filter(|(_, ext)| matches!(*ext, "mp4" | "jpg"))
        .ok_or_else(|| AppError::not_found("clips are /clips/{id}.mp4 or /clips/{id}.jpg"))?;
    let store = s.store.clone();
    let is_video = ext == "mp4";
    let reader = blocking(move || {
        Ok(if is_video {
            store.open_clip(id)?
        } else {
            store.open_thumbnail(id)?
        })
    })
    .await?;
    s.audit
        .log(Some(&p.user), ip, "file_access", &format!("/clips/{file}"));
    let name = (q.download == Some(1)).then(|| format!("sentrix-clip-{id}.{ext}"));
    let store = s.store.clone();
    let flag: media::OnDamage = Box::new(move |reason| {
        let store = store.clone();
        tokio::task::spawn_blocking(move || store.damage_found_in_playback(id, &reason));
    });
    let on_damage = is_video.then_some(flag);
    media::serve(reader, media::content_type(ext), &headers, name, on_damage).await
}

async fn recording(
    State(s): St,
    Path(path): Path<String>,
    headers: HeaderMap,
    Extension(p): Extension<Principal>,
    ClientIp(ip): ClientIp,
) -> Result<Response, AppError> {
    let resolved = media::resolve_recording(&s.recordings_root, &path);
    // The path as asked is logged (a JSON string), whatever the outcome.
    let outcome = match &resolved {
        Ok(_) => "file_access",
        Err(e) if e.status == axum::http::StatusCode::FORBIDDEN => "file_access_refused",
        Err(_) => "file_access_missing",
    };
    s.audit
        .log(Some(&p.user), ip, outcome, &format!("/recordings/{path}"));
    let (file, content_type) = resolved?;
    let store = s.store.clone();
    let reader = blocking(move || Ok(store.open_sealed_path(&file)?)).await?;
    media::serve(reader, content_type, &headers, None, None).await
}

async fn verify(
    Extension(p): Extension<Principal>,
    session: Option<Extension<SessionId>>,
) -> Json<Value> {
    Json(json!({
        "authenticated": true,
        "user_type": p.role.as_str(),
        "username": p.user,
        "csrf_token": session.map(|s| csrf_token(&s.0 .0)),
    }))
}

async fn logout(
    State(s): St,
    Extension(p): Extension<Principal>,
    session: Option<Extension<SessionId>>,
    ClientIp(ip): ClientIp,
) -> Response {
    if let Some(Extension(SessionId(id))) = session {
        s.auth.sessions.close(&id);
    }
    s.audit.log(Some(&p.user), ip, "logout", "");
    let mut resp = Json(json!({"logged_out": true})).into_response();
    if let Some(v) = s.cookies().clear_session() {
        resp.headers_mut().insert(header::SET_COOKIE, v);
    }
    resp
}
