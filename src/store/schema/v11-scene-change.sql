-- Step to schema version 11. Never edit a step that has shipped: add a new one.
-- A motion event during which the whole picture changed (a light switched, the camera
-- moved): its box is the whole frame, and it says so.
ALTER TABLE events ADD COLUMN scene_change INTEGER NOT NULL DEFAULT 0;
