//! Heartbeats: each long-lived thread (ingest, recorder, detector, the main loop) beats at
//! least once a second and holds an end guard for its whole life, so health (health.rs)
//! can tell a part that died or is stuck from one that works.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::time::Duration;

/// One thread's proof of life: it calls `beat` at least once a second, and holds the guard
/// from `end_guard` for its whole life, so its end (a panic's unwinding included) shows.
#[derive(Clone)]
pub struct Heartbeat(Arc<Beat>);

struct Beat {
    /// `super::clock::monotonic_ms` of the last beat.
    last_ms: AtomicU64,
    ended: AtomicBool,
}

/// Marks its heartbeat ended when dropped.
pub struct EndGuard(Heartbeat);

impl Drop for EndGuard {
    fn drop(&mut self) {
        self.0.0.ended.store(true, Relaxed);
    }
}

impl Default for Heartbeat {
    fn default() -> Self {
        Self(Arc::new(Beat {
            last_ms: AtomicU64::new(super::clock::monotonic_ms()),
            ended: AtomicBool::new(false),
        }))
    }
}

impl Heartbeat {
    pub fn beat(&self) {
        self.0.last_ms.store(super::clock::monotonic_ms(), Relaxed);
    }

    pub fn end_guard(&self) -> EndGuard {
        EndGuard(self.clone())
    }

    /// "has died" or "is stuck (…)" when unhealthy, measured at `now_ms`.
    pub fn verdict(&self, now_ms: u64, stale_after: Duration) -> Option<String> {
        if self.0.ended.load(Relaxed) {
            return Some("has died".into());
        }
        stuck_for(self.0.last_ms.load(Relaxed), now_ms, stale_after)
    }
}

pub fn stuck_for(last_ms: u64, now_ms: u64, stale_after: Duration) -> Option<String> {
    let silent_ms = now_ms.saturating_sub(last_ms);
    (silent_ms > stale_after.as_millis() as u64).then(|| {
        format!(
            "is stuck (no heartbeat for {:.1} s)",
            silent_ms as f64 / 1000.0
        )
    })
}
