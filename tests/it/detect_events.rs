//! Detection end to end, with the real YOLOX-Nano model and the real walking-people video
//! served by the in-process RTSP fixture: ingest → decode branch → motion gate → model →
//! tracker → event (stored, sealed snapshot, on the bus) → recorder clip with pre-roll.
//! A static scene gives no event and is almost entirely gated by motion; a mask over the
//! whole picture, or a zone where nobody walks, suppresses the events.

use crate::common;

use sentrix::config::Area;
use sentrix::detect::runner::{DetectorSettings, EventNotice, event_bus};
use sentrix::detect::{DetectorRunner, InferencePool, Model};
use sentrix::ingest::CameraSupervisor;
use sentrix::ingest::pipeline::{DecodeSpec, Source};
use sentrix::record::recorder::RecordSettings;
use sentrix::record::runner::RecorderRunner;
use sentrix::store::{EventQuery, MasterKey, RetentionPolicy, Store, StoreConfig};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Seconds of black before the people appear (so the ring holds pre-roll by then).
const LEAD_IN_S: f64 = 1.5;
const FPS: u32 = 25;

/// Black for LEAD_IN_S, then the first 10 s of OpenCV's vtest.avi (pedestrians on a
/// square, from Debian's opencv-doc), as H.264 at 25 fps with a keyframe every 0.2 s and
/// no B-frames, prepared once with ffmpeg. The fixture streams the file as it is (paced by
/// the RTSP server's clock), like a camera: no encoder reconfiguring mid-stream.
pub(crate) fn people_launch() -> String {
    static FILE: std::sync::OnceLock<std::path::PathBuf> = std::sync::OnceLock::new();
    let file = FILE.get_or_init(|| {
        let video = common::footage("vtest.avi");
        // Shared between runs: built under a private name, then renamed into place.
        let out = std::env::temp_dir().join("sentrix-test-vtest-v1.mp4");
        if out.exists() {
            return out;
        }
        let tmp = std::env::temp_dir().join(format!("sentrix-vtest-{}.mp4", std::process::id()));
        let status = std::process::Command::new("ffmpeg")
            .args(["-v", "error", "-y", "-f", "lavfi", "-i"])
            .arg(format!("color=black:s=768x576:r={FPS}:d={LEAD_IN_S}"))
            .args(["-t", "10", "-i"])
            .arg(&video)
            .args([
                "-filter_complex",
                &format!("[1:v]fps={FPS},setsar=1[p];[0:v][p]concat=n=2:v=1:a=0,format=yuv420p[v]"),
                "-map",
                "[v]",
                "-c:v",
                "libx264",
                "-preset",
                "ultrafast",
                "-bf",
                "0",
                "-g",
                "5",
                "-r",
            ])
            .arg(FPS.to_string())
            .arg(&tmp)
            .status()
            .expect("ffmpeg runs (apt-get install ffmpeg)");
        assert!(
            status.success(),
            "ffmpeg could not prepare the people video"
        );
        std::fs::rename(&tmp, &out).unwrap();
        out
    });
    format!(
        "( filesrc location={} ! qtdemux ! h264parse ! rtph264pay name=pay0 pt=96 config-interval=-1 )",
        file.display()
    )
}

fn static_launch() -> String {
    format!(
        "( videotestsrc is-live=true pattern=solid-color foreground-color=0xff4a7fb0 \
         ! video/x-raw,format=I420,width=640,height=360,framerate={FPS}/1 \
         ! x264enc tune=zerolatency speed-preset=ultrafast sliced-threads=false key-int-max={FPS} bitrate=500 \
         ! rtph264pay name=pay0 pt=96 config-interval=-1 )"
    )
}

fn pool() -> Arc<InferencePool> {
    let path = common::testdata_dir().join("yolox_nano.onnx");
    let labels = sentrix::detect::model::load_labels(None).unwrap();
    let model = Model::load(&path, 416, None, labels).unwrap_or_else(|e| panic!("{e}"));
    InferencePool::new(model, 1)
}

fn settings(zones: Vec<Area>, masks: Vec<Area>) -> DetectorSettings {
    DetectorSettings {
        camera_id: "cam".into(),
        labels: vec!["person".into()],
        min_score: HashMap::new(),
        // The people are small in this high shot: YOLOX-Nano scores many of them 0.3-0.6.
        confidence: 0.3,
        record_min_confidence: 0.4,
        event_gap_ms: 2000,
        dedup_window_ms: 10_000,
        motion_enabled: true,
        motion_threshold: 25,
        motion_min_area: 0.003,
        forced_interval_ms: 10_000,
        zones,
        masks,
    }
}

fn area(points: &[[f64; 2]]) -> Area {
    Area {
        name: "test".into(),
        points: points.to_vec(),
        labels: Vec::new(),
    }
}

struct Run {
    store: Store,
    notices: Vec<EventNotice>,
    /// Wall clock (ms) of the first access unit.
    first_unit_ms: i64,
    stats: sentrix::detect::runner::DetectorStats,
    /// Boxes the live view would draw at the end of the run.
    live_boxes: usize,
    _dir: tempfile::TempDir,
}

/// Ingests `launch` for `seconds` with recording and detection as `sentrix run` wires them.
fn run_camera(launch: &str, seconds: f64, detector: DetectorSettings) -> Run {
    run_camera_with(launch, seconds, detector, Some(pool()))
}

/// The same with the model of `pool` (None: motion alone).
fn run_camera_with(
    launch: &str,
    seconds: f64,
    detector: DetectorSettings,
    pool: Option<Arc<InferencePool>>,
) -> Run {
    let dir = common::temp_dir();
    let (store, _) = Store::open(
        StoreConfig {
            recordings_dir: dir.path().join("rec"),
            database: dir.path().join("db/sentrix.db"),
            chunk_size: 64 * 1024,
            retention: RetentionPolicy::KEEP_ALL,
            offsite_uploaded_first: false,
            review: Default::default(),
        },
        MasterKey::from_bytes([7u8; 32]),
    )
    .unwrap();
    let fixture = common::RtspFixture::with_launch(launch);
    let url = sentrix::base::redact::CameraUrl::parse(&fixture.url()).unwrap();
    let mut sc = sentrix::ingest::SupervisorConfig::new("cam", Source::Rtsp(url));
    sc.decode = Some(DecodeSpec {
        width: 416,
        height: 0,
        fps: 5,
    });
    let bus = event_bus();
    let mut rx = bus.subscribe();
    let (sup, out) = CameraSupervisor::spawn(sc).unwrap();
    let recorder = RecorderRunner::spawn(
        "cam",
        RecordSettings {
            pre_ns: 1_000_000_000,
            post_ns: 2_000_000_000,
            ..RecordSettings::from_config(&Default::default(), Default::default())
        },
        store.clone(),
        out.units,
        out.frames.clone(),
    )
    .unwrap();
    let det = DetectorRunner::spawn(
        detector,
        pool,
        out.frames,
        store.clone(),
        recorder.trigger_handle(),
        bus.clone(),
    )
    .unwrap();
    let status = sup.status().clone();
    common::wait_until(Duration::from_secs(10), || status.snapshot().frames > 0)
        .expect("the fixture streams");
    let first_unit_ms = sentrix::base::clock::wall_ms();
    let started = Instant::now();
    let mut notices = Vec::new();
    while started.elapsed().as_secs_f64() < seconds {
        match rx.try_recv() {
            Ok(n) => notices.push(n),
            Err(_) => std::thread::sleep(Duration::from_millis(20)),
        }
    }
    let counters = det.counters().clone();
    let live_boxes = counters
        .live_boxes
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .1
        .len();
    eprintln!("camera: {}", sup.status().snapshot().summary());
    sup.stop();
    det.join();
    recorder.join();
    while let Ok(n) = rx.try_recv() {
        notices.push(n);
    }
    Run {
        store,
        notices,
        first_unit_ms,
        stats: counters.stats(),
        live_boxes,
        _dir: dir,
    }
}

#[test]
fn walking_people_make_a_person_event_with_a_clip_and_a_snapshot() {
    let run = run_camera(&people_launch(), LEAD_IN_S + 4.5, settings(vec![], vec![]));
    eprintln!("detector: {:?}", run.stats);
    let first = run
        .notices
        .iter()
        .find(|n| n.kind == "start" && n.event.label == "person")
        .unwrap_or_else(|| panic!("no person event; notices {:?}", run.notices));
    let people_at_ms = run.first_unit_ms + (LEAD_IN_S * 1000.0) as i64;
    let latency_ms = first.event.start_ms - people_at_ms;
    eprintln!(
        "first person event {} ms after the people appear ({} ms after the stream started)",
        latency_ms,
        first.event.start_ms - run.first_unit_ms
    );
    assert!(
        latency_ms <= 2000,
        "person event {latency_ms} ms after the people appeared"
    );
    assert!(
        first.event.start_ms - run.first_unit_ms <= (LEAD_IN_S * 1000.0) as i64 + 2000,
        "event too late after the stream started"
    );

    // Stored, ended at shutdown, linked to a clip that starts ≥ pre-roll before it.
    let event = run.store.event(first.event.id).unwrap();
    assert_eq!(event.label, "person");
    assert!(event.end_ms.is_some(), "{event:?}");
    assert!(event.max_score >= 0.4, "{event:?}");
    let clip_id = event.clip_id.expect("the event links to its clip");
    let clip = run.store.clip(clip_id).unwrap();
    eprintln!(
        "clip {}: {} .. {} ({} frames, pre-roll {} ms); event at {}",
        clip.id, clip.start_ms, clip.end_ms, clip.frames, clip.pre_roll_ms, event.start_ms
    );
    assert!(
        clip.start_ms <= event.start_ms - 1000,
        "clip starts {} ms before the event, less than the 1 s pre-roll",
        event.start_ms - clip.start_ms
    );
    assert!(clip.labels.iter().any(|l| l == "person"), "{clip:?}");

    // The snapshot is a sealed JPEG with the boxes drawn.
    let snapshot = run.store.open_event_snapshot(event.id).unwrap();
    let jpeg = snapshot.read_at(0, snapshot.plain_len()).unwrap();
    assert_eq!(&jpeg[..3], &[0xFF, 0xD8, 0xFF], "snapshot is a JPEG");
    common::assert_no_plaintext(run.store.recordings_dir());

    // The bus carried the event's start and end; the list API sees it.
    assert!(
        run.notices
            .iter()
            .any(|n| n.kind == "end" && n.event.id == event.id)
    );
    let listed = run
        .store
        .events(&EventQuery {
            label: Some("person".into()),
            ..Default::default()
        })
        .unwrap();
    assert!(listed.iter().any(|e| e.id == event.id));
    assert!(run.stats.inferences > 0);
    assert!(run.live_boxes > 0, "no boxes for the live view");
}

#[test]
fn a_static_scene_makes_no_event_and_is_gated_by_motion() {
    let run = run_camera(&static_launch(), 12.0, settings(vec![], vec![]));
    eprintln!("detector: {:?}", run.stats);
    assert!(run.notices.is_empty(), "{:?}", run.notices);
    assert!(run.store.events(&EventQuery::default()).unwrap().is_empty());
    assert!(run.stats.frames >= 40, "{:?}", run.stats);
    assert!(
        run.stats.gated_share >= 0.95,
        "only {:.1} % of frames gated",
        run.stats.gated_share * 100.0
    );
    // The first frame and the forced check every 10 s still reach the model.
    assert!(run.stats.inferences >= 2, "{:?}", run.stats);
}

#[test]
fn a_full_frame_mask_suppresses_every_event() {
    let whole = area(&[[0.0, 0.0], [1.0, 0.0], [1.0, 1.0], [0.0, 1.0]]);
    let run = run_camera(
        &people_launch(),
        LEAD_IN_S + 4.0,
        settings(vec![], vec![whole]),
    );
    eprintln!("detector: {:?}", run.stats);
    assert!(run.notices.is_empty(), "{:?}", run.notices);
    assert!(run.store.events(&EventQuery::default()).unwrap().is_empty());
    // Masked motion does not open the gate either.
    assert!(run.stats.gated_share >= 0.9, "{:?}", run.stats);
}

#[test]
fn a_zone_away_from_the_walkers_suppresses_their_events() {
    // A corner of the picture where nobody walks.
    let corner = area(&[[0.0, 0.0], [0.03, 0.0], [0.03, 0.03], [0.0, 0.03]]);
    let run = run_camera(
        &people_launch(),
        LEAD_IN_S + 4.0,
        settings(vec![corner], vec![]),
    );
    eprintln!("detector: {:?}", run.stats);
    assert!(run.notices.is_empty(), "{:?}", run.notices);
    // The people moved, so the model ran on them and found them outside the zone.
    assert!(run.stats.inferences >= 5, "{:?}", run.stats);
}

/// The motion fixture, 640x360 at 10 fps, prepared once with ffmpeg: black for 2 s; a white
/// 48x48 square appears at (120, 150) and slides right at 80 px/s to x = 360, where it stays
/// from 5 s; at 9 s the whole picture turns white (a light switched on) and stays so to 14 s.
fn square_then_light_launch() -> String {
    static FILE: std::sync::OnceLock<std::path::PathBuf> = std::sync::OnceLock::new();
    let file = FILE.get_or_init(|| {
        let out = std::env::temp_dir().join("sentrix-test-square-light-v1.mp4");
        if out.exists() {
            return out;
        }
        let tmp = std::env::temp_dir().join(format!("sentrix-square-{}.mp4", std::process::id()));
        let graph = "[0:v][1:v]overlay=x='if(lt(t,5),120+(t-2)*80,360)':y=150:enable='gte(t,2)'[sq];\
                     [sq][2:v]overlay=enable='gte(t,9)',format=yuv420p[v]";
        let status = std::process::Command::new("ffmpeg")
            .args(["-v", "error", "-y"])
            .args(["-f", "lavfi", "-i", "color=black:s=640x360:r=10:d=14"])
            .args(["-f", "lavfi", "-i", "color=white:s=48x48:r=10:d=14"])
            .args(["-f", "lavfi", "-i", "color=white:s=640x360:r=10:d=14"])
            .args(["-filter_complex", graph, "-map", "[v]"])
            .args(["-c:v", "libx264", "-preset", "ultrafast", "-bf", "0", "-g", "10"])
            .arg(&tmp)
            .status()
            .expect("ffmpeg runs (apt-get install ffmpeg)");
        assert!(status.success(), "ffmpeg could not prepare the square video");
        std::fs::rename(&tmp, &out).unwrap();
        out
    });
    format!(
        "( filesrc location={} ! qtdemux ! h264parse ! rtph264pay name=pay0 pt=96 config-interval=-1 )",
        file.display()
    )
}

#[test]
fn motion_boxes_cover_what_moved_and_a_light_is_a_scene_change_that_ends() {
    let run = run_camera_with(
        &square_then_light_launch(),
        15.0,
        settings(vec![], vec![]),
        None,
    );
    let q = EventQuery::default();
    let mut events = run.store.events(&q).unwrap();
    events.reverse();
    eprintln!("motion events: {events:#?}");
    let slide = events.first().expect("a motion event for the square");
    assert_eq!(slide.label, "motion");
    assert!(!slide.scene_change, "{slide:?}");
    // Where the square went (x 120..408, y 150..198 of 640x360), within 2 motion cells of
    // the 416-wide detection frame (4 px each).
    let want = [120.0 / 640.0, 150.0 / 360.0, 408.0 / 640.0, 198.0 / 360.0];
    let cell = [4.0 / 416.0, 4.0 / 234.0];
    for (k, (got, want)) in slide.bbox.iter().zip(want).enumerate() {
        let slack = 2.0 * cell[k % 2] + 1e-3;
        assert!(
            (*got as f64 - want).abs() <= slack,
            "box {:?} edge {k}: {got} vs {want:.4} (slack {slack:.4})",
            slide.bbox
        );
    }
    let light = events
        .iter()
        .find(|e| e.scene_change)
        .unwrap_or_else(|| panic!("no scene change: {events:#?}"));
    assert_eq!(light.bbox, [0.0, 0.0, 1.0, 1.0]);
    let lasted_ms = light
        .end_ms
        .expect("the scene change ends once the picture settles")
        - light.start_ms;
    assert!(lasted_ms < 4000, "the light's event lasted {lasted_ms} ms");
    // The light came on within review.merge_gap_seconds of the slide's end: one item.
    assert!(light.start_ms - slide.end_ms.unwrap() < 10_000);
    assert_eq!(slide.review_id, light.review_id);
}
