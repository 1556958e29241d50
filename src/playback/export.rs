//! One MP4 for any time range of a camera, built from its segments (and event clips)
//! without re-encoding: `Export::plan` picks the files overlapping the range and lays out
//! the output as pieces, and `read_at` produces any byte range of it on demand, so the
//! response streams, and `Range` requests read only what they ask for.
//!
//! Layout: the first file's `ftyp`+`moov` (its `mehd` set to the export's duration), then
//! the fragments of every file in time order. Fragments are copied as they are, with
//! their `tfdt` moved onto one continuous timeline; only the fragment holding the start
//! and the one holding the end are rewritten (a new `moof` for the samples kept, and the
//! slice of their data). The file starts at the keyframe at or before `from` and ends with
//! the first frame at or after `to`.
//!
//! Gaps (time nothing was recorded) are skipped in the file's timeline: the file plays
//! straight through, and `gaps` (sent as a response header) says where they were. A
//! change of stream format (another resolution or codec configuration) ends the export
//! early at that point (`ends_early_at_ms`): one MP4 track has one format.

use crate::media::boxes::{self, BoxHeader, Fragment, TrackDefaults};
use crate::store::{ClipRecord, OpenReader, Store, StoreError};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// The longest range one request may ask for.
pub const MAX_RANGE_MS: i64 = 24 * 3600 * 1000;
/// Files this close in time count as continuous (their times are whole ms).
const TOUCH_MS: i64 = 250;
/// Readers and box layouts kept open per export.
const OPEN_FILES: usize = 4;

#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error("nothing was recorded between {0} and {1}")]
    NothingRecorded(i64, i64),
    #[error("{0}")]
    Store(#[from] StoreError),
    #[error("clip {id}: {error}")]
    Media { id: i64, error: boxes::Mp4Error },
    /// The copied fragments' 32-bit decode times cannot reach that far at this stream's
    /// timescale (13 hours at 90 kHz).
    #[error("this camera's recordings can be exported {0} hours at a time at most; ask for less")]
    TooLong(u64),
}

/// A gap skipped in the file: at `at_media_ms` into it, wall time jumps from `from_ms`
/// to `to_ms`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct SkippedGap {
    pub at_media_ms: i64,
    pub from_ms: i64,
    pub to_ms: i64,
}

enum Piece {
    Bytes(Vec<u8>),
    /// Bytes of file `clip` from `from`, as they are.
    Raw {
        clip: usize,
        from: u64,
    },
    /// Whole fragments of file `clip` from `from`, their decode times moved by `shift`.
    Fragments {
        clip: usize,
        from: u64,
        shift: i64,
    },
}

struct Placed {
    out_start: u64,
    len: u64,
    piece: Piece,
}

/// Where the boxes of one file are, as far as known.
#[derive(Default)]
struct Layout {
    boxes: Vec<(u64, BoxHeader)>,
    known_end: u64,
}

pub struct Export {
    store: Store,
    clips: Vec<ClipRecord>,
    pieces: Vec<Placed>,
    total: u64,
    /// Wall ms of the first and last frame's end.
    pub start_ms: i64,
    pub end_ms: i64,
    pub duration_ms: i64,
    pub codec: String,
    pub gaps: Vec<SkippedGap>,
    pub ends_early_at_ms: Option<i64>,
    readers: Mutex<Vec<(usize, Arc<OpenReader>)>>,
    layouts: Mutex<HashMap<usize, Layout>>,
}

/// A file's init segment: its bytes, the defaults and format of its track.
struct Init {
    bytes: Vec<u8>,
    defaults: TrackDefaults,
    timescale: u32,
    entry: Vec<u8>,
}

/// One parsed fragment of a file: where it starts and ends, and its samples.
struct FragmentAt {
    start: u64,
    end: u64,
    fragment: Fragment,
}

impl Export {
    /// Plans the export of `camera` over [from_ms, to_ms) (blocking: reads the files'
    /// headers).
    pub fn plan(
        store: &Store,
        camera: &str,
        from_ms: i64,
        to_ms: i64,
    ) -> Result<Self, ExportError> {
        let mut clips = without_overlaps(store.media_overlapping(camera, from_ms, to_ms)?);
        if clips.is_empty() {
            return Err(ExportError::NothingRecorded(from_ms, to_ms));
        }
        let mut export = Self {
            store: store.clone(),
            clips: Vec::new(),
            pieces: Vec::new(),
            total: 0,
            start_ms: 0,
            end_ms: 0,
            duration_ms: 0,
            codec: String::new(),
            gaps: Vec::new(),
            ends_early_at_ms: None,
            readers: Mutex::new(Vec::new()),
            layouts: Mutex::new(HashMap::new()),
        };
        export.clips = std::mem::take(&mut clips);
        let init = export.read_init(0)?;
        export.keep_compatible(&init)?;
        export.codec = boxes::codec_string(&init.entry).unwrap_or_default();
        export.lay_out(init, from_ms, to_ms)?;
        Ok(export)
    }

    pub fn len(&self) -> u64 {
        self.total
    }

    pub fn is_empty(&self) -> bool {
        self.total == 0
    }

    fn media_err(&self, clip: usize) -> impl FnOnce(boxes::Mp4Error) -> ExportError + '_ {
        move |error| ExportError::Media {
            id: self.clips[clip].id,
            error,
        }
    }

    fn reader(&self, clip: usize) -> Result<Arc<OpenReader>, StoreError> {
        let mut open = self.readers.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((_, r)) = open.iter().find(|(c, _)| *c == clip) {
            return Ok(r.clone());
        }
        let reader = Arc::new(self.store.open_clip(self.clips[clip].id)?);
        if open.len() >= OPEN_FILES {
            open.remove(0);
        }
        open.push((clip, reader.clone()));
        Ok(reader)
    }

    fn read(&self, clip: usize, offset: u64, len: u64) -> Result<Vec<u8>, ExportError> {
        Ok(self
            .reader(clip)?
            .read_at(offset, len)
            .map_err(StoreError::from)?)
    }

    /// The header of the box at `offset` of file `clip`.
    fn header_at(&self, clip: usize, offset: u64) -> Result<BoxHeader, ExportError> {
        let bytes = self.read(clip, offset, 16)?;
        boxes::header(&bytes)
            .map_err(self.media_err(clip))?
            .ok_or_else(|| self.media_err(clip)(boxes::Mp4Error("cut-off box header".into())))
    }

    /// `ftyp` and `moov` of file `clip`.
    fn read_init(&self, clip: usize) -> Result<Init, ExportError> {
        let mut at = 0;
        loop {
            let h = self.header_at(clip, at)?;
            if &h.kind == b"moov" {
                let bytes = self.read(clip, 0, at + h.size)?;
                let body = &bytes[(at + h.header_len) as usize..];
                let entry = boxes::sample_entry(body).map(<[u8]>::to_vec);
                let timescale = boxes::timescale(body).filter(|t| *t > 0);
                let (Some(entry), Some(timescale)) = (entry, timescale) else {
                    return Err(self.media_err(clip)(boxes::Mp4Error(
                        "moov without a video track".into(),
                    )));
                };
                let defaults = boxes::track_defaults(body);
                return Ok(Init {
                    bytes,
                    defaults,
                    timescale,
                    entry,
                });
            }
            if &h.kind == b"moof" || at + h.size > self.clips[clip].plain_bytes as u64 {
                return Err(self.media_err(clip)(boxes::Mp4Error(
                    "no moov before the first fragment".into(),
                )));
            }
            at += h.size;
        }
    }

    /// Drops the files from the first one whose format differs from the first file's
    /// (a new run can bring another resolution or encoder configuration).
    fn keep_compatible(&mut self, first: &Init) -> Result<(), ExportError> {
        for k in 1..self.clips.len() {
            let (prev, this) = (&self.clips[k - 1], &self.clips[k]);
            let same_run = prev.run_start_ms.is_some() && prev.run_start_ms == this.run_start_ms;
            if same_run && this.init_bytes > 0 {
                continue; // one run is one stream: the same format
            }
            let init = self.read_init(k)?;
            if init.entry != first.entry || init.timescale != first.timescale {
                self.ends_early_at_ms = Some(this.start_ms);
                self.clips.truncate(k);
                break;
            }
        }
        Ok(())
    }

    /// Every fragment of file `clip`.
    fn fragments(&self, clip: usize, init: &Init) -> Result<Vec<FragmentAt>, ExportError> {
        let end = self.clips[clip].plain_bytes as u64;
        let mut at = init.bytes.len() as u64;
        let mut out = Vec::new();
        while at + 8 <= end {
            let h = self.header_at(clip, at)?;
            if &h.kind != b"moof" {
                at += h.size;
                continue;
            }
            let moof = self.read(clip, at, h.size)?;
            let fragment = boxes::parse_moof(&moof, init.defaults).map_err(self.media_err(clip))?;
            let mdat = self.header_at(clip, at + h.size)?;
            if &mdat.kind != b"mdat" {
                return Err(self.media_err(clip)(boxes::Mp4Error(
                    "moof not followed by mdat".into(),
                )));
            }
            let frag_end = at + h.size + mdat.size;
            out.push(FragmentAt {
                start: at,
                end: frag_end,
                fragment,
            });
            at = frag_end;
        }
        Ok(out)
    }

    fn place(&mut self, len: u64, piece: Piece) {
        if len == 0 {
            return;
        }
        self.pieces.push(Placed {
            out_start: self.total,
            len,
            piece,
        });
        self.total += len;
    }

    /// Lays out the init and every file's fragments; sets times and gaps.
    fn lay_out(&mut self, mut init: Init, from_ms: i64, to_ms: i64) -> Result<(), ExportError> {
        let n = self.clips.len();
        let timescale = init.timescale;
        let init_len = init.bytes.len() as u64;
        self.place(init_len, Piece::Bytes(Vec::new())); // filled in once the duration is known
        let mut cursor_ticks: u64 = 0;
        let mut prev_end_ms: Option<i64> = None;
        for k in 0..n {
            let clip = self.clips[k].clone();
            let at_media_ms = (cursor_ticks * 1000 / timescale as u64) as i64;
            let kept = if k == 0 || k == n - 1 || clip.init_bytes == 0 || clip.media_ticks <= 0 {
                let this_init = if k == 0 {
                    None
                } else {
                    Some(self.read_init(k)?)
                };
                let i = this_init.as_ref().unwrap_or(&init);
                let from = (k == 0).then_some(from_ms);
                let to = (k == n - 1).then_some(to_ms);
                self.lay_out_edge(k, i, from, to, cursor_ticks)?
            } else {
                let ticks = clip.media_ticks as u64;
                let body = clip.init_bytes as u64..clip.plain_bytes as u64;
                self.place(
                    body.end - body.start,
                    Piece::Fragments {
                        clip: k,
                        from: body.start,
                        shift: cursor_ticks as i64,
                    },
                );
                (clip.start_ms, clip.end_ms, ticks)
            };
            let (first_ms, last_ms, ticks) = kept;
            if k == 0 {
                self.start_ms = first_ms;
            }
            if let Some(prev) = prev_end_ms
                && first_ms > prev + TOUCH_MS
            {
                self.gaps.push(SkippedGap {
                    at_media_ms,
                    from_ms: prev,
                    to_ms: first_ms,
                });
            }
            prev_end_ms = Some(last_ms);
            self.end_ms = last_ms;
            cursor_ticks += ticks;
        }
        if cursor_ticks > u32::MAX as u64 {
            return Err(ExportError::TooLong(
                u32::MAX as u64 / timescale as u64 / 3600,
            ));
        }
        self.duration_ms = (cursor_ticks * 1000 / timescale as u64) as i64;
        let moov_at = moov_offset(&init.bytes);
        boxes::set_movie_duration(&mut init.bytes[moov_at..], self.duration_ms as u64);
        self.pieces[0].piece = Piece::Bytes(init.bytes);
        Ok(())
    }

    /// Lays out the samples of file `k` from the keyframe at or before `from_ms` (if
    /// given) to the first frame at or after `to_ms` (if given), on the output timeline at
    /// `cursor_ticks`. Returns (wall ms of the first kept frame, wall ms where the kept
    /// ones end, their ticks).
    fn lay_out_edge(
        &mut self,
        k: usize,
        init: &Init,
        from_ms: Option<i64>,
        to_ms: Option<i64>,
        cursor_ticks: u64,
    ) -> Result<(i64, i64, u64), ExportError> {
        let frags = self.fragments(k, init)?;
        let start_ms = self.clips[k].start_ms;
        let all = timed_samples(&frags, start_ms, init.timescale);
        let Some((start, end)) = kept_range(&all, from_ms, to_ms) else {
            return Ok((start_ms, start_ms, 0));
        };
        let first_dts = all[start].dts;
        let shift = cursor_ticks as i64 - first_dts as i64;
        let ticks: u64 = all[start..end]
            .iter()
            .map(|x| x.sample.duration as u64)
            .sum();
        let ts = init.timescale as i64;
        let last_ms = start_ms + ((first_dts + ticks) as i64 - all[0].pts) * 1000 / ts;
        self.place_samples(k, &frags, &all[start..end], shift);
        Ok((all[start].wall_ms, last_ms, ticks))
    }

    /// Places `kept` (consecutive samples of file `k`) fragment by fragment: whole
    /// fragments are copied (decode times moved by `shift`), cut ones rebuilt.
    fn place_samples(&mut self, k: usize, frags: &[FragmentAt], kept: &[TimedSample], shift: i64) {
        let mut i = 0;
        while i < kept.len() {
            let f = &frags[kept[i].fragment];
            let count = f.fragment.samples.len();
            let (si, take) = (kept[i].index, (kept.len() - i).min(count - kept[i].index));
            if si == 0 && take == count {
                self.place(
                    f.end - f.start,
                    Piece::Fragments {
                        clip: k,
                        from: f.start,
                        shift,
                    },
                );
            } else {
                let samples = &f.fragment.samples[si..si + take];
                let skip: u64 = f.fragment.samples[..si].iter().map(|s| s.size as u64).sum();
                let data: u64 = samples.iter().map(|s| s.size as u64).sum();
                let dts = (kept[i].dts as i64 + shift) as u64;
                let head = boxes::build_moof_and_mdat_header(
                    f.fragment.sequence,
                    f.fragment.track_id,
                    dts,
                    samples,
                );
                let data_from = f.start + f.fragment.data_offset + skip;
                self.place(head.len() as u64, Piece::Bytes(head));
                self.place(
                    data,
                    Piece::Raw {
                        clip: k,
                        from: data_from,
                    },
                );
            }
            i += take;
        }
    }

    /// `len` bytes of the export from `offset` (fewer at its end).
    pub fn read_at(&self, offset: u64, len: u64) -> Result<Vec<u8>, ExportError> {
        let end = (offset + len).min(self.total);
        let mut out = Vec::with_capacity(end.saturating_sub(offset) as usize);
        let first = self
            .pieces
            .partition_point(|p| p.out_start + p.len <= offset);
        for p in &self.pieces[first..] {
            if p.out_start >= end {
                break;
            }
            let a = offset.max(p.out_start) - p.out_start;
            let b = end.min(p.out_start + p.len) - p.out_start;
            match &p.piece {
                Piece::Bytes(v) => out.extend_from_slice(&v[a as usize..b as usize]),
                Piece::Raw { clip, from } => out.extend(self.read(*clip, from + a, b - a)?),
                Piece::Fragments { clip, from, shift } => {
                    out.extend(self.read_fragments(*clip, from + a, from + b, *shift)?)
                }
            }
        }
        Ok(out)
    }

    /// Bytes [a, b) of file `clip`, inside whole fragments, with every moof's decode time
    /// moved by `shift`.
    fn read_fragments(
        &self,
        clip: usize,
        a: u64,
        b: u64,
        shift: i64,
    ) -> Result<Vec<u8>, ExportError> {
        let mut data = self.read(clip, a, b - a)?;
        for (start, h) in self.boxes_over(clip, a, b, &data)? {
            if &h.kind != b"moof" {
                continue;
            }
            let end = start + h.size;
            let mut moof = if start >= a && end <= b {
                data[(start - a) as usize..(end - a) as usize].to_vec()
            } else {
                self.read(clip, start, h.size)?
            };
            boxes::shift_decode_time(&mut moof, shift).map_err(self.media_err(clip))?;
            let (lo, hi) = (start.max(a), end.min(b));
            data[(lo - a) as usize..(hi - a) as usize]
                .copy_from_slice(&moof[(lo - start) as usize..(hi - start) as usize]);
        }
        Ok(data)
    }

    /// The boxes of file `clip` that overlap [a, b), learning the layout as needed:
    /// headers inside `data` (bytes [a, b)) cost nothing, others one read each.
    fn boxes_over(
        &self,
        clip: usize,
        a: u64,
        b: u64,
        data: &[u8],
    ) -> Result<Vec<(u64, BoxHeader)>, ExportError> {
        let mut layouts = self.layouts.lock().unwrap_or_else(|p| p.into_inner());
        if !layouts.contains_key(&clip) && layouts.len() >= OPEN_FILES {
            layouts.clear();
        }
        let layout = layouts.entry(clip).or_insert_with(|| Layout {
            boxes: Vec::new(),
            known_end: self.clips[clip].init_bytes as u64,
        });
        let file_end = self.clips[clip].plain_bytes as u64;
        while layout.known_end < b && layout.known_end + 8 <= file_end {
            let at = layout.known_end;
            let inside = (at >= a && at + 16 <= b).then(|| &data[(at - a) as usize..]);
            let h = match inside {
                Some(bytes) => boxes::header(bytes).map_err(self.media_err(clip))?,
                None => None,
            };
            let h = match h {
                Some(h) => h,
                None => self.header_at(clip, at)?,
            };
            layout.boxes.push((at, h));
            layout.known_end = at + h.size;
        }
        let first = layout.boxes.partition_point(|(s, h)| s + h.size <= a);
        Ok(layout.boxes[first..]
            .iter()
            .take_while(|(s, _)| *s < b)
            .copied()
            .collect())
    }
}

/// One sample of a file with where it is and when: its fragment, its index there, its
/// decode and presentation time (ticks) and its wall-clock ms.
struct TimedSample {
    fragment: usize,
    index: usize,
    dts: u64,
    pts: i64,
    wall_ms: i64,
    sample: boxes::Sample,
}

/// Every sample of `frags`, timed: wall ms from the file's start `start_ms` (its first
/// frame's presentation).
fn timed_samples(frags: &[FragmentAt], start_ms: i64, timescale: u32) -> Vec<TimedSample> {
    let mut all = Vec::new();
    for (fragment, f) in frags.iter().enumerate() {
        let mut dts = f.fragment.decode_time;
        for (index, sample) in f.fragment.samples.iter().enumerate() {
            let pts = dts as i64 + sample.cto as i64;
            all.push(TimedSample {
                fragment,
                index,
                dts,
                pts,
                wall_ms: 0,
                sample: *sample,
            });
            dts += sample.duration as u64;
        }
    }
    let first_pts = all.first().map_or(0, |s| s.pts);
    for s in &mut all {
        s.wall_ms = start_ms + (s.pts - first_pts) * 1000 / timescale as i64;
    }
    all
}

/// The samples [start, end) to keep: from the last keyframe at or before `from_ms` (the
/// first keyframe when none is that early) to the first frame at or after `to_ms`.
fn kept_range(
    all: &[TimedSample],
    from_ms: Option<i64>,
    to_ms: Option<i64>,
) -> Option<(usize, usize)> {
    let start = match from_ms {
        Some(from) => all
            .iter()
            .rposition(|x| x.sample.is_sync() && x.wall_ms <= from)
            .or_else(|| all.iter().position(|x| x.sample.is_sync()))?,
        None => 0,
    };
    let end = match to_ms {
        Some(to) => all
            .iter()
            .position(|x| x.wall_ms >= to)
            .map_or(all.len(), |i| i + 1),
        None => all.len(),
    };
    (start < end).then_some((start, end))
}

/// Where `moov` starts in an init segment.
fn moov_offset(init: &[u8]) -> usize {
    boxes::children(init)
        .find(|(k, _, _)| k == b"moov")
        .map_or(0, |(_, at, _)| at)
}

/// The clips in time order without one that overlaps the one before (an event clip
/// recorded beside continuous segments when the mode changed).
fn without_overlaps(clips: Vec<ClipRecord>) -> Vec<ClipRecord> {
    let mut out: Vec<ClipRecord> = Vec::with_capacity(clips.len());
    for c in clips {
        if out.last().is_none_or(|p| c.start_ms >= p.end_ms - TOUCH_MS) {
            out.push(c);
        }
    }
    out
}
