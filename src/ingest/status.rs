//! Per-camera ingest status: the state of the connection, counters the appsink callbacks
//! bump without locking, and rates computed once a second by the supervisor. Everything in
//! here is safe to show: the URL is redacted and errors are scrubbed before they are stored.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CameraState {
    /// A pipeline is starting and no access unit has arrived yet.
    Connecting,
    /// Access units are arriving.
    Streaming,
    /// The last attempt failed; waiting before the next one.
    Backoff,
    /// The supervisor has stopped (shutdown).
    Stopped,
}

impl CameraState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Connecting => "connecting",
            Self::Streaming => "streaming",
            Self::Backoff => "backoff",
            Self::Stopped => "stopped",
        }
    }
}

/// The client and transport one connection attempt uses (never `auto`); shown as
/// "native/tcp" in the status line and `/api/cameras`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Attempt {
    pub client: super::RtspClient,
    pub transport: super::Transport,
}

impl std::fmt::Display for Attempt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.client.as_str(), self.transport.as_str())
    }
}

impl serde::Serialize for Attempt {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// A point-in-time copy of a camera's status.
#[derive(Debug, Clone)]
pub struct CameraStatus {
    pub id: String,
    /// Redacted URL.
    pub url: String,
    pub state: CameraState,
    /// How long the camera has been in `state`.
    pub in_state_for: Duration,
    /// Access units per second over the last second.
    pub fps: f64,
    pub kbit_s: f64,
    /// Decoded frames per second delivered to detection.
    pub decoded_fps: f64,
    pub frames: u64,
    pub bytes: u64,
    pub decoded_frames: u64,
    /// Access units dropped because the consumer was not keeping up.
    pub dropped_units: u64,
    /// Access units whose parameter sets, repeated between slices, were moved in front.
    pub repaired_units: u64,
    /// Completed reconnect attempts after a failure (not counting the first connection).
    pub reconnects: u64,
    pub last_error: Option<String>,
    /// The last failure sorted and worded for people (None while streaming).
    pub trouble: Option<super::trouble::Trouble>,
    /// The client and transport of the current or last attempt.
    pub path: Option<Attempt>,
    /// Whether the camera's SDP offers audio (sentrix records video only); None until
    /// this attempt's SDP was read.
    pub audio_offered: Option<bool>,
    /// The codec and size of the current stream, e.g. "h264 1920x1080".
    pub stream: Option<String>,
    /// The decode branch's decoder element, e.g. "v4l2h264dec" or "avdec_h264 (fallback)".
    pub decoder: Option<String>,
}

#[derive(Default)]
struct Rates {
    at: Option<Instant>,
    frames: u64,
    bytes: u64,
    decoded: u64,
    fps: f64,
    kbit_s: f64,
    decoded_fps: f64,
}

struct Mutable {
    state: CameraState,
    since: Instant,
    trouble: Option<super::trouble::Trouble>,
    path: Option<Attempt>,
    audio_offered: Option<bool>,
    stream: Option<String>,
    decoder: Option<String>,
    rates: Rates,
}

pub struct StatusInner {
    id: String,
    url: String,
    pub(crate) frames: AtomicU64,
    pub(crate) bytes: AtomicU64,
    pub(crate) decoded_frames: AtomicU64,
    pub(crate) dropped_units: AtomicU64,
    pub(crate) repaired_units: AtomicU64,
    pub(crate) reconnects: AtomicU64,
    /// Beaten by the supervisor loop at every turn; health judges it.
    heartbeat: crate::base::heartbeat::Heartbeat,
    mutable: Mutex<Mutable>,
}

/// Shared, cheap to clone; the supervisor writes, anyone reads.
#[derive(Clone)]
pub struct StatusHandle(Arc<StatusInner>);

impl StatusHandle {
    pub fn new(id: &str, redacted_url: &str) -> Self {
        Self(Arc::new(StatusInner {
            id: id.to_string(),
            url: redacted_url.to_string(),
            frames: AtomicU64::new(0),
            bytes: AtomicU64::new(0),
            decoded_frames: AtomicU64::new(0),
            dropped_units: AtomicU64::new(0),
            repaired_units: AtomicU64::new(0),
            reconnects: AtomicU64::new(0),
            heartbeat: crate::base::heartbeat::Heartbeat::default(),
            mutable: Mutex::new(Mutable {
                state: CameraState::Connecting,
                since: Instant::now(),
                trouble: None,
                path: None,
                audio_offered: None,
                stream: None,
                decoder: None,
                rates: Rates::default(),
            }),
        }))
    }

    pub(crate) fn counters(&self) -> &StatusInner {
        &self.0
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Mutable> {
        // A panic while holding this lock cannot leave it inconsistent (plain fields).
        self.0.mutable.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The supervisor loop is alive: call at least every few seconds.
    pub(crate) fn beat(&self) {
        self.0.heartbeat.beat();
    }

    /// The supervisor thread's heartbeat, for health.
    pub fn heartbeat(&self) -> &crate::base::heartbeat::Heartbeat {
        &self.0.heartbeat
    }

    pub fn id(&self) -> &str {
        &self.0.id
    }

    pub fn state(&self) -> CameraState {
        self.lock().state
    }

    pub(crate) fn set_state(&self, state: CameraState) {
        let mut m = self.lock();
        if m.state != state {
            m.state = state;
            m.since = Instant::now();
        }
    }

    /// `trouble` must already be scrubbed of secrets.
    pub(crate) fn set_trouble(&self, trouble: Option<super::trouble::Trouble>) {
        self.lock().trouble = trouble;
    }

    /// A connection attempt starts with this client and transport: what its SDP offers
    /// is not known yet.
    pub(crate) fn begin_attempt(&self, attempt: Attempt) {
        let mut m = self.lock();
        m.path = Some(attempt);
        m.audio_offered = None;
    }

    /// The camera's SDP offers a stream of `media` ("video", "audio", "application"…).
    pub(crate) fn note_offered_stream(&self, media: &str) {
        let mut m = self.lock();
        m.audio_offered = Some(m.audio_offered == Some(true) || media == "audio");
    }

    /// The last failure, worded (None while streaming); cheaper than `snapshot`.
    pub fn trouble(&self) -> Option<super::trouble::Trouble> {
        self.lock().trouble.clone()
    }

    pub(crate) fn set_decoder(&self, decoder: Option<String>) {
        self.lock().decoder = decoder;
    }

    pub(crate) fn set_stream(&self, stream: Option<String>) {
        self.lock().stream = stream;
    }

    /// Recomputes the per-second rates; called about once a second.
    pub(crate) fn tick(&self) {
        let now = Instant::now();
        let frames = self.0.frames.load(Relaxed);
        let bytes = self.0.bytes.load(Relaxed);
        let decoded = self.0.decoded_frames.load(Relaxed);
        let mut m = self.lock();
        let r = &mut m.rates;
        if let Some(at) = r.at {
            let dt_s = now.duration_since(at).as_secs_f64().max(1e-3);
            r.fps = (frames - r.frames) as f64 / dt_s;
            r.kbit_s = (bytes - r.bytes) as f64 * 8.0 / 1000.0 / dt_s;
            r.decoded_fps = (decoded - r.decoded) as f64 / dt_s;
        }
        r.at = Some(now);
        r.frames = frames;
        r.bytes = bytes;
        r.decoded = decoded;
    }

    pub fn snapshot(&self) -> CameraStatus {
        let m = self.lock();
        let streaming = m.state == CameraState::Streaming;
        CameraStatus {
            id: self.0.id.clone(),
            url: self.0.url.clone(),
            state: m.state,
            in_state_for: m.since.elapsed(),
            fps: if streaming { m.rates.fps } else { 0.0 },
            kbit_s: if streaming { m.rates.kbit_s } else { 0.0 },
            decoded_fps: if streaming { m.rates.decoded_fps } else { 0.0 },
            frames: self.0.frames.load(Relaxed),
            bytes: self.0.bytes.load(Relaxed),
            decoded_frames: self.0.decoded_frames.load(Relaxed),
            dropped_units: self.0.dropped_units.load(Relaxed),
            repaired_units: self.0.repaired_units.load(Relaxed),
            reconnects: self.0.reconnects.load(Relaxed),
            last_error: m.trouble.as_ref().map(|t| t.detail.clone()),
            trouble: m.trouble.clone(),
            path: m.path,
            audio_offered: m.audio_offered,
            stream: m.stream.clone(),
            decoder: m.decoder.clone(),
        }
    }
}

impl CameraStatus {
    /// One log line: `front: streaming 15.0 fps 3950 kbit/s h264 1920x1080 frames=900 reconnects=0`.
    pub fn summary(&self) -> String {
        let mut s = format!(
            "{}: {} {:.1} fps {:.0} kbit/s",
            self.id,
            self.state.as_str(),
            self.fps,
            self.kbit_s
        );
        if let Some(stream) = &self.stream {
            s.push(' ');
            s.push_str(stream);
        }
        s.push_str(&format!(
            " frames={} decoded={} dropped={} reconnects={}",
            self.frames, self.decoded_frames, self.dropped_units, self.reconnects
        ));
        if let Some(path) = &self.path {
            s.push_str(&format!(" via={path}"));
        }
        if self.repaired_units > 0 {
            s.push_str(&format!(" repaired={}", self.repaired_units));
        }
        if let Some(e) = &self.last_error
            && self.state != CameraState::Streaming
        {
            s.push_str(&format!(" last_error=\"{e}\""));
        }
        s
    }
}
