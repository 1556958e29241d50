//! RGB images for detection: loading a still image (JPEG, PNG, ...) and scaling, both
//! through GStreamer so no second image stack is linked in:
//!
//! ```text
//!   filesrc ! decodebin ! videoconvert ! video/x-raw,format=RGB ! appsink
//!   appsrc (RGB WxH) ! videoscale ! video/x-raw,format=RGB,width=W',height=H' ! appsink
//! ```
//!
//! GStreamer pads RGB rows to 4 bytes; `RgbImage` holds them tightly packed.

use gstreamer as gst;
use gstreamer::prelude::*;
use gstreamer_app as gst_app;
use std::path::Path;

/// Tightly packed 8-bit RGB.
#[derive(Clone, Debug)]
pub struct RgbImage {
    pub width: u32,
    pub height: u32,
    /// width * height * 3 bytes.
    pub data: Vec<u8>,
}

fn stride(width: u32) -> usize {
    (width as usize * 3).div_ceil(4) * 4
}

impl RgbImage {
    /// From a GStreamer RGB buffer whose rows may be padded.
    pub fn from_padded(width: u32, height: u32, padded: &[u8]) -> Option<Self> {
        let (row, s) = (width as usize * 3, stride(width));
        if padded.len() < s * (height as usize - 1) + row {
            return None;
        }
        let mut data = Vec::with_capacity(row * height as usize);
        for y in 0..height as usize {
            data.extend_from_slice(&padded[y * s..y * s + row]);
        }
        Some(Self {
            width,
            height,
            data,
        })
    }

    fn to_padded(&self) -> Vec<u8> {
        let (row, s) = (self.width as usize * 3, stride(self.width));
        let mut out = vec![0u8; s * self.height as usize];
        for y in 0..self.height as usize {
            out[y * s..y * s + row].copy_from_slice(&self.data[y * row..(y + 1) * row]);
        }
        out
    }
}

fn err(e: impl std::fmt::Display) -> String {
    e.to_string()
}

fn pull_rgb(
    pipeline: &gst::Pipeline,
    sink: &gst_app::AppSink,
    what: &str,
) -> Result<RgbImage, String> {
    pipeline.set_state(gst::State::Playing).map_err(err)?;
    let result = (|| {
        let Some(sample) = sink.try_pull_sample(gst::ClockTime::from_seconds(10)) else {
            let bus = pipeline.bus().ok_or("no bus")?;
            if let Some(msg) = bus.pop_filtered(&[gst::MessageType::Error])
                && let gst::MessageView::Error(e) = msg.view()
            {
                return Err(format!("{what}: {}", e.error()));
            }
            return Err(format!("{what}: no image came out"));
        };
        let caps = sample.caps().ok_or("no caps")?;
        let s = caps.structure(0).ok_or("no caps structure")?;
        let w = s.get::<i32>("width").map_err(err)? as u32;
        let h = s.get::<i32>("height").map_err(err)? as u32;
        let buf = sample.buffer().ok_or("no buffer")?;
        let map = buf.map_readable().map_err(err)?;
        RgbImage::from_padded(w, h, &map).ok_or_else(|| format!("{what}: short buffer"))
    })();
    let _ = pipeline.set_state(gst::State::Null);
    result
}

/// Decodes an image file to RGB.
pub fn load(path: &Path) -> Result<RgbImage, String> {
    crate::ingest::init_gstreamer().map_err(err)?;
    if !path.is_file() {
        return Err(format!("{}: no such file", path.display()));
    }
    let pipeline = gst::Pipeline::new();
    let src = gst::ElementFactory::make("filesrc")
        .property("location", path.to_string_lossy().as_ref())
        .build()
        .map_err(err)?;
    let decode = gst::ElementFactory::make("decodebin")
        .build()
        .map_err(err)?;
    let convert = gst::ElementFactory::make("videoconvert")
        .build()
        .map_err(err)?;
    let sink = gst_app::AppSink::builder()
        .caps(
            &gst::Caps::builder("video/x-raw")
                .field("format", "RGB")
                .build(),
        )
        .sync(false)
        .build();
    pipeline
        .add_many([&src, &decode, &convert, sink.upcast_ref()])
        .map_err(err)?;
    src.link(&decode).map_err(err)?;
    convert.link(&sink).map_err(err)?;
    let convert_weak = convert.downgrade();
    decode.connect_pad_added(move |_, pad| {
        if let Some(sink_pad) = convert_weak.upgrade().and_then(|c| c.static_pad("sink")) {
            let _ = pad.link(&sink_pad);
        }
    });
    pull_rgb(&pipeline, &sink, &path.display().to_string())
}

/// Scales `img` to exactly `width` x `height` (bilinear).
pub fn scale(img: &RgbImage, width: u32, height: u32) -> Result<RgbImage, String> {
    if (img.width, img.height) == (width, height) {
        return Ok(img.clone());
    }
    crate::ingest::init_gstreamer().map_err(err)?;
    let caps = |w: u32, h: u32| {
        gst::Caps::builder("video/x-raw")
            .field("format", "RGB")
            .field("width", w as i32)
            .field("height", h as i32)
            .field("framerate", gst::Fraction::new(0, 1))
            .build()
    };
    let pipeline = gst::Pipeline::new();
    let src = gst_app::AppSrc::builder()
        .caps(&caps(img.width, img.height))
        .format(gst::Format::Time)
        .build();
    let scale = gst::ElementFactory::make("videoscale")
        .build()
        .map_err(err)?;
    scale.set_property_from_str("method", "bilinear");
    let sink = gst_app::AppSink::builder()
        .caps(&caps(width, height))
        .sync(false)
        .build();
    pipeline
        .add_many([src.upcast_ref(), &scale, sink.upcast_ref()])
        .map_err(err)?;
    gst::Element::link_many([src.upcast_ref(), &scale, sink.upcast_ref()]).map_err(err)?;
    let mut buf = gst::Buffer::from_mut_slice(img.to_padded());
    buf.make_mut().set_pts(gst::ClockTime::ZERO);
    src.push_buffer(buf).map_err(err)?;
    src.end_of_stream().map_err(err)?;
    pull_rgb(&pipeline, &sink, "scaling")
}
