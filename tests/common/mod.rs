//! Shared test fixtures: an in-process RTSP camera (gstreamer-rtsp-server, through
//! `sentrix::ingest::demo::RtspServer`) that a test can stop and restart on the same port,
//! temp dirs, process resource counters, and the path of the shared test data.
#![allow(dead_code)]

use sentrix::ingest::Codec;
use sentrix::ingest::demo::{DemoSpec, Mount, RtspServer};
use std::path::PathBuf;
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

/// `../shared/testdata` from the crate root, or `$SENTRIX_TESTDATA`.
pub fn testdata_dir() -> PathBuf {
    std::env::var_os("SENTRIX_TESTDATA")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/testdata"))
}

pub fn temp_dir() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("sentrix-test-")
        .tempdir()
        .expect("temp dir")
}

/// A camera on 127.0.0.1 serving a synthetic stream at `/cam`.
pub struct RtspFixture {
    pub port: u16,
    pub mount: Mount,
    server: Option<RtspServer>,
}

impl RtspFixture {
    /// 640x360 at 25 fps, one keyframe a second.
    pub fn start(codec: Codec) -> Self {
        Self::with_spec(
            DemoSpec {
                codec,
                width: 640,
                height: 360,
                fps: 25,
                bitrate_kbps: 1000,
                ..Default::default()
            },
            None,
        )
    }

    pub fn with_spec(spec: DemoSpec, credentials: Option<(&str, &str)>) -> Self {
        let mut mount = Mount::new("/cam", spec.launch_line());
        mount.credentials = credentials.map(|(u, p)| (u.to_string(), p.to_string()));
        let server =
            RtspServer::start(0, std::slice::from_ref(&mount)).expect("RTSP fixture starts");
        Self {
            port: server.port(),
            mount,
            server: Some(server),
        }
    }

    pub fn url(&self) -> String {
        format!("rtsp://127.0.0.1:{}/cam", self.port)
    }

    pub fn url_with(&self, user: &str, password: &str) -> String {
        format!("rtsp://{user}:{password}@127.0.0.1:{}/cam", self.port)
    }

    /// Access units the server has handed to its payloader so far.
    pub fn sent_frames(&self) -> u64 {
        self.mount.sent_frames.load(Relaxed)
    }

    /// Camera loss: closes every connection and the listening socket.
    pub fn stop(&mut self) {
        if let Some(s) = self.server.take() {
            s.stop();
        }
    }

    /// The camera comes back on the same port.
    pub fn restart(&mut self) {
        assert!(self.server.is_none(), "fixture is running");
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            match RtspServer::start(self.port, std::slice::from_ref(&self.mount)) {
                Ok(s) => {
                    self.server = Some(s);
                    return;
                }
                Err(e) if Instant::now() > deadline => {
                    panic!("fixture cannot restart on {}: {e}", self.port)
                }
                Err(_) => std::thread::sleep(Duration::from_millis(100)),
            }
        }
    }
}

/// Polls `cond` every 20 ms until it holds or `timeout` passes; returns the time it took.
pub fn wait_until(timeout: Duration, mut cond: impl FnMut() -> bool) -> Option<Duration> {
    let start = Instant::now();
    while start.elapsed() < timeout {
        if cond() {
            return Some(start.elapsed());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    None
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
