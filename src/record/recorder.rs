//! `Recorder`: one camera's recording state machine, fed every access unit and the
//! triggers. Idle → (trigger at stream time t) → recording from the ring's keyframe at or
//! before t − pre-roll → each further trigger pushes the end to t + post-roll → finished
//! after the first unit at or past the end. A clip longer than `max_clip_length` is cut at
//! the next keyframe and the event continues in a new clip that starts with that very
//! keyframe: no frame is lost or written twice. A new stream (reconnect, caps change) ends
//! the clip; if the event is still on, recording continues at the new stream's first
//! keyframe. Wall-clock times come from the stream's running time anchored at the first
//! unit of each connection, so clock steps mid-clip do not bend clip times.

use super::anchor::WallAnchor;
use super::ring::Ring;
use crate::base::clock::ClockRef;
use crate::ingest::{AccessUnit, Frame};
use crate::media::mux::{MuxError, Muxer};
use crate::store::{ClipMeta, ClipRecord, ClipWriter, Store, StoreError};

#[derive(Debug, Clone)]
pub struct RecordSettings {
    pub pre_ns: u64,
    pub post_ns: u64,
    pub max_clip_ns: u64,
    /// Ring bound; None derives it from the bitrate.
    pub ring_max_bytes: Option<usize>,
    /// Fragment duration, what a crash can lose at most: fragments are cut after this
    /// long, or at a keyframe just before, so a 1 s GOP makes one fragment per GOP.
    pub fragment_ms: u32,
    /// Continuous recording in segments of this length; None records events only.
    pub segment_ns: Option<u64>,
}

impl RecordSettings {
    pub fn from_config(r: &crate::config::Record, mode: crate::config::RecordMode) -> Self {
        Self {
            pre_ns: (r.pre_detection_buffer * 1e9) as u64,
            post_ns: (r.post_detection_buffer * 1e9) as u64,
            max_clip_ns: (r.max_clip_length * 1e9) as u64,
            ring_max_bytes: r.ring_max_mb.map(|mb| (mb * 1024.0 * 1024.0) as usize),
            fragment_ms: 1000,
            segment_ns: (mode == crate::config::RecordMode::Continuous)
                .then_some((r.segment_seconds * 1e9) as u64),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    #[error("{0}")]
    Mux(#[from] MuxError),
    #[error("{0}")]
    Store(#[from] StoreError),
    #[error("no video to record yet")]
    NoVideo,
}

/// A clip the recorder finished, with the stream times of its first and last frame.
#[derive(Debug, Clone)]
pub struct FinishedClip {
    pub record: ClipRecord,
    pub first_pts_ns: u64,
    pub last_pts_ns: u64,
    pub frames: u64,
}

struct Active {
    writer: ClipWriter,
    mux: Muxer,
    first_pts_ns: u64,
    last_pts_ns: u64,
    end_at_ns: u64,
    labels: Vec<String>,
    thumbnail: Option<Vec<u8>>,
}

/// An event that outlived its clip (split or stream change) and continues at the next
/// keyframe.
struct Carry {
    end_at_ns: u64,
    labels: Vec<String>,
}

pub struct Recorder {
    camera_id: String,
    settings: RecordSettings,
    ring: Ring,
    store: Store,
    active: Option<Active>,
    carry: Option<Carry>,
    anchor: WallAnchor,
    /// Clips finished since the caller last drained this.
    pub finished: Vec<FinishedClip>,
}

impl Recorder {
    pub fn new(camera_id: &str, settings: RecordSettings, store: Store, clock: ClockRef) -> Self {
        let pre_s = settings.pre_ns as f64 / 1e9;
        Self {
            camera_id: camera_id.to_string(),
            ring: Ring::new(pre_s, settings.ring_max_bytes),
            settings,
            store,
            active: None,
            carry: None,
            anchor: WallAnchor::new(clock),
            finished: Vec::new(),
        }
    }

    pub fn ring(&self) -> &Ring {
        &self.ring
    }

    pub fn is_recording(&self) -> bool {
        self.active.is_some()
    }

    fn wall_ms(&self, pts_ns: u64) -> i64 {
        self.anchor.wall_ms(pts_ns)
    }

    /// The stream time of wall-clock `ms`, no later than the newest unit (None before
    /// the first unit).
    pub fn pts_at_wall_ms(&self, ms: i64) -> Option<u64> {
        let pts = self.anchor.pts_at_wall_ms(ms)?;
        Some(
            self.ring
                .newest_pts_ns()
                .map_or(pts, |newest| pts.min(newest)),
        )
    }

    pub fn on_unit(&mut self, unit: AccessUnit) -> Result<(), RecordError> {
        self.anchor.observe(&unit);
        self.ring.push(unit.clone());
        if let Some(active) = &self.active {
            let changed = !active.mux.accepts(&unit);
            let split = unit.keyframe
                && unit.pts_ns.saturating_sub(active.first_pts_ns) >= self.settings.max_clip_ns;
            if changed || split {
                let labels = active.labels.clone();
                // A new stream restarts its clock: carry the time the event had left.
                let end_at_ns = if changed {
                    unit.pts_ns + active.end_at_ns.saturating_sub(active.last_pts_ns)
                } else {
                    active.end_at_ns
                };
                self.finish_active()?;
                if unit.pts_ns <= end_at_ns {
                    self.carry = Some(Carry { end_at_ns, labels });
                }
            } else {
                return self.append(unit);
            }
        }
        if unit.keyframe {
            if let Some(carry) = self.carry.take()
                && unit.pts_ns <= carry.end_at_ns
            {
                self.start(vec![unit], carry.end_at_ns, carry.labels, None, None)?;
            }
        } else if self
            .carry
            .as_ref()
            .is_some_and(|c| unit.pts_ns > c.end_at_ns)
        {
            self.carry = None;
        }
        Ok(())
    }

    fn append(&mut self, unit: AccessUnit) -> Result<(), RecordError> {
        let Some(active) = self.active.as_mut() else {
            return Ok(());
        };
        active.mux.push(&unit)?;
        active.writer.write(&active.mux.take_output())?;
        active.last_pts_ns = unit.pts_ns;
        if unit.pts_ns >= active.end_at_ns {
            self.finish_active()?;
        }
        Ok(())
    }

    /// A trigger at stream time `at_pts_ns` (default: the newest unit). `frame` is the
    /// decoded picture of that moment, for the thumbnail.
    pub fn trigger(
        &mut self,
        label: &str,
        at_pts_ns: Option<u64>,
        frame: Option<&Frame>,
    ) -> Result<(), RecordError> {
        let t = at_pts_ns
            .or(self.ring.newest_pts_ns())
            .ok_or(RecordError::NoVideo)?;
        let end_at = t + self.settings.post_ns;
        if let Some(active) = self.active.as_mut() {
            active.end_at_ns = active.end_at_ns.max(end_at);
            if !active.labels.iter().any(|l| l == label) {
                active.labels.push(label.to_string());
            }
            return Ok(());
        }
        if let Some(carry) = self.carry.as_mut() {
            carry.end_at_ns = carry.end_at_ns.max(end_at);
            return Ok(());
        }
        let units = self
            .ring
            .snapshot_from(t.saturating_sub(self.settings.pre_ns));
        if units.is_empty() {
            return Err(RecordError::NoVideo);
        }
        let thumbnail = frame.and_then(|f| match super::snapshot::encode_jpeg(f) {
            Ok(j) => Some(j),
            Err(e) => {
                tracing::warn!(camera = %self.camera_id, "no thumbnail: {e}");
                None
            }
        });
        self.start(units, end_at, vec![label.to_string()], thumbnail, Some(t))
    }

    fn start(
        &mut self,
        units: Vec<AccessUnit>,
        end_at_ns: u64,
        labels: Vec<String>,
        thumbnail: Option<Vec<u8>>,
        trigger_pts_ns: Option<u64>,
    ) -> Result<(), RecordError> {
        let first = &units[0];
        let meta = ClipMeta {
            camera_id: self.camera_id.clone(),
            start_ms: self.wall_ms(first.pts_ns),
            codec: String::new(), // the MP4 sample entry names it (avc1, hvc1, ...)
            width: first.stream.width,
            height: first.stream.height,
            labels: labels.clone(),
            pre_roll_ms: trigger_pts_ns
                .map(|t| (t.saturating_sub(first.pts_ns) / 1_000_000) as i64)
                .unwrap_or(0),
            post_roll_ms: (self.settings.post_ns / 1_000_000) as i64,
            run_start_ms: None,
        };
        let writer = self.store.begin_clip(meta)?;
        let mux = Muxer::new(first.stream.clone(), self.settings.fragment_ms);
        let first_pts_ns = first.pts_ns;
        self.active = Some(Active {
            writer,
            mux,
            first_pts_ns,
            last_pts_ns: first_pts_ns,
            end_at_ns,
            labels,
            thumbnail,
        });
        for u in units {
            // append may finish the clip when the ring already reaches past the end.
            if self.active.is_none() {
                break;
            }
            self.append(u)?;
        }
        Ok(())
    }

    /// Ends the current clip now (camera gone, shutdown).
    pub fn finish_active(&mut self) -> Result<(), RecordError> {
        let Some(mut a) = self.active.take() else {
            return Ok(());
        };
        let frames = a.mux.frames;
        let rest = a.mux.finish()?;
        a.writer.write(&rest)?;
        let record = a.writer.finish(a.thumbnail.as_deref())?;
        tracing::info!(
            camera = %self.camera_id,
            "clip {} finished: {} ms, {} frames, {} bytes, labels {:?}",
            record.id, record.duration_ms, record.frames, record.plain_bytes, record.labels
        );
        self.finished.push(FinishedClip {
            record,
            first_pts_ns: a.first_pts_ns,
            last_pts_ns: a.last_pts_ns,
            frames,
        });
        Ok(())
    }

    /// After an error: drops the open clip (its writer keeps what reached the disk, as a
    /// truncated clip) and any continuation.
    pub fn abandon_active(&mut self) {
        self.active = None;
        self.carry = None;
    }
}
