//! The `sentrix` command line: one file per command, each with its clap arguments and a
//! `run` that returns the exit code; `main.rs` only parses and dispatches. Exit codes: 0
//! ok, 1 failure, 2 bad config or usage.

mod accounts;
mod certs;
mod detect;
mod init;
mod offsite;
mod onvif;
mod probe;
mod run;
mod scrub;
#[cfg(feature = "test-faults")]
mod test_writer;
mod token;
mod tools;
mod user;

use crate::config::{Config, find_config};
use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "sentrix",
    version,
    about = "A single-binary NVR for small boards"
)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Ingest every enabled camera until SIGINT/SIGTERM.
    Run(run::Args),
    /// Validate a config file: prints "config OK" or `file:line:col: key: message` (exit 2).
    CheckConfig(ConfigArg),
    /// Check the pipeline end to end with a synthetic source: no camera, no network.
    Selftest(tools::SelftestArgs),
    /// Decrypt a clip (or thumbnail) file to a standard MP4 (JPEG); `-o -` writes to stdout.
    Decrypt(tools::DecryptArgs),
    /// Run a YOLO ONNX model on images and print the detections (label, score, box).
    Detect(detect::Args),
    /// Ask the running instance whether it is healthy (exit 0) or not (exit 1).
    Healthcheck(ConfigArg),
    /// Print the id of the configured clip key (it is written in every clip header).
    KeyId(ConfigArg),
    /// First setup of a box: the first admin (with a generated password, printed once)
    /// and the dashboard's certificate. Refuses when a user already exists.
    Init(init::Args),
    /// Manage dashboard users.
    User(user::Args),
    /// Manage API tokens (for scripts and integrations: `Authorization: Bearer`).
    Token(token::Args),
    /// TLS certificates for the dashboard.
    Certs(certs::Args),
    /// Read the off-site bucket back: list, fetch and verify clips, restore a new box.
    Offsite(offsite::Args),
    /// Find ONVIF cameras on the LAN (WS-Discovery).
    Onvif(onvif::Args),
    /// What a camera URL sends (codec, size, frame rate, GOP, audio), or why it fails.
    Probe(probe::Args),
    /// Authenticate every sealed file of the store now (`--now`), salvage or flag what is
    /// damaged, and print what was found (exit 1 when anything was).
    Scrub(scrub::Args),
    /// Test hook: record synthetic clips into the configured store until killed. Only in
    /// builds with the `test-faults` feature (`make test`), never in a release.
    #[cfg(feature = "test-faults")]
    #[command(hide = true)]
    TestWriter(tools::TestWriterArgs),
}

/// `--config P` (default: ./surveillance.yml, else /etc/sentrix/surveillance.yml).
#[derive(clap::Args)]
pub struct ConfigArg {
    #[arg(long)]
    config: Option<PathBuf>,
}

impl Cli {
    pub fn run(self) -> ExitCode {
        match self.command {
            Command::Run(args) => run::run(args),
            Command::CheckConfig(args) => tools::check_config(args),
            Command::Selftest(args) => tools::selftest(args),
            Command::Decrypt(args) => tools::decrypt(args),
            Command::Detect(args) => detect::run(args),
            Command::Healthcheck(args) => tools::healthcheck(args),
            Command::KeyId(args) => tools::key_id(args),
            Command::Init(args) => init::run(args),
            Command::User(args) => user::run(args),
            Command::Token(args) => token::run(args),
            Command::Certs(args) => certs::run(args),
            Command::Offsite(args) => offsite::run(args),
            Command::Onvif(args) => onvif::run(args),
            Command::Probe(args) => probe::run(args),
            Command::Scrub(args) => scrub::run(args),
            #[cfg(feature = "test-faults")]
            Command::TestWriter(args) => tools::test_writer(args),
        }
    }
}

/// Loads the config `--config` names (or the default one); a problem is printed as
/// `file:line:col: key: message` and gives exit code 2.
pub fn load(config: Option<PathBuf>) -> Result<Config, ExitCode> {
    find_config(config.as_deref())
        .and_then(|p| Config::load(&p))
        .map_err(|e| {
            eprintln!("{e}");
            ExitCode::from(2)
        })
}

/// Exit code 0, or 1 with the error and its causes.
pub fn report(r: anyhow::Result<()>) -> ExitCode {
    match r {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
