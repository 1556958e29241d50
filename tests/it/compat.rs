//! Camera compatibility, through `sentrix run` end to end: an RTSP server sends each
//! stream shape that real cameras and restreamers send, of a still picture, and sentrix
//! must
//! - ingest one access unit per picture (its frame count follows what the server sent),
//! - gate at least 99 % of the still picture's frames as motionless and raise no event,
//! - record a manual trigger's clip that ffmpeg decodes without a complaint, with as many
//!   frames as the index says.
//!
//! The shapes: x264 with sliced threads (four slices a picture) and SPS/PPS repeated
//! before every IDR slice (`config-interval=-1`); the same slices with parameter sets in
//! the SDP only and no access unit delimiters; B-frames (`bframes=2`, so DTS and PTS differ); H.265 with four slices a
//! picture and VPS/SPS/PPS repeated; a resolution change mid-stream; a camera that
//! also offers an audio stream; and a camera that offers RTP over UDP only (whose live
//! view must also play). Every shape runs through both RTSP clients (rtspsrc and the
//! native one).

use crate::common::run::{spawn_run_with, stop, wait_for};
use crate::common::{self, RtspFixture};
use sentrix::ingest::RtspClient;
use sentrix::store::{ClipKind, Store, StoreConfig};
use std::path::Path;
use std::sync::mpsc;
use std::time::{Duration, Instant};

const FPS: u64 = 15;
const STILL: &str = "videotestsrc is-live=true pattern=smpte100 ! video/x-raw,format=I420,width=640,height=360,framerate=15/1";
const X264_SLICED: &str = "x264enc tune=zerolatency speed-preset=ultrafast sliced-threads=true threads=4 key-int-max=15 bitrate=800";

fn launch(encoder: &str, payloader: &str) -> String {
    format!("( {STILL} ! {encoder} ! {payloader} name=pay0 pt=96 )")
}

/// What one run of a shape showed.
struct Seen {
    /// The last status line of the camera.
    status: String,
    /// Access units sentrix ingested, and what the server had sent by then.
    ingested: u64,
    sent: u64,
}

fn field<'a>(line: &'a str, key: &str) -> Option<&'a str> {
    line.split(&format!(" {key}="))
        .nth(1)?
        .split_whitespace()
        .next()
}

/// Runs sentrix on `launch` for about 16 s: a manual trigger after 8 s; returns what the
/// status lines showed and leaves the store in `dir`.
fn run_shape(dir: &Path, launch: &str, client: RtspClient) -> Seen {
    run_camera(dir, &RtspFixture::with_launch(launch), client, "", false)
}

/// As `run_shape`, with `fixture` as the camera, `extra` lines in its config, and when
/// `live`, its live view watched for 3 s once it streams (it must play cleanly).
fn run_camera(
    dir: &Path,
    fixture: &RtspFixture,
    client: RtspClient,
    extra: &str,
    live: bool,
) -> Seen {
    let camera = format!(
        "  - id: cam\n    url: {}\n    rtsp_client: {}\n{extra}",
        fixture.url(),
        client.as_str()
    );
    let config = common::run::write_config_with(dir, &camera);
    if live {
        assert!(common::run::add_admin(&config).status.success());
    }
    let (child, rx) = spawn_run_with(&config, &["--status-interval", "1"], &[]);
    let mut log = Vec::new();
    let base = live.then(|| common::run::dashboard_base(&rx, &mut log));
    wait_for(&rx, "cam: streaming", &mut log)
        .unwrap_or_else(|| panic!("never streamed:\n{}", log.join("\n")));
    if let Some(base) = base {
        let cert = std::fs::read(dir.join("certs/server.crt")).unwrap();
        let path = dir.join("live.mp4");
        let rt = tokio::runtime::Runtime::new().unwrap();
        let fragments = rt.block_on(crate::live_view::assert_live_plays(
            "cam", &base, &cert, &path, 3,
        ));
        assert!(fragments >= 20, "{fragments} live fragments in 3 s");
    }
    let started = Instant::now();
    let mut triggered = false;
    let mut last = String::new();
    while started.elapsed() < Duration::from_secs(16) {
        if !triggered && started.elapsed() > Duration::from_secs(8) {
            // SAFETY: signalling our own child.
            unsafe { libc::kill(child.id() as i32, libc::SIGUSR1) };
            triggered = true;
        }
        if let Some(line) = next_status(&rx, &mut log) {
            last = line;
        }
    }
    let sent = fixture.sent_frames();
    assert!(stop(child), "no clean stop:\n{}", log.join("\n"));
    let ingested = field(&last, "frames")
        .and_then(|f| f.parse().ok())
        .unwrap_or(0);
    Seen {
        status: last,
        ingested,
        sent,
    }
}

fn next_status(rx: &mpsc::Receiver<String>, log: &mut Vec<String>) -> Option<String> {
    let line = rx.recv_timeout(Duration::from_millis(500)).ok()?;
    log.push(line.clone());
    line.contains("cam: streaming").then_some(line)
}

/// The checks every shape must pass; `label` names the shape in failures.
fn assert_handled(label: &str, dir: &Path, seen: &Seen) {
    let status = &seen.status;
    let gated: f64 = field(status, "gated")
        .and_then(|g| g.trim_end_matches('%').parse().ok())
        .unwrap_or_else(|| panic!("{label}: no gated share in {status:?}"));
    assert!(gated >= 99.0, "{label}: only {gated}% gated: {status}");
    assert_eq!(field(status, "events"), Some("0"), "{label}: {status}");
    // One unit per picture: never more than the server sent, and at most 2 s behind it.
    assert!(
        seen.ingested <= seen.sent && seen.ingested + 2 * FPS >= seen.sent,
        "{label}: ingested {} units of {} pictures sent: {status}",
        seen.ingested,
        seen.sent
    );
    let config = sentrix::config::Config::load(&dir.join("surveillance.yml")).unwrap();
    let (store, _) = Store::open(
        StoreConfig::from_config(&config),
        sentrix::app::store_setup::load_key(&config).unwrap(),
    )
    .unwrap();
    let events = store.events(&Default::default()).unwrap();
    assert!(
        events.iter().all(|e| e.label == "manual"),
        "{label}: an event other than the trigger: {events:#?}"
    );
    let clips = store.clips(None, 0, i64::MAX).unwrap();
    assert!(!clips.is_empty(), "{label}: the trigger recorded no clip");
    for clip in clips.iter().filter(|c| c.kind == ClipKind::Event) {
        let plain = decrypt(&store, clip.id, dir);
        common::assert_decodes_cleanly(&plain);
        assert_eq!(
            common::frames_in(&plain),
            clip.frames as u64,
            "{label}: {}",
            plain.display()
        );
    }
}

fn decrypt(store: &Store, id: i64, dir: &Path) -> std::path::PathBuf {
    let reader = store.open_clip(id).unwrap();
    let path = dir.join(format!("clip{id}.mp4"));
    std::fs::write(&path, reader.read_at(0, reader.plain_len()).unwrap()).unwrap();
    path
}

/// Runs the shape through rtspsrc and checks it; returns the store's directory.
fn check(label: &str, launch: &str) -> (tempfile::TempDir, Seen) {
    check_with(label, launch, RtspClient::Gstreamer)
}

fn check_with(label: &str, launch: &str, client: RtspClient) -> (tempfile::TempDir, Seen) {
    let dir = common::temp_dir();
    let seen = run_shape(dir.path(), launch, client);
    assert_handled(label, dir.path(), &seen);
    (dir, seen)
}

/// The (pts, dts) of every video packet of `path`, in file order.
fn packet_times(path: &Path) -> Vec<(i64, i64)> {
    let out = std::process::Command::new("ffprobe")
        .args(["-v", "error", "-select_streams", "v:0", "-show_entries"])
        .args(["packet=pts,dts", "-of", "csv=p=0"])
        .arg(path)
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| {
            let (pts, dts) = l.trim_end_matches(',').split_once(',')?;
            Some((pts.parse().ok()?, dts.parse().ok()?))
        })
        .collect()
}

fn event_clips(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut clips: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "mp4"))
        .collect();
    clips.sort();
    clips
}

#[test]
fn h264_slices_with_parameter_sets_repeated_between_them() {
    let (_dir, seen) = check(
        "sliced, config-interval=-1",
        &launch(X264_SLICED, "rtph264pay config-interval=-1"),
    );
    // The fixture really sends the shape: sentrix had pictures to repair.
    assert!(field(&seen.status, "repaired").is_some(), "{}", seen.status);
}

#[test]
fn h264_slices_with_parameter_sets_repeated_between_them_through_the_native_client() {
    // retina joins the slices itself: nothing reaches our assembler to repair.
    let _ = check_with(
        "native: sliced, config-interval=-1",
        &launch(X264_SLICED, "rtph264pay config-interval=-1"),
        RtspClient::Native,
    );
}

#[test]
fn h264_slices_with_parameter_sets_in_the_sdp_only() {
    sdp_only(RtspClient::Gstreamer);
}

#[test]
fn h264_slices_with_parameter_sets_in_the_sdp_only_through_the_native_client() {
    sdp_only(RtspClient::Native);
}

fn sdp_only(client: RtspClient) {
    // And without access unit delimiters: pictures end at the RTP marker alone.
    let encoder = format!("{X264_SLICED} aud=false");
    let _ = check_with(
        "sliced, SDP-only, no AUD",
        &launch(&encoder, "rtph264pay config-interval=0"),
        client,
    );
}

#[test]
fn h264_with_b_frames() {
    b_frames(RtspClient::Gstreamer);
}

#[test]
fn h264_with_b_frames_through_the_native_client() {
    b_frames(RtspClient::Native);
}

fn b_frames(client: RtspClient) {
    let encoder = "x264enc speed-preset=veryfast bframes=2 b-adapt=false key-int-max=15 bitrate=800 ! video/x-h264,profile=main";
    let (dir, _) = check_with(
        "B-frames",
        &launch(encoder, "rtph264pay config-interval=-1"),
        client,
    );
    // The clip keeps the camera's decode order: decode times increase, never pass the
    // presentation times, and the B-frames are presented before the P-frames decoded
    // ahead of them (composition offsets, not DTS = PTS).
    for clip in event_clips(dir.path()) {
        let times = packet_times(&clip);
        assert!(times.len() > 20, "{}: {times:?}", clip.display());
        assert!(times.windows(2).all(|w| w[1].1 > w[0].1), "{times:?}");
        assert!(times.iter().all(|(pts, dts)| dts <= pts), "{times:?}");
        assert!(
            times.windows(2).any(|w| w[1].0 < w[0].0),
            "no B-frames: {times:?}"
        );
    }
}

#[test]
fn h265_slices_with_parameter_sets_repeated() {
    h265_sliced(RtspClient::Gstreamer);
}

#[test]
fn h265_slices_with_parameter_sets_repeated_through_the_native_client() {
    h265_sliced(RtspClient::Native);
}

fn h265_sliced(client: RtspClient) {
    let encoder = "x265enc tune=zerolatency speed-preset=ultrafast key-int-max=15 bitrate=800 option-string=slices=4";
    let _ = check_with(
        "H.265 sliced",
        &launch(encoder, "rtph265pay config-interval=-1"),
        client,
    );
}

#[test]
fn a_resolution_change_mid_stream() {
    resolution_change(RtspClient::Gstreamer);
}

#[test]
fn a_resolution_change_mid_stream_through_the_native_client() {
    resolution_change(RtspClient::Native);
}

fn resolution_change(client: RtspClient) {
    // Five seconds at 640x360, then 480x270 for good: the encoder starts a new stream
    // (new SPS and an IDR) in the same RTSP session.
    let launch = "( concat name=c ! clocksync ! x264enc tune=zerolatency speed-preset=ultrafast key-int-max=15 bitrate=800 \
         ! rtph264pay name=pay0 pt=96 config-interval=-1 \
         videotestsrc pattern=smpte100 num-buffers=75 ! video/x-raw,format=I420,width=640,height=360,framerate=15/1 ! c. \
         videotestsrc pattern=smpte100 ! video/x-raw,format=I420,width=480,height=270,framerate=15/1 ! c. )";
    let _ = check_with("resolution change", launch, client);
}

#[test]
fn a_camera_that_offers_only_udp() {
    udp_only(RtspClient::Gstreamer);
}

#[test]
fn a_camera_that_offers_only_udp_through_the_native_client() {
    udp_only(RtspClient::Native);
}

/// A camera that refuses RTP over TCP (461) and offers UDP only, with the default
/// `transport: auto`: sentrix moves to UDP at once, the live view plays, and the manual
/// clip decodes cleanly.
fn udp_only(client: RtspClient) {
    let dir = common::temp_dir();
    let fixture = RtspFixture::udp_only(&launch(X264_SLICED, "rtph264pay config-interval=-1"));
    let seen = run_camera(dir.path(), &fixture, client, "    transport: auto\n", true);
    assert_handled("UDP only", dir.path(), &seen);
    let via = format!("via={}/udp", client.as_str());
    assert!(seen.status.contains(&via), "{via}: {}", seen.status);
}

/// `cameras[].password: {file: …}` reaches a camera that requires it: the URL names the
/// user only, the camera streams, and the password is nowhere in the log.
#[test]
fn a_camera_password_from_a_file_reaches_the_camera() {
    let dir = common::temp_dir();
    let spec = sentrix::ingest::demo::DemoSpec {
        width: 320,
        height: 240,
        fps: 10,
        bitrate_kbps: 300,
        ..Default::default()
    };
    let fixture = RtspFixture::with_spec(spec, Some(("admin", "s3cret-from-file")));
    std::fs::write(dir.path().join("cam.pass"), "s3cret-from-file\n").unwrap();
    let camera = format!(
        "  - id: cam\n    url: rtsp://admin@127.0.0.1:{}/cam\n    password: {{file: cam.pass}}\n",
        fixture.port
    );
    let config = common::run::write_config_with(dir.path(), &camera);
    let (child, rx) = spawn_run_with(&config, &["--status-interval", "1"], &[]);
    let mut log = Vec::new();
    let streamed = wait_for(&rx, "cam: streaming", &mut log).is_some();
    assert!(stop(child), "no clean stop:\n{}", log.join("\n"));
    log.extend(rx.try_iter());
    assert!(streamed, "never streamed:\n{}", log.join("\n"));
    assert!(!log.join("\n").contains("s3cret-from-file"));
}

#[test]
fn a_camera_that_also_sends_audio() {
    audio_beside(RtspClient::Gstreamer);
}

#[test]
fn a_camera_that_also_sends_audio_through_the_native_client() {
    audio_beside(RtspClient::Native);
}

fn audio_beside(client: RtspClient) {
    // G.711 A-law on a second stream, as most cameras with a microphone offer it: only
    // the video is set up and recorded.
    let launch = format!(
        "( {STILL} ! {X264_SLICED} ! rtph264pay name=pay0 pt=96 config-interval=-1 \
         audiotestsrc is-live=true ! audio/x-raw,rate=8000,channels=1 ! alawenc ! rtppcmapay name=pay1 pt=8 )"
    );
    let _ = check_with("video and audio", &launch, client);
}
