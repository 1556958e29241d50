//! `sentrix bench record`: what recording costs on top of ingest. Two children consume the
//! same synthetic camera at the same time: `bench ingest-client` (remux-only ingest) and
//! `bench record-client` (ingest + ring + recorder, triggered every 5 s so it records
//! continuously in 10 s clips, muxed, sealed and indexed in a temp store on the real
//! disk). Each child's CPU seconds, peak RSS and bytes written to storage come from
//! wait4(2); bytes written per byte of video includes the clips, SQLite and its WAL.

use super::{IngestBench, serve, wait_usage};
use crate::ingest::pipeline::Source;
use crate::ingest::{CameraSupervisor, SupervisorConfig};
use crate::record::recorder::RecordSettings;
use crate::record::runner::RecorderRunner;
use crate::redact::CameraUrl;
use crate::store::{MasterKey, RetentionPolicy, Store, StoreConfig};
use anyhow::{Context, bail};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

pub fn record(b: &IngestBench, dir: &Path) -> anyhow::Result<()> {
    let (server, _mount, url) = serve(b)?;
    let work = dir.join(format!("sentrix-bench-record-{}", std::process::id()));
    println!(
        "bench record: {}x{} {} fps H.264 {} kbit/s, {} s, store in {}",
        b.width,
        b.height,
        b.fps,
        b.bitrate_kbps,
        b.seconds,
        work.display()
    );
    let exe = std::env::current_exe().context("while finding the sentrix binary")?;
    let secs = b.seconds.to_string();
    let spawn = |args: &[&str]| Command::new(&exe).args(args).stdout(Stdio::piped()).spawn();
    let remux = spawn(&["bench", "ingest-client", "--url", &url, "--seconds", &secs])?;
    let work_s = work.to_string_lossy().to_string();
    let rec = spawn(&[
        "bench",
        "record-client",
        "--url",
        &url,
        "--seconds",
        &secs,
        "--dir",
        &work_s,
    ])?;
    let read = |c: std::process::Child| -> anyhow::Result<(super::ChildUsage, String)> {
        let usage = wait_usage(&c)?;
        let mut text = String::new();
        if let Some(mut out) = c.stdout {
            use std::io::Read;
            let _ = out.read_to_string(&mut text);
        }
        Ok((usage, text.trim().to_string()))
    };
    let (remux_u, remux_note) = read(remux)?;
    let (rec_u, rec_note) = read(rec)?;
    drop(server);
    let _ = std::fs::remove_dir_all(&work);
    println!(
        "{:<14} {:>8} {:>12} {:>14}  notes",
        "consumer", "CPU s", "peak RSS MB", "written MB"
    );
    for (name, u, note) in [
        ("remux-only", &remux_u, &remux_note),
        ("recording", &rec_u, &rec_note),
    ] {
        println!(
            "{name:<14} {:>8.2} {:>12.1} {:>14.1}  {note}",
            u.cpu_s,
            u.max_rss_mb,
            u.write_bytes as f64 / 1e6
        );
    }
    let video_bytes: f64 = rec_note
        .split_whitespace()
        .find_map(|w| w.strip_prefix("video_bytes="))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0);
    println!(
        "recording costs {:.2}x the CPU and {:.2}x the RSS of remux-only ingest; {:.3} bytes written per byte of video",
        rec_u.cpu_s / remux_u.cpu_s.max(1e-6),
        rec_u.max_rss_mb / remux_u.max_rss_mb.max(1e-6),
        rec_u.write_bytes as f64 / video_bytes.max(1.0)
    );
    if !rec_u.exit_ok || !remux_u.exit_ok {
        bail!("a benchmark child failed: {rec_note} / {remux_note}");
    }
    Ok(())
}

/// The child side: ingest + recorder, triggered every 5 s, for `seconds`.
pub fn record_client(url: &str, seconds: u64, dir: &Path) -> anyhow::Result<()> {
    let url = CameraUrl::parse(url).map_err(|e| anyhow::anyhow!("--url: {e}"))?;
    let config = StoreConfig {
        recordings_dir: dir.join("rec"),
        database: dir.join("index.db"),
        chunk_size: crate::store::container::DEFAULT_CHUNK_SIZE,
        retention: RetentionPolicy::KEEP_ALL,
    };
    let (store, _) = Store::open(config, MasterKey::random()?)?;
    let (sup, out) = CameraSupervisor::spawn(SupervisorConfig::new("bench", Source::Rtsp(url)))?;
    // Count the video bytes on their way to the recorder.
    let (tx, rx) = tokio::sync::mpsc::channel(512);
    let mut units = out.units;
    let counter = std::thread::spawn(move || {
        let mut bytes = 0u64;
        while let Some(u) = units.blocking_recv() {
            bytes += u.data.size() as u64;
            if tx.blocking_send(u).is_err() {
                break;
            }
        }
        bytes
    });
    let settings = RecordSettings {
        pre_ns: 5_000_000_000,
        post_ns: 10_000_000_000,
        max_clip_ns: 10_000_000_000,
        ring_max_bytes: None,
        fragment_ms: 1000,
        segment_ns: None,
    };
    let runner = RecorderRunner::spawn("bench", settings, store.clone(), rx, out.frames)?;
    let end = Instant::now() + Duration::from_secs(seconds);
    while Instant::now() < end {
        runner.trigger("bench");
        std::thread::sleep(
            Duration::from_secs(5).min(end.saturating_duration_since(Instant::now())),
        );
    }
    sup.stop();
    let video_bytes = counter
        .join()
        .map_err(|_| anyhow::anyhow!("counter thread panicked"))?;
    runner.join();
    let clips = store.clips(None, 0, i64::MAX)?;
    let clip_bytes: i64 = clips.iter().map(|c| c.file_bytes).sum();
    println!(
        "clips={} video_bytes={video_bytes} sealed_bytes={clip_bytes}",
        clips.len()
    );
    if clips.is_empty() {
        bail!("no clip was recorded");
    }
    Ok(())
}
