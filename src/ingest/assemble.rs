//! Access units assembled from the depayloader's NAL units, by RTP timestamp.
//!
//! The depayloaders' own access-unit assembly ends a picture at any parameter set, so a
//! camera that repeats SPS/PPS between the slices of one picture (see `nal`) would arrive
//! as several "pictures" with one timestamp. Instead the depayloader hands over single NAL
//! units (`alignment=nal`), and a pad probe after it joins every NAL of one timestamp into
//! one access unit: it ends at the RTP marker bit (the last packet of a picture), or when
//! a NAL with a new timestamp arrives, for cameras that never set the marker. The joined
//! unit gets its parameter sets hoisted in front of its first slice, and the caps that
//! travel downstream say `alignment=au`, as the parser after it expects.

use super::Codec;
use gstreamer as gst;
use gstreamer::prelude::*;
use std::sync::atomic::Ordering::Relaxed;

/// NAL units of the picture being assembled.
#[derive(Default)]
struct Pending {
    data: Vec<u8>,
    pts: Option<gst::ClockTime>,
    dts: Option<gst::ClockTime>,
    discont: bool,
}

pub struct Assembler {
    codec: Codec,
    pending: Pending,
    /// Counts units whose parameter sets were moved (camera status `repaired=`).
    status: super::StatusHandle,
}

impl Assembler {
    pub fn new(codec: Codec, status: super::StatusHandle) -> Self {
        Self {
            codec,
            pending: Pending::default(),
            status,
        }
    }

    /// Takes one NAL unit; returns a completed access unit when this NAL ends one.
    pub fn push(&mut self, nal: &gst::Buffer) -> Option<gst::Buffer> {
        let Ok(map) = nal.map_readable() else {
            return None;
        };
        let new_picture = !self.pending.data.is_empty() && nal.pts() != self.pending.pts;
        if new_picture {
            // The previous picture had no marker: it ends here; this NAL starts the next.
            let done = self.finish();
            self.append(nal, &map);
            return done;
        }
        self.append(nal, &map);
        if nal.flags().contains(gst::BufferFlags::MARKER) {
            return self.finish();
        }
        None
    }

    fn append(&mut self, nal: &gst::Buffer, bytes: &[u8]) {
        let p = &mut self.pending;
        if p.data.is_empty() {
            p.pts = nal.pts();
            p.dts = nal.dts();
            p.discont = false;
        }
        p.discont |= nal.flags().contains(gst::BufferFlags::DISCONT);
        p.data.extend_from_slice(bytes);
    }

    /// Drops a half-assembled picture (after a flush).
    pub fn reset(&mut self) {
        self.pending = Pending::default();
    }

    fn finish(&mut self) -> Option<gst::Buffer> {
        let p = std::mem::take(&mut self.pending);
        if p.data.is_empty() {
            return None;
        }
        let data = match super::nal::hoist_parameter_sets(self.codec, &p.data) {
            Some(fixed) => {
                self.status.counters().repaired_units.fetch_add(1, Relaxed);
                fixed
            }
            None => p.data,
        };
        let mut out = gst::Buffer::from_mut_slice(data);
        if let Some(b) = out.get_mut() {
            b.set_pts(p.pts);
            b.set_dts(p.dts);
            if p.discont {
                b.set_flags(gst::BufferFlags::DISCONT);
            }
        }
        Some(out)
    }
}

/// Installs the assembler as a probe on `pad`, the source pad of a filter that holds the
/// depayloader to `alignment=nal`.
pub fn install(pad: &gst::Pad, codec: Codec, status: super::StatusHandle) {
    let assembler = std::sync::Mutex::new(Assembler::new(codec, status));
    let mask = gst::PadProbeType::BUFFER | gst::PadProbeType::EVENT_DOWNSTREAM;
    pad.add_probe(mask, move |_, info| {
        let mut asm = assembler.lock().unwrap_or_else(|p| p.into_inner());
        match &mut info.data {
            Some(gst::PadProbeData::Buffer(nal)) => match asm.push(nal) {
                Some(unit) => {
                    *nal = unit;
                    gst::PadProbeReturn::Ok
                }
                None => gst::PadProbeReturn::Drop,
            },
            Some(gst::PadProbeData::Event(event)) => {
                match event.view() {
                    gst::EventView::Caps(c) => *event = au_caps_event(c.caps()),
                    gst::EventView::FlushStop(_) | gst::EventView::StreamStart(_) => asm.reset(),
                    _ => {}
                }
                gst::PadProbeReturn::Ok
            }
            _ => gst::PadProbeReturn::Ok,
        }
    });
}

/// The same caps with `alignment=au`: what leaves the assembler.
fn au_caps_event(caps: &gst::CapsRef) -> gst::Event {
    let mut caps = caps.to_owned();
    if let Some(s) = caps.make_mut().structure_mut(0) {
        s.set("alignment", "au");
    }
    gst::event::Caps::new(&caps)
}
