//! Ingest against a real RTSP server on loopback: frames arrive complete and in order for
//! H.264 and H.265, over TCP and (from a camera that offers nothing else) UDP, the decode
//! branch delivers frames, and a wrong port, a wrong password or a TCP-only client at a
//! UDP-only camera gives a clear, redacted status error in a homeowner's words and keeps
//! retrying.

use crate::common;

use common::{RtspFixture, wait_until};
use sentrix::ingest::trouble::TroubleKind;
use sentrix::ingest::{
    AccessUnit, CameraState, CameraSupervisor, Codec, IngestOutputs, RtspClient, Transport,
};
use std::time::{Duration, Instant};

fn supervise_with(
    url: &str,
    decode: bool,
    client: RtspClient,
) -> (CameraSupervisor, IngestOutputs) {
    let mut config = common::camera_config(url, decode);
    config.rtsp_client = client;
    CameraSupervisor::spawn(config).expect("supervisor starts")
}

/// Collects access units for `seconds` after the first one arrives.
fn collect(
    outputs: &mut IngestOutputs,
    fixture: &RtspFixture,
    seconds: u64,
) -> (Vec<AccessUnit>, u64) {
    let first = outputs.units.blocking_recv().expect("first access unit");
    let sent_before = fixture.sent_frames() - 1;
    let mut units = vec![first];
    let end = Instant::now() + Duration::from_secs(seconds);
    while Instant::now() < end {
        if let Ok(u) = outputs.units.try_recv() {
            units.push(u);
        } else {
            std::thread::sleep(Duration::from_millis(5));
        }
    }
    // Let what is in flight land, then count what the camera sent in the same window.
    let sent = fixture.sent_frames() - sent_before;
    std::thread::sleep(Duration::from_millis(300));
    while let Ok(u) = outputs.units.try_recv() {
        units.push(u);
    }
    (units, sent)
}

fn check_stream(units: &[AccessUnit], sent: u64, gop: usize) {
    let received = units.len() as u64;
    assert!(
        received * 100 >= sent * 95,
        "only {received} of {sent} sent frames arrived"
    );
    for w in units.windows(2) {
        assert!(
            w[1].pts_ns > w[0].pts_ns,
            "PTS not increasing: {} then {}",
            w[0].pts_ns,
            w[1].pts_ns
        );
        assert_eq!(
            w[0].stream.session, w[1].stream.session,
            "unexpected reconnect"
        );
    }
    // Every GOP starts with a keyframe: never more than `gop` frames without one, and the
    // keyframes come once per GOP.
    let keys: Vec<usize> = units
        .iter()
        .enumerate()
        .filter(|(_, u)| u.keyframe)
        .map(|(i, _)| i)
        .collect();
    assert!(!keys.is_empty(), "no keyframe");
    for pair in keys.windows(2) {
        assert!(
            pair[1] - pair[0] <= gop,
            "GOP of {} frames, expected {gop}",
            pair[1] - pair[0]
        );
    }
    let expected_keys = units.len() / gop;
    assert!(
        keys.len() + 1 >= expected_keys,
        "{} keyframes in {} frames",
        keys.len(),
        units.len()
    );
    let caps = units[0].stream.caps.to_string();
    assert!(
        caps.contains("byte-stream") && caps.contains("alignment=(string)au"),
        "{caps}"
    );
}

#[test]
fn h264_frames_arrive_complete_and_in_order() {
    h264_complete_and_in_order(RtspClient::Gstreamer);
}

#[test]
fn h264_frames_arrive_complete_and_in_order_through_the_native_client() {
    h264_complete_and_in_order(RtspClient::Native);
}

fn h264_complete_and_in_order(client: RtspClient) {
    let fixture = RtspFixture::start(Codec::H264);
    let (sup, mut out) = supervise_with(&fixture.url(), true, client);
    let (units, sent) = collect(&mut out, &fixture, 10);
    check_stream(&units, sent, 25);
    assert_eq!(units[0].stream.codec, Codec::H264);
    assert_eq!((units[0].stream.width, units[0].stream.height), (640, 360));
    // The decode branch delivers letterboxed RGB frames of the asked size, at about 5 fps.
    let frame = out.frames.borrow().clone().expect("a decoded frame");
    assert_eq!(
        (frame.width, frame.height, frame.rgb.size()),
        (320, 320, 320 * 320 * 3)
    );
    let status = sup.status().snapshot();
    assert_eq!(status.state, CameraState::Streaming);
    assert!(
        (40..=70).contains(&status.decoded_frames),
        "decoded {} frames in ~10 s at 5 fps",
        status.decoded_frames
    );
    assert!(
        status.fps > 15.0 && status.kbit_s > 100.0,
        "{}",
        status.summary()
    );
    assert_eq!(
        status.dropped_units,
        0,
        "a drained channel must not drop: {}",
        status.summary()
    );
    sup.stop();
}

#[test]
fn h265_frames_arrive_complete_and_in_order() {
    h265_complete_and_in_order(RtspClient::Gstreamer);
}

#[test]
fn h265_frames_arrive_complete_and_in_order_through_the_native_client() {
    h265_complete_and_in_order(RtspClient::Native);
}

fn h265_complete_and_in_order(client: RtspClient) {
    let fixture = RtspFixture::start(Codec::H265);
    let (sup, mut out) = supervise_with(&fixture.url(), false, client);
    let (units, sent) = collect(&mut out, &fixture, 5);
    check_stream(&units, sent, 25);
    assert_eq!(units[0].stream.codec, Codec::H265);
    assert!(units[0].stream.caps.to_string().starts_with("video/x-h265"));
    sup.stop();
}

#[test]
fn wrong_port_is_reported_and_retried() {
    wrong_port(RtspClient::Gstreamer);
}

#[test]
fn wrong_port_is_reported_and_retried_by_the_native_client() {
    wrong_port(RtspClient::Native);
}

fn wrong_port(client: RtspClient) {
    // A port nothing listens on: bind one, note it, close it.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("rtsp://admin:pw-wrongport@127.0.0.1:{port}/cam");
    let (sup, _out) = supervise_with(&url, false, client);
    let st = sup.status();
    wait_until(Duration::from_secs(10), || st.snapshot().reconnects >= 2).expect("keeps retrying");
    let s = st.snapshot();
    assert!(
        matches!(s.state, CameraState::Backoff | CameraState::Connecting),
        "{:?}",
        s.state
    );
    let err = s.last_error.clone().expect("an error is reported");
    assert!(
        !err.contains("pw-wrongport") && !s.url.contains("pw-wrongport"),
        "{err} {}",
        s.url
    );
    assert!(s.url.contains("admin:***@"), "{}", s.url);
    assert!(
        err.to_lowercase().contains("open") || err.to_lowercase().contains("connect"),
        "unclear error: {err}"
    );
    assert_trouble(&s, TroubleKind::HostUnreachable, "Host unreachable");
    // Backoff doubles: after ~10 s no more than 1+2+4 s worth of attempts.
    assert!(
        s.reconnects <= 5,
        "{} reconnects in ~10 s: no backoff",
        s.reconnects
    );
    sup.stop();
}

#[test]
fn wrong_password_is_reported_redacted_and_retried() {
    wrong_password(RtspClient::Gstreamer);
}

#[test]
fn wrong_password_is_reported_redacted_and_retried_by_the_native_client() {
    wrong_password(RtspClient::Native);
}

fn wrong_password(client: RtspClient) {
    let fixture = RtspFixture::with_spec(small_spec(), Some(("admin", "right-pass")));
    // The right password streams...
    let (good, mut good_out) =
        supervise_with(&fixture.url_with("admin", "right-pass"), false, client);
    good_out
        .units
        .blocking_recv()
        .expect("video with the right password");
    good.stop();
    // ...a wrong one gets a clear 401 error, redacted, and retries.
    let (sup, _out) = supervise_with(&fixture.url_with("admin", "wr0ng-Secret"), false, client);
    let st = sup.status();
    wait_until(Duration::from_secs(10), || st.snapshot().reconnects >= 1)
        .expect("retries after a 401");
    let s = st.snapshot();
    let err = s.last_error.clone().expect("an error is reported");
    eprintln!("401 error: {err}");
    assert!(
        err.contains("refused the credentials for user \"admin\" (401 Unauthorized)"),
        "unclear error: {err}"
    );
    assert!(
        !err.contains("wr0ng-Secret") && !s.summary().contains("wr0ng-Secret"),
        "{err}"
    );
    assert_trouble(&s, TroubleKind::WrongPassword, "Wrong password");
    assert!(s.url.contains("admin:***@"), "{}", s.url);
    assert_ne!(s.state, CameraState::Streaming);
    sup.stop();
}

/// The status names the failure's kind, and its sentence starts with `words`.
fn assert_trouble(s: &sentrix::ingest::CameraStatus, kind: TroubleKind, words: &str) {
    let trouble = s.trouble.clone().expect("a trouble is reported");
    eprintln!("{}: {}", trouble.message, trouble.detail);
    assert_eq!(trouble.kind, kind, "{}", trouble.detail);
    assert!(trouble.message.starts_with(words), "{}", trouble.message);
}

fn small_spec() -> sentrix::ingest::demo::DemoSpec {
    sentrix::ingest::demo::DemoSpec {
        codec: Codec::H264,
        width: 320,
        height: 240,
        fps: 10,
        bitrate_kbps: 300,
        ..Default::default()
    }
}

/// A camera that offers RTP over UDP only streams through both clients with
/// `transport: udp`, and with `auto` (TCP refused with 461, then UDP at once): complete
/// frames in order, one keyframe a second, over the transport the status names.
#[test]
fn a_udp_only_camera_streams_with_transport_udp_and_auto_through_both_clients() {
    for client in [RtspClient::Gstreamer, RtspClient::Native] {
        for transport in [Transport::Udp, Transport::Auto] {
            let fixture = RtspFixture::udp_only(&small_spec().launch_line());
            let mut config = common::camera_config(&fixture.url(), false);
            config.rtsp_client = client;
            config.transport = transport;
            let (sup, mut out) = CameraSupervisor::spawn(config).expect("supervisor starts");
            let (units, sent) = collect(&mut out, &fixture, 3);
            let what = format!("{} over {}", client.as_str(), transport.as_str());
            eprintln!("{what}: {} of {sent} frames", units.len());
            check_stream(&units, sent, 10);
            let s = sup.status().snapshot();
            assert_eq!(s.state, CameraState::Streaming, "{what}");
            let path = format!("{}/udp", client.as_str());
            assert_eq!(s.path.map(|p| p.to_string()), Some(path), "{what}");
            assert!(s.trouble.is_none(), "{what}: {:?}", s.trouble);
            sup.stop();
        }
    }
}

/// With `transport: tcp`, the same camera is reported as offering only UDP, in those
/// words, by both clients, and retried.
#[test]
fn a_udp_only_camera_with_transport_tcp_says_it_offers_only_udp() {
    let fixture = RtspFixture::udp_only(&small_spec().launch_line());
    for client in [RtspClient::Gstreamer, RtspClient::Native] {
        let mut config = common::camera_config(&fixture.url(), false);
        config.rtsp_client = client;
        config.transport = Transport::Tcp;
        let (sup, _out) = CameraSupervisor::spawn(config).expect("supervisor starts");
        let st = sup.status();
        wait_until(Duration::from_secs(10), || st.snapshot().trouble.is_some())
            .expect("the failure is reported");
        let s = st.snapshot();
        assert_trouble(&s, TroubleKind::UdpOnly, "The camera offers only UDP");
        assert_ne!(s.state, CameraState::Streaming);
        sup.stop();
    }
}

fn decoder_in_use(choice: &str, codec: Codec) -> (String, u64) {
    let fixture = RtspFixture::start(codec);
    let mut config = common::camera_config(&fixture.url(), true);
    config.decoder = sentrix::ingest::decoder::DecoderChoice::parse(choice).unwrap();
    let (sup, _out) = CameraSupervisor::spawn(config).unwrap();
    let st = sup.status();
    wait_until(Duration::from_secs(10), || {
        st.snapshot().decoded_frames >= 5
    })
    .unwrap_or_else(|| panic!("{choice}: no decoded frames: {}", st.snapshot().summary()));
    let s = st.snapshot();
    sup.stop();
    (s.decoder.unwrap_or_default(), s.reconnects)
}

#[test]
fn unavailable_decoder_falls_back_to_software() {
    assert_eq!(
        decoder_in_use("nosuchdecoder", Codec::H264),
        ("avdec_h264 (fallback)".to_string(), 0)
    );
    // An element that exists but cannot take the stream (an H.265 decoder for H.264).
    assert_eq!(
        decoder_in_use("avdec_h265", Codec::H264),
        ("avdec_h264 (fallback)".to_string(), 0)
    );
    // No hardware decoder on this machine: auto picks software, without a note.
    assert_eq!(decoder_in_use("auto", Codec::H265).0, "avdec_h265");
}
