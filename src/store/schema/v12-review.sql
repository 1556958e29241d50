-- Step to schema version 12. Never edit a step that has shipped: add a new one.
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
ALTER TABLE events ADD COLUMN review_id INTEGER REFERENCES review_items (id) ON DELETE SET NULL;
-- The camera's zones the object stood in when the event started (comma-separated).
ALTER TABLE events ADD COLUMN zones TEXT NOT NULL DEFAULT '';
CREATE INDEX events_by_review ON events (review_id);
-- Tiers now rank alert footage above detection footage (retention.rs): keep moves to 5.
UPDATE clips SET tier = 5 WHERE tier = 3;
