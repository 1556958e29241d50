//! One detector thread per camera. For each decoded frame (the newest; frames that arrive
//! while it is busy are replaced in the watch channel, so a slow model lowers the effective
//! fps and never queues up): the motion gate, then — when something moved, or every
//! `forced_interval` — the model, through a shared pool of `detect.threads` inference
//! slots. Detections are filtered (label allowlist, per-label minimum score, zones, masks),
//! tracked into events, stored with a snapshot, announced on the event bus, and each event
//! triggers the camera's recorder. Recording never waits for any of this. The thread beats
//! its `Heartbeat` at least once a second, frames or not, so health sees one that died or
//! hangs (in the model, say).

use super::draw::{self, EVENT_COLOUR, OTHER_COLOUR};
use super::image::RgbImage;
use super::motion::MotionGate;
use super::tracker::{Change, EventState, NormBox, Observation, Tracker};
use super::zones::AreaFilter;
use super::{Labeled, Model};
use crate::base::heartbeat::Heartbeat;
use crate::ingest::Frame;
use crate::record::runner::TriggerHandle;
use crate::store::{EventRecord, Store};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::Instant;
use tokio::sync::{broadcast, watch};

pub use super::tracker::MOTION_LABEL;
/// NMS overlap for the model's output.
const NMS_IOU: f32 = 0.45;
/// Re-trigger the recorder (extending the post-roll) at most this often per event.
const RETRIGGER_MS: i64 = 1000;
/// Without a frame for this long, open events age on the heartbeat instead.
const FRAMELESS_MS: i64 = 1000;
/// Effective fps is measured over windows this long.
const FPS_WINDOW_MS: i64 = 5000;

/// A change to an event, for the dashboard's live feed.
#[derive(Debug, Clone, serde::Serialize)]
pub struct EventNotice {
    /// `start`, `update` or `end`.
    pub kind: &'static str,
    pub event: EventRecord,
}

pub type EventBus = broadcast::Sender<EventNotice>;

pub fn event_bus() -> EventBus {
    broadcast::channel(256).0
}

/// At most `n` inferences at once across all cameras, sharing one optimised plan.
pub struct InferencePool {
    model: Arc<Model>,
    free: Mutex<usize>,
    cond: Condvar,
}

impl InferencePool {
    pub fn new(model: Model, threads: usize) -> Arc<Self> {
        Arc::new(Self {
            model: Arc::new(model),
            free: Mutex::new(threads.max(1)),
            cond: Condvar::new(),
        })
    }

    pub fn model(&self) -> &Model {
        &self.model
    }

    /// Runs `model.detect` in a free slot (waiting for one).
    fn detect(&self, img: &RgbImage, min_score: f32) -> Result<Vec<Labeled>, super::ModelError> {
        {
            let mut free = self.free.lock().unwrap_or_else(|p| p.into_inner());
            while *free == 0 {
                free = self.cond.wait(free).unwrap_or_else(|p| p.into_inner());
            }
            *free -= 1;
        }
        let result = self.model.detect(img, min_score, NMS_IOU);
        *self.free.lock().unwrap_or_else(|p| p.into_inner()) += 1;
        self.cond.notify_one();
        result
    }
}

/// What the detector of one camera has done, for status lines and /metrics.
#[derive(Debug, Default)]
pub struct DetectorCounters {
    pub frames: AtomicU64,
    /// Frames the motion gate kept from the model.
    pub gated: AtomicU64,
    pub inferences: AtomicU64,
    pub infer_us_total: AtomicU64,
    pub last_infer_us: AtomicU64,
    pub events: AtomicU64,
    /// Model runs per second over the last window, x1000.
    pub effective_fps_milli: AtomicU64,
    /// CPU time of the detector thread (motion, inference, snapshots), µs.
    pub cpu_us: AtomicU64,
    /// Boxes of the last analysed frame (normalised) and when it was analysed (ms), for
    /// the live view.
    pub live_boxes: std::sync::Mutex<(i64, Vec<NormBox>)>,
}

#[derive(Debug, Clone, Copy, Default, serde::Serialize)]
pub struct DetectorStats {
    pub frames: u64,
    pub gated: u64,
    pub inferences: u64,
    pub events: u64,
    pub gated_share: f64,
    pub mean_infer_ms: f64,
    pub last_infer_ms: f64,
    pub effective_fps: f64,
    pub cpu_s: f64,
}

impl DetectorCounters {
    pub fn stats(&self) -> DetectorStats {
        let frames = self.frames.load(Relaxed);
        let gated = self.gated.load(Relaxed);
        let inferences = self.inferences.load(Relaxed);
        DetectorStats {
            frames,
            gated,
            inferences,
            events: self.events.load(Relaxed),
            gated_share: if frames == 0 {
                0.0
            } else {
                gated as f64 / frames as f64
            },
            mean_infer_ms: if inferences == 0 {
                0.0
            } else {
                self.infer_us_total.load(Relaxed) as f64 / inferences as f64 / 1000.0
            },
            last_infer_ms: self.last_infer_us.load(Relaxed) as f64 / 1000.0,
            effective_fps: self.effective_fps_milli.load(Relaxed) as f64 / 1000.0,
            cpu_s: self.cpu_us.load(Relaxed) as f64 / 1e6,
        }
    }
}

/// One camera's detection settings, resolved from the config.
#[derive(Debug, Clone)]
pub struct DetectorSettings {
    pub camera_id: String,
    /// Labels that count (the model's other classes are ignored).
    pub labels: Vec<String>,
    /// Score for a detection to count, per label, and the default.
    pub min_score: HashMap<String, f32>,
    pub confidence: f32,
    /// Score for an event to start (and so a recording).
    pub record_min_confidence: f32,
    pub event_gap_ms: i64,
    pub dedup_window_ms: i64,
    pub motion_enabled: bool,
    pub motion_threshold: u8,
    pub motion_min_area: f64,
    pub forced_interval_ms: i64,
    pub zones: Vec<crate::config::Area>,
    pub masks: Vec<crate::config::Area>,
}

impl DetectorSettings {
    pub fn from_config(config: &crate::config::Config, camera: &crate::config::Camera) -> Self {
        let mut s = Self::from_parts(&config.detect, &config.record, &camera.id);
        s.zones = camera.zones.clone();
        s.masks = camera.masks.clone();
        s
    }

    /// Settings for `camera_id` with no zones or masks.
    pub fn from_parts(
        d: &crate::config::Detect,
        record: &crate::config::Record,
        camera_id: &str,
    ) -> Self {
        Self {
            camera_id: camera_id.to_string(),
            labels: d.labels.clone(),
            min_score: d
                .min_score
                .iter()
                .map(|(k, v)| (k.clone(), *v as f32))
                .collect(),
            confidence: d.confidence as f32,
            record_min_confidence: record.min_confidence as f32,
            event_gap_ms: (d.event_gap * 1000.0) as i64,
            dedup_window_ms: (d.dedup_window * 1000.0) as i64,
            motion_enabled: d.motion.enabled,
            motion_threshold: d.motion.threshold,
            motion_min_area: d.motion.min_area,
            forced_interval_ms: (d.motion.forced_interval * 1000.0) as i64,
            zones: Vec::new(),
            masks: Vec::new(),
        }
    }

    fn detect_score(&self, label: &str) -> f32 {
        self.min_score
            .get(label)
            .copied()
            .unwrap_or(self.confidence)
    }

    fn trigger_score(&self, label: &str) -> f32 {
        self.detect_score(label).max(self.record_min_confidence)
    }
}

/// A camera's zones and masks as the detector uses them, replaced while it runs.
pub type Areas = (Vec<crate::config::Area>, Vec<crate::config::Area>);

pub struct DetectorRunner {
    counters: Arc<DetectorCounters>,
    areas: Arc<watch::Sender<Areas>>,
    heartbeat: Heartbeat,
    thread: Option<JoinHandle<()>>,
}

impl DetectorRunner {
    /// Starts the camera's detector thread. It ends when the frames channel closes (ingest
    /// stopped), ending any open events first.
    pub fn spawn(
        settings: DetectorSettings,
        pool: Option<Arc<InferencePool>>,
        frames: watch::Receiver<Option<Arc<Frame>>>,
        store: Store,
        recorder: TriggerHandle,
        bus: EventBus,
    ) -> anyhow::Result<Self> {
        let counters = Arc::new(DetectorCounters::default());
        let heartbeat = Heartbeat::default();
        let (areas, areas_rx) = watch::channel((settings.zones.clone(), settings.masks.clone()));
        let mut worker = Worker {
            areas: areas_rx,
            heartbeat: heartbeat.clone(),
            filter: AreaFilter::new(&settings.zones, &settings.masks),
            gate: MotionGate::new(
                settings.motion_threshold,
                settings.motion_min_area,
                AreaFilter::new(&[], &settings.masks).masks(),
            ),
            tracker: Tracker::new(settings.event_gap_ms, settings.dedup_window_ms),
            settings,
            pool,
            store,
            recorder,
            bus,
            counters: counters.clone(),
            events: HashMap::new(),
            last_inference_ms: None,
            last_frame_ms: crate::base::clock::wall_ms(),
            window: (0, 0),
        };
        let thread = std::thread::Builder::new()
            .name(format!("detect-{}", worker.settings.camera_id))
            .spawn(move || worker.run(frames))?;
        Ok(Self {
            counters,
            areas: Arc::new(areas),
            heartbeat,
            thread: Some(thread),
        })
    }

    pub fn counters(&self) -> &Arc<DetectorCounters> {
        &self.counters
    }

    pub fn heartbeat(&self) -> &Heartbeat {
        &self.heartbeat
    }

    /// Where new zones and masks go: the detector takes them at its next frame, without
    /// a restart of anything (open events go on).
    pub fn areas(&self) -> Arc<watch::Sender<Areas>> {
        self.areas.clone()
    }

    /// Waits for the thread; call after ingest stopped.
    pub fn join(mut self) {
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// The detector's side of one open event.
struct OpenEvent {
    id: i64,
    last_trigger_ms: i64,
    /// Score of the snapshot on disk.
    saved_score: f32,
    /// The best frame so far with its boxes drawn, when better than the saved one.
    pending: Option<Frame>,
    /// Marked a scene change in the index (motion events only).
    scene_change: bool,
}

struct Worker {
    heartbeat: Heartbeat,
    areas: watch::Receiver<Areas>,
    settings: DetectorSettings,
    pool: Option<Arc<InferencePool>>,
    store: Store,
    recorder: TriggerHandle,
    bus: EventBus,
    counters: Arc<DetectorCounters>,
    filter: AreaFilter,
    gate: MotionGate,
    tracker: Tracker,
    events: HashMap<u64, OpenEvent>,
    last_inference_ms: Option<i64>,
    /// When the last frame arrived (wall ms).
    last_frame_ms: i64,
    /// (window start ms, model runs in it)
    window: (i64, u64),
}

fn thread_cpu_us() -> u64 {
    // SAFETY: clock_gettime fills the timespec for a valid clock id.
    let mut ts: libc::timespec = unsafe { std::mem::zeroed() };
    if unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) } != 0 {
        return 0;
    }
    ts.tv_sec as u64 * 1_000_000 + ts.tv_nsec as u64 / 1000
}

impl Worker {
    fn run(&mut self, mut frames: watch::Receiver<Option<Arc<Frame>>>) {
        let _alive = self.heartbeat.end_guard();
        let Ok(rt) = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
        else {
            tracing::error!(camera = %self.settings.camera_id, "cannot start the detector's runtime");
            return;
        };
        rt.block_on(async {
            let mut beat = tokio::time::interval(std::time::Duration::from_secs(1));
            loop {
                self.heartbeat.beat();
                #[cfg(feature = "test-faults")]
                crate::faults::detector_hook(&self.settings.camera_id);
                tokio::select! {
                    changed = frames.changed() => {
                        if changed.is_err() {
                            break;
                        }
                        let frame = frames.borrow_and_update().clone();
                        self.take_new_areas();
                        if let Some(frame) = frame {
                            self.on_frame(&frame);
                        }
                        self.counters.cpu_us.store(thread_cpu_us(), Relaxed);
                    }
                    _ = beat.tick() => self.age_without_frames(),
                }
            }
        });
        let changes = self.tracker.finish_all();
        self.apply(changes, None, &[], crate::base::clock::wall_ms(), false);
    }

    /// Zones and masks changed in the dashboard, from this frame on.
    fn take_new_areas(&mut self) {
        if !self.areas.has_changed().unwrap_or(false) {
            return;
        }
        let (zones, masks) = self.areas.borrow_and_update().clone();
        self.filter = AreaFilter::new(&zones, &masks);
        self.gate.set_masks(AreaFilter::new(&[], &masks).masks());
        tracing::info!(
            camera = %self.settings.camera_id,
            "zones and masks applied: {} zones, {} masks",
            zones.len(),
            masks.len()
        );
        (self.settings.zones, self.settings.masks) = (zones, masks);
    }

    /// With no frame for a second (a camera that went away), open events still age and
    /// end after `event_gap`, as if every frame since had shown nothing: else an event of
    /// a dead camera would stay open until it came back.
    fn age_without_frames(&mut self) {
        let now_ms = crate::base::clock::wall_ms();
        if now_ms - self.last_frame_ms < FRAMELESS_MS {
            return;
        }
        let changes = self.tracker.update(now_ms, &[]);
        self.apply(changes, None, &[], now_ms, false);
    }

    fn on_frame(&mut self, frame: &Arc<Frame>) {
        let now_ms = crate::base::clock::wall_ms();
        self.last_frame_ms = now_ms;
        self.counters.frames.fetch_add(1, Relaxed);
        let Ok(map) = frame.rgb.map_readable() else {
            return;
        };
        let (w, h) = (frame.width as usize, frame.height as usize);
        let (moving, motion_box, scene_change) = if self.settings.motion_enabled {
            let reading = self.gate.update(map.as_slice(), w, h);
            (reading.moving, reading.bbox, reading.scene_change)
        } else {
            (true, [0.0, 0.0, 1.0, 1.0], false)
        };
        let mut observations = Vec::new();
        let mut analysed = false;
        if let Some(pool) = self.pool.clone() {
            let forced = self.settings.forced_interval_ms > 0
                && self
                    .last_inference_ms
                    .is_none_or(|t| now_ms - t >= self.settings.forced_interval_ms);
            if moving || forced || !self.settings.motion_enabled {
                let img = RgbImage {
                    width: frame.width,
                    height: frame.height,
                    data: map.as_slice().to_vec(),
                };
                let min = self
                    .settings
                    .labels
                    .iter()
                    .map(|l| self.settings.detect_score(l))
                    .fold(1.0f32, f32::min);
                let started = Instant::now();
                match pool.detect(&img, min) {
                    Ok(dets) => observations = self.observations(&dets, w, h),
                    Err(e) => {
                        tracing::warn!(camera = %self.settings.camera_id, "detection: {e}")
                    }
                }
                self.count_inference(started, now_ms);
                analysed = true;
            } else {
                self.counters.gated.fetch_add(1, Relaxed);
            }
        } else if !moving {
            self.counters.gated.fetch_add(1, Relaxed);
        }
        let motion_label =
            self.pool.is_none() || self.settings.labels.iter().any(|l| l == MOTION_LABEL);
        // What moved counts where an object would: its box's bottom centre in a zone.
        let motion_admitted = self.filter.admits(
            MOTION_LABEL,
            f64::from(motion_box[0] + motion_box[2]) / 2.0,
            f64::from(motion_box[3]),
        );
        if motion_label && moving && motion_admitted {
            // What moved (the whole frame only when motion detection is off).
            observations.push(Observation {
                label: MOTION_LABEL.into(),
                score: 1.0,
                bbox: motion_box,
                trigger_score: 0.0,
            });
        }
        if !analysed && !moving {
            // Nothing was looked at: only let unseen events age.
            let changes = self.tracker.update(now_ms, &[]);
            drop(map);
            self.apply(changes, None, &[], now_ms, false);
            return;
        }
        if analysed {
            *self
                .counters
                .live_boxes
                .lock()
                .unwrap_or_else(|p| p.into_inner()) = (
                now_ms,
                observations
                    .iter()
                    .filter(|o| o.label != MOTION_LABEL)
                    .map(|o| o.bbox)
                    .collect(),
            );
        }
        let changes = self.tracker.update(now_ms, &observations);
        drop(map);
        self.apply(changes, Some(frame), &observations, now_ms, moving);
        if scene_change && motion_label {
            self.mark_scene_change();
        }
    }

    /// The open motion event saw the whole picture change: it says so (once).
    fn mark_scene_change(&mut self) {
        let Some(key) = self
            .tracker
            .open_events()
            .find(|e| e.label == MOTION_LABEL)
            .map(|e| e.key)
        else {
            return;
        };
        let Some(open) = self.events.get_mut(&key).filter(|o| !o.scene_change) else {
            return;
        };
        open.scene_change = true;
        if let Err(e) = self.store.mark_scene_change(open.id) {
            tracing::warn!(camera = %self.settings.camera_id, "event {}: {e}", open.id);
        }
    }

    fn observations(&self, dets: &[Labeled], w: usize, h: usize) -> Vec<Observation> {
        let (fw, fh) = (w as f32, h as f32);
        dets.iter()
            .filter(|d| self.settings.labels.contains(&d.label))
            .filter(|d| d.det.score >= self.settings.detect_score(&d.label))
            .map(|d| {
                let bbox: NormBox = [d.det.x1 / fw, d.det.y1 / fh, d.det.x2 / fw, d.det.y2 / fh];
                (d, bbox)
            })
            .filter(|(d, b)| {
                self.filter
                    .admits(&d.label, ((b[0] + b[2]) / 2.0) as f64, b[3] as f64)
            })
            .map(|(d, bbox)| Observation {
                label: d.label.clone(),
                score: d.det.score,
                bbox,
                trigger_score: self.settings.trigger_score(&d.label),
            })
            .collect()
    }

    fn count_inference(&mut self, started: Instant, now_ms: i64) {
        let us = started.elapsed().as_micros() as u64;
        self.counters.inferences.fetch_add(1, Relaxed);
        self.counters.infer_us_total.fetch_add(us, Relaxed);
        self.counters.last_infer_us.store(us, Relaxed);
        self.last_inference_ms = Some(now_ms);
        let (start, n) = &mut self.window;
        *n += 1;
        if now_ms - *start >= FPS_WINDOW_MS {
            if *start > 0 {
                let fps = *n as f64 * 1000.0 / (now_ms - *start) as f64;
                self.counters
                    .effective_fps_milli
                    .store((fps * 1000.0) as u64, Relaxed);
            }
            self.window = (now_ms, 0);
        }
    }

    /// Stores, announces and records what the tracker reported.
    fn apply(
        &mut self,
        changes: Vec<Change>,
        frame: Option<&Arc<Frame>>,
        seen: &[Observation],
        now_ms: i64,
        moving: bool,
    ) {
        let cam = self.settings.camera_id.clone();
        for change in changes {
            let result = match change {
                Change::Start(ev) => self.start(&ev, frame, seen),
                Change::Update {
                    event,
                    improved,
                    resumed,
                } => self.update(&event, improved, resumed, frame, seen, now_ms, moving),
                Change::End(ev) => self.end(&ev),
            };
            if let Err(e) = result {
                tracing::error!(camera = %cam, "event: {e}");
            }
        }
    }

    fn start(
        &mut self,
        ev: &EventState,
        frame: Option<&Arc<Frame>>,
        seen: &[Observation],
    ) -> Result<(), crate::store::StoreError> {
        let zones = self.filter.zones_at(&ev.label, &ev.best_box);
        let id = self.store.insert_event_in(
            &self.settings.camera_id,
            &ev.label,
            ev.start_ms,
            ev.max_score,
            &ev.best_box,
            &zones,
        )?;
        self.counters.events.fetch_add(1, Relaxed);
        tracing::info!(
            camera = %self.settings.camera_id,
            "event {id}: {} ({:.2}) at [{:.2}, {:.2}, {:.2}, {:.2}]",
            ev.label, ev.max_score, ev.best_box[0], ev.best_box[1], ev.best_box[2], ev.best_box[3]
        );
        self.recorder.trigger_at(&ev.label, Some(ev.start_ms));
        let mut open = OpenEvent {
            id,
            last_trigger_ms: ev.start_ms,
            saved_score: 0.0,
            pending: frame.and_then(|f| annotated(f, &ev.best_box, seen)),
            scene_change: false,
        };
        save_snapshot(&self.store, &mut open, ev.max_score);
        self.events.insert(ev.key, open);
        self.notify("start", ev, id);
        Ok(())
    }

    #[allow(clippy::too_many_arguments)]
    fn update(
        &mut self,
        ev: &EventState,
        improved: bool,
        resumed: bool,
        frame: Option<&Arc<Frame>>,
        seen: &[Observation],
        now_ms: i64,
        moving: bool,
    ) -> Result<(), crate::store::StoreError> {
        let Some(open) = self.events.get_mut(&ev.key) else {
            return Ok(());
        };
        let id = open.id;
        // A still object seen by a forced check keeps its event open without recording.
        if (moving || resumed) && now_ms - open.last_trigger_ms >= RETRIGGER_MS {
            open.last_trigger_ms = now_ms;
            self.recorder.trigger_at(&ev.label, Some(now_ms));
        }
        if improved && let Some(f) = frame {
            open.pending = annotated(f, &ev.best_box, seen);
        }
        if improved || resumed {
            self.store
                .update_event(id, None, ev.max_score, &ev.best_box)?;
            self.notify("update", ev, id);
        }
        Ok(())
    }

    fn end(&mut self, ev: &EventState) -> Result<(), crate::store::StoreError> {
        let Some(mut open) = self.events.remove(&ev.key) else {
            return Ok(());
        };
        self.store
            .update_event(open.id, ev.end_ms, ev.max_score, &ev.best_box)?;
        save_snapshot(&self.store, &mut open, ev.max_score);
        self.notify("end", ev, open.id);
        Ok(())
    }

    fn notify(&self, kind: &'static str, ev: &EventState, id: i64) {
        // Read back so the notice carries what the API would show (clip link, snapshot).
        let event = self.store.event(id).unwrap_or_else(|_| EventRecord {
            id,
            camera_id: self.settings.camera_id.clone(),
            label: ev.label.clone(),
            start_ms: ev.start_ms,
            end_ms: ev.end_ms,
            max_score: ev.max_score as f64,
            bbox: ev.best_box,
            clip_id: None,
            has_snapshot: false,
            acknowledged: false,
            keep: false,
            scene_change: false,
            review_id: None,
            zones: Vec::new(),
        });
        let _ = self.bus.send(EventNotice { kind, event });
    }
}

/// A copy of `frame` with the event's box (and the others seen with it) drawn.
fn annotated(frame: &Frame, event_box: &NormBox, seen: &[Observation]) -> Option<Frame> {
    let mut rgb = frame.rgb.map_readable().ok()?.as_slice().to_vec();
    let (w, h) = (frame.width as usize, frame.height as usize);
    let mut boxes: Vec<(NormBox, [u8; 3])> = seen
        .iter()
        .filter(|o| o.bbox != *event_box && o.label != MOTION_LABEL)
        .map(|o| (o.bbox, OTHER_COLOUR))
        .collect();
    if *event_box != [0.0, 0.0, 1.0, 1.0] {
        boxes.push((*event_box, EVENT_COLOUR));
    }
    draw::draw_boxes(&mut rgb, w, h, &boxes, 2);
    Some(Frame {
        pts_ns: frame.pts_ns,
        width: frame.width,
        height: frame.height,
        rgb: gstreamer::Buffer::from_mut_slice(rgb),
    })
}

/// Writes the pending snapshot if it is better than the saved one.
fn save_snapshot(store: &Store, open: &mut OpenEvent, score: f32) {
    let Some(frame) = open.pending.take() else {
        return;
    };
    if score <= open.saved_score {
        return;
    }
    match crate::record::snapshot::encode_jpeg(&frame)
        .map_err(|e| e.to_string())
        .and_then(|jpeg| {
            store
                .set_event_snapshot(open.id, &jpeg)
                .map_err(|e| e.to_string())
        }) {
        Ok(()) => open.saved_score = score,
        Err(e) => tracing::warn!("event {}: no snapshot: {e}", open.id),
    }
}
