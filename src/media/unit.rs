//! What flows between the stages: encoded access units with the stream they belong to
//! (ingest → record, live view, muxers) and small decoded frames (ingest → detect).

use std::sync::Arc;

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
