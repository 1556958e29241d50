//! The health loop behind systemd's watchdog: every half watchdog interval it checks that
//! the main loop still ticks (its heartbeat is fresh), that every camera supervisor still
//! runs its loop (their heartbeats), and that the store answers a query; only then does it
//! send `WATCHDOG=1`. A deadlock anywhere in those parts starves the watchdog and systemd
//! restarts the service. A check that blocks (a stuck store lock) blocks the loop too,
//! which is the same verdict.

use crate::ingest::StatusHandle;
use crate::store::Store;
use crate::systemd::Notifier;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::time::Duration;

/// A supervisor or the main loop counts as stuck after this long without a heartbeat: the
/// watchdog interval, but at least 3 s (the main loop beats every second, supervisors every
/// 0.5 s) and at most 20 s (a slow pipeline teardown takes a few seconds).
pub fn stale_after(watchdog_interval: Duration) -> Duration {
    watchdog_interval.clamp(Duration::from_secs(3), Duration::from_secs(20))
}

pub struct HealthInputs {
    /// `crate::clock::monotonic_ms` of the main loop's last tick.
    pub main_heartbeat_ms: Arc<AtomicU64>,
    pub cameras: Vec<StatusHandle>,
    pub store: Store,
    pub stale_after: Duration,
}

/// Why the process is unhealthy, or None.
pub fn check(inputs: &HealthInputs) -> Option<String> {
    let now = crate::clock::monotonic_ms();
    let stale = |ms: u64| now.saturating_sub(ms) > inputs.stale_after.as_millis() as u64;
    if stale(inputs.main_heartbeat_ms.load(Relaxed)) {
        return Some("the main loop has stopped ticking".into());
    }
    for cam in &inputs.cameras {
        if stale(cam.heartbeat_ms()) {
            return Some(format!(
                "the ingest supervisor of camera {} has stopped",
                cam.id()
            ));
        }
    }
    if let Err(e) = inputs.store.ping() {
        return Some(format!("the clip store does not answer: {e}"));
    }
    None
}

/// Runs the watchdog loop on its own thread until `stop` is set.
pub fn spawn_watchdog(
    notifier: Arc<Notifier>,
    interval: Duration,
    inputs: HealthInputs,
    stop: Arc<AtomicBool>,
) -> std::io::Result<std::thread::JoinHandle<()>> {
    std::thread::Builder::new().name("watchdog".into()).spawn(move || {
        let period = (interval / 2).max(Duration::from_millis(100));
        let mut was_healthy = true;
        while !stop.load(Relaxed) {
            match check(&inputs) {
                None => {
                    notifier.notify("WATCHDOG=1");
                    if !was_healthy {
                        tracing::info!("health restored; feeding the watchdog again");
                    }
                    was_healthy = true;
                }
                Some(why) => {
                    if was_healthy {
                        tracing::error!("unhealthy: {why}; withholding the watchdog so systemd restarts sentrix");
                    }
                    was_healthy = false;
                }
            }
            std::thread::sleep(period);
        }
    })
}
