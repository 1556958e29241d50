//! Continuous recording against a real RTSP camera (25 fps, 1 s GOP), 3 minutes with
//! 20-second segments and one camera outage in the middle:
//! - segments are gapless within a run: every frame ingest delivered is in exactly one
//!   segment, and the next segment starts with the frame after the previous one's last;
//! - every segment starts on a keyframe and decodes cleanly;
//! - the outage ends the run: the timeline shows two spans and the gap between them;
//! - an export across three segments and the gap is one clean MP4 with the frames
//!   recorded in that range (one GOP of lead-in at most), its timeline continuous, and
//!   any byte range of it equal to the same bytes of the whole.

use crate::common;

use common::RtspFixture;
use sentrix::ingest::{CameraSupervisor, Codec};
use sentrix::playback::Export;
use sentrix::record::recorder::FinishedClip;
use sentrix::record::segmenter::Segmenter;
use sentrix::store::{Store, StoreConfig};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

const SECOND: u64 = 1_000_000_000;
const FRAME_NS: u64 = 40_000_000;
/// How long the camera streams in all, and when it drops out for a few seconds.
const RUN: Duration = Duration::from_secs(180);
const OUTAGE_AT: Duration = Duration::from_secs(95);

/// Runs the camera through a Segmenter for RUN with one outage; returns the segments and
/// the units fed.
fn record(store: &Store) -> (Vec<FinishedClip>, u64) {
    let mut fixture = RtspFixture::start(Codec::H264);
    let (sup, mut out) =
        CameraSupervisor::spawn(common::camera_config(&fixture.url(), false)).unwrap();
    let mut seg = Segmenter::new(
        "cam",
        20 * SECOND,
        1000,
        store.clone(),
        sentrix::base::clock::system(),
    );
    let (start, mut fed, mut outage_done) = (Instant::now(), 0u64, false);
    while start.elapsed() < RUN {
        if !outage_done && start.elapsed() >= OUTAGE_AT {
            fixture.stop();
            std::thread::sleep(Duration::from_secs(3));
            fixture.restart();
            outage_done = true;
        }
        match out.units.blocking_recv() {
            Some(u) => {
                fed += 1;
                seg.on_unit(u).unwrap();
            }
            None => break,
        }
    }
    seg.end_run().unwrap();
    sup.stop();
    (std::mem::take(&mut seg.finished), fed)
}

fn decrypt(store: &Store, id: i64, dir: &Path) -> std::path::PathBuf {
    let reader = store.open_clip(id).unwrap();
    let path = dir.join(format!("seg{id}.mp4"));
    std::fs::write(&path, reader.read_at(0, reader.plain_len()).unwrap()).unwrap();
    path
}

fn ffprobe(path: &Path, entries: &str, extra: &[&str]) -> String {
    let out = Command::new("ffprobe")
        .args(["-v", "error", "-select_streams", "v:0"])
        .args(extra)
        .args(["-show_entries", entries, "-of", "csv=p=0"])
        .arg(path)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn continuous_segments_are_gapless_and_export_across_a_gap() {
    let dir = common::temp_dir();
    let store = common::temp_store(dir.path());
    let (segments, fed) = record(&store);
    let total: u64 = segments.iter().map(|s| s.frames).sum();
    assert_eq!(total, fed, "every unit fed is in exactly one segment");
    let runs: Vec<i64> = segments
        .iter()
        .map(|s| s.record.run_start_ms.unwrap())
        .collect();
    let gap_at = (1..segments.len())
        .find(|&i| runs[i] != runs[i - 1])
        .expect("the outage starts a new run");
    assert!(
        runs[gap_at..].iter().all(|r| *r == runs[gap_at]),
        "one outage, two runs: {runs:?}"
    );
    for pair in segments.windows(2) {
        if pair[0].record.run_start_ms == pair[1].record.run_start_ms {
            assert_eq!(
                pair[1].first_pts_ns,
                pair[0].last_pts_ns + FRAME_NS,
                "segments of a run follow frame by frame"
            );
        }
    }
    for s in &segments {
        let path = decrypt(&store, s.record.id, dir.path());
        common::assert_decodes_cleanly(&path);
        assert_eq!(
            common::frames_in(&path),
            s.frames,
            "segment {}",
            s.record.id
        );
        let first_key = ffprobe(&path, "frame=key_frame", &["-read_intervals", "%+#1"]);
        assert_eq!(
            first_key.trim().trim_end_matches(","),
            "1",
            "segment {} starts on a keyframe",
            s.record.id
        );
    }
    check_timeline(&store, &segments, gap_at);
    check_export(&store, &segments, gap_at, dir.path());
}

fn check_timeline(store: &Store, segments: &[FinishedClip], gap_at: usize) {
    let first = &segments[0].record;
    let last = &segments.last().unwrap().record;
    let t = store
        .timeline(
            "cam",
            first.start_ms - 10_000,
            last.end_ms + 10_000,
            last.end_ms + 10_000,
        )
        .unwrap();
    assert_eq!(t.spans.len(), 2, "{:?}", t.spans);
    assert_eq!(t.spans[0].end_ms, segments[gap_at - 1].record.end_ms);
    assert_eq!(t.spans[1].start_ms, segments[gap_at].record.start_ms);
    let inner: Vec<_> = t.gaps.iter().filter(|(a, _)| *a > first.start_ms).collect();
    assert_eq!(
        inner.len(),
        2,
        "the outage and the end of the window: {:?}",
        t.gaps
    );
    let outage_ms = inner[0].1 - inner[0].0;
    assert!(
        (2_000..15_000).contains(&outage_ms),
        "the gap is the outage: {outage_ms} ms"
    );
}

/// Frames of `s` whose wall time is in [from_ms, to_ms].
fn frames_between(s: &FinishedClip, from_ms: i64, to_ms: i64) -> u64 {
    (0..s.frames)
        .map(|i| s.record.start_ms + (i * FRAME_NS / 1_000_000) as i64)
        .filter(|t| (from_ms..=to_ms).contains(t))
        .count() as u64
}

fn check_export(store: &Store, segments: &[FinishedClip], gap_at: usize, dir: &Path) {
    assert!(gap_at >= 2, "two segments before the outage");
    let from = segments[gap_at - 2].record.start_ms + 5_500;
    let to = segments[gap_at].record.start_ms + 5_500;
    let export = Export::plan(store, "cam", from, to).unwrap();
    assert_eq!(
        export.gaps.len(),
        1,
        "the outage is skipped and said: {:?}",
        export.gaps
    );
    let whole = export.read_at(0, export.len()).unwrap();
    assert_eq!(whole.len() as u64, export.len());
    let path = dir.join("export.mp4");
    std::fs::write(&path, &whole).unwrap();
    common::assert_decodes_cleanly(&path);
    let expected: u64 = segments.iter().map(|s| frames_between(s, from, to)).sum();
    let got = common::frames_in(&path);
    assert!(
        got >= expected && got <= expected + 26,
        "exported {got} frames, {expected} recorded in the range"
    );
    // The timeline is continuous: every frame 40 ms after the one before (the gap skipped).
    let pts: Vec<f64> = ffprobe(&path, "packet=pts_time", &[])
        .lines()
        .filter_map(|l| l.trim().trim_end_matches(',').parse().ok())
        .collect();
    let mut sorted = pts.clone();
    sorted.sort_by(f64::total_cmp);
    for w in sorted.windows(2) {
        assert!(
            (w[1] - w[0] - 0.04).abs() < 0.002,
            "frames at {} and {}",
            w[0],
            w[1]
        );
    }
    // Any byte range equals the same bytes of the whole, read cold (a new plan).
    let again = Export::plan(store, "cam", from, to).unwrap();
    let len = export.len();
    for (a, n) in [
        (len / 2, len / 4),
        (len / 3 + 17, 1000),
        (len - 5000, 5000),
        (1, 100),
    ] {
        assert_eq!(
            again.read_at(a, n).unwrap(),
            whole[a as usize..(a + n) as usize],
            "bytes {a}+{n}"
        );
    }
}

/// `sentrix run` recording the demo camera continuously in 10-second segments.
fn continuous_config(d: &Path) -> std::path::PathBuf {
    let cfg = d.join("surveillance.yml");
    std::fs::write(
        &cfg,
        format!(
            "network:\n  api_port: {}\ndetect:\n  enabled: false\nrecord:\n  mode: continuous\n  segment_seconds: 10\nstorage:\n  recordings_dir: rec\n  database: db/sentrix.db\n  encryption:\n    key_file: {}\ncameras:\n  - id: demo\n    url: demo://?width=640&height=360&fps=15\n",
            std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port(),
            d.join("clip.key").display()
        ),
    )
    .unwrap();
    cfg
}

/// Starts `sentrix run` and waits for the camera to stream; returns the child and the
/// wall ms it started streaming.
fn run_until_streaming(cfg: &Path) -> (std::process::Child, i64) {
    let (child, lines) = common::run::spawn_run(cfg);
    let mut log = Vec::new();
    common::run::wait_for(&lines, "streaming (connection", &mut log)
        .unwrap_or_else(|| panic!("no stream: {log:#?}"));
    let at = sentrix::base::clock::wall_ms();
    std::thread::spawn(move || for _ in lines {}); // keep draining the log
    (child, at)
}

#[test]
fn a_crash_costs_the_downtime_and_at_most_one_fragment() {
    let dir = common::temp_dir();
    let d = dir.path();
    let cfg = continuous_config(d);
    let (mut first, _) = run_until_streaming(&cfg);
    // Half-way through a fragment (they close on the demo's 1 s GOPs).
    std::thread::sleep(Duration::from_millis(25_500));
    // SAFETY: signalling our own child.
    unsafe { libc::kill(first.id() as i32, libc::SIGKILL) };
    first.wait().unwrap();
    let killed_ms = sentrix::base::clock::wall_ms();
    // Down for a second: a restart can take under the 250 ms that exports (and the
    // timeline) count as continuous, and the gap below must be one a viewer would see.
    std::thread::sleep(Duration::from_secs(1));
    let (second, streaming_ms) = run_until_streaming(&cfg);
    std::thread::sleep(Duration::from_secs(12));
    assert!(common::run::stop(second), "a clean stop");

    let config = sentrix::config::Config::load(&cfg).unwrap();
    let (store, _) = Store::open(
        StoreConfig::from_config(&config),
        sentrix::app::store_setup::load_key(&config).unwrap(),
    )
    .unwrap();
    let now = sentrix::base::clock::wall_ms();
    let t = store.timeline("demo", now - 600_000, now, now).unwrap();
    assert_eq!(t.spans.len(), 2, "{:#?}", t.spans);
    let (before, after) = (&t.spans[0], &t.spans[1]);
    assert!(
        before.end_ms >= killed_ms - 1_500,
        "the first run keeps all but the open fragment: ends {} ms before the kill",
        killed_ms - before.end_ms
    );
    assert!(
        after.start_ms <= streaming_ms + 1_500,
        "the second run starts with the stream: {} ms after it came",
        after.start_ms - streaming_ms
    );
    // The segment the crash cut was recovered, truncated, and plays, alone and exported.
    let clips = store.media_overlapping("demo", 0, now).unwrap();
    let cut = clips
        .iter()
        .find(|c| c.state == sentrix::store::ClipState::Truncated)
        .expect("the recovered segment");
    assert_eq!(cut.end_ms, before.end_ms);
    common::assert_decodes_cleanly(&decrypt(&store, cut.id, d));
    let export = Export::plan(&store, "demo", before.start_ms, after.end_ms).unwrap();
    let path = d.join("across-the-crash.mp4");
    std::fs::write(&path, export.read_at(0, export.len()).unwrap()).unwrap();
    common::assert_decodes_cleanly(&path);
    assert_eq!(export.gaps.len(), 1, "{:?}", export.gaps);
}
