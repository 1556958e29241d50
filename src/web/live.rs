//! Live data: the manual trigger, a camera's newest picture as JPEG, an MJPEG stream of it
//! (encoded only while someone watches, with the detector's latest boxes drawn), Server-Sent Events of
//! event changes and camera state changes (Prometheus metrics: metrics.rs).

use super::error::AppError;
use super::{AppState, ClientIp, Operator};
use crate::auth::Credential;
use crate::live::{LiveCamera, PictureError};
use crate::store::review::next_on;
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

/// MJPEG frames per second.
const MJPEG_FPS: u64 = 4;
const BOUNDARY: &str = "sentrixframe";

pub(super) fn camera(s: &AppState, id: &str) -> Result<LiveCamera, AppError> {
    s.live
        .camera(id)
        .ok_or_else(|| AppError::not_found(format!("no running camera {id:?}")))
}

/// `POST /api/cameras/{id}/trigger` (operators, admins): the manual event, as SIGUSR1
/// makes it.
pub async fn trigger(
    State(s): State<Arc<AppState>>,
    Path(id): Path<String>,
    Operator(p): Operator,
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
pub(super) async fn revoked(s: Arc<AppState>, credential: Credential) {
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

/// `/api/events/stream`: `event: start|update|end` with the event as JSON, `event: review`
/// with `{kind: new|update|end, item}` as review items open, change and close, and
/// `event: camera` with `{id, state, problem, trouble}` when a camera's state or health changes.
pub async fn events_stream(
    State(s): State<Arc<AppState>>,
    Extension(credential): Extension<Credential>,
) -> Result<Response, AppError> {
    let ended = Box::pin(revoked(s.clone(), credential));
    let feed = Feed {
        events: s.live.bus.as_ref().map(|b| b.subscribe()),
        reviews: s.live.review_bus.as_ref().map(|b| b.subscribe()),
        live: s.live.clone(),
        tick: tokio::time::interval(Duration::from_secs(1)),
        last: HashMap::new(),
        pending: Vec::new(),
    };
    let stream = futures_util::stream::unfold(feed, |mut feed| async move {
        let ev = feed.next().await;
        Some((Ok::<_, std::convert::Infallible>(ev), feed))
    });
    Ok(Sse::new(stream.take_until(ended))
        .keep_alive(KeepAlive::default())
        .into_response())
}

/// What one live feed follows, and the messages it has yet to send.
struct Feed {
    events: Option<tokio::sync::broadcast::Receiver<crate::detect::EventNotice>>,
    reviews: Option<tokio::sync::broadcast::Receiver<crate::store::ReviewNotice>>,
    live: crate::live::Live,
    tick: tokio::time::Interval,
    /// Each camera's last state sent.
    last: HashMap<String, serde_json::Value>,
    pending: Vec<Event>,
}

impl Feed {
    async fn next(&mut self) -> Event {
        loop {
            if let Some(ev) = self.pending.pop() {
                return ev;
            }
            tokio::select! {
                n = next_on(&mut self.events) => {
                    if let Ok(n) = n
                        && let Ok(data) = serde_json::to_string(&n.event)
                    {
                        self.pending.push(Event::default().event(n.kind).data(data));
                    }
                }
                n = next_on(&mut self.reviews) => {
                    if let Ok(n) = n
                        && let Ok(data) = serde_json::to_string(&n)
                    {
                        self.pending.push(Event::default().event("review").data(data));
                    }
                }
                _ = self.tick.tick() => self.camera_changes(),
            }
        }
    }

    fn camera_changes(&mut self) {
        for (id, cam) in self.live.cameras() {
            let status = cam.status();
            let data = serde_json::json!({"id": id, "state": status.state().as_str(),
                "problem": self.live.camera_problem(&id), "trouble": status.trouble()});
            if self.last.get(&id) != Some(&data) {
                self.pending
                    .push(Event::default().event("camera").data(data.to_string()));
                self.last.insert(id, data);
            }
        }
    }
}
