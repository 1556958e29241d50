//! `sentrix scrub --now`: one full integrity pass over the store in the foreground, every
//! clip whatever its last scrub, then a report: what was read, how fast, and each damaged
//! file with what was done about it. Exit 0 when all is sound, 1 when damage was found
//! (or on an error). It takes the store's lock, so it runs while `sentrix run` is stopped
//! (the running instance scrubs in the background on its own).

use super::{ConfigArg, load, report};
use crate::app::scrub::{PassReport, Scrubber};
use crate::app::store_setup::load_key;
use crate::base::clock::{ClockRef, SystemClock};
use crate::store::{DataLock, Store, StoreConfig};
use anyhow::Context;
use std::process::ExitCode;
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    config: ConfigArg,
    /// Run a full pass now, to the end (the only mode: the background scrub needs no
    /// command).
    #[arg(long, required = true)]
    now: bool,
    /// Read rate in MB/s (default: as fast as the disk and the CPU go).
    #[arg(long)]
    rate_mb_s: Option<f64>,
}

pub fn run(args: Args) -> ExitCode {
    let config = match load(args.config.config) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let rate_bytes_per_s = args.rate_mb_s.map_or(u64::MAX / 2, |r| (r * 1e6) as u64);
    let outcome = (|| -> anyhow::Result<PassReport> {
        let _lock = DataLock::acquire(&config.paths.data_lock)
            .context("sentrix scrub --now needs the store to itself")?;
        let key = load_key(&config).context("while loading the clip key")?;
        let (store, _) = Store::open(StoreConfig::from_config(&config), key)
            .context("while opening the clip store")?;
        let clock: ClockRef = Arc::new(SystemClock);
        let scrub = Scrubber::new(&store, 0, rate_bytes_per_s, clock);
        Ok(scrub.pass(true, &CancellationToken::new())?)
    })();
    match outcome {
        Ok(pass) => {
            print_pass(&pass);
            report(match pass.damaged.is_empty() {
                true => Ok(()),
                false => Err(anyhow::anyhow!("{} damaged files", pass.damaged.len())),
            })
        }
        Err(e) => report(Err(e)),
    }
}

fn print_pass(pass: &PassReport) {
    println!(
        "scrub: authenticated {} files of {} clips, {:.1} MB in {:.1} s ({:.1} MB/s)",
        pass.files,
        pass.clips,
        pass.bytes as f64 / 1e6,
        pass.took.as_secs_f64(),
        pass.mb_per_s()
    );
    for d in &pass.damaged {
        println!(
            "damaged {} {}: {}; {}",
            d.kind, d.path, d.problem, d.outcome
        );
    }
    if pass.damaged.is_empty() {
        println!("no damaged file");
    }
}
