-- Step to schema version 8. Never edit a step that has shipped: add a new one.
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
