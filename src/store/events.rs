//! Detection events in the index, and their snapshots (a JPEG with the boxes drawn, sealed
//! like every other file under recordings_dir, as
//! `camera/date/<start_ms>[-<end_ms>]-event<id>-<label>-<tag>.jpg.sntx`; the end is put in
//! the name, by a rename, when the event ends, so a lost index gets the event's span back
//! and with it the same review items).
//! An event is inserted when it starts, updated as its score improves and when it ends,
//! and linked to the clip that recorded it when that clip is indexed (writer.rs). It is
//! deleted with its clip, or by retention's age limit when no clip holds it.

use super::sealed::{create_sealed, seal_and_rename};
use super::{Store, StoreError, db, io_err, keys, not_found_as};
use rusqlite::named_params;

// The statements this file runs (named parameters, bound with named_params!).
const INSERT_EVENT: &str = "INSERT INTO events (camera_id, label, start_ms, end_ms, max_score, box,
    zones) VALUES (:camera_id, :label, :start_ms, NULL, :max_score, :box, :zones)";
const UPDATE_EVENT: &str =
    "UPDATE events SET end_ms = :end_ms, max_score = :max_score, box = :box WHERE id = :id";
const SELECT_EVENT: &str = "SELECT id, camera_id, label, start_ms, end_ms, max_score, box,
    clip_id, snapshot_path IS NOT NULL AS has_snapshot, acknowledged, keep, scene_change,
    review_id, zones FROM events";
const SET_SCENE_CHANGE: &str = "UPDATE events SET scene_change = 1 WHERE id = :id";
/// Events of a camera whose time overlaps [from_ms, to_ms), oldest first.
const EVENTS_OVERLAPPING: &str = "WHERE camera_id = :camera AND start_ms < :to_ms
    AND COALESCE(end_ms, 9000000000000000) >= :from_ms AND start_ms >= :from_ms - 86400000
    ORDER BY start_ms, id LIMIT :limit";
const SET_EVENT_KEEP: &str = "UPDATE events SET keep = :keep WHERE id = :id";
/// Events of a camera without a clip, ended, whose footage (with pre- and post-roll) is
/// all gone: older than the camera's oldest segment.
const DELETE_EVENTS_WITHOUT_FOOTAGE: &str = "DELETE FROM events WHERE clip_id IS NULL
    AND end_ms IS NOT NULL AND keep = 0
    AND end_ms + :post_ms < (SELECT MIN(s.start_ms) FROM clips s
        WHERE s.kind = 'segment' AND s.camera_id = events.camera_id)
    RETURNING snapshot_path";
const EVENT_BY_ID: &str = "WHERE id = :id";
/// The event that stands for a review item: the best-scored object with a snapshot.
const LEAD_EVENT_OF_ITEM: &str = "WHERE review_id = :id
    ORDER BY snapshot_path IS NULL, label = 'motion', max_score DESC, id LIMIT 1";
const EVENTS_OF_ITEM: &str = "WHERE review_id = :id ORDER BY start_ms, id LIMIT :limit";
const EVENTS_MATCHING: &str = "WHERE (:camera IS NULL OR camera_id = :camera)
    AND (:label IS NULL OR label = :label) AND start_ms >= :since_ms AND start_ms < :until_ms
    ORDER BY start_ms DESC, id DESC LIMIT :limit";
/// Events of a camera that started in [from_ms, to_ms) (events_by_camera_start).
const COUNT_CAMERA_EVENTS: &str = "SELECT COUNT(*) AS events FROM events WHERE camera_id = :camera
    AND start_ms >= :from_ms AND start_ms < :to_ms";
const SET_EVENT_SNAPSHOT: &str =
    "UPDATE events SET snapshot_path = :path, snapshot_bytes = :bytes WHERE id = :id";
const ACKNOWLEDGE_EVENT: &str = "UPDATE events SET acknowledged = 1 WHERE id = :id";
const SELECT_UNLINKED_SNAPSHOTS_BEFORE: &str = "SELECT snapshot_path FROM events
    WHERE clip_id IS NULL AND keep = 0 AND start_ms < :before_ms AND snapshot_path IS NOT NULL";
const DELETE_UNLINKED_EVENTS_BEFORE: &str =
    "DELETE FROM events WHERE clip_id IS NULL AND keep = 0 AND start_ms < :before_ms";

/// One row of the events table, as the API shows it.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct EventRecord {
    pub id: i64,
    pub camera_id: String,
    pub label: String,
    pub start_ms: i64,
    /// None while the event is open.
    pub end_ms: Option<i64>,
    pub max_score: f64,
    /// Best box, normalised x1, y1, x2, y2.
    pub bbox: [f32; 4],
    pub clip_id: Option<i64>,
    pub has_snapshot: bool,
    pub acknowledged: bool,
    /// Marked keep: its footage is never deleted for its age, and goes last under pressure.
    pub keep: bool,
    /// A motion event during which the whole picture changed (a light, the camera moved).
    pub scene_change: bool,
    /// The review item it belongs to (review.rs).
    pub review_id: Option<i64>,
    /// The camera's zones the object stood in when it started.
    pub zones: Vec<String>,
}

impl EventRecord {
    fn from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Self> {
        let text: String = r.get("box")?;
        Ok(Self {
            id: r.get("id")?,
            camera_id: r.get("camera_id")?,
            label: r.get("label")?,
            start_ms: r.get("start_ms")?,
            end_ms: r.get("end_ms")?,
            max_score: r.get("max_score")?,
            bbox: parse_box(&text),
            clip_id: r.get("clip_id")?,
            has_snapshot: r.get("has_snapshot")?,
            acknowledged: r.get::<_, i64>("acknowledged")? != 0,
            keep: r.get::<_, i64>("keep")? != 0,
            scene_change: r.get::<_, i64>("scene_change")? != 0,
            review_id: r.get("review_id")?,
            zones: r
                .get::<_, String>("zones")?
                .split(',')
                .filter(|z| !z.is_empty())
                .map(str::to_string)
                .collect(),
        })
    }
}

/// Where an event's snapshot lives, relative to recordings_dir (see the module doc).
fn snapshot_rel(ev: &EventRecord, tag: u32) -> String {
    let label: String = ev
        .label
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .take(32)
        .collect();
    let end = ev.end_ms.map(|e| format!("-{e}")).unwrap_or_default();
    format!(
        "{}/{}/{}{end}-event{}-{label}-{tag:08x}.jpg.sntx",
        ev.camera_id,
        crate::base::clock::utc_date(ev.start_ms),
        ev.start_ms,
        ev.id
    )
}

pub(crate) fn box_text(b: &[f32; 4]) -> String {
    format!("{:.4},{:.4},{:.4},{:.4}", b[0], b[1], b[2], b[3])
}

fn parse_box(s: &str) -> [f32; 4] {
    let mut out = [0.0; 4];
    for (slot, v) in out.iter_mut().zip(s.split(',')) {
        *slot = v.trim().parse().unwrap_or(0.0);
    }
    out
}

/// Which events to list: newest first.
#[derive(Debug, Clone, Default)]
pub struct EventQuery {
    pub camera: Option<String>,
    pub label: Option<String>,
    /// Started in [since_ms, until_ms).
    pub since_ms: Option<i64>,
    pub until_ms: Option<i64>,
    pub limit: Option<u32>,
}

impl Store {
    /// Marks motion event `id` as a scene change.
    pub fn mark_scene_change(&self, id: i64) -> Result<(), StoreError> {
        self.with_room(|c| c.execute(SET_SCENE_CHANGE, named_params! {":id": id}))?;
        Ok(())
    }

    /// A new, open event outside any zone; returns its id.
    pub fn insert_event(
        &self,
        camera_id: &str,
        label: &str,
        start_ms: i64,
        score: f32,
        bbox: &[f32; 4],
    ) -> Result<i64, StoreError> {
        self.insert_event_in(camera_id, label, start_ms, score, bbox, &[])
    }

    /// A new, open event whose object stands in `zones`, placed in a review item
    /// (review.rs) in the same transaction; returns its id.
    pub fn insert_event_in(
        &self,
        camera_id: &str,
        label: &str,
        start_ms: i64,
        score: f32,
        bbox: &[f32; 4],
        zones: &[String],
    ) -> Result<i64, StoreError> {
        self.check_running()?;
        let policy = self.review_policy();
        let zones = zones.join(",");
        self.with_room(|conn| {
            let tx = conn.unchecked_transaction()?;
            tx.execute(
                db::INSERT_CAMERA_IF_MISSING,
                named_params! {":id": camera_id},
            )?;
            tx.execute(
                INSERT_EVENT,
                named_params! {
                    ":camera_id": camera_id,
                    ":label": label,
                    ":start_ms": start_ms,
                    ":max_score": score as f64,
                    ":box": box_text(bbox),
                    ":zones": zones,
                },
            )?;
            let id = tx.last_insert_rowid();
            let placed = super::review::PlacedEvent {
                id,
                camera: camera_id,
                label,
                start_ms,
                zones: &zones,
            };
            super::review::place_event(&tx, &policy, &placed)?;
            retier_for(&tx, &self.retention(), camera_id, start_ms, None, None)?;
            tx.commit()?;
            Ok(id)
        })
    }

    /// New best score and box, and the end time (None: open again).
    pub fn update_event(
        &self,
        id: i64,
        end_ms: Option<i64>,
        score: f32,
        bbox: &[f32; 4],
    ) -> Result<(), StoreError> {
        let n = self.with_room(|conn| {
            conn.execute(
                UPDATE_EVENT,
                named_params! {
                    ":id": id,
                    ":end_ms": end_ms,
                    ":max_score": score as f64,
                    ":box": box_text(bbox),
                },
            )
        })?;
        if n == 0 {
            return Err(StoreError::NotFound(id));
        }
        if end_ms.is_some() {
            self.stamp_snapshot_end(id)?;
        }
        self.retier_event(id)
    }

    /// Recomputes the retention tier of the footage of event `id` (its segments, or its
    /// clip) after the event changed.
    fn retier_event(&self, id: i64) -> Result<(), StoreError> {
        let ev = self.event(id)?;
        let policy = self.retention();
        self.with_room(|conn| {
            retier_for(
                conn,
                &policy,
                &ev.camera_id,
                ev.start_ms,
                ev.end_ms,
                ev.clip_id,
            )
        })
    }

    /// Marks event `id` keep (or not): its footage then outlives the age limits.
    pub fn set_event_keep(&self, id: i64, keep: bool) -> Result<(), StoreError> {
        let n = self.conn().execute(
            SET_EVENT_KEEP,
            named_params! {":id": id, ":keep": keep as i64},
        )?;
        if n == 0 {
            return Err(StoreError::NotFound(id));
        }
        self.retier_event(id)
    }

    /// Events of `camera` that overlap [from_ms, to_ms), oldest first, at most `limit`.
    pub fn events_overlapping(
        &self,
        camera: &str,
        from_ms: i64,
        to_ms: i64,
        limit: u32,
    ) -> Result<Vec<EventRecord>, StoreError> {
        let sql = format!("{} {}", SELECT_EVENT, EVENTS_OVERLAPPING);
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(&sql)?;
        let rows = stmt.query_map(
            named_params! {":camera": camera, ":from_ms": from_ms, ":to_ms": to_ms, ":limit": limit},
            EventRecord::from_row,
        )?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Deletes the ended events (not marked keep) of continuous cameras whose footage is
    /// all gone, with their snapshots. Returns how many.
    pub(crate) fn prune_events_without_footage(&self) -> Result<usize, StoreError> {
        let (_, post_ms) = self.retention().event_margin_ms;
        let paths = {
            let mut conn = self.conn();
            let tx = conn.transaction()?;
            let mut paths: Vec<Option<String>> = Vec::new();
            {
                let mut stmt = tx.prepare(DELETE_EVENTS_WITHOUT_FOOTAGE)?;
                let rows = stmt.query_map(named_params! {":post_ms": post_ms}, |r| {
                    r.get("snapshot_path")
                })?;
                for p in rows {
                    paths.push(p?);
                }
            }
            let paths: Vec<String> = paths.into_iter().flatten().collect();
            for p in &paths {
                tx.execute(db::INSERT_GARBAGE, named_params! {":path": p})?;
            }
            tx.commit()?;
            paths
        };
        let n = paths.len();
        self.collect_garbage(&paths)?;
        Ok(n)
    }

    /// The event that stands for review item `id` (its snapshot is the item's).
    pub fn review_lead_event(&self, id: i64) -> Result<EventRecord, StoreError> {
        let sql = format!("{SELECT_EVENT} {LEAD_EVENT_OF_ITEM}");
        self.conn()
            .query_row(&sql, named_params! {":id": id}, EventRecord::from_row)
            .map_err(|e| not_found_as(id, e))
    }

    /// The events of review item `id`, oldest first, at most `limit`.
    pub fn review_item_events(&self, id: i64, limit: u32) -> Result<Vec<EventRecord>, StoreError> {
        let sql = format!("{SELECT_EVENT} {EVENTS_OF_ITEM}");
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(&sql)?;
        let rows = stmt.query_map(
            named_params! {":id": id, ":limit": limit},
            EventRecord::from_row,
        )?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    pub fn event(&self, id: i64) -> Result<EventRecord, StoreError> {
        let sql = format!("{} {}", SELECT_EVENT, EVENT_BY_ID);
        self.conn()
            .query_row(&sql, named_params! {":id": id}, EventRecord::from_row)
            .map_err(|e| not_found_as(id, e))
    }

    pub fn events(&self, q: &EventQuery) -> Result<Vec<EventRecord>, StoreError> {
        let sql = format!("{} {}", SELECT_EVENT, EVENTS_MATCHING);
        let conn = self.conn();
        let mut stmt = conn.prepare(&sql)?;
        let rows = stmt.query_map(
            named_params! {
                ":camera": q.camera,
                ":label": q.label,
                ":since_ms": q.since_ms.unwrap_or(i64::MIN),
                ":until_ms": q.until_ms.unwrap_or(i64::MAX),
                ":limit": q.limit.unwrap_or(1000),
            },
            EventRecord::from_row,
        )?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Seals `jpeg` as the event's snapshot, replacing an earlier one.
    pub fn set_event_snapshot(&self, id: i64, jpeg: &[u8]) -> Result<(), StoreError> {
        self.check_running()?;
        let ev = self.event(id)?;
        let rel_dir = format!(
            "{}/{}",
            ev.camera_id,
            crate::base::clock::utc_date(ev.start_ms)
        );
        let dir = self.recordings_dir().join(&rel_dir);
        keys::create_private_dir(&dir).map_err(io_err(&dir))?;
        let mut tag = [0u8; 4];
        getrandom::getrandom(&mut tag)
            .map_err(|e| io_err(&dir)(std::io::Error::other(e.to_string())))?;
        // The label is in the name so a lost index gets the event back (sweep.rs).
        let rel = snapshot_rel(&ev, u32::from_be_bytes(tag));
        let path = self.recordings_dir().join(&rel);
        let tmp = self.recordings_dir().join(format!("{rel}.partial"));
        let written = create_sealed(self, &tmp).and_then(|mut sealer| {
            sealer.write(jpeg).map_err(io_err(&tmp))?;
            seal_and_rename(self, sealer, &tmp, &path)
        });
        let bytes = written.inspect_err(|_| {
            let _ = std::fs::remove_file(&tmp);
        })?;
        let old: Option<String> = {
            let mut conn = self.conn();
            let tx = conn.transaction()?;
            let old: Option<String> =
                tx.query_row(db::SELECT_EVENT_SNAPSHOT, named_params! {":id": id}, |r| {
                    r.get("snapshot_path")
                })?;
            if let Some(o) = &old {
                tx.execute(db::INSERT_GARBAGE, named_params! {":path": o})?;
            }
            tx.execute(
                SET_EVENT_SNAPSHOT,
                named_params! {":id": id, ":path": rel, ":bytes": bytes as i64},
            )?;
            tx.commit()?;
            old
        };
        if let Some(o) = old {
            self.collect_garbage(&[o])?;
        }
        Ok(())
    }

    /// Renames the snapshot of event `id`, which has ended, so its name holds the end.
    /// A failure is logged and changes nothing: the name only matters to a lost index.
    fn stamp_snapshot_end(&self, id: i64) -> Result<(), StoreError> {
        let ev = self.event(id)?;
        let old: Option<String> =
            self.conn()
                .query_row(db::SELECT_EVENT_SNAPSHOT, named_params! {":id": id}, |r| {
                    r.get("snapshot_path")
                })?;
        let Some(old) = old else {
            return Ok(());
        };
        let Some(tag) = old
            .strip_suffix(".jpg.sntx")
            .and_then(|n| n.rsplit('-').next())
            .and_then(|t| u32::from_str_radix(t, 16).ok())
        else {
            return Ok(());
        };
        let new = snapshot_rel(&ev, tag);
        if new == old {
            return Ok(());
        }
        let (from, to) = (
            self.recordings_dir().join(&old),
            self.recordings_dir().join(&new),
        );
        if let Err(e) = std::fs::rename(&from, &to) {
            tracing::warn!("event {id}: snapshot {old} not renamed: {e}");
            return Ok(());
        }
        if let Some(dir) = to.parent() {
            super::sealed::fsync_dir(self, dir)?;
        }
        self.conn().execute(
            "UPDATE events SET snapshot_path = :path WHERE id = :id",
            named_params! {":id": id, ":path": new},
        )?;
        Ok(())
    }

    /// How many events of `camera` started in [from_ms, to_ms).
    pub fn count_camera_events(
        &self,
        camera: &str,
        from_ms: i64,
        to_ms: i64,
    ) -> Result<i64, StoreError> {
        Ok(self.conn().query_row(
            COUNT_CAMERA_EVENTS,
            named_params! {":camera": camera, ":from_ms": from_ms, ":to_ms": to_ms},
            |r| r.get("events"),
        )?)
    }

    /// The event's snapshot JPEG, whole (small: one frame).
    pub fn event_snapshot_jpeg(&self, id: i64) -> Result<Vec<u8>, StoreError> {
        let reader = self.open_event_snapshot(id)?;
        Ok(reader.read_at(0, reader.plain_len())?)
    }

    pub fn open_event_snapshot(&self, id: i64) -> Result<super::OpenReader, StoreError> {
        // An event that ends meanwhile has its snapshot renamed to carry the end, the file
        // first and its row after (stamp_snapshot_end): read the name again a few times.
        let mut tries = 0;
        let file = loop {
            let path = self.recordings_dir().join(self.event_snapshot_rel(id)?);
            match std::fs::File::open(&path) {
                Ok(f) => break f,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound && tries < 5 => {
                    tries += 1;
                    std::thread::sleep(std::time::Duration::from_millis(20));
                }
                Err(e) => return Err(io_err(&path)(e)),
            }
        };
        Ok(super::OpenReader::open(file, &self.inner.key)?)
    }

    /// The snapshot file of event `id`, relative to the recordings directory.
    fn event_snapshot_rel(&self, id: i64) -> Result<String, StoreError> {
        let rel: Option<String> = self
            .conn()
            .query_row(db::SELECT_EVENT_SNAPSHOT, named_params! {":id": id}, |r| {
                r.get("snapshot_path")
            })
            .map_err(|e| not_found_as(id, e))?;
        rel.ok_or(StoreError::NotFound(id))
    }

    /// Acknowledges event `id` for everyone, and marks its review item reviewed by `user`.
    pub fn acknowledge_event(&self, id: i64, user: &str, now_ms: i64) -> Result<(), StoreError> {
        let n = self
            .conn()
            .execute(ACKNOWLEDGE_EVENT, named_params! {":id": id})?;
        if n == 0 {
            return Err(StoreError::NotFound(id));
        }
        self.mark_event_item_reviewed(id, user, now_ms)?;
        self.retier_event(id)
    }

    /// Recomputes the tiers of the footage of events `ids`.
    pub(crate) fn retier_events(&self, ids: &[i64]) -> Result<(), StoreError> {
        for &id in ids {
            self.retier_event(id)?;
        }
        Ok(())
    }

    /// Deletes events without a clip that started before `before_ms` (retention's age
    /// limit; events with a clip go with it). Returns how many.
    pub(crate) fn prune_unlinked_events(&self, before_ms: i64) -> Result<usize, StoreError> {
        let (deleted, paths) = {
            let mut conn = self.conn();
            let tx = conn.transaction()?;
            let paths = {
                let mut stmt = tx.prepare(SELECT_UNLINKED_SNAPSHOTS_BEFORE)?;
                let rows = stmt.query_map(named_params! {":before_ms": before_ms}, |r| {
                    r.get::<_, String>("snapshot_path")
                })?;
                rows.collect::<Result<Vec<_>, _>>()?
            };
            for p in &paths {
                tx.execute(db::INSERT_GARBAGE, named_params! {":path": p})?;
            }
            let deleted = tx.execute(
                DELETE_UNLINKED_EVENTS_BEFORE,
                named_params! {":before_ms": before_ms},
            )?;
            tx.commit()?;
            (deleted, paths)
        };
        self.collect_garbage(&paths)?;
        Ok(deleted)
    }
}

/// Recomputes the tiers of the footage an event over [start_ms, end_ms] (None: still
/// open) touches: the segments within its pre- and post-roll, and its clip.
fn retier_for(
    conn: &rusqlite::Connection,
    policy: &super::RetentionPolicy,
    camera_id: &str,
    start_ms: i64,
    end_ms: Option<i64>,
    clip_id: Option<i64>,
) -> rusqlite::Result<()> {
    let (pre_ms, post_ms) = policy.event_margin_ms;
    conn.prepare_cached(db::RETIER_SEGMENTS)?
        .execute(named_params! {
            ":camera": camera_id,
            ":from_ms": start_ms - pre_ms,
            ":to_ms": end_ms.map_or(i64::MAX, |e| e + post_ms),
            ":pre_ms": pre_ms,
            ":post_ms": post_ms,
        })?;
    if let Some(clip_id) = clip_id {
        conn.execute(db::RETIER_EVENT_CLIP, named_params! {":clip_id": clip_id})?;
    }
    Ok(())
}
