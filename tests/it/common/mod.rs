//! Shared test fixtures: the test kit's RTSP camera, temp dirs and stores
//! (`crates/testkit`), process resource counters, and the paths of the test data.
#![allow(dead_code)]

pub mod run;
pub mod tls;

use sentrix::ingest::Codec;
#[allow(unused_imports)] // each test binary uses some of them
pub use sentrix_testkit::{RtspFixture, temp_dir, temp_store, wait_until};
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// `tests/data` in the repository: the model, labels and photos (see its README).
pub fn testdata_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data")
}

/// Real footage too large for the repository, taken from a Debian package by
/// `scripts/deps.sh test` (which `make test` runs) into `~/.cache/sentrix/testdata`, or
/// `$SENTRIX_TESTDATA_CACHE`.
pub fn footage(name: &str) -> PathBuf {
    let dir = std::env::var_os("SENTRIX_TESTDATA_CACHE")
        .map(PathBuf::from)
        .or_else(|| {
            std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache/sentrix/testdata"))
        })
        .unwrap_or_else(|| PathBuf::from("/nonexistent"));
    let path = dir.join(name);
    assert!(
        path.is_file(),
        "{} is missing: run `scripts/deps.sh test` (make test does)",
        path.display()
    );
    path
}

pub fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd")
        .map(|d| d.count())
        .unwrap_or(0)
}

pub fn threads() -> usize {
    std::fs::read_dir("/proc/self/task")
        .map(|d| d.count())
        .unwrap_or(0)
}

/// `seconds` of real fragmented MP4 (synthetic H.264 through the ingest pipeline and the
/// muxer), starting at a keyframe.
/// CPU seconds (user + system) in the `/proc/…/stat` file at `stat_path` (a process's
/// or a thread's); utime and stime are fields 14 and 15, 12 and 13 after the name.
pub fn cpu_seconds(stat_path: &str) -> f64 {
    let stat = std::fs::read_to_string(stat_path).unwrap();
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .unwrap()
        .1
        .split_whitespace()
        .collect();
    (fields[11].parse::<f64>().unwrap() + fields[12].parse::<f64>().unwrap()) / 100.0
}

pub fn synthetic_mp4(seconds: u32) -> Vec<u8> {
    use sentrix::ingest::pipeline::{Source, SyntheticSpec};
    use sentrix::ingest::{CameraSupervisor, SupervisorConfig};
    let spec = SyntheticSpec {
        codec: Codec::H264,
        width: 320,
        height: 240,
        fps: 25,
        bitrate_kbps: 500,
        pattern: "ball",
        ..Default::default()
    };
    let (sup, mut out) =
        CameraSupervisor::spawn(SupervisorConfig::new("fixture", Source::Synthetic(spec))).unwrap();
    let mut units = Vec::new();
    while units.len() < (seconds * 25) as usize {
        let u = out.units.blocking_recv().expect("synthetic units");
        if !units.is_empty() || u.keyframe {
            units.push(u);
        }
    }
    sup.stop();
    sentrix::selftest::mux_units(&units).expect("mux")
}

/// Writes a config for the store tests: storage under `dir`, the given key source lines.
pub fn store_config(
    dir: &std::path::Path,
    recordings: &std::path::Path,
    encryption: &str,
) -> PathBuf {
    let text = format!(
        "detect:\n  enabled: false\nstorage:\n  recordings_dir: {}\n  database: {}\n  encryption:\n{encryption}\n  retention:\n    min_free_percent: 5\ncameras: []\n",
        recordings.display(),
        dir.join("db/sentrix.db").display()
    );
    let path = dir.join("surveillance.yml");
    std::fs::write(&path, text).unwrap();
    path
}

/// ffprobe's media duration of an MP4 file, in seconds; panics with ffprobe's errors.
pub fn ffprobe_duration(path: &std::path::Path) -> f64 {
    let out = std::process::Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-show_entries",
            "format=duration",
            "-of",
            "csv=p=0",
        ])
        .arg(path)
        .output()
        .expect("ffprobe runs (apt-get install ffmpeg)");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && stderr.trim().is_empty(),
        "ffprobe {}: {stderr}",
        path.display()
    );
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .unwrap_or_else(|_| panic!("no duration for {}", path.display()))
}

/// Every file under `dir`, recursively.
pub fn files_under(dir: &std::path::Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                out.extend(files_under(&p))
            } else {
                out.push(p)
            }
        }
    }
    out
}

/// Fails if any file under `dir` holds an MP4 `ftyp` box or a JPEG start of image.
pub fn assert_no_plaintext(dir: &std::path::Path) {
    // Signatures long enough that random ciphertext never matches by chance (about one
    // chance in 2^56 per position): an `ftyp` box with its size, and a JPEG start of image
    // with its JFIF or Exif segment.
    let mp4 = |w: &[u8]| w[..3] == [0, 0, 0] && (8..=255).contains(&w[3]) && &w[4..8] == b"ftyp";
    let jpeg =
        |w: &[u8]| w[..3] == [0xFF, 0xD8, 0xFF] && (&w[6..10] == b"JFIF" || &w[6..10] == b"Exif");
    for f in files_under(dir) {
        let b = std::fs::read(&f).unwrap();
        assert!(!b.windows(8).any(mp4), "plaintext MP4 in {}", f.display());
        assert!(
            !b.windows(10).any(jpeg),
            "plaintext JPEG in {}",
            f.display()
        );
    }
}

/// Supervisor settings for a camera at `url`, with the decode branch at 320x320, 5 fps
/// when `decode`.
pub fn camera_config(url: &str, decode: bool) -> sentrix::ingest::SupervisorConfig {
    use sentrix::ingest::pipeline::{DecodeSpec, Source};
    let url = sentrix::base::redact::CameraUrl::parse(url).expect("test URL");
    let mut config = sentrix::ingest::SupervisorConfig::new("cam", Source::Rtsp(url));
    if decode {
        config.decode = Some(DecodeSpec {
            width: 320,
            height: 320,
            fps: 5,
        });
    }
    config
}

/// sd_notify messages received on `sock` within `d`.
pub fn notify_messages(sock: &std::os::unix::net::UnixDatagram, d: Duration) -> Vec<String> {
    let end = Instant::now() + d;
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    while let Some(left) = end.checked_duration_since(Instant::now()) {
        sock.set_read_timeout(Some(left.max(Duration::from_millis(1))))
            .unwrap();
        match sock.recv(&mut buf) {
            Ok(n) => out.push(String::from_utf8_lossy(&buf[..n]).to_string()),
            Err(_) => break,
        }
    }
    out
}

/// Cuts the last `bytes` off `path` (a file damaged by a failing card or a cut copy).
pub fn cut_tail(path: &std::path::Path, bytes: u64) {
    let len = std::fs::metadata(path).unwrap().len();
    let f = std::fs::OpenOptions::new().write(true).open(path).unwrap();
    f.set_len(len - bytes).unwrap();
}

/// A full ffmpeg decode of `path` reports nothing.
pub fn assert_decodes_cleanly(path: &std::path::Path) {
    let out = std::process::Command::new("ffmpeg")
        .args(["-v", "error", "-i"])
        .arg(path)
        .args(["-f", "null", "-"])
        .output()
        .unwrap();
    assert!(
        out.status.success() && out.stderr.is_empty(),
        "{}: {}",
        path.display(),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The video frames ffprobe decodes in `path`.
pub fn frames_in(path: &std::path::Path) -> u64 {
    let out = std::process::Command::new("ffprobe")
        .args(["-v", "error", "-count_frames", "-select_streams", "v:0"])
        .args(["-show_entries", "stream=nb_read_frames", "-of", "csv=p=0"])
        .arg(path)
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .trim_end_matches(',')
        .parse()
        .unwrap_or_else(|_| panic!("ffprobe counted no frames in {}", path.display()))
}
