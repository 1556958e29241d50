//! `GET /api/cameras/{id}/live.mp4`: the live view as fragmented MP4 over a WebSocket,
//! remuxed from the camera's own stream (no decoding, no encoding).
//!
//! Why a WebSocket rather than a chunked response: each message is one whole piece (an
//! init segment or one picture's fragment), which the browser appends to its Media
//! Source as it comes, with no parsing of a byte stream; text messages on the same
//! socket carry what the player must know (codec, size, live or not) and the detector's
//! boxes, in step with the picture; and browsers do not count WebSockets against their
//! six connections per host over HTTP/1.1, which a grid of tiles plus the event stream
//! would otherwise use up.
//!
//! Messages, server to client:
//! - text `{"type":"stream","stream":"sub","codec":"avc1.64001f","mime":…,"width":640,"height":360}`
//!   before the first fragment and whenever the camera's stream changes,
//! - binary: the init segment right after it, then one `moof`+`mdat` per picture,
//!   starting at the latest keyframe,
//! - text `{"type":"boxes","boxes":[[x1,y1,x2,y2],…]}` (normalised) when the detector's
//!   boxes change.
//!
//! Auth is the guard's, as for every route, and the upgrade needs a same-origin `Origin`
//! (`web::check_origin`). The socket closes when the credential it was opened with stops
//! authorising, and when the camera stops (a reload that changed it: the player then
//! reconnects to what runs now). A viewer that falls behind (its socket is slow) skips to the next
//! keyframe; it never holds up the feed, other viewers or the recorder.

use super::error::AppError;
use super::extract::JsonQuery;
use super::{AppState, live};
use crate::auth::Credential;
use crate::live::LiveCamera;
use crate::media::feed::{LiveFeed, LiveFragment};
use crate::media::fmp4::LiveInit;
use axum::Extension;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Path, State};
use axum::response::Response;
use std::sync::Arc;
use std::time::Duration;

/// A fragment older than this when its turn comes means the viewer is behind: skip to
/// the next keyframe.
const BEHIND: Duration = Duration::from_millis(1500);
/// How often the detector's boxes are looked at.
const BOXES_EVERY: Duration = Duration::from_millis(250);
/// Clients only send control frames; anything bigger is refused.
const MAX_CLIENT_MESSAGE: usize = 4096;

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LiveQuery {
    stream: Option<StreamChoice>,
}

#[derive(serde::Deserialize, Clone, Copy, PartialEq)]
#[serde(rename_all = "lowercase")]
enum StreamChoice {
    Main,
    Sub,
}

pub async fn live_mp4(
    State(s): State<Arc<AppState>>,
    Path(id): Path<String>,
    JsonQuery(q): JsonQuery<LiveQuery>,
    Extension(credential): Extension<Credential>,
    upgrade: WebSocketUpgrade,
) -> Result<Response, AppError> {
    let cam = live::camera(&s, &id)?;
    let feeds = cam.feeds().clone();
    let (name, feed) = match (q.stream, feeds.sub) {
        (Some(StreamChoice::Sub), None) => {
            return Err(AppError::not_found(format!(
                "camera {id:?} has no sub-stream (detect_url)"
            )));
        }
        (Some(StreamChoice::Main), _) | (None, None) => ("main", feeds.main),
        (_, Some(sub)) => ("sub", sub),
    };
    let ended = live::revoked(s.clone(), credential);
    Ok(upgrade
        .max_message_size(MAX_CLIENT_MESSAGE)
        .on_upgrade(move |socket| async move {
            let viewer = Viewer {
                socket,
                feed: feed.clone(),
                cam,
                stream: name,
                sent_init: None,
                last_boxes: None,
            };
            // Also while a send waits on a slow client.
            tokio::select! {
                _ = viewer.run() => {}
                _ = ended => {}
                _ = feed.closed() => {}
            }
        }))
}

struct Viewer {
    socket: WebSocket,
    feed: Arc<LiveFeed>,
    cam: LiveCamera,
    stream: &'static str,
    /// The init segment this viewer has, by identity.
    sent_init: Option<Arc<LiveInit>>,
    last_boxes: Option<String>,
}

/// Why a viewer's loop ended: the socket is gone.
struct Gone;

impl Viewer {
    async fn run(mut self) {
        let sub = self.feed.subscribe();
        for fragment in sub.backlog {
            if self.send_fragment(&fragment, false).await.is_err() {
                return;
            }
        }
        let _ = self.follow(sub.live).await;
        let _ = self.socket.send(Message::Close(None)).await;
    }

    async fn follow(
        &mut self,
        mut live: tokio::sync::broadcast::Receiver<Arc<LiveFragment>>,
    ) -> Result<(), Gone> {
        use tokio::sync::broadcast::error::RecvError;
        let mut boxes = tokio::time::interval(BOXES_EVERY);
        let mut need_keyframe = false;
        loop {
            tokio::select! {
                got = live.recv() => match got {
                    Ok(f) => {
                        need_keyframe |= f.arrived.elapsed() > BEHIND;
                        if need_keyframe && !f.keyframe {
                            continue;
                        }
                        need_keyframe = false;
                        self.send_fragment(&f, true).await?;
                    }
                    Err(RecvError::Lagged(_)) => need_keyframe = true,
                    Err(RecvError::Closed) => return Ok(()),
                },
                _ = boxes.tick() => self.send_boxes().await?,
                msg = self.socket.recv() => match msg {
                    Some(Ok(Message::Close(_))) | Some(Err(_)) | None => return Err(Gone),
                    Some(Ok(_)) => {} // pings are answered by the socket itself
                },
            }
        }
    }

    /// Sends `f` (after its init segment, if the viewer lacks it); a `live` one (not
    /// from the join's backlog) counts in the feed's latency.
    async fn send_fragment(&mut self, f: &LiveFragment, live: bool) -> Result<(), Gone> {
        let fresh = self
            .sent_init
            .as_ref()
            .is_none_or(|i| !Arc::ptr_eq(i, &f.init));
        if fresh {
            let i = &f.init;
            let about = serde_json::json!({
                "type": "stream", "stream": self.stream, "codec": i.codec,
                "mime": format!("video/mp4; codecs=\"{}\"", i.codec),
                "width": i.width, "height": i.height,
            });
            self.send(Message::Text(about.to_string().into())).await?;
            self.send(Message::Binary(i.bytes.clone())).await?;
            self.sent_init = Some(f.init.clone());
        }
        self.send(Message::Binary(f.bytes.clone())).await?;
        if live {
            self.feed.record_latency(f.arrived);
        }
        Ok(())
    }

    async fn send_boxes(&mut self) -> Result<(), Gone> {
        let boxes =
            serde_json::json!({"type": "boxes", "boxes": self.cam.fresh_boxes()}).to_string();
        if self.last_boxes.as_deref() == Some(boxes.as_str()) {
            return Ok(());
        }
        self.last_boxes = Some(boxes.clone());
        self.send(Message::Text(boxes.into())).await
    }

    async fn send(&mut self, m: Message) -> Result<(), Gone> {
        self.socket.send(m).await.map_err(|_| Gone)
    }
}
