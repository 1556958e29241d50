//! The background integrity scrub against a real store (real sealed files, real SQLite)
//! with a simulated clock: a week of segments with thumbnails and event snapshots,
//! one bit flipped in the middle of one segment. The start-up check cannot see it (it
//! opens only the first and last chunks); one scrub pass finds it, salvages the segment
//! to its last good fragment, records what was lost and by whom, raises a `damaged`
//! event, and flags nothing else. It prints its read rate and CPU share. A pass stopped
//! half-way resumes after a restart where it stopped; `sentrix scrub --now` reports the
//! same damage from the command line.

use crate::common;
use sentrix::app::scrub::Scrubber;
use sentrix::base::clock::{ClockRef, SimClock};
use sentrix::store::keys::MasterKey;
use sentrix::store::{ClipMeta, ClipRecord, Store, StoreConfig};
use std::path::Path;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

const SENTRIX: &str = env!("CARGO_BIN_EXE_sentrix");
const HOUR_MS: i64 = 3_600_000;
const DAY_MS: i64 = 24 * HOUR_MS;

fn config(d: &Path) -> StoreConfig {
    StoreConfig {
        recordings_dir: d.join("rec"),
        database: d.join("index.db"),
        chunk_size: 16 * 1024,
        retention: sentrix::store::RetentionPolicy::KEEP_ALL,
        offsite_uploaded_first: false,
        review: Default::default(),
    }
}

fn open(d: &Path) -> (Store, sentrix::store::SweepReport) {
    Store::open(config(d), MasterKey::from_bytes([5; 32])).unwrap()
}

/// An hourly segment at `start_ms` with a thumbnail, and an event with a snapshot over it.
fn add_segment(store: &Store, mp4: &[u8], jpeg: &[u8], start_ms: i64) -> ClipRecord {
    let event = store
        .insert_event(
            "porch",
            "person",
            start_ms + 100,
            0.9,
            &[0.1, 0.1, 0.2, 0.2],
        )
        .unwrap();
    store.set_event_snapshot(event, jpeg).unwrap();
    store
        .update_event(event, Some(start_ms + 900), 0.9, &[0.1, 0.1, 0.2, 0.2])
        .unwrap();
    let mut w = store
        .begin_clip(ClipMeta {
            camera_id: "porch".into(),
            start_ms,
            run_start_ms: Some(start_ms),
            ..Default::default()
        })
        .unwrap();
    w.write(mp4).unwrap();
    w.finish(Some(jpeg)).unwrap()
}

/// Flips one bit in the middle of `path`.
fn flip_middle_bit(path: &Path) {
    use std::os::unix::fs::FileExt;
    let f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .unwrap();
    let at = f.metadata().unwrap().len() / 2;
    let mut byte = [0u8];
    f.read_exact_at(&mut byte, at).unwrap();
    byte[0] ^= 0x10;
    f.write_all_at(&byte, at).unwrap();
}

/// CPU seconds this thread has used.
fn thread_cpu_s() -> f64 {
    common::cpu_seconds("/proc/thread-self/stat")
}

/// A week of segments every 4 hours ending at `now_ms`; returns them.
fn week_of_segments(store: &Store, now_ms: i64) -> Vec<ClipRecord> {
    let mp4 = common::synthetic_mp4(4);
    let jpeg = std::fs::read(common::testdata_dir().join("coco_000000001000.jpg")).unwrap();
    (0..7 * 6)
        .map(|n| add_segment(store, &mp4, &jpeg, now_ms - 7 * DAY_MS + n * 4 * HOUR_MS))
        .collect()
}

#[test]
fn one_scrub_pass_finds_a_flipped_bit_in_a_week_old_store() {
    let dir = common::temp_dir();
    let d = dir.path();
    let start_ms = sentrix::base::clock::wall_ms();
    let clock = SimClock::at(start_ms);
    let sim: ClockRef = clock.clone();
    let (store, _) = open(d);
    let segments = week_of_segments(&store, start_ms);
    let victim = &segments[segments.len() / 2];
    drop(store);
    flip_middle_bit(&d.join("rec").join(&victim.path));

    // The start-up check opens the changed file's first and last chunks: it sees nothing.
    let (store, sweep) = open(d);
    assert_eq!(sweep.damaged, 0, "{sweep:?}");
    assert!(store.clip(victim.id).unwrap().salvage_note().is_none());

    // A week later in simulated time, one pass at a bounded rate.
    clock.advance(7 * DAY_MS as u64 + 1);
    let rate_bytes_per_s = 40_000_000;
    let scrub = Scrubber::new(&store, 7 * DAY_MS, rate_bytes_per_s, sim.clone());
    let (cpu_before, wall) = (thread_cpu_s(), Instant::now());
    let pass = scrub.pass(false, &CancellationToken::new()).unwrap();
    let cpu_share = (thread_cpu_s() - cpu_before) / wall.elapsed().as_secs_f64();
    // (A test build's AES-GCM is unoptimised: the release figures are `sentrix scrub --now`'s.)
    eprintln!(
        "scrub: {} files of {} clips, {:.1} MB in {:.2} s: {:.1} MB/s (limit {:.0}), CPU {:.0} % \
         of a core (test build); damaged: {:?}",
        pass.files,
        pass.clips,
        pass.bytes as f64 / 1e6,
        pass.took.as_secs_f64(),
        pass.mb_per_s(),
        rate_bytes_per_s as f64 / 1e6,
        cpu_share * 100.0,
        pass.damaged
    );
    assert_eq!(pass.clips, segments.len() as u64);
    assert_eq!(
        pass.files,
        3 * segments.len() as u64,
        "segment, thumbnail, snapshot"
    );
    assert!(
        pass.mb_per_s() <= rate_bytes_per_s as f64 / 1e6 * 1.1,
        "the rate is bounded"
    );

    // Exactly the victim, salvaged to its last good fragment and flagged as such.
    assert_eq!(pass.damaged.len(), 1, "{:?}", pass.damaged);
    let found = &pass.damaged[0];
    assert_eq!(
        (found.path.as_str(), found.kind.as_str()),
        (victim.path.as_str(), "clip")
    );
    assert_eq!(found.found_by, "scrub");
    assert!(found.problem.contains("chunk"), "{found:?}");
    let after = store.clip(victim.id).unwrap();
    assert_eq!(after.state.as_str(), "truncated");
    assert!(
        after.lost_ms > 0 && after.duration_ms < victim.duration_ms,
        "{after:?}"
    );
    let note = after.salvage_note().unwrap();
    assert!(note.starts_with("salvaged: the last "), "{note}");
    assert!(store.open_clip(victim.id).is_ok(), "what is left plays");
    assert_eq!(store.damaged_files_of(victim.id).unwrap(), pass.damaged);
    assert_eq!(store.damaged_file_count().unwrap(), 1);
    for c in store.clips(None, 0, i64::MAX).unwrap() {
        if c.id != victim.id {
            assert!(c.damage.is_empty() && c.lost_ms == 0 && c.salvage_note().is_none());
        }
    }
    let events = store.events(&Default::default()).unwrap();
    let damaged: Vec<_> = events.iter().filter(|e| e.label == "damaged").collect();
    assert_eq!(damaged.len(), 1, "one damaged event");
    assert_eq!(damaged[0].start_ms, victim.start_ms);

    // A file removed behind the store's back: its row goes, and the pass goes on.
    let gone = &segments[0];
    std::fs::remove_file(d.join("rec").join(&gone.path)).unwrap();
    clock.advance(7 * DAY_MS as u64 + 1);
    let pass = scrub.pass(false, &CancellationToken::new()).unwrap();
    assert_eq!(pass.clips, segments.len() as u64, "{pass:?}");
    assert!(
        store.clip(gone.id).is_err(),
        "the row without a file is gone"
    );
    let segments = &segments[1..];

    // Nothing is due again until a scrub period has passed.
    let again = scrub.pass(false, &CancellationToken::new()).unwrap();
    assert_eq!(again.clips, 0);

    // A pass stopped half-way resumes after a restart where it stopped.
    clock.advance(7 * DAY_MS as u64 + 1);
    let stop = CancellationToken::new();
    let slow = Scrubber::new(&store, 7 * DAY_MS, 1_000_000, sim.clone());
    let stopper = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(2000));
            stop.cancel();
        })
    };
    let first = slow.pass(false, &stop).unwrap();
    stopper.join().unwrap();
    drop((slow, scrub, store));
    let (store, _) = open(d);
    let rest = Scrubber::new(&store, 7 * DAY_MS, u64::MAX / 2, sim)
        .pass(false, &CancellationToken::new())
        .unwrap();
    eprintln!(
        "resumed: {} clips before the restart, {} after",
        first.clips, rest.clips
    );
    assert!(
        first.clips > 0 && first.clips < segments.len() as u64,
        "{}",
        first.clips
    );
    assert_eq!(
        first.clips + rest.clips,
        segments.len() as u64,
        "each clip once"
    );
    assert!(rest.damaged.is_empty(), "the salvaged clip is whole now");
}

#[test]
fn scrub_now_on_the_command_line_reports_the_damage() {
    let dir = common::temp_dir();
    let d = dir.path();
    let cfg_path = common::run::write_config(d);
    let config = sentrix::config::Config::load(&cfg_path).unwrap();
    let key = sentrix::app::store_setup::load_key(&config).unwrap();
    let (store, _) = Store::open(StoreConfig::from_config(&config), key).unwrap();
    let mp4 = common::synthetic_mp4(4);
    let jpeg = std::fs::read(common::testdata_dir().join("coco_000000001000.jpg")).unwrap();
    let now = sentrix::base::clock::wall_ms();
    let clips: Vec<ClipRecord> = (0..3)
        .map(|i| add_segment(&store, &mp4, &jpeg, now - (3 - i) * 60_000))
        .collect();
    drop(store);
    flip_middle_bit(&store_dir(d).join(&clips[1].path));

    let scrub = |code: i32, says: &[&str]| {
        let out = std::process::Command::new(SENTRIX)
            .args(["scrub", "--now", "--config"])
            .arg(&cfg_path)
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout).to_string();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(code), "{text}{err}");
        for s in says {
            assert!(text.contains(s), "{s:?} not in:\n{text}");
        }
        text
    };
    let first = scrub(
        1,
        &[
            "authenticated 9 files of 3 clips",
            "damaged clip",
            "salvaged: the last",
        ],
    );
    assert!(first.contains(&clips[1].path), "{first}");
    scrub(0, &["authenticated 9 files of 3 clips", "no damaged file"]);
}

fn store_dir(d: &Path) -> std::path::PathBuf {
    d.join("rec")
}
