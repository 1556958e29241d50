//! `sentrix-bench record [--mode events|continuous]`: what recording costs. Children
//! consume the same synthetic camera at the same time: `bench ingest-client` (remux-only
//! ingest) and `bench record-client` (in events mode ingest + ring + recorder, triggered
//! every 5 s so it records back to back in 10 s clips; in continuous mode the segmenter
//! in 60 s segments), muxed, sealed and indexed in a temp store on the real disk; in
//! continuous mode also `ffmpeg -c copy -f segment -segment_time 60`, the peer. Each
//! child's CPU seconds, peak RSS and bytes written to storage come from wait4(2); bytes
//! written per byte of video include the files, SQLite and its WAL.

use super::{IngestBench, serve};
use anyhow::{Context, bail};
use sentrix::base::redact::CameraUrl;
use sentrix::ingest::pipeline::Source;
use sentrix::ingest::{CameraSupervisor, SupervisorConfig};
use sentrix::record::recorder::RecordSettings;
use sentrix::record::runner::RecorderRunner;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

pub fn record(
    b: &IngestBench,
    dir: &Path,
    mode: sentrix::config::RecordMode,
) -> anyhow::Result<()> {
    let (server, _mount, url) = serve(b)?;
    let work = dir.join(format!("sentrix-bench-record-{}", std::process::id()));
    println!(
        "bench record --mode {}: {}x{} {} fps H.264 {} kbit/s, {} s, store in {}",
        mode.as_str(),
        b.width,
        b.height,
        b.fps,
        b.bitrate_kbps,
        b.seconds,
        work.display()
    );
    let continuous = mode == sentrix::config::RecordMode::Continuous;
    let exe = std::env::current_exe().context("while finding the sentrix-bench binary")?;
    let secs = b.seconds.to_string();
    let remux =
        super::spawn_ingest_client(&url, b.seconds, sentrix::ingest::RtspClient::Gstreamer)?;
    let work_s = work.to_string_lossy().to_string();
    // The recording client once per RTSP client, each in a store of its own.
    let record_with = |client: sentrix::ingest::RtspClient| {
        let dir = format!("{work_s}/{}", client.as_str());
        let (mode, client) = (mode.as_str(), client.as_str());
        let args = ["record-client", "--url", &url, "--seconds", &secs];
        Command::new(&exe)
            .args(args)
            .args(["--dir", &dir, "--mode", mode, "--rtsp-client", client])
            .stdout(Stdio::piped())
            .spawn()
    };
    let rec = record_with(sentrix::ingest::RtspClient::Gstreamer)?;
    let rec_native = record_with(sentrix::ingest::RtspClient::Native)?;
    // The peer records in files as long as ours: 60 s segments, or 10 s event clips.
    let segment_s = if continuous { 60 } else { 10 };
    let ffmpeg =
        match super::spawn_ffmpeg_segments(&url, b.seconds, segment_s, &work.join("ffmpeg")) {
            Ok(c) => Some(c),
            Err(e) => {
                println!("ffmpeg: not run ({e}); install ffmpeg for the side-by-side figure");
                None
            }
        };
    let read = super::read_child;
    let (remux_u, remux_note) = read(remux)?;
    let (rec_u, rec_note) = read(rec)?;
    let (native_u, native_note) = read(rec_native)?;
    let peer = ffmpeg.map(read).transpose()?;
    drop(server);
    let _ = std::fs::remove_dir_all(&work);
    println!(
        "{:<16} {:>8} {:>12} {:>14}  notes",
        "consumer", "CPU s", "peak RSS MB", "written MB"
    );
    let mut rows = vec![
        ("remux-only", &remux_u, &remux_note),
        ("recording", &rec_u, &rec_note),
        ("recording native", &native_u, &native_note),
    ];
    if let Some((u, note)) = &peer {
        rows.push(("ffmpeg", u, note));
    }
    for (name, u, note) in rows {
        println!(
            "{name:<16} {:>8.2} {:>12.1} {:>14.1}  {note}",
            u.cpu_s,
            u.max_rss_mb,
            u.write_bytes as f64 / 1e6
        );
    }
    summarise(b, &rec_u, &remux_u, &rec_note, peer.as_ref().map(|p| &p.0));
    if let Some((f, _)) = &peer {
        println!(
            "ratio sentrix native/ffmpeg: CPU {:.2}x, peak RSS {:.2}x",
            native_u.cpu_s / f.cpu_s.max(1e-6),
            native_u.max_rss_mb / f.max_rss_mb.max(1e-6),
        );
        let what = format!("record {}, sealed (1080p15 4 Mbit/s)", mode.as_str());
        super::table_cpu_rss(&what, b.seconds, &rec_u, f);
        let what = format!(
            "record {}, sealed, native RTSP client (1080p15 4 Mbit/s)",
            mode.as_str()
        );
        super::table_cpu_rss(&what, b.seconds, &native_u, f);
    }
    if !rec_u.exit_ok || !remux_u.exit_ok || !native_u.exit_ok {
        bail!("a benchmark child failed: {rec_note} / {native_note} / {remux_note}");
    }
    Ok(())
}

/// The ratios: to remux-only ingest, to ffmpeg, bytes and fsyncs per unit of video.
fn summarise(
    b: &IngestBench,
    rec: &super::ChildUsage,
    remux: &super::ChildUsage,
    note: &str,
    ffmpeg: Option<&super::ChildUsage>,
) {
    let field = |name: &str| -> f64 {
        note.split_whitespace()
            .find_map(|w| w.strip_prefix(name)?.strip_prefix('='))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0.0)
    };
    let video_bytes = field("video_bytes").max(1.0);
    let per_byte = rec.write_bytes as f64 / video_bytes;
    println!(
        "recording costs {:.2}x the CPU and {:.2}x the RSS of remux-only ingest; {per_byte:.3} bytes written per byte of video",
        rec.cpu_s / remux.cpu_s.max(1e-6),
        rec.max_rss_mb / remux.max_rss_mb.max(1e-6),
    );
    if let Some(f) = ffmpeg {
        println!(
            "ratio sentrix/ffmpeg: CPU {:.2}x, peak RSS {:.2}x, bytes written {:.2}x",
            rec.cpu_s / f.cpu_s.max(1e-6),
            rec.max_rss_mb / f.max_rss_mb.max(1e-6),
            rec.write_bytes as f64 / (f.write_bytes as f64).max(1.0)
        );
    }
    let minutes = b.seconds as f64 / 60.0;
    println!(
        "{:.1} fsyncs of clip files per camera-minute (and {:.1} index commits); a day of this {} kbit/s camera: {:.1} GB",
        field("fsyncs") / minutes,
        field("clips") / minutes,
        b.bitrate_kbps,
        b.bitrate_kbps as f64 * 1000.0 / 8.0 * 86_400.0 * per_byte / 1e9
    );
}

/// The child side: ingest + recorder, triggered every 5 s (events) or the segmenter
/// (continuous), for `seconds`.
pub fn record_client(
    url: &str,
    seconds: u64,
    dir: &Path,
    mode: sentrix::config::RecordMode,
    client: sentrix::ingest::RtspClient,
) -> anyhow::Result<()> {
    let url = CameraUrl::parse(url).map_err(|e| anyhow::anyhow!("--url: {e}"))?;
    let store = super::work_store(dir)?;
    let mut ingest = SupervisorConfig::new("bench", Source::Rtsp(url));
    ingest.rtsp_client = client;
    let (sup, out) = CameraSupervisor::spawn(ingest)?;
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
        segment_ns: (mode == sentrix::config::RecordMode::Continuous).then_some(60_000_000_000),
    };
    let continuous = settings.segment_ns.is_some();
    let runner = RecorderRunner::spawn("bench", settings, store.clone(), rx, out.frames)?;
    let end = Instant::now() + Duration::from_secs(seconds);
    while Instant::now() < end {
        if !continuous {
            runner.trigger("bench");
        }
        std::thread::sleep(
            Duration::from_secs(5).min(end.saturating_duration_since(Instant::now())),
        );
    }
    sup.stop();
    let video_bytes = counter
        .join()
        .map_err(|_| anyhow::anyhow!("counter thread panicked"))?;
    runner.join();
    let clips = store.media_overlapping("bench", 0, i64::MAX / 2)?;
    let clip_bytes: i64 = clips.iter().map(|c| c.file_bytes).sum();
    println!(
        "clips={} video_bytes={video_bytes} sealed_bytes={clip_bytes} fsyncs={}",
        clips.len(),
        sentrix::store::FSYNCS.load(std::sync::atomic::Ordering::Relaxed)
    );
    if clips.is_empty() {
        bail!("no clip was recorded");
    }
    Ok(())
}
