//! The small commands: `check-config`, `selftest`, `decrypt`, `healthcheck`, `key-id`, and
//! the hidden `test-writer` test hook (test-faults builds only).

use super::{ConfigArg, load, report};
use crate::ingest::Codec;
use clap::ValueEnum;
use std::path::PathBuf;
use std::process::ExitCode;

pub fn check_config(args: ConfigArg) -> ExitCode {
    match load(args.config) {
        Ok(c) => {
            println!(
                "config OK ({} camera(s), {} enabled)",
                c.cameras.len(),
                c.enabled_cameras().count()
            );
            ExitCode::SUCCESS
        }
        Err(code) => code,
    }
}

#[derive(Clone, Copy, ValueEnum)]
enum SelftestCodec {
    H264,
    H265,
    All,
}

#[derive(clap::Args)]
pub struct SelftestArgs {
    #[arg(long, value_enum, default_value_t = SelftestCodec::H264)]
    codec: SelftestCodec,
}

pub fn selftest(args: SelftestArgs) -> ExitCode {
    let codecs: &[Codec] = match args.codec {
        SelftestCodec::H264 => &[Codec::H264],
        SelftestCodec::H265 => &[Codec::H265],
        SelftestCodec::All => &[Codec::H264, Codec::H265],
    };
    for &c in codecs {
        match crate::selftest::run(c) {
            Ok(r) => println!("selftest OK: {}", r.summary),
            Err(e) => {
                println!("selftest FAILED: {e}");
                return ExitCode::FAILURE;
            }
        }
    }
    ExitCode::SUCCESS
}

#[derive(clap::Args)]
pub struct DecryptArgs {
    /// A sealed file from the recordings directory.
    input: PathBuf,
    #[arg(short = 'o', long = "output")]
    output: PathBuf,
    #[arg(long)]
    config: Option<PathBuf>,
}

pub fn decrypt(args: DecryptArgs) -> ExitCode {
    match load(args.config) {
        Ok(c) => report(crate::tools::decrypt(&c, &args.input, &args.output)),
        Err(code) => code,
    }
}

pub fn healthcheck(args: ConfigArg) -> ExitCode {
    let c = match load(args.config) {
        Ok(c) => c,
        Err(code) => return code,
    };
    match crate::health::query(&c.paths) {
        Ok(report) => {
            println!("{report}");
            ExitCode::SUCCESS
        }
        Err(report) => {
            println!("{report}");
            ExitCode::FAILURE
        }
    }
}

pub fn key_id(args: ConfigArg) -> ExitCode {
    let c = match load(args.config) {
        Ok(c) => c,
        Err(code) => return code,
    };
    match crate::app::store_setup::load_key(&c) {
        Ok(key) => {
            println!("{}", key.id());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(feature = "test-faults")]
#[derive(clap::Args)]
pub struct TestWriterArgs {
    #[arg(long)]
    config: Option<PathBuf>,
    #[arg(long, default_value_t = 2)]
    clip_seconds: u64,
    #[arg(long, default_value_t = 800)]
    bitrate_kbps: u32,
}

#[cfg(feature = "test-faults")]
pub fn test_writer(args: TestWriterArgs) -> ExitCode {
    match load(args.config) {
        Ok(c) => report(super::test_writer::test_writer(
            &c,
            args.clip_seconds,
            args.bitrate_kbps,
        )),
        Err(code) => code,
    }
}
