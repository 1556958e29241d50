//! `sentrix run` under a real notify socket, as systemd runs it: READY=1 with a STATUS line
//! once the cameras are up, WATCHDOG=1 at the asked interval, none once the main loop is
//! frozen (a `test-faults` hook, armed by a file), STOPPING=1 on SIGTERM; journald-style log lines when
//! $JOURNAL_STREAM is set.

use crate::common;
use common::notify_messages as receive;
use common::run::healthcheck;

use std::os::unix::net::UnixDatagram;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const SENTRIX: &str = env!("CARGO_BIN_EXE_sentrix");

fn config(dir: &std::path::Path) -> std::path::PathBuf {
    let path = dir.join("surveillance.yml");
    std::fs::write(
        &path,
        "detect:\n  enabled: false\nstorage:\n  recordings_dir: rec\n  database: db/sentrix.db\n  encryption:\n    key_file: clip.key\ncameras:\n  - id: demo\n    url: demo://?width=320&height=240&fps=10&bitrate=300\n",
    )
    .unwrap();
    path
}

#[test]
fn notify_ready_status_watchdog_and_stopping() {
    let dir = common::temp_dir();
    let sock_path = dir.path().join("notify.sock");
    let sock = UnixDatagram::bind(&sock_path).unwrap();
    let cfg = config(dir.path());
    let faults = dir.path().join("faults");
    std::fs::create_dir(&faults).unwrap();
    let spawn = || {
        Command::new(SENTRIX)
            .args(["run", "--config"])
            .arg(&cfg)
            .env("NOTIFY_SOCKET", &sock_path)
            .env("WATCHDOG_USEC", "1000000")
            .env("SENTRIX_TEST_FAULT_DIR", &faults)
            .stderr(Stdio::null())
            .spawn()
            .unwrap()
    };
    let mut child = spawn();
    let pid = child.id() as i32;
    let first = receive(&sock, Duration::from_secs(10));
    let ready = first
        .iter()
        .find(|m| m.contains("READY=1"))
        .unwrap_or_else(|| panic!("no READY=1 in {first:?}"));
    assert!(
        ready.contains("STATUS=") && ready.contains("cameras streaming"),
        "{ready}"
    );
    // WATCHDOG=1 every half interval (0.5 s).
    let beats = receive(&sock, Duration::from_secs(3))
        .iter()
        .filter(|m| *m == "WATCHDOG=1")
        .count();
    assert!(
        (4..=8).contains(&beats),
        "{beats} WATCHDOG=1 in 3 s at a 1 s watchdog"
    );
    // Freeze the main loop (a test-only fault): the health loop must stop feeding the
    // watchdog.
    #[cfg(feature = "test-faults")]
    {
        std::fs::write(faults.join("main-freeze"), "").unwrap();
        receive(&sock, Duration::from_secs(5)); // the 3 s staleness passes
        let after = receive(&sock, Duration::from_secs(3));
        assert!(
            !after.iter().any(|m| m == "WATCHDOG=1"),
            "watchdog still fed with a frozen main loop: {after:?}"
        );
        std::fs::remove_file(faults.join("main-freeze")).unwrap();
    }
    // SAFETY: signalling our own child.
    unsafe { libc::kill(pid, libc::SIGKILL) };
    child.wait().unwrap();

    // A clean stop says STOPPING=1.
    let mut child = spawn();
    receive(&sock, Duration::from_secs(4));
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let last = receive(&sock, Duration::from_secs(5));
    assert!(last.iter().any(|m| m == "STOPPING=1"), "{last:?}");
    assert!(child.wait().unwrap().success());
}

#[test]
fn journald_lines_carry_priorities_and_no_colour() {
    let dir = common::temp_dir();
    let cfg = config(dir.path());
    let child = Command::new(SENTRIX)
        .args(["run", "--status-interval", "1", "--config"])
        .arg(&cfg)
        .env("JOURNAL_STREAM", "8:12345")
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_secs(3));
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let out = child.wait_with_output().unwrap();
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(
        !log.contains('\u{1b}'),
        "ANSI colour in journald output:\n{log}"
    );
    assert!(log.lines().count() >= 3);
    for line in log.lines() {
        assert!(
            line.starts_with("<6>") || line.starts_with("<4>") || line.starts_with("<3>"),
            "no priority prefix: {line}"
        );
    }
}

/// The shipped unit, with ExecStart pointed at the built binary (verify checks it exists).
fn unit_for_test(dir: &std::path::Path) -> std::path::PathBuf {
    let unit = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/systemd/sentrix.service"
    ))
    .unwrap();
    assert!(unit.contains("ExecStart=/usr/bin/sentrix run"));
    let path = dir.join("sentrix.service");
    std::fs::write(&path, unit.replace("/usr/bin/sentrix", SENTRIX)).unwrap();
    path
}

#[test]
fn unit_file_verifies_clean() {
    let dir = common::temp_dir();
    let out = Command::new("systemd-analyze")
        .arg("verify")
        .arg(unit_for_test(dir.path()))
        .output()
        .expect("systemd-analyze (apt-get install systemd)");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success() && text.trim().is_empty(),
        "systemd-analyze verify:\n{text}"
    );
}

#[test]
fn unit_file_security_exposure_is_at_most_2() {
    let dir = common::temp_dir();
    let out = Command::new("systemd-analyze")
        .args(["security", "--offline=true", "--no-pager"])
        .arg(unit_for_test(dir.path()))
        .output()
        .expect("systemd-analyze (apt-get install systemd)");
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text
        .lines()
        .find(|l| l.contains("Overall exposure level"))
        .unwrap_or_else(|| panic!("no score in:\n{text}"));
    let score: f64 = line
        .split(':')
        .nth(1)
        .and_then(|r| r.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap();
    eprintln!("{line}");
    assert!(score <= 2.0, "{line}");
}

#[test]
fn healthcheck_asks_the_running_instance() {
    let dir = common::temp_dir();
    let cfg = config(dir.path());
    let faults = dir.path().join("faults");
    std::fs::create_dir(&faults).unwrap();
    let (ok, text) = healthcheck(&cfg);
    assert!(!ok && text.contains("not running"), "{text}");
    let child = Command::new(SENTRIX)
        .args(["run", "--config"])
        .arg(&cfg)
        .env("WATCHDOG_USEC", "1000000") // 3 s staleness, as under a 1 s watchdog
        .env("SENTRIX_TEST_FAULT_DIR", &faults)
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let pid = child.id() as i32;
    let start = Instant::now();
    let healthy = loop {
        let (ok, text) = healthcheck(&cfg);
        if ok || start.elapsed() > Duration::from_secs(10) {
            break (ok, text);
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    assert!(healthy.0, "{}", healthy.1);
    assert!(
        healthy.1.contains(r#""status":"ok""#) && healthy.1.contains(r#""id":"demo""#),
        "{}",
        healthy.1
    );
    // Freeze the main loop (a test-only fault): healthcheck turns unhealthy and names why.
    #[cfg(feature = "test-faults")]
    {
        std::fs::write(faults.join("main-freeze"), "").unwrap();
        std::thread::sleep(Duration::from_secs(5));
        let (ok, text) = healthcheck(&cfg);
        assert!(!ok && text.contains("main loop"), "{text}");
    }
    // SAFETY: signalling our own child.
    unsafe { libc::kill(pid, libc::SIGKILL) };
    let mut child = child;
    child.wait().unwrap();
}

/// The health socket's file removed by hand while sentrix runs: a stop still ends the
/// process promptly (the socket's thread is woken by shutting the listener down, not by
/// connecting to its path).
#[test]
fn a_removed_health_socket_does_not_hold_up_the_stop() {
    let dir = common::temp_dir();
    let cfg = config(dir.path());
    let mut child = Command::new(SENTRIX)
        .args(["run", "--config"])
        .arg(&cfg)
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let start = Instant::now();
    while !healthcheck(&cfg).0 {
        assert!(start.elapsed() < Duration::from_secs(20), "never healthy");
        std::thread::sleep(Duration::from_millis(200));
    }
    let socket = common::files_under(dir.path())
        .into_iter()
        .chain([dir.path().join("db/sentrix.sock")])
        .find(|p| p.file_name().is_some_and(|n| n == "sentrix.sock") && p.exists())
        .expect("the health socket");
    std::fs::remove_file(&socket).unwrap();
    // SAFETY: signalling our own child.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let asked = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if asked.elapsed() > Duration::from_secs(20) {
            let _ = child.kill();
            panic!("sentrix did not stop within 20 s");
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(status.success(), "{status}");
}
