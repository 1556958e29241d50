//! `sentrix probe URL`: what a camera sends, or why it cannot be read, as the dashboard's
//! "Test a camera" answers it (the recorder's own clients, transports and words), for
//! installers at a shell. Prints one JSON line; `--picture FILE` keeps the decoded frame
//! as a JPEG. Exit 0 when the camera streams, 1 when it does not, 2 for a bad URL.

use crate::base::redact::CameraUrl;
use crate::ingest::{RtspClient, Transport};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

/// As long as the dashboard's probe may take.
const PROBE_LIMIT: Duration = Duration::from_millis(9500);

#[derive(clap::Args)]
pub struct Args {
    /// The camera's rtsp:// or rtsps:// URL (with its login).
    url: String,
    #[arg(long, value_enum, default_value_t = Transport::Auto)]
    transport: Transport,
    #[arg(long, value_enum, default_value_t = RtspClient::Auto)]
    rtsp_client: RtspClient,
    /// Write the decoded picture here as a JPEG.
    #[arg(long)]
    picture: Option<PathBuf>,
}

pub fn run(args: Args) -> ExitCode {
    let url = match CameraUrl::parse(&args.url) {
        Ok(u) if matches!(u.scheme(), "rtsp" | "rtsps") => u,
        Ok(_) => return bad("the URL must start with rtsp:// or rtsps://"),
        Err(e) => return bad(&e),
    };
    if let Err(e) = crate::ingest::init_gstreamer() {
        return super::report(Err(e));
    }
    let probed = crate::ingest::probe::probe(&url, args.transport, args.rtsp_client, PROBE_LIMIT);
    match probed {
        Ok(report) => {
            if let (Some(path), Some(frame)) = (&args.picture, report.picture.as_deref()) {
                let written = crate::record::snapshot::encode_jpeg(frame)
                    .map_err(anyhow::Error::msg)
                    .and_then(|jpeg| Ok(std::fs::write(path, jpeg)?));
                if let Err(e) = written {
                    return super::report(Err(e.context(format!("writing {}", path.display()))));
                }
            }
            let mut v = serde_json::json!(report);
            v["ok"] = serde_json::json!(true);
            println!("{v}");
            ExitCode::SUCCESS
        }
        Err(trouble) => {
            println!("{}", serde_json::json!({"ok": false, "trouble": trouble}));
            ExitCode::FAILURE
        }
    }
}

fn bad(why: &str) -> ExitCode {
    eprintln!("url: {why}");
    ExitCode::from(2)
}
