//! The SQLite index: opening it (its schema and versions are in schema/), and every
//! statement as a named const. Only `store` uses this; it keeps the database and the clip directory in
//! step (see the durability order in store/mod.rs).

use rusqlite::{Connection, OptionalExtension, named_params};
use std::path::Path;

// Every statement of the store, with named parameters (`:name`), bound with
// `rusqlite::named_params!`. Queries that only add a WHERE to a SELECT_* are built from it.

pub const PING: &str = "SELECT 1";

pub const INSERT_CAMERA: &str = "INSERT INTO cameras (id, name) VALUES (:id, :name)
    ON CONFLICT (id) DO UPDATE SET name = excluded.name";
pub const INSERT_CAMERA_IF_MISSING: &str = "INSERT OR IGNORE INTO cameras (id) VALUES (:id)";

pub const INSERT_CLIP: &str =
    "INSERT INTO clips (camera_id, path, start_ms, end_ms, duration_ms, frames,
    plain_bytes, file_bytes, codec, width, height, labels, pre_roll_ms, post_roll_ms, state, key_id,
    kind, run_start_ms, timescale, media_ticks, init_bytes)
    VALUES (:camera_id, :path, :start_ms, :end_ms, :duration_ms, :frames, :plain_bytes,
    :file_bytes, :codec, :width, :height, :labels, :pre_roll_ms, :post_roll_ms, :state, :key_id,
    :kind, :run_start_ms, :timescale, :media_ticks, :init_bytes)";
pub const INSERT_THUMBNAIL: &str =
    "INSERT INTO thumbnails (clip_id, path, file_bytes) VALUES (:clip_id, :path, :file_bytes)";
pub const SELECT_CLIP: &str =
    "SELECT id, camera_id, path, start_ms, end_ms, duration_ms, frames, plain_bytes,
    file_bytes, codec, width, height, labels, pre_roll_ms, post_roll_ms, state, key_id, damage,
    kind, run_start_ms, timescale, media_ticks, init_bytes, tier,
    (SELECT state FROM offsite_clips WHERE clip_id = clips.id) AS offsite_state,
    (SELECT last_error FROM offsite_clips WHERE clip_id = clips.id) AS offsite_error
    FROM clips";
pub const SET_CLIP_DAMAGE: &str = "UPDATE clips SET damage = :damage WHERE id = :id";
/// A clip salvaged in place: what plays of it now.
pub const SET_CLIP_SALVAGED: &str = "UPDATE clips SET end_ms = start_ms + :duration_ms,
    duration_ms = :duration_ms, frames = :frames, plain_bytes = :plain_bytes,
    file_bytes = :file_bytes, media_ticks = :media_ticks, state = 'truncated', damage = ''
    WHERE id = :id";
pub const SELECT_CLIP_CHECKS: &str = "SELECT id, path, file_bytes FROM clips WHERE damage = ''";
pub const SELECT_META: &str = "SELECT value FROM meta WHERE key = :key";
pub const SET_META: &str = "INSERT INTO meta (key, value) VALUES (:key, :value)
    ON CONFLICT (key) DO UPDATE SET value = excluded.value";
pub const CLIP_ID_BY_PATH: &str = "SELECT id FROM clips WHERE path = :path";
pub const INSERT_RESTORED_EVENT: &str = "INSERT INTO events (camera_id, label, start_ms, end_ms,
    clip_id, snapshot_path, snapshot_bytes)
    VALUES (:camera_id, :label, :start_ms, :start_ms,
    (SELECT id FROM clips WHERE camera_id = :camera_id AND start_ms <= :start_ms
     AND end_ms >= :start_ms ORDER BY start_ms DESC LIMIT 1), :path, :bytes)";
pub const CLIP_BY_ID: &str = "WHERE id = :id";
/// Event clips only: segments are reached through the timeline and recordings.
pub const CLIPS_IN_RANGE: &str = "WHERE kind = 'event' AND (:camera IS NULL OR camera_id = :camera)
    AND start_ms >= :since_ms AND start_ms < :until_ms ORDER BY start_ms, id";
/// Every clip and segment of a camera that overlaps [from_ms, to_ms), in time order.
/// (No clip is longer than a day: record.max_clip_length and segment_seconds say so.)
pub const MEDIA_OVERLAPPING: &str = "WHERE camera_id = :camera AND damage = ''
    AND start_ms < :to_ms AND start_ms > :from_ms - 86400000 AND end_ms > :from_ms
    ORDER BY start_ms, id";
/// A segment's tier from the events over it (with their pre- and post-roll); events are
/// taken to last at most a day when looking back, and an open event to last until now.
pub const RETIER_SEGMENTS: &str = "UPDATE clips SET tier = (SELECT COALESCE(MAX(
        CASE WHEN e.keep != 0 THEN 3 WHEN e.acknowledged != 0 THEN 2 ELSE 1 END), 0)
        FROM events e WHERE e.camera_id = clips.camera_id
        AND e.start_ms <= clips.end_ms + :pre_ms
        AND e.start_ms >= clips.start_ms - :post_ms - 86400000
        AND COALESCE(e.end_ms, 9000000000000000) + :post_ms >= clips.start_ms)
    WHERE kind = 'segment' AND camera_id = :camera AND end_ms >= :from_ms AND start_ms <= :to_ms";
/// An event clip's tier from the events it holds.
pub const RETIER_EVENT_CLIP: &str = "UPDATE clips SET tier = (SELECT COALESCE(MAX(
        CASE WHEN e.keep != 0 THEN 3 WHEN e.acknowledged != 0 THEN 2 ELSE 1 END), 1)
        FROM events e WHERE e.clip_id = clips.id)
    WHERE kind = 'event' AND id = :clip_id";
/// The clips to go under pressure, in order: lowest tier first, then oldest.
pub const PRESSURE_ORDER: &str = "SELECT id FROM clips ORDER BY tier, start_ms, id LIMIT :limit";
pub const NEXT_UNDER_PRESSURE: &str = "SELECT id FROM clips ORDER BY tier, start_ms, id LIMIT 1";
/// The oldest clip of a tier set that ended before a cutoff (retention by age).
pub const OLDEST_ENDED_BEFORE: &str = "SELECT id FROM clips
    WHERE tier BETWEEN :min_tier AND :max_tier AND end_ms < :before_ms
    AND (:uploaded_first = 0 OR NOT EXISTS (SELECT 1 FROM offsite_clips o
         WHERE o.clip_id = clips.id AND o.state != 'uploaded'))
    ORDER BY start_ms, id LIMIT 1";
pub const SELECT_CLIP_PATH: &str = "SELECT path FROM clips WHERE id = :id";
pub const SELECT_CLIP_IDS_AND_PATHS: &str = "SELECT id, path FROM clips";
pub const COUNT_CLIPS: &str = "SELECT COUNT(*) AS clips FROM clips";
pub const CLIP_PATH_EXISTS: &str =
    "SELECT EXISTS (SELECT 1 FROM clips WHERE path = :path) AS present";
pub const DELETE_CLIP: &str = "DELETE FROM clips WHERE id = :id";
pub const SELECT_THUMBNAIL_PATH: &str = "SELECT path FROM thumbnails WHERE clip_id = :clip_id";

pub const INSERT_GARBAGE: &str = "INSERT OR IGNORE INTO garbage (path) VALUES (:path)";
pub const DELETE_GARBAGE: &str = "DELETE FROM garbage WHERE path = :path";
pub const SELECT_GARBAGE: &str = "SELECT path FROM garbage";
pub const SELECT_ALL_PATHS: &str = "SELECT path FROM clips UNION ALL SELECT path FROM thumbnails
    UNION ALL SELECT snapshot_path FROM events WHERE snapshot_path IS NOT NULL";
pub const TOTAL_FILE_BYTES: &str = "SELECT COALESCE((SELECT SUM(file_bytes) FROM clips), 0)
    + COALESCE((SELECT SUM(file_bytes) FROM thumbnails), 0)
    + COALESCE((SELECT SUM(snapshot_bytes) FROM events), 0) AS bytes";

pub const INSERT_EVENT: &str =
    "INSERT INTO events (camera_id, label, start_ms, end_ms, max_score, box)
    VALUES (:camera_id, :label, :start_ms, NULL, :max_score, :box)";
pub const UPDATE_EVENT: &str =
    "UPDATE events SET end_ms = :end_ms, max_score = :max_score, box = :box WHERE id = :id";
pub const SELECT_EVENT: &str = "SELECT id, camera_id, label, start_ms, end_ms, max_score, box,
    clip_id, snapshot_path IS NOT NULL AS has_snapshot, acknowledged, keep FROM events";
/// Events of a camera whose time overlaps [from_ms, to_ms), oldest first.
pub const EVENTS_OVERLAPPING: &str = "WHERE camera_id = :camera AND start_ms < :to_ms
    AND COALESCE(end_ms, 9000000000000000) >= :from_ms AND start_ms >= :from_ms - 86400000
    ORDER BY start_ms, id LIMIT :limit";
pub const SET_EVENT_KEEP: &str = "UPDATE events SET keep = :keep WHERE id = :id";
/// Events of a camera without a clip, ended, whose footage (with pre- and post-roll) is
/// all gone: older than the camera's oldest segment.
pub const DELETE_EVENTS_WITHOUT_FOOTAGE: &str = "DELETE FROM events WHERE clip_id IS NULL
    AND end_ms IS NOT NULL AND keep = 0
    AND end_ms + :post_ms < (SELECT MIN(s.start_ms) FROM clips s
        WHERE s.kind = 'segment' AND s.camera_id = events.camera_id)
    RETURNING snapshot_path";
pub const EVENT_BY_ID: &str = "WHERE id = :id";
pub const EVENTS_MATCHING: &str = "WHERE (:camera IS NULL OR camera_id = :camera)
    AND (:label IS NULL OR label = :label) AND start_ms >= :since_ms AND start_ms < :until_ms
    ORDER BY start_ms DESC, id DESC LIMIT :limit";
/// Events of a camera that started in [from_ms, to_ms) (events_by_camera_start).
pub const COUNT_CAMERA_EVENTS: &str = "SELECT COUNT(*) AS events FROM events WHERE camera_id = :camera
    AND start_ms >= :from_ms AND start_ms < :to_ms";
pub const SELECT_EVENT_SNAPSHOT: &str = "SELECT snapshot_path FROM events WHERE id = :id";
pub const SET_EVENT_SNAPSHOT: &str =
    "UPDATE events SET snapshot_path = :path, snapshot_bytes = :bytes WHERE id = :id";
pub const ACKNOWLEDGE_EVENT: &str = "UPDATE events SET acknowledged = 1 WHERE id = :id";
/// Events that started while a clip of their camera was being recorded belong to it.
pub const LINK_EVENTS_TO_CLIP: &str = "UPDATE events SET clip_id = :clip_id
    WHERE camera_id = :camera_id AND clip_id IS NULL AND start_ms >= :start_ms
    AND start_ms <= :end_ms";
pub const SELECT_EVENT_SNAPSHOTS_OF_CLIP: &str =
    "SELECT snapshot_path FROM events WHERE clip_id = :clip_id AND snapshot_path IS NOT NULL";
pub const DELETE_EVENTS_OF_CLIP: &str = "DELETE FROM events WHERE clip_id = :clip_id";
pub const SELECT_UNLINKED_SNAPSHOTS_BEFORE: &str = "SELECT snapshot_path FROM events
    WHERE clip_id IS NULL AND keep = 0 AND start_ms < :before_ms AND snapshot_path IS NOT NULL";
pub const DELETE_UNLINKED_EVENTS_BEFORE: &str =
    "DELETE FROM events WHERE clip_id IS NULL AND keep = 0 AND start_ms < :before_ms";

pub const INSERT_USER: &str = "INSERT OR IGNORE INTO users (name, role, phc, created_ms)
    VALUES (:name, :role, :phc, :created_ms)";
pub const SET_USER_PASSWORD: &str = "UPDATE users SET phc = :phc WHERE name = :name";
/// Never the last admin: the check and the delete are one statement.
pub const DELETE_USER_UNLESS_LAST_ADMIN: &str = "DELETE FROM users WHERE name = :name
    AND (role != 'admin' OR (SELECT COUNT(*) FROM users WHERE role = 'admin') > 1)";
pub const SELECT_USERS: &str = "SELECT name, role, created_ms FROM users ORDER BY name";
pub const SELECT_USER_CREDENTIALS: &str = "SELECT role, phc FROM users WHERE name = :name";

pub const SELECT_LOCKED_UNTIL: &str =
    "SELECT locked_until_ms FROM login_failures WHERE kind = :kind AND subject = :subject";
pub const SELECT_LOGIN_FAILURES: &str = "SELECT failures, last_ms, locked_until_ms
    FROM login_failures WHERE kind = :kind AND subject = :subject";
pub const UPSERT_LOGIN_FAILURES: &str =
    "INSERT INTO login_failures (kind, subject, failures, last_ms, locked_until_ms)
    VALUES (:kind, :subject, :failures, :last_ms, :locked_until_ms)
    ON CONFLICT (kind, subject) DO UPDATE SET failures = :failures, last_ms = :last_ms,
    locked_until_ms = :locked_until_ms";
pub const DELETE_LOGIN_FAILURES: &str =
    "DELETE FROM login_failures WHERE kind = :kind AND subject = :subject";
pub const COUNT_LOCKED: &str =
    "SELECT COUNT(*) AS locked FROM login_failures WHERE locked_until_ms > :now_ms";
pub const SELECT_LOCKED_ADDRESSES: &str = "SELECT subject, locked_until_ms FROM login_failures
    WHERE kind = 'ip' AND locked_until_ms > :now_ms ORDER BY locked_until_ms DESC LIMIT :limit";
/// Counters neither locked nor recent enough to count any more.
pub const PRUNE_LOGIN_FAILURES: &str = "DELETE FROM login_failures
    WHERE locked_until_ms <= :now_ms AND last_ms < :stale_before_ms";
/// Unlocks a user name and every known device of that user.
pub const DELETE_USER_LOCKS: &str = "DELETE FROM login_failures
    WHERE (kind = 'user' AND subject = :name)
    OR (kind = 'device' AND subject IN (SELECT token_hash FROM known_devices WHERE user = :name))";

pub const INSERT_DEVICE: &str =
    "INSERT INTO known_devices (token_hash, user, created_ms, last_used_ms)
    VALUES (:token_hash, :user, :now_ms, :now_ms)";
/// Keeps a user's `:keep` most recently used devices.
pub const TRIM_DEVICES: &str = "DELETE FROM known_devices WHERE user = :user AND token_hash NOT IN
    (SELECT token_hash FROM known_devices WHERE user = :user ORDER BY last_used_ms DESC LIMIT :keep)";
pub const SELECT_DEVICE_USER: &str =
    "SELECT user FROM known_devices WHERE token_hash = :token_hash";
pub const TOUCH_DEVICE: &str =
    "UPDATE known_devices SET last_used_ms = :now_ms WHERE token_hash = :token_hash";

// Analytics: one scan of `events_for_analytics` alone (a covering index, so no event row
// is read) over events that started in [from_ms, to_ms), in index order; the summary's
// groups are folded by `store::analytics` as the rows stream past.
pub const ANALYTICS_SCAN: &str = "SELECT start_ms, label, camera_id, end_ms, acknowledged
    FROM events INDEXED BY events_for_analytics WHERE start_ms >= :from_ms AND start_ms < :to_ms
    AND (:camera IS NULL OR camera_id = :camera) AND (:label IS NULL OR label = :label)
    ORDER BY start_ms";

pub const INSERT_TOKEN: &str = "INSERT OR IGNORE INTO api_tokens
    (name, token_hash, role, scopes, created_ms, expires_ms)
    VALUES (:name, :token_hash, :role, :scopes, :created_ms, :expires_ms)";
/// A token that exists and has not expired: its name, role and scopes.
pub const CHECK_TOKEN: &str = "SELECT name, role, scopes FROM api_tokens
    WHERE token_hash = :token_hash AND (expires_ms IS NULL OR expires_ms > :now_ms)";
/// Uses counted since the last write, with the latest one's time and address.
pub const ADD_TOKEN_USES: &str = "UPDATE api_tokens SET uses = uses + :uses,
    last_used_ms = MAX(COALESCE(last_used_ms, 0), :last_ms), last_address = :address
    WHERE token_hash = :token_hash";
pub const TOKEN_EXPIRY: &str = "SELECT expires_ms FROM api_tokens WHERE token_hash = :token_hash";
pub const TOKEN_VALID: &str =
    "SELECT EXISTS (SELECT 1 FROM api_tokens WHERE token_hash = :token_hash
    AND (expires_ms IS NULL OR expires_ms > :now_ms)) AS valid";
pub const SELECT_TOKENS: &str = "SELECT name, role, scopes, created_ms, expires_ms, last_used_ms,
    last_address, uses FROM api_tokens ORDER BY name";
pub const DELETE_TOKEN: &str = "DELETE FROM api_tokens WHERE name = :name";

pub const INSERT_OUTBOX: &str = "INSERT INTO outbox (target, delivery_id, event_id, kind, payload,
    created_ms, next_attempt_ms) VALUES (:target, :delivery_id, :event_id, :kind, :payload,
    :now_ms, :now_ms)";
pub const OUTBOX_DUE: &str = "SELECT id, target, delivery_id, event_id, kind, payload, created_ms,
    attempts FROM outbox WHERE target = :target AND state = 'pending'
    AND next_attempt_ms <= :now_ms ORDER BY id LIMIT :limit";
pub const OUTBOX_NEXT_DUE: &str = "SELECT MIN(next_attempt_ms) AS next_attempt_ms FROM outbox
    WHERE target = :target AND state = 'pending'";
pub const OUTBOX_DELIVERED: &str = "UPDATE outbox SET state = 'delivered', done_ms = :now_ms,
    attempts = attempts + 1, last_error = '' WHERE id = :id AND state = 'pending'";
pub const OUTBOX_RETRY: &str = "UPDATE outbox SET attempts = attempts + 1,
    next_attempt_ms = :next_ms, last_error = :error WHERE id = :id AND state = 'pending'";
/// The target refused the message for good: no more attempts.
pub const OUTBOX_REJECTED: &str = "UPDATE outbox SET state = 'rejected', done_ms = :now_ms,
    attempts = attempts + 1, last_error = :error WHERE id = :id AND state = 'pending'";
pub const OUTBOX_EXPIRE: &str = "UPDATE outbox SET state = 'expired', done_ms = :now_ms
    WHERE state = 'pending' AND created_ms < :before_ms RETURNING target";
pub const OUTBOX_PRUNE: &str =
    "DELETE FROM outbox WHERE state != 'pending' AND done_ms < :before_ms";
pub const OUTBOX_PENDING: &str =
    "SELECT COUNT(*) AS pending FROM outbox WHERE target = :target AND state = 'pending'";

pub const SELECT_MQTT_DISCOVERY: &str = "SELECT topic FROM mqtt_discovery WHERE target = :target";
pub const INSERT_MQTT_DISCOVERY: &str =
    "INSERT OR IGNORE INTO mqtt_discovery (target, topic) VALUES (:target, :topic)";
pub const DELETE_MQTT_DISCOVERY: &str =
    "DELETE FROM mqtt_discovery WHERE target = :target AND topic = :topic";

pub const SELECT_SETTING: &str = "SELECT value FROM settings WHERE key = :key";
pub const INSERT_SETTING_IF_MISSING: &str =
    "INSERT OR IGNORE INTO settings (key, value) VALUES (:key, :value)";
pub const SET_SETTING: &str = "INSERT INTO settings (key, value) VALUES (:key, :value)
    ON CONFLICT (key) DO UPDATE SET value = excluded.value";

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

// Off-site copies (offsite_clips, offsite/).
/// The next index record to write (an uploaded clip's, so each record follows its clip),
/// else the next clip to upload; with the record's version (`record_stale`).
pub const OFFSITE_DUE: &str = "SELECT * FROM (
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
pub const OFFSITE_RECORD_WRITTEN: &str = "UPDATE offsite_clips SET record_stale = 0,
    last_error = '' WHERE clip_id = :clip_id AND record_stale = :version";
pub const OFFSITE_RECORD_FAILED: &str = "UPDATE offsite_clips SET last_error = :error,
    next_attempt_ms = :next_attempt_ms WHERE clip_id = :clip_id";
pub const OFFSITE_SET_HASH: &str =
    "UPDATE offsite_clips SET sha256 = :sha256, object_key = :object_key WHERE clip_id = :clip_id";
pub const OFFSITE_SET_UPLOAD: &str =
    "UPDATE offsite_clips SET upload_id = :upload_id, parts = :parts WHERE clip_id = :clip_id";
/// The clip's copy is verified; its index record is due next.
pub const OFFSITE_UPLOADED: &str = "UPDATE offsite_clips SET state = 'uploaded', upload_id = '',
    parts = '', last_error = '', uploaded_ms = COALESCE(uploaded_ms, :now_ms),
    attempts = attempts + 1, next_attempt_ms = 0, record_stale = record_stale + 1
    WHERE clip_id = :clip_id";
pub const OFFSITE_FAILED: &str = "UPDATE offsite_clips SET state = 'failed',
    attempts = attempts + 1, last_error = :error, next_attempt_ms = :next_attempt_ms
    WHERE clip_id = :clip_id";
pub const OFFSITE_STATE_OF: &str =
    "SELECT state, last_error FROM offsite_clips WHERE clip_id = :clip_id";
pub const OFFSITE_STATES_OF: &str = "SELECT clip_id, state, last_error FROM offsite_clips
    WHERE clip_id IN (SELECT value FROM json_each(:ids))";
pub const OFFSITE_COUNTS: &str = "SELECT o.state AS state, COUNT(*) AS clips,
    COALESCE(SUM(c.file_bytes), 0) AS file_bytes,
    COALESCE(SUM(o.record_stale > 0), 0) AS stale_records
    FROM offsite_clips o JOIN clips c ON c.id = o.clip_id GROUP BY o.state";
pub const OFFSITE_MARK_RESTORED: &str = "INSERT INTO offsite_clips (clip_id, state, sha256,
    object_key, queued_ms, uploaded_ms) VALUES (:clip_id, 'uploaded', :sha256, :object_key,
    :now_ms, :now_ms) ON CONFLICT (clip_id) DO UPDATE SET state = 'uploaded',
    sha256 = excluded.sha256, object_key = excluded.object_key";
pub const DELETE_SETTING: &str = "DELETE FROM settings WHERE key = :key";
pub const INSERT_RESTORED_CLIP: &str = "INSERT INTO clips (id, camera_id, path, start_ms,
    end_ms, duration_ms, frames, plain_bytes, file_bytes, codec, width, height, labels,
    pre_roll_ms, post_roll_ms, state, key_id, kind, run_start_ms, timescale, media_ticks,
    init_bytes, tier)
    VALUES (:id, :camera_id, :path, :start_ms, :end_ms, :duration_ms, :frames, :plain_bytes,
    :file_bytes, :codec, :width, :height, :labels, :pre_roll_ms, :post_roll_ms, :state, :key_id,
    :kind, :run_start_ms, :timescale, :media_ticks, :init_bytes, :tier)";
pub const INSERT_OFFSITE_EVENT: &str = "INSERT OR IGNORE INTO events (id, camera_id, label,
    start_ms, end_ms, max_score, box, clip_id, acknowledged, keep)
    VALUES (:id, :camera_id, :label, :start_ms, :end_ms, :max_score, :box,
    (SELECT id FROM clips WHERE id = :clip_id), :acknowledged, :keep)";
