//! One supervisor thread per camera: builds the pipeline, watches its bus, and tears it
//! down and reconnects on end-of-stream, an error, or a stall (no access unit for
//! `stall_timeout`). Retries back off exponentially while attempts fail without video
//! (1 s doubling to 30 s); a connection that delivered video resets the backoff, so a
//! dropped camera is retried after 1 s. While backing off, a cheap TCP probe every 0.5 s
//! ends the wait when the camera's port goes from closed to open, so a camera that was off
//! for minutes streams again within about a second of its return, while one that answers
//! with an error (wrong password, wrong path: its port stays open) keeps the full backoff.

use super::pipeline::{self, DecodeSpec, Outputs, Source};
use super::status::{Attempt, CameraState, StatusHandle};
use super::trouble::{Trouble, TroubleKind};
use super::{AccessUnit, Frame};
use crate::base::redact::Redactor;
use gstreamer as gst;
use gstreamer::prelude::*;
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, watch};

#[derive(Debug, Clone)]
pub struct SupervisorConfig {
    pub camera_id: String,
    pub source: Source,
    /// None: remux-only, no decoding.
    pub decode: Option<DecodeSpec>,
    /// No access unit for this long while streaming: restart the pipeline.
    pub stall_timeout: Duration,
    /// No first access unit within this long after starting: give up on the attempt.
    pub connect_timeout: Duration,
    pub backoff_min: Duration,
    pub backoff_max: Duration,
    /// Access units buffered between ingest and its consumer.
    pub channel_capacity: usize,
    /// The decode branch's decoder (`cameras[].decoder`).
    pub decoder: super::decoder::DecoderChoice,
    /// The live view's feed of this stream.
    pub live: Option<Arc<crate::media::feed::LiveFeed>>,
    /// Which client reads an RTSP source (`cameras[].rtsp_client`).
    pub rtsp_client: super::RtspClient,
    /// How RTP travels (`cameras[].transport`).
    pub transport: super::Transport,
}

impl SupervisorConfig {
    pub fn new(camera_id: &str, source: Source) -> Self {
        Self {
            camera_id: camera_id.to_string(),
            source,
            decode: None,
            stall_timeout: Duration::from_secs(10),
            connect_timeout: Duration::from_secs(15),
            backoff_min: Duration::from_secs(1),
            backoff_max: Duration::from_secs(30),
            channel_capacity: 512,
            decoder: super::decoder::DecoderChoice::Auto,
            live: None,
            rtsp_client: super::RtspClient::Auto,
            transport: super::Transport::Auto,
        }
    }
}

/// The receiving ends a supervisor delivers into.
pub struct IngestOutputs {
    pub units: mpsc::Receiver<AccessUnit>,
    pub frames: watch::Receiver<Option<Arc<Frame>>>,
}

#[derive(Default)]
struct StopFlag {
    stopped: Mutex<bool>,
    cond: Condvar,
}

impl StopFlag {
    fn set(&self) {
        *self.stopped.lock().unwrap_or_else(|p| p.into_inner()) = true;
        self.cond.notify_all();
    }
    fn is_set(&self) -> bool {
        *self.stopped.lock().unwrap_or_else(|p| p.into_inner())
    }
    /// Sleeps up to `d`; true if stop was requested.
    fn wait(&self, d: Duration) -> bool {
        let guard = self.stopped.lock().unwrap_or_else(|p| p.into_inner());
        let (guard, _) = self
            .cond
            .wait_timeout_while(guard, d, |stopped| !*stopped)
            .unwrap_or_else(|p| p.into_inner());
        *guard
    }
}

pub struct CameraSupervisor {
    status: StatusHandle,
    stop: Arc<StopFlag>,
    thread: Option<JoinHandle<()>>,
}

enum Outcome {
    Stopped,
    Failed { reason: String, streamed: Duration },
}

impl CameraSupervisor {
    /// Starts the supervisor thread for one camera.
    pub fn spawn(config: SupervisorConfig) -> anyhow::Result<(Self, IngestOutputs)> {
        super::init_gstreamer()?;
        let shown_url = match &config.source {
            Source::Rtsp(url) => url.redacted(),
            Source::Synthetic(s) => format!("synthetic:{}", s.codec.name()),
        };
        let status = StatusHandle::new(&config.camera_id, &shown_url);
        let (units_tx, units_rx) = mpsc::channel(config.channel_capacity.max(1));
        let (frames_tx, frames_rx) = watch::channel(None);
        let stop = Arc::new(StopFlag::default());
        let worker = Worker {
            force_software: Default::default(),
            force_gstreamer: Default::default(),
            config,
            status: status.clone(),
            stop: stop.clone(),
            units_tx,
            frames_tx,
        };
        let thread = std::thread::Builder::new()
            .name(format!("ingest-{}", worker.config.camera_id))
            .spawn(move || worker.run())?;
        Ok((
            Self {
                status,
                stop,
                thread: Some(thread),
            },
            IngestOutputs {
                units: units_rx,
                frames: frames_rx,
            },
        ))
    }

    pub fn status(&self) -> &StatusHandle {
        &self.status
    }

    /// Stops the pipeline (to NULL) and waits for the thread.
    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        self.stop.set();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for CameraSupervisor {
    fn drop(&mut self) {
        self.shutdown();
    }
}

struct Worker {
    config: SupervisorConfig,
    /// Set when a hardware decoder failed at run time: later attempts decode in software.
    force_software: std::sync::atomic::AtomicBool,
    /// Set when the native client could not set a camera's stream up under
    /// `rtsp_client: auto`: later attempts use rtspsrc.
    force_gstreamer: std::sync::atomic::AtomicBool,
    status: StatusHandle,
    stop: Arc<StopFlag>,
    units_tx: mpsc::Sender<AccessUnit>,
    frames_tx: watch::Sender<Option<Arc<Frame>>>,
}

impl Worker {
    fn run(self) {
        let _alive = self.status.heartbeat().end_guard();
        let id = self.config.camera_id.clone();
        let explain = Explainer::for_source(&self.config.source);
        let mut backoff = self.config.backoff_min;
        let mut session = 0u64;
        let mut last_logged: Option<String> = None;
        let mut failures_in_row = 0u32;
        let mut transport = self.config.transport.first();
        loop {
            session += 1;
            if session > 1 {
                self.status.counters().reconnects.fetch_add(1, Relaxed);
            }
            self.status.set_state(CameraState::Connecting);
            let attempt = self.attempt(transport);
            self.status.begin_attempt(attempt);
            match self.run_once(session, &explain, attempt) {
                Outcome::Stopped => break,
                Outcome::Failed { reason, streamed } => {
                    // The ended pipeline's buffers are free now: give the pages back.
                    crate::base::memory::release_free();
                    if streamed > Duration::ZERO {
                        backoff = self.config.backoff_min;
                        failures_in_row = 0;
                    }
                    failures_in_row += 1;
                    let trouble = Trouble::from_reason(&reason, explain.endpoint());
                    if let Some(next) = self.next_transport(transport, trouble.kind) {
                        transport = next;
                        if next == super::Transport::Udp {
                            // Not a failure to wait out: the camera said what it offers.
                            tracing::info!(camera = %id, "{reason}; trying RTP over UDP (transport: auto)");
                            continue;
                        }
                    }
                    self.status.set_trouble(Some(trouble));
                    self.status.set_state(CameraState::Backoff);
                    // One warning per new kind of failure, then only at 1, 2, 4, 8... in a
                    // row: a camera that stays down for a day logs a few dozen lines.
                    if last_logged.as_deref() != Some(reason.as_str())
                        || failures_in_row.is_power_of_two()
                    {
                        tracing::warn!(camera = %id, "{reason}; retrying in {} s (failure {failures_in_row} in a row)", backoff.as_secs());
                        last_logged = Some(reason);
                    } else {
                        tracing::debug!(camera = %id, "{reason}; retrying in {} s", backoff.as_secs());
                    }
                    if self.wait_backoff(backoff) {
                        break;
                    }
                    backoff = (backoff * 2).min(self.config.backoff_max);
                }
            }
        }
        self.status.set_state(CameraState::Stopped);
        tracing::info!(camera = %id, "ingest stopped");
    }

    /// The client and transport of the next attempt: the configured client resolved for
    /// the URL's scheme (rtspsrc after the native client failed to set the stream up),
    /// over `transport`.
    fn attempt(&self, transport: super::Transport) -> Attempt {
        let scheme = match &self.config.source {
            Source::Rtsp(url) => url.scheme(),
            Source::Synthetic(_) => "",
        };
        let client = match self.config.rtsp_client.for_scheme(scheme) {
            super::RtspClient::Native if self.force_gstreamer.load(Relaxed) => {
                super::RtspClient::Gstreamer
            }
            chosen => chosen,
        };
        Attempt { client, transport }
    }

    /// Under `transport: auto`, the transport after a failure of `kind` over `current`:
    /// UDP once the camera refused TCP, and TCP again when nothing came over UDP (a
    /// firewall that drops it). None: keep the transport.
    fn next_transport(
        &self,
        current: super::Transport,
        kind: TroubleKind,
    ) -> Option<super::Transport> {
        use super::Transport::{Auto, Tcp, Udp};
        match (self.config.transport, current, kind) {
            (Auto, Tcp, TroubleKind::UdpOnly) => Some(Udp),
            (Auto, Udp, TroubleKind::NoAnswer) => Some(Tcp),
            _ => None,
        }
    }

    /// Runs one pipeline until it fails or stop is requested.
    fn run_once(&self, session: u64, explain: &Explainer, attempt: Attempt) -> Outcome {
        let last_unit_ms = Arc::new(AtomicU64::new(0));
        let outputs = Outputs {
            units: self.units_tx.clone(),
            frames: Some(self.frames_tx.clone()),
            status: self.status.clone(),
            session,
            last_unit_ms: last_unit_ms.clone(),
            decoder: if self.force_software.load(Relaxed) {
                super::decoder::DecoderChoice::Software
            } else {
                self.config.decoder.clone()
            },
            live: self.config.live.clone(),
            rtsp_client: attempt.client,
            transport: attempt.transport,
        };
        let failed = |reason: String, streamed: Duration| Outcome::Failed { reason, streamed };
        let pipeline = match pipeline::build(&self.config.source, self.config.decode, outputs) {
            Ok(p) => p,
            Err(e) => return failed(e.to_string(), Duration::ZERO),
        };
        let Some(bus) = pipeline.bus() else {
            return failed("pipeline has no bus".into(), Duration::ZERO);
        };
        let started = Instant::now();
        let mut streaming_since: Option<Instant> = None;
        let mut next_tick = Instant::now();
        let outcome = 'watch: {
            if pipeline.set_state(gst::State::Playing).is_err() {
                // The reason is on the bus; read it below.
                if let Some(reason) = first_error(&bus, explain) {
                    break 'watch failed(reason, Duration::ZERO);
                }
                break 'watch failed("pipeline refused to start".into(), Duration::ZERO);
            }
            loop {
                self.status.beat();
                if self.stop.is_set() {
                    break 'watch Outcome::Stopped;
                }
                let streamed = streaming_since.map(|t| t.elapsed()).unwrap_or_default();
                if let Some(msg) = pop_or_wait(&bus, Duration::from_millis(200)) {
                    use gst::MessageView;
                    match msg.view() {
                        MessageView::Eos(_) => {
                            break 'watch failed("camera ended the stream".into(), streamed);
                        }
                        MessageView::Error(err) => {
                            let reason = explain.describe(err.error(), err.debug().as_deref());
                            let from_hw_decoder =
                                err.src().is_some_and(|s| s.name() == "decode-hw")
                                    || (reason.contains("not-negotiated")
                                        && pipeline.by_name("decode-hw").is_some());
                            if from_hw_decoder && !self.force_software.swap(true, Relaxed) {
                                tracing::warn!(camera = %self.config.camera_id, "the hardware decoder failed ({reason}); decoding in software from now on");
                            }
                            if super::native::cannot_set_up(err.src(), &err.error())
                                && self.config.rtsp_client == super::RtspClient::Auto
                                && !self.force_gstreamer.swap(true, Relaxed)
                            {
                                tracing::warn!(camera = %self.config.camera_id, "the native RTSP client cannot set this camera's stream up ({reason}); reading it with GStreamer's rtspsrc from now on");
                            }
                            break 'watch failed(reason, streamed);
                        }
                        MessageView::Warning(w) => {
                            tracing::debug!(camera = %self.config.camera_id, "{}", explain.describe(w.error(), w.debug().as_deref()));
                        }
                        _ => {}
                    }
                }
                let now = Instant::now();
                if now >= next_tick {
                    self.status.tick();
                    next_tick = now + Duration::from_secs(1);
                }
                let last = last_unit_ms.load(Relaxed);
                if last == 0 {
                    if started.elapsed() > self.config.connect_timeout {
                        break 'watch failed(
                            format!(
                                "no video within {} s of connecting",
                                self.config.connect_timeout.as_secs()
                            ),
                            streamed,
                        );
                    }
                    continue;
                }
                if streaming_since.is_none() {
                    streaming_since = Some(Instant::now());
                    self.status.set_state(CameraState::Streaming);
                    self.status.set_trouble(None);
                    tracing::info!(camera = %self.config.camera_id, "streaming (connection {session})");
                }
                let idle_ms = crate::base::clock::monotonic_ms().saturating_sub(last);
                if idle_ms > self.config.stall_timeout.as_millis() as u64 {
                    break 'watch failed(
                        format!("stalled: no video for {:.1} s", idle_ms as f64 / 1000.0),
                        streamed,
                    );
                }
            }
        };
        let _ = pipeline.set_state(gst::State::Null);
        outcome
    }

    /// Waits `delay`, or less when the camera's port goes from closed to open. True on stop.
    fn wait_backoff(&self, delay: Duration) -> bool {
        let deadline = Instant::now() + delay;
        let probe_target = match &self.config.source {
            Source::Rtsp(url) => url
                .host()
                .zip(url.port_or_default())
                .and_then(|(h, p)| (h, p).to_socket_addrs().ok())
                .and_then(|mut addrs| addrs.next()),
            _ => None,
        };
        // Only a closed → open transition ends the wait early: a camera that accepts TCP
        // and then fails (reset, wrong path) keeps the full backoff.
        let mut seen_closed = false;
        loop {
            self.status.beat();
            let now = Instant::now();
            if now >= deadline {
                return self.stop.is_set();
            }
            if let Some(addr) = probe_target {
                if !port_open(addr) {
                    seen_closed = true;
                } else if seen_closed {
                    return self.stop.is_set();
                }
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if self.stop.wait(left.min(Duration::from_millis(500))) {
                return true;
            }
        }
    }
}

fn port_open(addr: SocketAddr) -> bool {
    TcpStream::connect_timeout(&addr, Duration::from_millis(500)).is_ok()
}

/// The bus's next message within `wait`. A bus whose poll could not be created (no
/// descriptors left: EMFILE) answers at once with nothing and a GStreamer critical; then
/// this still waits out `wait`, so a starved pipeline never spins the loop.
fn pop_or_wait(bus: &gst::Bus, wait: Duration) -> Option<gst::Message> {
    let asked = Instant::now();
    let msg = bus.timed_pop(gst::ClockTime::from_nseconds(wait.as_nanos() as u64));
    if msg.is_none() {
        std::thread::sleep(wait.saturating_sub(asked.elapsed()));
    }
    msg
}

fn first_error(bus: &gst::Bus, explain: &Explainer) -> Option<String> {
    let msg = bus.timed_pop_filtered(
        gst::ClockTime::from_mseconds(500),
        &[gst::MessageType::Error],
    )?;
    match msg.view() {
        gst::MessageView::Error(err) => Some(explain.describe(err.error(), err.debug().as_deref())),
        _ => None,
    }
}

/// "Unauthorized (401)" style text: the error's message plus the last line of its debug
/// detail (which says what the server answered), scrubbed of secrets.
/// Turns GStreamer's errors into sentences an installer can act on, naming the camera's
/// host and port, with every secret scrubbed.
#[derive(Default)]
struct Explainer {
    redactor: Redactor,
    /// "host:port" of the camera, for RTSP sources.
    endpoint: Option<String>,
    user: Option<String>,
}

impl Explainer {
    fn for_source(source: &Source) -> Self {
        match source {
            Source::Rtsp(url) => Self {
                redactor: url.redactor(),
                endpoint: url.endpoint(),
                user: url.username().map(str::to_string),
            },
            Source::Synthetic(_) => Self::default(),
        }
    }

    /// "host:port" of the camera, or "the camera" when it has none.
    fn endpoint(&self) -> &str {
        self.endpoint.as_deref().unwrap_or("the camera")
    }

    fn describe(&self, error: gst::glib::Error, debug: Option<&str>) -> String {
        let mut text = error.message().trim().to_string();
        if let Some(detail) = debug.and_then(|d| d.lines().map(str::trim).rfind(|l| !l.is_empty()))
        {
            let detail = detail
                .rsplit_once("):")
                .map(|(_, rest)| rest.trim())
                .unwrap_or(detail);
            // A detail that is only the element's path (/GstPipeline:…) says nothing.
            let only_path = detail.starts_with("/Gst");
            if !detail.is_empty() && !only_path && !text.contains(detail) {
                text = format!("{text}: {detail}");
            }
        }
        let at = self.endpoint();
        let user = self
            .user
            .as_deref()
            .map(|u| format!(" for user \"{u}\""))
            .unwrap_or_default();
        let plain = if text.contains("(401)") || error.matches(gst::ResourceError::NotAuthorized) {
            format!(
                "camera at {at} refused the credentials{user} (401 Unauthorized); check the user and password in its URL"
            )
        } else if text.contains("No supported stream was found") || text.contains("(461)") {
            format!(
                "camera at {at} offers only UDP: it refused RTP over TCP ({text}); set transport: udp or auto"
            )
        } else if text.contains("(404)") {
            format!(
                "camera at {at} has no stream at that path (404 Not Found); check the URL's path"
            )
        } else if text.contains("Failed to connect") {
            format!(
                "cannot connect to {at}: connection refused, host unreachable or name not found ({text})"
            )
        } else if text.contains("an answer from the camera") {
            format!("camera at {at} did not answer in time ({text})")
        } else if text.contains("Could not read") || text.contains("Could not receive") {
            format!("connection to {at} lost ({text})")
        } else {
            text
        };
        self.redactor.scrub(&plain)
    }
}
