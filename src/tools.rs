//! Command-line tools around the clip store: `sentrix decrypt` (a sealed clip to a plain
//! MP4, refusing tampered or truncated files) and the `test-writer` hook that tests use to
//! record synthetic clips in a child process they can kill at any moment.

use crate::config::Config;
use crate::ingest::pipeline::{Source, SyntheticSpec};
use crate::ingest::{CameraSupervisor, Codec, SupervisorConfig};
use crate::record::mux::Muxer;
use crate::store::{ClipMeta, OpenReader, Store, StoreConfig, keys};
use anyhow::{Context, bail};
use std::io::{IsTerminal, Write};
use std::path::Path;
use std::time::Duration;

/// Decrypts `input` to `output` (`-` = stdout). A partial output file is removed on error.
pub fn decrypt(config: &Config, input: &Path, output: &Path) -> anyhow::Result<()> {
    let key = keys::load(config)?;
    let file =
        std::fs::File::open(input).with_context(|| format!("cannot open {}", input.display()))?;
    let reader = OpenReader::open(file, &key).with_context(|| format!("{}", input.display()))?;
    let total = reader.plain_len();
    let show_progress = std::io::stderr().is_terminal() && total > 8 << 20;
    let mut last_pct = 0;
    let progress = |done: u64, total: u64| {
        let pct = done * 100 / total.max(1);
        if show_progress && pct != last_pct {
            last_pct = pct;
            eprint!("\rdecrypting: {pct:3}%");
        }
    };
    if output == Path::new("-") {
        let stdout = std::io::stdout();
        let mut lock = stdout.lock();
        reader
            .copy_to(&mut lock, progress)
            .with_context(|| format!("{}", input.display()))?;
        lock.flush()?;
    } else {
        use std::os::unix::fs::OpenOptionsExt;
        let mut out = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(output)
            .with_context(|| format!("cannot create {}", output.display()))?;
        if let Err(e) = reader.copy_to(&mut out, progress) {
            drop(out);
            let _ = std::fs::remove_file(output);
            bail!("{}: {e} (no output written)", input.display());
        }
        out.sync_all()?;
    }
    if show_progress {
        eprintln!();
    }
    eprintln!("decrypted {total} bytes");
    Ok(())
}

/// Records synthetic 320x240 H.264 clips (noise at `bitrate_kbps`) of `clip_seconds` into the configured store,
/// printing `clip <id> <ms>` after each, until killed.
pub fn test_writer(config: &Config, clip_seconds: u64, bitrate_kbps: u32) -> anyhow::Result<()> {
    let _lock = crate::store::DataLock::acquire(&config.paths.data_lock)?;
    let key = keys::load(config)?;
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
            start_ms: crate::store::now_ms(),
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

/// `sentrix detect`: loads the model, runs it on each image, prints the detections.
pub fn detect(
    model: &Path,
    size: usize,
    layout: Option<crate::detect::Layout>,
    labels_file: Option<&Path>,
    min_score: f32,
    images: &[std::path::PathBuf],
) -> anyhow::Result<()> {
    use crate::detect::{Model, model::load_labels};
    let model = Model::load(model, size, layout, load_labels(labels_file)?)?;
    println!(
        "model: {} layout, input {size}x{size}, loaded in {:.0} ms",
        model.layout, model.load_ms
    );
    for path in images {
        let img = crate::detect::image::load(path).map_err(|e| anyhow::anyhow!(e))?;
        let start = std::time::Instant::now();
        let dets = model.detect(&img, min_score, 0.45)?;
        println!(
            "{} ({}x{}): {} detections in {:.0} ms",
            path.display(),
            img.width,
            img.height,
            dets.len(),
            start.elapsed().as_secs_f64() * 1000.0
        );
        for d in dets {
            let b = d.det;
            println!(
                "  {:<14} {:.2}  [{:.0}, {:.0}, {:.0}, {:.0}]",
                d.label, b.score, b.x1, b.y1, b.x2, b.y2
            );
        }
    }
    Ok(())
}
