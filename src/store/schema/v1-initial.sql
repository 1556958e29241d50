-- Step to schema version 1. Never edit a step that has shipped: add a new one.
CREATE TABLE cameras (
    id   TEXT PRIMARY KEY,
    name TEXT NOT NULL DEFAULT ''
);
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
    key_id         TEXT NOT NULL
);
CREATE INDEX clips_by_camera_start ON clips (camera_id, start_ms);
CREATE INDEX clips_by_start ON clips (start_ms);
CREATE TABLE thumbnails (
    clip_id     INTEGER PRIMARY KEY REFERENCES clips (id) ON DELETE CASCADE,
    path        TEXT NOT NULL UNIQUE,
    file_bytes  INTEGER NOT NULL
);
CREATE TABLE events (
    id             INTEGER PRIMARY KEY,
    camera_id      TEXT NOT NULL,
    label          TEXT NOT NULL,
    start_ms       INTEGER NOT NULL,
    end_ms         INTEGER,
    max_score      REAL NOT NULL DEFAULT 0,
    box            TEXT NOT NULL DEFAULT '',
    clip_id        INTEGER REFERENCES clips (id) ON DELETE SET NULL,
    snapshot_path  TEXT,
    acknowledged   INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX events_by_camera_start ON events (camera_id, start_ms);
-- Files whose rows are gone but whose unlink may not have reached the disk yet.
CREATE TABLE garbage (
    path TEXT PRIMARY KEY
);
