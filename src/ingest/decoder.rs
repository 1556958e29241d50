//! Which element decodes a camera's stream for detection and live view
//! (`cameras[].decoder`): `auto` prefers the board's hardware decoder (Raspberry Pi 4's
//! V4L2 stateful `v4l2h264dec`, the stateless `v4l2slh264dec`, Jetson's `nvv4l2decoder`)
//! and falls back to libav's software decoder; `software`, `v4l2`, `nvv4l2` or any element
//! name force a choice. A choice that is missing from the GStreamer registry or cannot
//! take the stream's caps falls back to software with a note, and the supervisor switches
//! to software for good when a hardware decoder fails at run time.

use super::Codec;
use gstreamer as gst;

pub use crate::config::choices::DecoderChoice;

pub fn software(codec: Codec) -> &'static str {
    match codec {
        Codec::H264 => "avdec_h264",
        Codec::H265 => "avdec_h265",
    }
}

fn candidates(codec: Codec, choice: &DecoderChoice) -> Vec<String> {
    let v4l2: &[&str] = match codec {
        Codec::H264 => &["v4l2h264dec", "v4l2slh264dec"],
        Codec::H265 => &["v4l2h265dec", "v4l2slh265dec"],
    };
    let list: Vec<&str> = match choice {
        DecoderChoice::Auto => v4l2.iter().copied().chain(["nvv4l2decoder"]).collect(),
        DecoderChoice::Software => vec![],
        DecoderChoice::V4l2 => v4l2.to_vec(),
        DecoderChoice::Nvv4l2 => vec!["nvv4l2decoder"],
        DecoderChoice::Element(e) => vec![e.as_str()],
    };
    list.into_iter().map(String::from).collect()
}

/// The element to use and, when it is not what was asked for, why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolved {
    pub element: String,
    pub hardware: bool,
    pub note: Option<String>,
}

/// Picks the decoder for `codec` (stream caps `caps`) by `choice`.
pub fn resolve(codec: Codec, choice: &DecoderChoice, caps: &gst::Caps) -> Resolved {
    let sw = software(codec);
    for name in candidates(codec, choice) {
        if name == sw {
            break;
        }
        match gst::ElementFactory::find(&name) {
            Some(f) if f.can_sink_any_caps(caps) => {
                return Resolved {
                    element: name,
                    hardware: true,
                    note: None,
                };
            }
            Some(_) if *choice != DecoderChoice::Auto => {
                return Resolved {
                    element: sw.into(),
                    hardware: false,
                    note: Some(format!(
                        "decoder {name} cannot decode {}; using {sw}",
                        codec.name()
                    )),
                };
            }
            None if *choice != DecoderChoice::Auto => {
                return Resolved {
                    element: sw.into(),
                    hardware: false,
                    note: Some(format!("decoder {name} is not installed; using {sw}")),
                };
            }
            _ => {}
        }
    }
    Resolved {
        element: sw.into(),
        hardware: false,
        note: None,
    }
}
