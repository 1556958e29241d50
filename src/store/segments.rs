//! Reading continuous recording back: the clips and segments of a camera over a window of
//! wall time, and the timeline built from them: spans recorded without a gap (a run of
//! segments, or event clips that follow each other), the gaps between them, and the
//! events in the window.

use super::{ClipKind, ClipRecord, EventRecord, Store, StoreError, db};
use rusqlite::named_params;

// The statements this file runs (named parameters, bound with named_params!).
/// Every clip and segment of a camera that overlaps [from_ms, to_ms), in time order.
/// (No clip is longer than a day: record.max_clip_length and segment_seconds say so.)
const MEDIA_OVERLAPPING: &str = "WHERE camera_id = :camera AND damage = ''
    AND start_ms < :to_ms AND start_ms > :from_ms - 86400000 AND end_ms > :from_ms
    ORDER BY start_ms, id";

/// Clips closer than this to each other count as one span (ms rounding of their times).
const TOUCH_MS: i64 = 250;

/// Recorded wall time without a gap.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Span {
    pub start_ms: i64,
    pub end_ms: i64,
    pub kind: ClipKind,
    /// Clips or segments in it.
    pub pieces: usize,
}

/// What `GET /api/timeline` answers.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Timeline {
    pub camera: String,
    pub from_ms: i64,
    pub to_ms: i64,
    pub spans: Vec<Span>,
    /// Unrecorded [start, end) pieces of the window, up to now.
    pub gaps: Vec<(i64, i64)>,
    pub events: Vec<EventRecord>,
}

/// Most events a timeline lists.
pub const TIMELINE_EVENT_LIMIT: u32 = 5000;

impl Store {
    /// Every servable clip and segment of `camera` overlapping [from_ms, to_ms), in time
    /// order.
    pub fn media_overlapping(
        &self,
        camera: &str,
        from_ms: i64,
        to_ms: i64,
    ) -> Result<Vec<ClipRecord>, StoreError> {
        let sql = format!("{} {}", db::SELECT_CLIP, MEDIA_OVERLAPPING);
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(&sql)?;
        let rows = stmt.query_map(
            named_params! {":camera": camera, ":from_ms": from_ms, ":to_ms": to_ms},
            ClipRecord::from_row,
        )?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// The timeline of `camera` over [from_ms, to_ms); gaps only up to `now_ms`.
    pub fn timeline(
        &self,
        camera: &str,
        from_ms: i64,
        to_ms: i64,
        now_ms: i64,
    ) -> Result<Timeline, StoreError> {
        let clips = self.media_overlapping(camera, from_ms, to_ms)?;
        let spans = spans_of(&clips, from_ms, to_ms);
        let gaps = gaps_between(&spans, from_ms, to_ms.min(now_ms));
        let events = self.events_overlapping(camera, from_ms, to_ms, TIMELINE_EVENT_LIMIT)?;
        Ok(Timeline {
            camera: camera.to_string(),
            from_ms,
            to_ms,
            spans,
            gaps,
            events,
        })
    }
}

/// Whether `next` continues `prev` without a gap: segments of one run, or clips that
/// touch.
fn continues(prev: &ClipRecord, next: &ClipRecord) -> bool {
    match (prev.kind, next.kind) {
        (ClipKind::Segment, ClipKind::Segment) => prev.run_start_ms == next.run_start_ms,
        _ => next.start_ms <= prev.end_ms + TOUCH_MS,
    }
}

/// Spans of `clips` (time-ordered), clipped to [from_ms, to_ms).
pub fn spans_of(clips: &[ClipRecord], from_ms: i64, to_ms: i64) -> Vec<Span> {
    let mut spans: Vec<Span> = Vec::new();
    let mut prev: Option<&ClipRecord> = None;
    for c in clips {
        match (prev, spans.last_mut()) {
            (Some(p), Some(span)) if continues(p, c) => {
                span.end_ms = span.end_ms.max(c.end_ms);
                span.pieces += 1;
            }
            _ => spans.push(Span {
                start_ms: c.start_ms,
                end_ms: c.end_ms,
                kind: c.kind,
                pieces: 1,
            }),
        }
        prev = Some(c);
    }
    for s in &mut spans {
        s.start_ms = s.start_ms.max(from_ms);
        s.end_ms = s.end_ms.min(to_ms);
    }
    spans.retain(|s| s.end_ms > s.start_ms);
    spans
}

/// The pieces of [from_ms, until_ms) no span covers.
pub fn gaps_between(spans: &[Span], from_ms: i64, until_ms: i64) -> Vec<(i64, i64)> {
    let mut gaps = Vec::new();
    let mut cursor = from_ms;
    for s in spans {
        if s.start_ms > cursor {
            gaps.push((cursor, s.start_ms.min(until_ms)));
        }
        cursor = cursor.max(s.end_ms);
    }
    if cursor < until_ms {
        gaps.push((cursor, until_ms));
    }
    gaps.retain(|(a, b)| b > a);
    gaps
}
