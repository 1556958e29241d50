//! Cameras that e-mail their alarm pictures, end to end: `sentrix run` with the SMTP
//! receiver on, and Python's smtplib (tests/it/alarm_py/camera_mail.py) as the camera.
//! One JPEG becomes an event with that picture as its snapshot; five become an event with
//! a clip ffmpeg decodes as five distinct pictures a second apart. STARTTLS shows the
//! dashboard's certificate (`openssl s_client`); AUTH in clear is refused; a camera with a
//! login cannot be reached without it; an unknown recipient gets 550; wrong passwords
//! lock out. A 200 MB message is refused at the cap with memory flat, a thousand
//! recipients end the connection, a MIME bomb and a 60,000 x 60,000 JPEG are refused, and
//! 500 idle connections do not delay a camera's alarm. Nothing lands in clear on disk.

use crate::common;
use crate::common::run::*;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

const SCRIPT: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/it/alarm_py/camera_mail.py"
);
const DOOR_PASSWORD: &str = "door camera secret";

/// A port free a moment ago, below the kernel's ephemeral range (32768 up), so the
/// thousands of client connections the flood test opens cannot take it before sentrix
/// binds it.
fn free_port() -> u16 {
    static NEXT: std::sync::atomic::AtomicU16 = std::sync::atomic::AtomicU16::new(0);
    let base = 20_000 + (std::process::id() % 1000) as u16 * 10;
    loop {
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let port = 20_000 + (base - 20_000 + n * 11) % 12_000;
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}

/// A small demo camera `gate` that also mails alarms (generated address, no login), and an
/// alarm-only `door` (no stream; its own address and a login); the SMTP receiver on
/// `smtp_port`.
fn config(dir: &Path, smtp_port: u16) -> PathBuf {
    let cameras = format!(
        "  - id: gate\n    url: demo://?width=320&height=240&fps=5&bitrate=200\n    record_mode: events\n    alarm:\n      smtp: {{}}\n      batch_seconds: 1\n  - id: door\n    alarm:\n      batch_seconds: 1\n      smtp:\n        address: door@cams.test\n        username: door\n        password: {DOOR_PASSWORD}\nalarms:\n  smtp:\n    port: {smtp_port}\n"
    );
    let path = write_config_with(dir, &cameras);
    let text = std::fs::read_to_string(&path).unwrap();
    std::fs::write(
        &path,
        text.replace("record:\n", "detect:\n  enabled: false\nrecord:\n"),
    )
    .unwrap();
    path
}

/// Five distinct 640x480 JPEGs (ffmpeg's test pattern with its frame counter).
pub fn pictures(dir: &Path) -> Vec<PathBuf> {
    let out = Command::new("ffmpeg")
        .args([
            "-v",
            "error",
            "-f",
            "lavfi",
            "-i",
            "testsrc=size=640x480:rate=5",
        ])
        .args(["-frames:v", "5", "-q:v", "5"])
        .arg(dir.join("pic%d.jpg"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    (1..=5).map(|i| dir.join(format!("pic{i}.jpg"))).collect()
}

/// Runs a camera stand-in script; the JSON line it printed.
fn python(script: &str, args: &[&str]) -> Value {
    let out = Command::new("python3")
        .arg(script)
        .args(args)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    serde_json::from_slice(&out.stdout).unwrap()
}

fn mail(args: &[&str]) -> Value {
    python(SCRIPT, args)
}

pub fn send(port: &str, to: &str, extra: &[&str], files: &[PathBuf]) -> Value {
    let mut args = vec!["send", "127.0.0.1", port, to];
    args.extend_from_slice(extra);
    let files: Vec<String> = files.iter().map(|f| f.display().to_string()).collect();
    args.extend(files.iter().map(String::as_str));
    mail(&args)
}

/// The newest `alarm` event of `camera` whose id is above `after` (and that has ended,
/// with `ended`), polling for up to 20 s.
async fn alarm_event(
    client: &reqwest::Client,
    base: &str,
    camera: &str,
    after: i64,
    ended: bool,
) -> Value {
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        let v = get_json_as_admin(client, &format!("{base}/api/events?camera={camera}")).await;
        let found = v["events"].as_array().into_iter().flatten().find(|e| {
            e["label"] == "alarm"
                && e["id"].as_i64() > Some(after)
                && (!ended || !e["end_ms"].is_null())
        });
        if let Some(e) = found {
            return e.clone();
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("no alarm event of {camera} after {after}")
}

async fn bytes_as_admin(client: &reqwest::Client, url: &str) -> Vec<u8> {
    let r = client
        .get(url)
        .basic_auth("alice", Some(ADMIN_PASSWORD))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{url}");
    r.bytes().await.unwrap().to_vec()
}

/// A 3 s, 10 fps, 320x240 test video encoded with `codec_args`.
fn video(dir: &Path, name: &str, codec_args: &[&str]) -> PathBuf {
    let path = dir.join(name);
    let out = Command::new("ffmpeg")
        .args([
            "-v",
            "error",
            "-f",
            "lavfi",
            "-i",
            "testsrc=size=320x240:rate=10",
            "-t",
            "3",
        ])
        .args(codec_args)
        .arg(&path)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    path
}

/// The MD5 of every decoded picture of `path`, in order.
fn frame_hashes(path: &Path) -> Vec<String> {
    let out = Command::new("ffmpeg")
        .args(["-v", "error", "-i"])
        .arg(path)
        .args([
            "-vsync",
            "passthrough",
            "-pix_fmt",
            "yuv420p",
            "-f",
            "framemd5",
            "-",
        ])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.rsplit(',').next().map(|h| h.trim().to_string()))
        .collect()
}

/// Presentation times (s) and distinct picture hashes of a clip's decoded frames.
fn frames_and_distinct(path: &Path) -> (Vec<f64>, usize) {
    let out = Command::new("ffmpeg")
        .args(["-v", "error", "-i"])
        .arg(path)
        .args(["-vsync", "passthrough", "-f", "framemd5", "-"])
        .output()
        .unwrap();
    assert!(
        out.status.success() && out.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let rows: Vec<Vec<String>> = text
        .lines()
        .filter(|l| !l.starts_with('#'))
        .map(|l| l.split(',').map(|c| c.trim().to_string()).collect())
        .collect();
    let tb = text
        .lines()
        .find_map(|l| l.strip_prefix("#tb 0: "))
        .and_then(|r| r.split_once('/'))
        .map(|(n, d)| n.trim().parse::<f64>().unwrap() / d.trim().parse::<f64>().unwrap())
        .unwrap();
    let times = rows
        .iter()
        .map(|r| r[2].parse::<f64>().unwrap() * tb)
        .collect();
    let distinct: std::collections::HashSet<&String> = rows.iter().map(|r| &r[5]).collect();
    (times, distinct.len())
}

fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// The certificate `openssl s_client -starttls smtp` was shown, as PEM body text.
fn starttls_certificate(port: &str) -> String {
    let out = Command::new("openssl")
        .args(["s_client", "-starttls", "smtp", "-connect"])
        .arg(format!("127.0.0.1:{port}"))
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let begin = text
        .find("-----BEGIN CERTIFICATE-----")
        .expect("no certificate shown");
    let end = text.find("-----END CERTIFICATE-----").unwrap();
    text[begin..end].split_whitespace().collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cameras_that_email_their_alarms_get_events_snapshots_and_clips() {
    let dir = common::temp_dir();
    let smtp_port = free_port();
    let port = smtp_port.to_string();
    let config = config(dir.path(), smtp_port);
    assert!(add_admin(&config).status.success());
    let (child, rx) = spawn_run(&config);
    let mut log = Vec::new();
    let base = dashboard_base(&rx, &mut log);
    let gate = wait_for(&rx, "alarm mail to gate-", &mut log)
        .and_then(|l| {
            l.split("alarm mail to ")
                .nth(1)
                .and_then(|a| a.split_whitespace().next())
                .map(str::to_string)
        })
        .expect("gate's generated address in the log");
    assert!(gate.ends_with("@sentrix.local"), "{gate}");
    assert!(wait_for(&rx, "alarm SMTP receiver on", &mut log).is_some());
    let cert = std::fs::read(dir.path().join("certs/server.crt")).unwrap();
    let cafile = dir.path().join("certs/server.crt").display().to_string();
    let client = https_client(&cert);
    let pics = pictures(dir.path());

    // STARTTLS shows the dashboard's certificate.
    let shown = starttls_certificate(&port);
    let file: String = String::from_utf8_lossy(&cert)
        .replace("-----BEGIN CERTIFICATE-----", "")
        .split("-----END CERTIFICATE-----")
        .next()
        .unwrap()
        .split_whitespace()
        .collect();
    assert_eq!(shown.replace("-----BEGINCERTIFICATE-----", ""), file);

    // One JPEG: an event with that picture as its snapshot, over TLS.
    let r = send(&port, &gate, &["--tls", &cafile], &pics[..1]);
    assert_eq!(r["code"], 250, "{r}");
    let one = alarm_event(&client, &base, "gate", 0, true).await;
    let id = one["id"].as_i64().unwrap();
    let snap = bytes_as_admin(&client, &format!("{base}/api/events/{id}/snapshot.jpg")).await;
    assert_eq!(snap, std::fs::read(&pics[0]).unwrap());
    assert!(one["clip_id"].is_null(), "one picture makes no clip: {one}");

    // Five JPEGs in one message: an event with a clip of five distinct pictures 1 s apart.
    let r = send(&port, &gate, &[], &pics);
    assert_eq!(r["code"], 250, "{r}");
    let five = alarm_event(&client, &base, "gate", id, true).await;
    let clip = five["clip_id"]
        .as_i64()
        .unwrap_or_else(|| panic!("no clip: {five}"));
    let mp4 = bytes_as_admin(&client, &format!("{base}/clips/{clip}.mp4")).await;
    let mp4_path = dir.path().join("alarm.mp4");
    std::fs::write(&mp4_path, &mp4).unwrap();
    let (times, distinct) = frames_and_distinct(&mp4_path);
    assert_eq!(times.len(), 5, "{times:?}");
    assert_eq!(distinct, 5);
    for (i, t) in times.iter().enumerate() {
        assert!((t - times[0] - i as f64).abs() < 0.05, "{times:?}");
    }

    // An attached MP4 (H.264) is remuxed: the clip decodes to the very same pictures; an
    // AVI of MJPEG is transcoded to H.264.
    let mp4_in = video(
        dir.path(),
        "in.mp4",
        &["-c:v", "libx264", "-pix_fmt", "yuv420p", "-g", "10"],
    );
    let avi_in = video(dir.path(), "in.avi", &["-c:v", "mjpeg"]);
    let mut last = five["id"].as_i64().unwrap();
    for (input, remuxed) in [(&mp4_in, true), (&avi_in, false)] {
        let r = send(&port, &gate, &[], std::slice::from_ref(input));
        assert_eq!(r["code"], 250, "{r}");
        let e = alarm_event(&client, &base, "gate", last, true).await;
        last = e["id"].as_i64().unwrap();
        let clip = e["clip_id"]
            .as_i64()
            .unwrap_or_else(|| panic!("no clip: {e}"));
        let bytes = bytes_as_admin(&client, &format!("{base}/clips/{clip}.mp4")).await;
        let out = dir.path().join(format!("attached-{clip}.mp4"));
        std::fs::write(&out, &bytes).unwrap();
        let (times, _) = frames_and_distinct(&out);
        assert_eq!(times.len(), 30, "{}: {times:?}", input.display());
        assert_eq!(
            frame_hashes(&out) == frame_hashes(input),
            remuxed,
            "{}",
            input.display()
        );
    }

    // The door camera: AUTH in clear is refused, RCPT without it is 530, with it works.
    let r = mail(&["plain_auth", "127.0.0.1", &port]);
    assert_eq!(
        (r["code"].as_i64(), r["advertised"].as_bool()),
        (Some(538), Some(false)),
        "{r}"
    );
    let r = send(&port, "door@cams.test", &["--tls", &cafile], &pics[..1]);
    assert_eq!(r["code"], 530, "{r}");
    let login = [
        "--tls",
        &cafile,
        "--user",
        "door",
        "--password",
        DOOR_PASSWORD,
    ];
    let r = send(&port, "door@cams.test", &login, &pics[..1]);
    assert_eq!(
        (r["auth"].as_i64(), r["code"].as_i64()),
        (Some(235), Some(250)),
        "{r}"
    );
    alarm_event(&client, &base, "door", 0, false).await;
    let cams = get_json_as_admin(&client, &format!("{base}/api/cameras")).await;
    let door = cams["cameras"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == "door")
        .unwrap();
    assert_eq!(door["state"], "alarm-only", "{door}");
    assert_eq!(door["alarm_address"], "door@cams.test", "{door}");

    // An unknown recipient: 550; a thousand of them end the connection early.
    let r = send(&port, "nobody@cams.test", &[], &pics[..1]);
    assert_eq!(r["code"], 550, "{r}");
    let r = mail(&["recipients", "127.0.0.1", &port, "1000"]);
    assert!(r["answered"].as_i64().unwrap() < 30, "{r}");

    // A 200 MB message is refused at the 25 MB cap while memory stays flat.
    let pid = child.id();
    let before_kib = rss_kib(pid);
    let sampler = std::thread::spawn(move || {
        let mut peak = 0;
        for _ in 0..600 {
            peak = peak.max(rss_kib(pid));
            std::thread::sleep(Duration::from_millis(50));
        }
        peak
    });
    let r = mail(&["big", "127.0.0.1", &port, &gate, "200"]);
    assert_eq!(r["code"], 552, "{r}");
    let peak_kib = sampler.join().unwrap();
    println!(
        "RSS during the 200 MB refusal: {before_kib} -> peak {peak_kib} KiB ({:.1} s)",
        r["seconds"]
    );
    assert!(
        peak_kib < before_kib + 60 * 1024,
        "{before_kib} -> {peak_kib} KiB"
    );

    // A MIME bomb of 10,000 parts is refused; 5,000 nested parts and a JPEG whose base64
    // stops half-way are contained (accepted, nothing decodes past the data).
    let r = mail(&["raw", "127.0.0.1", &port, &gate, "parts"]);
    assert_eq!(r["code"], 554, "{r}");
    let r = mail(&["raw", "127.0.0.1", &port, &gate, "nesting"]);
    assert!(r["code"] == 250 || r["code"] == 554, "{r}");
    let pic0 = pics[0].display().to_string();
    let r = mail(&["raw", "127.0.0.1", &port, &gate, "truncated", &pic0]);
    assert!(r["code"] == 250 || r["code"] == 554, "{r}");
    tokio::time::sleep(Duration::from_secs(2)).await;

    // A 60,000 x 60,000 JPEG is refused from its header: no event.
    let mut bomb = std::fs::read(&pics[0]).unwrap();
    let sof = bomb.windows(2).position(|w| w == [0xFF, 0xC0]).unwrap();
    bomb[sof + 5..sof + 9].copy_from_slice(&[0xEA, 0x60, 0xEA, 0x60]);
    let bomb_path = dir.path().join("bomb.jpg");
    std::fs::write(&bomb_path, &bomb).unwrap();
    let newest = get_json_as_admin(&client, &format!("{base}/api/events?camera=gate")).await;
    let last = newest["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["id"].as_i64())
        .max()
        .unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    let r = send(&port, &gate, &[], &[bomb_path]);
    assert_eq!(r["code"], 250, "{r}");
    tokio::time::sleep(Duration::from_secs(2)).await;
    let v = get_json_as_admin(&client, &format!("{base}/api/events?camera=gate")).await;
    let newer = v["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["label"] == "alarm" && e["id"].as_i64() > Some(last))
        .count();
    assert_eq!(newer, 0, "the bomb made an event");

    // Wrong passwords lock the door's login out (from another address).
    let wrong = [
        "--tls",
        &cafile,
        "--user",
        "door",
        "--password",
        "wrong",
        "--source",
        "127.0.0.2",
    ];
    let codes: Vec<i64> = (0..7)
        .map(|_| {
            send(&port, "door@cams.test", &wrong, &pics[..1])["code"]
                .as_i64()
                .unwrap()
        })
        .collect();
    assert_eq!(codes[0], 535, "{codes:?}");
    assert_eq!(*codes.last().unwrap(), 454, "{codes:?}");

    assert!(child_alive(&child));
    common::assert_no_plaintext(&dir.path().join("rec"));
    assert!(stop(child));
}

fn child_alive(child: &std::process::Child) -> bool {
    Path::new(&format!("/proc/{}", child.id())).exists()
}

/// Holds one silent SMTP connection from `local` until `stop`, reconnecting when the
/// server closes it; counts connections made.
async fn idle_smtp(
    port: u16,
    local: [u8; 4],
    stop: tokio_util::sync::CancellationToken,
    made: std::sync::Arc<std::sync::atomic::AtomicU64>,
) {
    use tokio::io::AsyncReadExt;
    while !stop.is_cancelled() {
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        if socket.bind(std::net::SocketAddr::from((local, 0))).is_err() {
            return;
        }
        let Ok(mut stream) = socket
            .connect(std::net::SocketAddr::from(([127, 0, 0, 1], port)))
            .await
        else {
            tokio::time::sleep(Duration::from_millis(200)).await;
            continue;
        };
        made.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let mut buf = [0u8; 512];
        // Read the greeting and whatever else comes, never answer; end when closed.
        loop {
            tokio::select! {
                _ = stop.cancelled() => return,
                n = stream.read(&mut buf) => if !matches!(n, Ok(n) if n > 0) { break },
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_alarm_gets_through_500_idle_smtp_connections_while_recording_stays_gapless() {
    let dir = common::temp_dir();
    let smtp_port = free_port();
    let cameras = format!(
        "  - id: yard\n    url: demo://?width=640&height=360&fps=10&bitrate=500\n    record_mode: continuous\n  - id: gate\n    alarm:\n      batch_seconds: 1\n      smtp:\n        address: gate@cams.test\nalarms:\n  smtp:\n    port: {smtp_port}\n"
    );
    let config = write_config_with(dir.path(), &cameras);
    let text = std::fs::read_to_string(&config).unwrap();
    let text = text.replace(
        "record:\n",
        "detect:\n  enabled: false\nrecord:\n  segment_seconds: 10\n",
    );
    std::fs::write(&config, text).unwrap();
    assert!(add_admin(&config).status.success());
    let (child, rx) = spawn_run(&config);
    let mut log = Vec::new();
    let base = dashboard_base(&rx, &mut log);
    wait_for(&rx, "streaming (connection 1)", &mut log)
        .unwrap_or_else(|| panic!("no video:\n{}", log.join("\n")));
    let cert = std::fs::read(dir.path().join("certs/server.crt")).unwrap();
    let client = https_client(&cert);
    let pics = pictures(dir.path());
    // The camera has sent before (its address is then trusted, as a signed-in browser's).
    let (p, pic) = (smtp_port.to_string(), pics[4].clone());
    let r = tokio::task::spawn_blocking(move || send(&p, "gate@cams.test", &[], &[pic]))
        .await
        .unwrap();
    assert_eq!(r["code"], 250, "{r}");
    let mut last = alarm_event(&client, &base, "gate", 0, false).await["id"]
        .as_i64()
        .unwrap();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let flood_from_ms = sentrix::base::clock::wall_ms();

    // 500 addresses, each holding one silent connection and reconnecting when closed.
    let flood_stop = tokio_util::sync::CancellationToken::new();
    let made = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let mut flood = Vec::new();
    for i in 0..500u32 {
        let local = [127, 4, (i / 250) as u8, (i % 250 + 1) as u8];
        flood.push(tokio::spawn(idle_smtp(
            smtp_port,
            local,
            flood_stop.clone(),
            made.clone(),
        )));
        if i % 50 == 49 {
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    tokio::time::sleep(Duration::from_secs(3)).await;

    // A camera's alarm arrives within 2 s, three times over.
    let port = smtp_port.to_string();
    for (round, pic) in pics.iter().take(3).enumerate() {
        let asked = Instant::now();
        let (p, pic) = (port.clone(), pic.clone());
        let r = tokio::task::spawn_blocking(move || send(&p, "gate@cams.test", &[], &[pic]))
            .await
            .unwrap();
        assert_eq!(r["code"], 250, "{r}");
        let e = alarm_event(&client, &base, "gate", last, false).await;
        let took = asked.elapsed();
        println!(
            "alarm {round} during the flood: event {} after {took:?}",
            e["id"]
        );
        assert!(took < Duration::from_secs(2), "alarm took {took:?}");
        last = e["id"].as_i64().unwrap();
        tokio::time::sleep(Duration::from_millis(1500)).await;
    }
    flood_stop.cancel();
    for f in flood {
        let _ = f.await;
    }
    let flood_to_ms = sentrix::base::clock::wall_ms();
    println!(
        "flood: {} connections made in {} ms",
        made.load(std::sync::atomic::Ordering::Relaxed),
        flood_to_ms - flood_from_ms
    );

    // The yard recorded every frame: no gap in its timeline over the flood, and an export
    // of that range holds 10 frames a second.
    tokio::time::sleep(Duration::from_secs(12)).await;
    let (from, to) = (flood_from_ms, flood_to_ms);
    let t = get_json_as_admin(
        &client,
        &format!("{base}/api/timeline?camera=yard&from={from}&to={to}"),
    )
    .await;
    assert_eq!(t["gaps"].as_array().map(Vec::len), Some(0), "{t}");
    let mp4 = bytes_as_admin(
        &client,
        &format!("{base}/api/recordings/yard.mp4?from={from}&to={to}"),
    )
    .await;
    let path = dir.path().join("yard.mp4");
    std::fs::write(&path, &mp4).unwrap();
    common::assert_decodes_cleanly(&path);
    let frames = common::frames_in(&path) as f64;
    let expected = (to - from) as f64 / 100.0;
    println!(
        "yard: {frames} frames exported over {} ms (expected {expected:.0})",
        to - from
    );
    assert!(
        (frames - expected).abs() <= expected * 0.03 + 10.0,
        "{frames} frames, expected {expected:.0}"
    );
    assert!(child_alive(&child));
    assert!(stop(child));
}

const FTP_SCRIPT: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/it/alarm_py/camera_ftp.py"
);

fn ftp(args: &[&str]) -> Value {
    python(FTP_SCRIPT, args)
}

/// Ten consecutive free ports for passive mode (free a moment ago).
fn free_port_range() -> u16 {
    loop {
        let first = free_port();
        if first < 32_000
            && (first..first + 10).all(|p| std::net::TcpListener::bind(("127.0.0.1", p)).is_ok())
        {
            return first;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cameras_that_upload_by_ftp_get_events_and_clips_and_stay_in_their_directory() {
    let dir = common::temp_dir();
    let (ftp_port, passive) = (free_port(), free_port_range());
    let cameras = format!(
        "  - id: shed\n    alarm:\n      batch_seconds: 2\n      ftp:\n        username: shed\n        password: shed camera secret\nalarms:\n  ftp:\n    port: {ftp_port}\n    passive_ports: [{passive}, {}]\n",
        passive + 9
    );
    let config = write_config_with(dir.path(), &cameras);
    assert!(add_admin(&config).status.success());
    let (child, rx) = spawn_run(&config);
    let mut log = Vec::new();
    let base = dashboard_base(&rx, &mut log);
    assert!(
        wait_for(&rx, "alarm FTP receiver on", &mut log).is_some(),
        "{}",
        log.join("\n")
    );
    let cert = std::fs::read(dir.path().join("certs/server.crt")).unwrap();
    let cafile = dir.path().join("certs/server.crt").display().to_string();
    let client = https_client(&cert);
    let pics = pictures(dir.path());
    let port = ftp_port.to_string();
    let pic = |i: usize| pics[i].display().to_string();

    // One picture over FTPS (curl: explicit TLS on both channels): an event with it as
    // the snapshot.
    let out = Command::new("curl")
        .args([
            "-sS",
            "--ssl-reqd",
            "--cacert",
            &cafile,
            "--ftp-create-dirs",
            "-T",
            &pic(0),
        ])
        .arg(format!(
            "ftp://shed:shed%20camera%20secret@127.0.0.1:{port}/alarm/pic0.jpg"
        ))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let one = alarm_event(&client, &base, "shed", 0, true).await;
    let id = one["id"].as_i64().unwrap();
    let snap = bytes_as_admin(&client, &format!("{base}/api/events/{id}/snapshot.jpg")).await;
    assert_eq!(snap, std::fs::read(&pics[0]).unwrap());

    // Five pictures 0.6 s apart: one event whose clip shows each for its real interval.
    let files: Vec<String> = (0..5).map(pic).collect();
    let mut args = vec![
        "upload",
        "127.0.0.1",
        &port,
        "shed",
        "shed camera secret",
        "0.6",
    ];
    args.extend(files.iter().map(String::as_str));
    let r = ftp(&args);
    assert_eq!(
        r["codes"],
        serde_json::json!([226, 226, 226, 226, 226]),
        "{r}"
    );
    let five = alarm_event(&client, &base, "shed", id, true).await;
    let clip = five["clip_id"]
        .as_i64()
        .unwrap_or_else(|| panic!("no clip: {five}"));
    let mp4 = bytes_as_admin(&client, &format!("{base}/clips/{clip}.mp4")).await;
    let path = dir.path().join("ftp.mp4");
    std::fs::write(&path, &mp4).unwrap();
    let (times, distinct) = frames_and_distinct(&path);
    assert_eq!((times.len(), distinct), (5, 5), "{times:?}");
    for w in times.windows(2) {
        assert!((w[1] - w[0] - 0.6).abs() < 0.25, "{times:?}");
    }

    // A path above the camera's directory is refused, a wrong password too.
    let r = ftp(&[
        "stor_as",
        "127.0.0.1",
        &port,
        "shed",
        "shed camera secret",
        "../../etc/passwd",
        &pic(0),
    ]);
    assert_eq!(r["code"], 550, "{r}");
    let r = ftp(&["login", "127.0.0.1", &port, "shed", "wrong"]);
    assert_eq!(r["code"], 530, "{r}");

    common::assert_no_plaintext(&dir.path().join("rec"));
    assert!(child_alive(&child));
    assert!(stop(child));
}
