-- Step to schema version 3. Never edit a step that has shipped: add a new one.
CREATE TABLE users (
    name        TEXT PRIMARY KEY,
    role        TEXT NOT NULL CHECK (role IN ('admin', 'viewer')),
    phc         TEXT NOT NULL,              -- PBKDF2-HMAC-SHA256 PHC string
    created_ms  INTEGER NOT NULL
);
-- Failed logins per username ('user') and per client address ('ip'); survives restarts.
CREATE TABLE login_failures (
    kind             TEXT NOT NULL CHECK (kind IN ('user', 'ip')),
    subject          TEXT NOT NULL,
    failures         INTEGER NOT NULL,
    last_ms          INTEGER NOT NULL,
    locked_until_ms  INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (kind, subject)
);
