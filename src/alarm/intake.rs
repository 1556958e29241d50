//! Where received alarm pictures become events, on a thread of its own (the store and the
//! encoder block). The receivers hand over an `Arrival` per message; a bounded queue keeps
//! a flood from piling up memory (a full queue refuses the message with a temporary error).
//!
//! Per camera, the first arrival opens a *batch*: an event (label from the subject or
//! `alarm.label`) with the first picture as its sealed snapshot, announced on the event
//! bus at once. Arrivals within `alarm.batch_seconds` of the previous one join it. When
//! the batch closes, two or more pictures become a clip (clip.rs), which the store links
//! to the event, and the event ends. At most `alarms.max_events_per_minute` events per
//! camera; arrivals past that are dropped and audited.

use super::clip;
use super::picture::Picture;
use crate::detect::runner::{EventBus, EventNotice};
use crate::store::Store;
use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::mpsc;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

/// Messages waiting for the intake thread at most; more are refused (451, try later).
const QUEUE: usize = 64;
/// Pictures one batch holds at most (a camera mailing for minutes keeps its first ones).
const MAX_BATCH_PICTURES: usize = 200;
/// Videos one batch holds at most.
const MAX_BATCH_VIDEOS: usize = 4;
const WHOLE: [f32; 4] = [0.0, 0.0, 1.0, 1.0];

/// One received message (or upload) for a camera.
#[derive(Debug)]
pub struct Arrival {
    pub camera: String,
    pub pictures: Vec<Picture>,
    /// Attached videos (MP4/AVI), each becoming a clip of its own (video.rs).
    pub videos: Vec<Vec<u8>>,
    pub subject: Option<String>,
    pub received_ms: i64,
    pub from: IpAddr,
}

/// How one camera's alarms are filed (`cameras[].alarm`).
#[derive(Debug, Clone)]
pub struct CameraRules {
    pub label: String,
    pub batch: Duration,
    pub picture_ms: i64,
}

/// The receivers' side of the queue.
#[derive(Clone)]
pub struct Intake {
    tx: mpsc::SyncSender<Arrival>,
}

#[derive(Debug, thiserror::Error)]
#[error("the alarm queue is full")]
pub struct Busy;

impl Intake {
    /// Queues `a`, or Busy when the intake is behind.
    pub fn submit(&self, a: Arrival) -> Result<(), Busy> {
        self.tx.try_send(a).map_err(|_| Busy)
    }
}

struct Batch {
    event: i64,
    label: String,
    start_ms: i64,
    pictures: Vec<Picture>,
    arrived_ms: Vec<i64>,
    videos: Vec<Vec<u8>>,
    closes_at: Instant,
}

struct Worker {
    store: Store,
    bus: Option<EventBus>,
    audit: Option<std::sync::Arc<crate::audit::Audit>>,
    rules: HashMap<String, CameraRules>,
    max_per_minute: usize,
    open: HashMap<String, Batch>,
    recent_events: HashMap<String, VecDeque<Instant>>,
}

/// Starts the intake thread; it closes every open batch and ends after `stop`.
pub fn spawn(
    store: Store,
    bus: Option<EventBus>,
    audit: Option<std::sync::Arc<crate::audit::Audit>>,
    rules: HashMap<String, CameraRules>,
    max_per_minute: u32,
    stop: CancellationToken,
) -> std::io::Result<(Intake, std::thread::JoinHandle<()>)> {
    let (tx, rx) = mpsc::sync_channel(QUEUE);
    let mut worker = Worker {
        store,
        bus,
        audit,
        rules,
        max_per_minute: max_per_minute as usize,
        open: HashMap::new(),
        recent_events: HashMap::new(),
    };
    let handle = std::thread::Builder::new()
        .name("alarm-intake".into())
        .spawn(move || worker.run(&rx, &stop))?;
    Ok((Intake { tx }, handle))
}

impl Worker {
    fn run(&mut self, rx: &mpsc::Receiver<Arrival>, stop: &CancellationToken) {
        while !stop.is_cancelled() {
            let wait = self
                .open
                .values()
                .map(|b| b.closes_at.saturating_duration_since(Instant::now()))
                .min()
                .unwrap_or(Duration::from_millis(500))
                .min(Duration::from_millis(500));
            match rx.recv_timeout(wait) {
                Ok(a) => self.arrive(a),
                Err(mpsc::RecvTimeoutError::Timeout) => {}
                Err(mpsc::RecvTimeoutError::Disconnected) => break,
            }
            self.close_due(false);
        }
        while let Ok(a) = rx.try_recv() {
            self.arrive(a);
        }
        self.close_due(true);
    }

    fn arrive(&mut self, a: Arrival) {
        let Some(rules) = self.rules.get(&a.camera).cloned() else {
            return;
        };
        if a.pictures.is_empty() && a.videos.is_empty() {
            tracing::info!(camera = %a.camera, "alarm message without a picture: ignored");
            return;
        }
        if let Some(batch) = self.open.get_mut(&a.camera) {
            let room = MAX_BATCH_PICTURES.saturating_sub(batch.pictures.len());
            let n = a.pictures.len().min(room);
            batch
                .arrived_ms
                .extend(std::iter::repeat_n(a.received_ms, n));
            batch.pictures.extend(a.pictures.into_iter().take(n));
            let room = MAX_BATCH_VIDEOS.saturating_sub(batch.videos.len());
            batch.videos.extend(a.videos.into_iter().take(room));
            batch.closes_at = Instant::now() + rules.batch;
            return;
        }
        if !self.take_event_slot(&a.camera) {
            tracing::warn!(camera = %a.camera, "alarm dropped: over alarms.max_events_per_minute");
            if let Some(audit) = &self.audit {
                audit.log(
                    None,
                    a.from,
                    "alarm_refused",
                    &format!("{}: event rate", a.camera),
                );
            }
            return;
        }
        let camera = a.camera.clone();
        match self.open_batch(a, &rules) {
            Ok(batch) => {
                self.open.insert(camera, batch);
            }
            Err(e) => tracing::error!(camera = %camera, "alarm event not stored: {e}"),
        }
    }

    /// Counts an event for `camera` unless it already had `max_per_minute` in a minute.
    fn take_event_slot(&mut self, camera: &str) -> bool {
        let now = Instant::now();
        let recent = self.recent_events.entry(camera.to_string()).or_default();
        while recent
            .front()
            .is_some_and(|t| now.duration_since(*t) >= Duration::from_secs(60))
        {
            recent.pop_front();
        }
        if recent.len() >= self.max_per_minute {
            return false;
        }
        recent.push_back(now);
        true
    }

    fn open_batch(&self, mut a: Arrival, rules: &CameraRules) -> Result<Batch, String> {
        let label = a
            .subject
            .as_deref()
            .and_then(label_from_subject)
            .unwrap_or(&rules.label)
            .to_string();
        let err = |e: crate::store::StoreError| e.to_string();
        let event = self
            .store
            .insert_event(&a.camera, &label, a.received_ms, 1.0, &WHOLE)
            .map_err(err)?;
        if let Some(first) = a.pictures.first()
            && let Err(e) = self.store.set_event_snapshot(event, &first.jpeg)
        {
            tracing::warn!(camera = %a.camera, "alarm event {event}: no snapshot: {e}");
        }
        self.announce("start", event);
        tracing::info!(
            camera = %a.camera,
            "alarm event {event} ({label}): {} picture(s), {} video(s)",
            a.pictures.len(),
            a.videos.len()
        );
        Ok(Batch {
            event,
            label,
            start_ms: a.received_ms,
            arrived_ms: vec![a.received_ms; a.pictures.len()],
            pictures: a.pictures,
            videos: {
                a.videos.truncate(MAX_BATCH_VIDEOS);
                a.videos
            },
            closes_at: Instant::now() + rules.batch,
        })
    }

    fn close_due(&mut self, all: bool) {
        let now = Instant::now();
        let due: Vec<String> = self
            .open
            .iter()
            .filter(|(_, b)| all || b.closes_at <= now)
            .map(|(c, _)| c.clone())
            .collect();
        for camera in due {
            if let Some(batch) = self.open.remove(&camera) {
                self.close(&camera, batch);
            }
        }
    }

    /// Stores the batch's clips (its videos; two or more pictures) and ends its event.
    fn close(&self, camera: &str, b: Batch) {
        let picture_ms = self.rules.get(camera).map(|r| r.picture_ms).unwrap_or(1000);
        let mut end_ms = b.arrived_ms.last().copied().unwrap_or(b.start_ms);
        for video in &b.videos {
            match self.store_video(camera, &b, video.clone()) {
                Ok(video_end_ms) => end_ms = end_ms.max(video_end_ms),
                Err(e) => {
                    tracing::warn!(camera, "alarm event {}: a video was not kept: {e}", b.event)
                }
            }
        }
        if b.pictures.len() >= 2 {
            let times = clip::show_times_ms(&b.pictures, &b.arrived_ms, picture_ms);
            match clip::store_clip(
                &self.store,
                camera,
                &b.label,
                b.start_ms,
                &b.pictures,
                &times,
            ) {
                Ok(c) => {
                    end_ms = end_ms.max(c.end_ms);
                    tracing::info!(
                        camera,
                        "alarm clip {}: {} pictures, {} ms",
                        c.id,
                        b.pictures.len(),
                        c.duration_ms
                    );
                }
                Err(e) => tracing::error!(camera, "alarm event {}: no clip: {e}", b.event),
            }
        }
        match self.store.update_event(b.event, Some(end_ms), 1.0, &WHOLE) {
            Ok(()) => self.announce("end", b.event),
            Err(e) => tracing::error!(camera, "alarm event {} not ended: {e}", b.event),
        }
    }

    /// Remuxes (or transcodes) one attached video into a clip from the batch's start;
    /// returns the clip's end.
    fn store_video(&self, camera: &str, b: &Batch, video: Vec<u8>) -> Result<i64, String> {
        let (units, transcoded) = super::video::units_of(video)?;
        let thumbnail = b.pictures.first().map(|p| p.jpeg.as_slice());
        let c = clip::store_units(
            &self.store,
            (camera, &b.label, b.start_ms),
            &units,
            thumbnail,
        )?;
        let how = if transcoded { "transcoded" } else { "remuxed" };
        tracing::info!(
            camera,
            "alarm clip {} from an attached video ({how}): {} ms",
            c.id,
            c.duration_ms
        );
        Ok(c.end_ms)
    }

    fn announce(&self, kind: &'static str, id: i64) {
        let (Some(bus), Ok(event)) = (&self.bus, self.store.event(id)) else {
            return;
        };
        let _ = bus.send(EventNotice { kind, event });
    }
}

/// A detector label a camera's subject line names ("Person detected", "Vehicle alarm").
pub fn label_from_subject(subject: &str) -> Option<&'static str> {
    subject
        .split(|c: char| !c.is_ascii_alphanumeric())
        .find_map(|word| match word.to_ascii_lowercase().as_str() {
            "person" | "people" | "human" | "pedestrian" => Some("person"),
            "car" | "vehicle" | "cars" | "vehicles" => Some("car"),
            "animal" | "pet" | "dog" | "cat" => Some("animal"),
            _ => None,
        })
}

#[cfg(test)]
mod tests {
    use super::label_from_subject;

    #[test]
    fn a_subject_may_name_the_label() {
        assert_eq!(
            label_from_subject("Alarm: Human detected on CH1"),
            Some("person")
        );
        assert_eq!(label_from_subject("VEHICLE at gate"), Some("car"));
        assert_eq!(label_from_subject("Motion alarm"), None);
        assert_eq!(label_from_subject("Carport camera"), None);
    }
}
