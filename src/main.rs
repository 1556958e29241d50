//! The `sentrix` command line: parses arguments, loads the config where a command needs
//! it, and hands over to the library. Exit codes: 0 ok, 1 failure, 2 bad config or usage.

use clap::{Parser, Subcommand, ValueEnum};
use sentrix::config::{Config, find_config};
use sentrix::ingest::Codec;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

#[derive(Parser)]
#[command(
    name = "sentrix",
    version,
    about = "A single-binary NVR for small boards"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Ingest every enabled camera until SIGINT/SIGTERM.
    Run {
        /// Config file (default: ./surveillance.yml, else /etc/sentrix/surveillance.yml).
        #[arg(long)]
        config: Option<PathBuf>,
        /// Seconds between per-camera status lines.
        #[arg(long, default_value_t = 10, hide = true)]
        status_interval: u64,
    },
    /// Validate a config file: prints "config OK" or `file:line:col: key: message` (exit 2).
    CheckConfig {
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// Check the pipeline end to end with a synthetic source: no camera, no network.
    Selftest {
        #[arg(long, value_enum, default_value_t = SelftestCodec::H264)]
        codec: SelftestCodec,
    },
    /// Decrypt a clip (or thumbnail) file to a standard MP4 (JPEG); `-o -` writes to stdout.
    Decrypt {
        /// A sealed file from the recordings directory.
        input: PathBuf,
        #[arg(short = 'o', long = "output")]
        output: PathBuf,
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// Run a YOLO ONNX model on images and print the detections (label, score, box).
    Detect {
        #[arg(long)]
        model: PathBuf,
        /// Square input size in pixels (multiple of 32).
        #[arg(long, default_value_t = 416)]
        size: usize,
        /// yolox, yolov5 or yolov8; detected from the output shape when not given.
        #[arg(long)]
        format: Option<String>,
        #[arg(long)]
        labels_file: Option<PathBuf>,
        #[arg(long, default_value_t = 0.3)]
        min_score: f32,
        #[arg(required = true)]
        images: Vec<PathBuf>,
    },
    /// Ask the running instance whether it is healthy (exit 0) or not (exit 1).
    Healthcheck {
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// Print the id of the configured clip key (it is written in every clip header).
    KeyId {
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// First setup of a box: the first admin (with a generated password, printed once)
    /// and the dashboard's certificate. Refuses when a user already exists.
    Init {
        #[arg(long)]
        config: Option<PathBuf>,
        /// Name of the first admin.
        #[arg(long, default_value = "admin")]
        user: String,
        /// Succeed without changing anything when users exist already.
        #[arg(long)]
        if_needed: bool,
    },
    /// Manage dashboard users.
    User {
        #[command(subcommand)]
        action: UserCmd,
        #[arg(long, global = true)]
        config: Option<PathBuf>,
        /// Read the password from the first line of stdin (else one is generated).
        #[arg(long, global = true)]
        password_stdin: bool,
    },
    /// TLS certificates for the dashboard.
    Certs {
        #[command(subcommand)]
        action: CertsCmd,
    },
    /// Measure performance.
    #[command(subcommand)]
    Bench(Bench),
    /// Test hook: record synthetic clips into the configured store until killed.
    #[command(hide = true)]
    TestWriter {
        #[arg(long)]
        config: Option<PathBuf>,
        #[arg(long, default_value_t = 2)]
        clip_seconds: u64,
        #[arg(long, default_value_t = 800)]
        bitrate_kbps: u32,
    },
}

#[derive(Subcommand)]
enum UserCmd {
    /// Add a user: `sentrix user add NAME --role admin|viewer [--password-stdin]`.
    Add {
        name: String,
        #[arg(long, default_value = "viewer")]
        role: String,
    },
    /// Change a user's password.
    Passwd { name: String },
    /// Remove a user.
    Remove { name: String },
    /// List users and roles.
    List,
}

#[derive(Subcommand)]
enum CertsCmd {
    /// Write a new self-signed certificate for localhost, this host and its addresses.
    Generate {
        /// Extra names or addresses the certificate should cover (repeatable).
        #[arg(long)]
        hostname: Vec<String>,
        #[arg(long)]
        config: Option<PathBuf>,
    },
}

#[derive(Clone, Copy, ValueEnum)]
enum SelftestCodec {
    H264,
    H265,
    All,
}

#[derive(Subcommand)]
enum Bench {
    /// CPU and peak RSS of remux-only ingest of one RTSP stream, next to ffmpeg -c copy.
    Ingest {
        #[arg(long, default_value_t = 60)]
        seconds: u64,
        #[arg(long, default_value_t = 1920)]
        width: u32,
        #[arg(long, default_value_t = 1080)]
        height: u32,
        #[arg(long, default_value_t = 15)]
        fps: u32,
        #[arg(long, default_value_t = 4000)]
        bitrate_kbps: u32,
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
    /// CPU, RSS and disk writes of continuous recording vs remux-only ingest.
    Record {
        #[arg(long, default_value_t = 60)]
        seconds: u64,
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
    /// The measured child of `bench ingest`.
    #[command(hide = true)]
    IngestClient {
        #[arg(long)]
        url: String,
        #[arg(long)]
        seconds: u64,
    },
}

fn load(config: Option<PathBuf>) -> Result<Config, ExitCode> {
    find_config(config.as_deref())
        .and_then(|p| Config::load(&p))
        .map_err(|e| {
            eprintln!("{e}");
            ExitCode::from(2)
        })
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    sentrix::logging::init();
    match cli.command {
        Command::CheckConfig { config } => match load(config) {
            Ok(c) => {
                println!(
                    "config OK ({} camera(s), {} enabled)",
                    c.cameras.len(),
                    c.enabled_cameras().count()
                );
                ExitCode::SUCCESS
            }
            Err(code) => code,
        },
        Command::Run {
            config,
            status_interval,
        } => {
            let file = match find_config(config.as_deref()) {
                Ok(f) => f,
                Err(e) => {
                    eprintln!("{e}");
                    return ExitCode::from(2);
                }
            };
            let mut config = match load(Some(file.clone())) {
                Ok(c) => c,
                Err(code) => return code,
            };
            let runtime = match tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
            {
                Ok(r) => r,
                Err(e) => {
                    eprintln!("cannot start the async runtime: {e}");
                    return ExitCode::FAILURE;
                }
            };
            loop {
                let opts = sentrix::app::RunOptions {
                    status_interval: Duration::from_secs(status_interval.max(1)),
                    config_file: file.clone(),
                };
                match runtime.block_on(sentrix::app::run(config, opts)) {
                    Ok(sentrix::app::RunEnd::Stopped) => return ExitCode::SUCCESS,
                    Ok(sentrix::app::RunEnd::Reload(new)) => config = *new,
                    Err(e) => {
                        tracing::error!("{e:#}");
                        return ExitCode::FAILURE;
                    }
                }
            }
        }
        Command::Selftest { codec } => {
            let codecs: &[Codec] = match codec {
                SelftestCodec::H264 => &[Codec::H264],
                SelftestCodec::H265 => &[Codec::H265],
                SelftestCodec::All => &[Codec::H264, Codec::H265],
            };
            for &c in codecs {
                match sentrix::selftest::run(c) {
                    Ok(report) => println!("selftest OK: {}", report.summary),
                    Err(e) => {
                        println!("selftest FAILED: {e}");
                        return ExitCode::FAILURE;
                    }
                }
            }
            ExitCode::SUCCESS
        }
        Command::Bench(Bench::Ingest {
            seconds,
            width,
            height,
            fps,
            bitrate_kbps,
            no_ffmpeg,
        }) => {
            let b = sentrix::bench::IngestBench {
                seconds,
                width,
                height,
                fps,
                bitrate_kbps,
                with_ffmpeg: !no_ffmpeg,
            };
            report(sentrix::bench::ingest(&b))
        }
        Command::Bench(Bench::IngestClient { url, seconds }) => {
            report(sentrix::bench::ingest_client(&url, seconds))
        }
        Command::Bench(Bench::Detect {
            model,
            size,
            runs,
            images,
        }) => report(sentrix::bench::detect(&model, &size, runs, &images)),
        Command::Bench(Bench::Gate {
            model,
            video,
            seconds,
            size,
            fps,
        }) => report(sentrix::bench::gate(&model, &video, seconds, size, fps)),
        Command::Bench(Bench::Record { seconds, dir }) => {
            let b = sentrix::bench::IngestBench {
                seconds,
                width: 1920,
                height: 1080,
                fps: 15,
                bitrate_kbps: 4000,
                with_ffmpeg: false,
            };
            report(sentrix::bench::record(
                &b,
                &dir.unwrap_or_else(std::env::temp_dir),
            ))
        }
        Command::Bench(Bench::RecordClient { url, seconds, dir }) => {
            report(sentrix::bench::record_client(&url, seconds, &dir))
        }
        Command::Bench(Bench::MakeClip { config, camera, mb }) => match load(config) {
            Ok(c) => report(sentrix::bench::make_clip(&c, &camera, mb)),
            Err(code) => code,
        },
        Command::Bench(Bench::Crypto { mb, clip_mb, dir }) => {
            let dir = dir.unwrap_or_else(std::env::temp_dir);
            report(sentrix::bench::crypto(mb, clip_mb, &dir))
        }
        Command::Decrypt {
            input,
            output,
            config,
        } => match load(config) {
            Ok(c) => report(sentrix::tools::decrypt(&c, &input, &output)),
            Err(code) => code,
        },
        Command::Detect {
            model,
            size,
            format,
            labels_file,
            min_score,
            images,
        } => report(sentrix::tools::detect(
            &model,
            size,
            format.as_deref(),
            labels_file.as_deref(),
            min_score,
            &images,
        )),
        Command::Healthcheck { config } => match load(config) {
            Ok(c) => match sentrix::health::query(&c) {
                Ok(report) => {
                    println!("{report}");
                    ExitCode::SUCCESS
                }
                Err(report) => {
                    println!("{report}");
                    ExitCode::FAILURE
                }
            },
            Err(code) => code,
        },
        Command::KeyId { config } => match load(config) {
            Ok(c) => match sentrix::store::keys::load(&c) {
                Ok(key) => {
                    println!("{}", key.id());
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("error: {e}");
                    ExitCode::FAILURE
                }
            },
            Err(code) => code,
        },
        Command::Init {
            config,
            user,
            if_needed,
        } => match load(config) {
            Ok(c) => report(sentrix::auth::cli::init(&c, &user, if_needed)),
            Err(code) => code,
        },
        Command::User {
            action,
            config,
            password_stdin,
        } => match load(config) {
            Ok(c) => {
                use sentrix::auth::cli::UserAction;
                let action = match action {
                    UserCmd::Add { name, role } => UserAction::Add { name, role },
                    UserCmd::Passwd { name } => UserAction::Passwd { name },
                    UserCmd::Remove { name } => UserAction::Remove { name },
                    UserCmd::List => UserAction::List,
                };
                report(sentrix::auth::cli::user(&c, action, password_stdin))
            }
            Err(code) => code,
        },
        Command::Certs {
            action: CertsCmd::Generate { hostname, config },
        } => match load(config) {
            Ok(c) => report(sentrix::auth::cli::certs_generate(&c, &hostname)),
            Err(code) => code,
        },
        Command::TestWriter {
            config,
            clip_seconds,
            bitrate_kbps,
        } => match load(config) {
            Ok(c) => report(sentrix::tools::test_writer(&c, clip_seconds, bitrate_kbps)),
            Err(code) => code,
        },
    }
}

fn report(r: anyhow::Result<()>) -> ExitCode {
    match r {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
