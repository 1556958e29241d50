//! The SQLite index: opening it (its schema and versions are in schema/), and the
//! statements more than one of the store's files run. Every other statement sits, as a
//! named const, in the file whose functions run it (clips in mod.rs and writer.rs, events,
//! segments, users, tokens, outbox, offsite, analytics). Only `store` uses this; it keeps
//! the database and the clip directory in step (see the durability order in store/mod.rs).

use rusqlite::{Connection, OptionalExtension, named_params};
use std::path::Path;

// Shared statements, with named parameters (`:name`), bound with `named_params!`.
// Queries that only add a WHERE to a SELECT_* are built from it.

pub const INSERT_CAMERA_IF_MISSING: &str = "INSERT OR IGNORE INTO cameras (id) VALUES (:id)";

pub const INSERT_THUMBNAIL: &str =
    "INSERT INTO thumbnails (clip_id, path, file_bytes) VALUES (:clip_id, :path, :file_bytes)";
pub const SELECT_CLIP: &str =
    "SELECT id, camera_id, path, start_ms, end_ms, duration_ms, frames, plain_bytes,
    file_bytes, codec, width, height, labels, pre_roll_ms, post_roll_ms, state, key_id, damage,
    kind, run_start_ms, timescale, media_ticks, init_bytes, tier, lost_ms,
    (SELECT state FROM offsite_clips WHERE clip_id = clips.id) AS offsite_state,
    (SELECT last_error FROM offsite_clips WHERE clip_id = clips.id) AS offsite_error
    FROM clips";
/// A segment's tier from the events over it (with their pre- and post-roll); events are
/// taken to last at most a day when looking back, and an open event to last until now.
pub const RETIER_SEGMENTS: &str = "UPDATE clips SET tier = (SELECT COALESCE(MAX(
        CASE WHEN e.keep != 0 THEN 5 ELSE 1 + (e.acknowledged != 0) + 2 * (
        SELECT COUNT(*) FROM review_items r WHERE r.id = e.review_id AND r.severity = 'alert') END), 0)
        FROM events e WHERE e.camera_id = clips.camera_id
        AND e.start_ms <= clips.end_ms + :pre_ms
        AND e.start_ms >= clips.start_ms - :post_ms - 86400000
        AND COALESCE(e.end_ms, 9000000000000000) + :post_ms >= clips.start_ms)
    WHERE kind = 'segment' AND camera_id = :camera AND end_ms >= :from_ms AND start_ms <= :to_ms";
/// An event clip's tier from the events it holds.
pub const RETIER_EVENT_CLIP: &str = "UPDATE clips SET tier = (SELECT COALESCE(MAX(
        CASE WHEN e.keep != 0 THEN 5 ELSE 1 + (e.acknowledged != 0) + 2 * (
        SELECT COUNT(*) FROM review_items r WHERE r.id = e.review_id AND r.severity = 'alert') END), 1)
        FROM events e WHERE e.clip_id = clips.id)
    WHERE kind = 'event' AND id = :clip_id";
pub const SELECT_CLIP_IDS_AND_PATHS: &str = "SELECT id, path FROM clips";
pub const COUNT_CLIPS: &str = "SELECT COUNT(*) AS clips FROM clips";
pub const SELECT_THUMBNAIL_PATH: &str = "SELECT path FROM thumbnails WHERE clip_id = :clip_id";

pub const INSERT_GARBAGE: &str = "INSERT OR IGNORE INTO garbage (path) VALUES (:path)";
pub const TOTAL_FILE_BYTES: &str = "SELECT COALESCE((SELECT SUM(file_bytes) FROM clips), 0)
    + COALESCE((SELECT SUM(file_bytes) FROM thumbnails), 0)
    + COALESCE((SELECT SUM(snapshot_bytes) FROM events), 0) AS bytes";

pub const SELECT_EVENT_SNAPSHOT: &str = "SELECT snapshot_path FROM events WHERE id = :id";

/// Opens (creating 0600) the database and brings its schema to the current version
/// (schema/); WAL, foreign keys on, full sync of the WAL at each commit so a row never
/// outlives a crash without its file being there first. A database from a newer sentrix
/// is refused before anything is written to it.
pub fn open(path: &Path) -> Result<Connection, super::StoreError> {
    if !path.exists() {
        use std::os::unix::fs::OpenOptionsExt;
        // Create it 0600 before SQLite does (SQLite would use the umask).
        let _ = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path);
    }
    let conn = Connection::open(path)?;
    // Read the version before anything (journal mode included) changes the file.
    super::schema::refuse_newer(&conn, path)?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    conn.busy_timeout(std::time::Duration::from_secs(5))?;
    match super::schema::prepare(&conn, path)? {
        super::schema::Prepared::Upgraded { from, backup } => tracing::info!(
            "index upgraded from schema version {from} to {}; the old one is kept as {}",
            super::schema::CURRENT_VERSION,
            backup.display()
        ),
        super::schema::Prepared::Created | super::schema::Prepared::Current => {}
    }
    Ok(conn)
}

pub fn thumbnail_path(conn: &Connection, clip_id: i64) -> rusqlite::Result<Option<String>> {
    conn.query_row(
        SELECT_THUMBNAIL_PATH,
        named_params! {":clip_id": clip_id},
        |r| r.get("path"),
    )
    .optional()
}

#[cfg(test)]
mod tests {
    use rusqlite::Connection;

    #[test]
    fn a_database_from_a_newer_sentrix_is_refused_untouched() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sentrix.db");
        {
            let conn = Connection::open(&path).unwrap();
            conn.execute_batch("CREATE TABLE future (x); INSERT INTO future VALUES (1);")
                .unwrap();
            conn.pragma_update(
                None,
                "user_version",
                crate::store::schema::CURRENT_VERSION + 1,
            )
            .unwrap();
        }
        let bytes = std::fs::read(&path).unwrap();
        let err = match super::open(&path) {
            Ok(_) => panic!("a newer database was opened"),
            Err(e) => e.to_string(),
        };
        let newer = (crate::store::schema::CURRENT_VERSION + 1).to_string();
        let current = crate::store::schema::CURRENT_VERSION.to_string();
        assert!(
            err.contains(&format!("version {newer}"))
                && err.contains(&format!("version {current}"))
                && err.contains("newer sentrix")
                && err.contains(&path.display().to_string()),
            "{err}"
        );
        assert_eq!(
            std::fs::read(&path).unwrap(),
            bytes,
            "the file is untouched"
        );
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .filter_map(|e| e.ok()?.file_name().into_string().ok())
            .collect();
        assert_eq!(names, vec!["sentrix.db".to_string()], "no WAL, no backup");
    }
}
