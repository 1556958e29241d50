//! What several benches share, and `sentrix-bench ingest`: the cost of ingesting one
//! camera, next to ffmpeg (what Frigate records with) on the same stream in the same run.
//! This process serves a synthetic 1080p H.264 stream over RTSP on loopback; two child
//! processes consume it at the same time, `sentrix-bench ingest-client` (remux-only
//! ingest: rtspsrc → depay → parse → appsink → channel) and `ffmpeg -c copy -f segment`;
//! each child's CPU seconds and peak RSS come from wait4(2), so the server's encoding cost
//! is counted for neither.

use anyhow::{Context, bail};
use sentrix::base::redact::CameraUrl;
use sentrix::ingest::demo::{DemoSpec, Mount, RtspServer};
use sentrix::ingest::pipeline::Source;
use sentrix::ingest::{CameraSupervisor, Codec, SupervisorConfig};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

pub struct IngestBench {
    pub seconds: u64,
    pub width: u32,
    pub height: u32,
    pub fps: u32,
    pub bitrate_kbps: u32,
    pub with_ffmpeg: bool,
}

/// CPU, memory and disk writes of a child process, from wait4.
#[derive(Debug, Clone, Copy)]
pub struct ChildUsage {
    pub cpu_s: f64,
    pub max_rss_mb: f64,
    /// Bytes the process caused to be written to storage (ru_oublock, 512-byte units).
    pub write_bytes: u64,
    pub exit_ok: bool,
}

/// Serves the benchmark's synthetic camera: noise, so the encoder spends the full bitrate
/// like a busy real scene. Returns the server, its mount (frame counter) and URL.
pub fn serve(b: &IngestBench) -> anyhow::Result<(RtspServer, Mount, String)> {
    let spec = DemoSpec {
        codec: Codec::H264,
        width: b.width,
        height: b.height,
        fps: b.fps,
        bitrate_kbps: b.bitrate_kbps,
        pattern: "snow",
        ..Default::default()
    };
    let mount = Mount::new("/bench", spec.launch_line());
    let server = RtspServer::start(0, std::slice::from_ref(&mount))?;
    let url = server.url("/bench");
    Ok((server, mount, url))
}

/// `ffmpeg -c copy -f segment` of the RTSP stream at `url` into `segment_s`-second MP4
/// files in `out` for `seconds`: the peer sentrix is measured beside.
pub fn spawn_ffmpeg_segments(
    url: &str,
    seconds: u64,
    segment_s: u32,
    out: &std::path::Path,
) -> std::io::Result<std::process::Child> {
    std::fs::create_dir_all(out)?;
    Command::new("ffmpeg")
        .args([
            "-hide_banner",
            "-loglevel",
            "error",
            "-rtsp_transport",
            "tcp",
            "-i",
            url,
        ])
        .args(["-t", &seconds.to_string(), "-c", "copy", "-f", "segment"])
        .args(["-segment_time", &segment_s.to_string()])
        .arg(out.join("out%03d.mp4"))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .spawn()
}

pub fn wait_usage(child: &std::process::Child) -> anyhow::Result<ChildUsage> {
    let pid = child.id() as libc::pid_t;
    let mut status: libc::c_int = 0;
    // SAFETY: rusage is plain old data; wait4 fills it for our own child.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let r = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    if r != pid {
        bail!("wait4({pid}) failed: {}", std::io::Error::last_os_error());
    }
    let tv = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    Ok(ChildUsage {
        cpu_s: tv(usage.ru_utime) + tv(usage.ru_stime),
        max_rss_mb: usage.ru_maxrss as f64 / 1024.0,
        write_bytes: usage.ru_oublock as u64 * 512,
        exit_ok: libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
    })
}

/// The table's two rows for a consumer measured beside ffmpeg: CPU (percent of one core)
/// and peak RSS.
pub fn table_cpu_rss(what: &str, seconds: u64, ours: &ChildUsage, ffmpeg: &ChildUsage) {
    use crate::table::{Figure, add};
    let pct = |u: &ChildUsage| 100.0 * u.cpu_s / seconds.max(1) as f64;
    add(Figure::against(
        &format!("{what}: CPU, % of a core"),
        format!("{:.2} %", pct(ours)),
        format!("ffmpeg {:.2} %", pct(ffmpeg)),
        ours.cpu_s / ffmpeg.cpu_s.max(1e-6),
    ));
    add(Figure::against(
        &format!("{what}: peak RSS"),
        format!("{:.1} MB", ours.max_rss_mb),
        format!("ffmpeg {:.1} MB", ffmpeg.max_rss_mb),
        ours.max_rss_mb / ffmpeg.max_rss_mb.max(1e-6),
    ));
}

pub fn ingest(b: &IngestBench) -> anyhow::Result<()> {
    use sentrix::ingest::RtspClient;
    let (server, mount, url) = serve(b)?;
    println!(
        "bench ingest: {}x{} {} fps H.264 {} kbit/s over RTSP/TCP on loopback, {} s",
        b.width, b.height, b.fps, b.bitrate_kbps, b.seconds
    );
    // Both RTSP clients and ffmpeg read the same stream at the same time.
    const CLIENTS: [RtspClient; 2] = [RtspClient::Gstreamer, RtspClient::Native];
    let children = CLIENTS.map(|client| spawn_ingest_client(&url, b.seconds, client));
    let out_dir = tempfile_dir()?;
    let ffmpeg = if b.with_ffmpeg {
        match spawn_ffmpeg_segments(&url, b.seconds, 10, &out_dir) {
            Ok(c) => Some(c),
            Err(e) => {
                println!("ffmpeg: not run ({e}); install ffmpeg for the side-by-side figure");
                None
            }
        }
    } else {
        None
    };
    let started = Instant::now();
    let mut ours = Vec::new();
    for (client, child) in CLIENTS.into_iter().zip(children) {
        ours.push((client, read_child(child?)?));
    }
    let ffmpeg_usage = ffmpeg.as_ref().map(wait_usage).transpose()?;
    let wall_s = started.elapsed().as_secs_f64();
    let sent = mount.sent_frames.load(std::sync::atomic::Ordering::Relaxed);
    drop(server);

    println!(
        "{:<18} {:>8} {:>12} {:>10}  notes",
        "consumer", "CPU s", "peak RSS MB", "CPU %"
    );
    let row = |name: &str, u: &ChildUsage, note: &str| {
        let failed = if u.exit_ok {
            ""
        } else {
            " (exited with an error)"
        };
        println!(
            "{name:<18} {:>8.2} {:>12.1} {:>9.2}%  {note}{failed}",
            u.cpu_s,
            u.max_rss_mb,
            100.0 * u.cpu_s / b.seconds as f64,
        )
    };
    for (client, (usage, report)) in &ours {
        row(&format!("sentrix {}", client.as_str()), usage, report);
    }
    if let Some(f) = &ffmpeg_usage {
        let segments = std::fs::read_dir(&out_dir).map(|d| d.count()).unwrap_or(0);
        row("ffmpeg", f, &format!("segments={segments}"));
        println!("(server sent {sent} frames, wall {wall_s:.0} s)");
        let stream = format!("{}p{} {} kbit/s", b.height, b.fps, b.bitrate_kbps);
        for (client, (usage, _)) in &ours {
            println!(
                "ratio sentrix {}/ffmpeg: CPU {:.2}x, peak RSS {:.2}x",
                client.as_str(),
                usage.cpu_s / f.cpu_s.max(1e-6),
                usage.max_rss_mb / f.max_rss_mb.max(1e-6)
            );
            let what = match client {
                RtspClient::Gstreamer => format!("ingest (remux only, {stream})"),
                RtspClient::Native | RtspClient::Auto => {
                    format!("ingest, native RTSP client ({stream})")
                }
            };
            table_cpu_rss(&what, b.seconds, usage, f);
        }
    }
    let _ = std::fs::remove_dir_all(&out_dir);
    if let Some((client, (_, report))) = ours.iter().find(|(_, (u, _))| !u.exit_ok) {
        bail!("the {} ingest client failed: {report}", client.as_str());
    }
    Ok(())
}

/// `sentrix-bench ingest-client` with `client` reading `url` for `seconds`.
pub fn spawn_ingest_client(
    url: &str,
    seconds: u64,
    client: sentrix::ingest::RtspClient,
) -> anyhow::Result<std::process::Child> {
    let exe = std::env::current_exe().context("while finding the sentrix-bench binary")?;
    Command::new(exe)
        .args(["ingest-client", "--url", url, "--seconds"])
        .arg(seconds.to_string())
        .args(["--rtsp-client", client.as_str()])
        .stdout(Stdio::piped())
        .spawn()
        .context("while starting the ingest client")
}

/// Waits for a bench child: its usage and what it printed, trimmed.
pub fn read_child(child: std::process::Child) -> anyhow::Result<(ChildUsage, String)> {
    let usage = wait_usage(&child)?;
    let mut text = String::new();
    if let Some(mut out) = child.stdout {
        use std::io::Read;
        let _ = out.read_to_string(&mut text);
    }
    Ok((usage, text.trim().to_string()))
}

/// A `Vm…` line (VmRSS, VmHWM) of /proc/PID/status, in KiB; `pid` may be "self".
pub fn status_kib(pid: &str, key: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.split(':').next() == Some(key))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// (median, p99) of `samples` (0, 0 when there are none).
pub fn quantiles(mut samples: Vec<f64>) -> (f64, f64) {
    if samples.is_empty() {
        return (0.0, 0.0);
    }
    samples.sort_by(f64::total_cmp);
    let at = |q: f64| samples[((samples.len() - 1) as f64 * q).round() as usize];
    (at(0.5), at(0.99))
}

/// Runs `measure` in a fresh directory `sentrix-bench-NAME-PID` under `dir`, removed after.
pub fn in_work_dir(
    dir: &std::path::Path,
    name: &str,
    measure: impl FnOnce(&std::path::Path) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    let work = dir.join(format!("sentrix-bench-{name}-{}", std::process::id()));
    let result = measure(&work);
    let _ = std::fs::remove_dir_all(&work);
    result
}

/// A store under `work` with a random key and no retention (index rows only or sealed
/// clips, as the bench writes).
pub fn work_store(work: &std::path::Path) -> anyhow::Result<sentrix::store::Store> {
    sentrix_testkit::store_with_key(work, sentrix::store::MasterKey::random()?)
}

pub use sentrix_testkit::store_with_key;

pub fn tempfile_dir() -> anyhow::Result<std::path::PathBuf> {
    let dir = std::env::temp_dir().join(format!("sentrix-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).with_context(|| format!("while creating {}", dir.display()))?;
    Ok(dir)
}

/// The child side: remux-only ingest of `url` for `seconds`, then one summary line.
pub fn ingest_client(
    url: &str,
    seconds: u64,
    client: sentrix::ingest::RtspClient,
) -> anyhow::Result<()> {
    let url = CameraUrl::parse(url).map_err(|e| anyhow::anyhow!("--url: {e}"))?;
    let mut config = SupervisorConfig::new("bench", Source::Rtsp(url));
    config.rtsp_client = client;
    let (supervisor, mut outputs) = CameraSupervisor::spawn(config)?;
    // Stopping the supervisor closes the channel, which ends the blocking receive below:
    // the consumer sleeps until a unit arrives instead of polling.
    let stopper = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_secs(seconds));
        let status = supervisor.status().snapshot();
        supervisor.stop();
        status
    });
    let (mut units, mut bytes) = (0u64, 0u64);
    while let Some(u) = outputs.units.blocking_recv() {
        units += 1;
        bytes += u.data.size() as u64;
    }
    let status = stopper
        .join()
        .map_err(|_| anyhow::anyhow!("the stopper thread panicked"))?;
    println!(
        "frames={units} MB={:.1} reconnects={}",
        bytes as f64 / 1e6,
        status.reconnects
    );
    if units == 0 {
        bail!(
            "no video arrived: {}",
            status.last_error.unwrap_or_default()
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn status_kib_reads_a_process_memory_line() {
        let rss = super::status_kib("self", "VmRSS").expect("VmRSS");
        let peak = super::status_kib("self", "VmHWM").expect("VmHWM");
        assert!(rss > 0 && peak >= rss, "rss {rss} peak {peak}");
        let pid = std::process::id().to_string();
        assert!(super::status_kib(&pid, "VmRSS").is_some());
        // A prefix of a key is not the key.
        assert_eq!(super::status_kib("self", "VmR"), None);
    }
}
