//! An RTSP camera on 127.0.0.1 (gstreamer-rtsp-server, through sentrix's own demo server)
//! serving a synthetic stream or any launch line, which a test can stop (camera loss) and
//! restart on the same port.

use sentrix::ingest::Codec;
use sentrix::ingest::demo::{DemoSpec, Mount, RtspServer};
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

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
        Self::with_mount(mount)
    }

    /// A camera that offers RTP over UDP only and refuses TCP with 461, as some cameras,
    /// encoders and a popular media player's RTSP server do.
    /// `launch` as for `with_launch`.
    pub fn udp_only(launch: &str) -> Self {
        let mut mount = Mount::new("/cam", launch.to_string());
        mount.udp_only = true;
        Self::with_mount(mount)
    }

    /// A camera serving any gst-rtsp-server launch line (with a `pay0` payloader).
    pub fn with_launch(launch: &str) -> Self {
        Self::with_mount(Mount::new("/cam", launch.to_string()))
    }

    fn with_mount(mount: Mount) -> Self {
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
