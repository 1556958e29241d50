-- Step to schema version 13. Never edit a step that has shipped: add a new one.
-- Cameras added in the dashboard (store/managed.rs). surveillance.yml is never rewritten:
-- these are merged with its cameras at start, at a reload and when one is changed.
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
-- The operator role (auth/): users and tokens may now hold it. SQLite cannot alter a
-- CHECK, so both tables are made again, known_devices (which refers to users) with them;
-- it is dropped first so that dropping users deletes nothing through its foreign key.
CREATE TEMP TABLE users_v12 AS SELECT * FROM users;
CREATE TEMP TABLE known_devices_v12 AS SELECT * FROM known_devices;
CREATE TEMP TABLE api_tokens_v12 AS SELECT * FROM api_tokens;
DROP TABLE known_devices;
DROP TABLE users;
DROP TABLE api_tokens;
CREATE TABLE users (
    name        TEXT PRIMARY KEY,
    role        TEXT NOT NULL CHECK (role IN ('admin', 'operator', 'viewer')),
    phc         TEXT NOT NULL,              -- PBKDF2-HMAC-SHA256 PHC string
    created_ms  INTEGER NOT NULL
);
INSERT INTO users (name, role, phc, created_ms)
    SELECT name, role, phc, created_ms FROM users_v12;
CREATE TABLE known_devices (
    token_hash    TEXT PRIMARY KEY,
    user          TEXT NOT NULL REFERENCES users (name) ON DELETE CASCADE,
    created_ms    INTEGER NOT NULL,
    last_used_ms  INTEGER NOT NULL
);
CREATE INDEX known_devices_by_user ON known_devices (user, last_used_ms);
INSERT INTO known_devices (token_hash, user, created_ms, last_used_ms)
    SELECT token_hash, user, created_ms, last_used_ms FROM known_devices_v12;
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
INSERT INTO api_tokens (name, token_hash, role, scopes, created_ms, expires_ms,
        last_used_ms, last_address, uses)
    SELECT name, token_hash, role, scopes, created_ms, expires_ms, last_used_ms,
        last_address, uses FROM api_tokens_v12;
DROP TABLE users_v12;
DROP TABLE known_devices_v12;
DROP TABLE api_tokens_v12;
