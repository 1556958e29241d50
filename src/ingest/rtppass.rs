//! What rtspsrc's rtpbin gets instead of an `rtpjitterbuffer` (through rtpbin's
//! `request-jitterbuffer` signal). Our cameras always speak RTP over the RTSP TCP
//! connection, so packets arrive in order, once, and nothing is worth waiting for; the
//! jitterbuffer would still queue every packet and push it again from a thread of its own
//! (a third of ingest's CPU in `perf`, in thread wake-ups). This element does in the
//! receiving thread the one thing downstream needs from it: each packet's PTS from its
//! RTP timestamp, as the jitterbuffer's `buffer-mode=none` does (the first packet's
//! arrival plus the RTP clock since then), rebased when the camera's clock jumps.

use gst::glib;
use gst::prelude::*;
use gst::subclass::prelude::*;
use gstreamer as gst;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, Ordering::Relaxed};

/// A jump of the RTP clock beyond this (a camera restarting its clock, or a server
/// splicing streams) starts a new timeline at the packet's arrival instead.
const MAX_JUMP_S: i64 = 10;

/// Extends 32-bit RTP timestamps and maps them to running time in nanoseconds.
#[derive(Debug, Default)]
pub struct RtpClock {
    clock_rate: u32,
    last_rtp: Option<u32>,
    /// The extended timestamp of the last packet, in clock-rate units.
    ext: i64,
    /// The extended timestamp and running time (ns) of the timeline's first packet.
    base_ext: i64,
    base_ns: u64,
}

impl RtpClock {
    pub fn new(clock_rate: u32) -> Self {
        Self {
            clock_rate: clock_rate.max(1),
            ..Self::default()
        }
    }

    /// The PTS (ns) of a packet stamped `rtp_ts`; `arrival_ns` (its arrival in running
    /// time) is only asked for when a timeline starts, not for every packet.
    pub fn pts_ns(&mut self, rtp_ts: u32, arrival_ns: impl FnOnce() -> u64) -> u64 {
        let rate = i64::from(self.clock_rate);
        match self.last_rtp {
            None => self.rebase(0, arrival_ns()),
            Some(last) => {
                // Signed distance: B-frames step back a little, wrap-around steps over 2^32.
                let step = i64::from(rtp_ts.wrapping_sub(last) as i32);
                self.ext += step;
                if step.abs() > MAX_JUMP_S * rate {
                    self.rebase(self.ext, arrival_ns());
                }
            }
        }
        self.last_rtp = Some(rtp_ts);
        let since_base_ns = (self.ext - self.base_ext) as i128 * 1_000_000_000 / rate as i128;
        (self.base_ns as i128 + since_base_ns).clamp(0, u64::MAX as i128) as u64
    }

    fn rebase(&mut self, ext: i64, arrival_ns: u64) {
        self.ext = ext;
        self.base_ext = ext;
        self.base_ns = arrival_ns;
    }
}

mod imp {
    use super::*;

    pub struct RtpPass {
        sinkpad: gst::Pad,
        srcpad: gst::Pad,
        clock: Mutex<Option<RtpClock>>,
        /// rtpbin sets `latency` on every jitterbuffer; kept only so it can.
        latency_ms: AtomicU32,
    }

    #[glib::object_subclass]
    impl ObjectSubclass for RtpPass {
        const NAME: &'static str = "SentrixRtpPass";
        type Type = super::RtpPass;
        type ParentType = gst::Element;

        fn new() -> Self {
            let sinkpad = gst::Pad::builder(gst::PadDirection::Sink)
                .name("sink")
                .chain_function(|_pad, parent, buffer| {
                    RtpPass::catch_panic_pad_function(
                        parent,
                        || Err(gst::FlowError::Error),
                        |this| this.chain(buffer),
                    )
                })
                .event_function(|pad, parent, event| {
                    RtpPass::catch_panic_pad_function(
                        parent,
                        || false,
                        |this| this.sink_event(pad, event),
                    )
                })
                .flags(gst::PadFlags::PROXY_CAPS | gst::PadFlags::PROXY_ALLOCATION)
                .build();
            let srcpad = gst::Pad::builder(gst::PadDirection::Src)
                .name("src")
                .flags(gst::PadFlags::PROXY_CAPS | gst::PadFlags::PROXY_ALLOCATION)
                .build();
            Self {
                sinkpad,
                srcpad,
                clock: Mutex::new(None),
                latency_ms: AtomicU32::new(0),
            }
        }
    }

    impl RtpPass {
        fn chain(&self, mut buffer: gst::Buffer) -> Result<gst::FlowSuccess, gst::FlowError> {
            let mut header = [0u8; 8];
            if buffer.copy_to_slice(0, &mut header).is_err() {
                return Ok(gst::FlowSuccess::Ok); // shorter than an RTP header: dropped
            }
            let rtp_ts = u32::from_be_bytes([header[4], header[5], header[6], header[7]]);
            let arrival_ns = || {
                buffer
                    .dts()
                    .or(buffer.pts())
                    .or_else(|| self.obj().current_running_time())
                    .map_or(0, gst::ClockTime::nseconds)
            };
            let pts_ns = {
                let mut clock = self.clock.lock().unwrap_or_else(|p| p.into_inner());
                clock
                    .get_or_insert_with(|| RtpClock::new(90_000))
                    .pts_ns(rtp_ts, arrival_ns)
            };
            // rtspsrc's own DTS goes: passed on, it broke the decode order of B-frame
            // streams (compat::h264_with_b_frames); the parsers derive DTS themselves.
            let buffer_mut = buffer.make_mut();
            buffer_mut.set_pts(gst::ClockTime::from_nseconds(pts_ns));
            buffer_mut.set_dts(gst::ClockTime::NONE);
            self.srcpad.push(buffer)
        }

        fn sink_event(&self, pad: &gst::Pad, event: gst::Event) -> bool {
            let restart = match event.view() {
                gst::EventView::Caps(c) => Some(clock_rate(c.caps())),
                gst::EventView::FlushStop(_) | gst::EventView::StreamStart(_) => Some(None),
                _ => None,
            };
            if let Some(rate) = restart {
                let mut clock = self.clock.lock().unwrap_or_else(|p| p.into_inner());
                *clock = rate.map(RtpClock::new);
            }
            gst::Pad::event_default(pad, Some(&*self.obj()), event)
        }
    }

    fn clock_rate(caps: &gst::CapsRef) -> Option<u32> {
        let rate = caps.structure(0)?.get::<i32>("clock-rate").ok()?;
        u32::try_from(rate).ok().filter(|r| *r > 0)
    }

    impl ObjectImpl for RtpPass {
        fn properties() -> &'static [glib::ParamSpec] {
            static PROPERTIES: std::sync::LazyLock<Vec<glib::ParamSpec>> =
                std::sync::LazyLock::new(|| {
                    vec![
                        glib::ParamSpecUInt::builder("latency")
                            .nick("Latency (ms), ignored")
                            .build(),
                    ]
                });
            PROPERTIES.as_ref()
        }

        fn set_property(&self, _id: usize, value: &glib::Value, _pspec: &glib::ParamSpec) {
            self.latency_ms.store(value.get().unwrap_or(0), Relaxed);
        }

        fn property(&self, _id: usize, _pspec: &glib::ParamSpec) -> glib::Value {
            self.latency_ms.load(Relaxed).to_value()
        }

        fn constructed(&self) {
            self.parent_constructed();
            let obj = self.obj();
            for pad in [&self.sinkpad, &self.srcpad] {
                if let Err(e) = obj.add_pad(pad) {
                    gst::error!(gst::CAT_DEFAULT, "cannot add a pad to the RTP pass: {e}");
                }
            }
        }
    }

    impl GstObjectImpl for RtpPass {}

    impl ElementImpl for RtpPass {}
}

glib::wrapper! {
    /// The in-thread replacement for rtpjitterbuffer (see the module docs).
    pub struct RtpPass(ObjectSubclass<imp::RtpPass>) @extends gst::Element, gst::Object;
}

impl RtpPass {
    pub fn new() -> Self {
        glib::Object::new()
    }
}

impl Default for RtpPass {
    fn default() -> Self {
        Self::new()
    }
}

/// Makes rtspsrc's RTP manager use an `RtpPass` instead of a jitterbuffer per stream.
pub fn install(rtspsrc: &gst::Element) {
    rtspsrc.connect("new-manager", false, |args| {
        let manager = args.get(1)?.get::<gst::Element>().ok()?;
        if manager.has_property("buffer-mode") {
            manager.connect("request-jitterbuffer", false, |_| {
                Some(RtpPass::new().upcast::<gst::Element>().to_value())
            });
        }
        None
    });
}

#[cfg(test)]
mod tests {
    use super::RtpClock;

    const S: u64 = 1_000_000_000;

    #[test]
    fn pts_follow_the_rtp_clock_from_the_first_arrival() {
        let mut c = RtpClock::new(90_000);
        assert_eq!(c.pts_ns(1_000, || 5 * S), 5 * S);
        // One frame at 15 fps later, whatever the arrival time.
        assert_eq!(c.pts_ns(7_000, || 9 * S), 5 * S + S / 15);
        // A B-frame steps back.
        assert_eq!(c.pts_ns(4_000, || 9 * S), 5 * S + S / 30);
    }

    #[test]
    fn wrap_around_continues_and_a_jump_rebases_on_arrival() {
        let mut c = RtpClock::new(90_000);
        assert_eq!(c.pts_ns(u32::MAX - 899, || 2 * S), 2 * S);
        assert_eq!(c.pts_ns(8_100, || 3 * S), 2 * S + S / 10);
        // The camera restarts its clock: a new timeline at this arrival.
        assert_eq!(c.pts_ns(2_000_000_000, || 7 * S), 7 * S);
        assert_eq!(c.pts_ns(2_000_090_000, || 7 * S), 8 * S);
    }
}
