//! The hidden `sentrix test-writer` hook (test-faults builds only): records synthetic clips
//! into the configured store in a child process that a test can kill at any moment, for
//! the crash-safety, retention and off-site tests.

use crate::config::Config;
use crate::ingest::pipeline::{Source, SyntheticSpec};
use crate::ingest::{CameraSupervisor, Codec, SupervisorConfig};
use crate::media::mux::Muxer;
use crate::store::{ClipMeta, Store, StoreConfig};
use anyhow::{Context, bail};
use std::time::Duration;

/// Records synthetic 320x240 H.264 clips (noise at `bitrate_kbps`) of `clip_seconds` into the configured store,
/// printing `clip <id> <ms>` after each, until killed.
pub fn test_writer(config: &Config, clip_seconds: u64, bitrate_kbps: u32) -> anyhow::Result<()> {
    let _lock = crate::store::DataLock::acquire(&config.paths.data_lock)?;
    let key = crate::app::store_setup::load_key(config)?;
    let (store, sweep) = Store::open(StoreConfig::from_config(config), key)?;
    eprintln!("sweep: {sweep:?}");
    // Clips queue for the bucket as `run` would queue them.
    if let Some(o) = &config.storage.offsite {
        store.offsite_configure(Some(o.what.as_str()))?;
    }
    // Noise, so the encoder spends the whole bitrate (fills a disk at a known pace).
    let spec = SyntheticSpec {
        codec: Codec::H264,
        width: 320,
        height: 240,
        fps: 25,
        bitrate_kbps,
        pattern: "snow",
        ..Default::default()
    };
    let (sup, mut out) =
        CameraSupervisor::spawn(SupervisorConfig::new("writer", Source::Synthetic(spec)))?;
    let mut pending = None;
    loop {
        // Start at a keyframe.
        let first = loop {
            let u = match pending.take() {
                Some(u) => u,
                None => out.units.blocking_recv().context("ingest stopped")?,
            };
            if u.keyframe {
                break u;
            }
        };
        let meta = ClipMeta {
            camera_id: "writer".into(),
            start_ms: crate::base::clock::wall_ms(),
            ..Default::default()
        };
        let mut writer = store.begin_clip(meta)?;
        let mut mux = Muxer::new(first.stream.clone(), 500);
        mux.push(&first)?;
        let end_ns = first.pts_ns + Duration::from_secs(clip_seconds).as_nanos() as u64;
        loop {
            let u = out.units.blocking_recv().context("ingest stopped")?;
            if u.keyframe && u.pts_ns >= end_ns {
                pending = Some(u);
                break;
            }
            mux.push(&u)?;
            writer.write(&mux.take_output())?;
        }
        writer.write(&mux.finish()?)?;
        let rec = writer.finish(None)?;
        println!("clip {} {}", rec.id, rec.duration_ms);
        if sup.status().state() == crate::ingest::CameraState::Stopped {
            bail!("ingest stopped");
        }
    }
}
