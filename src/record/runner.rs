//! One recording thread per camera: consumes the camera's access units and, in events
//! mode, keeps its ring and runs its `Recorder` on triggers (detection events, the manual
//! trigger); in continuous mode, its `Segmenter` records everything and triggers change
//! nothing (events are marked over the segments by the detector's rows). It has its own
//! single-threaded runtime so muxing and fsyncs never stall the rest of the program.
//! A clip or segment whose camera stops sending is finished after 3 s; when ingest stops
//! (the units channel closes) the open one is finished before the thread ends. The loop
//! beats its `Heartbeat` at least once a second, so health sees a recorder that died or
//! hangs.

use super::recorder::{FinishedClip, RecordError, RecordSettings, Recorder};
use super::segmenter::Segmenter;
use crate::base::heartbeat::Heartbeat;
use crate::ingest::{AccessUnit, Frame};
use crate::store::Store;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, watch};

/// How long without video before an open clip is finished.
const CAMERA_GONE: Duration = Duration::from_secs(3);

#[derive(Debug, Clone, Default)]
pub struct RecorderStatus {
    pub recording: bool,
    pub clips: u64,
    pub ring_bytes: usize,
    pub ring_span_s: f64,
    pub last_error: Option<String>,
}

/// Reads one recorder's status from anywhere.
#[derive(Clone)]
pub struct RecorderStatusHandle(Arc<Mutex<RecorderStatus>>);

impl RecorderStatusHandle {
    pub fn get(&self) -> RecorderStatus {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

struct Trigger {
    label: String,
    at_wall_ms: Option<i64>,
}

/// Triggers one camera's recorder from another thread.
#[derive(Clone)]
pub struct TriggerHandle(mpsc::UnboundedSender<Trigger>);

impl TriggerHandle {
    /// A handle connected to no recorder: its triggers go nowhere (benchmarks).
    pub fn unconnected() -> Self {
        Self(mpsc::unbounded_channel().0)
    }

    pub fn trigger_at(&self, label: &str, at_wall_ms: Option<i64>) {
        let _ = self.0.send(Trigger {
            label: label.to_string(),
            at_wall_ms,
        });
    }
}

pub struct RecorderRunner {
    triggers: mpsc::UnboundedSender<Trigger>,
    status: Arc<Mutex<RecorderStatus>>,
    heartbeat: Heartbeat,
    thread: Option<JoinHandle<()>>,
}

impl RecorderRunner {
    pub fn spawn(
        camera_id: &str,
        settings: RecordSettings,
        store: Store,
        units: mpsc::Receiver<AccessUnit>,
        frames: watch::Receiver<Option<Arc<Frame>>>,
    ) -> anyhow::Result<Self> {
        let (triggers, trigger_rx) = mpsc::unbounded_channel::<Trigger>();
        let status = Arc::new(Mutex::new(RecorderStatus::default()));
        let heartbeat = Heartbeat::default();
        let recording = match settings.segment_ns {
            Some(segment_ns) => Recording::Continuous(Segmenter::new(
                camera_id,
                segment_ns,
                settings.fragment_ms,
                store,
                crate::base::clock::system(),
            )),
            None => Recording::Events(Recorder::new(
                camera_id,
                settings,
                store,
                crate::base::clock::system(),
            )),
        };
        let thread_loop = RecordLoop {
            id: camera_id.to_string(),
            recorder: recording,
            frames,
            status: status.clone(),
            beat: heartbeat.clone(),
            last_unit: Instant::now(),
        };
        let thread = std::thread::Builder::new()
            .name(format!("record-{camera_id}"))
            .spawn(move || thread_loop.run(units, trigger_rx))?;
        Ok(Self {
            triggers,
            status,
            heartbeat,
            thread: Some(thread),
        })
    }

    /// Starts or extends a recording, labelled `label`, from now.
    pub fn trigger(&self, label: &str) {
        self.trigger_at(label, None);
    }

    /// Starts or extends a recording for something seen at wall-clock `at_wall_ms` (the
    /// pre-roll counts back from then, the post-roll on from then).
    pub fn trigger_at(&self, label: &str, at_wall_ms: Option<i64>) {
        self.trigger_handle().trigger_at(label, at_wall_ms);
    }

    /// A handle that can only trigger (for the detector).
    pub fn trigger_handle(&self) -> TriggerHandle {
        TriggerHandle(self.triggers.clone())
    }

    pub fn heartbeat(&self) -> &Heartbeat {
        &self.heartbeat
    }

    pub fn status(&self) -> RecorderStatus {
        self.status_handle().get()
    }

    /// A reader of this recorder's status that outlives the runner's owner.
    pub fn status_handle(&self) -> RecorderStatusHandle {
        RecorderStatusHandle(self.status.clone())
    }

    /// Waits for the thread; call after ingest stopped (which closes the units channel).
    pub fn join(mut self) {
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// What a camera's recording thread runs, by its record mode.
enum Recording {
    Events(Recorder),
    Continuous(Segmenter),
}

impl Recording {
    fn on_unit(&mut self, unit: AccessUnit) -> Result<(), RecordError> {
        match self {
            Self::Events(r) => r.on_unit(unit),
            Self::Continuous(s) => s.on_unit(unit),
        }
    }

    fn is_recording(&self) -> bool {
        match self {
            Self::Events(r) => r.is_recording(),
            Self::Continuous(s) => s.is_recording(),
        }
    }

    /// Finishes the open clip, or seals the open segment and ends the run.
    fn finish_active(&mut self) -> Result<(), RecordError> {
        match self {
            Self::Events(r) => r.finish_active(),
            Self::Continuous(s) => s.end_run(),
        }
    }

    fn abandon_active(&mut self) {
        match self {
            Self::Events(r) => r.abandon_active(),
            Self::Continuous(s) => s.abandon(),
        }
    }

    fn take_finished(&mut self) -> Vec<FinishedClip> {
        match self {
            Self::Events(r) => std::mem::take(&mut r.finished),
            Self::Continuous(s) => std::mem::take(&mut s.finished),
        }
    }

    /// (bytes, seconds) of the pre-roll ring; continuous recording keeps none.
    fn ring(&self) -> (usize, f64) {
        match self {
            Self::Events(r) => (r.ring().bytes(), r.ring().span_s()),
            Self::Continuous(_) => (0, 0.0),
        }
    }
}

/// The recording thread: one recorder fed by the units channel, the triggers and a 1 s
/// tick, on its own single-threaded runtime.
struct RecordLoop {
    id: String,
    recorder: Recording,
    frames: watch::Receiver<Option<Arc<Frame>>>,
    status: Arc<Mutex<RecorderStatus>>,
    beat: Heartbeat,
    last_unit: Instant,
}

impl RecordLoop {
    fn run(
        mut self,
        mut units: mpsc::Receiver<AccessUnit>,
        mut triggers: mpsc::UnboundedReceiver<Trigger>,
    ) {
        let _alive = self.beat.end_guard();
        let Ok(rt) = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
        else {
            tracing::error!(camera = %self.id, "cannot start the recorder's runtime");
            return;
        };
        rt.block_on(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            loop {
                self.beat.beat();
                #[cfg(feature = "test-faults")]
                crate::faults::recorder_hook(&self.id);
                let result = tokio::select! {
                    unit = units.recv() => match unit {
                        Some(u) => {
                            self.last_unit = Instant::now();
                            self.recorder.on_unit(u)
                        }
                        None => break,
                    },
                    Some(t) = triggers.recv() => self.on_trigger(t),
                    _ = tick.tick() => self.on_tick(),
                };
                let err = self.handle(result);
                self.report(err);
            }
            // Ingest stopped: finish the open clip.
            let finished = self.recorder.finish_active();
            self.report(finished.err().map(|e| e.to_string()));
        });
    }

    fn on_trigger(&mut self, t: Trigger) -> Result<(), RecordError> {
        let Recording::Events(recorder) = &mut self.recorder else {
            return Ok(()); // continuous: already recording
        };
        let frame = self.frames.borrow().clone();
        let at = t.at_wall_ms.and_then(|ms| recorder.pts_at_wall_ms(ms));
        recorder.trigger(&t.label, at, frame.as_deref())
    }

    /// Finishes a clip whose camera went silent.
    fn on_tick(&mut self) -> Result<(), RecordError> {
        if !self.recorder.is_recording() || self.last_unit.elapsed() <= CAMERA_GONE {
            return Ok(());
        }
        tracing::warn!(camera = %self.id, "no video for {} s: finishing the open recording", CAMERA_GONE.as_secs());
        self.recorder.finish_active()
    }

    /// Logs a failed step; returns the error to show in the status.
    fn handle(&mut self, result: Result<(), RecordError>) -> Option<String> {
        match result {
            Ok(()) => None,
            Err(RecordError::NoVideo) => {
                tracing::warn!(camera = %self.id, "trigger ignored: no video from this camera yet");
                None
            }
            Err(e) => {
                tracing::error!(camera = %self.id, "recording: {e}");
                // Keep what was written (recovered as truncated) and start afresh.
                self.recorder.abandon_active();
                Some(e.to_string())
            }
        }
    }

    fn report(&mut self, err: Option<String>) {
        let mut st = self.status.lock().unwrap_or_else(|p| p.into_inner());
        st.clips += self.recorder.take_finished().len() as u64;
        st.recording = self.recorder.is_recording();
        (st.ring_bytes, st.ring_span_s) = self.recorder.ring();
        if err.is_some() {
            st.last_error = err;
        }
    }
}
