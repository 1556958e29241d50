//! Decode timestamps for cameras that send B-frames.
//!
//! RTP carries presentation times only, and what rtspsrc puts in DTS is not a decode
//! time (several pictures share one). The recorder's MP4 and the live fMP4 need real
//! decode times: increasing, never after the presentation time, with the difference
//! written as the composition offset. They are derived the way a demuxer does it: the
//! decode times of a stream are its presentation times in sorted order, delayed by the
//! stream's reorder depth. A window of `depth + 1` presentation times gives out its
//! smallest as each new unit arrives.
//!
//! The depth is learned: it is the most pictures seen so far that came before a unit in
//! decode order but after it in presentation. A stream without B-frames has depth 0 and
//! decode time = presentation time. When the depth grows (at the first B-frame of a
//! connection), the decode times already given out were too late, so the caller starts a
//! new stream epoch: consumers begin again at the next keyframe.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};

/// Presentation times remembered to measure the reorder depth.
const HISTORY: usize = 32;
/// Deeper reordering than this is not believed (H.264 allows 16; cameras use 1 to 4).
const MAX_DEPTH: usize = 8;

#[derive(Default)]
pub struct DtsGuess {
    recent_pts_ns: VecDeque<u64>,
    depth: usize,
    window: BinaryHeap<Reverse<u64>>,
}

/// The decode time of one unit, and whether this unit raised the reorder depth.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Guess {
    pub dts_ns: u64,
    pub depth_grew: bool,
}

impl DtsGuess {
    /// The decode time of the next unit in decode order, presented at `pts_ns`.
    pub fn next(&mut self, pts_ns: u64) -> Guess {
        let depth = self.recent_pts_ns.iter().filter(|&&p| p > pts_ns).count();
        if self.recent_pts_ns.len() == HISTORY {
            self.recent_pts_ns.pop_front();
        }
        self.recent_pts_ns.push_back(pts_ns);
        let depth_grew = depth > self.depth && self.depth < MAX_DEPTH;
        if depth_grew {
            self.depth = depth.min(MAX_DEPTH);
            self.window.clear();
        }
        self.window.push(Reverse(pts_ns));
        let Reverse(smallest) = *self.window.peek().unwrap_or(&Reverse(pts_ns));
        let dts_ns = if self.window.len() > self.depth {
            self.window.pop();
            smallest
        } else {
            // Still filling after a reset: just before the smallest, 1 ns per missing
            // unit, so the decode times given out later stay larger.
            smallest.saturating_sub((self.depth + 1 - self.window.len()) as u64)
        };
        Guess {
            dts_ns: dts_ns.min(pts_ns),
            depth_grew,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn guess_all(pts: &[u64]) -> Vec<Guess> {
        let mut g = DtsGuess::default();
        pts.iter().map(|&p| g.next(p)).collect()
    }

    #[test]
    fn without_b_frames_decode_time_is_presentation_time() {
        let pts = [0, 100, 200, 300, 400];
        let got = guess_all(&pts);
        assert!(
            got.iter()
                .zip(pts)
                .all(|(g, p)| g.dts_ns == p && !g.depth_grew)
        );
    }

    #[test]
    fn b_frames_get_increasing_decode_times_before_their_presentation() {
        // I0 P3 B1 B2 P6 B4 B5 P9 B7 B8 (in 100s), decode order.
        let pts: Vec<u64> = [0, 3, 1, 2, 6, 4, 5, 9, 7, 8].map(|f| f * 100).to_vec();
        let got = guess_all(&pts);
        assert!(got[2].depth_grew, "the first B-frame reveals the depth");
        assert!(got.iter().skip(3).all(|g| !g.depth_grew));
        // From the reset on, decode times increase and never pass presentation times.
        for w in got[2..].windows(2) {
            assert!(w[1].dts_ns > w[0].dts_ns, "{got:?}");
        }
        for (g, p) in got.iter().zip(&pts) {
            assert!(g.dts_ns <= *p, "{got:?}");
        }
        assert_eq!(got[4].dts_ns, 200, "P6 decodes in B2's presentation slot");
    }

    #[test]
    fn a_pyramid_raises_the_depth_twice_then_settles() {
        // I0 P4 B2 b1 b3 P8 B6 b5 b7 (in 100s).
        let pts: Vec<u64> = [0, 4, 2, 1, 3, 8, 6, 5, 7].map(|f| f * 100).to_vec();
        let got = guess_all(&pts);
        assert!(got[2].depth_grew && got[3].depth_grew);
        for w in got[3..].windows(2) {
            assert!(w[1].dts_ns > w[0].dts_ns, "{got:?}");
        }
    }
}
