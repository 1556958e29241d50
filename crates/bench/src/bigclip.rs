//! `sentrix-bench make-clip`: writes one large sealed clip of real H.264 into the store a
//! config names, for measuring Range requests and decrypt-on-serve on a clip the size a
//! long continuous recording reaches (1 GB) without recording for an hour. A few seconds
//! of 720p "snow" (which compresses badly, so bytes grow fast) are encoded once; that
//! stretch, which starts on a keyframe, is repeated with shifted timestamps through the
//! recorder's own muxer and `ClipWriter`, so the file is a valid fragmented MP4 that plays
//! and seeks like any recording.

use anyhow::{Context, bail};
use sentrix::config::Config;
use sentrix::ingest::pipeline::{Source, SyntheticSpec};
use sentrix::ingest::{AccessUnit, CameraSupervisor, Codec, SupervisorConfig};
use sentrix::store::{ClipMeta, Store, StoreConfig};
use std::time::Instant;

const FPS: u32 = 15;

/// Encodes at least `min_units` units of synthetic video, cut so the stretch starts on a
/// keyframe and ends just before one (so it can be repeated back to back).
pub(super) fn encoded_stretch(
    spec: SyntheticSpec,
    min_units: usize,
) -> anyhow::Result<Vec<AccessUnit>> {
    let (sup, mut out) =
        CameraSupervisor::spawn(SupervisorConfig::new("make-clip", Source::Synthetic(spec)))
            .context("cannot start the synthetic encoder")?;
    let mut units: Vec<AccessUnit> = Vec::new();
    let result = loop {
        let Some(u) = out.units.blocking_recv() else {
            break Err(anyhow::anyhow!("the synthetic encoder stopped"));
        };
        if units.len() >= min_units && u.keyframe {
            break Ok(());
        }
        if !units.is_empty() || u.keyframe {
            units.push(u);
        }
        if units.len() > 100 * min_units {
            break Err(anyhow::anyhow!("no second keyframe from the encoder"));
        }
    };
    sup.stop();
    result.map(|()| units)
}

/// Writes a clip of about `megabytes` MB for `camera` into the configured store and prints
/// its id, size and how fast it was written.
pub fn make_clip(config: &Config, camera: &str, megabytes: u64) -> anyhow::Result<()> {
    let Some(cam) = config.cameras.iter().find(|c| c.id == camera) else {
        bail!("no camera {camera:?} in the config");
    };
    let _lock = sentrix::store::DataLock::acquire(&config.paths.data_lock)?;
    let key = sentrix::app::store_setup::load_key(config).context("while loading the clip key")?;
    let (store, _) = Store::open(StoreConfig::from_config(config), key)
        .context("while opening the clip store")?;
    store.ensure_camera(&cam.id, &cam.name)?;
    let spec = SyntheticSpec {
        codec: Codec::H264,
        width: 1280,
        height: 720,
        fps: FPS,
        bitrate_kbps: 20_000,
        pattern: "snow",
        ..Default::default()
    };
    let stretch = encoded_stretch(spec, 3 * FPS as usize)?;
    let started = Instant::now();
    let rec = write_clip(&store, &cam.id, &stretch, megabytes * 1_000_000)?;
    let secs = started.elapsed().as_secs_f64();
    println!(
        "clip {} of camera {}: {} bytes, {:.0} s of video, written (muxed and sealed) in {secs:.1} s = {:.0} MB/s",
        rec.id,
        cam.id,
        rec.plain_bytes,
        rec.duration_ms as f64 / 1000.0,
        rec.plain_bytes as f64 / 1e6 / secs
    );
    Ok(())
}

/// Writes a clip of at least `target_bytes` into `store` for `camera`: `stretch` (from
/// `encoded_stretch`) repeated with shifted timestamps through the recorder's muxer.
pub(super) fn write_clip(
    store: &Store,
    camera: &str,
    stretch: &[AccessUnit],
    target_bytes: u64,
) -> anyhow::Result<sentrix::store::ClipRecord> {
    let Some(first) = stretch.first() else {
        bail!("an empty stretch of video");
    };
    let frame_ns = 1_000_000_000 / FPS as u64;
    let stretch_ns = stretch.len() as u64 * frame_ns;
    let base_pts = first.pts_ns;
    let stretch_bytes: u64 = stretch.iter().map(|u| u.data.size() as u64).sum();
    let repeats = target_bytes.div_ceil(stretch_bytes.max(1));
    let duration_ms = (repeats * stretch_ns / 1_000_000) as i64;
    let mut writer = store.begin_clip(ClipMeta {
        camera_id: camera.into(),
        start_ms: sentrix::base::clock::wall_ms() - duration_ms,
        codec: "h264".into(),
        labels: vec!["bench".into()],
        ..Default::default()
    })?;
    let mut mux = sentrix::media::mux::Muxer::new(first.stream.clone(), 1000);
    for r in 0..repeats {
        let shift = r * stretch_ns;
        for u in stretch {
            let unit = AccessUnit {
                pts_ns: u.pts_ns - base_pts + shift,
                dts_ns: u.dts_ns.map(|d| d.saturating_sub(base_pts) + shift),
                duration_ns: Some(frame_ns),
                keyframe: u.keyframe,
                data: u.data.clone(),
                stream: u.stream.clone(),
            };
            mux.push(&unit)?;
        }
        writer.write(&mux.take_output())?;
    }
    writer.write(&mux.finish()?)?;
    Ok(writer.finish(None)?)
}
