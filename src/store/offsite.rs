//! The off-site queue, in the index database: one row per clip bound for the bucket,
//! written by SQL triggers in the same transaction as the clip itself (db.rs, migration
//! 8), so a clip is queued exactly when it is finalised and a crash loses no entry. The
//! uploader (offsite/upload.rs) takes one due row at a time and records its progress here:
//! the SHA-256 of the sealed bytes, an unfinished multipart upload and its parts (so it
//! resumes after a restart), and the outcome. `record_stale` counts changes the bucket's
//! index record of an uploaded clip has not caught up with: the upload itself, and each
//! change to one of its events (a trigger); the uploader writes the record and clears the
//! count only if nothing changed meanwhile.

use super::{ClipRecord, Store, StoreError, db};
use rusqlite::{OptionalExtension, named_params};

// The statements this file runs (named parameters, bound with named_params!).
/// The next index record to write (an uploaded clip's, so each record follows its clip),
/// else the next clip to upload; with the record's version (`record_stale`).
const OFFSITE_DUE: &str = "SELECT * FROM (
    SELECT clip_id, sha256, object_key, upload_id, parts, attempts, record_stale
        FROM offsite_clips WHERE record_stale > 0 AND next_attempt_ms <= :now_ms
        AND state = 'uploaded' ORDER BY next_attempt_ms, clip_id LIMIT 1)
    UNION ALL SELECT * FROM (
    SELECT clip_id, sha256, object_key, upload_id, parts, attempts, 0
        FROM offsite_clips WHERE state IN ('queued', 'failed') AND next_attempt_ms <= :now_ms
        ORDER BY next_attempt_ms, clip_id LIMIT 1)
    LIMIT 1";
/// The record was written from the events as they were at version :version; a change
/// since (the trigger counted it) leaves it due again.
const OFFSITE_RECORD_WRITTEN: &str = "UPDATE offsite_clips SET record_stale = 0,
    last_error = '' WHERE clip_id = :clip_id AND record_stale = :version";
const OFFSITE_RECORD_FAILED: &str = "UPDATE offsite_clips SET last_error = :error,
    next_attempt_ms = :next_attempt_ms WHERE clip_id = :clip_id";
const OFFSITE_SET_HASH: &str =
    "UPDATE offsite_clips SET sha256 = :sha256, object_key = :object_key WHERE clip_id = :clip_id";
const OFFSITE_SET_UPLOAD: &str =
    "UPDATE offsite_clips SET upload_id = :upload_id, parts = :parts WHERE clip_id = :clip_id";
/// The clip's copy is verified; its index record is due next.
const OFFSITE_UPLOADED: &str = "UPDATE offsite_clips SET state = 'uploaded', upload_id = '',
    parts = '', last_error = '', uploaded_ms = COALESCE(uploaded_ms, :now_ms),
    attempts = attempts + 1, next_attempt_ms = 0, record_stale = record_stale + 1
    WHERE clip_id = :clip_id";
const OFFSITE_FAILED: &str = "UPDATE offsite_clips SET state = 'failed',
    attempts = attempts + 1, last_error = :error, next_attempt_ms = :next_attempt_ms
    WHERE clip_id = :clip_id";
const OFFSITE_STATE_OF: &str =
    "SELECT state, last_error FROM offsite_clips WHERE clip_id = :clip_id";
const OFFSITE_STATES_OF: &str = "SELECT clip_id, state, last_error FROM offsite_clips
    WHERE clip_id IN (SELECT value FROM json_each(:ids))";
const OFFSITE_COUNTS: &str = "SELECT o.state AS state, COUNT(*) AS clips,
    COALESCE(SUM(c.file_bytes), 0) AS file_bytes,
    COALESCE(SUM(o.record_stale > 0), 0) AS stale_records
    FROM offsite_clips o JOIN clips c ON c.id = o.clip_id GROUP BY o.state";
const OFFSITE_MARK_RESTORED: &str = "INSERT INTO offsite_clips (clip_id, state, sha256,
    object_key, queued_ms, uploaded_ms) VALUES (:clip_id, 'uploaded', :sha256, :object_key,
    :now_ms, :now_ms) ON CONFLICT (clip_id) DO UPDATE SET state = 'uploaded',
    sha256 = excluded.sha256, object_key = excluded.object_key";
const DELETE_SETTING: &str = "DELETE FROM settings WHERE key = :key";
const INSERT_RESTORED_CLIP: &str = "INSERT INTO clips (id, camera_id, path, start_ms,
    end_ms, duration_ms, frames, plain_bytes, file_bytes, codec, width, height, labels,
    pre_roll_ms, post_roll_ms, state, key_id, kind, run_start_ms, timescale, media_ticks,
    init_bytes, tier)
    VALUES (:id, :camera_id, :path, :start_ms, :end_ms, :duration_ms, :frames, :plain_bytes,
    :file_bytes, :codec, :width, :height, :labels, :pre_roll_ms, :post_roll_ms, :state, :key_id,
    :kind, :run_start_ms, :timescale, :media_ticks, :init_bytes, :tier)";
const INSERT_OFFSITE_EVENT: &str = "INSERT OR IGNORE INTO events (id, camera_id, label,
    start_ms, end_ms, max_score, box, clip_id, acknowledged, keep)
    VALUES (:id, :camera_id, :label, :start_ms, :end_ms, :max_score, :box,
    (SELECT id FROM clips WHERE id = :clip_id), :acknowledged, :keep)";

/// Where a clip stands with the bucket, as the API and the clip list show it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum OffsiteState {
    /// Not bound for the bucket (off-site copies off, or not an event clip).
    #[default]
    Local,
    Queued,
    Uploaded,
    /// The last attempt failed, with why; it is retried.
    Failed(String),
}

impl OffsiteState {
    pub(crate) fn from_parts(state: Option<String>, error: Option<String>) -> Self {
        match state.as_deref() {
            Some("queued") => Self::Queued,
            Some("uploaded") => Self::Uploaded,
            Some("failed") => Self::Failed(error.unwrap_or_default()),
            _ => Self::Local,
        }
    }

    /// `local`, `queued`, `uploaded` or `failed: reason`.
    pub fn label(&self) -> String {
        match self {
            Self::Local => "local".into(),
            Self::Queued => "queued".into(),
            Self::Uploaded => "uploaded".into(),
            Self::Failed(why) => format!("failed: {why}"),
        }
    }
}

/// A clip due for upload and how far its upload got.
#[derive(Debug, Clone)]
pub struct OffsiteJob {
    pub clip_id: i64,
    /// Hex SHA-256 of the sealed file, '' until first hashed.
    pub sha256: String,
    pub object_key: String,
    /// An unfinished multipart upload ('' when none) and the ETags of its finished parts.
    pub upload_id: String,
    pub parts: Vec<String>,
    pub attempts: i64,
    /// Above 0: the clip is uploaded and its index record is to be written (first, or
    /// again after an event of it changed), at this version.
    pub record_version: i64,
}

/// Clips per state and their sealed bytes.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct OffsiteCounts {
    pub queued: i64,
    pub uploaded: i64,
    pub failed: i64,
    pub waiting_bytes: i64,
    pub uploaded_bytes: i64,
    /// Uploaded clips whose index record is not written yet (or is being rewritten).
    pub records_pending: i64,
}

impl Store {
    /// Turns queueing on (`what` = "events" or "all") or off (None) for clips indexed
    /// from now on: the triggers read this setting.
    pub fn offsite_configure(&self, what: Option<&str>) -> Result<(), StoreError> {
        match what {
            Some(w) => self.set_setting("offsite.what", w),
            None => {
                self.conn()
                    .execute(DELETE_SETTING, named_params! {":key": "offsite.what"})?;
                Ok(())
            }
        }
    }

    /// The next clip due for upload at `now_ms`, if any.
    pub fn offsite_due(&self, now_ms: i64) -> Result<Option<OffsiteJob>, StoreError> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(OFFSITE_DUE)?;
        Ok(stmt
            .query_row(named_params! {":now_ms": now_ms}, |r| {
                let parts: String = r.get("parts")?;
                Ok(OffsiteJob {
                    clip_id: r.get("clip_id")?,
                    sha256: r.get("sha256")?,
                    object_key: r.get("object_key")?,
                    upload_id: r.get("upload_id")?,
                    parts: parts.split_whitespace().map(String::from).collect(),
                    attempts: r.get("attempts")?,
                    record_version: r.get("record_stale")?,
                })
            })
            .optional()?)
    }

    pub fn offsite_set_hash(
        &self,
        clip_id: i64,
        sha256: &str,
        object_key: &str,
    ) -> Result<(), StoreError> {
        self.conn().execute(
            OFFSITE_SET_HASH,
            named_params! {":clip_id": clip_id, ":sha256": sha256, ":object_key": object_key},
        )?;
        Ok(())
    }

    /// Records a multipart upload's id and finished parts ('' and none: no upload open).
    pub fn offsite_set_upload(
        &self,
        clip_id: i64,
        upload_id: &str,
        parts: &[String],
    ) -> Result<(), StoreError> {
        self.conn().execute(
            OFFSITE_SET_UPLOAD,
            named_params! {":clip_id": clip_id, ":upload_id": upload_id, ":parts": parts.join(" ")},
        )?;
        Ok(())
    }

    pub fn offsite_uploaded(&self, clip_id: i64, now_ms: i64) -> Result<(), StoreError> {
        self.conn().execute(
            OFFSITE_UPLOADED,
            named_params! {":clip_id": clip_id, ":now_ms": now_ms},
        )?;
        Ok(())
    }

    /// An attempt failed for `error`: try again at `next_attempt_ms`. `record_only`: the
    /// clip is uploaded and only writing its index record failed (it stays uploaded).
    pub fn offsite_failed(
        &self,
        clip_id: i64,
        error: &str,
        next_attempt_ms: i64,
        record_only: bool,
    ) -> Result<(), StoreError> {
        let sql = match record_only {
            true => OFFSITE_RECORD_FAILED,
            false => OFFSITE_FAILED,
        };
        self.conn().execute(
            sql,
            named_params! {":clip_id": clip_id, ":error": error, ":next_attempt_ms": next_attempt_ms},
        )?;
        Ok(())
    }

    /// Clip `clip_id`'s record was written from its events at `version`.
    pub fn offsite_record_written(&self, clip_id: i64, version: i64) -> Result<(), StoreError> {
        self.conn().execute(
            OFFSITE_RECORD_WRITTEN,
            named_params! {":clip_id": clip_id, ":version": version},
        )?;
        Ok(())
    }

    pub fn offsite_state(&self, clip_id: i64) -> Result<OffsiteState, StoreError> {
        let row: Option<(String, String)> = self
            .conn()
            .query_row(OFFSITE_STATE_OF, named_params! {":clip_id": clip_id}, |r| {
                Ok((r.get("state")?, r.get("last_error")?))
            })
            .optional()?;
        Ok(match row {
            Some((s, e)) => OffsiteState::from_parts(Some(s), Some(e)),
            None => OffsiteState::Local,
        })
    }

    /// The sealed bytes of event `id`'s snapshot file, as they are on disk (None: it has
    /// none), for copying to the bucket unchanged.
    pub fn event_snapshot_sealed(&self, id: i64) -> Result<Option<Vec<u8>>, StoreError> {
        let rel: Option<String> = self
            .conn()
            .query_row(db::SELECT_EVENT_SNAPSHOT, named_params! {":id": id}, |r| {
                r.get("snapshot_path")
            })
            .optional()?
            .flatten();
        let Some(rel) = rel else {
            return Ok(None);
        };
        let path = self.recordings_dir().join(&rel);
        Ok(Some(std::fs::read(&path).map_err(super::io_err(&path))?))
    }

    /// The states of `clip_ids` that are bound for the bucket (others are local), in one
    /// query: the event list shows each event's clip's state.
    pub fn offsite_states(
        &self,
        clip_ids: &[i64],
    ) -> Result<std::collections::HashMap<i64, OffsiteState>, StoreError> {
        let ids =
            serde_json::to_string(clip_ids).map_err(|e| StoreError::Invalid(e.to_string()))?;
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(OFFSITE_STATES_OF)?;
        let rows = stmt.query_map(named_params! {":ids": ids}, |r| {
            Ok((
                r.get::<_, i64>("clip_id")?,
                OffsiteState::from_parts(r.get("state")?, r.get("last_error")?),
            ))
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    pub fn offsite_counts(&self) -> Result<OffsiteCounts, StoreError> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(OFFSITE_COUNTS)?;
        let mut out = OffsiteCounts::default();
        let rows = stmt.query_map([], |r| {
            let counts: (i64, i64, i64) = (
                r.get("clips")?,
                r.get("file_bytes")?,
                r.get("stale_records")?,
            );
            Ok((r.get::<_, String>("state")?, counts))
        })?;
        for row in rows {
            let (state, (n, bytes, stale)) = row?;
            out.records_pending += stale;
            match state.as_str() {
                "uploaded" => (out.uploaded, out.uploaded_bytes) = (n, bytes),
                "failed" => {
                    out.failed = n;
                    out.waiting_bytes += bytes;
                }
                _ => {
                    out.queued = n;
                    out.waiting_bytes += bytes;
                }
            }
        }
        Ok(out)
    }

    /// Indexes a clip fetched back from the bucket under its original id (restore), and
    /// marks it uploaded. Fails if the id or path is taken.
    pub fn insert_restored_clip(
        &self,
        r: &ClipRecord,
        sha256: &str,
        object_key: &str,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        tx.execute(
            db::INSERT_CAMERA_IF_MISSING,
            named_params! {":id": r.camera_id},
        )?;
        tx.execute(
            INSERT_RESTORED_CLIP,
            named_params! {
                ":id": r.id, ":camera_id": r.camera_id, ":path": r.path,
                ":start_ms": r.start_ms, ":end_ms": r.end_ms, ":duration_ms": r.duration_ms,
                ":frames": r.frames, ":plain_bytes": r.plain_bytes, ":file_bytes": r.file_bytes,
                ":codec": r.codec, ":width": r.width, ":height": r.height,
                ":labels": r.labels.join(","), ":pre_roll_ms": r.pre_roll_ms,
                ":post_roll_ms": r.post_roll_ms, ":state": r.state.as_str(), ":key_id": r.key_id,
                ":kind": r.kind.as_str(), ":run_start_ms": r.run_start_ms,
                ":timescale": r.timescale, ":media_ticks": r.media_ticks,
                ":init_bytes": r.init_bytes, ":tier": r.tier,
            },
        )?;
        tx.execute(
            OFFSITE_MARK_RESTORED,
            named_params! {":clip_id": r.id, ":sha256": sha256, ":object_key": object_key,
            ":now_ms": now_ms},
        )?;
        tx.commit()?;
        Ok(())
    }

    /// Indexes an event from the bucket under its original id (restore); one already there
    /// is kept. Its clip link is kept only when that clip is indexed.
    pub fn insert_restored_event(&self, e: &super::EventRecord) -> Result<(), StoreError> {
        self.conn().execute(
            INSERT_OFFSITE_EVENT,
            named_params! {
                ":id": e.id, ":camera_id": e.camera_id, ":label": e.label,
                ":start_ms": e.start_ms, ":end_ms": e.end_ms, ":max_score": e.max_score,
                ":box": super::events::box_text(&e.bbox), ":clip_id": e.clip_id,
                ":acknowledged": e.acknowledged, ":keep": e.keep,
            },
        )?;
        Ok(())
    }

    /// True when the index holds no clip (restore goes only into an empty store).
    pub fn has_no_clips(&self) -> Result<bool, StoreError> {
        let n: i64 = self
            .conn()
            .query_row(db::COUNT_CLIPS, [], |r| r.get("clips"))?;
        Ok(n == 0)
    }
}
