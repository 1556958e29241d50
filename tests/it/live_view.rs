//! The live view's fMP4 WebSocket (`/api/cameras/{id}/live.mp4`) through real TLS,
//! against `sentrix run` with its demo camera (sliced pictures, parameter sets repeated):
//! - the upgrade needs auth, and a foreign `Origin` is refused;
//! - a new viewer gets the stream's description, the init segment, then fragments that
//!   start with a keyframe; two viewers get the same fragments, byte for byte;
//! - what a viewer receives is a clean MP4, H.264 (`avc1`) and H.265 (`hvc1`) alike:
//!   ffmpeg decodes every picture without a word;
//! - a viewer that reads nothing for 10 s holds up neither the other viewer nor ingest
//!   and the recorder (frame counts keep rising, nothing dropped); /metrics counts the
//!   viewers and reports their latency.

use crate::common;
use crate::common::run::{ADMIN_PASSWORD, add_admin, spawn_run_with, stop, wait_for};
use futures_util::{SinkExt, StreamExt};
use sentrix::media::boxes::{TrackDefaults, header, parse_moof};
use std::time::{Duration, Instant};
use tokio_tungstenite::tungstenite::{Message, client::IntoClientRequest};

type Socket = tokio_tungstenite::WebSocketStream<common::tls::Stream>;

/// Opens the live WebSocket of the demo camera as alice, with `origin` if given; the HTTP
/// status of a refusal.
async fn open(port: u16, cert: &[u8], origin: Option<&str>, auth: bool) -> Result<Socket, u16> {
    open_camera("demo", port, cert, origin, auth).await
}

async fn open_camera(
    camera: &str,
    port: u16,
    cert: &[u8],
    origin: Option<&str>,
    auth: bool,
) -> Result<Socket, u16> {
    let tls = common::tls::connector(cert);
    let stream = common::tls::connect_from(&tls, port, [127, 0, 0, 1])
        .await
        .unwrap();
    let url = format!("wss://localhost:{port}/api/cameras/{camera}/live.mp4");
    let mut req = url.into_client_request().unwrap();
    if let Some(o) = origin {
        req.headers_mut().insert("origin", o.parse().unwrap());
    }
    if auth {
        let basic = base64_basic("alice", ADMIN_PASSWORD);
        req.headers_mut()
            .insert("authorization", basic.parse().unwrap());
    }
    match tokio_tungstenite::client_async(req, stream).await {
        Ok((socket, _)) => Ok(socket),
        Err(tokio_tungstenite::tungstenite::Error::Http(resp)) => Err(resp.status().as_u16()),
        Err(e) => panic!("handshake: {e}"),
    }
}

fn base64_basic(user: &str, password: &str) -> String {
    use base64::Engine;
    let raw = format!("{user}:{password}");
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(raw)
    )
}

/// What a viewer got: the stream description, the init segment, the fragments.
#[derive(Default)]
struct Received {
    about: Option<serde_json::Value>,
    init: Vec<u8>,
    fragments: Vec<Vec<u8>>,
}

/// Reads from `socket` for `seconds`.
async fn watch(socket: &mut Socket, seconds: u64, got: &mut Received) {
    let until = Instant::now() + Duration::from_secs(seconds);
    while let Some(left) = until.checked_duration_since(Instant::now()) {
        let Ok(Some(msg)) = tokio::time::timeout(left, socket.next()).await else {
            break;
        };
        match msg.unwrap() {
            Message::Text(t) => {
                let v: serde_json::Value = serde_json::from_str(&t).unwrap();
                if v["type"] == "stream" {
                    got.about = Some(v);
                }
            }
            Message::Binary(b) if got.init.is_empty() => got.init = b.to_vec(),
            Message::Binary(b) => got.fragments.push(b.to_vec()),
            _ => {}
        }
    }
}

/// Whether the fragment's first sample is a sync sample (a keyframe).
fn starts_with_keyframe(fragment: &[u8]) -> bool {
    let moof = header(fragment).unwrap().unwrap();
    let parsed = parse_moof(&fragment[..moof.size as usize], TrackDefaults::default()).unwrap();
    parsed.samples[0].flags & 0x0001_0000 == 0
}

/// The `frames=` and `dropped=` of the demo camera's next fresh status line.
fn counters(rx: &std::sync::mpsc::Receiver<String>, log: &mut Vec<String>) -> (u64, u64) {
    log.extend(rx.try_iter()); // lines written before now
    let line = wait_for(rx, "demo: streaming", log).expect("a status line");
    let field = |k: &str| -> u64 {
        line.split(&format!(" {k}="))
            .nth(1)
            .and_then(|r| r.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("no {k} in {line}"))
    };
    (field("frames"), field("dropped"))
}

/// Camera `camera`'s live view, watched as alice for `seconds`, starts on a keyframe and
/// decodes cleanly (written to `path`); returns how many fragments came.
pub(crate) async fn assert_live_plays(
    camera: &str,
    base: &str,
    cert: &[u8],
    path: &std::path::Path,
    seconds: u64,
) -> usize {
    let port: u16 = base.rsplit(':').next().unwrap().parse().unwrap();
    let mut socket = open_camera(camera, port, cert, Some(base), true)
        .await
        .unwrap();
    let mut got = Received::default();
    watch(&mut socket, seconds, &mut got).await;
    assert!(!got.fragments.is_empty(), "no live fragments from {camera}");
    assert!(starts_with_keyframe(&got.fragments[0]));
    assert_plays(path, &got);
    let _ = socket.send(Message::Close(None)).await;
    got.fragments.len()
}

/// The init segment and fragments `got`, written to `path`, decode cleanly, one picture
/// per fragment.
fn assert_plays(path: &std::path::Path, got: &Received) {
    let mut file = got.init.clone();
    got.fragments.iter().for_each(|f| file.extend_from_slice(f));
    std::fs::write(path, file).unwrap();
    common::assert_decodes_cleanly(path);
    assert_eq!(common::frames_in(path), got.fragments.len() as u64);
}

#[test]
fn live_fmp4_over_a_websocket() {
    let dir = common::temp_dir();
    let cameras = "  - id: demo\n    url: demo://?width=640&height=360&fps=10&bitrate=500\n  - id: hevc\n    url: demo://h265?width=320&height=240&fps=10&bitrate=300\n";
    let config = common::run::write_config_with(dir.path(), cameras);
    assert!(add_admin(&config).status.success());
    let (child, rx) = spawn_run_with(&config, &["--status-interval", "1"], &[]);
    let mut log = Vec::new();
    let base = common::run::dashboard_base(&rx, &mut log);
    let port: u16 = base.rsplit(':').next().unwrap().parse().unwrap();
    let cert = std::fs::read(dir.path().join("certs/server.crt")).unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        tokio::time::sleep(Duration::from_secs(2)).await;
        assert_eq!(open(port, &cert, Some(&base), false).await.err(), Some(401));
        let foreign = open(port, &cert, Some("https://evil.example"), true).await;
        assert_eq!(foreign.err(), Some(403));

        let mut a = open(port, &cert, Some(&base), true).await.unwrap();
        let mut b = open(port, &cert, Some(&base), true).await.unwrap();
        let (mut got_a, mut got_b) = (Received::default(), Received::default());
        tokio::join!(watch(&mut a, 4, &mut got_a), watch(&mut b, 4, &mut got_b));
        let about = got_a.about.clone().expect("a stream description");
        assert_eq!(about["stream"], "main");
        assert!(
            about["codec"].as_str().unwrap().starts_with("avc1."),
            "{about}"
        );
        assert_eq!(
            (about["width"].as_u64(), about["height"].as_u64()),
            (Some(640), Some(360))
        );
        for got in [&got_a, &got_b] {
            assert!(
                got.fragments.len() >= 30,
                "{} fragments",
                got.fragments.len()
            );
            assert!(starts_with_keyframe(&got.fragments[0]));
        }
        // The same pictures, the same bytes: find b's first fragment in a's.
        let at = got_a
            .fragments
            .iter()
            .position(|f| *f == got_b.fragments[0])
            .expect("b's first fragment is one of a's");
        let shared = got_a.fragments[at..].iter().zip(&got_b.fragments);
        assert!(shared.clone().count() >= 25);
        assert!(shared.into_iter().all(|(x, y)| x == y));

        assert_plays(&dir.path().join("live.mp4"), &got_a);

        // H.265: an hvc1 init segment, and the same clean decode.
        let mut h = open_camera("hevc", port, &cert, Some(&base), true)
            .await
            .unwrap();
        let mut got_h = Received::default();
        watch(&mut h, 3, &mut got_h).await;
        let about = got_h.about.clone().expect("a stream description");
        assert!(
            about["codec"].as_str().unwrap().starts_with("hvc1."),
            "{about}"
        );
        assert!(starts_with_keyframe(&got_h.fragments[0]));
        assert_plays(&dir.path().join("live-hevc.mp4"), &got_h);
        let _ = h.send(Message::Close(None)).await;

        // c stops reading for 10 s; a goes on, and so do ingest and the recorder.
        let mut c = open(port, &cert, Some(&base), true).await.unwrap();
        let (frames_before, _) = counters(&rx, &mut log);
        let mut during = Received::default();
        watch(&mut a, 10, &mut during).await;
        let (frames_after, dropped) = counters(&rx, &mut log);
        assert!(
            during.fragments.len() >= 80,
            "a got {} fragments in 10 s",
            during.fragments.len()
        );
        assert!(
            frames_after >= frames_before + 80,
            "{frames_before} -> {frames_after}"
        );
        assert_eq!(dropped, 0, "the recorder fell behind");
        let client = common::run::https_client(&cert);
        let metrics = common::run::get_text_as_admin(&client, &format!("{base}/metrics")).await;
        assert!(
            metrics.contains("sentrix_live_viewers{camera=\"demo\",stream=\"main\"} 3"),
            "{metrics}"
        );
        assert!(metrics.contains(
            "sentrix_live_latency_seconds{camera=\"demo\",stream=\"main\",quantile=\"0.99\"}"
        ));
        let _ = c.send(Message::Close(None)).await;

        // A reload that changes the camera stops it: its viewers' sockets end (the
        // dashboard's players then reconnect to the camera that runs now).
        let text = std::fs::read_to_string(&config).unwrap();
        std::fs::write(
            &config,
            text.replace("fps=10&bitrate=500", "fps=5&bitrate=500"),
        )
        .unwrap();
        // SAFETY: signalling our own child.
        unsafe { libc::kill(child.id() as i32, libc::SIGHUP) };
        let ended = tokio::time::timeout(Duration::from_secs(15), async {
            while let Some(Ok(m)) = a.next().await {
                if let Message::Close(_) = m {
                    break;
                }
            }
        })
        .await;
        assert!(
            ended.is_ok(),
            "the viewer of a stopped camera was left hanging"
        );
    });
    assert!(stop(child), "no clean stop:\n{}", log.join("\n"));
}
