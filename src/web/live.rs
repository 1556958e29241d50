//! Live data: the manual trigger, a camera's newest picture as JPEG, an MJPEG stream of it
//! (encoded only while someone watches, with the detector's latest boxes drawn), Server-Sent Events of
//! event changes and camera state changes, and Prometheus metrics.

use super::error::AppError;
use super::{AppState, require_admin};
use crate::auth::Principal;
use crate::detect::runner::{DetectorCounters, EventBus};
use crate::ingest::{Frame, StatusHandle};
use crate::record::runner::TriggerHandle;
use axum::Extension;
use axum::body::Body;
use axum::extract::{ConnectInfo, Path, State};
use axum::http::{HeaderValue, header};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

/// MJPEG frames per second.
const MJPEG_FPS: u64 = 4;
const BOUNDARY: &str = "sentrixframe";

/// What the dashboard can reach of one running camera.
#[derive(Clone)]
pub struct LiveCamera {
    pub status: StatusHandle,
    pub trigger: TriggerHandle,
    pub frames: watch::Receiver<Option<Arc<Frame>>>,
    pub detector: Option<Arc<DetectorCounters>>,
}

/// The running parts the dashboard shows; empty in tests that only need the store.
#[derive(Clone, Default)]
pub struct Live {
    pub cameras: HashMap<String, LiveCamera>,
    pub bus: Option<EventBus>,
    /// The detection model as the system page names it (file, layout, input size).
    pub model: Option<String>,
}

fn camera<'a>(s: &'a AppState, id: &str) -> Result<&'a LiveCamera, AppError> {
    s.live
        .cameras
        .get(id)
        .ok_or_else(|| AppError::not_found(format!("no running camera {id:?}")))
}

pub async fn trigger(
    State(s): State<Arc<AppState>>,
    Path(id): Path<String>,
    Extension(p): Extension<Principal>,
    ci: Option<Extension<ConnectInfo<SocketAddr>>>,
) -> Result<Response, AppError> {
    require_admin(&p)?;
    let cam = camera(&s, &id)?.clone();
    let now = crate::store::now_ms();
    cam.trigger.trigger_at("manual", Some(now));
    // A "manual" event, so the trigger shows in the timeline like any other.
    let store = s.store.clone();
    let cam_id = id.clone();
    let jpeg = newest_jpeg(&cam, false).await.ok();
    let event = tokio::task::spawn_blocking(move || {
        let whole = [0.0, 0.0, 1.0, 1.0];
        let ev = store.insert_event(&cam_id, "manual", now, 1.0, &whole)?;
        store.update_event(ev, Some(now), 1.0, &whole)?;
        if let Some(j) = jpeg
            && let Err(e) = store.set_event_snapshot(ev, &j)
        {
            tracing::warn!("manual event {ev}: no snapshot: {e}");
        }
        store.event(ev)
    })
    .await
    .map_err(AppError::internal)??;
    if let Some(bus) = &s.live.bus {
        for kind in ["start", "end"] {
            let _ = bus.send(crate::detect::EventNotice {
                kind,
                event: event.clone(),
            });
        }
    }
    s.audit
        .log(Some(&p.user), super::api::ip_of(&ci), "manual_trigger", &id);
    Ok((
        axum::http::StatusCode::ACCEPTED,
        axum::Json(serde_json::json!({"triggered": true, "camera": id, "event": event})),
    )
        .into_response())
}

/// How long the detector's boxes stay drawn on the live view.
const BOXES_FRESH_MS: i64 = 2000;

async fn newest_jpeg(cam: &LiveCamera, with_boxes: bool) -> Result<Vec<u8>, AppError> {
    let frame = cam
        .frames
        .borrow()
        .clone()
        .ok_or_else(|| AppError::not_found("no picture from this camera yet"))?;
    let boxes: Vec<crate::detect::tracker::NormBox> = match (&cam.detector, with_boxes) {
        (Some(d), true) => {
            let (at, b) = d
                .live_boxes
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .clone();
            if crate::store::now_ms() - at <= BOXES_FRESH_MS {
                b
            } else {
                Vec::new()
            }
        }
        _ => Vec::new(),
    };
    tokio::task::spawn_blocking(move || {
        if boxes.is_empty() {
            return crate::record::snapshot::encode_jpeg(&frame);
        }
        let map = frame.rgb.map_readable().map_err(|e| e.to_string())?;
        let mut rgb = map.as_slice().to_vec();
        let drawn: Vec<_> = boxes
            .iter()
            .map(|b| (*b, crate::detect::draw::EVENT_COLOUR))
            .collect();
        crate::detect::draw::draw_boxes(
            &mut rgb,
            frame.width as usize,
            frame.height as usize,
            &drawn,
            2,
        );
        crate::record::snapshot::encode_jpeg(&Frame {
            pts_ns: frame.pts_ns,
            width: frame.width,
            height: frame.height,
            rgb: gstreamer::Buffer::from_mut_slice(rgb),
        })
    })
    .await
    .map_err(AppError::internal)?
    .map_err(AppError::internal)
}

pub async fn snapshot(
    State(s): State<Arc<AppState>>,
    Path(id): Path<String>,
) -> Result<Response, AppError> {
    let jpeg = newest_jpeg(camera(&s, &id)?, false).await?;
    Ok(([(header::CONTENT_TYPE, "image/jpeg")], jpeg).into_response())
}

pub async fn mjpeg(
    State(s): State<Arc<AppState>>,
    Path(id): Path<String>,
) -> Result<Response, AppError> {
    let cam = camera(&s, &id)?.clone();
    let stream = futures_util::stream::unfold(cam, |cam| async move {
        tokio::time::sleep(Duration::from_millis(1000 / MJPEG_FPS)).await;
        let part = match newest_jpeg(&cam, true).await {
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
    let mut resp = Response::new(Body::from_stream(stream));
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("multipart/x-mixed-replace; boundary=sentrixframe"),
    );
    Ok(resp)
}

/// `/api/events/stream`: `event: start|update|end` with the event as JSON, and
/// `event: camera` with `{id, state}` when a camera's state changes.
pub async fn events_stream(State(s): State<Arc<AppState>>) -> Result<Response, AppError> {
    let rx = s.live.bus.as_ref().map(|b| b.subscribe());
    let statuses: Vec<StatusHandle> = s.live.cameras.values().map(|c| c.status.clone()).collect();
    let tick = tokio::time::interval(Duration::from_secs(1));
    let last: HashMap<String, String> = HashMap::new();
    let stream = futures_util::stream::unfold(
        (rx, statuses, tick, last, Vec::<Event>::new()),
        |(mut rx, statuses, mut tick, mut last, mut pending)| async move {
            loop {
                if let Some(ev) = pending.pop() {
                    return Some((
                        Ok::<_, std::convert::Infallible>(ev),
                        (rx, statuses, tick, last, pending),
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
                        for st in &statuses {
                            let state = st.state().as_str().to_string();
                            if last.get(st.id()) != Some(&state) {
                                last.insert(st.id().to_string(), state.clone());
                                let data = serde_json::json!({"id": st.id(), "state": state});
                                pending.push(Event::default().event("camera").data(data.to_string()));
                            }
                        }
                    }
                }
            }
        },
    );
    Ok(Sse::new(stream)
        .keep_alive(KeepAlive::default())
        .into_response())
}

/// Prometheus text exposition.
pub async fn metrics(State(s): State<Arc<AppState>>) -> Result<Response, AppError> {
    use std::fmt::Write;
    let store = s.store.clone();
    let now = s.auth.now_ms();
    let (clips, bytes, lockouts) = tokio::task::spawn_blocking(move || {
        let (clips, bytes) = store.totals()?;
        Ok::<_, crate::store::StoreError>((clips, bytes, store.active_lockouts(now)?))
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
    let mut ids: Vec<&String> = s.live.cameras.keys().collect();
    ids.sort();
    let per = |f: &dyn Fn(&LiveCamera) -> Option<f64>| -> Vec<(String, f64)> {
        ids.iter()
            .filter_map(|id| {
                let c = &s.live.cameras[*id];
                f(c).map(|v| (format!("{{camera=\"{id}\"}}"), v))
            })
            .collect()
    };
    gauge(
        "sentrix_camera_fps",
        "Access units per second.",
        per(&|c| Some(c.status.snapshot().fps)),
    );
    gauge(
        "sentrix_camera_kbit_s",
        "Stream bitrate in kbit/s.",
        per(&|c| Some(c.status.snapshot().kbit_s)),
    );
    gauge(
        "sentrix_camera_reconnects",
        "Reconnects since start.",
        per(&|c| Some(c.status.snapshot().reconnects as f64)),
    );
    gauge(
        "sentrix_camera_streaming",
        "1 while the camera streams.",
        per(&|c| {
            Some(
                if c.status.state() == crate::ingest::CameraState::Streaming {
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
        per(&|c| c.detector.as_ref().map(|d| d.stats().mean_infer_ms)),
    );
    gauge(
        "sentrix_detector_fps",
        "Model runs per second.",
        per(&|c| c.detector.as_ref().map(|d| d.stats().effective_fps)),
    );
    gauge(
        "sentrix_detector_gated_ratio",
        "Share of frames the motion gate kept from the model.",
        per(&|c| c.detector.as_ref().map(|d| d.stats().gated_share)),
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
        "User names and addresses locked now.",
        vec![(String::new(), lockouts as f64)],
    );
    Ok(([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], out).into_response())
}
