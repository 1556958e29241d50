//! Detection events in the index, and their snapshots (a JPEG with the boxes drawn, sealed
//! like every other file under recordings_dir, as `camera/date/<start_ms>-event<id>-<tag>.jpg.sntx`).
//! An event is inserted when it starts, updated as its score improves and when it ends,
//! and linked to the clip that recorded it when that clip is indexed (writer.rs). It is
//! deleted with its clip, or by retention's age limit when no clip holds it.

use super::sealed::{create_sealed, seal_and_rename};
use super::{Store, StoreError, db, io_err, keys, not_found_as};
use rusqlite::named_params;

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
}

impl EventRecord {
    fn from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Self> {
        let text: String = r.get(6)?;
        Ok(Self {
            id: r.get(0)?,
            camera_id: r.get(1)?,
            label: r.get(2)?,
            start_ms: r.get(3)?,
            end_ms: r.get(4)?,
            max_score: r.get(5)?,
            bbox: parse_box(&text),
            clip_id: r.get(7)?,
            has_snapshot: r.get(8)?,
            acknowledged: r.get::<_, i64>(9)? != 0,
        })
    }
}

fn box_text(b: &[f32; 4]) -> String {
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
    /// A new, open event; returns its id.
    pub fn insert_event(
        &self,
        camera_id: &str,
        label: &str,
        start_ms: i64,
        score: f32,
        bbox: &[f32; 4],
    ) -> Result<i64, StoreError> {
        self.check_running()?;
        self.with_room(|conn| {
            conn.execute(
                db::INSERT_CAMERA_IF_MISSING,
                named_params! {":id": camera_id},
            )?;
            conn.execute(
                db::INSERT_EVENT,
                named_params! {
                    ":camera_id": camera_id,
                    ":label": label,
                    ":start_ms": start_ms,
                    ":max_score": score as f64,
                    ":box": box_text(bbox),
                },
            )?;
            Ok(conn.last_insert_rowid())
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
                db::UPDATE_EVENT,
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
        Ok(())
    }

    pub fn event(&self, id: i64) -> Result<EventRecord, StoreError> {
        let sql = format!("{} {}", db::SELECT_EVENT, db::EVENT_BY_ID);
        self.conn()
            .query_row(&sql, named_params! {":id": id}, EventRecord::from_row)
            .map_err(|e| not_found_as(id, e))
    }

    pub fn events(&self, q: &EventQuery) -> Result<Vec<EventRecord>, StoreError> {
        let sql = format!("{} {}", db::SELECT_EVENT, db::EVENTS_MATCHING);
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
        let rel_dir = format!("{}/{}", ev.camera_id, super::utc_date(ev.start_ms));
        let dir = self.recordings_dir().join(&rel_dir);
        keys::create_private_dir(&dir).map_err(io_err(&dir))?;
        let mut tag = [0u8; 4];
        getrandom::getrandom(&mut tag)
            .map_err(|e| io_err(&dir)(std::io::Error::other(e.to_string())))?;
        // The label is in the name so a lost index gets the event back (sweep.rs).
        let label: String = ev
            .label
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
            .take(32)
            .collect();
        let rel = format!(
            "{rel_dir}/{}-event{id}-{label}-{:08x}.jpg.sntx",
            ev.start_ms,
            u32::from_be_bytes(tag)
        );
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
                    r.get(0)
                })?;
            if let Some(o) = &old {
                tx.execute(db::INSERT_GARBAGE, named_params! {":path": o})?;
            }
            tx.execute(
                db::SET_EVENT_SNAPSHOT,
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

    /// A reader of the event's snapshot JPEG.
    pub fn open_event_snapshot(&self, id: i64) -> Result<super::OpenReader, StoreError> {
        let rel: Option<String> = self
            .conn()
            .query_row(db::SELECT_EVENT_SNAPSHOT, named_params! {":id": id}, |r| {
                r.get(0)
            })
            .map_err(|e| not_found_as(id, e))?;
        let rel = rel.ok_or(StoreError::NotFound(id))?;
        let path = self.recordings_dir().join(&rel);
        let file = std::fs::File::open(&path).map_err(io_err(&path))?;
        Ok(super::OpenReader::open(file, &self.inner.key)?)
    }

    pub fn acknowledge_event(&self, id: i64) -> Result<(), StoreError> {
        let n = self
            .conn()
            .execute(db::ACKNOWLEDGE_EVENT, named_params! {":id": id})?;
        if n == 0 {
            return Err(StoreError::NotFound(id));
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
                let mut stmt = tx.prepare(db::SELECT_UNLINKED_SNAPSHOTS_BEFORE)?;
                let rows = stmt.query_map(named_params! {":before_ms": before_ms}, |r| {
                    r.get::<_, String>(0)
                })?;
                rows.collect::<Result<Vec<_>, _>>()?
            };
            for p in &paths {
                tx.execute(db::INSERT_GARBAGE, named_params! {":path": p})?;
            }
            let deleted = tx.execute(
                db::DELETE_UNLINKED_EVENTS_BEFORE,
                named_params! {":before_ms": before_ms},
            )?;
            tx.commit()?;
            (deleted, paths)
        };
        self.collect_garbage(&paths)?;
        Ok(deleted)
    }
}
