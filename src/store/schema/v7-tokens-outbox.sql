-- Step to schema version 7. Never edit a step that has shipped: add a new one.
-- API tokens for scripts and integrations: only SHA-256 of the token is kept.
CREATE TABLE api_tokens (
    name          TEXT PRIMARY KEY,
    token_hash    TEXT NOT NULL UNIQUE,
    role          TEXT NOT NULL CHECK (role IN ('admin', 'viewer')),
    scopes        TEXT NOT NULL,              -- space-separated
    created_ms    INTEGER NOT NULL,
    expires_ms    INTEGER,                    -- NULL: never
    last_used_ms  INTEGER,
    last_address  TEXT NOT NULL DEFAULT '',
    uses          INTEGER NOT NULL DEFAULT 0
);
-- Notifications: written before the first attempt, marked when the target acknowledged.
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
                     CHECK (state IN ('pending', 'delivered', 'expired')),
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
-- Analytics scan events by time reading nothing but this index (it covers the query).
CREATE INDEX events_for_analytics ON events (start_ms, label, camera_id, end_ms, acknowledged);
