//! A process-wide monotonic clock in milliseconds, cheap enough to read from appsink
//! callbacks and storable in an atomic.

use std::sync::OnceLock;
use std::time::Instant;

fn epoch() -> Instant {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    *EPOCH.get_or_init(Instant::now)
}

/// Milliseconds since the first call in this process (never 0 after the first call).
pub fn monotonic_ms() -> u64 {
    epoch().elapsed().as_millis() as u64 + 1
}
