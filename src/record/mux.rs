//! Fragmented MP4 muxing of access units, no re-encoding:
//!
//! ```text
//!   appsrc (caps of the ingest stream, TIME) ! h26Xparse ! mp4mux fragment-duration=F
//!       streamable=true ! appsink   → ftyp, moov, then moof+mdat per fragment
//! ```
//!
//! Timestamps are rebased by one offset, so the first unit (which must be a keyframe)
//! decodes at 0: a stream with B-frames keeps the distance between its decode and
//! presentation times (ingest's `reorder`), which mp4mux writes as composition offsets.
//! `DELTA_UNIT` marks non-keyframes. Output bytes are collected as they come; the caller
//! drains them into the clip store, so nothing is held longer than a fragment.

use crate::ingest::{AccessUnit, Codec, StreamInfo};
use gstreamer as gst;
use gstreamer::prelude::*;
use gstreamer_app as gst_app;
use std::sync::{Arc, Mutex};

#[derive(Debug, thiserror::Error)]
pub enum MuxError {
    #[error("muxer: {0}")]
    Gst(String),
    #[error("the first unit of a clip must be a keyframe")]
    NotKeyframe,
    #[error("stream changed (codec or caps) mid-clip")]
    StreamChanged,
}

fn gst_err(e: impl std::fmt::Display) -> MuxError {
    MuxError::Gst(e.to_string())
}

pub struct Muxer {
    pipeline: gst::Pipeline,
    src: gst_app::AppSrc,
    out: Arc<Mutex<Vec<u8>>>,
    stream: Arc<StreamInfo>,
    /// The first unit's decode time: subtracted from every timestamp.
    base_ns: Option<u64>,
    pub frames: u64,
}

impl Muxer {
    /// A muxer for units of `stream`, cutting fragments every `fragment_ms` (at keyframes).
    pub fn new(stream: Arc<StreamInfo>, fragment_ms: u32) -> Result<Self, MuxError> {
        crate::ingest::init_gstreamer().map_err(gst_err)?;
        let pipeline = gst::Pipeline::new();
        let src = gst_app::AppSrc::builder()
            .caps(&stream.caps)
            .format(gst::Format::Time)
            .is_live(false)
            .build();
        let parse = gst::ElementFactory::make(match stream.codec {
            Codec::H264 => "h264parse",
            Codec::H265 => "h265parse",
        })
        .build()
        .map_err(gst_err)?;
        let mux = gst::ElementFactory::make("mp4mux")
            .property("fragment-duration", fragment_ms)
            .property("streamable", true)
            .build()
            .map_err(gst_err)?;
        let out = Arc::new(Mutex::new(Vec::new()));
        let sink_out = out.clone();
        let sink = gst_app::AppSink::builder()
            .sync(false)
            .callbacks(
                gst_app::AppSinkCallbacks::builder()
                    .new_sample(move |sink| {
                        let sample = sink.pull_sample().map_err(|_| gst::FlowError::Flushing)?;
                        if let Some(buf) = sample.buffer() {
                            let map = buf.map_readable().map_err(|_| gst::FlowError::Error)?;
                            sink_out
                                .lock()
                                .unwrap_or_else(|p| p.into_inner())
                                .extend_from_slice(&map);
                        }
                        Ok(gst::FlowSuccess::Ok)
                    })
                    .build(),
            )
            .build();
        pipeline
            .add_many([src.upcast_ref(), &parse, &mux, sink.upcast_ref()])
            .map_err(gst_err)?;
        gst::Element::link_many([src.upcast_ref(), &parse, &mux, sink.upcast_ref()])
            .map_err(gst_err)?;
        pipeline.set_state(gst::State::Playing).map_err(gst_err)?;
        Ok(Self {
            pipeline,
            src,
            out,
            stream,
            base_ns: None,
            frames: 0,
        })
    }

    /// Pushes one access unit (the first must be a keyframe of the same stream).
    pub fn push(&mut self, unit: &AccessUnit) -> Result<(), MuxError> {
        if !Arc::ptr_eq(&unit.stream, &self.stream) {
            return Err(MuxError::StreamChanged);
        }
        if self.frames == 0 && !unit.keyframe {
            return Err(MuxError::NotKeyframe);
        }
        let dts_ns = unit.decode_ns();
        let base = *self.base_ns.get_or_insert(dts_ns);
        let mut buf = unit.data.copy();
        {
            let b = buf.make_mut();
            b.set_pts(gst::ClockTime::from_nseconds(
                unit.pts_ns.saturating_sub(base),
            ));
            b.set_dts(gst::ClockTime::from_nseconds(dts_ns.saturating_sub(base)));
            if let Some(d) = unit.duration_ns {
                b.set_duration(gst::ClockTime::from_nseconds(d));
            }
            if unit.keyframe {
                b.unset_flags(gst::BufferFlags::DELTA_UNIT);
            } else {
                b.set_flags(gst::BufferFlags::DELTA_UNIT);
            }
        }
        self.src.push_buffer(buf).map_err(gst_err)?;
        self.frames += 1;
        Ok(())
    }

    pub fn stream(&self) -> Arc<StreamInfo> {
        self.stream.clone()
    }

    /// MP4 bytes produced so far (moved out).
    pub fn take_output(&self) -> Vec<u8> {
        std::mem::take(&mut *self.out.lock().unwrap_or_else(|p| p.into_inner()))
    }

    /// Ends the clip: flushes the last fragment and returns the remaining bytes.
    pub fn finish(self) -> Result<Vec<u8>, MuxError> {
        self.src.end_of_stream().map_err(gst_err)?;
        let bus = self.pipeline.bus().ok_or_else(|| gst_err("no bus"))?;
        let result = match bus.timed_pop_filtered(
            gst::ClockTime::from_seconds(30),
            &[gst::MessageType::Eos, gst::MessageType::Error],
        ) {
            Some(msg) => match msg.view() {
                gst::MessageView::Error(e) => Err(gst_err(e.error())),
                _ => Ok(()),
            },
            None => Err(gst_err("no end of stream within 30 s")),
        };
        let _ = self.pipeline.set_state(gst::State::Null);
        result?;
        Ok(self.take_output())
    }
}

impl Drop for Muxer {
    fn drop(&mut self) {
        let _ = self.pipeline.set_state(gst::State::Null);
    }
}
