//! The built-in demo camera and the in-process RTSP server behind it. A camera whose URL is
//! `demo://` (or `demo://h265?width=1280&height=720&fps=15&bitrate=2000`) is served by an
//! RTSP server on loopback that encodes a moving test pattern (videotestsrc + x264enc or
//! x265enc), and is ingested through exactly the same rtspsrc path as a real camera. Tests
//! and `sentrix-bench ingest` use the same server, with their own launch lines, as a camera
//! they can stop and restart on the same port.

use super::Codec;
use super::tail::PipelineError;
use gstreamer as gst;
use gstreamer::glib;
use gstreamer::prelude::*;
use gstreamer_rtsp_server as rtsp;
use gstreamer_rtsp_server::prelude::*;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::thread::JoinHandle;

pub use crate::config::demo::DemoSpec;

impl DemoSpec {
    /// The RTSP media launch line for this spec (one GOP per second). With rests, an
    /// `identity` named `rest` is where `Mount::move_rest_s` freezes the picture.
    pub fn launch_line(&self) -> String {
        format!(
            "( videotestsrc is-live=true pattern={} ! video/x-raw,format=I420,width={},height={},framerate={}/1 \
             {}! {} ! {} name=pay0 pt=96 config-interval=-1 )",
            self.pattern,
            self.width,
            self.height,
            self.fps,
            match self.rest_s {
                0 => "",
                _ => "! identity name=rest ",
            },
            encoder_description(self.codec, self.fps, self.bitrate_kbps),
            match self.codec {
                Codec::H264 => "rtph264pay",
                Codec::H265 => "rtph265pay",
            }
        )
    }
}

/// A low-latency software encoder with a one-second GOP and no B-frames. As many real
/// cameras do, it codes each picture as four slices, and the payloader repeats SPS/PPS
/// before every IDR slice: ingest reassembles them. One encoder thread (x264's `slices`
/// rather than zerolatency's sliced threads): the demo camera shares the box, and tests
/// that measure their own process's memory must not measure an encoder's thread pool.
pub fn encoder_description(codec: Codec, fps: u32, bitrate_kbps: u32) -> String {
    match codec {
        Codec::H264 => format!(
            "x264enc tune=zerolatency speed-preset=ultrafast threads=1 option-string=slices=4 key-int-max={fps} bitrate={bitrate_kbps}"
        ),
        Codec::H265 => format!(
            "x265enc tune=zerolatency speed-preset=ultrafast option-string=slices=4 key-int-max={fps} bitrate={bitrate_kbps}"
        ),
    }
}

/// The encoder of `encoder_description` as one element.
pub fn make_encoder(
    codec: Codec,
    fps: u32,
    bitrate_kbps: u32,
) -> Result<gst::Element, PipelineError> {
    let name = match codec {
        Codec::H264 => "x264enc",
        Codec::H265 => "x265enc",
    };
    gst::parse::launch(&encoder_description(codec, fps, bitrate_kbps))
        .map_err(|_| PipelineError::MissingElement(name))
}

/// One path served by an `RtspServer`.
#[derive(Clone)]
pub struct Mount {
    /// e.g. "/demo"
    pub path: String,
    /// A gst-rtsp-server launch line; its payloader must be named `pay0`.
    pub launch: String,
    /// Require these Basic credentials (user, password).
    pub credentials: Option<(String, String)>,
    /// Counts access units handed to `pay0`, over every session of this mount.
    pub sent_frames: Arc<AtomicU64>,
    /// (move, rest) seconds: the picture at the element named `rest` is frozen for `rest`
    /// seconds after every `move` seconds (DemoSpec).
    pub move_rest_s: Option<(u32, u32)>,
    /// Offer RTP over UDP only, refusing TCP with 461, as some cameras, encoders and a
    /// popular media player's RTSP server do.
    pub udp_only: bool,
}

impl Mount {
    pub fn new(path: &str, launch: String) -> Self {
        Self {
            path: path.into(),
            launch,
            credentials: None,
            sent_frames: Arc::new(AtomicU64::new(0)),
            move_rest_s: None,
            udp_only: false,
        }
    }
}

/// Makes `element` pass the picture on for `move_s` seconds, then repeat the last one for
/// `rest_s` seconds (with fresh timestamps), by the buffers' time.
fn freeze_in_rests(element: &gst::Element, move_s: u32, rest_s: u32) {
    let Some(pad) = element.static_pad("src") else {
        return;
    };
    let cycle_ns = (move_s as u64 + rest_s as u64) * 1_000_000_000;
    let moving_ns = move_s as u64 * 1_000_000_000;
    let held: std::sync::Mutex<Option<gst::Buffer>> = std::sync::Mutex::new(None);
    pad.add_probe(gst::PadProbeType::BUFFER, move |_, info| {
        let Some(gst::PadProbeData::Buffer(buffer)) = info.data.as_mut() else {
            return gst::PadProbeReturn::Ok;
        };
        let at_ns = buffer.pts().map_or(0, |t| t.nseconds());
        let mut held = held.lock().unwrap_or_else(|p| p.into_inner());
        if cycle_ns == 0 || at_ns % cycle_ns < moving_ns || held.is_none() {
            *held = Some(buffer.clone());
            return gst::PadProbeReturn::Ok;
        }
        if let Some(still) = held.as_ref() {
            let mut frozen = still.copy();
            let meta = frozen.make_mut();
            meta.set_pts(buffer.pts());
            meta.set_dts(buffer.dts());
            meta.set_duration(buffer.duration());
            *buffer = frozen;
        }
        gst::PadProbeReturn::Ok
    });
}

/// An RTSP server on its own thread and GLib main context. Dropping it (or `stop`) closes
/// every client connection and the listening socket.
pub struct RtspServer {
    port: u16,
    main_loop: glib::MainLoop,
    context: glib::MainContext,
    server: rtsp::RTSPServer,
    source: Option<glib::SourceId>,
    thread: Option<JoinHandle<()>>,
}

impl RtspServer {
    /// Serves `mounts` on 127.0.0.1:`port` (0 picks a free port; see `port()`).
    pub fn start(port: u16, mounts: &[Mount]) -> anyhow::Result<Self> {
        super::init_gstreamer()?;
        let server = rtsp::RTSPServer::new();
        server.set_address("127.0.0.1");
        server.set_service(&port.to_string());
        let points = server
            .mount_points()
            .ok_or_else(|| anyhow::anyhow!("RTSP server has no mount points"))?;
        let mut auth: Option<rtsp::RTSPAuth> = None;
        for m in mounts {
            let factory = rtsp::RTSPMediaFactory::new();
            factory.set_launch(&m.launch);
            factory.set_shared(true);
            if m.udp_only {
                factory.set_protocols(rtsp::gst_rtsp::RTSPLowerTrans::UDP);
            }
            let counter = m.sent_frames.clone();
            let move_rest_s = m.move_rest_s;
            factory.connect_media_configure(move |_, media| {
                let element = media.element();
                let bin = element.downcast_ref::<gst::Bin>();
                if let (Some((move_s, rest_s)), Some(rest)) =
                    (move_rest_s, bin.and_then(|b| b.by_name("rest")))
                {
                    freeze_in_rests(&rest, move_s, rest_s);
                }
                let Some(pay) = bin.and_then(|b| b.by_name("pay0")) else {
                    return;
                };
                if let Some(pad) = pay.static_pad("sink") {
                    let counter = counter.clone();
                    pad.add_probe(gst::PadProbeType::BUFFER, move |_, _| {
                        counter.fetch_add(1, Relaxed);
                        gst::PadProbeReturn::Ok
                    });
                }
            });
            if let Some((user, pass)) = &m.credentials {
                let a = auth.get_or_insert_with(rtsp::RTSPAuth::new);
                let role = format!(
                    "user-{}",
                    user.replace(|c: char| !c.is_ascii_alphanumeric(), "_")
                );
                let token = rtsp::RTSPToken::builder()
                    .field(rtsp::RTSP_TOKEN_MEDIA_FACTORY_ROLE, role.as_str())
                    .build();
                a.add_basic(rtsp::RTSPAuth::make_basic(user, pass).as_str(), &token);
                factory.add_role_from_structure(
                    &gst::Structure::builder(role.as_str())
                        .field(rtsp::RTSP_PERM_MEDIA_FACTORY_ACCESS, true)
                        .field(rtsp::RTSP_PERM_MEDIA_FACTORY_CONSTRUCT, true)
                        .build(),
                );
            }
            points.add_factory(&m.path, factory);
        }
        if let Some(a) = &auth {
            server.set_auth(Some(a));
        }
        let context = glib::MainContext::new();
        let source = server.attach(Some(&context)).map_err(|_| {
            anyhow::anyhow!("RTSP server cannot listen on 127.0.0.1:{port} (port in use?)")
        })?;
        let bound = u16::try_from(server.bound_port())
            .map_err(|_| anyhow::anyhow!("RTSP server did not report its port"))?;
        let main_loop = glib::MainLoop::new(Some(&context), false);
        // quit() before the loop runs is lost (run() would then never return), so wait
        // until the loop dispatches this first source before handing the server out.
        let (running_tx, running_rx) = std::sync::mpsc::channel::<()>();
        context.invoke(move || {
            let _ = running_tx.send(());
        });
        let thread = {
            let (context, main_loop) = (context.clone(), main_loop.clone());
            std::thread::Builder::new()
                .name("rtsp-server".into())
                .spawn(move || {
                    // with_thread_default only fails if another thread owns the context.
                    let _ = context.with_thread_default(|| main_loop.run());
                })?
        };
        if running_rx
            .recv_timeout(std::time::Duration::from_secs(10))
            .is_err()
        {
            anyhow::bail!("RTSP server loop did not start");
        }
        Ok(Self {
            port: bound,
            main_loop,
            context,
            server,
            source: Some(source),
            thread: Some(thread),
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn url(&self, path: &str) -> String {
        format!("rtsp://127.0.0.1:{}{}", self.port, path)
    }

    /// Closes every client connection and the listening socket, and ends the thread.
    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        let Some(source) = self.source.take() else {
            return;
        };
        self.server
            .client_filter(Some(&mut |_, _| rtsp::RTSPFilterResult::Remove));
        if let Some(s) = self.context.find_source_by_id(&source) {
            s.destroy();
        }
        // start() returned only once the loop ran, so this quit cannot be lost.
        self.main_loop.quit();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for RtspServer {
    fn drop(&mut self) {
        self.shutdown();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Stopping a server right after starting it must not hang (the quit used to be lost
    /// when it came before the server's loop was running).
    #[test]
    fn a_server_stopped_at_once_stops() {
        crate::ingest::init_gstreamer().unwrap();
        let mount = Mount::new("/cam", DemoSpec::default().launch_line());
        let started = std::time::Instant::now();
        for _ in 0..50 {
            RtspServer::start(0, std::slice::from_ref(&mount))
                .unwrap()
                .stop();
        }
        assert!(started.elapsed() < std::time::Duration::from_secs(20));
    }
}
