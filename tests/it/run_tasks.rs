//! `sentrix run` as a set of per-camera tasks, end to end through the real binary: a
//! reload restarts only the camera whose entry changed (the other keeps its frame counter
//! and pre-roll); a second `run` on the same data directory is refused while account
//! commands still work; the dashboard's trigger and SIGUSR1 both store a "manual" event
//! with a clip; a SIGUSR1 20 ms after start is held until handled; live MJPEG and event
//! streams end within a second of a logout or of their user's removal; and (with the
//! `test-faults` feature) health names a panicked recorder, a
//! stuck detector and an fsync failure, and the watchdog stops.

use crate::common;
use crate::common::run::{
    ADMIN_PASSWORD, SENTRIX, add_admin, https_client, spawn_run, spawn_run_with, stop, wait_for,
    write_config, write_config_with,
};
use std::process::Command;
use std::sync::mpsc;
use std::time::{Duration, Instant};

const TWO_CAMERAS: &str = "  - id: front\n    url: demo://?width=320&height=240&fps=10&bitrate=300\n  - id: back\n    url: demo://?width=320&height=240&fps=10&bitrate=300\n";

/// (frames, ring span in s) from a status line of `camera`, e.g. "front: streaming 10.0
/// fps … frames=123 … ring=0.1MB/1.4s".
fn counters(line: &str, camera: &str) -> Option<(u64, f64)> {
    let at = line.find(&format!("{camera}: "))?;
    let rest = &line[at..];
    let frames = rest
        .split("frames=")
        .nth(1)?
        .split(' ')
        .next()?
        .parse()
        .ok()?;
    let span = rest
        .split("ring=")
        .nth(1)?
        .split('/')
        .nth(1)?
        .split_whitespace()
        .next()?
        .trim_end_matches('s')
        .parse()
        .ok()?;
    Some((frames, span))
}

/// The counters of the next status line of `camera` (streaming) that `wanted` accepts.
fn status_where(
    rx: &mpsc::Receiver<String>,
    camera: &str,
    log: &mut Vec<String>,
    wanted: impl Fn((u64, f64)) -> bool,
) -> (u64, f64) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while let Some(left) = deadline.checked_duration_since(Instant::now()) {
        let Ok(line) = rx.recv_timeout(left) else {
            break;
        };
        log.push(line.clone());
        if line.contains(&format!("{camera}: streaming"))
            && let Some(c) = counters(&line, camera)
            && wanted(c)
        {
            return c;
        }
    }
    panic!("no status line of {camera}:\n{}", log.join("\n"));
}

#[test]
fn a_reload_restarts_only_the_changed_camera() {
    let dir = common::temp_dir();
    let config = write_config_with(dir.path(), TWO_CAMERAS);
    let (child, rx) = spawn_run_with(&config, &["--status-interval", "1"], &[]);
    let pid = child.id() as i32;
    let mut log = Vec::new();
    // The ring holds the 1 s pre-roll plus 2 s of margin, cut at a keyframe: wait until
    // front's is full.
    let full = |(_, span): (u64, f64)| span >= 3.0;
    let (front_before, _) = status_where(&rx, "front", &mut log, full);

    let text = std::fs::read_to_string(&config).unwrap();
    let changed = text.replace(
        "id: back\n    url: demo://?width=320&height=240&fps=10",
        "id: back\n    url: demo://?width=320&height=240&fps=5",
    );
    assert_ne!(text, changed);
    std::fs::write(&config, changed).unwrap();
    // SAFETY: signalling our own child.
    unsafe { libc::kill(pid, libc::SIGHUP) };
    let applied = wait_for(&rx, "reload applied", &mut log)
        .unwrap_or_else(|| panic!("no reload:\n{}", log.join("\n")));
    assert!(applied.contains("cameras restarted: back;"), "{applied}");
    // front went on: its counter kept counting from where it was and its ring still holds
    // the pre-roll; back started again from zero at the new rate.
    let (front_after, span_after) = status_where(&rx, "front", &mut log, |_| true);
    assert!(
        front_after > front_before,
        "front's frame counter went from {front_before} to {front_after}"
    );
    assert!(
        span_after >= 3.0,
        "front's ring holds {span_after} s after the reload"
    );
    let (back_after, _) = status_where(&rx, "back", &mut log, |_| true);
    assert!(
        back_after < front_after,
        "back was not restarted: {back_after} frames vs front's {front_after}"
    );
    let stopped: Vec<&String> = log
        .iter()
        .filter(|l| l.contains("reload: stopping the camera"))
        .collect();
    assert_eq!(stopped.len(), 1, "{stopped:?}");
    assert!(stopped[0].contains("back"), "{stopped:?}");
    assert!(stop(child), "no clean stop:\n{}", log.join("\n"));
}

#[test]
fn a_second_run_on_the_same_data_directory_is_refused() {
    let dir = common::temp_dir();
    let config = write_config(dir.path());
    let (child, rx) = spawn_run(&config);
    let mut log = Vec::new();
    wait_for(&rx, "streaming (connection 1)", &mut log)
        .unwrap_or_else(|| panic!("demo never streamed:\n{}", log.join("\n")));
    let second = Command::new(SENTRIX)
        .args(["run", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&second.stderr);
    assert!(!second.status.success(), "{err}");
    assert!(
        err.contains(&format!("another sentrix process (pid {})", child.id())),
        "{err}"
    );
    // Account commands work beside the running instance.
    let out = add_admin(&config);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stop(child), "no clean stop:\n{}", log.join("\n"));
    // The lock goes with the process: a new run starts.
    let (child, rx) = spawn_run(&config);
    let mut log = Vec::new();
    wait_for(&rx, "streaming (connection 1)", &mut log)
        .unwrap_or_else(|| panic!("no restart after the lock was freed:\n{}", log.join("\n")));
    assert!(stop(child));
}

/// GET `path` as the admin, as JSON.
fn get_json(
    rt: &tokio::runtime::Runtime,
    client: &reqwest::Client,
    url: &str,
) -> serde_json::Value {
    rt.block_on(async {
        let r = client
            .get(url)
            .basic_auth("alice", Some(ADMIN_PASSWORD))
            .send()
            .await
            .unwrap();
        r.json().await.unwrap()
    })
}

#[test]
fn the_http_trigger_and_sigusr1_both_store_a_manual_event_with_a_clip() {
    let dir = common::temp_dir();
    let config = write_config(dir.path());
    // Motion events off, so every event here is a manual one.
    let text = std::fs::read_to_string(&config).unwrap();
    std::fs::write(&config, format!("detect:\n  enabled: false\n{text}")).unwrap();
    assert!(add_admin(&config).status.success());
    let (child, rx) = spawn_run(&config);
    let pid = child.id() as i32;
    let mut log = Vec::new();
    let base = common::run::dashboard_base(&rx, &mut log);
    wait_for(&rx, "streaming (connection 1)", &mut log)
        .unwrap_or_else(|| panic!("demo never streamed:\n{}", log.join("\n")));
    std::thread::sleep(Duration::from_secs(2)); // a pre-roll
    let client = https_client(&std::fs::read(dir.path().join("certs/server.crt")).unwrap());
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(common::run::trigger_demo(&client, &base));
    // Past the first clip's post-roll, so SIGUSR1 makes a clip of its own.
    std::thread::sleep(Duration::from_secs(4));
    // SAFETY: signalling our own child.
    unsafe { libc::kill(pid, libc::SIGUSR1) };
    wait_for(&rx, "manual event", &mut log)
        .unwrap_or_else(|| panic!("SIGUSR1 made no event:\n{}", log.join("\n")));
    let events_url = format!("{base}/api/events?label=manual");
    let deadline = Instant::now() + Duration::from_secs(15);
    let events = loop {
        let body = get_json(&rt, &client, &events_url);
        let events = body["events"].as_array().cloned().unwrap_or_default();
        if events.len() == 2 && events.iter().all(|e| e["clip_id"].is_i64()) {
            break events;
        }
        assert!(Instant::now() < deadline, "events: {body}");
        std::thread::sleep(Duration::from_millis(500));
    };
    for e in &events {
        assert_eq!(e["camera_id"], "demo", "{e}");
        let clip = get_json(&rt, &client, &format!("{base}/api/clips/{}", e["clip_id"]));
        assert!(clip["duration_ms"].as_i64().unwrap() >= 1000, "{clip}");
        assert!(clip["labels"].to_string().contains("manual"), "{clip}");
    }
    assert_ne!(events[0]["clip_id"], events[1]["clip_id"]);
    assert!(stop(child), "no clean stop:\n{}", log.join("\n"));
}

#[test]
fn a_signal_right_after_start_is_held_until_handled() {
    let dir = common::temp_dir();
    let config = write_config(dir.path());
    let (child, rx) = spawn_run(&config);
    std::thread::sleep(Duration::from_millis(20));
    // SAFETY: signalling our own child.
    unsafe { libc::kill(child.id() as i32, libc::SIGUSR1) };
    let mut log = Vec::new();
    wait_for(&rx, "manual event", &mut log)
        .unwrap_or_else(|| panic!("the early SIGUSR1 was lost or fatal:\n{}", log.join("\n")));
    assert!(stop(child), "no clean stop:\n{}", log.join("\n"));
}

/// Reads `stream` until it ends; how long after `since` that was (None: still open after
/// 3 s).
async fn ended_after(stream: &mut reqwest::Response, since: Instant) -> Option<Duration> {
    let open = async { while let Ok(Some(_)) = stream.chunk().await {} };
    tokio::time::timeout(Duration::from_secs(3), open)
        .await
        .ok()?;
    Some(since.elapsed())
}

#[test]
fn live_streams_end_within_a_second_of_logout_and_removal() {
    let dir = common::temp_dir();
    let config = write_config(dir.path());
    assert!(add_admin(&config).status.success());
    let (child, rx) = spawn_run(&config);
    let mut log = Vec::new();
    let base = common::run::dashboard_base(&rx, &mut log);
    wait_for(&rx, "streaming (connection 1)", &mut log).expect("the demo streams");
    let client = https_client(&std::fs::read(dir.path().join("certs/server.crt")).unwrap());
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let bob_pw = "bob's viewer password";
        let add = format!(r#"{{"username":"bob","role":"viewer","password":"{bob_pw}"}}"#);
        let r = client
            .post(format!("{base}/api/users"))
            .header("origin", &base)
            .basic_auth("alice", Some(ADMIN_PASSWORD))
            .header("content-type", "application/json")
            .body(add)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201);
        for (user, pw, end) in [
            ("alice", ADMIN_PASSWORD, "logout"),
            ("bob", bob_pw, "removal"),
        ] {
            let cookie = common::run::session_cookie(&client, &base, user, pw).await;
            let open = |path: &str| {
                client
                    .get(format!("{base}{path}"))
                    .header("cookie", &cookie)
                    .send()
            };
            let mut mjpeg = open("/api/cameras/demo/live.mjpeg").await.unwrap();
            let mut sse = open("/api/events/stream").await.unwrap();
            assert!(
                mjpeg.chunk().await.unwrap().is_some(),
                "{end}: no MJPEG frame"
            );
            let revoked = Instant::now();
            let r = match end {
                "logout" => client
                    .post(format!("{base}/auth/logout"))
                    .header("origin", &base)
                    .header("cookie", &cookie)
                    .send()
                    .await
                    .unwrap(),
                _ => client
                    .delete(format!("{base}/api/users/bob"))
                    .header("origin", &base)
                    .basic_auth("alice", Some(ADMIN_PASSWORD))
                    .send()
                    .await
                    .unwrap(),
            };
            assert_eq!(r.status(), 200, "{end}");
            for (name, stream) in [("MJPEG", &mut mjpeg), ("SSE", &mut sse)] {
                let took = ended_after(stream, revoked).await;
                assert!(
                    took.is_some_and(|t| t < Duration::from_secs(1)),
                    "{name} after {end}: {took:?}"
                );
            }
        }
    });
    assert!(stop(child), "no clean stop:\n{}", log.join("\n"));
}

#[cfg(feature = "test-faults")]
mod faults {
    use super::*;
    use crate::common::run::healthcheck;
    use std::os::unix::net::UnixDatagram;

    /// Waits until `healthcheck` is unhealthy and names `what`.
    fn unhealthy_naming(config: &std::path::Path, what: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let (ok, text) = healthcheck(config);
            if !ok && text.contains(what) {
                return text;
            }
            assert!(
                Instant::now() < deadline,
                "healthcheck never named {what:?}: {text}"
            );
            std::thread::sleep(Duration::from_millis(300));
        }
    }

    /// WATCHDOG=1 messages received within `d`.
    fn watchdog_beats(sock: &UnixDatagram, d: Duration) -> usize {
        common::notify_messages(sock, d)
            .iter()
            .filter(|m| *m == "WATCHDOG=1")
            .count()
    }

    #[test]
    fn health_names_a_panicked_recorder_a_stuck_detector_and_an_fsync_failure() {
        let dir = common::temp_dir();
        let faults = dir.path().join("faults");
        std::fs::create_dir(&faults).unwrap();
        let config = write_config_with(dir.path(), TWO_CAMERAS);
        assert!(add_admin(&config).status.success());
        let sock_path = dir.path().join("notify.sock");
        let sock = UnixDatagram::bind(&sock_path).unwrap();
        let (child, rx) = spawn_run_with(
            &config,
            &[],
            &[
                ("SENTRIX_TEST_FAULT_DIR", faults.as_os_str()),
                ("NOTIFY_SOCKET", sock_path.as_os_str()),
                ("WATCHDOG_USEC", std::ffi::OsStr::new("1000000")),
            ],
        );
        let pid = child.id() as i32;
        let mut log = Vec::new();
        let base = common::run::dashboard_base(&rx, &mut log);
        let deadline = Instant::now() + Duration::from_secs(15);
        while !healthcheck(&config).0 {
            assert!(
                Instant::now() < deadline,
                "never healthy: {}",
                healthcheck(&config).1
            );
            std::thread::sleep(Duration::from_millis(300));
        }
        assert!(watchdog_beats(&sock, Duration::from_secs(2)) >= 2);

        // A recorder thread panics: named, the watchdog stops, the tile shows it.
        std::fs::write(faults.join("recorder-panic.front"), "").unwrap();
        let text = unhealthy_naming(&config, "the recorder of camera front has died");
        assert!(!text.contains("camera back"), "{text}");
        std::thread::sleep(Duration::from_secs(1));
        assert_eq!(
            watchdog_beats(&sock, Duration::from_secs(3)),
            0,
            "the watchdog is still fed"
        );
        let client = https_client(&std::fs::read(dir.path().join("certs/server.crt")).unwrap());
        let rt = tokio::runtime::Runtime::new().unwrap();
        let health = get_json(&rt, &client, &format!("{base}/api/health"));
        assert_eq!(health["status"], "unhealthy", "{health}");
        assert!(
            health["problems"]
                .to_string()
                .contains("recorder of camera front"),
            "{health}"
        );
        let cameras = get_json(&rt, &client, &format!("{base}/api/cameras"));
        let front = cameras["cameras"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["id"] == "front")
            .cloned()
            .unwrap();
        assert!(front["problem"].to_string().contains("has died"), "{front}");

        // The other camera's detector hangs (as in a stuck model): named too.
        std::fs::write(faults.join("detector-stall.back"), "").unwrap();
        unhealthy_naming(&config, "the detector of camera back is stuck");

        // An fsync fails while a clip starts: the store stops writing, and health says so.
        std::fs::write(faults.join("fsync-fail"), "").unwrap();
        // SAFETY: signalling our own child.
        unsafe { libc::kill(pid, libc::SIGUSR1) };
        unhealthy_naming(&config, "the clip store has stopped writing");

        // The stuck detector cannot hold up the stop (the deadline leaves it behind).
        let started = Instant::now();
        unsafe { libc::kill(pid, libc::SIGTERM) };
        let mut child = child;
        child.wait().unwrap();
        assert!(
            started.elapsed() < Duration::from_secs(25),
            "stopping took {:?}",
            started.elapsed()
        );
    }
}
