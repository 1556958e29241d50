-- Step to schema version 9. Never edit a step that has shipped: add a new one.
-- A message the target refused for good (a 4xx other than 408/429, a refused TLS
-- certificate, a bad address) is 'rejected': not retried, shown on the System page.
-- SQLite cannot change a CHECK in place, so the table is rebuilt with its rows and indexes.
CREATE TABLE outbox_v9 (
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
INSERT INTO outbox_v9 SELECT id, target, delivery_id, event_id, kind, payload, created_ms,
    attempts, next_attempt_ms, last_error, state, done_ms FROM outbox;
DROP TABLE outbox;
ALTER TABLE outbox_v9 RENAME TO outbox;
CREATE INDEX outbox_due ON outbox (target, state, next_attempt_ms);
CREATE INDEX outbox_by_created ON outbox (created_ms);
