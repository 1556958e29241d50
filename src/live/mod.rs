//! What the rest of the program may see of, and do with, the running cameras: each
//! camera's ingest status, its newest picture (as JPEG, with the detector's fresh boxes
//! drawn), its detector's statistics and health, and the one manual-event path that the
//! dashboard's trigger and SIGUSR1 share. The app inserts a camera when it starts and
//! removes it when it stops (a reload replaces only the cameras that changed); the
//! dashboard reads the same shared map, so it always shows what runs.

use crate::detect::runner::{DetectorCounters, DetectorStats, EventBus, EventNotice};
use crate::detect::tracker::NormBox;
use crate::health::Health;
use crate::ingest::{Frame, StatusHandle};
use crate::record::runner::{RecorderStatus, RecorderStatusHandle, TriggerHandle};
use crate::store::{EventRecord, Store, StoreError};
use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};
use tokio::sync::watch;

/// How long the detector's boxes stay drawn on the live view.
const BOXES_FRESH_MS: i64 = 2000;
/// The label of events started by hand.
pub const MANUAL_LABEL: &str = "manual";

#[derive(Debug, thiserror::Error)]
pub enum PictureError {
    #[error("no picture from this camera yet")]
    NoPicture,
    #[error("cannot encode the picture: {0}")]
    Encode(String),
}

/// One running camera, as the outside sees it. Cheap to clone.
#[derive(Clone)]
pub struct LiveCamera {
    status: StatusHandle,
    recorder: RecorderStatusHandle,
    trigger: TriggerHandle,
    frames: watch::Receiver<Option<Arc<Frame>>>,
    detector: Option<Arc<DetectorCounters>>,
    feeds: LiveFeeds,
}

/// The live fMP4 feeds of a camera: its main stream, and its sub-stream (`detect_url`)
/// when one runs.
#[derive(Clone, Debug)]
pub struct LiveFeeds {
    pub main: Arc<crate::media::feed::LiveFeed>,
    pub sub: Option<Arc<crate::media::feed::LiveFeed>>,
}

impl LiveCamera {
    pub fn new(
        status: StatusHandle,
        recorder: &crate::record::runner::RecorderRunner,
        frames: watch::Receiver<Option<Arc<Frame>>>,
        detector: Option<Arc<DetectorCounters>>,
        feeds: LiveFeeds,
    ) -> Self {
        Self {
            status,
            recorder: recorder.status_handle(),
            trigger: recorder.trigger_handle(),
            frames,
            detector,
            feeds,
        }
    }

    pub fn feeds(&self) -> &LiveFeeds {
        &self.feeds
    }

    pub fn status(&self) -> &StatusHandle {
        &self.status
    }

    pub fn recorder_status(&self) -> RecorderStatus {
        self.recorder.get()
    }

    pub fn detector_stats(&self) -> Option<DetectorStats> {
        self.detector.as_ref().map(|d| d.stats())
    }

    /// The detector's boxes of its last analysed frame, if analysed within 2 s.
    pub fn fresh_boxes(&self) -> Vec<NormBox> {
        let Some(d) = &self.detector else {
            return Vec::new();
        };
        let (at_ms, boxes) = d
            .live_boxes
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        if crate::base::clock::wall_ms() - at_ms <= BOXES_FRESH_MS {
            boxes
        } else {
            Vec::new()
        }
    }

    /// The newest decoded picture as JPEG (blocking: encodes), with the detector's fresh
    /// boxes drawn when `with_boxes`.
    pub fn newest_jpeg(&self, with_boxes: bool) -> Result<Vec<u8>, PictureError> {
        let frame = self
            .frames
            .borrow()
            .clone()
            .ok_or(PictureError::NoPicture)?;
        let boxes = if with_boxes {
            self.fresh_boxes()
        } else {
            Vec::new()
        };
        if boxes.is_empty() {
            return crate::record::snapshot::encode_jpeg(&frame).map_err(PictureError::Encode);
        }
        let map = frame
            .rgb
            .map_readable()
            .map_err(|e| PictureError::Encode(e.to_string()))?;
        let mut rgb = map.as_slice().to_vec();
        let drawn: Vec<_> = boxes
            .iter()
            .map(|b| (*b, crate::detect::draw::EVENT_COLOUR))
            .collect();
        let (w, h) = (frame.width as usize, frame.height as usize);
        crate::detect::draw::draw_boxes(&mut rgb, w, h, &drawn, 2);
        crate::record::snapshot::encode_jpeg(&Frame {
            pts_ns: frame.pts_ns,
            width: frame.width,
            height: frame.height,
            rgb: gstreamer::Buffer::from_mut_slice(rgb),
        })
        .map_err(PictureError::Encode)
    }
}

/// The running cameras and what they share: the event bus, the model's name and health.
/// A registry only: services (notifications, off-site copies) are handed out by the app.
#[derive(Clone, Default)]
pub struct Live {
    cameras: Arc<RwLock<BTreeMap<String, LiveCamera>>>,
    pub bus: Option<EventBus>,
    /// Review items as they open, change and close (store/review.rs).
    pub review_bus: Option<crate::store::review::ReviewBus>,
    /// The detection model as the system page names it (file, layout, input size).
    pub model: Option<String>,
    pub health: Option<Arc<Health>>,
}

impl Live {
    pub fn new(bus: Option<EventBus>, model: Option<String>, health: Option<Arc<Health>>) -> Self {
        Self {
            cameras: Arc::default(),
            bus,
            review_bus: None,
            model,
            health,
        }
    }

    pub fn insert(&self, id: &str, camera: LiveCamera) {
        self.write().insert(id.to_string(), camera);
    }

    /// Forgets a stopped camera and ends its live viewers.
    pub fn remove(&self, id: &str) {
        if let Some(cam) = self.write().remove(id) {
            cam.feeds.main.close();
            if let Some(sub) = &cam.feeds.sub {
                sub.close();
            }
        }
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, BTreeMap<String, LiveCamera>> {
        self.cameras.write().unwrap_or_else(|p| p.into_inner())
    }

    pub fn camera(&self, id: &str) -> Option<LiveCamera> {
        let cameras = self.cameras.read().unwrap_or_else(|p| p.into_inner());
        cameras.get(id).cloned()
    }

    /// Every running camera, by id.
    pub fn cameras(&self) -> Vec<(String, LiveCamera)> {
        let cameras = self.cameras.read().unwrap_or_else(|p| p.into_inner());
        cameras
            .iter()
            .map(|(id, c)| (id.clone(), c.clone()))
            .collect()
    }

    /// What health finds wrong with camera `id`'s parts, by name.
    pub fn camera_problem(&self, id: &str) -> Option<String> {
        self.health.as_ref()?.camera_problem(id)
    }

    /// The one manual-event path (the dashboard's trigger and SIGUSR1): starts or extends
    /// a recording of camera `id` labelled "manual", and stores a "manual" event with the
    /// newest picture as its snapshot, announced on the bus like a detected one. The
    /// recorder links the event to its clip. Blocking (database, JPEG).
    pub fn manual_event(&self, id: &str, store: &Store) -> Result<EventRecord, StoreError> {
        let cam = self
            .camera(id)
            .ok_or_else(|| StoreError::Invalid(format!("no running camera {id:?}")))?;
        let now_ms = crate::base::clock::wall_ms();
        cam.trigger.trigger_at(MANUAL_LABEL, Some(now_ms));
        let whole = [0.0, 0.0, 1.0, 1.0];
        let event = store.insert_event(id, MANUAL_LABEL, now_ms, 1.0, &whole)?;
        store.update_event(event, Some(now_ms), 1.0, &whole)?;
        match cam.newest_jpeg(false) {
            Ok(jpeg) => {
                if let Err(e) = store.set_event_snapshot(event, &jpeg) {
                    tracing::warn!(camera = %id, "manual event {event}: no snapshot: {e}");
                }
            }
            Err(e) => tracing::info!(camera = %id, "manual event {event}: no snapshot: {e}"),
        }
        let record = store.event(event)?;
        if let Some(bus) = &self.bus {
            for kind in ["start", "end"] {
                let _ = bus.send(EventNotice {
                    kind,
                    event: record.clone(),
                });
            }
        }
        Ok(record)
    }
}
