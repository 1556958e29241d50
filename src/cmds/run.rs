//! `sentrix run`: loads the config, starts the async runtime and runs `app::run`, again
//! with the new config after a reload that must restart everything.

use crate::app::{RunEnd, RunOptions};
use crate::config::find_config;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

#[derive(clap::Args)]
pub struct Args {
    /// Config file (default: ./surveillance.yml, else /etc/sentrix/surveillance.yml).
    #[arg(long)]
    config: Option<PathBuf>,
    /// Seconds between per-camera status lines.
    #[arg(long, default_value_t = 10, hide = true)]
    status_interval: u64,
}

pub fn run(args: Args) -> ExitCode {
    crate::app::signals::hold();
    crate::base::memory::bound_arenas();
    let file = match find_config(args.config.as_deref()) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    let mut config = match super::load(Some(file.clone())) {
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
    let code = loop {
        let opts = RunOptions {
            status_interval: Duration::from_secs(args.status_interval.max(1)),
            config_file: file.clone(),
        };
        match runtime.block_on(crate::app::run(config, opts)) {
            Ok(RunEnd::Stopped) => break ExitCode::SUCCESS,
            Ok(RunEnd::Reload(new)) => config = *new,
            Err(e) => {
                tracing::error!("{e:#}");
                break ExitCode::FAILURE;
            }
        }
    };
    // A thread left behind by the stop deadline must not hold the exit.
    runtime.shutdown_timeout(Duration::from_secs(1));
    code
}
