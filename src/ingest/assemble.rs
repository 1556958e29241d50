//! Access units assembled from the depayloader's NAL units, by RTP timestamp.
//!
//! The depayloaders' own access-unit assembly ends a picture at any parameter set, so a
//! camera that repeats SPS/PPS between the slices of one picture (see `nal`) would arrive
//! as several "pictures" with one timestamp. Instead the depayloader hands over single NAL
//! units (`alignment=nal`), and a pad probe after it joins every NAL of one timestamp into
//! one access unit: it ends at the RTP marker bit (the last packet of a picture), or when
//! a NAL with a new timestamp arrives, for cameras that never set the marker. The NAL
//! buffers are joined without copying; only a picture with a parameter set after a slice
//! is copied once, with its parameter sets hoisted in front of its first slice. The caps
//! that travel downstream say `alignment=au`, as the parser after it expects.

use super::Codec;
use crate::media::nal::NalKind;
use gstreamer as gst;
use gstreamer::prelude::*;
use std::sync::atomic::Ordering::Relaxed;

/// NAL units of the picture being assembled: their buffers joined without a copy (one
/// GStreamer buffer of several memories), and whether a parameter set followed a slice.
#[derive(Default)]
struct Pending {
    buffer: Option<gst::Buffer>,
    pts: Option<gst::ClockTime>,
    dts: Option<gst::ClockTime>,
    discont: bool,
    seen_picture: bool,
    needs_repair: bool,
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
        let new_picture = self.pending.buffer.is_some() && nal.pts() != self.pending.pts;
        if new_picture {
            // The previous picture had no marker: it ends here; this NAL starts the next.
            let done = self.finish();
            self.append(nal);
            return done;
        }
        self.append(nal);
        if nal.flags().contains(gst::BufferFlags::MARKER) {
            return self.finish();
        }
        None
    }

    fn append(&mut self, nal: &gst::Buffer) {
        let kind = nal_kind(self.codec, nal);
        let p = &mut self.pending;
        match p.buffer.as_mut() {
            None => {
                p.pts = nal.pts();
                p.dts = nal.dts();
                p.buffer = Some(nal.clone());
            }
            Some(b) => b.append(nal.clone()),
        }
        p.discont |= nal.flags().contains(gst::BufferFlags::DISCONT);
        match kind {
            Some(NalKind::Picture) => p.seen_picture = true,
            Some(NalKind::ParameterSet) if p.seen_picture => p.needs_repair = true,
            _ => {}
        }
    }

    /// Drops a half-assembled picture (after a flush).
    pub fn reset(&mut self) {
        self.pending = Pending::default();
    }

    fn finish(&mut self) -> Option<gst::Buffer> {
        let p = std::mem::take(&mut self.pending);
        let mut unit = p.buffer?;
        if p.needs_repair
            && let Some(fixed) = self.repaired(&unit)
        {
            unit = fixed;
        }
        let b = unit.make_mut();
        b.set_pts(p.pts);
        b.set_dts(p.dts);
        b.set_duration(gst::ClockTime::NONE);
        let mut flags = b.flags();
        flags.remove(gst::BufferFlags::MARKER | gst::BufferFlags::DISCONT);
        if p.discont {
            flags.insert(gst::BufferFlags::DISCONT);
        }
        b.set_flags(flags);
        Some(unit)
    }

    /// The unit with its parameter sets hoisted (one contiguous copy, only for the
    /// pictures that need it).
    fn repaired(&self, unit: &gst::Buffer) -> Option<gst::Buffer> {
        let map = unit.map_readable().ok()?;
        let fixed = crate::media::nal::hoist_parameter_sets(self.codec, &map)?;
        self.status.counters().repaired_units.fetch_add(1, Relaxed);
        Some(gst::Buffer::from_mut_slice(fixed))
    }
}

/// The kind of the (first) NAL unit in `buffer`.
fn nal_kind(codec: Codec, buffer: &gst::Buffer) -> Option<NalKind> {
    let map = buffer.map_readable().ok()?;
    let nal = crate::media::nal::first_unit_head(&map)?;
    Some(crate::media::nal::kind(codec, nal))
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
