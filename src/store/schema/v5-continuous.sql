-- Step to schema version 5. Never edit a step that has shipped: add a new one.
-- Continuous recording: a clip is an event clip or a segment of a run (a span of wall time
-- recorded without a gap, named by the wall ms it started at).
ALTER TABLE clips ADD COLUMN kind TEXT NOT NULL DEFAULT 'event'
    CHECK (kind IN ('event', 'segment'));
ALTER TABLE clips ADD COLUMN run_start_ms INTEGER;
-- From the MP4: the track's timescale, its media duration in ticks, and where the
-- fragments start (after ftyp and moov). 0 when unknown (clips before this migration).
ALTER TABLE clips ADD COLUMN timescale INTEGER NOT NULL DEFAULT 0;
ALTER TABLE clips ADD COLUMN media_ticks INTEGER NOT NULL DEFAULT 0;
ALTER TABLE clips ADD COLUMN init_bytes INTEGER NOT NULL DEFAULT 0;
-- Retention tier: 0 footage without an event, 1 with an event, 2 with an acknowledged
-- event, 3 with an event marked keep. Lower tiers go first under pressure.
ALTER TABLE clips ADD COLUMN tier INTEGER NOT NULL DEFAULT 1;
ALTER TABLE events ADD COLUMN keep INTEGER NOT NULL DEFAULT 0;
CREATE INDEX clips_by_camera_end ON clips (camera_id, end_ms);
CREATE INDEX clips_by_tier_start ON clips (tier, start_ms);
