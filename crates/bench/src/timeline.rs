//! `sentrix-bench timeline`: reading recorded time back. In a temporary store:
//! - a day of one camera, 1,440 one-minute segments and 2,000 events (index rows only:
//!   the timeline reads no file): the latency of the timeline query with its JSON, as the
//!   API answers it, and the index's size per camera-day;
//! - an hour of another camera, 60 sealed one-minute segments of 1080p H.264 at about
//!   4 Mbit/s (one real segment, muxed and sealed by the recorder's own parts, linked 60
//!   times): the time to the first byte of an export of the whole hour.

use super::bigclip::encoded_stretch;
use sentrix::ingest::pipeline::SyntheticSpec;
use sentrix::ingest::{AccessUnit, Codec};
use sentrix::playback::Export;
use sentrix::store::{ClipKind, ClipMeta, ClipRecord, Store};
use std::path::Path;
use std::time::Instant;

const MINUTE_MS: i64 = 60_000;
const FPS: u32 = 15;

pub fn timeline(dir: &Path) -> anyhow::Result<()> {
    super::in_work_dir(dir, "timeline", measure)
}

fn measure(work: &Path) -> anyhow::Result<()> {
    let store = super::work_store(work)?;
    let day0 = sentrix::base::clock::wall_ms() - 2 * 86_400_000;
    let before = index_bytes(&store, work)?;
    fill_day(&store, day0)?;
    let per_day = index_bytes(&store, work)?.saturating_sub(before);
    println!(
        "bench timeline: index {:.0} KB per camera-day (1,440 segments, 2,000 events)",
        per_day as f64 / 1024.0
    );
    let mut samples = Vec::new();
    for _ in 0..200 {
        let t = Instant::now();
        let line = store.timeline(
            "day",
            day0,
            day0 + 86_400_000,
            sentrix::base::clock::wall_ms(),
        )?;
        let body = serde_json::to_vec(&line)?;
        std::hint::black_box(body);
        samples.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    let (median, p99) = super::quantiles(samples);
    println!("timeline of 24 h: median {median:.2} ms, p99 {p99:.2} ms (the goal: 50 ms)");
    super::table::add(super::table::Figure::alone(
        "timeline API, 24 h of 1,440 segments and 2,000 events",
        format!("median {median:.2} ms, p99 {p99:.2} ms"),
    ));
    hour_export(&store, day0)
}

/// The index's bytes on disk, its WAL checkpointed into it first.
fn index_bytes(store: &Store, dir: &Path) -> anyhow::Result<u64> {
    store.checkpoint()?;
    Ok(std::fs::metadata(dir.join("index.db"))?.len())
}

/// A row of a one-minute segment of camera `camera` starting at `start_ms`.
fn segment_row(
    camera: &str,
    path: String,
    start_ms: i64,
    run_ms: i64,
    like: &ClipRecord,
) -> ClipRecord {
    ClipRecord {
        id: 0,
        camera_id: camera.into(),
        path,
        start_ms,
        end_ms: start_ms + MINUTE_MS,
        run_start_ms: Some(run_ms),
        kind: ClipKind::Segment,
        ..like.clone()
    }
}

/// A day of camera "day": 1,440 segments in one run, 2,000 events over it.
fn fill_day(store: &Store, day0: i64) -> anyhow::Result<()> {
    let like = ClipRecord {
        id: 0,
        camera_id: String::new(),
        path: String::new(),
        start_ms: 0,
        end_ms: 0,
        duration_ms: MINUTE_MS,
        frames: 900,
        plain_bytes: 30_000_000,
        file_bytes: 30_010_000,
        codec: "avc1".into(),
        width: 1920,
        height: 1080,
        labels: Vec::new(),
        pre_roll_ms: 0,
        post_roll_ms: 0,
        state: sentrix::store::ClipState::Complete,
        key_id: store.key_id().to_string(),
        damage: String::new(),
        lost_ms: 0,
        kind: ClipKind::Segment,
        run_start_ms: None,
        timescale: 90_000,
        media_ticks: 60 * 90_000,
        init_bytes: 900,
        tier: 0,
        offsite: Default::default(),
    };
    for m in 0..1440 {
        let start = day0 + m * MINUTE_MS;
        let path = format!("day/bench/{start}-run{day0}-{m:08x}.mp4.sntx");
        store.insert_clip(segment_row("day", path, start, day0, &like), None)?;
    }
    for e in 0..2000i64 {
        let start = day0 + e * 43_200 + 5_000;
        let label = ["person", "car", "dog", "bicycle"][e as usize % 4];
        let id = store.insert_event("day", label, start, 0.8, &[0.1, 0.2, 0.3, 0.4])?;
        store.update_event(id, Some(start + 8_000), 0.85, &[0.1, 0.2, 0.3, 0.4])?;
    }
    Ok(())
}

/// An hour of camera "hour" (one real segment linked 60 times), then the time to the
/// first byte of its export.
fn hour_export(store: &Store, t0: i64) -> anyhow::Result<()> {
    let spec = SyntheticSpec {
        codec: Codec::H264,
        width: 1920,
        height: 1080,
        fps: FPS,
        bitrate_kbps: 4000,
        pattern: "snow",
        ..Default::default()
    };
    let stretch = encoded_stretch(spec, 2 * FPS as usize)?;
    let first = write_minute(store, &stretch, t0)?;
    let root = store.recordings_dir().to_path_buf();
    for m in 1..60 {
        let start = t0 + m * MINUTE_MS;
        let path = format!("hour/bench/{start}-run{t0}-copy.mp4.sntx");
        std::fs::create_dir_all(root.join("hour/bench"))?;
        std::fs::hard_link(root.join(&first.path), root.join(&path))?;
        let row = ClipRecord {
            end_ms: start + first.duration_ms,
            ..segment_row("hour", path, start, t0, &first)
        };
        store.insert_clip(row, None)?;
    }
    let mut samples = Vec::new();
    let mut bytes = 0;
    for _ in 0..20 {
        let t = Instant::now();
        let export = Export::plan(store, "hour", t0 + 30_000, t0 + 30_000 + 3_600_000)?;
        let piece = export.read_at(0, 256 * 1024)?;
        samples.push(t.elapsed().as_secs_f64() * 1000.0);
        bytes = export.len();
        std::hint::black_box(piece);
    }
    let (median, p99) = super::quantiles(samples);
    println!(
        "export of 1 h ({:.0} MB): first 256 KiB after median {median:.1} ms, p99 {p99:.1} ms",
        bytes as f64 / 1e6
    );
    Ok(())
}

/// One minute of `stretch` (repeated) as a sealed segment of camera "hour" at `start_ms`.
fn write_minute(
    store: &Store,
    stretch: &[AccessUnit],
    start_ms: i64,
) -> anyhow::Result<ClipRecord> {
    let frame_ns = 1_000_000_000 / FPS as u64;
    let mut writer = store.begin_clip(ClipMeta {
        camera_id: "hour".into(),
        start_ms,
        run_start_ms: Some(start_ms),
        ..Default::default()
    })?;
    let mut mux = sentrix::media::mux::Muxer::new(stretch[0].stream.clone(), 1000);
    let frames = 60 * FPS as u64;
    for i in 0..frames {
        let u = &stretch[(i % stretch.len() as u64) as usize];
        let pts = i * frame_ns;
        mux.push(&AccessUnit {
            pts_ns: pts,
            dts_ns: u.dts_ns.map(|_| pts),
            duration_ns: Some(frame_ns),
            keyframe: u.keyframe,
            data: u.data.clone(),
            stream: u.stream.clone(),
        })?;
        writer.write(&mux.take_output())?;
    }
    writer.write(&mux.finish()?)?;
    Ok(writer.finish(None)?)
}
