//! The one clock. `Clock` gives wall time (UTC ms since the epoch, for what is stored and
//! shown) and monotonic time (ms, for intervals and heartbeats). `SystemClock` is the real
//! one; `SimClock` is moved by hand, so tests of retention, tiers, lockouts, token expiry,
//! cooldowns and analytics windows can jump days without waiting. The parts that keep
//! time-based state take a `ClockRef`; code that only stamps "now" calls `wall_ms()`.
//! Dates are formatted here, through chrono, and nowhere else.

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, OnceLock};
use std::time::Instant;

pub trait Clock: Send + Sync + std::fmt::Debug {
    /// Milliseconds since the Unix epoch (UTC).
    fn wall_ms(&self) -> i64;
    /// Milliseconds on a clock that never goes back (never 0).
    fn monotonic_ms(&self) -> u64;
}

/// A shared clock handle.
pub type ClockRef = Arc<dyn Clock>;

/// The machine's clocks.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn wall_ms(&self) -> i64 {
        wall_ms()
    }

    fn monotonic_ms(&self) -> u64 {
        monotonic_ms()
    }
}

/// The system clock as a shared handle.
pub fn system() -> ClockRef {
    static SYSTEM: OnceLock<ClockRef> = OnceLock::new();
    SYSTEM.get_or_init(|| Arc::new(SystemClock)).clone()
}

/// A clock for tests: it stands still until moved.
#[derive(Debug)]
pub struct SimClock {
    wall_ms: AtomicI64,
    monotonic_ms: AtomicU64,
}

impl SimClock {
    /// Starting at `wall_ms`.
    pub fn at(wall_ms: i64) -> Arc<Self> {
        Arc::new(Self {
            wall_ms: AtomicI64::new(wall_ms),
            monotonic_ms: AtomicU64::new(1),
        })
    }

    /// Moves both clocks forward by `ms`.
    pub fn advance(&self, ms: u64) {
        self.wall_ms.fetch_add(ms as i64, Relaxed);
        self.monotonic_ms.fetch_add(ms, Relaxed);
    }

    /// Sets the wall clock alone (as a camera or an NTP step would), monotonic untouched.
    pub fn set_wall_ms(&self, wall_ms: i64) {
        self.wall_ms.store(wall_ms, Relaxed);
    }
}

impl Clock for SimClock {
    fn wall_ms(&self) -> i64 {
        self.wall_ms.load(Relaxed)
    }

    fn monotonic_ms(&self) -> u64 {
        self.monotonic_ms.load(Relaxed)
    }
}

/// The system's wall clock: milliseconds since the Unix epoch, now.
pub fn wall_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

fn epoch() -> Instant {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    *EPOCH.get_or_init(Instant::now)
}

/// Milliseconds since the first call in this process (never 0): cheap enough to read
/// from appsink callbacks and storable in an atomic.
pub fn monotonic_ms() -> u64 {
    epoch().elapsed().as_millis() as u64 + 1
}

fn utc(ms: i64) -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::from_timestamp_millis(ms).unwrap_or_default()
}

/// The civil date (UTC) of a millisecond timestamp: (year, month 1-12, day 1-31).
pub fn utc_ymd(ms: i64) -> (i32, u8, u8) {
    use chrono::Datelike;
    let d = utc(ms).date_naive();
    (d.year(), d.month() as u8, d.day() as u8)
}

/// The civil date (UTC) of a millisecond timestamp, as YYYY-MM-DD.
pub fn utc_date(ms: i64) -> String {
    utc(ms).format("%Y-%m-%d").to_string()
}

/// A compact UTC time for file names: YYYYMMDDTHHMMSSZ.
pub fn utc_stamp(ms: i64) -> String {
    utc(ms).format("%Y%m%dT%H%M%SZ").to_string()
}

/// UTC time in RFC 3339 to the second: YYYY-MM-DDTHH:MM:SSZ.
pub fn utc_time(ms: i64) -> String {
    utc(ms).format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utc_dates_and_stamps() {
        assert_eq!(utc_date(0), "1970-01-01");
        assert_eq!(utc_date(1_795_000_000_000), "2026-11-18");
        assert_eq!(utc_date(951_782_400_000), "2000-02-29");
        assert_eq!(utc_date(-1), "1969-12-31");
        assert_eq!(utc_ymd(951_782_400_000), (2000, 2, 29));
        assert_eq!(utc_stamp(951_782_400_000 + 3_723_000), "20000229T010203Z");
        assert_eq!(utc_time(1_000), "1970-01-01T00:00:01Z");
    }

    #[test]
    fn the_simulated_clock_moves_only_when_told() {
        let c = SimClock::at(1_000_000);
        let (w, m) = (c.wall_ms(), c.monotonic_ms());
        assert_eq!((w, m), (1_000_000, 1));
        c.advance(86_400_000);
        assert_eq!(c.wall_ms(), w + 86_400_000);
        assert_eq!(c.monotonic_ms(), m + 86_400_000);
        c.set_wall_ms(5);
        assert_eq!((c.wall_ms(), c.monotonic_ms()), (5, m + 86_400_000));
        let shared: ClockRef = c;
        assert_eq!(shared.wall_ms(), 5);
    }

    #[test]
    fn the_system_clock_is_now() {
        let before = wall_ms();
        let c = system();
        let (w, m1) = (c.wall_ms(), c.monotonic_ms());
        assert!(w >= before && w - before < 60_000);
        assert!(c.monotonic_ms() >= m1 && m1 > 0);
    }
}
