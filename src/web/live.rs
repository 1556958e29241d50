//! Live data: the manual trigger, a camera's newest picture as JPEG, an MJPEG stream of it
//! (encoded only while someone watches, with the detector's latest boxes drawn), Server-Sent Events of
//! event changes and camera state changes, and Prometheus metrics.

use super::error::AppError;
use super::{Admin, AppState, ClientIp};
use crate::auth::Credential;
use crate::live::{LiveCamera, PictureError};
use axum::Extension;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, header};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

/// Locked addresses listed in /metrics at most.
const METRICS_LOCKED_ADDRESSES: usize = 32;
/// MJPEG frames per second.
const MJPEG_FPS: u64 = 4;
const BOUNDARY: &str = "sentrixframe";

fn camera(s: &AppState, id: &str) -> Result<LiveCamera, AppError> {
    s.live
        .camera(id)
        .ok_or_else(|| AppError::not_found(format!("no running camera {id:?}")))
}

/// `POST /api/cameras/{id}/trigger` (admin): the manual event, as SIGUSR1 makes it.
pub async fn trigger(
    State(s): State<Arc<AppState>>,
    Path(id): Path<String>,
    Admin(p): Admin,
    ClientIp(ip): ClientIp,
) -> Result<Response, AppError> {
    camera(&s, &id)?;
    let (live, store, cam_id) = (s.live.clone(), s.store.clone(), id.clone());
    let event = tokio::task::spawn_blocking(move || live.manual_event(&cam_id, &store))
        .await
        .map_err(AppError::internal)??;
    s.audit.log(Some(&p.user), ip, "manual_trigger", &id);
    Ok((
        axum::http::StatusCode::ACCEPTED,
        axum::Json(serde_json::json!({"triggered": true, "camera": id, "event": event})),
    )
        .into_response())
}

async fn newest_jpeg(cam: LiveCamera, with_boxes: bool) -> Result<Vec<u8>, AppError> {
    tokio::task::spawn_blocking(move || cam.newest_jpeg(with_boxes))
        .await
        .map_err(AppError::internal)?
        .map_err(|e| match e {
            PictureError::NoPicture => AppError::not_found(e.to_string()),
            PictureError::Encode(_) => AppError::internal(e),
        })
}

pub async fn snapshot(
    State(s): State<Arc<AppState>>,
    Path(id): Path<String>,
) -> Result<Response, AppError> {
    let jpeg = newest_jpeg(camera(&s, &id)?, false).await?;
    Ok(([(header::CONTENT_TYPE, "image/jpeg")], jpeg).into_response())
}

/// How often a long stream re-checks the credential it was opened with.
const REVOCATION_CHECK: Duration = Duration::from_millis(500);

/// Resolves once `credential` no longer authorizes (logout, removal, password or role
/// change, expiry): long streams end with it, within `REVOCATION_CHECK`.
async fn revoked(s: Arc<AppState>, credential: Credential) {
    loop {
        tokio::time::sleep(REVOCATION_CHECK).await;
        let (auth, c) = (s.auth.clone(), credential.clone());
        match tokio::task::spawn_blocking(move || auth.still_valid(&c)).await {
            Ok(Ok(true)) => {}
            // Revoked, or it cannot be checked: the stream ends either way.
            _ => return,
        }
    }
}

pub async fn mjpeg(
    State(s): State<Arc<AppState>>,
    Path(id): Path<String>,
    Extension(credential): Extension<Credential>,
) -> Result<Response, AppError> {
    let cam = camera(&s, &id)?;
    let ended = Box::pin(revoked(s.clone(), credential));
    let stream = futures_util::stream::unfold(cam, |cam| async move {
        tokio::time::sleep(Duration::from_millis(1000 / MJPEG_FPS)).await;
        let part = match newest_jpeg(cam.clone(), true).await {
            Ok(jpeg) => {
                let mut part = format!(
                    "--{BOUNDARY}\r\nContent-Type: image/jpeg\r\nContent-Length: {}\r\n\r\n",
                    jpeg.len()
                )
                .into_bytes();
                part.extend_from_slice(&jpeg);
                part.extend_from_slice(b"\r\n");
                part
            }
            Err(_) => Vec::new(), // no picture yet: wait for the next tick
        };
        Some((Ok::<_, std::io::Error>(part), cam))
    });
    let mut resp = Response::new(Body::from_stream(stream.take_until(ended)));
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("multipart/x-mixed-replace; boundary=sentrixframe"),
    );
    Ok(resp)
}

/// `/api/events/stream`: `event: start|update|end` with the event as JSON, and
/// `event: camera` with `{id, state, problem}` when a camera's state or health changes.
pub async fn events_stream(
    State(s): State<Arc<AppState>>,
    Extension(credential): Extension<Credential>,
) -> Result<Response, AppError> {
    let ended = Box::pin(revoked(s.clone(), credential));
    let rx = s.live.bus.as_ref().map(|b| b.subscribe());
    let live = s.live.clone();
    let tick = tokio::time::interval(Duration::from_secs(1));
    let last: HashMap<String, serde_json::Value> = HashMap::new();
    let stream = futures_util::stream::unfold(
        (rx, live, tick, last, Vec::<Event>::new()),
        |(mut rx, live, mut tick, mut last, mut pending)| async move {
            loop {
                if let Some(ev) = pending.pop() {
                    return Some((
                        Ok::<_, std::convert::Infallible>(ev),
                        (rx, live, tick, last, pending),
                    ));
                }
                let notice = async {
                    match rx.as_mut() {
                        Some(r) => r.recv().await.ok(),
                        None => std::future::pending().await,
                    }
                };
                tokio::select! {
                    n = notice => {
                        if let Some(n) = n
                            && let Ok(data) = serde_json::to_string(&n.event)
                        {
                            pending.push(Event::default().event(n.kind).data(data));
                        }
                    }
                    _ = tick.tick() => {
                        for (id, cam) in live.cameras() {
                            let data = serde_json::json!({"id": id, "state": cam.status().state().as_str(),
                                "problem": live.camera_problem(&id)});
                            if last.get(&id) != Some(&data) {
                                pending.push(Event::default().event("camera").data(data.to_string()));
                                last.insert(id, data);
                            }
                        }
                    }
                }
            }
        },
    );
    Ok(Sse::new(stream.take_until(ended))
        .keep_alive(KeepAlive::default())
        .into_response())
}

/// Prometheus text exposition.
pub async fn metrics(State(s): State<Arc<AppState>>) -> Result<Response, AppError> {
    use std::fmt::Write;
    let store = s.store.clone();
    let now = s.auth.now_ms();
    let (clips, bytes, lockouts, locked_addresses) = tokio::task::spawn_blocking(move || {
        let (clips, bytes) = store.totals()?;
        let locked = store.locked_addresses(now, METRICS_LOCKED_ADDRESSES)?;
        Ok::<_, crate::store::StoreError>((clips, bytes, store.active_lockouts(now)?, locked))
    })
    .await
    .map_err(AppError::internal)??;
    let mut out = String::new();
    let mut gauge = |name: &str, help: &str, rows: Vec<(String, f64)>| {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} gauge");
        for (labels, v) in rows {
            let _ = writeln!(out, "{name}{labels} {v}");
        }
    };
    let cameras = s.live.cameras();
    let per = |f: &dyn Fn(&LiveCamera) -> Option<f64>| -> Vec<(String, f64)> {
        cameras
            .iter()
            .filter_map(|(id, c)| f(c).map(|v| (format!("{{camera=\"{id}\"}}"), v)))
            .collect()
    };
    gauge(
        "sentrix_camera_fps",
        "Access units per second.",
        per(&|c| Some(c.status().snapshot().fps)),
    );
    gauge(
        "sentrix_camera_kbit_s",
        "Stream bitrate in kbit/s.",
        per(&|c| Some(c.status().snapshot().kbit_s)),
    );
    gauge(
        "sentrix_camera_reconnects",
        "Reconnects since start.",
        per(&|c| Some(c.status().snapshot().reconnects as f64)),
    );
    gauge(
        "sentrix_camera_streaming",
        "1 while the camera streams.",
        per(&|c| {
            Some(
                if c.status().state() == crate::ingest::CameraState::Streaming {
                    1.0
                } else {
                    0.0
                },
            )
        }),
    );
    gauge(
        "sentrix_detector_infer_ms",
        "Mean inference time in ms.",
        per(&|c| c.detector_stats().map(|d| d.mean_infer_ms)),
    );
    gauge(
        "sentrix_detector_fps",
        "Model runs per second.",
        per(&|c| c.detector_stats().map(|d| d.effective_fps)),
    );
    gauge(
        "sentrix_detector_gated_ratio",
        "Share of frames the motion gate kept from the model.",
        per(&|c| c.detector_stats().map(|d| d.gated_share)),
    );
    gauge(
        "sentrix_storage_bytes",
        "Bytes of sealed clips, thumbnails and snapshots on disk.",
        vec![(String::new(), bytes as f64)],
    );
    gauge(
        "sentrix_clips",
        "Clips in the index.",
        vec![(String::new(), clips as f64)],
    );
    gauge(
        "sentrix_lockouts",
        "User names, addresses and devices locked now.",
        vec![(String::new(), lockouts as f64)],
    );
    gauge(
        "sentrix_locked_address_seconds",
        "Seconds left of each locked client address's lockout (the latest 32).",
        locked_addresses
            .into_iter()
            .map(|(addr, until)| {
                let label = format!("{{address=\"{}\"}}", crate::logging::bounded(&addr, 64));
                (label, ((until - now).max(0) / 1000) as f64)
            })
            .collect(),
    );
    gauge(
        "sentrix_password_checks_total",
        "PBKDF2 password checks run since start (real and dummy).",
        vec![(String::new(), s.auth.password_checks() as f64)],
    );
    let conns = s.connections.stats();
    gauge(
        "sentrix_http_connections",
        "Dashboard connections open now.",
        vec![(String::new(), conns.open as f64)],
    );
    gauge(
        "sentrix_http_connections_refused",
        "Dashboard connections refused (caps) since start.",
        vec![(String::new(), conns.refused as f64)],
    );
    gauge(
        "sentrix_http_connections_evicted",
        "Idle dashboard connections closed to admit others since start.",
        vec![(String::new(), conns.evicted as f64)],
    );
    gauge(
        "sentrix_open_fds",
        "File descriptors open in the process.",
        vec![(String::new(), crate::fds::open_count() as f64)],
    );
    Ok(([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], out).into_response())
}
