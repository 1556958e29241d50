//! `sentrix-bench`: sentrix's measurements, a binary of its own so the appliance carries
//! none of them. Each bench prints its figures and, where a peer exists (ffmpeg,
//! onnxruntime), the ratio measured side by side in the same run. `make bench` runs them
//! all and prints one table; docs/performance.md says how to run them on a board.
//!
//! `common.rs` holds what several benches share (the synthetic camera, child processes'
//! CPU and memory from wait4, work dirs); each other file is one bench.

mod alarms;
mod analytics;
mod bigclip;
mod cameras;
mod common;
mod crypto;
mod detect;
mod gate;
mod hostile;
mod live;
mod notify;
mod offsite;
mod record;
mod review;
mod table;
mod timeline;

pub use alarms::alarms;
pub use analytics::analytics;
pub use bigclip::make_clip;
pub use cameras::{CamerasBench, cameras};
use common::*;
pub use crypto::crypto;
pub use detect::detect;
pub use gate::gate;
pub use hostile::{HostileBench, hostile};
pub use live::live;
pub use notify::notify;
pub use offsite::offsite;
pub use record::{record, record_client};
pub use review::review;
pub use timeline::timeline;

use clap::{Parser, Subcommand};
use sentrix::cmds::{load, report};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "sentrix-bench",
    version,
    about = "Measure sentrix on this machine: ingest, recording, detection, HTTPS, memory"
)]
struct Cli {
    #[command(subcommand)]
    bench: Bench,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    sentrix::base::logging::init();
    run(cli.bench)
}

/// The `sentrix` binary the benches that measure a whole `sentrix run` start:
/// `$SENTRIX_BIN`, else the `sentrix` beside this binary (the build dir, /usr/bin), else
/// `sentrix` on the PATH.
pub fn sentrix_exe() -> PathBuf {
    if let Some(p) = std::env::var_os("SENTRIX_BIN") {
        return PathBuf::from(p);
    }
    std::env::current_exe()
        .ok()
        .and_then(|me| Some(me.parent()?.join("sentrix")))
        .filter(|p| p.is_file())
        .unwrap_or_else(|| PathBuf::from("sentrix"))
}

#[derive(Subcommand)]
pub enum Bench {
    /// CPU and peak RSS of remux-only ingest of one RTSP stream, next to ffmpeg -c copy.
    Ingest {
        #[arg(long, default_value_t = 60)]
        seconds: u64,
        #[command(flatten)]
        camera: CameraArgs,
        /// Do not run ffmpeg beside sentrix.
        #[arg(long)]
        no_ffmpeg: bool,
    },
    /// Seal/open throughput vs a plain write, random 64 KiB read latency, PBKDF2 time.
    Crypto {
        /// Megabytes for the throughput runs.
        #[arg(long, default_value_t = 256)]
        mb: u64,
        /// Size in MB of the clip for the random-read test.
        #[arg(long, default_value_t = 1024)]
        clip_mb: u64,
        /// Directory for the test files (default: the system temp dir).
        #[arg(long)]
        dir: Option<PathBuf>,
    },
    /// Load time and inference latency of a YOLO model, next to onnxruntime on one thread.
    Detect {
        #[arg(long)]
        model: PathBuf,
        /// Input sizes to measure (multiples of 32).
        #[arg(long, value_delimiter = ',', default_value = "320,416,640")]
        size: Vec<usize>,
        #[arg(long, default_value_t = 20)]
        runs: usize,
        /// Inference arithmetic (f16: for CPUs with half-precision arithmetic).
        #[arg(long, value_enum, default_value_t = sentrix::detect::Precision::F32)]
        precision: sentrix::detect::Precision,
        /// Also print where each inference's time goes, per operator kind, in tract and
        /// in onnxruntime (its profiler).
        #[arg(long)]
        ops: bool,
        #[arg(required = true)]
        images: Vec<PathBuf>,
    },
    /// Detector CPU per camera-minute on a video of people vs a still scene, with and
    /// without the motion gate.
    Gate {
        #[arg(long)]
        model: PathBuf,
        /// A video with motion (looped), e.g. vtest.avi (scripts/deps.sh test fetches it).
        #[arg(long)]
        video: PathBuf,
        #[arg(long, default_value_t = 60)]
        seconds: u64,
        #[arg(long, default_value_t = 416)]
        size: usize,
        #[arg(long, default_value_t = 5)]
        fps: u32,
    },
    /// CPU, RSS and disk writes of recording vs remux-only ingest (and, continuous, ffmpeg).
    Record {
        #[arg(long, default_value_t = 60)]
        seconds: u64,
        /// events: back-to-back event clips; continuous: 60 s segments, beside ffmpeg.
        #[arg(long, value_enum, default_value_t = ModeArg::Events)]
        mode: ModeArg,
        /// Directory for the temporary store (default: the system temp dir).
        #[arg(long)]
        dir: Option<PathBuf>,
    },
    /// The measured child of `bench record`.
    #[command(hide = true)]
    RecordClient {
        #[arg(long)]
        url: String,
        #[arg(long)]
        seconds: u64,
        #[arg(long)]
        dir: PathBuf,
        #[arg(long, value_enum, default_value_t = ModeArg::Events)]
        mode: ModeArg,
        #[arg(long, value_enum, default_value_t = sentrix::ingest::RtspClient::Gstreamer)]
        rtsp_client: sentrix::ingest::RtspClient,
    },
    /// Timeline API latency over a day of 1,440 segments and 2,000 events, the time to the
    /// first byte of a one-hour export, and the index's size per camera-day.
    Timeline {
        /// Directory for the temporary store (default: the system temp dir).
        #[arg(long)]
        dir: Option<PathBuf>,
    },
    /// Notification latency per target (MQTT, webhook, e-mail, ntfy) against real
    /// servers on loopback (mosquitto and aiosmtpd must be installed), and the idle cost
    /// of four configured targets in `sentrix run`.
    Notify {
        #[arg(long, default_value_t = 50)]
        events: usize,
        /// Seconds each idle `sentrix run` is measured.
        #[arg(long, default_value_t = 60)]
        idle_seconds: u64,
    },
    /// Off-site copies against s3s-fs on loopback: upload throughput, CPU per MB and peak
    /// RSS of one large clip, and the time to restore many small clips into an empty store.
    Offsite {
        /// Size in MB of the large clip.
        #[arg(long, default_value_t = 1024)]
        mb: u64,
        /// How many small clips to upload and restore.
        #[arg(long, default_value_t = 1000)]
        clips: usize,
        /// Directory for the temporary stores and the bucket (default: the system temp dir).
        #[arg(long)]
        dir: Option<PathBuf>,
    },
    /// The analytics summary's latency over 100,000 synthetic events.
    Analytics {
        /// Directory for the temporary store (default: the system temp dir).
        #[arg(long)]
        dir: Option<PathBuf>,
    },
    /// The SMTP alarm receiver in process: end of DATA to the event's start (median, p99)
    /// and CPU per alarm of five pictures with its clip.
    Alarms {
        /// One-picture alarms timed for the latency.
        #[arg(long, default_value_t = 100)]
        alarms: usize,
        /// Five-picture alarms (each with its clip) timed for the CPU.
        #[arg(long, default_value_t = 20)]
        clips: usize,
        /// Directory for the temporary store (default: the system temp dir).
        #[arg(long)]
        dir: Option<PathBuf>,
    },
    /// Review items over 100,000 synthetic events: the rebuild, and GET /api/review's latency.
    Review {
        /// Directory for the temporary store (default: the system temp dir).
        #[arg(long)]
        dir: Option<PathBuf>,
    },
    /// Writes one large sealed clip of real H.264 into the configured store (for HTTP
    /// Range and decrypt-on-serve measurements on a long recording).
    #[command(hide = true)]
    MakeClip {
        #[arg(long)]
        config: Option<PathBuf>,
        /// Camera id from the config that the clip belongs to.
        #[arg(long)]
        camera: String,
        #[arg(long, default_value_t = 1024)]
        mb: u64,
    },
    /// A hostile LAN against a running sentrix (scripts/bench-hostile.sh): legitimate
    /// latency under 1,000 idle connections and 500 slow-header senders, then 10,000
    /// guesses from 16 addresses. The password comes from $SENTRIX_BENCH_PASSWORD.
    Hostile {
        #[arg(long)]
        port: u16,
        /// The dashboard's certificate.
        #[arg(long)]
        cert: PathBuf,
        #[arg(long)]
        user: String,
        /// The server's process id (for its CPU time).
        #[arg(long)]
        pid: u32,
        /// Seconds of legitimate requests per phase.
        #[arg(long, default_value_t = 10)]
        seconds: u64,
    },
    /// CPU of `sentrix run` on one camera with 0, 1 and 4 live viewers over the fMP4
    /// WebSocket and over MJPEG, and the live view's server-side latency.
    Live {
        /// Seconds measured per phase.
        #[arg(long, default_value_t = 30)]
        seconds: u64,
        #[command(flatten)]
        camera: CameraArgs,
    },
    /// Peak RSS of `sentrix run` with 4 cameras (1080p15 main + 640x360 5 fps sub-stream,
    /// YOLOX-nano, recording on events) over MINUTES, and its slope over the second half.
    Cameras {
        #[arg(long, default_value_t = 10)]
        minutes: u64,
        #[arg(long, default_value_t = 4)]
        cameras: usize,
        #[arg(long, default_value = "tests/data/yolox_nano.onnx")]
        model: PathBuf,
        /// A photo with people, looped as every camera's sub-stream.
        #[arg(long, default_value = "tests/data/coco_000000001000.jpg")]
        image: PathBuf,
        /// Measure this binary instead of this one (for a before/after).
        #[arg(long)]
        sentrix: Option<PathBuf>,
    },
    /// Prints the figures the benches of this run appended to RESULTS ($SENTRIX_BENCH_TABLE)
    /// as one Markdown table.
    Table { results: PathBuf },
    /// The measured child of `bench ingest`.
    #[command(hide = true)]
    IngestClient {
        #[arg(long)]
        url: String,
        #[arg(long)]
        seconds: u64,
        #[arg(long, value_enum, default_value_t = sentrix::ingest::RtspClient::Gstreamer)]
        rtsp_client: sentrix::ingest::RtspClient,
    },
}

fn run(bench: Bench) -> ExitCode {
    match bench {
        Bench::Ingest {
            seconds,
            camera,
            no_ffmpeg,
        } => report(crate::ingest(&camera.bench(seconds, !no_ffmpeg))),
        Bench::Live { seconds, camera } => {
            report(crate::live(&camera.bench(seconds, false), seconds))
        }
        Bench::Cameras {
            minutes,
            cameras,
            model,
            image,
            sentrix,
        } => report(crate::cameras(&crate::CamerasBench {
            minutes,
            cameras,
            model,
            image,
            sentrix,
        })),
        Bench::Table { results } => report(crate::table::print(&results)),
        Bench::IngestClient {
            url,
            seconds,
            rtsp_client,
        } => report(crate::ingest_client(&url, seconds, rtsp_client)),
        Bench::Detect {
            model,
            size,
            runs,
            precision,
            ops,
            images,
        } => report(crate::detect(&model, &size, runs, precision, &images, ops)),
        Bench::Gate {
            model,
            video,
            seconds,
            size,
            fps,
        } => report(crate::gate(&model, &video, seconds, size, fps)),
        Bench::Record { seconds, dir, mode } => {
            let b = crate::IngestBench {
                seconds,
                width: 1920,
                height: 1080,
                fps: 15,
                bitrate_kbps: 4000,
                with_ffmpeg: false,
            };
            report(crate::record(
                &b,
                &dir.unwrap_or_else(std::env::temp_dir),
                mode.into(),
            ))
        }
        Bench::RecordClient {
            url,
            seconds,
            dir,
            mode,
            rtsp_client,
        } => report(crate::record_client(
            &url,
            seconds,
            &dir,
            mode.into(),
            rtsp_client,
        )),
        Bench::Timeline { dir } => report(crate::timeline(&dir.unwrap_or_else(std::env::temp_dir))),
        Bench::Notify {
            events,
            idle_seconds,
        } => report(crate::notify(events, idle_seconds)),
        Bench::Offsite { mb, clips, dir } => report(crate::offsite(
            &dir.unwrap_or_else(std::env::temp_dir),
            mb,
            clips,
        )),
        Bench::Analytics { dir } => {
            report(crate::analytics(&dir.unwrap_or_else(std::env::temp_dir)))
        }
        Bench::Review { dir } => report(crate::review(&dir.unwrap_or_else(std::env::temp_dir))),
        Bench::Alarms { alarms, clips, dir } => report(crate::alarms(
            &dir.unwrap_or_else(std::env::temp_dir),
            alarms,
            clips,
        )),
        Bench::MakeClip { config, camera, mb } => match load(config) {
            Ok(c) => report(crate::make_clip(&c, &camera, mb)),
            Err(code) => code,
        },
        Bench::Hostile {
            port,
            cert,
            user,
            pid,
            seconds,
        } => {
            let password = std::env::var("SENTRIX_BENCH_PASSWORD").unwrap_or_default();
            let b = crate::HostileBench {
                port,
                cert,
                user,
                password,
                pid,
                seconds,
            };
            report(crate::hostile(&b))
        }
        Bench::Crypto { mb, clip_mb, dir } => {
            let dir = dir.unwrap_or_else(std::env::temp_dir);
            report(crate::crypto(mb, clip_mb, &dir))
        }
    }
}

/// The synthetic camera a bench serves.
#[derive(clap::Args)]
pub struct CameraArgs {
    #[arg(long, default_value_t = 1920)]
    width: u32,
    #[arg(long, default_value_t = 1080)]
    height: u32,
    #[arg(long, default_value_t = 15)]
    fps: u32,
    #[arg(long, default_value_t = 4000)]
    bitrate_kbps: u32,
}

impl CameraArgs {
    fn bench(&self, seconds: u64, with_ffmpeg: bool) -> crate::IngestBench {
        crate::IngestBench {
            seconds,
            width: self.width,
            height: self.height,
            fps: self.fps,
            bitrate_kbps: self.bitrate_kbps,
            with_ffmpeg,
        }
    }
}

/// `--mode` of `bench record`.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum ModeArg {
    Events,
    Continuous,
}

impl From<ModeArg> for sentrix::config::RecordMode {
    fn from(m: ModeArg) -> Self {
        match m {
            ModeArg::Events => Self::Events,
            ModeArg::Continuous => Self::Continuous,
        }
    }
}
