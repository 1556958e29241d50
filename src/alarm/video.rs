//! A video a camera attached to its alarm (an MP4 or AVI of the moment) becomes a clip:
//! probed by GStreamer's parsebin, remuxed without re-encoding when it is H.264 or H.265,
//! transcoded to H.264 otherwise (an AVI of MJPEG, say). The result goes through our muxer
//! into the clip store like any recording.
//!
//! ```text
//!   remux:      appsrc ! parsebin ! h264parse|h265parse ! byte-stream,au ! appsink
//!   transcode:  appsrc ! decodebin ! videoconvert ! x264enc ! byte-stream,au ! appsink
//! ```

use crate::media::{AccessUnit, Codec, StreamInfo};
use gstreamer as gst;
use gstreamer::prelude::*;
use gstreamer_app as gst_app;
use std::sync::{Arc, Mutex};

/// The longest a video may take to remux or transcode.
const TIMEOUT: gst::ClockTime = gst::ClockTime::from_seconds(120);
/// How long a file may take to show a video stream at all.
const NO_VIDEO_WAIT: std::time::Duration = std::time::Duration::from_secs(5);
/// Access units taken from one video at most (10 minutes at 30 fps).
const MAX_UNITS: usize = 18_000;

/// Whether `bytes` look like a video container a camera sends (MP4/MOV or AVI).
pub fn looks_like_video(bytes: &[u8]) -> bool {
    let mp4 = bytes.len() >= 12 && &bytes[4..8] == b"ftyp";
    let avi = bytes.len() >= 12 && &bytes[0..4] == b"RIFF" && &bytes[8..12] == b"AVI ";
    mp4 || avi
}

/// The video's access units, remuxed when it is H.264/H.265, else transcoded; and whether
/// it was transcoded.
pub fn units_of(bytes: Vec<u8>) -> Result<(Vec<AccessUnit>, bool), String> {
    let file = memory_file(&bytes)?;
    drop(bytes);
    match remux(&file)? {
        Some(units) => Ok((units, false)),
        None => transcode(&file).map(|u| (u, true)),
    }
}

/// What parsebin found: the video's codec, when it is one we record as is.
#[derive(Default)]
struct Found {
    codec: Option<Codec>,
    other_video: bool,
    /// Every stream of the file has its pad (`no-more-pads`).
    all_pads: bool,
}

/// Remuxes an H.264/H.265 video; Ok(None) when its video is another codec.
fn remux(file: &std::fs::File) -> Result<Option<Vec<AccessUnit>>, String> {
    let pipeline = gst::Pipeline::new();
    let src = source(file)?;
    let parse = make("parsebin")?;
    let sink = byte_stream_sink(None);
    pipeline
        .add_many([&src, &parse, sink.upcast_ref()])
        .map_err(|e| e.to_string())?;
    src.link(&parse).map_err(|e| e.to_string())?;
    let found = Arc::new(Mutex::new(Found::default()));
    let (pipe, sink_el, seen) = (pipeline.clone(), sink.clone(), found.clone());
    let demuxer = parse.clone();
    parse.connect_pad_added(move |_, pad| {
        let Some(caps) = pad.current_caps() else {
            return;
        };
        let name = caps
            .structure(0)
            .map(|s| s.name().to_string())
            .unwrap_or_default();
        let mut f = seen.lock().unwrap_or_else(|p| p.into_inner());
        let chain = match name.as_str() {
            "video/x-h264" if f.codec.is_none() => Some((Codec::H264, "h264parse")),
            "video/x-h265" if f.codec.is_none() => Some((Codec::H265, "h265parse")),
            n if n.starts_with("video/") || n == "image/jpeg" => {
                f.other_video = true;
                None
            }
            _ => None,
        };
        match chain {
            Some((codec, parser))
                if link_parser(&pipe, pad, parser, sink_el.upcast_ref()).is_ok() =>
            {
                f.codec = Some(codec);
            }
            _ => {
                let _ = link_to_fakesink(&pipe, pad);
            }
        }
    });
    let seen = found.clone();
    demuxer.connect_no_more_pads(move |_| {
        seen.lock().unwrap_or_else(|p| p.into_inner()).all_pads = true;
    });
    let result = run(&pipeline, &sink, &found);
    let _ = pipeline.set_state(gst::State::Null);
    let f = found.lock().unwrap_or_else(|p| p.into_inner());
    match (f.codec, f.other_video) {
        (Some(_), _) => result.map(Some),
        (None, true) => Ok(None),
        (None, false) => Err(result
            .err()
            .unwrap_or_else(|| "the attachment holds no video".into())),
    }
}

/// Transcodes any video GStreamer can decode to H.264.
fn transcode(file: &std::fs::File) -> Result<Vec<AccessUnit>, String> {
    let pipeline = gst::Pipeline::new();
    let src = source(file)?;
    let decode = make("decodebin")?;
    let convert = make("videoconvert")?;
    let enc = make("x264enc")?;
    enc.set_property_from_str("speed-preset", "ultrafast");
    enc.set_property("bframes", 0u32);
    let sink = byte_stream_sink(Some("video/x-h264"));
    pipeline
        .add_many([&src, &decode, &convert, &enc, sink.upcast_ref()])
        .map_err(|e| e.to_string())?;
    src.link(&decode).map_err(|e| e.to_string())?;
    gst::Element::link_many([&convert, &enc, sink.upcast_ref()]).map_err(|e| e.to_string())?;
    let found = Arc::new(Mutex::new(Found::default()));
    let (pipe, convert_el, seen) = (pipeline.clone(), convert.clone(), found.clone());
    let demuxer = decode.clone();
    decode.connect_pad_added(move |_, pad| {
        let is_video = pad
            .current_caps()
            .or_else(|| Some(pad.query_caps(None)))
            .and_then(|c| c.structure(0).map(|s| s.name().starts_with("video/")))
            .unwrap_or(false);
        let mut f = seen.lock().unwrap_or_else(|p| p.into_inner());
        let sinkpad = convert_el.static_pad("sink");
        match sinkpad {
            Some(sp) if is_video && f.codec.is_none() && pad.link(&sp).is_ok() => {
                f.codec = Some(Codec::H264);
            }
            _ => {
                let _ = link_to_fakesink(&pipe, pad);
            }
        }
    });
    let seen = found.clone();
    demuxer.connect_no_more_pads(move |_| {
        seen.lock().unwrap_or_else(|p| p.into_inner()).all_pads = true;
    });
    let result = run(&pipeline, &sink, &found);
    let _ = pipeline.set_state(gst::State::Null);
    result
}

fn make(name: &str) -> Result<gst::Element, String> {
    gst::ElementFactory::make(name)
        .build()
        .map_err(|_| format!("GStreamer element {name} is missing"))
}

/// A filesrc reading `file` (a memfd: demuxers such as AVI's want random access, and
/// the video never touches a disk in clear).
fn source(file: &std::fs::File) -> Result<gst::Element, String> {
    use std::os::fd::AsRawFd;
    let location = format!("/proc/self/fd/{}", file.as_raw_fd());
    gst::ElementFactory::make("filesrc")
        .property("location", location)
        .build()
        .map_err(|e| e.to_string())
}

fn memory_file(bytes: &[u8]) -> Result<std::fs::File, String> {
    crate::base::fds::memory_file(c"sentrix-alarm-video", bytes).map_err(|e| e.to_string())
}

/// An appsink for Annex B access units (of `codec` when given).
fn byte_stream_sink(codec: Option<&str>) -> gst_app::AppSink {
    let sink = gst_app::AppSink::builder().sync(false).build();
    if let Some(name) = codec {
        let caps = gst::Caps::builder(name)
            .field("stream-format", "byte-stream")
            .field("alignment", "au")
            .build();
        sink.set_caps(Some(&caps));
    }
    sink
}

/// pad ! parser (parameter sets on every keyframe) ! byte-stream,au ! sink.
fn link_parser(
    pipeline: &gst::Pipeline,
    pad: &gst::Pad,
    parser: &str,
    sink: &gst::Element,
) -> Result<(), String> {
    let parse = make(parser)?;
    parse.set_property("config-interval", -1i32);
    let media = if parser == "h264parse" {
        "video/x-h264"
    } else {
        "video/x-h265"
    };
    let filter = gst::ElementFactory::make("capsfilter")
        .property(
            "caps",
            gst::Caps::builder(media)
                .field("stream-format", "byte-stream")
                .field("alignment", "au")
                .build(),
        )
        .build()
        .map_err(|e| e.to_string())?;
    pipeline
        .add_many([&parse, &filter])
        .map_err(|e| e.to_string())?;
    gst::Element::link_many([&parse, &filter, sink]).map_err(|e| e.to_string())?;
    for e in [&parse, &filter] {
        e.sync_state_with_parent().map_err(|e| e.to_string())?;
    }
    let sinkpad = parse
        .static_pad("sink")
        .ok_or("parser without a sink pad")?;
    pad.link(&sinkpad).map(|_| ()).map_err(|e| e.to_string())
}

fn link_to_fakesink(pipeline: &gst::Pipeline, pad: &gst::Pad) -> Result<(), String> {
    let sink = make("fakesink")?;
    sink.set_property("sync", false);
    pipeline.add(&sink).map_err(|e| e.to_string())?;
    sink.sync_state_with_parent().map_err(|e| e.to_string())?;
    let sinkpad = sink.static_pad("sink").ok_or("fakesink without a pad")?;
    pad.link(&sinkpad).map(|_| ()).map_err(|e| e.to_string())
}

/// Plays the pipeline and pulls every access unit until end of stream or an error.
fn run(
    pipeline: &gst::Pipeline,
    sink: &gst_app::AppSink,
    found: &Mutex<Found>,
) -> Result<Vec<AccessUnit>, String> {
    pipeline
        .set_state(gst::State::Playing)
        .map_err(|e| format!("the video cannot be read: {e}"))?;
    let mut units = Vec::new();
    let mut stream: Option<Arc<StreamInfo>> = None;
    let started = std::time::Instant::now();
    let deadline = started + std::time::Duration::from(TIMEOUT);
    loop {
        let Some(sample) = sink.try_pull_sample(gst::ClockTime::from_mseconds(100)) else {
            let nothing_linked = {
                let f = found.lock().unwrap_or_else(|p| p.into_inner());
                let given_up = started.elapsed() > NO_VIDEO_WAIT;
                f.codec.is_none() && (f.all_pads || f.other_video || given_up)
            };
            if nothing_linked
                || sink.is_eos()
                || failed(pipeline)
                || std::time::Instant::now() > deadline
            {
                tracing::debug!(
                    "video pipeline ended: eos {} after {} units",
                    sink.is_eos(),
                    units.len()
                );
                break;
            }
            continue;
        };
        let (Some(buffer), Some(caps)) = (sample.buffer_owned(), sample.caps_owned()) else {
            continue;
        };
        let codec = found.lock().unwrap_or_else(|p| p.into_inner()).codec;
        let info = stream.get_or_insert_with(|| Arc::new(stream_info(&caps, codec)));
        units.push(super::clip::unit_of(buffer, info));
        if units.len() >= MAX_UNITS {
            break;
        }
    }
    if let Some(bus) = pipeline.bus()
        && let Some(msg) = bus.pop_filtered(&[gst::MessageType::Error])
        && let gst::MessageView::Error(e) = msg.view()
        && units.is_empty()
    {
        return Err(format!("the video cannot be read: {}", e.error()));
    }
    // A clip starts on a keyframe.
    let first_key = units
        .iter()
        .position(|u| u.keyframe)
        .ok_or("the video has no keyframe")?;
    units.drain(..first_key);
    Ok(units)
}

/// Whether the pipeline has ended: an error on its bus (left there for `run` to report),
/// or end of stream everywhere.
fn failed(pipeline: &gst::Pipeline) -> bool {
    let Some(bus) = pipeline.bus() else {
        return true;
    };
    while let Some(m) = bus.peek() {
        match m.view() {
            gst::MessageView::Error(_) | gst::MessageView::Eos(_) => return true,
            _ => {
                let _ = bus.pop();
            }
        }
    }
    false
}

fn stream_info(caps: &gst::Caps, codec: Option<Codec>) -> StreamInfo {
    let s = caps.structure(0);
    let dim = |k: &str| s.and_then(|s| s.get::<i32>(k).ok()).unwrap_or(0).max(0) as u32;
    StreamInfo {
        codec: codec.unwrap_or(Codec::H264),
        width: dim("width"),
        height: dim("height"),
        caps: caps.clone(),
        session: 1,
    }
}

#[cfg(test)]
mod tests {
    use super::looks_like_video;

    #[test]
    fn mp4_and_avi_are_told_by_their_first_bytes() {
        assert!(looks_like_video(b"\0\0\0\x20ftypisom\0\0\0\0"));
        assert!(looks_like_video(b"RIFF\0\0\0\0AVI LIST"));
        assert!(!looks_like_video(b"RIFF\0\0\0\0WAVEfmt "));
        assert!(!looks_like_video(&[0xFF, 0xD8, 0xFF, 0xE0]));
    }
}
