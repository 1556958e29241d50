//! `sentrix-bench cameras`: the memory of a full box. `sentrix run` (a child, measured
//! alone) records 4 cameras, each a 1080p15 main stream plus a 640x360 5 fps sub-stream
//! that YOLOX-nano watches, on events, for `--minutes`. This process serves both streams
//! over RTSP on loopback (shared media: one encoder each, whatever the number of
//! cameras), the sub-stream from a photo of people so detection finds them and records.
//! It samples the child's RSS every 10 s and reports its peak, the RSS at the half-way
//! point and at the end, and the slope over the second half (flat means no leak).

use super::table::{Figure, add};
use anyhow::{Context, bail};
use sentrix::ingest::Codec;
use sentrix::ingest::demo::{DemoSpec, Mount, RtspServer, encoder_description};
use sentrix_testkit::servers::free_port;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

pub struct CamerasBench {
    pub minutes: u64,
    pub cameras: usize,
    pub model: PathBuf,
    /// A photo with people, looped as the sub-stream.
    pub image: PathBuf,
    /// The binary to measure (default: this one), e.g. an older build for a before/after.
    pub sentrix: Option<PathBuf>,
}

/// Seconds between RSS samples.
const SAMPLE_S: u64 = 10;

pub fn cameras(b: &CamerasBench) -> anyhow::Result<()> {
    let work = super::tempfile_dir()?.join("cameras");
    std::fs::create_dir_all(&work)?;
    let result = run(b, &work);
    let _ = std::fs::remove_dir_all(&work);
    result
}

fn run(b: &CamerasBench, work: &Path) -> anyhow::Result<()> {
    let (_server, main_url, sub_url) = serve(&b.image)?;
    let config = write_config(work, b, &main_url, &sub_url)?;
    let exe = match &b.sentrix {
        Some(p) => p.clone(),
        None => crate::sentrix_exe(),
    };
    println!(
        "bench cameras: {} cameras (1080p15 4 Mbit/s main + 640x360 5 fps sub, YOLOX-nano at 416, events) for {} min, {}",
        b.cameras,
        b.minutes,
        exe.display()
    );
    let log = std::fs::File::create(work.join("log"))?;
    let mut child = Command::new(&exe)
        .args(["run", "--config"])
        .arg(&config)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .context("while starting sentrix run")?;
    let samples = sample_rss(child.id(), b.minutes * 60);
    let peak_kib = super::status_kib(&child.id().to_string(), "VmHWM");
    // SAFETY: signalling our own child.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let _ = child.wait();
    let log = std::fs::read_to_string(work.join("log")).unwrap_or_default();
    let clips = log.lines().filter(|l| l.contains(" finished: ")).count();
    let (samples, peak_kib) = match (samples, peak_kib) {
        (Ok(s), Some(p)) if !s.is_empty() => (s, p),
        (Err(e), _) => bail!("{e}; the log ends with {:?}", tail(&log)),
        _ => bail!(
            "sentrix run exited early; the log ends with {:?}",
            tail(&log)
        ),
    };
    report(b, &samples, peak_kib, clips);
    if clips == 0 {
        bail!(
            "no clip was recorded: detection found nobody; the log ends with {:?}",
            tail(&log)
        );
    }
    Ok(())
}

/// The RTSP server: /main (a moving ball, cheap to encode) and /sub (the photo, looped).
fn serve(image: &Path) -> anyhow::Result<(RtspServer, String, String)> {
    let main = DemoSpec {
        codec: Codec::H264,
        width: 1920,
        height: 1080,
        fps: 15,
        bitrate_kbps: 4000,
        pattern: "ball",
        ..Default::default()
    };
    let image = image
        .canonicalize()
        .with_context(|| format!("while opening {}", image.display()))?;
    let sub = format!(
        "( multifilesrc location=\"{}\" loop=true caps=image/jpeg,framerate=5/1 ! jpegdec \
         ! videoconvert ! videoscale ! video/x-raw,format=I420,width=640,height=360 \
         ! {} ! rtph264pay name=pay0 pt=96 config-interval=-1 )",
        image.display(),
        encoder_description(Codec::H264, 5, 500)
    );
    let mounts = [
        Mount::new("/main", main.launch_line()),
        Mount::new("/sub", sub),
    ];
    let server = RtspServer::start(0, &mounts)?;
    let (main, sub) = (server.url("/main"), server.url("/sub"));
    Ok((server, main, sub))
}

fn write_config(dir: &Path, b: &CamerasBench, main: &str, sub: &str) -> anyhow::Result<PathBuf> {
    let model = b
        .model
        .canonicalize()
        .with_context(|| format!("while opening {}", b.model.display()))?;
    let mut text = format!(
        "network:\n  api_port: {}\ndetect:\n  enabled: true\n  model: {}\n  input_size: 416\n  fps: 5\n  \
         motion:\n    enabled: false\nrecord:\n  pre_detection_buffer: 5\n  post_detection_buffer: 10\n  \
         max_clip_length: 60\nstorage:\n  recordings_dir: rec\n  database: db/sentrix.db\n  \
         retention:\n    min_free_percent: 1\n  \
         encryption:\n    key_file: clip.key\ncameras:\n",
        free_port()?,
        model.display()
    );
    for i in 0..b.cameras {
        text.push_str(&format!(
            "  - id: cam{i}\n    url: {main}\n    detect_url: {sub}\n"
        ));
    }
    let path = dir.join("surveillance.yml");
    std::fs::write(&path, text)?;
    Ok(path)
}

/// VmRSS of `pid` every SAMPLE_S seconds for `seconds`, in KiB; an error if it exits.
fn sample_rss(pid: u32, seconds: u64) -> anyhow::Result<Vec<u64>> {
    let start = Instant::now();
    let mut samples = Vec::new();
    let mut n = 0;
    while start.elapsed() < Duration::from_secs(seconds) {
        n += 1;
        let next = Duration::from_secs(SAMPLE_S * n);
        std::thread::sleep(next.saturating_sub(start.elapsed()));
        match super::status_kib(&pid.to_string(), "VmRSS") {
            Some(kib) => samples.push(kib),
            None => bail!("sentrix run exited after {} s", start.elapsed().as_secs()),
        }
    }
    Ok(samples)
}

/// Least-squares slope of `samples` (KiB, one per SAMPLE_S), in MB per 10 minutes.
fn slope_mb_per_10min(samples: &[u64]) -> f64 {
    let n = samples.len() as f64;
    if n < 2.0 {
        return 0.0;
    }
    let mean_x = (n - 1.0) / 2.0;
    let mean_y = samples.iter().sum::<u64>() as f64 / n;
    let (mut num, mut den) = (0.0, 0.0);
    for (i, &y) in samples.iter().enumerate() {
        let dx = i as f64 - mean_x;
        num += dx * (y as f64 - mean_y);
        den += dx * dx;
    }
    let kib_per_sample = num / den;
    kib_per_sample * (600 / SAMPLE_S) as f64 / 1024.0
}

fn report(b: &CamerasBench, samples: &[u64], peak_kib: u64, clips: usize) {
    let mb = |kib: u64| kib as f64 / 1024.0;
    let half = &samples[samples.len() / 2..];
    let slope = slope_mb_per_10min(half);
    let (at_half, at_end) = (half[0], samples[samples.len() - 1]);
    println!(
        "peak RSS {:.0} MB; RSS at {:.1} min {:.0} MB, at the end {:.0} MB; slope over the second half {slope:+.1} MB per 10 min; {clips} clips recorded",
        mb(peak_kib),
        b.minutes as f64 / 2.0,
        mb(at_half),
        mb(at_end),
    );
    let what = format!(
        "{} cameras 1080p15 + 360p sub, YOLOX-nano, events",
        b.cameras
    );
    add(Figure::alone(
        &format!("{what}: peak RSS after {} min", b.minutes),
        format!("{:.0} MB", mb(peak_kib)),
    ));
    add(Figure::alone(
        &format!(
            "{what}: RSS slope over the last {:.0} min",
            b.minutes as f64 / 2.0
        ),
        format!("{slope:+.1} MB per 10 min ({clips} clips)"),
    ));
}

fn tail(log: &str) -> Vec<&str> {
    let lines: Vec<&str> = log.lines().collect();
    lines[lines.len().saturating_sub(5)..].to_vec()
}

#[cfg(test)]
mod tests {
    use super::slope_mb_per_10min;

    #[test]
    fn slope_is_zero_for_flat_and_exact_for_a_line() {
        assert_eq!(slope_mb_per_10min(&[5000; 30]), 0.0);
        // 1 MiB more every sample of 10 s = 60 MB per 10 minutes.
        let line: Vec<u64> = (0..30).map(|i| 100_000 + i * 1024).collect();
        assert!((slope_mb_per_10min(&line) - 60.0).abs() < 1e-9);
    }
}
