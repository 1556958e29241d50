//! Builds one camera's GStreamer pipeline. Two sources share one tail:
//!
//! ```text
//!  rtspsrc (tcp: RTP pass for a jitterbuffer; udp: rtpjitterbuffer) ─pad-added─> rtph26Xdepay ! alignment=nal
//!      (probe: NAL units joined into access units by timestamp, `assemble`) ─┐
//!  videotestsrc ! x264enc|x265enc (selftest, no network) ─────┤
//!                                                             v
//!   h26Xparse config-interval=-1 ! video/x-h26X,stream-format=byte-stream,alignment=au ! tee
//!     tee. ! queue ! appsink "units"     (access units → live feed, and a bounded channel
//!                                         to the recorder; never blocks)
//!     tee. ! queue leaky=downstream ! decoder ! videorate drop-only=true
//!          ! videoconvertscale ! video/x-raw,format=RGB,width=W,par=1/1,fps   (height keeps the aspect)
//!          ! appsink "frames" max-buffers=1 drop=true   (newest frame → watch)
//! ```
//!
//! The decode branch is optional (remux-only ingest) and leaky, so a slow decoder drops
//! frames for detection instead of stalling recording. Callbacks never unwrap camera data:
//! anything unexpected is counted or posted to the bus as an error for the supervisor.

use super::Codec;
pub use super::tail::{DecodeSpec, Outputs, PipelineError};
use super::tail::{add_after, build_err, build_tail, caps_aligned, make};
use crate::base::redact::CameraUrl;
use gstreamer as gst;
use gstreamer::prelude::*;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};

/// Where the encoded stream comes from.
#[derive(Debug, Clone)]
pub enum Source {
    Rtsp(CameraUrl),
    /// An encoder in the pipeline itself: no network, used by `sentrix selftest`.
    Synthetic(SyntheticSpec),
}

/// What the synthetic source encodes: the same settings a `demo://` URL gives.
pub type SyntheticSpec = crate::config::demo::DemoSpec;

/// Builds (but does not start) a pipeline for `source`.
pub fn build(
    source: &Source,
    decode: Option<DecodeSpec>,
    out: Outputs,
) -> Result<gst::Pipeline, PipelineError> {
    let pipeline = gst::Pipeline::new();
    match source {
        Source::Rtsp(url) => match out.rtsp_client.for_scheme(url.scheme()) {
            super::RtspClient::Native => super::native::build(&pipeline, url, decode, out)?,
            _ => build_rtsp(&pipeline, url, decode, out)?,
        },
        Source::Synthetic(spec) => build_synthetic(&pipeline, spec, decode, out)?,
    }
    Ok(pipeline)
}

fn build_rtsp(
    pipeline: &gst::Pipeline,
    url: &CameraUrl,
    decode: Option<DecodeSpec>,
    out: Outputs,
) -> Result<(), PipelineError> {
    let src = make("rtspsrc")?;
    src.set_property("location", url.expose_secret());
    // Timing from the camera's RTP clock, as the jitterbuffer's buffer-mode=none does.
    src.set_property_from_str("buffer-mode", "none");
    match out.transport {
        super::Transport::Udp => {
            // Over UDP packets can come late, twice or not at all: rtpbin's jitterbuffer
            // puts them back in order within 200 ms. Nothing for 5 s is an error (the
            // supervisor then tries TCP again under `transport: auto`).
            src.set_property_from_str("protocols", "udp");
            src.set_property("latency", 200u32);
            src.set_property("timeout", 5_000_000u64);
        }
        super::Transport::Tcp | super::Transport::Auto => {
            // Over TCP nothing is worth a jitterbuffer: an in-thread pass stamps packets
            // from their RTP clock without its queue.
            src.set_property_from_str("protocols", "tcp");
            super::rtppass::install(&src);
        }
    }
    // Fail a dead TCP connect in 5 s instead of rtspsrc's default 20 s.
    src.set_property("tcp-timeout", 5_000_000u64);
    pipeline.add(&src).map_err(build_err)?;

    // Set up only the video stream: many cameras also offer audio or ONVIF metadata, which
    // would cost bandwidth and leave unlinked pads.
    // Every offered stream passes here, so this is also where audio is noticed.
    let status = out.status.clone();
    src.connect("select-stream", false, move |args| {
        let media = args
            .get(2)
            .and_then(|v| v.get::<gst::Caps>().ok())
            .and_then(|caps| {
                caps.structure(0)
                    .and_then(|s| s.get::<&str>("media").ok().map(str::to_string))
            })
            .unwrap_or_default();
        status.note_offered_stream(&media);
        Some((media == "video").to_value())
    });

    let linked = AtomicBool::new(false);
    let pipeline_weak = pipeline.downgrade();
    src.connect_pad_added(move |src, pad| {
        let Some(pipeline) = pipeline_weak.upgrade() else {
            return;
        };
        let caps = pad.current_caps().or_else(|| Some(pad.query_caps(None)));
        let encoding = caps.as_ref().and_then(|c| c.structure(0)).and_then(|s| {
            s.get::<&str>("encoding-name")
                .ok()
                .map(str::to_ascii_uppercase)
        });
        let codec = match encoding.as_deref() {
            Some("H264") => Codec::H264,
            Some("H265") => Codec::H265,
            other => {
                gst::element_error!(
                    src,
                    gst::StreamError::CodecNotFound,
                    [
                        "camera sends {}, only H.264 and H.265 are supported",
                        other.unwrap_or("an unknown encoding")
                    ]
                );
                return;
            }
        };
        if linked.swap(true, Relaxed) {
            return; // a second video stream: the first one is recorded
        }
        let depay_name = match codec {
            Codec::H264 => "rtph264depay",
            Codec::H265 => "rtph265depay",
        };
        let result = make(depay_name).and_then(|depay| {
            let src_pad = add_after(&pipeline, pad, &depay)?;
            repair_access_units(&pipeline, &src_pad, codec, decode, out.clone())
        });
        if let Err(e) = result {
            gst::element_error!(src, gst::CoreError::Negotiation, ["{}", e]);
        }
    });
    Ok(())
}

fn build_synthetic(
    pipeline: &gst::Pipeline,
    spec: &SyntheticSpec,
    decode: Option<DecodeSpec>,
    out: Outputs,
) -> Result<(), PipelineError> {
    let src = make("videotestsrc")?;
    src.set_property("is-live", true);
    src.set_property_from_str("pattern", spec.pattern);
    let raw_caps = gst::Caps::builder("video/x-raw")
        .field("format", "I420")
        .field("width", spec.width as i32)
        .field("height", spec.height as i32)
        .field("framerate", gst::Fraction::new(spec.fps as i32, 1))
        .build();
    let filter = make("capsfilter")?;
    filter.set_property("caps", &raw_caps);
    let enc = crate::ingest::demo::make_encoder(spec.codec, spec.fps, spec.bitrate_kbps)?;
    pipeline
        .add_many([&src, &filter, &enc])
        .map_err(build_err)?;
    gst::Element::link_many([&src, &filter, &enc]).map_err(build_err)?;
    let enc_src = enc
        .static_pad("src")
        .ok_or_else(|| build_err("encoder has no src pad"))?;
    build_tail(pipeline, &enc_src, spec.codec, decode, out, false)
}

/// Holds the depayloader to single NAL units and joins them into access units itself
/// (`assemble`), so a camera that repeats parameter sets between the slices of a picture
/// still gives one access unit per picture; then builds the tail.
fn repair_access_units(
    pipeline: &gst::Pipeline,
    depay_src: &gst::Pad,
    codec: Codec,
    decode: Option<DecodeSpec>,
    out: Outputs,
) -> Result<(), PipelineError> {
    let single_nals = make("capsfilter")?;
    single_nals.set_property("caps", caps_aligned(codec, "nal"));
    let src = add_after(pipeline, depay_src, &single_nals)?;
    super::assemble::install(&src, codec, out.status.clone());
    build_tail(pipeline, &src, codec, decode, out, true)
}
