-- Step to schema version 2. Never edit a step that has shipped: add a new one.
ALTER TABLE events ADD COLUMN snapshot_bytes INTEGER NOT NULL DEFAULT 0;
CREATE INDEX events_by_start ON events (start_ms);
CREATE INDEX events_by_clip ON events (clip_id);
