//! The closed choices of the config, as types the rest of the program matches on: a
//! model's output layout and inference precision (detect), the RTSP client and the video
//! decoder (ingest). They live here, below the parts that act on them, so reading a config
//! needs nothing of those parts; serde and clap parse each into the same type.

use serde::{Deserialize, Deserializer};
use std::fmt;

/// A model's output layout: `detect.format` in the config and `--format` of `sentrix
/// detect` parse into this one type (serde and clap), so each gives the same message.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize, serde::Serialize, clap::ValueEnum,
)]
#[serde(rename_all = "lowercase")]
pub enum Layout {
    Yolox,
    Yolov5,
    /// Also YOLO11, which shares its output layout.
    #[serde(alias = "yolo11")]
    #[value(alias = "yolo11")]
    Yolov8,
}

impl Layout {
    pub fn name(self) -> &'static str {
        match self {
            Self::Yolox => "yolox",
            Self::Yolov5 => "yolov5",
            Self::Yolov8 => "yolov8",
        }
    }
}

impl fmt::Display for Layout {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The arithmetic inference runs in. `f16` halves the model's memory traffic and runs
/// natively on CPUs with ARMv8.2 half-precision arithmetic (Raspberry Pi 5's A76, Jetson
/// Orin's A78AE); elsewhere (x86, a Pi 4's A72) it is emulated and slower than `f32`.
#[derive(
    Debug,
    Clone,
    Copy,
    Default,
    PartialEq,
    Eq,
    serde::Deserialize,
    serde::Serialize,
    clap::ValueEnum,
)]
#[serde(rename_all = "lowercase")]
pub enum Precision {
    #[default]
    F32,
    F16,
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
    /// `native` for rtsp://, `gstreamer` for rtsps://; `gstreamer` from then on for a
    /// camera whose stream the native client could not set up.
    #[default]
    Auto,
    /// GStreamer's rtspsrc: rtsp:// and rtsps://.
    Gstreamer,
    /// retina in a thread of its own (`native`): rtsp:// only, less CPU.
    Native,
}

impl RtspClient {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Auto => "auto",
            Self::Gstreamer => "gstreamer",
            Self::Native => "native",
        }
    }

    /// The client that reads a camera whose URL has `scheme`, before any fallback:
    /// `auto` is `native` except for rtsps://, which only rtspsrc speaks.
    pub fn for_scheme(self, scheme: &str) -> Self {
        match self {
            Self::Auto if scheme == "rtsps" => Self::Gstreamer,
            Self::Auto => Self::Native,
            chosen => chosen,
        }
    }
}

/// How RTP travels from a camera (`cameras[].transport`).
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
pub enum Transport {
    /// TCP first; UDP when the camera refuses TCP (461) or offers no TCP transport.
    #[default]
    Auto,
    /// Interleaved in the RTSP connection: one socket, no loss, through NAT and firewalls.
    Tcp,
    /// RTP and RTCP on UDP ports of their own: for cameras that offer nothing else.
    Udp,
}

impl Transport {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Auto => "auto",
            Self::Tcp => "tcp",
            Self::Udp => "udp",
        }
    }

    /// The transport of a first attempt: TCP unless UDP was asked for.
    pub fn first(self) -> Self {
        match self {
            Self::Udp => Self::Udp,
            Self::Auto | Self::Tcp => Self::Tcp,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum DecoderChoice {
    #[default]
    Auto,
    Software,
    V4l2,
    Nvv4l2,
    /// A GStreamer element name.
    Element(String),
}

impl DecoderChoice {
    pub fn parse(s: &str) -> Result<Self, String> {
        Ok(match s {
            "auto" => Self::Auto,
            "software" => Self::Software,
            "v4l2" => Self::V4l2,
            "nvv4l2" => Self::Nvv4l2,
            e if !e.is_empty()
                && e.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-') =>
            {
                Self::Element(e.to_string())
            }
            e => {
                return Err(format!(
                    "{e:?} is not auto, software, v4l2, nvv4l2 or a GStreamer element name"
                ));
            }
        })
    }
}

impl serde::Serialize for DecoderChoice {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(match self {
            Self::Auto => "auto",
            Self::Software => "software",
            Self::V4l2 => "v4l2",
            Self::Nvv4l2 => "nvv4l2",
            Self::Element(e) => e,
        })
    }
}

impl<'de> Deserialize<'de> for DecoderChoice {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Self::parse(&String::deserialize(d)?).map_err(serde::de::Error::custom)
    }
}
