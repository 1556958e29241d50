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
pub mod native;
pub mod pipeline;
pub mod probe;
pub mod reorder;
pub mod rtppass;
pub mod status;
pub mod supervisor;
pub mod tail;
pub mod trouble;

pub use crate::media::{AccessUnit, Codec, Frame, StreamInfo};
pub use status::{CameraState, CameraStatus, StatusHandle};
pub use supervisor::{CameraSupervisor, IngestOutputs, SupervisorConfig};

/// Initialises GStreamer once; safe to call from anywhere, any number of times. GLib's and
/// GStreamer's own warnings then go through our throttled log (logging::route_glib_log).
pub fn init_gstreamer() -> anyhow::Result<()> {
    static ROUTED: std::sync::Once = std::sync::Once::new();
    ROUTED.call_once(crate::base::logging::route_glib_log);
    gstreamer::init().map_err(|e| anyhow::anyhow!("GStreamer failed to initialise: {e}"))
}

pub use crate::config::choices::{RtspClient, Transport};
