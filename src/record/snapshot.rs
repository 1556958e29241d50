//! JPEG snapshots of decoded frames (clip thumbnails; later, event snapshots and the live
//! view), encoded by GStreamer's jpegenc:
//!
//! ```text
//!   appsrc (video/x-raw,format=RGB,WxH) ! videoconvert ! jpegenc quality=85 ! appsink
//! ```

use crate::ingest::Frame;
use gstreamer as gst;
use gstreamer::prelude::*;
use gstreamer_app as gst_app;

pub fn encode_jpeg(frame: &Frame) -> Result<Vec<u8>, String> {
    let pipeline = gst::Pipeline::new();
    let caps = gst::Caps::builder("video/x-raw")
        .field("format", "RGB")
        .field("width", frame.width as i32)
        .field("height", frame.height as i32)
        .field("framerate", gst::Fraction::new(0, 1))
        .build();
    let src = gst_app::AppSrc::builder()
        .caps(&caps)
        .format(gst::Format::Time)
        .build();
    let convert = gst::ElementFactory::make("videoconvert")
        .build()
        .map_err(|e| e.to_string())?;
    let enc = gst::ElementFactory::make("jpegenc")
        .property("quality", 85i32)
        .build()
        .map_err(|e| e.to_string())?;
    let sink = gst_app::AppSink::builder().sync(false).build();
    pipeline
        .add_many([src.upcast_ref(), &convert, &enc, sink.upcast_ref()])
        .map_err(|e| e.to_string())?;
    gst::Element::link_many([src.upcast_ref(), &convert, &enc, sink.upcast_ref()])
        .map_err(|e| e.to_string())?;
    pipeline
        .set_state(gst::State::Playing)
        .map_err(|e| e.to_string())?;
    let mut buf = frame.rgb.copy();
    buf.make_mut().set_pts(gst::ClockTime::ZERO);
    let result = (|| {
        src.push_buffer(buf).map_err(|e| e.to_string())?;
        src.end_of_stream().map_err(|e| e.to_string())?;
        let sample = sink
            .try_pull_sample(gst::ClockTime::from_seconds(5))
            .ok_or("jpegenc produced nothing")?;
        let buffer = sample.buffer().ok_or("empty sample")?;
        let map = buffer.map_readable().map_err(|e| e.to_string())?;
        Ok(map.to_vec())
    })();
    let _ = pipeline.set_state(gst::State::Null);
    result
}
