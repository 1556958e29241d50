//! Event recording against a real RTSP camera (1 s GOP): clips start at a keyframe a
//! pre-roll before the trigger, end a post-roll after the last trigger, play and decode
//! without errors; repeated triggers extend one clip; `max_clip_length` splits an event
//! into consecutive clips that lose and repeat no frame; H.265 too; and a `sentrix run`
//! killed with SIGKILL mid-clip leaves only clips that play.

use crate::common;

use common::RtspFixture;
use sentrix::base::clock::{SimClock, system};
use sentrix::ingest::{CameraSupervisor, Codec, IngestOutputs};
use sentrix::record::recorder::{FinishedClip, RecordSettings, Recorder};
use sentrix::store::{Store, StoreConfig};
use std::path::Path;
use std::process::Command;

const GOP_NS: u64 = 1_000_000_000;

const SECOND: u64 = 1_000_000_000;

fn settings(pre_s: u64, post_s: u64, max_s: u64) -> RecordSettings {
    RecordSettings {
        pre_ns: pre_s * SECOND,
        post_ns: post_s * SECOND,
        max_clip_ns: max_s * SECOND,
        ring_max_bytes: None,
        fragment_ms: 1000,
        segment_ns: None,
    }
}

fn camera(fixture: &RtspFixture) -> (CameraSupervisor, IngestOutputs) {
    CameraSupervisor::spawn(common::camera_config(&fixture.url(), true)).unwrap()
}

/// Decrypts a clip into `dir` and checks it with ffprobe and a full ffmpeg decode.
fn check_plays(store: &Store, clip: &FinishedClip, dir: &Path) {
    let reader = store.open_clip(clip.record.id).unwrap();
    let path = dir.join(format!("clip{}.mp4", clip.record.id));
    std::fs::write(&path, reader.read_at(0, reader.plain_len()).unwrap()).unwrap();
    let probed = common::ffprobe_duration(&path);
    assert!(
        (probed * 1000.0 - clip.record.duration_ms as f64).abs() <= 40.0,
        "ffprobe {probed} s vs index {} ms",
        clip.record.duration_ms
    );
    common::assert_decodes_cleanly(&path);
    assert_eq!(common::frames_in(&path), clip.record.frames as u64);
}

fn trigger_clip(codec: Codec) {
    let dir = common::temp_dir();
    let store = common::temp_store(dir.path());
    let fixture = RtspFixture::start(codec);
    let (sup, mut out) = camera(&fixture);
    let (pre, post) = (3, 2);
    let wall0 = 1_795_000_000_000;
    let mut rec = Recorder::new(
        "cam",
        settings(pre, post, 300),
        store.clone(),
        SimClock::at(wall0), // stands still: clip times must follow stream time alone
    );
    let mut t = None;
    let mut first_pts = None;
    while rec.finished.is_empty() {
        let u = out.units.blocking_recv().expect("video");
        let pts = u.pts_ns;
        let start = *first_pts.get_or_insert(pts);
        rec.on_unit(u).unwrap();
        if t.is_none() && pts >= start + 5 * SECOND {
            let frame = out.frames.borrow().clone();
            rec.trigger("person", Some(pts), frame.as_deref()).unwrap();
            t = Some(pts);
        }
    }
    sup.stop();
    let t = t.unwrap();
    let clip = rec.finished.remove(0);
    eprintln!(
        "trigger at {t}, clip {}..{} ({} frames)",
        clip.first_pts_ns, clip.last_pts_ns, clip.frames
    );
    assert!(
        clip.first_pts_ns <= t - pre * SECOND && clip.first_pts_ns >= t - pre * SECOND - GOP_NS,
        "first frame {} for trigger {t}",
        clip.first_pts_ns
    );
    assert!(
        clip.last_pts_ns >= t + post * SECOND,
        "last frame {} before t + post",
        clip.last_pts_ns
    );
    assert_eq!(clip.record.labels, vec!["person".to_string()]);
    // Wall clock = the clock at the connection's first unit + stream time since then.
    let anchor = first_pts.unwrap();
    assert_eq!(
        clip.record.start_ms,
        wall0 + ((clip.first_pts_ns - anchor) / 1_000_000) as i64
    );
    assert_eq!(
        clip.record.end_ms,
        clip.record.start_ms + clip.record.duration_ms
    );
    assert!(
        clip.record.pre_roll_ms >= 3000 && clip.record.pre_roll_ms <= 4000,
        "{}",
        clip.record.pre_roll_ms
    );
    assert_eq!(clip.record.frames as u64, clip.frames);
    assert_eq!((clip.record.width, clip.record.height), (640, 360));
    check_plays(&store, &clip, dir.path());
    let thumb = store.open_thumbnail(clip.record.id).unwrap();
    let jpeg = thumb.read_at(0, thumb.plain_len()).unwrap();
    assert_eq!(&jpeg[..3], &[0xFF, 0xD8, 0xFF], "thumbnail is not a JPEG");
    common::assert_no_plaintext(&dir.path().join("rec"));
}

#[test]
fn h264_trigger_makes_a_clip_with_pre_and_post_roll() {
    trigger_clip(Codec::H264);
}

#[test]
fn h265_trigger_makes_a_clip_with_pre_and_post_roll() {
    trigger_clip(Codec::H265);
}

#[test]
fn repeated_triggers_extend_one_clip_and_splits_lose_no_frame() {
    let dir = common::temp_dir();
    let store = common::temp_store(dir.path());
    let fixture = RtspFixture::start(Codec::H264);
    let (sup, mut out) = camera(&fixture);
    // The same stream into two recorders: one unbounded, one split every 8 s.
    let mut whole = Recorder::new("whole", settings(2, 3, 300), store.clone(), system());
    let mut split = Recorder::new("split", settings(2, 3, 8), store.clone(), system());
    let mut fed: Vec<u64> = Vec::new();
    let mut first = None;
    let mut next_trigger = None;
    let mut triggers = 0;
    while whole.finished.is_empty() || split.is_recording() {
        let u = out.units.blocking_recv().expect("video");
        let pts = u.pts_ns;
        let start = *first.get_or_insert(pts);
        fed.push(pts);
        whole.on_unit(u.clone()).unwrap();
        split.on_unit(u).unwrap();
        // Triggers every 2 s for 20 s, from 3 s in.
        let due = next_trigger.get_or_insert(start + 3 * SECOND);
        if triggers < 10 && pts >= *due {
            whole.trigger("person", Some(pts), None).unwrap();
            split.trigger("person", Some(pts), None).unwrap();
            triggers += 1;
            *due += 2 * SECOND;
        }
    }
    sup.stop();
    assert_eq!(
        whole.finished.len(),
        1,
        "ten triggers 2 s apart must make one clip"
    );
    let one = &whole.finished[0];
    let parts = &split.finished;
    eprintln!(
        "one clip of {} frames; split into {:?}",
        one.frames,
        parts.iter().map(|c| c.frames).collect::<Vec<_>>()
    );
    assert!(
        parts.len() >= 3,
        "a ~23 s event with max 8 s makes 3+ clips, got {}",
        parts.len()
    );
    // Consecutive: each part starts with the unit right after the previous part's last.
    let index = |pts: u64| fed.iter().position(|p| *p == pts).unwrap();
    for pair in parts.windows(2) {
        assert_eq!(
            index(pair[1].first_pts_ns),
            index(pair[0].last_pts_ns) + 1,
            "gap or overlap between clips"
        );
    }
    let span = index(parts.last().unwrap().last_pts_ns) - index(parts[0].first_pts_ns) + 1;
    let total: u64 = parts.iter().map(|c| c.frames).sum();
    assert_eq!(
        total as usize, span,
        "frames in the split clips != frames sent in their span"
    );
    assert_eq!(
        one.frames, total,
        "the split clips hold exactly the one clip's frames"
    );
    assert_eq!(
        (one.first_pts_ns, one.last_pts_ns),
        (parts[0].first_pts_ns, parts.last().unwrap().last_pts_ns)
    );
    for c in parts.iter().take(parts.len() - 1) {
        let len = c.last_pts_ns - c.first_pts_ns;
        assert!((7 * SECOND..9 * SECOND).contains(&len), "part of {len} ns");
    }
    for c in parts.iter().chain(std::iter::once(one)) {
        check_plays(&store, c, dir.path());
    }
}

#[test]
fn sigkill_mid_clip_leaves_only_playable_clips() {
    let dir = common::temp_dir();
    let d = dir.path();
    let cfg = d.join("surveillance.yml");
    std::fs::write(
        &cfg,
        format!(
            "detect:\n  enabled: false\nrecord:\n  pre_detection_buffer: 2\n  post_detection_buffer: 30\nstorage:\n  recordings_dir: rec\n  database: db/sentrix.db\n  encryption:\n    key_file: {}\ncameras:\n  - id: demo\n    url: demo://?width=640&height=360&fps=15\n",
            d.join("clip.key").display()
        ),
    )
    .unwrap();
    let run = |secs: u64, trigger_after: Option<u64>, signal: i32| {
        let child = Command::new(env!("CARGO_BIN_EXE_sentrix"))
            .args(["run", "--config"])
            .arg(&cfg)
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let pid = child.id() as i32;
        if let Some(after) = trigger_after {
            std::thread::sleep(std::time::Duration::from_secs(after));
            // SAFETY: signalling our own child.
            unsafe { libc::kill(pid, libc::SIGUSR1) };
        }
        std::thread::sleep(std::time::Duration::from_secs(secs));
        unsafe { libc::kill(pid, signal) };
        let mut child = child;
        child.wait().unwrap()
    };
    // Trigger 4 s in, kill -9 five seconds into the 30 s post-roll.
    run(5, Some(4), libc::SIGKILL);
    // Restart: the sweep recovers the partial clip; then a clean stop.
    let status = run(4, None, libc::SIGTERM);
    assert!(status.success());
    let leftovers: Vec<_> = common::files_under(&d.join("rec"))
        .into_iter()
        .filter(|p| p.to_string_lossy().ends_with(".partial"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
    let config = sentrix::config::Config::load(&cfg).unwrap();
    let (store, _) = Store::open(
        StoreConfig::from_config(&config),
        sentrix::app::store_setup::load_key(&config).unwrap(),
    )
    .unwrap();
    let clips = store.clips(None, 0, i64::MAX).unwrap();
    assert_eq!(clips.len(), 1, "{clips:#?}");
    let c = &clips[0];
    assert_eq!(c.state, sentrix::store::ClipState::Truncated);
    assert!(
        c.duration_ms >= 4000,
        "kept only {} ms of a clip killed ~7 s in",
        c.duration_ms
    );
    let reader = store.open_clip(c.id).unwrap();
    let path = d.join("killed.mp4");
    std::fs::write(&path, reader.read_at(0, reader.plain_len()).unwrap()).unwrap();
    let probed = common::ffprobe_duration(&path);
    assert!(
        (probed * 1000.0 - c.duration_ms as f64).abs() <= 70.0,
        "ffprobe {probed} vs {}",
        c.duration_ms
    );
    common::assert_no_plaintext(&d.join("rec"));
}
