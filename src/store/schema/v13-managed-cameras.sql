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
