//! Ingest: pulls each camera's RTSP stream through GStreamer without re-encoding and hands
//! the rest of the program two things: encoded access units (for recording) through a
//! bounded channel, and the newest small decoded RGB frame (for detection and live view)
//! through a watch. One supervisor per camera owns its pipeline and reconnects with backoff.
//!
//! Submodules: `pipeline` builds the GStreamer graph, `supervisor` runs and restarts it,
//! `status` keeps per-camera counters, `demo` serves the built-in synthetic camera.

pub mod assemble;
pub mod decoder;
pub mod demo;
pub mod fmp4;
pub mod nal;
pub mod native;
pub mod pipeline;
pub mod reorder;
pub mod rtppass;
pub mod status;
pub mod supervisor;

use std::sync::Arc;

pub use status::{CameraState, CameraStatus, StatusHandle};
pub use supervisor::{CameraSupervisor, IngestOutputs, SupervisorConfig};

/// Initialises GStreamer once; safe to call from anywhere, any number of times. GLib's and
/// GStreamer's own warnings then go through our throttled log (logging::route_glib_log).
pub fn init_gstreamer() -> anyhow::Result<()> {
    static ROUTED: std::sync::Once = std::sync::Once::new();
    ROUTED.call_once(crate::logging::route_glib_log);
    gstreamer::init().map_err(|e| anyhow::anyhow!("GStreamer failed to initialise: {e}"))
}

/// Which RTSP client reads a camera (`cameras[].rtsp_client`).
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Default,
    serde::Deserialize,
    serde::Serialize,
    clap::ValueEnum,
)]
#[serde(rename_all = "lowercase")]
pub enum RtspClient {
    /// GStreamer's rtspsrc: rtsp:// and rtsps://, the most tested path.
    #[default]
    Gstreamer,
    /// retina in a thread of its own (`native`): rtsp:// over TCP only, less CPU.
    Native,
}

impl RtspClient {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Gstreamer => "gstreamer",
            Self::Native => "native",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Codec {
    H264,
    H265,
}

impl Codec {
    pub fn name(self) -> &'static str {
        match self {
            Codec::H264 => "h264",
            Codec::H265 => "h265",
        }
    }
}

/// What an access unit belongs to: the codec caps of one connection. A new `StreamInfo`
/// (new `session`) starts after every reconnect or caps change, and its timestamps restart.
#[derive(Debug)]
pub struct StreamInfo {
    pub codec: Codec,
    pub width: u32,
    pub height: u32,
    /// Caps of the access units (byte-stream, alignment=au, with codec_data when present);
    /// the recorder hands them to its muxer.
    pub caps: gstreamer::Caps,
    /// Counts connections of this camera, starting at 1.
    pub session: u64,
}

/// One encoded picture (H.264/H.265 access unit, Annex B byte-stream).
#[derive(Debug, Clone)]
pub struct AccessUnit {
    /// Presentation time in nanoseconds of pipeline running time (0 at the stream's start).
    pub pts_ns: u64,
    /// Decode time in nanoseconds, when the stream carries one.
    pub dts_ns: Option<u64>,
    pub duration_ns: Option<u64>,
    /// An IDR/IRAP picture: a clip may start here.
    pub keyframe: bool,
    pub data: gstreamer::Buffer,
    pub stream: Arc<StreamInfo>,
}

impl AccessUnit {
    /// The decode time in ns: the DTS, or the PTS when there is none, never after the PTS.
    pub fn decode_ns(&self) -> u64 {
        self.dts_ns.unwrap_or(self.pts_ns).min(self.pts_ns)
    }
}

/// A decoded, scaled (letterboxed), packed RGB frame.
#[derive(Debug)]
pub struct Frame {
    pub pts_ns: u64,
    pub width: u32,
    pub height: u32,
    /// width * height * 3 bytes, row-major RGB.
    pub rgb: gstreamer::Buffer,
}
