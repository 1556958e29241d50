//! Two or more alarm pictures become a clip: H.264 encoded by GStreamer, each picture shown
//! for its own interval, muxed by our fragmented-MP4 muxer and sealed by the clip store
//! like any recording:
//!
//! ```text
//!   appsrc (image/jpeg, one buffer per picture, PTS = its time in the clip)
//!     ! jpegdec ! videoconvert ! videoscale (to the first picture's size, letterboxed)
//!     ! x264enc (ultrafast, zerolatency, no B-frames, every picture a keyframe)
//!     ! video/x-h264,stream-format=byte-stream,alignment=au ! appsink
//! ```
//!
//! The pictures are decoded only here, after picture.rs checked their declared sizes.

use super::picture::Picture;
use crate::media::mux::Muxer;
use crate::media::{AccessUnit, Codec, StreamInfo};
use crate::store::{ClipMeta, ClipRecord, Store};
use gstreamer as gst;
use gstreamer::prelude::*;
use gstreamer_app as gst_app;
use std::sync::Arc;

/// The longest a picture is shown, however long the camera waited before the next one.
pub const MAX_SHOW_MS: i64 = 5_000;
/// The longest the encoder may take for one clip.
const ENCODE_TIMEOUT: gst::ClockTime = gst::ClockTime::from_seconds(60);

/// When each picture shows in the clip, in ms from its start: from EXIF capture times
/// when every picture has one and they never go back, else from `arrived_ms` when those
/// differ, else `picture_ms` apart. Each interval is capped at `MAX_SHOW_MS`; the last
/// picture shows as long as the one before it (or `picture_ms`).
pub fn show_times_ms(pictures: &[Picture], arrived_ms: &[i64], picture_ms: i64) -> Vec<i64> {
    let exif: Option<Vec<i64>> = pictures.iter().map(|p| p.taken_ms).collect();
    let increasing = |t: &Vec<i64>| t.windows(2).all(|w| w[1] >= w[0]);
    let source = match exif {
        Some(t) if increasing(&t) && t.first() != t.last() => t,
        _ if arrived_ms.first() != arrived_ms.last() && increasing(&arrived_ms.to_vec()) => {
            arrived_ms.to_vec()
        }
        _ => (0..pictures.len() as i64).map(|i| i * picture_ms).collect(),
    };
    let mut at = 0;
    let mut out = Vec::with_capacity(source.len() + 1);
    out.push(0);
    for w in source.windows(2) {
        at += (w[1] - w[0]).clamp(1, MAX_SHOW_MS);
        out.push(at);
    }
    let last_ms = match out.len() {
        n if n >= 2 => out[n - 1] - out[n - 2],
        _ => picture_ms,
    };
    out.push(at + last_ms.clamp(1, MAX_SHOW_MS));
    out
}

/// Encodes `pictures` shown at `times_ms` (one more entry than pictures: the end) and
/// stores the clip for `camera` from `start_ms`, with the first picture as thumbnail.
pub fn store_clip(
    store: &Store,
    camera: &str,
    label: &str,
    start_ms: i64,
    pictures: &[Picture],
    times_ms: &[i64],
) -> Result<ClipRecord, String> {
    let first = pictures.first().ok_or("no pictures")?;
    let units = encode(pictures, times_ms)?;
    store_units(store, (camera, label, start_ms), &units, Some(&first.jpeg))
}

/// Muxes `units` (the first a keyframe) into a clip of `camera` labelled `label` from
/// `start_ms`, sealed and indexed by the store.
pub fn store_units(
    store: &Store,
    (camera, label, start_ms): (&str, &str, i64),
    units: &[AccessUnit],
    thumbnail: Option<&[u8]>,
) -> Result<ClipRecord, String> {
    let stream = units.first().map(|u| u.stream.clone()).ok_or("no video")?;
    let meta = ClipMeta {
        camera_id: camera.to_string(),
        start_ms,
        codec: String::new(),
        width: stream.width,
        height: stream.height,
        labels: vec![label.to_string()],
        ..ClipMeta::default()
    };
    let mut writer = store.begin_clip(meta).map_err(|e| e.to_string())?;
    let mut mux = Muxer::new(stream, 1_000);
    for u in units {
        mux.push(u).map_err(|e| e.to_string())?;
        writer
            .write(&mux.take_output())
            .map_err(|e| e.to_string())?;
    }
    let rest = mux.finish().map_err(|e| e.to_string())?;
    writer.write(&rest).map_err(|e| e.to_string())?;
    writer.finish(thumbnail).map_err(|e| e.to_string())
}

fn even(n: u32) -> u32 {
    (n & !1).max(2)
}

/// The H.264 access units of the pictures, one per picture, with their times.
fn encode(pictures: &[Picture], times_ms: &[i64]) -> Result<Vec<AccessUnit>, String> {
    let first = pictures.first().ok_or("no pictures")?;
    let (width, height) = (even(first.width), even(first.height));
    let (pipeline, src, sink) = build(width, height)?;
    pipeline
        .set_state(gst::State::Playing)
        .map_err(|e| format!("encoder will not start: {e}"))?;
    let result = (|| {
        for (i, p) in pictures.iter().enumerate() {
            let mut buf = gst::Buffer::from_slice(p.jpeg.clone());
            let at = times_ms[i];
            let to = times_ms.get(i + 1).copied().unwrap_or(at + 1000);
            if let Some(b) = buf.get_mut() {
                b.set_pts(gst::ClockTime::from_mseconds(at as u64));
                b.set_duration(gst::ClockTime::from_mseconds((to - at).max(1) as u64));
            }
            src.push_buffer(buf)
                .map_err(|e| format!("encoder refused a picture: {e}"))?;
        }
        src.end_of_stream().map_err(|e| e.to_string())?;
        collect(&pipeline, &sink, width, height, pictures.len())
    })();
    let _ = pipeline.set_state(gst::State::Null);
    result
}

fn build(
    width: u32,
    height: u32,
) -> Result<(gst::Pipeline, gst_app::AppSrc, gst_app::AppSink), String> {
    let make = |name: &str| {
        gst::ElementFactory::make(name)
            .build()
            .map_err(|_| format!("GStreamer element {name} is missing"))
    };
    let src = gst_app::AppSrc::builder()
        .caps(
            &gst::Caps::builder("image/jpeg")
                .field("framerate", gst::Fraction::new(0, 1))
                .build(),
        )
        .format(gst::Format::Time)
        .build();
    let (dec, convert, scale) = (make("jpegdec")?, make("videoconvert")?, make("videoscale")?);
    let raw = gst::ElementFactory::make("capsfilter")
        .property(
            "caps",
            gst::Caps::builder("video/x-raw")
                .field("format", "I420")
                .field("width", width as i32)
                .field("height", height as i32)
                .field("pixel-aspect-ratio", gst::Fraction::new(1, 1))
                .build(),
        )
        .build()
        .map_err(|e| e.to_string())?;
    let enc = make("x264enc")?;
    enc.set_property_from_str("speed-preset", "ultrafast");
    enc.set_property_from_str("tune", "zerolatency");
    enc.set_property("bframes", 0u32);
    enc.set_property("key-int-max", 1u32);
    let sink = gst_app::AppSink::builder()
        .caps(
            &gst::Caps::builder("video/x-h264")
                .field("stream-format", "byte-stream")
                .field("alignment", "au")
                .build(),
        )
        .sync(false)
        .build();
    let pipeline = gst::Pipeline::new();
    let chain = [
        src.upcast_ref(),
        &dec,
        &convert,
        &scale,
        &raw,
        &enc,
        sink.upcast_ref(),
    ];
    pipeline.add_many(chain).map_err(|e| e.to_string())?;
    gst::Element::link_many(chain).map_err(|e| format!("encoder pipeline: {e}"))?;
    Ok((pipeline, src, sink))
}

/// Pulls the encoded pictures until end of stream (or an error on the bus).
pub(super) fn collect(
    pipeline: &gst::Pipeline,
    sink: &gst_app::AppSink,
    width: u32,
    height: u32,
    expected: usize,
) -> Result<Vec<AccessUnit>, String> {
    let mut units = Vec::with_capacity(expected);
    let mut stream: Option<Arc<StreamInfo>> = None;
    while let Some(sample) = sink.try_pull_sample(ENCODE_TIMEOUT) {
        let buffer = sample.buffer_owned().ok_or("an empty encoded sample")?;
        let info = stream.get_or_insert_with(|| {
            Arc::new(StreamInfo {
                codec: Codec::H264,
                width,
                height,
                caps: sample
                    .caps_owned()
                    .unwrap_or_else(|| gst::Caps::new_empty_simple("video/x-h264")),
                session: 1,
            })
        });
        units.push(unit_of(buffer, info));
        if units.len() == expected {
            break;
        }
    }
    if let Some(bus) = pipeline.bus()
        && let Some(msg) = bus.pop_filtered(&[gst::MessageType::Error])
        && let gst::MessageView::Error(e) = msg.view()
    {
        return Err(format!(
            "a picture could not be decoded or encoded: {}",
            e.error()
        ));
    }
    if units.len() < expected {
        return Err(format!(
            "the encoder gave {} of {expected} pictures",
            units.len()
        ));
    }
    Ok(units)
}

/// An encoded buffer as an access unit of `stream` (its times and keyframe flag).
pub(super) fn unit_of(buffer: gst::Buffer, stream: &Arc<StreamInfo>) -> AccessUnit {
    AccessUnit {
        pts_ns: buffer.pts().map(|t| t.nseconds()).unwrap_or(0),
        dts_ns: buffer.dts().map(|t| t.nseconds()),
        duration_ns: buffer.duration().map(|t| t.nseconds()),
        keyframe: !buffer.flags().contains(gst::BufferFlags::DELTA_UNIT),
        data: buffer,
        stream: stream.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pic(taken_ms: Option<i64>) -> Picture {
        Picture {
            jpeg: Vec::new(),
            width: 640,
            height: 480,
            taken_ms,
        }
    }

    #[test]
    fn exif_times_give_the_intervals_capped() {
        let p = [pic(Some(10_000)), pic(Some(10_500)), pic(Some(30_000))];
        assert_eq!(
            show_times_ms(&p, &[0, 0, 0], 1000),
            vec![0, 500, 5500, 10_500]
        );
    }

    #[test]
    fn arrival_times_serve_when_exif_is_missing() {
        let p = [pic(None), pic(Some(1)), pic(None)];
        assert_eq!(
            show_times_ms(&p, &[100, 1100, 1600], 1000),
            vec![0, 1000, 1500, 2000]
        );
    }

    #[test]
    fn pictures_that_came_together_show_a_fixed_time_each() {
        let p = [pic(None), pic(None), pic(None)];
        assert_eq!(show_times_ms(&p, &[7, 7, 7], 800), vec![0, 800, 1600, 2400]);
        let back = [pic(Some(5000)), pic(Some(4000))];
        assert_eq!(show_times_ms(&back, &[7, 7], 1000), vec![0, 1000, 2000]);
    }
}
