//! The dashboard in a real browser: `sentrix run` with the demo camera, an admin added
//! with `sentrix user add`, a manual trigger for an event with a clip, then headless Debian
//! Chromium (tests/it/browser_py/dashboard.py, selenium + chromedriver) logs in, watches a live
//! tile update, opens the event's clip, seeks to the middle and sees frames decode, then
//! adds, re-passwords and removes a user on the Users page, makes, uses and revokes an API
//! token, reads the insights charts and switches the armed mode.
//! Screenshots land in target/browser-test/.

use crate::common;

use common::run::{ADMIN_PASSWORD, add_admin, spawn_run, stop, write_config};
use std::process::Command;
use std::time::{Duration, Instant};

/// Runs tests/it/browser_py/`name` against `base` as alice; screenshots go to
/// target/browser-test, returned with the script's output.
fn browser_script(
    name: &str,
    base: &str,
    env: &[(&str, &str)],
) -> (std::process::Output, std::path::PathBuf) {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let out_dir = root.join("target/browser-test");
    std::fs::create_dir_all(&out_dir).unwrap();
    let out = Command::new("/usr/bin/python3")
        .arg(root.join("tests/it/browser_py").join(name))
        .args([base, "alice", ADMIN_PASSWORD])
        .arg(&out_dir)
        .envs(env.iter().copied())
        .output()
        .expect("python3 runs the browser script");
    (out, out_dir)
}

/// The JSON line a browser script printed last, once it exited successfully.
fn what_it_saw(name: &str, out: &std::process::Output, last_line: &str) -> serde_json::Value {
    assert!(
        out.status.success(),
        "{name} test failed:\n{}\n{last_line}",
        String::from_utf8_lossy(&out.stderr)
    );
    eprintln!("browser saw: {last_line}");
    serde_json::from_str(last_line.trim()).unwrap()
}

#[test]
fn dashboard_in_headless_chromium() {
    for tool in ["/usr/bin/chromium", "/usr/bin/chromedriver"] {
        assert!(
            std::path::Path::new(tool).exists(),
            "{tool} is missing: run scripts/deps.sh test (apt-get install chromium chromium-driver python3-selenium)"
        );
    }
    let dir = common::temp_dir();
    let config = write_config(dir.path());
    // A webhook nobody listens at: the System page shows its failures and last error.
    let dead = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut text = std::fs::read_to_string(&config).unwrap();
    // An alarm-only camera beside the demo: its tile shows its newest alarm picture (filed
    // as motion, so the Review page's detection list stays the trigger's alone).
    let smtp_port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    text = text.replace(
        "cameras:\n",
        "cameras:\n  - id: doorbell\n    alarm:\n      label: motion\n      smtp:\n        address: doorbell@cams.test\n",
    );
    // A camera whose port nothing listens on: its tile says why it does not stream.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    text.push_str(&format!(
        "  - id: gate\n    url: rtsp://127.0.0.1:{closed}/cam\n"
    ));
    text.push_str(&format!("alarms:\n  smtp:\n    port: {smtp_port}\n"));
    text.push_str(&format!(
        "notify:\n  targets:\n    - {{type: webhook, name: hook, url: 'https://127.0.0.1:{dead}/h'}}\n  rules:\n    - {{target: hook, labels: [manual]}}\n"
    ));
    std::fs::write(&config, text).unwrap();
    let added = add_admin(&config);
    assert!(
        added.status.success(),
        "user add: {}",
        String::from_utf8_lossy(&added.stderr)
    );
    let (child, rx) = spawn_run(&config);
    let mut log = Vec::new();
    let base = common::run::dashboard_base(&rx, &mut log);
    let cert = std::fs::read(dir.path().join("certs/server.crt")).unwrap();

    let pictures = crate::alarm::pictures(dir.path());
    let sent = crate::alarm::send(
        &smtp_port.to_string(),
        "doorbell@cams.test",
        &[],
        &pictures[..1],
    );
    assert_eq!(sent["code"], 250, "{sent}");

    // Make sure an event with a finished clip exists: trigger, then wait for the link.
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let client = common::run::https_client(&cert);
        tokio::time::sleep(Duration::from_secs(3)).await; // pre-roll in the ring
        common::run::trigger_demo(&client, &base).await;
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let v = common::run::get_json_as_admin(&client, &format!("{base}/api/events")).await;
            if v["events"]
                .as_array()
                .unwrap()
                .iter()
                .any(|e| e["clip_id"].is_i64())
            {
                break;
            }
            assert!(Instant::now() < deadline, "no event got a clip: {v}");
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    });

    // A camera for the System page's "Test a camera" form.
    let probed = common::RtspFixture::with_spec(
        sentrix::ingest::demo::DemoSpec {
            width: 320,
            height: 240,
            fps: 10,
            bitrate_kbps: 300,
            ..Default::default()
        },
        None,
    );
    let probe_url = probed.url();
    let env = [("SENTRIX_PROBE_URL", probe_url.as_str())];
    let (out, out_dir) = browser_script("dashboard.py", &base, &env);
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    let ok = stop(child);
    let seen = what_it_saw("dashboard", &out, &stdout);
    assert!(seen["decoded_frames"].as_u64().unwrap() > 0);
    // The alarm-only camera's tile: its picture, and the badge says so.
    assert_eq!(seen["alarm_tile_badge"], "alarm-only", "{seen}");
    assert_eq!(seen["alarm_tile_picture_width"], 640, "{seen}");
    // The unreachable camera's tile says so in words, the technical reason as tooltip.
    let gate = seen["gate_trouble"].as_str().unwrap_or_default();
    assert!(gate.starts_with("Host unreachable"), "{seen}");
    // The probe form: the figures of the camera it was given, and its picture.
    let probe = seen["probe_text"].as_str().unwrap_or_default();
    assert!(
        probe.starts_with("H264") && probe.contains("320×240"),
        "{seen}"
    );
    assert_eq!(seen["probe_picture_width"], 640, "{seen}");
    // The Review page: first after login, a preview within 2 s, opening plays from the
    // pre-roll, mark-all clears the badge (the script checks each; here what it measured).
    assert_eq!(seen["landing"], serde_json::json!(["page-review"]));
    assert!(seen["preview_playing_s"].as_f64().unwrap() <= 2.0, "{seen}");
    assert_eq!(seen["after_mark_all"], 0);
    // The Users page's changes, each checked by a real login from the browser.
    assert_eq!(seen["dave_login"], 200);
    assert_eq!(seen["dave_old_password"], 401);
    assert_eq!(seen["dave_new_password"], 200);
    assert_eq!(seen["dave_removed_login"], 401);
    // API tokens from the Users page, the insights charts and the armed switch.
    assert_eq!(
        (
            &seen["token_api"],
            &seen["token_dashboard"],
            &seen["token_revoked"]
        ),
        (
            &serde_json::json!(200),
            &serde_json::json!(403),
            &serde_json::json!(401)
        )
    );
    assert!(seen["api_manual"].as_u64().unwrap() >= 1);
    assert_eq!(seen["chart_manual"], seen["api_manual"]);
    assert_eq!(seen["bar_manual"], seen["api_manual"]);
    assert_eq!(seen["armed"], "away");
    let hook = seen["target_row"].as_array().unwrap();
    assert_eq!(hook[0], "hook");
    assert_eq!(hook[1], "webhook");
    assert!(
        hook[3].as_str().unwrap().parse::<u32>().unwrap() >= 1,
        "failed attempts: {hook:?}"
    );
    assert_eq!(
        hook[4], "0",
        "a refused connection is retried, not rejected: {hook:?}"
    );
    assert!(
        hook[7].as_str().unwrap().contains("127.0.0.1"),
        "last error: {hook:?}"
    );
    assert!(out_dir.join("dashboard-clip.png").exists());
    assert!(ok, "sentrix run did not stop cleanly");
    let all = log.join("\n");
    assert!(!all.contains(ADMIN_PASSWORD), "password in the log");
}

/// Cameras from the browser (tests/it/browser_py/cameras.py): an ONVIF camera (ipycam's
/// implementation, tests/it/onvif_py) found by a directed scan, its profiles read with
/// its login, added through the add-camera page, plays on the Live page; a zone drawn
/// where nothing moves keeps motion events away, and one drawn over the moving ball lets
/// them come; the zone is saved where the API and the detector see it. The YAML is untouched
/// and the password is in no file under the data directory.
#[test]
fn cameras_in_headless_chromium() {
    let dir = common::temp_dir();
    let config = write_config(dir.path());
    let yaml_before = std::fs::read(&config).unwrap();
    assert!(add_admin(&config).status.success());
    let rtsp = crate::onvif::rtsp_server();
    let (mut onvif_camera, _, discovery_port) = crate::onvif::ipycam(rtsp.port());
    let (child, rx) = spawn_run(&config);
    let mut log = Vec::new();
    let base = common::run::dashboard_base(&rx, &mut log);
    let env = [
        (
            "SENTRIX_ONVIF_TARGET",
            format!("127.0.0.1:{discovery_port}"),
        ),
        ("SENTRIX_ADD_USER", crate::onvif::USER.to_string()),
        ("SENTRIX_ADD_PASSWORD", crate::onvif::PASSWORD.to_string()),
    ];
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let (out, out_dir) = browser_script("cameras.py", &base, &env);
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    let _ = onvif_camera.kill();
    let _ = onvif_camera.wait();
    let seen = what_it_saw("cameras", &out, &stdout);
    assert!(
        seen["scan"]
            .as_str()
            .unwrap_or_default()
            .starts_with("Test Gate"),
        "{seen}"
    );
    assert!(
        seen["onvif_msg"]
            .as_str()
            .unwrap_or_default()
            .contains("2 profiles"),
        "{seen}"
    );
    assert!(
        seen["main_url"]
            .as_str()
            .unwrap_or_default()
            .ends_with("/main"),
        "{seen}"
    );
    assert!(
        seen["sub_url"]
            .as_str()
            .unwrap_or_default()
            .ends_with("/sub"),
        "{seen}"
    );
    assert!(
        seen["probe_text"]
            .as_str()
            .unwrap_or_default()
            .starts_with("H264 · 640×360"),
        "{seen}"
    );
    assert_eq!(seen["suggested_id"], "front-door");
    // The ball moved before the zone: the test sees the gate close, not an idle camera.
    assert!(seen["events_before_zone"].as_u64() >= Some(1), "{seen}");
    assert_eq!(seen["events_outside_zone"], 0, "{seen}");
    eprintln!(
        "first event after drawing the zone: {} s",
        seen["event_inside_zone_s"]
    );
    let save_to_frame_s = seen["save_to_frame_s"].as_f64().unwrap();
    eprintln!("save to first live frame: {save_to_frame_s} s");
    assert!(save_to_frame_s < 10.0, "{seen}");
    let cert = std::fs::read(dir.path().join("certs/server.crt")).unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let cameras = rt.block_on(async {
        let client = common::run::https_client(&cert);
        common::run::get_json_as_admin(&client, &format!("{base}/api/cameras")).await
    });
    let door = cameras["cameras"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == "front-door")
        .cloned()
        .unwrap_or_else(|| panic!("no front-door in {cameras}"));
    assert_eq!(door["source"], "dashboard", "{door}");
    assert_eq!(door["password"], "••••", "{door}");
    let zone = &door["zones"][0];
    assert_eq!(zone["name"], "door", "{door}");
    assert_eq!(
        zone["labels"],
        serde_json::json!(["person", "motion"]),
        "{door}"
    );
    let points: Vec<(f64, f64)> = zone["points"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p[0].as_f64().unwrap(), p[1].as_f64().unwrap()))
        .collect();
    let wanted = [(0.1, 0.1), (0.5, 0.1), (0.6, 0.6), (0.1, 0.5)];
    assert_eq!(points.len(), 4, "{door}");
    for ((x, y), (wx, wy)) in points.iter().zip(wanted) {
        assert!((x - wx).abs() < 0.03 && (y - wy).abs() < 0.03, "{points:?}");
    }
    assert!(stop(child));
    while let Ok(line) = rx.try_recv() {
        log.push(line);
    }
    assert!(
        log.iter()
            .any(|l| l.contains("zones and masks applied") && l.contains("front-door")),
        "the detector did not take the zone:\n{}",
        log.join("\n")
    );
    assert_eq!(std::fs::read(&config).unwrap(), yaml_before);
    for f in common::files_under(dir.path()) {
        let bytes = std::fs::read(&f).unwrap_or_default();
        assert!(
            !bytes
                .windows(crate::onvif::PASSWORD.len())
                .any(|w| w == crate::onvif::PASSWORD.as_bytes()),
            "the password in clear in {}",
            f.display()
        );
    }
    assert!(out_dir.join("cameras-zones.png").exists());
}

/// The timeline page: `sentrix run` recording the demo camera continuously in 10-second
/// segments, one manual event, then tests/it/browser_py/timeline.py clicks, plays across
/// segment boundaries and exports in headless Chromium.
#[test]
fn timeline_in_headless_chromium() {
    let dir = common::temp_dir();
    let config = write_config(dir.path());
    let text = std::fs::read_to_string(&config).unwrap().replace(
        "record:\n",
        "record:\n  mode: continuous\n  segment_seconds: 10\n",
    );
    std::fs::write(&config, text).unwrap();
    assert!(add_admin(&config).status.success());
    // Segment seals are logged at debug: a failure's report shows where the runs broke.
    let record_debug = std::ffi::OsStr::new("info,sentrix::record=debug");
    let (child, rx) = common::run::spawn_run_with(&config, &[], &[("RUST_LOG", record_debug)]);
    let mut log = Vec::new();
    let base = common::run::dashboard_base(&rx, &mut log);
    let cert = std::fs::read(dir.path().join("certs/server.crt")).unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let client = common::run::https_client(&cert);
        tokio::time::sleep(Duration::from_secs(14)).await;
        common::run::trigger_demo(&client, &base).await;
        // Three segments sealed: 30 s of video and more.
        tokio::time::sleep(Duration::from_secs(22)).await;
    });
    let (out, out_dir) = browser_script("timeline.py", &base, &[]);
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    let ok = stop(child);
    if !out.status.success() {
        // `sentrix run` has exited: its log ends.
        log.extend(rx.iter());
        eprintln!("sentrix log:\n{}", log.join("\n"));
    }
    let seen = what_it_saw("timeline", &out, &stdout);
    assert!(seen["click_offset_ms"].as_f64().unwrap().abs() <= 1000.0);
    assert!(out_dir.join("timeline-playing.png").exists());
    assert!(out_dir.join("timeline-phone.png").exists());
    assert!(ok, "sentrix run did not stop cleanly");
}

/// The live view: an H.264 camera (RTSP fixture) and an H.265 demo camera; then
/// tests/it/browser_py/live.py checks the tile plays at the live edge for 30 s, the H.265
/// tile falls back to MJPEG, and, after this test restarts the camera when the script
/// asks, the tile plays again within 5 s without a reload.
#[test]
fn live_view_in_headless_chromium() {
    use std::io::{BufRead, BufReader, Write};
    let mut camera = common::RtspFixture::start(sentrix::ingest::Codec::H264);
    let dir = common::temp_dir();
    let cameras = format!(
        "  - id: cam\n    url: {}\n  - id: hevc\n    url: demo://h265?width=320&height=240&fps=5&bitrate=300\n",
        camera.url()
    );
    let config = common::run::write_config_with(dir.path(), &cameras);
    assert!(add_admin(&config).status.success());
    let (child, rx) = spawn_run(&config);
    let mut log = Vec::new();
    let base = common::run::dashboard_base(&rx, &mut log);
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let out_dir = root.join("target/browser-test");
    std::fs::create_dir_all(&out_dir).unwrap();
    let mut script = Command::new("/usr/bin/python3")
        .arg(root.join("tests/it/browser_py/live.py"))
        .args([base.as_str(), "alice", ADMIN_PASSWORD])
        .arg(&out_dir)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = script.stdin.take().unwrap();
    let mut last = String::new();
    for line in BufReader::new(script.stdout.take().unwrap()).lines() {
        let line = line.unwrap();
        if line == "RESTART" {
            camera.stop();
            std::thread::sleep(Duration::from_secs(2));
            camera.restart();
            writeln!(stdin, "restarted").unwrap();
        } else {
            last = line;
        }
    }
    let out = script.wait_with_output().unwrap();
    let ok = stop(child);
    let seen = what_it_saw("live view", &out, &last);
    assert!(seen["edge_s"]["max"].as_f64().unwrap() <= 1.0);
    assert_eq!(seen["tile"][0], "live");
    assert!(seen["hevc"].as_str().unwrap().contains("fallback"));
    assert_eq!(seen["reloads"], 1);
    assert!(ok, "sentrix run did not stop cleanly");
}
