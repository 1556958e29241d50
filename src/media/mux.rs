//! Fragmented MP4 muxing of a clip's access units, in-crate and without re-encoding:
//! `ftyp` + `moov` from the first keyframe's parameter sets (`ingest::fmp4`), then one
//! `moof` + `mdat` per fragment of about `fragment_ms`.
//!
//! A fragment is cut at any picture once it spans `fragment_ms`, or sooner at a keyframe
//! from 7/8 of it on (a GOP of `fragment_ms` measures a little short on a jittery clock):
//! a crash loses at most `fragment_ms` of a clip whatever the camera's GOP, as with
//! mp4mux's `fragment-duration`, and a 1 s GOP makes one fragment per GOP. A
//! sample's duration runs to the next unit's decode time, so a fragment is written when
//! the unit after it arrives; the last one on `finish`, with the unit's own duration (or
//! the one before it).
//!
//! Timestamps are rebased so the first unit (a keyframe) decodes at 0; a stream with
//! B-frames keeps each unit's presentation offset (ingest's `reorder`) as its composition
//! offset. Output bytes wait in `take_output` for the caller, who drains them into the
//! clip store, so nothing is held longer than a fragment.

use crate::media::boxes::Sample;
use crate::media::fmp4::{self, TIMESCALE};
use crate::media::{AccessUnit, StreamInfo};
use std::sync::Arc;

#[derive(Debug, thiserror::Error)]
pub enum MuxError {
    #[error("muxer: {0}")]
    Data(String),
    #[error("the first unit of a clip must be a keyframe")]
    NotKeyframe,
    #[error("the first keyframe carries no parameter sets (SPS/PPS) to describe the clip")]
    NoParameterSets,
    #[error("stream changed (codec, caps or parameter sets) mid-clip")]
    StreamChanged,
}

/// The fragment being gathered: its samples and their data, from `start_ticks`.
#[derive(Default)]
struct OpenFragment {
    start_ticks: u64,
    samples: Vec<Sample>,
    data: Vec<u8>,
}

pub struct Muxer {
    stream: Arc<StreamInfo>,
    fragment_ticks: u64,
    /// The parameter sets of the init segment, sorted: a keyframe that carries others
    /// needs a new clip (`accepts`).
    parameter_sets: Vec<Vec<u8>>,
    out: Vec<u8>,
    /// The first unit's decode time: subtracted from every timestamp.
    base_ns: Option<u64>,
    open: OpenFragment,
    /// Decode time of the newest unit, in ticks from `base_ns`.
    last_dts_ticks: u64,
    /// Its own duration (ingest's estimate), in ticks, for the last sample of the clip.
    last_own_duration_ticks: Option<u32>,
    /// The duration of the unit before it, in ticks.
    previous_duration_ticks: u32,
    sequence: u32,
    pub frames: u64,
}

impl Muxer {
    /// A muxer for units of `stream`, cutting fragments every `fragment_ms` (at a keyframe
    /// when one comes near then).
    pub fn new(stream: Arc<StreamInfo>, fragment_ms: u32) -> Self {
        Self {
            stream,
            fragment_ticks: u64::from(fragment_ms.max(1)) * u64::from(TIMESCALE) / 1000,
            parameter_sets: Vec::new(),
            out: Vec::new(),
            base_ns: None,
            open: OpenFragment::default(),
            last_dts_ticks: 0,
            last_own_duration_ticks: None,
            previous_duration_ticks: 0,
            sequence: 0,
            frames: 0,
        }
    }

    /// Whether `unit` can join this clip: the same stream and, at a keyframe, the same
    /// parameter sets as the init segment (a camera may change them without a new caps).
    pub fn accepts(&self, unit: &AccessUnit) -> bool {
        if !Arc::ptr_eq(&unit.stream, &self.stream) {
            return false;
        }
        if self.frames == 0 || !unit.keyframe {
            return true;
        }
        let Ok(map) = unit.data.map_readable() else {
            return true;
        };
        let sets = sorted_sets(self.stream.codec, &map);
        sets.is_empty() || sets == self.parameter_sets
    }

    /// Pushes one access unit (the first must be a keyframe of the same stream).
    pub fn push(&mut self, unit: &AccessUnit) -> Result<(), MuxError> {
        if !Arc::ptr_eq(&unit.stream, &self.stream) {
            return Err(MuxError::StreamChanged);
        }
        let map = unit
            .data
            .map_readable()
            .map_err(|e| MuxError::Data(e.to_string()))?;
        if self.frames == 0 {
            self.begin(unit, &map)?;
        }
        let base = self.base_ns.unwrap_or(0);
        // Decode times only move forward (a camera's clock may not): at least one tick.
        let dts_ticks = fmp4::ticks(unit.decode_ns().saturating_sub(base))
            .max(self.last_dts_ticks + u64::from(self.frames > 0));
        let pts_ticks = fmp4::ticks(unit.pts_ns.saturating_sub(base)).max(dts_ticks);
        if let Some(previous) = self.open.samples.last_mut() {
            previous.duration = duration_u32(dts_ticks - self.last_dts_ticks);
            self.previous_duration_ticks = previous.duration;
        }
        if self.cuts_before(unit.keyframe, dts_ticks) {
            self.close_fragment();
        }
        if self.open.samples.is_empty() {
            self.open.start_ticks = dts_ticks;
        }
        let size = fmp4::append_sample(self.stream.codec, &map, &mut self.open.data);
        self.open.samples.push(Sample {
            duration: 0,
            size,
            flags: fmp4::sample_flags(unit.keyframe),
            cto: duration_u32(pts_ticks - dts_ticks) as i32,
        });
        self.last_dts_ticks = dts_ticks;
        self.last_own_duration_ticks = unit.duration_ns.map(|d| duration_u32(fmp4::ticks(d)));
        self.frames += 1;
        Ok(())
    }

    /// The init segment, from the clip's first unit, which must be a keyframe that
    /// carries its parameter sets.
    fn begin(&mut self, unit: &AccessUnit, au: &[u8]) -> Result<(), MuxError> {
        if !unit.keyframe {
            return Err(MuxError::NotKeyframe);
        }
        let init = fmp4::init_segment(&self.stream, au).ok_or(MuxError::NoParameterSets)?;
        self.parameter_sets = sorted_sets(self.stream.codec, au);
        self.out.extend_from_slice(&init.bytes);
        self.base_ns = Some(unit.decode_ns());
        Ok(())
    }

    /// Whether a unit decoding at `dts_ticks` starts a new fragment.
    fn cuts_before(&self, keyframe: bool, dts_ticks: u64) -> bool {
        if self.open.samples.is_empty() {
            return false;
        }
        let span_ticks = dts_ticks - self.open.start_ticks;
        // A GOP of exactly `fragment_ms` may measure a little short (clock jitter, rounding).
        let keyframe_span_ticks = self.fragment_ticks - self.fragment_ticks / 8;
        (keyframe && span_ticks >= keyframe_span_ticks) || span_ticks >= self.fragment_ticks
    }

    /// Writes the open fragment to the output (its last duration already set).
    fn close_fragment(&mut self) {
        let open = std::mem::take(&mut self.open);
        if open.samples.is_empty() {
            return;
        }
        self.sequence = self.sequence.wrapping_add(1);
        fmp4::append_fragment(
            &mut self.out,
            self.sequence,
            open.start_ticks,
            &open.samples,
            &open.data,
        );
        // Reuse the buffers' capacity for the next fragment.
        self.open.samples = open.samples;
        self.open.samples.clear();
        self.open.data = open.data;
        self.open.data.clear();
    }

    pub fn stream(&self) -> Arc<StreamInfo> {
        self.stream.clone()
    }

    /// MP4 bytes produced so far (moved out).
    pub fn take_output(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.out)
    }

    /// Ends the clip: writes the last fragment and returns the remaining bytes. The last
    /// sample lasts its own duration, else as long as the one before it, else 1/30 s.
    pub fn finish(mut self) -> Result<Vec<u8>, MuxError> {
        let previous = Some(self.previous_duration_ticks).filter(|d| *d > 0);
        if let Some(last) = self.open.samples.last_mut() {
            last.duration = self
                .last_own_duration_ticks
                .filter(|d| *d > 0)
                .or(previous)
                .unwrap_or(TIMESCALE / 30);
        }
        self.close_fragment();
        Ok(self.take_output())
    }
}

/// The distinct parameter sets of an access unit, in a fixed order (cameras vary theirs).
fn sorted_sets(codec: crate::media::Codec, au: &[u8]) -> Vec<Vec<u8>> {
    let mut sets: Vec<Vec<u8>> = fmp4::parameter_sets(codec, au)
        .into_iter()
        .map(<[u8]>::to_vec)
        .collect();
    sets.sort_unstable();
    sets
}

/// `ticks` as a `trun` field (saturating: 13 hours at 90 kHz).
fn duration_u32(ticks: u64) -> u32 {
    u32::try_from(ticks).unwrap_or(u32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::Codec;
    use crate::media::boxes::{Fragment, TrackDefaults, children, parse_moof};
    use crate::media::mp4scan::Mp4Scan;
    use gstreamer as gst;

    const SPS: &[u8] = &[0x67, 0x64, 0x00, 0x1f, 0xac, 0xd9, 0x40];
    const PPS: &[u8] = &[0x68, 0xeb, 0xe3, 0xcb];

    fn stream() -> Arc<StreamInfo> {
        gst::init().unwrap();
        Arc::new(StreamInfo {
            codec: Codec::H264,
            width: 640,
            height: 360,
            caps: gst::Caps::new_empty_simple("video/x-h264"),
            session: 1,
        })
    }

    /// An Annex B access unit: a delimiter, then (at keyframes) `sets`, then two slices
    /// of a multi-slice picture, `i` bytes of payload each.
    fn au(keyframe: bool, sets: &[&[u8]], i: usize) -> Vec<u8> {
        let mut out = vec![0, 0, 0, 1, 0x09, 0xf0];
        for nal in sets.iter().filter(|_| keyframe) {
            out.extend_from_slice(&[0, 0, 0, 1]);
            out.extend_from_slice(nal);
        }
        let slice_type = if keyframe { 0x65 } else { 0x41 };
        for _ in 0..2 {
            out.extend_from_slice(&[0, 0, 1, slice_type]);
            out.extend(std::iter::repeat_n(0x55, i));
        }
        out
    }

    fn unit(
        s: &Arc<StreamInfo>,
        dts_ms: u64,
        pts_ms: u64,
        keyframe: bool,
        data: Vec<u8>,
    ) -> AccessUnit {
        AccessUnit {
            pts_ns: pts_ms * 1_000_000,
            dts_ns: Some(dts_ms * 1_000_000),
            duration_ns: None,
            keyframe,
            data: gst::Buffer::from_mut_slice(data),
            stream: s.clone(),
        }
    }

    /// Every fragment of a whole clip, parsed.
    fn fragments(mp4: &[u8]) -> Vec<Fragment> {
        children(mp4)
            .filter(|(kind, _, _)| kind == b"moof")
            .map(|(_, _, moof)| parse_moof(moof, TrackDefaults::default()).unwrap())
            .collect()
    }

    /// 10 s at 25 fps with a keyframe every 2 s and B-frames: every third picture in
    /// decode order is a reference shown 80 ms (two pictures) after it is decoded.
    fn b_frame_clip(s: &Arc<StreamInfo>, fragment_ms: u32) -> Vec<u8> {
        let mut mux = Muxer::new(s.clone(), fragment_ms);
        let mut out = Vec::new();
        for n in 0..250u64 {
            let keyframe = n % 50 == 0;
            let dts = n * 40;
            let pts = if n % 3 == 1 { dts + 80 } else { dts };
            mux.push(&unit(s, dts, pts, keyframe, au(keyframe, &[SPS, PPS], 300)))
                .unwrap();
            out.extend(mux.take_output());
        }
        out.extend(mux.finish().unwrap());
        out
    }

    #[test]
    fn a_clip_scans_and_parses_with_every_sample_and_its_timing() {
        let s = stream();
        let mp4 = b_frame_clip(&s, 1000);
        let mut scan = Mp4Scan::new();
        scan.feed(&mp4);
        assert_eq!(scan.error, None);
        assert_eq!(
            (scan.codec.as_str(), scan.width, scan.height),
            ("avc1", 640, 360)
        );
        assert_eq!(scan.samples, 250);
        assert_eq!(
            scan.complete_end,
            mp4.len() as u64,
            "every byte in complete fragments"
        );
        // 250 pictures of 40 ms: the last lasts as long as the one before it.
        assert_eq!(scan.duration_ms(), 10_000);
        let frags = fragments(&mp4);
        // Keyframes every 2 s, fragments of 1 s: two fragments per GOP, the second
        // starting mid-GOP.
        assert_eq!(frags.len(), 10);
        let mut next_dts = 0;
        for (k, f) in frags.iter().enumerate() {
            assert_eq!(f.sequence, k as u32 + 1);
            assert_eq!(f.decode_time, next_dts, "fragments follow each other");
            assert_eq!(f.ticks(), 90_000);
            next_dts += f.ticks();
            assert_eq!(f.samples[0].is_sync(), k % 2 == 0);
            assert!(f.samples[1..].iter().all(|x| !x.is_sync()));
            // Length-prefixed slices, no delimiter or parameter sets: 2 x (4 + 301).
            assert!(
                f.samples
                    .iter()
                    .all(|x| x.size == 610 && x.duration == 3600)
            );
            assert!(
                f.samples.iter().all(|x| x.cto == 0 || x.cto == 7200),
                "B-frame offsets"
            );
            assert!(f.samples.iter().filter(|x| x.cto == 7200).count() >= 8);
        }
    }

    #[test]
    fn a_long_gop_still_closes_a_fragment_every_fragment_length() {
        let s = stream();
        let mut mux = Muxer::new(s.clone(), 1000);
        let mut mp4 = Vec::new();
        for n in 0..250u64 {
            let keyframe = n == 0; // one keyframe in 10 s
            mux.push(&unit(
                &s,
                n * 40,
                n * 40,
                keyframe,
                au(keyframe, &[SPS, PPS], 10),
            ))
            .unwrap();
            mp4.extend(mux.take_output());
        }
        let before_finish = fragments(&mp4).len();
        mp4.extend(mux.finish().unwrap());
        let frags = fragments(&mp4);
        assert_eq!(before_finish, 9, "closed while the clip was open");
        assert_eq!(frags.len(), 10);
        assert!(frags.iter().all(|f| f.ticks() == 90_000), "{frags:?}");
    }

    #[test]
    fn a_one_second_gop_with_a_jittery_clock_makes_one_second_fragments() {
        let s = stream();
        let mut mux = Muxer::new(s.clone(), 1000);
        for n in 0..150u64 {
            let keyframe = n % 15 == 0;
            let mut u = unit(&s, 0, 0, keyframe, au(keyframe, &[SPS, PPS], 10));
            // 66.7 ms apart, keyframes 2 ms early (a jittery clock): GOPs just under 1 s.
            u.pts_ns = n * 1_000_000_000 / 15 - if keyframe && n > 0 { 2_000_000 } else { 0 };
            u.dts_ns = Some(u.pts_ns);
            mux.push(&u).unwrap();
        }
        let frags = fragments(&mux.finish().unwrap());
        assert_eq!(frags.len(), 10);
        assert!(frags.iter().all(|f| f.samples.len() == 15), "{frags:?}");
    }

    #[test]
    fn refuses_what_it_cannot_describe_and_sees_new_parameter_sets() {
        let s = stream();
        let mut mux = Muxer::new(s.clone(), 1000);
        let delta = unit(&s, 0, 0, false, au(false, &[], 10));
        assert!(matches!(mux.push(&delta), Err(MuxError::NotKeyframe)));
        let bare = unit(&s, 0, 0, true, au(true, &[], 10));
        assert!(matches!(mux.push(&bare), Err(MuxError::NoParameterSets)));
        mux.push(&unit(&s, 0, 0, true, au(true, &[SPS, PPS], 10)))
            .unwrap();
        assert!(mux.accepts(&unit(&s, 40, 40, false, au(false, &[], 10))));
        assert!(mux.accepts(&unit(&s, 80, 80, true, au(true, &[SPS, PPS], 10))));
        assert!(
            mux.accepts(&unit(&s, 80, 80, true, au(true, &[], 10))),
            "sets only in the init"
        );
        let repeated = au(true, &[PPS, SPS, PPS], 10);
        assert!(
            mux.accepts(&unit(&s, 80, 80, true, repeated)),
            "repeated, in another order"
        );
        let other_pps: &[u8] = &[0x68, 0xee, 0x3c, 0x80];
        assert!(!mux.accepts(&unit(&s, 80, 80, true, au(true, &[SPS, other_pps], 10))));
        let other_stream = stream();
        assert!(!mux.accepts(&unit(&other_stream, 80, 80, false, au(false, &[], 10))));
        assert!(matches!(
            mux.push(&unit(&other_stream, 80, 80, false, au(false, &[], 10))),
            Err(MuxError::StreamChanged)
        ));
    }

    #[test]
    fn decode_times_that_go_back_still_move_forward_in_the_file() {
        let s = stream();
        let mut mux = Muxer::new(s.clone(), 1000);
        for (dts, key) in [
            (1000, true),
            (1040, false),
            (1020, false),
            (1020, false),
            (1100, false),
        ] {
            mux.push(&unit(&s, dts, dts, key, au(key, &[SPS, PPS], 10)))
                .unwrap();
        }
        let mp4 = mux.finish().unwrap();
        let frags = fragments(&mp4);
        let durations: Vec<u32> = frags[0].samples.iter().map(|x| x.duration).collect();
        // 0, 40 ms, then 1 tick on for each late one, then 100 ms: 9000 - 3602 ticks.
        assert_eq!(durations, [3600, 1, 1, 5398, 5398]);
    }
}
