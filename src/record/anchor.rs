//! `WallAnchor`: wall-clock times of a camera's frames, from the stream's running time
//! anchored at the first unit of each connection (its session). A clock step in the
//! middle of a connection then bends no recording; a new connection is anchored afresh.
//! The recorder and the segmenter both name their files and rows with it.

use crate::base::clock::ClockRef;
use crate::ingest::AccessUnit;

pub struct WallAnchor {
    clock: ClockRef,
    /// (session, pts ns, wall ms) of the first unit of the current connection.
    anchor: Option<(u64, u64, i64)>,
}

impl WallAnchor {
    pub fn new(clock: ClockRef) -> Self {
        Self {
            clock,
            anchor: None,
        }
    }

    /// Anchors a unit of a new connection at the wall clock's now.
    pub fn observe(&mut self, unit: &AccessUnit) {
        if self
            .anchor
            .is_none_or(|(session, _, _)| session != unit.stream.session)
        {
            self.anchor = Some((unit.stream.session, unit.pts_ns, self.clock.wall_ms()));
        }
    }

    /// Wall-clock ms of stream time `pts_ns` (now, before any unit).
    pub fn wall_ms(&self, pts_ns: u64) -> i64 {
        match self.anchor {
            Some((_, pts0, wall0)) => wall0 + (pts_ns as i64 - pts0 as i64) / 1_000_000,
            None => self.clock.wall_ms(),
        }
    }

    /// The stream time of wall-clock `ms` (None before the first unit).
    pub fn pts_at_wall_ms(&self, ms: i64) -> Option<u64> {
        let (_, pts0, wall0) = self.anchor?;
        Some((pts0 as i64 + (ms - wall0) * 1_000_000).max(0) as u64)
    }
}
