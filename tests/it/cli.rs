//! The `sentrix` binary as users and systemd run it: `selftest`, `--version`, and `run`
//! with the built-in demo camera and with a camera that refuses its password (clear,
//! redacted errors, no log flood, graceful stop on SIGTERM).

use crate::common;

use std::io::Read;
use std::process::{Command, Stdio};
use std::time::Duration;

const SENTRIX: &str = env!("CARGO_BIN_EXE_sentrix");

#[test]
fn selftest_passes_for_both_codecs() {
    let out = Command::new(SENTRIX)
        .args(["selftest", "--codec", "all"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(stdout.matches("selftest OK").count(), 2, "{stdout}");
}

#[test]
fn version_is_printed() {
    let out = Command::new(SENTRIX).arg("--version").output().unwrap();
    assert!(out.status.success());
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        format!("sentrix {}", env!("CARGO_PKG_VERSION"))
    );
}

/// The appliance carries no bench: `sentrix --help` names no `bench` (it is
/// `sentrix-bench`, a binary of its own) and no hidden `test-writer`, and `sentrix bench`
/// is an unknown command.
#[test]
fn help_lists_no_bench_and_no_test_hook() {
    let out = Command::new(SENTRIX).arg("--help").output().unwrap();
    let help = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success() && help.contains("check-config"),
        "{help}"
    );
    assert!(
        !help.contains("bench") && !help.contains("test-writer"),
        "{help}"
    );
    let bench = Command::new(SENTRIX)
        .args(["bench", "ingest"])
        .output()
        .unwrap();
    assert_eq!(bench.status.code(), Some(2), "usage error");
    assert!(String::from_utf8_lossy(&bench.stderr).contains("unrecognized subcommand"));
}

/// Writes a config with storage in `dir` and the given camera block; returns its path.
fn write_config(dir: &std::path::Path, cameras: &str) -> std::path::PathBuf {
    let text = format!(
        "detect:\n  enabled: false\nstorage:\n  recordings_dir: rec\n  database: db/sentrix.db\n  encryption:\n    key_file: clip.key\ncameras:\n{cameras}"
    );
    let path = dir.join("surveillance.yml");
    std::fs::write(&path, text).unwrap();
    path
}

/// Runs `sentrix run` for `secs`, sends SIGTERM, and returns (exit success, stderr).
fn run_for(config: &std::path::Path, secs: u64) -> (bool, String) {
    let mut child = Command::new(SENTRIX)
        .args(["run", "--status-interval", "1", "--config"])
        .arg(config)
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_secs(secs));
    // SAFETY: signalling our own child.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    let status = child.wait().unwrap();
    (status.success(), stderr)
}

#[test]
fn run_with_demo_camera_streams_and_stops_on_sigterm() {
    let dir = common::temp_dir();
    let config = write_config(
        dir.path(),
        "  - id: demo\n    url: demo://?width=640&height=360&fps=10&bitrate=500\n",
    );
    let (ok, log) = run_for(&config, 6);
    assert!(ok, "sentrix run did not exit cleanly:\n{log}");
    assert!(
        log.contains("demo: streaming") && log.contains("h264 640x360"),
        "no streaming status:\n{log}"
    );
    assert!(
        log.contains("SIGTERM: shutting down") && log.contains("stopped"),
        "{log}"
    );
}

#[test]
fn run_with_refused_password_logs_clear_redacted_errors_without_flooding() {
    let spec = sentrix::ingest::demo::DemoSpec {
        codec: sentrix::ingest::Codec::H264,
        width: 320,
        height: 240,
        fps: 10,
        bitrate_kbps: 300,
        ..Default::default()
    };
    let fixture = common::RtspFixture::with_spec(spec, Some(("admin", "right-pass")));
    let dir = common::temp_dir();
    let cameras = format!(
        "  - id: porch\n    url: {}\n",
        fixture.url_with("admin", "Wr0ng-pw!")
    );
    let config = write_config(dir.path(), &cameras);
    let (ok, log) = run_for(&config, 12);
    assert!(ok, "sentrix run did not exit cleanly:\n{log}");
    assert!(
        !log.contains("Wr0ng-pw"),
        "password leaked into the log:\n{log}"
    );
    assert!(
        log.contains("admin:***@127.0.0.1"),
        "URL not shown redacted:\n{log}"
    );
    assert!(
        log.contains("Unauthorized") || log.contains("401"),
        "no clear error:\n{log}"
    );
    // 12 s of failing: attempts at 0, 1, 3, 7 s; warnings only for new reasons or the
    // 1st, 2nd, 4th... failure in a row, plus one status line a second.
    let warnings = log.lines().filter(|l| l.contains("WARN")).count();
    assert!(warnings <= 4, "{warnings} warnings in 12 s:\n{log}");
    assert!(log.lines().count() <= 30, "log flood:\n{log}");
}

fn write_detect_config(dir: &std::path::Path, detect: &str) -> std::path::PathBuf {
    let text = format!(
        "detect:\n{detect}record:\n  pre_detection_buffer: 1\n  post_detection_buffer: 1\nstorage:\n  recordings_dir: rec\n  database: db/sentrix.db\n  encryption:\n    key_file: clip.key\ncameras:\n  - id: demo\n    url: demo://?width=640&height=360&fps=10&bitrate=500\n"
    );
    let path = dir.join("surveillance.yml");
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn run_refuses_a_missing_or_corrupt_model_naming_the_path() {
    let dir = common::temp_dir();
    std::fs::write(dir.path().join("broken.onnx"), b"this is not an ONNX file").unwrap();
    for (model, expect) in [
        ("missing.onnx", "missing.onnx"),
        ("broken.onnx", "not a readable ONNX model"),
    ] {
        let config =
            write_detect_config(dir.path(), &format!("  enabled: true\n  model: {model}\n"));
        let out = Command::new(SENTRIX)
            .args(["run", "--config"])
            .arg(&config)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            !out.status.success(),
            "{model}: sentrix run started:\n{stderr}"
        );
        assert!(
            stderr.contains(model) && stderr.contains(expect),
            "{model}: unclear error:\n{stderr}"
        );
        assert!(!stderr.contains("panicked"), "{stderr}");
    }
}

#[test]
fn run_without_a_model_records_motion_events_from_the_demo_camera() {
    let dir = common::temp_dir();
    let config = write_detect_config(dir.path(), "  enabled: true\n");
    let (ok, log) = run_for(&config, 7);
    assert!(ok, "sentrix run did not exit cleanly:\n{log}");
    assert!(log.contains("events come from motion alone"), "{log}");
    assert!(log.contains("event 1: motion"), "no motion event:\n{log}");
    // Its box is where the demo ball moved, not the whole frame.
    let line = log.lines().find(|l| l.contains("event 1: motion")).unwrap();
    let inside = line
        .split_once(" at [")
        .unwrap()
        .1
        .split(']')
        .next()
        .unwrap();
    let b: Vec<f32> = inside
        .split(", ")
        .map(|v| v.trim().parse().unwrap_or_else(|_| panic!("{line:?}")))
        .collect();
    let area = (b[2] - b[0]) * (b[3] - b[1]);
    eprintln!(
        "the demo's first motion event: box {b:?}, {:.1} % of the frame",
        area * 100.0
    );
    assert!(
        area > 0.0 && area < 0.5,
        "the motion box {b:?} is not what moved:\n{line}"
    );
    assert!(log.contains("clip 1 finished"), "no clip:\n{log}");
    assert!(log.contains("detect_fps="), "no detector status:\n{log}");
}

/// `sentrix token create|list|revoke`: the token is printed once, only its hash is
/// stored, the list shows its scopes and never the token, bad input says why.
#[test]
fn tokens_are_made_listed_and_revoked_from_the_cli() {
    let dir = common::temp_dir();
    let config = write_config(dir.path(), "  - id: demo\n    url: demo://\n");
    let sentrix = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_sentrix"))
            .args(args)
            .arg("--config")
            .arg(&config)
            .output()
            .unwrap()
    };
    let out = sentrix(&[
        "token",
        "create",
        "ha",
        "--role",
        "viewer",
        "--scope",
        "events:read",
        "--expires",
        "30",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let token = text
        .lines()
        .find(|l| l.starts_with("stx_"))
        .expect("the token is printed")
        .to_string();
    assert_eq!(token.len(), 68);
    assert!(
        text.contains("scopes events:read") && text.contains("expires"),
        "{text}"
    );
    let list = String::from_utf8_lossy(&sentrix(&["token", "list"]).stdout).to_string();
    assert!(
        list.starts_with("ha\tviewer\tevents:read\texpires ") && !list.contains(&token),
        "{list}"
    );
    let db = std::fs::read(dir.path().join("db/sentrix.db")).unwrap();
    let wal = std::fs::read(dir.path().join("db/sentrix.db-wal")).unwrap_or_default();
    assert!(
        ![db, wal]
            .iter()
            .any(|b| String::from_utf8_lossy(b).contains(&token[4..]))
    );
    for (args, says) in [
        (
            &[
                "token", "create", "x", "--role", "viewer", "--scope", "admin",
            ][..],
            "cannot hold the admin scope",
        ),
        (&["token", "create", "ha"][..], "already exists"),
        (&["token", "revoke", "nobody"][..], "no token"),
    ] {
        let out = sentrix(args);
        assert!(!out.status.success(), "{args:?}");
        assert!(
            String::from_utf8_lossy(&out.stderr).contains(says),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    assert!(sentrix(&["token", "revoke", "ha"]).status.success());
    assert!(String::from_utf8_lossy(&sentrix(&["token", "list"]).stdout).is_empty());
}
