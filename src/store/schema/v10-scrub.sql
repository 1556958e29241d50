-- Step to schema version 10. Never edit a step that has shipped: add a new one.
-- The background integrity scrub: when each clip's file (with its thumbnail and its
-- events' snapshots) was last authenticated whole, how much of a salvaged clip was lost,
-- and every damaged file found, by whom and why.
ALTER TABLE clips ADD COLUMN scrubbed_ms INTEGER NOT NULL DEFAULT 0;
ALTER TABLE clips ADD COLUMN lost_ms INTEGER NOT NULL DEFAULT 0;
CREATE INDEX clips_by_scrubbed ON clips (scrubbed_ms, id);
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
