//! `sentrix onvif discover`: the dashboard's ONVIF scan from the shell, for installers on
//! a headless box (and for the test that runs multicast discovery inside a network
//! namespace of its own). Prints one JSON line per camera that answered.

use std::process::ExitCode;

#[derive(clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(clap::Subcommand)]
enum Command {
    /// Find ONVIF cameras: a WS-Discovery probe to the LAN (multicast) and/or to addresses.
    Discover {
        /// Addresses to probe directly: a.b.c.d, a.b.c.d:port or a.b.c.d-e, comma-separated.
        #[arg(long, default_value = "")]
        targets: String,
        /// Do not probe the multicast group (only the targets).
        #[arg(long)]
        no_multicast: bool,
        /// How long to listen for answers, in milliseconds.
        #[arg(long, default_value_t = 2000)]
        wait_ms: u64,
    },
}

pub fn run(args: Args) -> ExitCode {
    let Command::Discover {
        targets,
        no_multicast,
        wait_ms,
    } = args.command;
    let targets = match crate::onvif::discovery::parse_targets(&targets) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("--targets: {e}");
            return ExitCode::from(2);
        }
    };
    let wait = std::time::Duration::from_millis(wait_ms.min(30_000));
    let found = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(anyhow::Error::from)
        .and_then(|rt| {
            rt.block_on(crate::onvif::discovery::discover(
                &targets,
                !no_multicast,
                wait,
            ))
            .map_err(anyhow::Error::from)
        });
    match found {
        Ok(found) => {
            for camera in found {
                println!("{}", serde_json::json!(camera));
            }
            ExitCode::SUCCESS
        }
        Err(e) => super::report(Err(e)),
    }
}
