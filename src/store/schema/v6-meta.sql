-- Step to schema version 6. Never edit a step that has shipped: add a new one.
-- Small facts about the store, e.g. when the start-up sweep last verified every file.
CREATE TABLE meta (
    key    TEXT PRIMARY KEY,
    value  INTEGER NOT NULL
);
