//! `Ring`: the last `pre_s` seconds of a camera's access units, so a clip can start before
//! its trigger. Invariants: the oldest unit is always a keyframe (a GOP is never cut in
//! half), the ring never spans two connections or caps (a new `StreamInfo` clears it), and
//! its bytes never exceed the bound. A camera whose GOP is longer than the pre-roll keeps
//! one whole GOP. When a single GOP outgrows the byte bound, the ring drops it and waits
//! for the next keyframe rather than hold a GOP it cannot start a clip with.

use crate::ingest::AccessUnit;
use std::collections::VecDeque;
use std::sync::Arc;

/// Detection reports an object a little after its frame arrived (decode, inference,
/// queueing), and the trigger counts the pre-roll back from when it was seen; the ring
/// keeps this much beyond the pre-roll so that moment's pre-roll is still held.
pub const LATE_TRIGGER_SLACK_NS: u64 = 2_000_000_000;

/// When no bound is configured: twice the measured bitrate over (pre-roll + 4 s), between
/// these limits.
pub const AUTO_MIN_BYTES: usize = 4 << 20;
pub const AUTO_MAX_BYTES: usize = 64 << 20;

pub struct Ring {
    units: VecDeque<AccessUnit>,
    bytes: usize,
    pre_ns: u64,
    /// Fixed bound, or None for the automatic one.
    fixed_max_bytes: Option<usize>,
    /// Units dropped because they would break the byte bound.
    pub dropped_for_bound: u64,
}

impl Ring {
    pub fn new(pre_s: f64, max_bytes: Option<usize>) -> Self {
        Self {
            units: VecDeque::new(),
            bytes: 0,
            pre_ns: (pre_s * 1e9) as u64,
            fixed_max_bytes: max_bytes,
            dropped_for_bound: 0,
        }
    }

    pub fn bytes(&self) -> usize {
        self.bytes
    }

    pub fn len(&self) -> usize {
        self.units.len()
    }

    pub fn is_empty(&self) -> bool {
        self.units.is_empty()
    }

    /// Seconds of video held (first to last PTS).
    pub fn span_s(&self) -> f64 {
        match (self.units.front(), self.units.back()) {
            (Some(a), Some(b)) => (b.pts_ns.saturating_sub(a.pts_ns)) as f64 / 1e9,
            _ => 0.0,
        }
    }

    /// The bound in force now.
    pub fn max_bytes(&self) -> usize {
        if let Some(fixed) = self.fixed_max_bytes {
            return fixed;
        }
        let span = self.span_s();
        if span < 1.0 {
            return AUTO_MAX_BYTES;
        }
        let bytes_per_s = self.bytes as f64 / span;
        let want = 2.0 * bytes_per_s * (self.pre_ns as f64 / 1e9 + 4.0);
        (want as usize).clamp(AUTO_MIN_BYTES, AUTO_MAX_BYTES)
    }

    pub fn clear(&mut self) {
        self.units.clear();
        self.bytes = 0;
    }

    pub fn newest_pts_ns(&self) -> Option<u64> {
        self.units.back().map(|u| u.pts_ns)
    }

    pub fn push(&mut self, unit: AccessUnit) {
        if let Some(last) = self.units.back()
            && !Arc::ptr_eq(&last.stream, &unit.stream)
        {
            self.clear();
        }
        if self.units.is_empty() && !unit.keyframe {
            return; // a ring starts at a keyframe
        }
        let size = unit.data.size();
        let newest = unit.pts_ns;
        self.bytes += size;
        self.units.push_back(unit);
        self.trim_to_pre_roll(newest);
        self.trim_to_bound();
    }

    /// Drops whole GOPs from the front while the next keyframe is still at or before
    /// `newest - pre - LATE_TRIGGER_SLACK_NS`.
    fn trim_to_pre_roll(&mut self, newest: u64) {
        let keep_from = newest.saturating_sub(self.pre_ns + LATE_TRIGGER_SLACK_NS);
        loop {
            // The second keyframe, if the GOP before it ends early enough to drop.
            let next_key = self.second_keyframe();
            match next_key {
                Some(i) if self.units[i].pts_ns <= keep_from => self.drop_front(i),
                _ => break,
            }
        }
    }

    fn trim_to_bound(&mut self) {
        let max = self.max_bytes();
        while self.bytes > max {
            let next_key = self.second_keyframe();
            let n = next_key.unwrap_or(self.units.len());
            self.dropped_for_bound += n as u64;
            self.drop_front(n);
        }
    }

    /// Index of the keyframe that starts the second GOP held, if any.
    fn second_keyframe(&self) -> Option<usize> {
        self.units
            .iter()
            .skip(1)
            .position(|u| u.keyframe)
            .map(|i| i + 1)
    }

    fn drop_front(&mut self, n: usize) {
        for u in self.units.drain(..n) {
            self.bytes -= u.data.size();
        }
    }

    /// The units from the last keyframe at or before `from_pts_ns` (or from the oldest
    /// keyframe held, if none is that early) to the newest.
    pub fn snapshot_from(&self, from_pts_ns: u64) -> Vec<AccessUnit> {
        let start = self
            .units
            .iter()
            .enumerate()
            .filter(|(_, u)| u.keyframe && u.pts_ns <= from_pts_ns)
            .map(|(i, _)| i)
            .next_back()
            .unwrap_or(0);
        self.units.iter().skip(start).cloned().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ingest::{Codec, StreamInfo};
    use gstreamer as gst;

    fn stream(session: u64) -> Arc<StreamInfo> {
        gst::init().unwrap();
        Arc::new(StreamInfo {
            codec: Codec::H264,
            width: 64,
            height: 64,
            caps: gst::Caps::new_empty_simple("video/x-h264"),
            session,
        })
    }

    fn unit(s: &Arc<StreamInfo>, i: u64, gop: u64, size: usize) -> AccessUnit {
        AccessUnit {
            pts_ns: i * 40_000_000,
            dts_ns: None,
            duration_ns: None,
            keyframe: i.is_multiple_of(gop),
            data: gst::Buffer::from_mut_slice(vec![0u8; size]),
            stream: s.clone(),
        }
    }

    #[test]
    fn keeps_pre_roll_from_a_keyframe() {
        let s = stream(1);
        let mut ring = Ring::new(2.0, Some(1 << 30));
        for i in 0..250 {
            ring.push(unit(&s, i, 25, 1000));
            assert!(ring.units.front().unwrap().keyframe);
        }
        // Newest at 9.96 s; keep from the keyframe at or before 9.96 - 2 (pre-roll) - 2
        // (slack for late triggers) = 5.96 s, i.e. 5.0 s.
        assert_eq!(ring.units.front().unwrap().pts_ns, 5_000_000_000);
        let snap = ring.snapshot_from(8_500_000_000);
        assert_eq!(snap[0].pts_ns, 8_000_000_000);
        assert!(snap[0].keyframe);
    }

    #[test]
    fn long_gop_keeps_one_whole_gop() {
        let s = stream(1);
        let mut ring = Ring::new(1.0, Some(1 << 30));
        for i in 0..200 {
            ring.push(unit(&s, i, 100, 10)); // 4 s GOP, 1 s pre-roll
        }
        assert_eq!(ring.units.front().unwrap().pts_ns, 4_000_000_000);
        assert_eq!(ring.len(), 100);
    }

    #[test]
    fn never_exceeds_the_byte_bound_under_a_burst() {
        let s = stream(1);
        let bound = 1 << 20;
        let mut ring = Ring::new(30.0, Some(bound));
        for i in 0..2000 {
            // Every 7th frame is huge (a burst of detail).
            let size = if i % 7 == 3 { 300_000 } else { 5_000 };
            ring.push(unit(&s, i, 25, size));
            assert!(
                ring.bytes() <= bound,
                "{} > {bound} at unit {i}",
                ring.bytes()
            );
            assert!(ring.is_empty() || ring.units.front().unwrap().keyframe);
        }
        assert!(ring.dropped_for_bound > 0);
        // A single unit larger than the bound is never kept.
        ring.push(unit(&s, 2000, 25, bound + 1));
        assert!(ring.bytes() <= bound);
    }

    #[test]
    fn a_new_stream_clears_the_ring() {
        let (a, b) = (stream(1), stream(2));
        let mut ring = Ring::new(5.0, None);
        for i in 0..50 {
            ring.push(unit(&a, i, 25, 100));
        }
        ring.push(unit(&b, 1, 25, 100)); // a delta of the new stream: not a start
        assert!(ring.is_empty());
        ring.push(unit(&b, 25, 25, 100));
        assert_eq!(ring.len(), 1);
    }
}
