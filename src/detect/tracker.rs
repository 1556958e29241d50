//! Per-camera IoU tracker: turns each frame's detections into events. A detection joins
//! the track of the same label whose last box overlaps it most (IoU ≥ `MATCH_IOU`);
//! otherwise it starts a track. A track's event starts the first time its score reaches
//! the observation's trigger score, keeps the best score and box, and ends when the track
//! has gone unseen for `event_gap_ms` (the end time is when it was last seen). An object
//! that reappears within `dedup_window_ms` of its event's end, near where it was last seen,
//! continues that event instead of starting a new one.
//!
//! Motion (the gate's box around what changed, label `motion`) is one track per camera:
//! every motion observation continues it whatever the overlap, and its event's box grows
//! to the union of the boxes seen, so it shows where things moved.
//!
//! Times are wall-clock milliseconds supplied by the caller, so tests can drive it.

/// Normalised box: x1, y1, x2, y2 in 0..1 of the picture.
pub type NormBox = [f32; 4];

/// Minimum overlap for a detection to continue a track.
const MATCH_IOU: f32 = 0.3;

/// The label of a motion-only observation (the gate's box around what changed).
pub const MOTION_LABEL: &str = crate::store::review::MOTION_LABEL;

/// The smallest box holding both.
fn union(a: &NormBox, b: &NormBox) -> NormBox {
    [
        a[0].min(b[0]),
        a[1].min(b[1]),
        a[2].max(b[2]),
        a[3].max(b[3]),
    ]
}

#[derive(Debug, Clone)]
pub struct Observation {
    pub label: String,
    pub score: f32,
    pub bbox: NormBox,
    /// Score at which this observation starts an event.
    pub trigger_score: f32,
}

/// An event as the tracker knows it; `key` is unique per tracker.
#[derive(Debug, Clone, PartialEq)]
pub struct EventState {
    pub key: u64,
    pub label: String,
    pub start_ms: i64,
    pub last_seen_ms: i64,
    pub end_ms: Option<i64>,
    pub max_score: f32,
    /// The box at the best score.
    pub best_box: NormBox,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Change {
    Start(EventState),
    /// Seen again. `improved`: a new best score (and box). `resumed`: it had ended and
    /// the dedup window brought it back.
    Update {
        event: EventState,
        improved: bool,
        resumed: bool,
    },
    End(EventState),
}

struct Track {
    label: String,
    bbox: NormBox,
    last_seen_ms: i64,
    event: Option<EventState>,
}

pub struct Tracker {
    event_gap_ms: i64,
    dedup_window_ms: i64,
    tracks: Vec<Track>,
    /// Ended events still inside the dedup window, with the box they were last seen at.
    recent: Vec<(EventState, NormBox)>,
    next_key: u64,
}

pub fn iou(a: &NormBox, b: &NormBox) -> f32 {
    let w = (a[2].min(b[2]) - a[0].max(b[0])).max(0.0);
    let h = (a[3].min(b[3]) - a[1].max(b[1])).max(0.0);
    let inter = w * h;
    let area = |r: &NormBox| (r[2] - r[0]).max(0.0) * (r[3] - r[1]).max(0.0);
    let union = area(a) + area(b) - inter;
    if union <= 0.0 { 0.0 } else { inter / union }
}

/// Same object after a gap: overlapping, or standing within one box size of where it was.
fn near(last: &NormBox, now: &NormBox) -> bool {
    if iou(last, now) >= 0.2 {
        return true;
    }
    let foot = |b: &NormBox| ((b[0] + b[2]) / 2.0, b[3]);
    let (a, b) = (foot(last), foot(now));
    let reach = (last[2] - last[0]).max(last[3] - last[1]);
    ((a.0 - b.0).powi(2) + (a.1 - b.1).powi(2)).sqrt() <= reach
}

impl Tracker {
    pub fn new(event_gap_ms: i64, dedup_window_ms: i64) -> Self {
        Self {
            event_gap_ms,
            dedup_window_ms,
            tracks: Vec::new(),
            recent: Vec::new(),
            next_key: 1,
        }
    }

    /// Events open now.
    pub fn open_events(&self) -> impl Iterator<Item = &EventState> {
        self.tracks.iter().filter_map(|t| t.event.as_ref())
    }

    /// One analysed frame at `now_ms` with its detections (possibly none).
    pub fn update(&mut self, now_ms: i64, observations: &[Observation]) -> Vec<Change> {
        let mut changes = Vec::new();
        let window = self.dedup_window_ms;
        self.recent
            .retain(|(ev, _)| now_ms - ev.end_ms.unwrap_or(now_ms) <= window);
        // Greedy matching, best overlap first.
        let mut pairs: Vec<(f32, usize, usize)> = Vec::new();
        for (oi, o) in observations.iter().enumerate() {
            for (ti, t) in self.tracks.iter().enumerate() {
                let v = iou(&t.bbox, &o.bbox);
                if t.label == o.label && (v >= MATCH_IOU || o.label == MOTION_LABEL) {
                    pairs.push((v, oi, ti));
                }
            }
        }
        pairs.sort_by(|a, b| b.0.total_cmp(&a.0));
        let mut obs_used = vec![false; observations.len()];
        let mut track_used = vec![false; self.tracks.len()];
        for (_, oi, ti) in pairs {
            if obs_used[oi] || track_used[ti] {
                continue;
            }
            obs_used[oi] = true;
            track_used[ti] = true;
            let o = &observations[oi];
            let t = &mut self.tracks[ti];
            t.bbox = o.bbox;
            t.last_seen_ms = now_ms;
            match t.event.as_mut() {
                Some(ev) => {
                    ev.last_seen_ms = now_ms;
                    let improved = o.score > ev.max_score;
                    if improved {
                        ev.max_score = o.score;
                        ev.best_box = o.bbox;
                    } else if o.label == MOTION_LABEL {
                        ev.best_box = union(&ev.best_box, &o.bbox);
                    }
                    changes.push(Change::Update {
                        event: ev.clone(),
                        improved,
                        resumed: false,
                    });
                }
                None if o.score >= o.trigger_score => {
                    let (ev, change) = self.begin(now_ms, o);
                    self.tracks[ti].event = Some(ev);
                    changes.push(change);
                }
                None => {}
            }
        }
        for (oi, o) in observations.iter().enumerate() {
            if obs_used[oi] {
                continue;
            }
            let mut track = Track {
                label: o.label.clone(),
                bbox: o.bbox,
                last_seen_ms: now_ms,
                event: None,
            };
            if o.score >= o.trigger_score {
                let (ev, change) = self.begin(now_ms, o);
                track.event = Some(ev);
                changes.push(change);
            }
            self.tracks.push(track);
        }
        self.expire(now_ms, &mut changes);
        changes
    }

    /// Ends every open event (shutdown).
    pub fn finish_all(&mut self) -> Vec<Change> {
        let mut changes = Vec::new();
        for t in self.tracks.drain(..) {
            if let Some(mut ev) = t.event {
                ev.end_ms = Some(ev.last_seen_ms);
                changes.push(Change::End(ev));
            }
        }
        changes
    }

    /// A new event for `o`, or the continuation of a recent one of the same object.
    fn begin(&mut self, now_ms: i64, o: &Observation) -> (EventState, Change) {
        let recent = self
            .recent
            .iter()
            .position(|(ev, last)| ev.label == o.label && near(last, &o.bbox));
        if let Some(i) = recent {
            let (mut ev, _) = self.recent.remove(i);
            ev.end_ms = None;
            ev.last_seen_ms = now_ms;
            let improved = o.score > ev.max_score;
            if improved {
                ev.max_score = o.score;
                ev.best_box = o.bbox;
            }
            let change = Change::Update {
                event: ev.clone(),
                improved,
                resumed: true,
            };
            return (ev, change);
        }
        let ev = EventState {
            key: self.next_key,
            label: o.label.clone(),
            start_ms: now_ms,
            last_seen_ms: now_ms,
            end_ms: None,
            max_score: o.score,
            best_box: o.bbox,
        };
        self.next_key += 1;
        (ev.clone(), Change::Start(ev))
    }

    fn expire(&mut self, now_ms: i64, changes: &mut Vec<Change>) {
        let gap = self.event_gap_ms;
        let mut kept = Vec::with_capacity(self.tracks.len());
        for t in self.tracks.drain(..) {
            if now_ms - t.last_seen_ms <= gap {
                kept.push(t);
                continue;
            }
            if let Some(mut ev) = t.event {
                ev.end_ms = Some(ev.last_seen_ms);
                changes.push(Change::End(ev.clone()));
                self.recent.push((ev, t.bbox));
            }
        }
        self.tracks = kept;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn person(x: f32, score: f32) -> Observation {
        Observation {
            label: "person".into(),
            score,
            bbox: [x, 0.2, x + 0.1, 0.6],
            trigger_score: 0.5,
        }
    }

    fn starts(c: &[Change]) -> usize {
        c.iter().filter(|c| matches!(c, Change::Start(_))).count()
    }

    #[test]
    fn a_walking_person_is_one_event_that_ends_after_the_gap() {
        let mut t = Tracker::new(2000, 10_000);
        let mut all = Vec::new();
        for i in 0..20 {
            all.extend(t.update(
                i * 200,
                &[person(0.1 + i as f32 * 0.01, 0.6 + i as f32 * 0.01)],
            ));
        }
        assert_eq!(starts(&all), 1);
        let ev = t.open_events().next().unwrap().clone();
        assert!((ev.max_score - 0.79).abs() < 1e-4);
        assert!(t.update(5000, &[]).is_empty()); // 1.2 s unseen: still open
        let end = t.update(6000, &[]);
        assert!(matches!(&end[..], [Change::End(e)] if e.end_ms == Some(3800)));
    }

    #[test]
    fn motion_is_one_event_whose_box_grows_to_where_things_moved() {
        let mut t = Tracker::new(2000, 10_000);
        let moved = |x: f32| Observation {
            label: MOTION_LABEL.into(),
            score: 1.0,
            bbox: [x, 0.4, x + 0.05, 0.5],
            trigger_score: 0.0,
        };
        let mut all = Vec::new();
        // Jumps that overlap nothing still continue the one motion event.
        for (i, x) in [0.1, 0.5, 0.8].into_iter().enumerate() {
            all.extend(t.update(i as i64 * 200, &[moved(x)]));
        }
        assert_eq!(starts(&all), 1);
        let ev = t.open_events().next().unwrap().clone();
        assert_eq!(ev.best_box, [0.1, 0.4, 0.85, 0.5]);
    }

    #[test]
    fn low_scores_track_without_an_event_until_they_reach_the_trigger() {
        let mut t = Tracker::new(2000, 10_000);
        assert!(t.update(0, &[person(0.1, 0.45)]).is_empty());
        let c = t.update(200, &[person(0.11, 0.55)]);
        assert_eq!(starts(&c), 1);
    }

    #[test]
    fn dedup_window_continues_the_event_and_two_people_are_two_events() {
        let mut t = Tracker::new(1000, 10_000);
        t.update(0, &[person(0.1, 0.7)]);
        t.update(2000, &[]); // ended
        let back = t.update(4000, &[person(0.12, 0.8)]);
        assert!(
            matches!(&back[..], [Change::Update { resumed: true, improved: true, event }] if event.key == 1)
        );
        let two = t.update(4200, &[person(0.12, 0.8), person(0.7, 0.8)]);
        assert_eq!(starts(&two), 1);
        // After the window, the same place is a new event.
        t.update(6000, &[]);
        let later = t.update(30_000, &[person(0.12, 0.8)]);
        assert_eq!(starts(&later), 1);
    }
}
