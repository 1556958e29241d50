//! One camera stream's live fMP4 feed, shared by all its viewers.
//!
//! Ingest pushes every access unit here from its streaming thread; pushing never blocks
//! (a short lock, a non-blocking broadcast). The feed keeps the units since the latest
//! keyframe, so a new viewer starts at once with that keyframe, and builds each picture's
//! fragment once, only while someone watches. A picture is held until the next one
//! arrives, which gives its exact duration: the browser then sees no gaps, which it would
//! treat as a discontinuity and skip to the next keyframe. Each fragment carries its
//! stream's init segment and its arrival time, so a viewer can (re)start anywhere and
//! drop its backlog when it falls behind.

use crate::media::fmp4::{self, LiveInit, Timing};
use crate::media::{AccessUnit, StreamInfo};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Instant;
use tokio::sync::broadcast;

/// Fragments a viewer may trail the newest by before it lags (at 15 fps, 4 s).
const CHANNEL_FRAGMENTS: usize = 64;
/// Latency samples kept for the median and p99.
const LATENCY_SAMPLES: usize = 2048;

/// One picture, ready to send.
#[derive(Debug)]
pub struct LiveFragment {
    /// Shared by every viewer's send, never copied.
    pub bytes: bytes::Bytes,
    pub keyframe: bool,
    /// The init segment this fragment belongs to.
    pub init: Arc<LiveInit>,
    /// When ingest delivered the picture.
    pub arrived: Instant,
}

/// A picture whose duration is known: it can become a fragment.
struct Timed {
    unit: AccessUnit,
    arrived: Instant,
    sequence: u32,
    timing: Timing,
    init: Arc<LiveInit>,
    fragment: OnceLock<Option<Arc<LiveFragment>>>,
}

impl Timed {
    fn fragment(&self) -> Option<Arc<LiveFragment>> {
        self.fragment
            .get_or_init(|| {
                fmp4::fragment(self.sequence, &self.unit, self.timing).map(|bytes| {
                    Arc::new(LiveFragment {
                        bytes: bytes.into(),
                        keyframe: self.unit.keyframe,
                        init: self.init.clone(),
                        arrived: self.arrived,
                    })
                })
            })
            .clone()
    }
}

/// The stream the feed is in: its init segment and the decode time it started at.
struct Epoch {
    stream: Arc<StreamInfo>,
    init: Arc<LiveInit>,
    base_dts_ns: u64,
    sequence: u32,
}

#[derive(Default)]
struct FeedState {
    epoch: Option<Epoch>,
    /// Pictures since the latest keyframe (that keyframe first).
    gop: Vec<Arc<Timed>>,
    /// The newest picture, waiting for the next to know its duration.
    pending: Option<(AccessUnit, Instant)>,
}

pub struct LiveFeed {
    state: Mutex<FeedState>,
    tx: broadcast::Sender<Arc<LiveFragment>>,
    latency_us: Mutex<LatencyRing>,
    /// True once the camera stopped: its viewers end (and their players reconnect to
    /// whatever runs under that id now).
    closed: tokio::sync::watch::Sender<bool>,
}

/// What a new viewer gets: the current GOP's fragments, then the live channel.
pub struct Subscription {
    pub backlog: Vec<Arc<LiveFragment>>,
    pub live: broadcast::Receiver<Arc<LiveFragment>>,
}

impl std::fmt::Debug for LiveFeed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LiveFeed")
            .field("viewers", &self.viewers())
            .finish()
    }
}

impl Default for LiveFeed {
    fn default() -> Self {
        Self {
            state: Mutex::default(),
            tx: broadcast::channel(CHANNEL_FRAGMENTS).0,
            latency_us: Mutex::default(),
            closed: tokio::sync::watch::Sender::new(false),
        }
    }
}

impl LiveFeed {
    fn lock(&self) -> std::sync::MutexGuard<'_, FeedState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Takes one access unit from ingest (any thread; never blocks).
    pub fn push(&self, unit: &AccessUnit) {
        let arrived = Instant::now();
        let mut st = self.lock();
        let same_stream = st
            .epoch
            .as_ref()
            .is_some_and(|e| Arc::ptr_eq(&e.stream, &unit.stream));
        if !same_stream && !self.start_epoch(&mut st, unit) {
            return;
        }
        if let Some((prev, prev_arrived)) = st.pending.take() {
            let timed = self.time(&mut st, prev, prev_arrived, unit);
            self.publish(&mut st, timed);
        }
        st.pending = Some((unit.clone(), arrived));
    }

    /// A new stream (the first, a reconnect or a caps change) starts at a keyframe
    /// whose parameter sets configure its init segment. False: wait for one.
    fn start_epoch(&self, st: &mut FeedState, unit: &AccessUnit) -> bool {
        st.pending = None;
        st.gop.clear();
        st.epoch = None;
        if !unit.keyframe {
            return false;
        }
        let Ok(map) = unit.data.map_readable() else {
            return false;
        };
        let Some(init) = fmp4::init_segment(&unit.stream, &map) else {
            return false;
        };
        st.epoch = Some(Epoch {
            stream: unit.stream.clone(),
            init: Arc::new(init),
            base_dts_ns: unit.decode_ns(),
            sequence: 0,
        });
        true
    }

    /// `unit` with its timing: its duration runs to `next`'s decode time.
    fn time(
        &self,
        st: &mut FeedState,
        unit: AccessUnit,
        arrived: Instant,
        next: &AccessUnit,
    ) -> Option<Arc<Timed>> {
        let epoch = st.epoch.as_mut()?;
        let dts_ns = unit.decode_ns();
        let dts_ticks = fmp4::ticks(dts_ns.saturating_sub(epoch.base_dts_ns));
        let next_ticks = fmp4::ticks(next.decode_ns().saturating_sub(epoch.base_dts_ns));
        let duration_ticks = next_ticks.saturating_sub(dts_ticks) as u32;
        epoch.sequence = epoch.sequence.wrapping_add(1);
        let cto_ticks = fmp4::ticks(unit.pts_ns).saturating_sub(fmp4::ticks(dts_ns)) as u32;
        Some(Arc::new(Timed {
            sequence: epoch.sequence,
            init: epoch.init.clone(),
            timing: Timing {
                dts_ticks,
                duration_ticks,
                cto_ticks,
            },
            unit,
            arrived,
            fragment: OnceLock::new(),
        }))
    }

    fn publish(&self, st: &mut FeedState, timed: Option<Arc<Timed>>) {
        let Some(timed) = timed else { return };
        if timed.unit.keyframe {
            st.gop.clear();
        }
        st.gop.push(timed.clone());
        if self.tx.receiver_count() > 0
            && let Some(fragment) = timed.fragment()
        {
            let _ = self.tx.send(fragment);
        }
    }

    /// Joins the feed: the fragments since the latest keyframe, then every new one.
    pub fn subscribe(&self) -> Subscription {
        let (gop, live) = {
            let st = self.lock();
            (st.gop.clone(), self.tx.subscribe())
        };
        Subscription {
            backlog: gop.iter().filter_map(|t| t.fragment()).collect(),
            live,
        }
    }

    /// The camera stopped: ends every viewer of this feed.
    pub fn close(&self) {
        self.closed.send_replace(true);
    }

    /// Resolves once the feed is closed.
    pub async fn closed(&self) {
        let mut rx = self.closed.subscribe();
        let _ = rx.wait_for(|closed| *closed).await;
    }

    /// How many viewers watch.
    pub fn viewers(&self) -> usize {
        self.tx.receiver_count()
    }

    /// Records that a fragment that arrived at `arrived` was just written to a viewer.
    pub fn record_latency(&self, arrived: Instant) {
        let us = arrived.elapsed().as_micros().min(u32::MAX as u128) as u32;
        self.latency_us
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(us);
    }

    /// (median, p99) of the recent arrival-to-socket latencies, in milliseconds.
    pub fn latency_ms(&self) -> Option<(f64, f64)> {
        let ring = self.latency_us.lock().unwrap_or_else(|p| p.into_inner());
        ring.quantiles()
    }
}

#[derive(Default)]
struct LatencyRing {
    samples_us: Vec<u32>,
    next: usize,
}

impl LatencyRing {
    fn push(&mut self, us: u32) {
        if self.samples_us.len() < LATENCY_SAMPLES {
            self.samples_us.push(us);
        } else {
            self.samples_us[self.next] = us;
        }
        self.next = (self.next + 1) % LATENCY_SAMPLES;
    }

    fn quantiles(&self) -> Option<(f64, f64)> {
        if self.samples_us.is_empty() {
            return None;
        }
        let mut sorted = self.samples_us.clone();
        sorted.sort_unstable();
        let at = |q: f64| sorted[((sorted.len() - 1) as f64 * q).round() as usize] as f64 / 1000.0;
        Some((at(0.5), at(0.99)))
    }
}
