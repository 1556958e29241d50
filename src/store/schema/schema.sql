-- The current schema of sentrix's index (PRAGMA user_version 9). A new database is made
-- from this file alone; an older one is brought here by the numbered steps beside it, and
-- the upgrade test (schema/upgrade_test.rs) checks that both give the same tables,
-- columns, indexes, triggers and rows. Change it only together with a new step.

CREATE TABLE cameras (
    id   TEXT PRIMARY KEY,
    name TEXT NOT NULL DEFAULT ''
);

-- Event clips and continuous segments, sealed files under recordings_dir.
CREATE TABLE clips (
    id             INTEGER PRIMARY KEY,
    camera_id      TEXT NOT NULL,
    path           TEXT NOT NULL UNIQUE,      -- relative to recordings_dir
    start_ms       INTEGER NOT NULL,          -- UTC wall clock, ms since the epoch
    end_ms         INTEGER NOT NULL,
    duration_ms    INTEGER NOT NULL,          -- media duration
    frames         INTEGER NOT NULL DEFAULT 0,
    plain_bytes    INTEGER NOT NULL,          -- MP4 bytes
    file_bytes     INTEGER NOT NULL,          -- bytes on disk (sealed)
    codec          TEXT NOT NULL DEFAULT '',
    width          INTEGER NOT NULL DEFAULT 0,
    height         INTEGER NOT NULL DEFAULT 0,
    labels         TEXT NOT NULL DEFAULT '',  -- comma-separated trigger labels
    pre_roll_ms    INTEGER NOT NULL DEFAULT 0,
    post_roll_ms   INTEGER NOT NULL DEFAULT 0,
    state          TEXT NOT NULL CHECK (state IN ('complete', 'truncated')),
    key_id         TEXT NOT NULL,
    damage         TEXT NOT NULL DEFAULT '',  -- why the file cannot be served whole ('' if it can)
    kind           TEXT NOT NULL DEFAULT 'event' CHECK (kind IN ('event', 'segment')),
    run_start_ms   INTEGER,                   -- segments: the wall ms their run started at
    timescale      INTEGER NOT NULL DEFAULT 0,  -- the track's, from the MP4 (0: unknown)
    media_ticks    INTEGER NOT NULL DEFAULT 0,  -- media duration in timescale ticks
    init_bytes     INTEGER NOT NULL DEFAULT 0,  -- where the fragments start (after moov)
    -- Retention tier: 0 footage without an event, 1 with a detection or motion event,
    -- 2 with one acknowledged, 3 with an alert event, 4 with one acknowledged, 5 with an
    -- event marked keep. Lower tiers go first under pressure (retention.rs).
    tier           INTEGER NOT NULL DEFAULT 1,
    scrubbed_ms    INTEGER NOT NULL DEFAULT 0,  -- when the scrub last authenticated it whole
    lost_ms        INTEGER NOT NULL DEFAULT 0   -- salvaged: media ms cut off its end
);
CREATE INDEX clips_by_camera_start ON clips (camera_id, start_ms);
CREATE INDEX clips_by_start ON clips (start_ms);
CREATE INDEX clips_by_camera_end ON clips (camera_id, end_ms);
CREATE INDEX clips_by_tier_start ON clips (tier, start_ms);
CREATE INDEX clips_by_scrubbed ON clips (scrubbed_ms, id);

-- Damaged files found by the start-up check, the scrub or playback (store/scrub.rs).
CREATE TABLE damaged_files (
    path      TEXT PRIMARY KEY,                 -- relative to recordings_dir
    clip_id   INTEGER,                          -- the clip it belongs to (NULL once gone)
    kind      TEXT NOT NULL CHECK (kind IN ('clip', 'thumbnail', 'snapshot')),
    found_ms  INTEGER NOT NULL,
    found_by  TEXT NOT NULL CHECK (found_by IN ('start-up', 'scrub', 'playback')),
    problem   TEXT NOT NULL,
    outcome   TEXT NOT NULL                     -- salvaged, flagged
);
CREATE INDEX damaged_files_by_clip ON damaged_files (clip_id);

CREATE TABLE thumbnails (
    clip_id     INTEGER PRIMARY KEY REFERENCES clips (id) ON DELETE CASCADE,
    path        TEXT NOT NULL UNIQUE,
    file_bytes  INTEGER NOT NULL
);

CREATE TABLE events (
    id              INTEGER PRIMARY KEY,
    camera_id       TEXT NOT NULL,
    label           TEXT NOT NULL,
    start_ms        INTEGER NOT NULL,
    end_ms          INTEGER,
    max_score       REAL NOT NULL DEFAULT 0,
    box             TEXT NOT NULL DEFAULT '',
    clip_id         INTEGER REFERENCES clips (id) ON DELETE SET NULL,
    snapshot_path   TEXT,
    acknowledged    INTEGER NOT NULL DEFAULT 0,
    snapshot_bytes  INTEGER NOT NULL DEFAULT 0,
    keep            INTEGER NOT NULL DEFAULT 0,
    scene_change    INTEGER NOT NULL DEFAULT 0, -- motion: the whole picture changed
    review_id       INTEGER REFERENCES review_items (id) ON DELETE SET NULL,
    -- The camera's zones the object stood in when the event started (comma-separated).
    zones           TEXT NOT NULL DEFAULT ''
);
CREATE INDEX events_by_camera_start ON events (camera_id, start_ms);
CREATE INDEX events_by_start ON events (start_ms);
CREATE INDEX events_by_clip ON events (clip_id);
-- Analytics scan events by time reading nothing but this index (it covers the query).
CREATE INDEX events_for_analytics ON events (start_ms, label, camera_id, end_ms, acknowledged);
CREATE INDEX events_by_review ON events (review_id);

-- Review items: a camera's overlapping activity as one thing to review (store/review.rs).
CREATE TABLE review_items (
    id          INTEGER PRIMARY KEY,
    camera_id   TEXT NOT NULL,
    start_ms    INTEGER NOT NULL,
    end_ms      INTEGER,                        -- NULL while open
    severity    TEXT NOT NULL CHECK (severity IN ('alert', 'detection', 'motion')),
    cut         INTEGER NOT NULL DEFAULT 0      -- closed by review.max_item_seconds
);
CREATE INDEX review_by_start ON review_items (start_ms);
CREATE INDEX review_by_camera_start ON review_items (camera_id, start_ms);
CREATE INDEX review_by_camera_severity_start ON review_items (camera_id, severity, start_ms);
CREATE INDEX review_by_severity_start ON review_items (severity, start_ms);
-- The open items, which the close tick reads every second.
CREATE INDEX review_open ON review_items (id) WHERE end_ms IS NULL;
-- Which user has reviewed which item.
CREATE TABLE review_seen (
    review_id  INTEGER NOT NULL REFERENCES review_items (id) ON DELETE CASCADE,
    user       TEXT NOT NULL,
    seen_ms    INTEGER NOT NULL,
    PRIMARY KEY (review_id, user)
);
CREATE INDEX review_seen_by_user ON review_seen (user, review_id);

-- Files whose rows are gone but whose unlink may not have reached the disk yet.
CREATE TABLE garbage (
    path TEXT PRIMARY KEY
);

CREATE TABLE users (
    name        TEXT PRIMARY KEY,
    role        TEXT NOT NULL CHECK (role IN ('admin', 'operator', 'viewer')),
    phc         TEXT NOT NULL,              -- PBKDF2-HMAC-SHA256 PHC string
    created_ms  INTEGER NOT NULL
);
-- Failed logins per username, client address and known device; survives restarts.
CREATE TABLE login_failures (
    kind             TEXT NOT NULL CHECK (kind IN ('user', 'ip', 'device')),
    subject          TEXT NOT NULL,
    failures         INTEGER NOT NULL,
    last_ms          INTEGER NOT NULL,
    locked_until_ms  INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (kind, subject)
);
-- Browsers that logged in as a user: SHA-256 of the device cookie's token.
CREATE TABLE known_devices (
    token_hash    TEXT PRIMARY KEY,
    user          TEXT NOT NULL REFERENCES users (name) ON DELETE CASCADE,
    created_ms    INTEGER NOT NULL,
    last_used_ms  INTEGER NOT NULL
);
CREATE INDEX known_devices_by_user ON known_devices (user, last_used_ms);

-- Small facts about the store, e.g. when the start-up sweep last verified every file.
CREATE TABLE meta (
    key    TEXT PRIMARY KEY,
    value  INTEGER NOT NULL
);

-- API tokens for scripts and integrations: only SHA-256 of the token is kept.
CREATE TABLE api_tokens (
    name          TEXT PRIMARY KEY,
    token_hash    TEXT NOT NULL UNIQUE,
    role          TEXT NOT NULL CHECK (role IN ('admin', 'operator', 'viewer')),
    scopes        TEXT NOT NULL,              -- space-separated
    created_ms    INTEGER NOT NULL,
    expires_ms    INTEGER,                    -- NULL: never
    last_used_ms  INTEGER,
    last_address  TEXT NOT NULL DEFAULT '',
    uses          INTEGER NOT NULL DEFAULT 0
);
-- Notifications: written before the first attempt, marked when the target acknowledged,
-- or rejected when it refused the message for good (not retried).
CREATE TABLE outbox (
    id               INTEGER PRIMARY KEY,
    target           TEXT NOT NULL,
    delivery_id      TEXT NOT NULL UNIQUE,    -- the receiver's idempotency key
    event_id         INTEGER,
    kind             TEXT NOT NULL,           -- start, update, end
    payload          TEXT NOT NULL,           -- the event notice as JSON
    created_ms       INTEGER NOT NULL,
    attempts         INTEGER NOT NULL DEFAULT 0,
    next_attempt_ms  INTEGER NOT NULL,
    last_error       TEXT NOT NULL DEFAULT '',
    state            TEXT NOT NULL DEFAULT 'pending'
                     CHECK (state IN ('pending', 'delivered', 'expired', 'rejected')),
    done_ms          INTEGER
);
CREATE INDEX outbox_due ON outbox (target, state, next_attempt_ms);
CREATE INDEX outbox_by_created ON outbox (created_ms);
-- Small settings changed at run time (the armed mode), as text.
CREATE TABLE settings (
    key    TEXT PRIMARY KEY,
    value  TEXT NOT NULL
);
-- Home Assistant discovery topics published, so removed cameras and labels lose theirs.
CREATE TABLE mqtt_discovery (
    target  TEXT NOT NULL,
    topic   TEXT NOT NULL,
    PRIMARY KEY (target, topic)
);

-- Off-site copies (offsite/): one row per clip bound for the bucket, written by the
-- triggers below in the same transaction as the clip (or its new tier), so a clip is
-- queued exactly when it is finalised. The triggers read `settings` 'offsite.what'
-- (none when off-site copies are off), which `run` sets from the config.
CREATE TABLE offsite_clips (
    clip_id          INTEGER PRIMARY KEY REFERENCES clips (id) ON DELETE CASCADE,
    state            TEXT NOT NULL DEFAULT 'queued'
                     CHECK (state IN ('queued', 'uploaded', 'failed')),
    sha256           TEXT NOT NULL DEFAULT '',   -- of the sealed bytes, hex
    object_key       TEXT NOT NULL DEFAULT '',
    upload_id        TEXT NOT NULL DEFAULT '',   -- an unfinished multipart upload
    parts            TEXT NOT NULL DEFAULT '',   -- its finished parts' ETags, space-separated
    attempts         INTEGER NOT NULL DEFAULT 0,
    next_attempt_ms  INTEGER NOT NULL DEFAULT 0,
    last_error       TEXT NOT NULL DEFAULT '',
    queued_ms        INTEGER NOT NULL,
    uploaded_ms      INTEGER,
    record_stale     INTEGER NOT NULL DEFAULT 0  -- >0: the bucket's index record is not
                                                 -- written, or an event changed since
);
CREATE INDEX offsite_due ON offsite_clips (state, next_attempt_ms);
CREATE INDEX offsite_stale ON offsite_clips (next_attempt_ms) WHERE record_stale > 0;
CREATE TRIGGER offsite_queue_new_clip AFTER INSERT ON clips
WHEN (SELECT value FROM settings WHERE key = 'offsite.what') = 'all'
  OR ((SELECT value FROM settings WHERE key = 'offsite.what') = 'events' AND NEW.kind = 'event')
BEGIN
    INSERT OR IGNORE INTO offsite_clips (clip_id, queued_ms)
    VALUES (NEW.id, CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER));
END;
-- A segment is queued in events mode once an event over it gives it a tier (the insert of a
-- segment re-tiers it in the same transaction, and so does an event that starts later).
-- The bucket's index record of an uploaded clip is written again when one of its events
-- ends, is acknowledged, marked keep, linked or gets a new snapshot (the record is the
-- clip's row and events, and the snapshots go with it).
CREATE TRIGGER offsite_event_changed
AFTER UPDATE OF end_ms, acknowledged, keep, clip_id, snapshot_path ON events
WHEN OLD.end_ms IS NOT NEW.end_ms OR OLD.acknowledged != NEW.acknowledged
  OR OLD.keep != NEW.keep OR OLD.clip_id IS NOT NEW.clip_id
  OR OLD.snapshot_path IS NOT NEW.snapshot_path
BEGIN
    UPDATE offsite_clips SET record_stale = record_stale + 1
    WHERE state = 'uploaded' AND clip_id IN (
        SELECT id FROM clips WHERE id = NEW.clip_id
        UNION
        SELECT id FROM clips WHERE kind = 'segment' AND camera_id = NEW.camera_id
            AND end_ms >= NEW.start_ms AND start_ms <= COALESCE(NEW.end_ms, 9000000000000000)
            AND start_ms >= NEW.start_ms - 86400000);
END;
CREATE TRIGGER offsite_queue_event_segment AFTER UPDATE OF tier ON clips
WHEN NEW.tier >= 1 AND (SELECT value FROM settings WHERE key = 'offsite.what') = 'events'
BEGIN
    INSERT OR IGNORE INTO offsite_clips (clip_id, queued_ms)
    VALUES (NEW.id, CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER));
END;
-- Cameras added in the dashboard (store/managed.rs); surveillance.yml is never rewritten.
CREATE TABLE managed_cameras (
    id          TEXT PRIMARY KEY,
    spec        TEXT NOT NULL,      -- the cameras[] entry as JSON, without its password
    password    BLOB,               -- sealed with the master key (AES-256-GCM), or NULL
    created_ms  INTEGER NOT NULL,
    updated_ms  INTEGER NOT NULL
);
-- Zones and masks drawn in the dashboard, for any camera: they replace its entry's own.
CREATE TABLE camera_areas (
    camera_id   TEXT PRIMARY KEY,
    zones       TEXT NOT NULL,      -- JSON list of areas, as cameras[].zones
    masks       TEXT NOT NULL,
    updated_ms  INTEGER NOT NULL
);
