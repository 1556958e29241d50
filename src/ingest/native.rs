//! The native RTSP client (`cameras[].rtsp_client: native`, and `auto` for rtsp://):
//! `retina` speaks RTSP, reads the RTP stream (interleaved in the TCP connection, or on
//! UDP ports of its own for `transport: udp`) and joins packets into access units, all in
//! one thread of its own; whole pictures then enter the pipeline through an appsrc, in
//! front of the same parse ! tee tail as rtspsrc's path:
//!
//! ```text
//!  retina (thread "rtsp-native": DESCRIBE, SETUP tcp|udp, PLAY, depacketize, Annex B with
//!          SPS/PPS before every keyframe)
//!    ─push─> appsrc ! h26Xparse ! ... (pipeline::build_tail)
//! ```
//!
//! Why: rtspsrc reads each interleaved packet with several small reads and pushes it
//! through rtpbin, the depayloader and our assembler one by one (`perf`: most of remux-only
//! ingest's CPU); retina reads the socket in large chunks and hands over one buffer per
//! picture, so GStreamer only sees pictures (15 a second, not hundreds of packets).
//!
//! The thread only ever holds weak references to the pipeline: when the supervisor tears
//! the pipeline down, the thread notices within `ALIVE_CHECK` and ends (retina sends
//! TEARDOWN). Failures go to the pipeline's bus as element errors worded like rtspsrc's,
//! so the supervisor explains and retries them the same way. A handshake the client
//! cannot complete for reasons of its own (an SDP or answer retina does not take) is
//! posted as `CoreError::NotImplemented`: under `rtsp_client: auto` the supervisor then
//! reads the camera with rtspsrc (`cannot_set_up`).

use super::Codec;
use super::rtppass::RtpClock;
use super::tail::{DecodeSpec, Outputs, PipelineError};
use crate::base::redact::CameraUrl;
use futures_util::StreamExt;
use gstreamer as gst;
use gstreamer::prelude::*;
use gstreamer_app as gst_app;
use retina::client::{self, PlayOptions, SessionOptions, SetupOptions, Transport};
use retina::codec::{CodecItem, FrameFormat, VideoFrame};
use std::time::Duration;

/// How often the client checks that its pipeline still exists.
const ALIVE_CHECK: Duration = Duration::from_millis(250);
/// Longest wait for each of DESCRIBE, SETUP and PLAY.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// With this much queued in the appsrc (a stalled tail), new pictures are dropped up to the
/// next keyframe instead of growing memory: 2 s of a 16 Mbit/s camera. (appsrc's own
/// `leaky-type` needs GStreamer 1.20; JetPack 5 has 1.16.)
const QUEUE_MAX_BYTES: u64 = 4 << 20;

/// Adds the appsrc to `pipeline` and starts the client thread, which builds the tail once
/// the camera has said which codec it sends.
pub fn build(
    pipeline: &gst::Pipeline,
    url: &CameraUrl,
    decode: Option<DecodeSpec>,
    out: Outputs,
) -> Result<(), PipelineError> {
    let target = Target::parse(url, out.transport)?;
    let src = gst_app::AppSrc::builder()
        .name("native-rtsp")
        .format(gst::Format::Time)
        .is_live(true)
        .build();
    pipeline.add(&src).map_err(build_err)?;
    let link = Link {
        src: src.downgrade(),
        pipeline: pipeline.downgrade(),
        decode,
        out,
    };
    std::thread::Builder::new()
        .name("rtsp-native".into())
        .spawn(move || run_thread(target, link))
        .map_err(build_err)?;
    Ok(())
}

fn build_err(e: impl std::fmt::Display) -> PipelineError {
    PipelineError::Build(e.to_string())
}

/// The camera's URL without credentials (retina takes them apart), the credentials, and
/// how RTP is to travel.
struct Target {
    url: url::Url,
    creds: Option<client::Credentials>,
    transport: super::Transport,
}

impl Target {
    fn parse(url: &CameraUrl, transport: super::Transport) -> Result<Self, PipelineError> {
        let bad = |what: &str| PipelineError::Build(format!("camera URL: {what}"));
        let mut parsed = url::Url::parse(url.expose_secret()).map_err(|_| bad("not a URL"))?;
        if parsed.scheme() != "rtsp" {
            return Err(bad(
                "the native RTSP client speaks rtsp:// only (use rtsp_client: gstreamer for rtsps://)",
            ));
        }
        let decode = |s: &str| {
            percent_encoding::percent_decode_str(s)
                .decode_utf8()
                .map(|c| c.into_owned())
                .map_err(|_| bad("user or password is not UTF-8"))
        };
        let creds = match parsed.username() {
            "" => None,
            user => Some(client::Credentials {
                username: decode(user)?,
                password: decode(parsed.password().unwrap_or(""))?,
            }),
        };
        parsed
            .set_username("")
            .and_then(|_| parsed.set_password(None))
            .map_err(|_| bad("cannot take the credentials out"))?;
        Ok(Self {
            url: parsed,
            creds,
            transport,
        })
    }
}

/// What the client thread knows of its pipeline: weak references only.
struct Link {
    src: gst::glib::WeakRef<gst_app::AppSrc>,
    pipeline: gst::glib::WeakRef<gst::Pipeline>,
    decode: Option<DecodeSpec>,
    out: Outputs,
}

impl Link {
    /// Whether the pipeline this client feeds has been dropped (the supervisor stopped it).
    fn pipeline_gone(&self) -> bool {
        self.pipeline.upgrade().is_none()
    }
}

/// Why the client stopped, for the bus.
struct Failure {
    not_authorized: bool,
    /// The handshake failed for a reason rtspsrc might not share (not a refusal, a
    /// missing path, a lost connection or a timeout).
    cannot_set_up: bool,
    text: String,
}

/// Whether a bus error is the native client saying it cannot set this camera up.
pub fn cannot_set_up(src: Option<&gst::Object>, error: &gst::glib::Error) -> bool {
    src.is_some_and(|s| s.name() == "native-rtsp") && error.matches(gst::CoreError::NotImplemented)
}

fn run_thread(target: Target, link: Link) {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            return post(
                &link,
                failure(format!("no runtime for the RTSP client: {e}")),
            );
        }
    };
    match runtime.block_on(stream(target, &link)) {
        Ok(true) => {
            if let Some(src) = link.src.upgrade() {
                let _ = src.end_of_stream();
            }
        }
        Ok(false) => {} // the pipeline is gone: nobody to tell
        Err(f) => post(&link, f),
    }
}

fn failure(text: String) -> Failure {
    Failure {
        not_authorized: false,
        cannot_set_up: false,
        text,
    }
}

/// Posts the failure as the error's message itself (not as debug detail, which the
/// explainer trims to what follows a GStreamer source location's "):"), so the
/// explainer reads "Unsupported Transport (461): …" whole.
fn post(link: &Link, f: Failure) {
    let Some(src) = link.src.upgrade() else {
        return;
    };
    if f.not_authorized {
        gst::element_error!(src, gst::ResourceError::NotAuthorized, ("{}", f.text));
    } else if f.cannot_set_up {
        gst::element_error!(src, gst::CoreError::NotImplemented, ("{}", f.text));
    } else {
        gst::element_error!(src, gst::ResourceError::Read, ("{}", f.text));
    }
}

/// retina's error, first line only (the rest is connection context), worded so the
/// supervisor's explainer recognises refused credentials, missing paths and lost links.
fn explain(e: retina::Error) -> Failure {
    let full = e.to_string();
    let first = full.lines().next().unwrap_or("").trim().to_string();
    let not_authorized = first.starts_with("401");
    let refused = not_authorized || first.starts_with("404") || first.starts_with("461");
    // What the native client may fail at where rtspsrc would not: an answer it cannot
    // parse, a feature it lacks, a request the camera rejects (other than below).
    let cannot_set_up = ["RTSP framing error", "Unsupported", "Invalid argument"]
        .iter()
        .any(|p| first.starts_with(p))
        || first.split(' ').nth(1) == Some("response");
    let text = if not_authorized {
        format!("Unauthorized (401): {first}")
    } else if first.starts_with("404") {
        format!("Not Found (404): {first}")
    } else if first.starts_with("461") {
        format!("Unsupported Transport (461): {first}")
    } else if first.starts_with("Unable to connect") {
        format!("Failed to connect: {first}")
    } else if first.starts_with("Error reading") || first.starts_with("Error receiving") {
        format!("Could not read from the camera: {first}")
    } else if first == "Timeout" {
        "Could not receive an answer from the camera: timed out".to_string()
    } else {
        first
    };
    Failure {
        not_authorized,
        cannot_set_up: cannot_set_up && !refused,
        text,
    }
}

/// An error while streaming: as `explain`, but never a reason to change clients (only a
/// handshake can fail for want of something the native client does not do).
fn explain_streaming(e: retina::Error) -> Failure {
    Failure {
        cannot_set_up: false,
        ..explain(e)
    }
}

/// Runs one RTSP session. Ok(true): the camera ended the stream; Ok(false): the pipeline
/// was torn down.
async fn stream(target: Target, link: &Link) -> Result<bool, Failure> {
    let options = SessionOptions::default()
        .creds(target.creds)
        .user_agent(format!("sentrix/{}", env!("CARGO_PKG_VERSION")));
    let Some(mut session) = guarded(link, client::Session::describe(target.url, options)).await?
    else {
        return Ok(false);
    };
    for offered in session.streams() {
        link.out.status.note_offered_stream(offered.media());
    }
    let (index, codec, clock_rate) = pick_video(session.streams())?;
    let transport = match target.transport {
        super::Transport::Udp => Transport::Udp(Default::default()),
        super::Transport::Tcp | super::Transport::Auto => Transport::Tcp(Default::default()),
    };
    let setup = SetupOptions::default()
        .transport(transport)
        .frame_format(FrameFormat::SIMPLE);
    if guarded(link, session.setup(index, setup)).await?.is_none() {
        return Ok(false);
    }
    let Some(playing) = guarded(link, session.play(PlayOptions::default())).await? else {
        return Ok(false);
    };
    let mut frames = playing.demuxed().map_err(explain_streaming)?;
    let Some(src) = attach_tail(link, codec)? else {
        return Ok(false);
    };
    let mut pusher = Pusher {
        clock: RtpClock::new(clock_rate),
        skipping: false,
    };
    let mut alive = tokio::time::interval(ALIVE_CHECK);
    loop {
        tokio::select! {
            item = frames.next() => match item {
                None => return Ok(true),
                Some(Err(e)) => return Err(explain_streaming(e)),
                Some(Ok(CodecItem::VideoFrame(frame))) => {
                    if pusher.push(&src, frame, &link.out).is_err() {
                        return Ok(false); // flushing: the pipeline is stopping
                    }
                }
                Some(Ok(_)) => {} // RTCP and the like
            },
            _ = alive.tick() => {
                if link.pipeline_gone() {
                    return Ok(false);
                }
            }
        }
    }
}

/// Runs one handshake step within `HANDSHAKE_TIMEOUT`, or until the pipeline is gone
/// (Ok(None)).
async fn guarded<T>(
    link: &Link,
    step: impl std::future::Future<Output = Result<T, retina::Error>>,
) -> Result<Option<T>, Failure> {
    let gone = async {
        loop {
            tokio::time::sleep(ALIVE_CHECK).await;
            if link.pipeline_gone() {
                return;
            }
        }
    };
    tokio::select! {
        r = tokio::time::timeout(HANDSHAKE_TIMEOUT, step) => match r {
            Ok(r) => r.map(Some).map_err(explain),
            Err(_) => Err(failure(format!(
                "Could not receive an answer from the camera within {} s",
                HANDSHAKE_TIMEOUT.as_secs()
            ))),
        },
        _ = gone => Ok(None),
    }
}

/// The first video stream, if it is H.264 or H.265: its index, codec and RTP clock rate.
fn pick_video(streams: &[client::Stream]) -> Result<(usize, Codec, u32), Failure> {
    let (index, video) = streams
        .iter()
        .enumerate()
        .find(|(_, s)| s.media() == "video")
        .ok_or_else(|| failure("the camera offers no video stream".into()))?;
    let codec = match video.encoding_name().to_ascii_lowercase().as_str() {
        "h264" => Codec::H264,
        "h265" => Codec::H265,
        other => {
            return Err(failure(format!(
                "camera sends {other}, only H.264 and H.265 are supported"
            )));
        }
    };
    Ok((index, codec, video.clock_rate_hz()))
}

/// Gives the appsrc its caps and links the parse ! tee tail after it. None: the pipeline
/// is gone.
fn attach_tail(link: &Link, codec: Codec) -> Result<Option<gst_app::AppSrc>, Failure> {
    let (Some(src), Some(pipeline)) = (link.src.upgrade(), link.pipeline.upgrade()) else {
        return Ok(None);
    };
    src.set_caps(Some(&super::tail::access_unit_caps(codec)));
    let pad = src
        .static_pad("src")
        .ok_or_else(|| failure("appsrc has no src pad".into()))?;
    super::tail::build_tail(&pipeline, &pad, codec, link.decode, link.out.clone(), true)
        .map_err(|e| failure(e.to_string()))?;
    Ok(Some(src))
}

/// Stamps pictures and feeds them to the appsrc.
struct Pusher {
    clock: RtpClock,
    /// Dropping pictures until the next keyframe, after the queue overflowed.
    skipping: bool,
}

impl Pusher {
    /// One picture into the appsrc, stamped from its RTP timestamp like rtspsrc's packets
    /// (`RtpClock`: arrival of the first, the camera's clock after, rebased on a jump).
    fn push(
        &mut self,
        src: &gst_app::AppSrc,
        frame: VideoFrame,
        out: &Outputs,
    ) -> Result<(), gst::FlowError> {
        let rtp_ts = frame.timestamp().timestamp() as u32;
        let pts_ns = self.clock.pts_ns(rtp_ts, || {
            src.current_running_time().map_or(0, |t| t.nseconds())
        });
        let keyframe = frame.is_random_access_point();
        let full = src.current_level_bytes() > QUEUE_MAX_BYTES;
        self.skipping = full || (self.skipping && !keyframe);
        if self.skipping {
            let dropped = &out.status.counters().dropped_units;
            dropped.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            return Ok(());
        }
        let lost = frame.loss() > 0;
        let mut buffer = gst::Buffer::from_mut_slice(frame.into_data());
        if let Some(b) = buffer.get_mut() {
            b.set_pts(gst::ClockTime::from_nseconds(pts_ns));
            if !keyframe {
                b.set_flags(gst::BufferFlags::DELTA_UNIT);
            }
            if lost {
                b.set_flags(gst::BufferFlags::DISCONT);
            }
        }
        src.push_buffer(buffer).map(|_| ())
    }
}

#[cfg(test)]
mod tests {
    use super::Target;
    use crate::base::redact::CameraUrl;

    #[test]
    fn credentials_leave_the_url_percent_decoded() {
        let url = CameraUrl::parse("rtsp://ad%40min:p%3Ass%20w@cam.lan:8554/live?ch=1").unwrap();
        let target = Target::parse(&url, crate::ingest::Transport::Tcp)
            .ok()
            .unwrap();
        assert_eq!(target.url.as_str(), "rtsp://cam.lan:8554/live?ch=1");
        let creds = target.creds.unwrap();
        assert_eq!(
            (creds.username.as_str(), creds.password.as_str()),
            ("ad@min", "p:ss w")
        );
        let bare = Target::parse(
            &CameraUrl::parse("rtsp://cam.lan/live").unwrap(),
            crate::ingest::Transport::Tcp,
        )
        .ok()
        .unwrap();
        assert!(bare.creds.is_none());
    }

    #[test]
    fn rtsps_is_refused_with_the_way_out() {
        let url = CameraUrl::parse("rtsps://admin:secret@cam.lan/live").unwrap();
        let err = Target::parse(&url, crate::ingest::Transport::Tcp)
            .err()
            .unwrap()
            .to_string();
        assert!(
            err.contains("rtsp_client: gstreamer") && !err.contains("secret"),
            "{err}"
        );
    }
}
