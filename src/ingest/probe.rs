//! The stream probe behind `POST /api/cameras/probe`: connects to a camera exactly as the
//! recorder would (the same supervisor, clients, transports and explanations), watches
//! its stream for a few seconds and reports what it sends: codec, profile, size, frame
//! rate, bit rate, GOP length, whether it offers audio, the client and transport that
//! worked, and one decoded picture. A camera that fails says why in the words the tiles
//! use (`trouble`), and nothing answered within the limit is "no answer".

use super::pipeline::{DecodeSpec, Source};
use super::trouble::{Trouble, TroubleKind};
use super::{
    AccessUnit, CameraState, CameraStatus, CameraSupervisor, Frame, RtspClient, SupervisorConfig,
};
use crate::base::redact::CameraUrl;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Width of the probe's picture (height keeps the camera's aspect ratio).
const PICTURE_WIDTH_PX: u32 = 640;
/// Watch at least this long once video flows, for the rates.
const MIN_WATCH: Duration = Duration::from_secs(2);

/// What the camera sends, as seen by the recorder's own path.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ProbeReport {
    pub codec: &'static str,
    /// From the parser's caps, e.g. "high" or "main"; None when it did not say.
    pub profile: Option<String>,
    pub width: u32,
    pub height: u32,
    /// Pictures per second, from the presentation times.
    pub fps: f64,
    pub bitrate_kbps: f64,
    /// Pictures from one keyframe to the next; None when only one keyframe came in time.
    pub gop_frames: Option<u32>,
    /// Whether the camera's SDP offers an audio stream, as the client read it.
    pub audio: Option<bool>,
    /// The client and transport that worked, e.g. "native" and "udp".
    pub client: &'static str,
    pub transport: &'static str,
    /// How long the probe took.
    pub took_ms: u64,
    /// The newest decoded picture (RGB, `PICTURE_WIDTH_PX` wide).
    #[serde(skip)]
    pub picture: Option<Arc<Frame>>,
}

/// A camera that answered "busy" (503) is asked once more after this pause, when at
/// least `BUSY_RETRY_MIN_LEFT` of the limit remains: cameras answer 503 while their
/// encoder starts, and for a moment after a viewer leaves.
const BUSY_PAUSE: Duration = Duration::from_secs(1);
const BUSY_RETRY_MIN_LEFT: Duration = Duration::from_secs(4);

/// Probes `url` within `limit`.
pub fn probe(
    url: &CameraUrl,
    transport: super::Transport,
    client: RtspClient,
    limit: Duration,
) -> Result<ProbeReport, Trouble> {
    let started = Instant::now();
    let deadline = started + limit;
    let mut outcome = attempt(url, transport, client, deadline);
    if let Err(trouble) = &outcome
        && trouble.kind == TroubleKind::Busy
        && deadline.saturating_duration_since(Instant::now()) >= BUSY_RETRY_MIN_LEFT + BUSY_PAUSE
    {
        tracing::info!(camera = %url, "probe: the camera is busy (503); asking once more");
        std::thread::sleep(BUSY_PAUSE);
        outcome = attempt(url, transport, client, deadline);
    }
    let mut report = outcome?;
    report.took_ms = started.elapsed().as_millis() as u64;
    Ok(report)
}

/// One connection to the camera, watched until it has every figure or `deadline`.
fn attempt(
    url: &CameraUrl,
    transport: super::Transport,
    client: RtspClient,
    deadline: Instant,
) -> Result<ProbeReport, Trouble> {
    let limit = deadline.saturating_duration_since(Instant::now());
    let endpoint = url.endpoint().unwrap_or_else(|| "the camera".to_string());
    let mut config = SupervisorConfig::new("probe", Source::Rtsp(url.clone()));
    config.decode = Some(DecodeSpec {
        width: PICTURE_WIDTH_PX,
        height: 0,
        fps: 5,
    });
    config.transport = transport;
    config.rtsp_client = client;
    config.connect_timeout = limit;
    // One attempt (and auto's move to UDP): no retry within the probe.
    config.backoff_min = Duration::from_secs(3600);
    config.backoff_max = config.backoff_min;
    let spawned = CameraSupervisor::spawn(config);
    let (supervisor, mut outputs) = spawned.map_err(|e| Trouble {
        kind: TroubleKind::Other,
        message: format!("The probe could not start: {e}"),
        detail: e.to_string(),
    })?;
    let mut seen = Seen::default();
    let outcome = loop {
        while let Ok(unit) = outputs.units.try_recv() {
            seen.add(unit);
        }
        let status = supervisor.status().snapshot();
        if let Some(trouble) = &status.trouble
            && status.state != CameraState::Streaming
        {
            break Err(trouble.clone());
        }
        let picture = outputs.frames.borrow().clone();
        if seen.complete(picture.is_some()) || Instant::now() >= deadline {
            break seen.report(picture, &status).ok_or_else(|| {
                Trouble::from_reason(
                    &format!("no video within {} s of connecting", limit.as_secs()),
                    &endpoint,
                )
            });
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    supervisor.stop();
    outcome
}

/// Access units seen so far.
#[derive(Default)]
struct Seen {
    first: Option<AccessUnit>,
    last_pts_ns: u64,
    count: u64,
    bytes: u64,
    /// Unit numbers (0-based) of the keyframes.
    keyframes: Vec<u64>,
    flowing_since: Option<Instant>,
}

impl Seen {
    fn add(&mut self, unit: AccessUnit) {
        if unit.keyframe {
            self.keyframes.push(self.count);
        }
        self.count += 1;
        self.bytes += unit.data.size() as u64;
        self.last_pts_ns = self.last_pts_ns.max(unit.pts_ns);
        if self.first.is_none() {
            self.flowing_since = Some(Instant::now());
            self.first = Some(unit);
        }
    }

    /// Enough for every figure: a picture, two keyframes, and `MIN_WATCH` of video.
    fn complete(&self, have_picture: bool) -> bool {
        have_picture
            && self.keyframes.len() >= 2
            && self.flowing_since.is_some_and(|t| t.elapsed() >= MIN_WATCH)
    }

    /// The figures, or None when no video came at all.
    fn report(&self, picture: Option<Arc<Frame>>, status: &CameraStatus) -> Option<ProbeReport> {
        let first = self.first.as_ref()?;
        let span_s = (self.last_pts_ns.saturating_sub(first.pts_ns)) as f64 / 1e9;
        let per_s = |n: f64| if span_s > 0.0 { n / span_s } else { 0.0 };
        let path = status.path?;
        let structure = first.stream.caps.structure(0);
        Some(ProbeReport {
            codec: first.stream.codec.name(),
            profile: structure.and_then(|s| s.get::<String>("profile").ok()),
            width: first.stream.width,
            height: first.stream.height,
            fps: round_to(per_s(self.count.saturating_sub(1) as f64), 100.0),
            bitrate_kbps: round_to(per_s(self.bytes as f64 * 8.0 / 1000.0), 10.0),
            gop_frames: self
                .keyframes
                .windows(2)
                .next()
                .map(|w| (w[1] - w[0]) as u32),
            audio: status.audio_offered,
            client: path.client.as_str(),
            transport: path.transport.as_str(),
            took_ms: 0,
            picture,
        })
    }
}

fn round_to(value: f64, per_unit: f64) -> f64 {
    (value * per_unit).round() / per_unit
}
