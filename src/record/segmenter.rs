//! `Segmenter`: continuous recording of one camera. Every access unit goes into the open
//! segment; at the first keyframe `segment_ns` or more after the segment's start, the
//! segment is sealed and that very keyframe starts the next one. So segments of one run
//! are gapless: the frame after the last one of segment N is the first one of N+1, with
//! nothing duplicated or dropped. A new stream (reconnect, caps change), a silent camera,
//! a failed write or a restart ends the run; the next run starts at the next keyframe,
//! and the time between is a real gap. Segments are named after their run (writer.rs), so
//! one cut by a crash is recovered into it.
//!
//! Wall-clock times come from `WallAnchor` (anchor.rs), so clock steps within a run do
//! not bend it.

use super::anchor::WallAnchor;
use super::recorder::{FinishedClip, RecordError};
use crate::base::clock::ClockRef;
use crate::ingest::{AccessUnit, StreamInfo};
use crate::media::mux::Muxer;
use crate::store::{ClipMeta, ClipWriter, Store};
use std::sync::Arc;

/// The segment being written.
struct Open {
    writer: ClipWriter,
    mux: Muxer,
    first_pts_ns: u64,
    last_pts_ns: u64,
}

/// The run being recorded: its stream and the wall ms it started at.
struct Run {
    stream: Arc<StreamInfo>,
    start_ms: i64,
}

pub struct Segmenter {
    camera_id: String,
    segment_ns: u64,
    fragment_ms: u32,
    store: Store,
    open: Option<Open>,
    run: Option<Run>,
    anchor: WallAnchor,
    /// Segments finished since the caller last drained this.
    pub finished: Vec<FinishedClip>,
}

impl Segmenter {
    pub fn new(
        camera_id: &str,
        segment_ns: u64,
        fragment_ms: u32,
        store: Store,
        clock: ClockRef,
    ) -> Self {
        Self {
            camera_id: camera_id.to_string(),
            segment_ns,
            fragment_ms,
            store,
            open: None,
            run: None,
            anchor: WallAnchor::new(clock),
            finished: Vec::new(),
        }
    }

    pub fn is_recording(&self) -> bool {
        self.open.is_some()
    }

    pub fn on_unit(&mut self, unit: AccessUnit) -> Result<(), RecordError> {
        self.anchor.observe(&unit);
        let changed_stream = self
            .run
            .as_ref()
            .is_some_and(|r| !Arc::ptr_eq(&r.stream, &unit.stream));
        if changed_stream || self.open.as_ref().is_some_and(|o| !o.mux.accepts(&unit)) {
            self.end_run()?;
        }
        if let Some(open) = &self.open
            && unit.keyframe
            && unit.pts_ns.saturating_sub(open.first_pts_ns) >= self.segment_ns
        {
            self.finish_open()?;
        }
        if self.open.is_none() {
            if !unit.keyframe {
                // Frames are lost until a keyframe: whatever comes next is a new run.
                self.run = None;
                return Ok(());
            }
            self.start(&unit)?;
        }
        self.append(&unit)
    }

    fn start(&mut self, first: &AccessUnit) -> Result<(), RecordError> {
        let start_ms = self.anchor.wall_ms(first.pts_ns);
        let run_start_ms = self
            .run
            .get_or_insert_with(|| Run {
                stream: first.stream.clone(),
                start_ms,
            })
            .start_ms;
        let meta = ClipMeta {
            camera_id: self.camera_id.clone(),
            start_ms,
            width: first.stream.width,
            height: first.stream.height,
            run_start_ms: Some(run_start_ms),
            ..Default::default()
        };
        let writer = self.store.begin_clip(meta)?;
        let mux = Muxer::new(first.stream.clone(), self.fragment_ms);
        self.open = Some(Open {
            writer,
            mux,
            first_pts_ns: first.pts_ns,
            last_pts_ns: first.pts_ns,
        });
        Ok(())
    }

    fn append(&mut self, unit: &AccessUnit) -> Result<(), RecordError> {
        let Some(open) = self.open.as_mut() else {
            return Ok(());
        };
        open.mux.push(unit)?;
        open.writer.write(&open.mux.take_output())?;
        open.last_pts_ns = unit.pts_ns;
        Ok(())
    }

    /// Seals the open segment; the run goes on with the next one.
    fn finish_open(&mut self) -> Result<(), RecordError> {
        let Some(mut open) = self.open.take() else {
            return Ok(());
        };
        let frames = open.mux.frames;
        let rest = open.mux.finish()?;
        open.writer.write(&rest)?;
        let record = open.writer.finish(None)?;
        tracing::debug!(
            camera = %self.camera_id,
            "segment {} sealed: {} ms, {} frames, {} bytes",
            record.id, record.duration_ms, record.frames, record.plain_bytes
        );
        self.finished.push(FinishedClip {
            record,
            first_pts_ns: open.first_pts_ns,
            last_pts_ns: open.last_pts_ns,
            frames,
        });
        Ok(())
    }

    /// Seals the open segment and ends the run (camera gone, new stream, shutdown).
    pub fn end_run(&mut self) -> Result<(), RecordError> {
        self.run = None;
        self.finish_open()
    }

    /// After an error: drops the open segment (its writer keeps what reached the disk, as
    /// a truncated segment) and ends the run.
    pub fn abandon(&mut self) {
        self.open = None;
        self.run = None;
    }
}
