-- Step to schema version 4. Never edit a step that has shipped: add a new one.
-- Failure counters gain a third kind: a known device (a browser that logged in before).
CREATE TABLE login_failures_v4 (
    kind             TEXT NOT NULL CHECK (kind IN ('user', 'ip', 'device')),
    subject          TEXT NOT NULL,
    failures         INTEGER NOT NULL,
    last_ms          INTEGER NOT NULL,
    locked_until_ms  INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (kind, subject)
);
INSERT INTO login_failures_v4 SELECT kind, subject, failures, last_ms, locked_until_ms
    FROM login_failures;
DROP TABLE login_failures;
ALTER TABLE login_failures_v4 RENAME TO login_failures;
-- Browsers that logged in as a user: SHA-256 of the device cookie's token.
CREATE TABLE known_devices (
    token_hash    TEXT PRIMARY KEY,
    user          TEXT NOT NULL REFERENCES users (name) ON DELETE CASCADE,
    created_ms    INTEGER NOT NULL,
    last_used_ms  INTEGER NOT NULL
);
CREATE INDEX known_devices_by_user ON known_devices (user, last_used_ms);
-- Why a clip's file cannot be served whole ('' when it can).
ALTER TABLE clips ADD COLUMN damage TEXT NOT NULL DEFAULT '';
