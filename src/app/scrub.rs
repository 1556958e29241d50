//! The background integrity scrub: every sealed clip, segment, thumbnail and snapshot is
//! authenticated whole once per `storage.scrub_days`, so a flipped bit on an SD card is
//! found (and the clip salvaged) long before anyone needs the footage.
//!
//! One thread at idle CPU and I/O priority, reading at most `storage.scrub_rate_mb_s`
//! (store/scrub.rs does the reading and the salvage). It takes the least recently
//! scrubbed clip that is due, so after a restart it resumes where it stopped. A damaged
//! file becomes a `damaged` event on its clip's camera at the clip's time, announced on
//! the event bus like any other, so notifications reach the owner. When nothing is due it
//! looks again every `IDLE_CHECK`. `sentrix scrub --now` runs one full pass in the
//! foreground (cmds/scrub.rs).

use crate::base::clock::ClockRef;
use crate::config::Config;
use crate::detect::runner::{EventBus, EventNotice};
use crate::store::scrub::{ClipScrub, DAMAGED_LABEL, DamagedFile, ReadBudget};
use crate::store::{Store, StoreError};
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

/// How often an idle scrub looks for newly due files.
const IDLE_CHECK: Duration = Duration::from_secs(60);
/// How long the thread waits after a store error before trying again.
const ERROR_BACKOFF: Duration = Duration::from_secs(300);

/// What one pass found.
#[derive(Debug, Default, Clone)]
pub struct PassReport {
    pub clips: u64,
    pub files: u64,
    pub bytes: u64,
    pub damaged: Vec<DamagedFile>,
    pub took: Duration,
}

impl PassReport {
    pub fn mb_per_s(&self) -> f64 {
        self.bytes as f64 / 1e6 / self.took.as_secs_f64().max(1e-9)
    }
}

pub struct Scrubber {
    store: Store,
    /// A file is due when it was last authenticated more than this long ago.
    period_ms: i64,
    rate_bytes_per_s: u64,
    clock: ClockRef,
    bus: Option<EventBus>,
}

impl Scrubber {
    /// The scrub `config` asks for, or None when `storage.scrub_days` is 0.
    pub fn from_config(
        config: &Config,
        store: &Store,
        clock: ClockRef,
        bus: Option<EventBus>,
    ) -> Option<Self> {
        let s = &config.storage;
        (s.scrub_days > 0.0).then(|| Self {
            store: store.clone(),
            period_ms: (s.scrub_days * 86_400_000.0) as i64,
            rate_bytes_per_s: (s.scrub_rate_mb_s * 1e6) as u64,
            clock,
            bus,
        })
    }

    /// A scrub with its own period and rate (the tests, `scrub --now`).
    pub fn new(store: &Store, period_ms: i64, rate_bytes_per_s: u64, clock: ClockRef) -> Self {
        Self {
            store: store.clone(),
            period_ms,
            rate_bytes_per_s,
            clock,
            bus: None,
        }
    }

    /// Scrubs every due clip, until none is left or `stop` is cancelled. With `all`, every
    /// clip is due (not only those scrubbed more than a period ago).
    pub fn pass(&self, all: bool, stop: &CancellationToken) -> Result<PassReport, StoreError> {
        let started = Instant::now();
        let pass_start_ms = self.clock.wall_ms();
        let due_ms = match all {
            true => pass_start_ms - 1,
            false => pass_start_ms - self.period_ms,
        };
        let mut budget = ReadBudget::new(self.rate_bytes_per_s, stop.clone());
        let mut report = PassReport::default();
        while !stop.is_cancelled() {
            let Some((id, rel)) = self.store.next_to_scrub(due_ms)? else {
                break;
            };
            let clip_started = Instant::now();
            let done = self
                .store
                .scrub_clip(id, &rel, &mut budget, self.clock.wall_ms())?;
            let busy_ms = clip_started.elapsed().as_millis() as u64;
            self.store.count_scrubbed(&done, busy_ms);
            self.announce(id, &done);
            report.clips += 1;
            report.files += done.files;
            report.bytes += done.bytes;
            report.damaged.extend(done.damaged);
        }
        report.took = started.elapsed();
        if !stop.is_cancelled() && report.clips > 0 {
            let took_ms = report.took.as_millis() as u64;
            self.store.count_scrub_pass(self.clock.wall_ms(), took_ms);
        }
        Ok(report)
    }

    /// A `damaged` event for each damaged file of clip `id`, on the bus.
    fn announce(&self, id: i64, done: &ClipScrub) {
        if done.damaged.is_empty() {
            return;
        }
        if let Err(e) = self.damaged_event(id) {
            tracing::warn!("scrub: no event for the damage in clip {id}: {e}");
        }
    }

    fn damaged_event(&self, id: i64) -> Result<(), StoreError> {
        let clip = self.store.clip(id)?;
        let whole = [0.0, 0.0, 1.0, 1.0];
        let at_ms = clip.start_ms;
        let event = self
            .store
            .insert_event(&clip.camera_id, DAMAGED_LABEL, at_ms, 1.0, &whole)?;
        self.store
            .update_event(event, Some(clip.end_ms), 1.0, &whole)?;
        let record = self.store.event(event)?;
        if let Some(bus) = &self.bus {
            for kind in ["start", "end"] {
                let _ = bus.send(EventNotice {
                    kind,
                    event: record.clone(),
                });
            }
        }
        Ok(())
    }

    /// Runs passes in a thread of its own at idle priority until `stop`.
    /// Must be called inside a tokio runtime: the thread waits between passes on its timer
    /// (woken by `stop` at once, not polling for it).
    pub fn spawn(self, stop: CancellationToken) -> std::io::Result<std::thread::JoinHandle<()>> {
        let runtime = tokio::runtime::Handle::try_current().map_err(std::io::Error::other)?;
        std::thread::Builder::new()
            .name("scrub".into())
            .spawn(move || {
                lower_priority();
                while !stop.is_cancelled() {
                    let wait = match self.pass(false, &stop) {
                        Ok(r) => {
                            log_pass(&r);
                            IDLE_CHECK
                        }
                        Err(e) => {
                            tracing::error!("scrub: {e}; trying again in 5 minutes");
                            ERROR_BACKOFF
                        }
                    };
                    sleep_unless(&runtime, &stop, wait);
                }
            })
    }
}

fn log_pass(r: &PassReport) {
    if r.clips == 0 {
        return;
    }
    tracing::info!(
        "scrub: authenticated {} files of {} clips ({:.1} MB) at {:.1} MB/s; {} damaged",
        r.files,
        r.clips,
        r.bytes as f64 / 1e6,
        r.mb_per_s(),
        r.damaged.len()
    );
}

/// Sleeps `wait`, or less when `stop` is cancelled meanwhile.
fn sleep_unless(runtime: &tokio::runtime::Handle, stop: &CancellationToken, wait: Duration) {
    runtime.block_on(async {
        tokio::select! {
            _ = stop.cancelled() => {}
            _ = tokio::time::sleep(wait) => {}
        }
    });
}

/// Idle CPU (nice 19) and idle I/O class for this thread only: recording and playback
/// always come first.
fn lower_priority() {
    const IOPRIO_CLASS_IDLE: libc::c_long = 3;
    const IOPRIO_CLASS_SHIFT: libc::c_long = 13;
    const IOPRIO_WHO_PROCESS: libc::c_long = 1;
    // SAFETY: both calls act on this thread (tid 0 = the caller) and touch no memory.
    unsafe {
        libc::setpriority(libc::PRIO_PROCESS, 0, 19);
        libc::syscall(
            libc::SYS_ioprio_set,
            IOPRIO_WHO_PROCESS,
            0,
            IOPRIO_CLASS_IDLE << IOPRIO_CLASS_SHIFT,
        );
    }
}
