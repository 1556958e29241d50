//! The tail every source of a camera's pipeline ends in (pipeline.rs builds rtspsrc's
//! and the synthetic source, native.rs the native client's appsrc): parse ! tee, then the
//! units appsink (access units → live feed and a bounded channel to the recorder; never
//! blocks) and the optional leaky decode branch (newest small RGB frame → watch). Also
//! the types the sources share: what the sinks deliver into and the build errors.

use super::{AccessUnit, Codec, Frame, StreamInfo, status::StatusHandle};
use gstreamer as gst;
use gstreamer::prelude::*;
use gstreamer_app as gst_app;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use tokio::sync::{mpsc, watch};

/// The decode branch's output: RGB frames `width` wide at `fps`; `height` 0 keeps the
/// camera's aspect ratio, otherwise the picture is letterboxed into width x height.
#[derive(Debug, Clone, Copy)]
pub struct DecodeSpec {
    pub width: u32,
    pub height: u32,
    pub fps: u32,
}

/// What the pipeline's sinks deliver into.
#[derive(Clone)]
pub struct Outputs {
    pub units: mpsc::Sender<AccessUnit>,
    pub frames: Option<watch::Sender<Option<Arc<Frame>>>>,
    pub status: StatusHandle,
    /// Connection number, stamped on every StreamInfo of this pipeline.
    pub session: u64,
    /// Milliseconds (of `crate::base::clock`) when the last access unit arrived.
    pub last_unit_ms: Arc<AtomicU64>,
    /// Which decoder the decode branch uses (`cameras[].decoder`).
    pub decoder: super::decoder::DecoderChoice,
    /// The live view's feed of this stream, given every access unit.
    pub live: Option<Arc<crate::media::feed::LiveFeed>>,
    /// Which client reads an RTSP source: `native` or `gstreamer`, resolved from
    /// `cameras[].rtsp_client` by the supervisor.
    pub rtsp_client: super::RtspClient,
    /// How RTP travels in this attempt: `tcp` or `udp`, resolved from
    /// `cameras[].transport` by the supervisor.
    pub transport: super::Transport,
}

#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    #[error("GStreamer element '{0}' is missing: install the plugin package that provides it")]
    MissingElement(&'static str),
    #[error("could not build the pipeline: {0}")]
    Build(String),
}

pub(super) fn make(factory: &'static str) -> Result<gst::Element, PipelineError> {
    gst::ElementFactory::make(factory)
        .build()
        .map_err(|_| PipelineError::MissingElement(factory))
}

pub(super) fn build_err(e: impl std::fmt::Display) -> PipelineError {
    PipelineError::Build(e.to_string())
}

/// Adds `element` to the running `pipeline` after `upstream`; returns its source pad.
pub(super) fn add_after(
    pipeline: &gst::Pipeline,
    upstream: &gst::Pad,
    element: &gst::Element,
) -> Result<gst::Pad, PipelineError> {
    pipeline.add(element).map_err(build_err)?;
    element.sync_state_with_parent().map_err(build_err)?;
    let sink = element
        .static_pad("sink")
        .ok_or_else(|| build_err(format!("{} has no sink pad", element.name())))?;
    upstream.link(&sink).map_err(build_err)?;
    element
        .static_pad("src")
        .ok_or_else(|| build_err(format!("{} has no src pad", element.name())))
}

pub(super) fn access_unit_caps(codec: Codec) -> gst::Caps {
    caps_aligned(codec, "au")
}

pub(super) fn caps_aligned(codec: Codec, alignment: &str) -> gst::Caps {
    let media = match codec {
        Codec::H264 => "video/x-h264",
        Codec::H265 => "video/x-h265",
    };
    gst::Caps::builder(media)
        .field("stream-format", "byte-stream")
        .field("alignment", alignment)
        .build()
}

/// Adds parse ! tee ! (units, frames) after `upstream` and links it. `running` says the
/// pipeline is already playing (pad-added), so new elements must catch up with its state.
pub(super) fn build_tail(
    pipeline: &gst::Pipeline,
    upstream: &gst::Pad,
    codec: Codec,
    decode: Option<DecodeSpec>,
    out: Outputs,
    running: bool,
) -> Result<(), PipelineError> {
    let parse_name = match codec {
        Codec::H264 => "h264parse",
        Codec::H265 => "h265parse",
    };
    let parse = make(parse_name)?;
    // Repeat parameter sets at every keyframe, so any GOP can start a clip.
    parse.set_property("config-interval", -1i32);
    let au_filter = make("capsfilter")?;
    au_filter.set_property("caps", access_unit_caps(codec));
    let tee = make("tee")?;
    let unit_sink = units_appsink(codec, out.clone());
    let mut units = vec![parse.clone(), au_filter.clone(), tee.clone()];
    // A tail added to a playing pipeline (rtspsrc's pad, the native client's appsrc) needs
    // no queue (no thread) before the units appsink: its callback never blocks (try_send)
    // and the decode branch has a leaky queue of its own; one thread hop less per picture
    // (about 6 % of remux-only CPU). A pipeline built before it starts (the synthetic
    // source of `selftest`) got no video at all without it, so it keeps one.
    if !running {
        let unit_queue = make("queue")?;
        // Up to 2 s of video between the parser and the units appsink, bounded in time only.
        unit_queue.set_property("max-size-buffers", 0u32);
        unit_queue.set_property("max-size-bytes", 0u32);
        unit_queue.set_property("max-size-time", 2_000_000_000u64);
        units.push(unit_queue);
    }
    units.push(unit_sink);
    let mut elements = units.clone();
    let mut decode_chain: Vec<gst::Element> = Vec::new();
    if let Some(spec) = decode {
        decode_chain = decode_branch(codec, spec, &out)?;
        elements.extend(decode_chain.iter().cloned());
    }
    pipeline.add_many(&elements).map_err(build_err)?;
    gst::Element::link_many(&units).map_err(build_err)?;
    if !decode_chain.is_empty() {
        tee.link(&decode_chain[0]).map_err(build_err)?;
        gst::Element::link_many(&decode_chain).map_err(build_err)?;
    }
    if running {
        for e in &elements {
            e.sync_state_with_parent().map_err(build_err)?;
        }
    }
    let parse_sink = parse
        .static_pad("sink")
        .ok_or_else(|| build_err("parser has no sink pad"))?;
    upstream.link(&parse_sink).map_err(build_err)?;
    Ok(())
}

/// What the units appsink remembers between samples.
struct UnitState {
    /// The StreamInfo of the current caps; rebuilt when the caps change (a resolution
    /// change) or the reorder depth grows.
    current: Option<(gst::Caps, Arc<StreamInfo>)>,
    dts: super::reorder::DtsGuess,
    /// After a drop, deltas are skipped until the next keyframe, so consumers never see a
    /// broken GOP.
    resync: bool,
}

fn units_appsink(codec: Codec, out: Outputs) -> gst::Element {
    let state = Mutex::new(UnitState {
        current: None,
        dts: Default::default(),
        resync: false,
    });
    let sink = gst_app::AppSink::builder()
        .name("units")
        .sync(false)
        .callbacks(
            gst_app::AppSinkCallbacks::builder()
                .new_sample(move |sink| {
                    let sample = sink.pull_sample().map_err(|_| gst::FlowError::Flushing)?;
                    let mut state = state.lock().unwrap_or_else(|p| p.into_inner());
                    on_unit_sample(&sample, codec, &out, &mut state);
                    Ok(gst::FlowSuccess::Ok)
                })
                .build(),
        )
        .build();
    sink.upcast()
}

/// One access unit from the parser: counted, stamped with its decode time and stream,
/// and handed on without ever blocking.
fn on_unit_sample(sample: &gst::Sample, codec: Codec, out: &Outputs, state: &mut UnitState) {
    let (Some(buffer), Some(caps)) = (sample.buffer_owned(), sample.caps_owned()) else {
        return;
    };
    let running = |t: Option<gst::ClockTime>| {
        let t = t?;
        match sample
            .segment()
            .and_then(|s| s.downcast_ref::<gst::format::Time>())
        {
            Some(seg) => seg.to_running_time(t),
            None => Some(t),
        }
    };
    // A unit timed before the segment start (rtspsrc sends one while it syncs) has no
    // running time: it precedes the stream, skip it.
    let Some(pts) = running(buffer.pts()).or_else(|| running(buffer.dts())) else {
        return;
    };
    let pts_ns = pts.nseconds();
    let guess = state.dts.next(pts_ns);
    let stream = stream_of(codec, caps, guess.depth_grew, out, state);
    let keyframe = !buffer.flags().contains(gst::BufferFlags::DELTA_UNIT);
    let counters = out.status.counters();
    counters.frames.fetch_add(1, Relaxed);
    counters.bytes.fetch_add(buffer.size() as u64, Relaxed);
    out.last_unit_ms
        .store(crate::base::clock::monotonic_ms(), Relaxed);
    let unit = AccessUnit {
        pts_ns,
        dts_ns: Some(guess.dts_ns),
        duration_ns: buffer.duration().map(|d| d.nseconds()),
        keyframe,
        data: buffer,
        stream,
    };
    if let Some(feed) = &out.live {
        feed.push(&unit);
    }
    if state.resync && !keyframe {
        counters.dropped_units.fetch_add(1, Relaxed);
        return;
    }
    state.resync = out.units.try_send(unit).is_err();
    if state.resync {
        counters.dropped_units.fetch_add(1, Relaxed);
    }
}

/// The StreamInfo for a unit with `caps`: a new one when the caps changed or the decode
/// times just shifted (`epoch`), so consumers start again at a keyframe.
fn stream_of(
    codec: Codec,
    caps: gst::Caps,
    epoch: bool,
    out: &Outputs,
    state: &mut UnitState,
) -> Arc<StreamInfo> {
    if let Some((c, info)) = &state.current
        && *c == caps
        && !epoch
    {
        return info.clone();
    }
    let info = Arc::new(stream_info(codec, &caps, out.session));
    out.status.set_stream(Some(format!(
        "{} {}x{}",
        info.codec.name(),
        info.width,
        info.height
    )));
    state.current = Some((caps, info.clone()));
    info
}

fn stream_info(codec: Codec, caps: &gst::Caps, session: u64) -> StreamInfo {
    let s = caps.structure(0);
    let dim = |name: &str| s.and_then(|s| s.get::<i32>(name).ok()).unwrap_or(0).max(0) as u32;
    StreamInfo {
        codec,
        width: dim("width"),
        height: dim("height"),
        caps: caps.clone(),
        session,
    }
}

/// queue (leaky) ! decoder ! videorate ! scale+convert ! capsfilter ! appsink "frames".
fn decode_branch(
    codec: Codec,
    spec: DecodeSpec,
    out: &Outputs,
) -> Result<Vec<gst::Element>, PipelineError> {
    let queue = make("queue")?;
    queue.set_property_from_str("leaky", "downstream");
    queue.set_property("max-size-buffers", 0u32);
    queue.set_property("max-size-bytes", 0u32);
    queue.set_property("max-size-time", 1_000_000_000u64);
    let choice = super::decoder::resolve(codec, &out.decoder, &access_unit_caps(codec));
    if let Some(note) = &choice.note {
        tracing::warn!(camera = %out.status.id(), "{note}");
    }
    out.status.set_decoder(Some(match &choice.note {
        Some(_) => format!("{} (fallback)", choice.element),
        None => choice.element.clone(),
    }));
    let decoder = gst::ElementFactory::make(&choice.element)
        .name(if choice.hardware {
            "decode-hw"
        } else {
            "decode-sw"
        })
        .build()
        .map_err(|_| {
            PipelineError::Build(format!("decoder {} cannot be created", choice.element))
        })?;
    // Frames dropped by the leaky queue make the decoder complain until the next keyframe;
    // that must not end the camera's pipeline (and with it, recording).
    if decoder.find_property("max-errors").is_some() {
        decoder.set_property("max-errors", -1i32);
    }
    let rate = make("videorate")?;
    rate.set_property("drop-only", true);
    let mut chain = vec![queue, decoder, rate];
    // videoconvertscale is GStreamer >= 1.22; older releases (JetPack) have the pair.
    match make("videoconvertscale") {
        Ok(cs) => {
            cs.set_property("add-borders", true);
            chain.push(cs);
        }
        Err(_) => {
            let convert = make("videoconvert")?;
            let scale = make("videoscale")?;
            scale.set_property("add-borders", true);
            chain.push(scale);
            chain.push(convert);
        }
    }
    let filter = make("capsfilter")?;
    let mut caps = gst::Caps::builder("video/x-raw")
        .field("format", "RGB")
        .field("width", spec.width as i32)
        .field("pixel-aspect-ratio", gst::Fraction::new(1, 1))
        .field("framerate", gst::Fraction::new(spec.fps as i32, 1));
    // Height 0: the scaler keeps the camera's aspect ratio (a 16:9 camera at width 416
    // gives 416x234), so detection and snapshots see the whole picture undistorted.
    if spec.height > 0 {
        caps = caps.field("height", spec.height as i32);
    }
    filter.set_property("caps", caps.build());
    chain.push(filter);
    chain.push(frames_appsink(spec, out.clone()));
    Ok(chain)
}

fn frames_appsink(spec: DecodeSpec, out: Outputs) -> gst::Element {
    let sink = gst_app::AppSink::builder()
        .name("frames")
        .sync(false)
        .max_buffers(1)
        .drop(true)
        .callbacks(
            gst_app::AppSinkCallbacks::builder()
                .new_sample(move |sink| {
                    let sample = sink.pull_sample().map_err(|_| gst::FlowError::Flushing)?;
                    let Some(buffer) = sample.buffer_owned() else {
                        return Ok(gst::FlowSuccess::Ok);
                    };
                    let dims = sample.caps().and_then(|c| c.structure(0)).and_then(|s| {
                        Some((s.get::<i32>("width").ok()?, s.get::<i32>("height").ok()?))
                    });
                    let Some((width, height)) = dims
                        .filter(|&(w, h)| {
                            w > 0 && h > 0 && (spec.height == 0 || h as u32 == spec.height)
                        })
                        .map(|(w, h)| (w as u32, h as u32))
                    else {
                        return Ok(gst::FlowSuccess::Ok);
                    };
                    // RGB rows are padded to 4 bytes; width is a multiple of 4 here, but
                    // check rather than trust it.
                    if buffer.size() != (width * height * 3) as usize {
                        return Ok(gst::FlowSuccess::Ok); // not a packed layout; skip
                    }
                    out.status.counters().decoded_frames.fetch_add(1, Relaxed);
                    if let Some(frames) = &out.frames {
                        let frame = Frame {
                            pts_ns: buffer.pts().map(|t| t.nseconds()).unwrap_or(0),
                            width,
                            height,
                            rgb: buffer,
                        };
                        frames.send_replace(Some(Arc::new(frame)));
                    }
                    Ok(gst::FlowSuccess::Ok)
                })
                .build(),
        )
        .build();
    sink.upcast()
}
