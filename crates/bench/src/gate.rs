//! `sentrix-bench gate`: what the detector costs per camera, and what the motion gate
//! saves. Three detector threads run side by side for `seconds` of real time, sharing one
//! inference slot as `sentrix run` does, fed `fps` decoded frames a second:
//! - walking: a video of people (looped), the gate open most of the time;
//! - static: the video's first frame, still (gated; a forced model run every 10 s);
//! - static, no gate: the same still frame with the motion gate off (every frame to the
//!   model), i.e. the cost without gating.
//!
//! Each thread's CPU time (CLOCK_THREAD_CPUTIME_ID: motion, preprocessing, inference,
//! snapshots) is printed as CPU seconds per camera-minute, with the gated share and the
//! effective model fps. Events go to a temporary store; no recorder is attached.

use anyhow::{Context, bail};
use gstreamer as gst;
use gstreamer::prelude::*;
use gstreamer_app as gst_app;
use sentrix::detect::runner::{DetectorSettings, EventBus, event_bus};
use sentrix::detect::{DetectorRunner, InferencePool, Model};
use sentrix::ingest::Frame;
use sentrix::record::runner::TriggerHandle;
use sentrix::store::{MasterKey, RetentionPolicy, Store, StoreConfig};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::watch;

/// Every frame of `video`, decoded and scaled to `width` wide (aspect kept) at `fps`.
fn decode_frames(video: &Path, width: u32, fps: u32) -> anyhow::Result<Vec<Arc<Frame>>> {
    sentrix::ingest::init_gstreamer()?;
    if !video.is_file() {
        bail!("{}: no such file", video.display());
    }
    let launch = format!(
        "filesrc name=src ! decodebin ! videoconvertscale ! videorate \
         ! video/x-raw,format=RGB,width={width},pixel-aspect-ratio=1/1,framerate={fps}/1 \
         ! appsink name=sink sync=false"
    );
    let pipeline = gst::parse::launch(&launch)?
        .downcast::<gst::Pipeline>()
        .map_err(|_| anyhow::anyhow!("not a pipeline"))?;
    let src = pipeline.by_name("src").context("filesrc")?;
    src.set_property("location", video.to_string_lossy().as_ref());
    let sink = pipeline
        .by_name("sink")
        .and_then(|s| s.downcast::<gst_app::AppSink>().ok())
        .context("appsink")?;
    pipeline.set_state(gst::State::Playing)?;
    let mut frames = Vec::new();
    while let Ok(sample) = sink.pull_sample() {
        let (Some(buffer), Some(caps)) = (sample.buffer_owned(), sample.caps()) else {
            continue;
        };
        let Some(s) = caps.structure(0) else { continue };
        let (w, h) = (s.get::<i32>("width")?, s.get::<i32>("height")?);
        if buffer.size() != (w * h * 3) as usize {
            bail!("decoded frames are not packed RGB ({w}x{h})");
        }
        frames.push(Arc::new(Frame {
            pts_ns: buffer.pts().map(|t| t.nseconds()).unwrap_or(0),
            width: w as u32,
            height: h as u32,
            rgb: buffer,
        }));
    }
    let _ = pipeline.set_state(gst::State::Null);
    if frames.is_empty() {
        bail!("{}: no video frames decoded", video.display());
    }
    Ok(frames)
}

struct Scene {
    name: &'static str,
    frames: Vec<Arc<Frame>>,
    motion: bool,
}

pub fn gate(
    model_path: &Path,
    video: &Path,
    seconds: u64,
    side: usize,
    fps: u32,
) -> anyhow::Result<()> {
    let walking = decode_frames(video, side as u32, fps)?;
    let still = vec![walking[0].clone()];
    let model = Model::load(
        model_path,
        side,
        None,
        sentrix::detect::model::load_labels(None)?,
    )?;
    let pool = InferencePool::new(model, 1);
    let work = std::env::temp_dir().join(format!("sentrix-bench-gate-{}", std::process::id()));
    let result = run_scenes(&work, pool, seconds, fps, side, model_path, walking, still);
    let _ = std::fs::remove_dir_all(&work);
    result
}

#[allow(clippy::too_many_arguments)]
fn run_scenes(
    work: &Path,
    pool: Arc<InferencePool>,
    seconds: u64,
    fps: u32,
    side: usize,
    model_path: &Path,
    walking: Vec<Arc<Frame>>,
    still: Vec<Arc<Frame>>,
) -> anyhow::Result<()> {
    let mut key = [0u8; 32];
    getrandom::getrandom(&mut key).map_err(|e| anyhow::anyhow!("{e}"))?;
    let (store, _) = Store::open(
        StoreConfig {
            recordings_dir: work.join("rec"),
            database: work.join("db/sentrix.db"),
            chunk_size: sentrix::store::container::DEFAULT_CHUNK_SIZE,
            retention: RetentionPolicy::KEEP_ALL,
            offsite_uploaded_first: false,
            review: Default::default(),
        },
        MasterKey::from_bytes(key),
    )?;
    let bus: EventBus = event_bus();
    let scenes = [
        Scene {
            name: "walking",
            frames: walking,
            motion: true,
        },
        Scene {
            name: "static",
            frames: still.clone(),
            motion: true,
        },
        Scene {
            name: "static, no gate",
            frames: still,
            motion: false,
        },
    ];
    println!(
        "bench gate: {} at {side}, {fps} fps, {seconds} s per camera, 1 inference slot",
        model_path.display()
    );
    let mut running = Vec::new();
    for (i, scene) in scenes.iter().enumerate() {
        let mut settings = DetectorSettings::from_parts(
            &sentrix::config::Detect::default(),
            &sentrix::config::Record::default(),
            &format!("bench{i}"),
        );
        settings.motion_enabled = scene.motion;
        let (tx, rx) = watch::channel(None);
        let runner = DetectorRunner::spawn(
            settings,
            Some(pool.clone()),
            rx,
            store.clone(),
            TriggerHandle::unconnected(),
            bus.clone(),
        )?;
        running.push((tx, runner));
    }
    let start = Instant::now();
    let period = Duration::from_secs_f64(1.0 / fps as f64);
    let mut n = 0usize;
    while start.elapsed() < Duration::from_secs(seconds) {
        for ((tx, _), scene) in running.iter().zip(&scenes) {
            tx.send_replace(Some(scene.frames[n % scene.frames.len()].clone()));
        }
        n += 1;
        let next = period * n as u32;
        std::thread::sleep(next.saturating_sub(start.elapsed()));
    }
    println!(
        "{:<16} {:>8} {:>8} {:>10} {:>9} {:>8} {:>16}",
        "camera", "frames", "gated", "inferences", "model fps", "events", "CPU s/camera-min"
    );
    for ((tx, runner), scene) in running.into_iter().zip(&scenes) {
        drop(tx);
        let counters = runner.counters().clone();
        runner.join();
        let st = counters.stats();
        println!(
            "{:<16} {:>8} {:>7.1}% {:>10} {:>9.2} {:>8} {:>16.2}",
            scene.name,
            st.frames,
            st.gated_share * 100.0,
            st.inferences,
            st.inferences as f64 / seconds as f64,
            st.events,
            st.cpu_s * 60.0 / seconds as f64
        );
        super::table::add(super::table::Figure::alone(
            &format!("detector CPU per camera-minute, {}", scene.name),
            format!("{:.2} s", st.cpu_s * 60.0 / seconds as f64),
        ));
    }
    Ok(())
}
