//! The dashboard as `sentrix run` starts it: off (with the exact command to fix it) while
//! there is no user; after `sentrix user add … --password-stdin`, served over TLS with a
//! generated certificate whose fingerprint is logged, answering a real HTTPS client.

use crate::common;

use common::run::{
    ADMIN_PASSWORD, SENTRIX, add_admin, dashboard_port, spawn_run, stop, wait_for, write_config,
};
use std::process::Command;
use std::time::Duration;

#[test]
fn dashboard_needs_a_user_then_serves_https() {
    let dir = common::temp_dir();
    let config = write_config(dir.path());

    let (child, rx) = spawn_run(&config);
    let mut log = Vec::new();
    let hint = wait_for(&rx, "the dashboard is off", &mut log)
        .unwrap_or_else(|| panic!("no hint without users:\n{}", log.join("\n")));
    assert!(
        hint.contains("sentrix user add NAME --role admin"),
        "{hint}"
    );
    assert!(stop(child));

    let out = add_admin(&config);
    assert!(out.status.success());
    assert!(!String::from_utf8_lossy(&out.stdout).contains(ADMIN_PASSWORD));
    let audit = std::fs::read_to_string(dir.path().join("db/audit.log")).unwrap();
    assert!(audit.contains("\"action\":\"user_add\""), "{audit}");
    assert!(!audit.contains(ADMIN_PASSWORD));
    let listed = Command::new(SENTRIX)
        .args(["user", "list", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&listed.stdout).starts_with("alice\tadmin"));

    let (child, rx) = spawn_run(&config);
    let mut log = Vec::new();
    let fp_line = wait_for(&rx, "fingerprint", &mut log)
        .unwrap_or_else(|| panic!("no fingerprint:\n{}", log.join("\n")));
    let line = wait_for(&rx, "dashboard on https://", &mut log)
        .unwrap_or_else(|| panic!("no dashboard:\n{}", log.join("\n")));
    let port = dashboard_port(&line);
    let key = dir.path().join("certs/server.key");
    let mode =
        std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&key).unwrap().permissions());
    assert_eq!(mode & 0o777, 0o600, "key file mode");
    let cert = std::fs::read(dir.path().join("certs/server.crt")).unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let (status, body, fp_ok) = rt.block_on(async {
        let client = common::run::https_client(&cert);
        let r = client
            .get(format!("https://localhost:{port}/api/health"))
            .basic_auth("alice", Some(ADMIN_PASSWORD))
            .send()
            .await
            .unwrap();
        let status = r.status();
        (status, r.text().await.unwrap(), true)
    });
    assert!(fp_ok);
    assert_eq!(status, 200, "{body}");
    rt.block_on(live_routes(&port, &cert));
    assert!(body.contains("\"status\":\"ok\""), "{body}");
    // What the system page shows: versions and the retention in force.
    let health: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert!(
        health["versions"]["gstreamer"]
            .as_str()
            .unwrap()
            .starts_with("GStreamer 1."),
        "{body}"
    );
    assert!(
        health["retention"]["min_free_percent"].is_number(),
        "{body}"
    );
    // The logged fingerprint is the certificate's.
    let der = rustls::pki_types::CertificateDer::from_pem_slice(&cert).unwrap();
    let fp = sentrix::tls::fingerprint(&der);
    assert!(fp_line.contains(&fp), "{fp_line} vs {fp}");
    assert!(
        stop(child),
        "sentrix run did not stop cleanly:\n{}",
        log.join("\n")
    );
    let all = log.join("\n");
    assert!(!all.contains(ADMIN_PASSWORD));
}

use rustls::pki_types::pem::PemObject;

/// Snapshot, MJPEG, SSE (camera state and a motion event from the demo ball), the manual
/// trigger and /metrics of the running demo camera.
async fn live_routes(port: &str, cert: &[u8]) {
    let client = common::run::https_client(cert);
    let base = format!("https://localhost:{port}");
    let get = |path: &str| {
        client
            .get(format!("{base}{path}"))
            .basic_auth("alice", Some(ADMIN_PASSWORD))
            .send()
    };
    // The first decoded picture takes a moment.
    let mut jpeg = Vec::new();
    for _ in 0..50 {
        let r = get("/api/cameras/demo/snapshot.jpg").await.unwrap();
        if r.status() == 200 {
            assert_eq!(r.headers()["content-type"], "image/jpeg");
            jpeg = r.bytes().await.unwrap().to_vec();
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(&jpeg[..3], &[0xFF, 0xD8, 0xFF], "no snapshot");

    let mut mjpeg = get("/api/cameras/demo/live.mjpeg").await.unwrap();
    assert!(
        mjpeg.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("multipart/x-mixed-replace")
    );
    let mut seen = Vec::new();
    while seen.windows(3).filter(|w| *w == [0xFF, 0xD8, 0xFF]).count() < 2 {
        let chunk = tokio::time::timeout(Duration::from_secs(10), mjpeg.chunk())
            .await
            .expect("MJPEG frames keep coming")
            .unwrap()
            .expect("stream open");
        seen.extend_from_slice(&chunk);
    }
    drop(mjpeg);

    let mut sse = get("/api/events/stream").await.unwrap();
    assert_eq!(sse.headers()["content-type"], "text/event-stream");
    let mut text = String::new();
    let mut triggered = false;
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    while !(text.contains("event: camera") && text.contains("\"label\":\"manual\"")) {
        assert!(std::time::Instant::now() < deadline, "SSE so far: {text}");
        if text.contains("event: camera") && !triggered {
            // An admin's manual trigger starts a "manual" event, announced to the stream.
            common::run::trigger_demo(&client, &base).await;
            triggered = true;
        }
        if let Ok(Ok(Some(chunk))) = tokio::time::timeout(Duration::from_secs(1), sse.chunk()).await
        {
            text.push_str(&String::from_utf8_lossy(&chunk));
        }
    }
    assert!(text.contains("\"state\":\"streaming\""), "{text}");
    assert!(text.contains("event: start"), "{text}");
    drop(sse);

    let metrics = get("/metrics").await.unwrap().text().await.unwrap();
    for name in [
        "sentrix_camera_fps{camera=\"demo\"}",
        "sentrix_detector_gated_ratio{camera=\"demo\"}",
        "sentrix_clips",
        "sentrix_lockouts",
    ] {
        assert!(metrics.contains(name), "{name} missing:\n{metrics}");
    }
}

/// `sentrix init` on a fresh box: the first admin with a generated password shown once
/// (which then logs in over HTTPS), a certificate and its fingerprint; a second `init` is
/// refused. Then an expired certificate stops `run` with a message naming file and date.
#[test]
fn init_sets_up_once_and_an_expired_certificate_stops_run() {
    let dir = common::temp_dir();
    let config = write_config(dir.path());
    let init = || {
        Command::new(SENTRIX)
            .args(["init", "--config"])
            .arg(&config)
            .output()
            .unwrap()
    };
    let out = init();
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let password = stdout
        .lines()
        .find_map(|l| l.strip_prefix("password (shown once, write it down): "))
        .unwrap_or_else(|| panic!("no password printed: {stdout}"))
        .to_string();
    assert_eq!(password.len(), 20);
    assert!(stdout.contains("user: admin (admin)"), "{stdout}");
    let cert = std::fs::read(dir.path().join("certs/server.crt")).unwrap();
    let der = rustls::pki_types::CertificateDer::from_pem_slice(&cert).unwrap();
    let fp = sentrix::tls::fingerprint(&der);
    assert!(
        stdout.contains(&format!("SHA-256 fingerprint: {fp}")),
        "{stdout}"
    );
    let audit = std::fs::read_to_string(dir.path().join("db/audit.log")).unwrap();
    assert!(
        audit.contains("admin (admin, init)") && !audit.contains(&password),
        "{audit}"
    );

    let needed = Command::new(SENTRIX)
        .args(["init", "--if-needed", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    assert!(needed.status.success(), "--if-needed on a set-up box");
    assert!(!String::from_utf8_lossy(&needed.stdout).contains("password"));
    let again = init();
    assert!(!again.status.success());
    let err = String::from_utf8_lossy(&again.stderr);
    assert!(
        err.contains("already set up") && err.contains("admin"),
        "{err}"
    );
    assert!(!String::from_utf8_lossy(&again.stdout).contains("password"));

    // The printed password is the admin's.
    let (child, rx) = spawn_run(&config);
    let mut log = Vec::new();
    let line = wait_for(&rx, "dashboard on https://", &mut log)
        .unwrap_or_else(|| panic!("no dashboard:\n{}", log.join("\n")));
    let port = dashboard_port(&line);
    let rt = tokio::runtime::Runtime::new().unwrap();
    let status = rt.block_on(async {
        common::run::https_client(&cert)
            .get(format!("https://localhost:{port}/api/me"))
            .basic_auth("admin", Some(&password))
            .send()
            .await
            .unwrap()
            .status()
    });
    assert_eq!(status, 200);
    assert!(stop(child));
    assert!(!log.join("\n").contains(&password));

    // An expired certificate in place of the generated one: run refuses to start.
    let mut params = rcgen::CertificateParams::new(vec!["localhost".to_string()]).unwrap();
    params.not_before = rcgen::date_time_ymd(2019, 1, 1);
    params.not_after = rcgen::date_time_ymd(2022, 3, 31);
    let pair = rcgen::KeyPair::generate().unwrap();
    let expired = params.self_signed(&pair).unwrap();
    std::fs::write(dir.path().join("certs/server.crt"), expired.pem()).unwrap();
    std::fs::write(dir.path().join("certs/server.key"), pair.serialize_pem()).unwrap();
    let out = Command::new(SENTRIX)
        .args(["run", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    assert!(
        !out.status.success(),
        "run started with an expired certificate"
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("server.crt") && err.contains("expired on 2022-03-31"),
        "{err}"
    );
}

/// SIGHUP (what `systemctl reload` sends): a valid new config restarts the cameras with
/// it (a new camera streams) in the same process; a broken one is reported with its line
/// and ignored while recording goes on. Both land in the audit log.
#[test]
fn sighup_reloads_a_valid_config_and_ignores_a_broken_one() {
    let dir = common::temp_dir();
    let config = write_config(dir.path());
    let original = std::fs::read_to_string(&config).unwrap();
    let (child, rx) = spawn_run(&config);
    let pid = child.id() as i32;
    let mut log = Vec::new();
    wait_for(&rx, "camera=demo", &mut log)
        .unwrap_or_else(|| panic!("demo never streamed:\n{}", log.join("\n")));
    std::thread::sleep(Duration::from_millis(1500)); // signal handlers installed

    let added = format!("{original}  - id: yard\n    url: demo://?width=320&height=240&fps=5\n");
    std::fs::write(&config, added).unwrap();
    // SAFETY: signalling our own child.
    unsafe { libc::kill(pid, libc::SIGHUP) };
    wait_for(&rx, "SIGHUP: config", &mut log)
        .unwrap_or_else(|| panic!("no reload:\n{}", log.join("\n")));
    wait_for(&rx, "camera=yard", &mut log)
        .unwrap_or_else(|| panic!("the new camera never started:\n{}", log.join("\n")));
    std::thread::sleep(Duration::from_millis(1500));

    std::fs::write(&config, format!("{original}  - id: [broken\n")).unwrap();
    unsafe { libc::kill(pid, libc::SIGHUP) };
    let refused = wait_for(&rx, "the new config is not used", &mut log)
        .unwrap_or_else(|| panic!("broken config not reported:\n{}", log.join("\n")));
    assert!(refused.contains("surveillance.yml:"), "{refused}");
    // Still running with the old config: the health socket answers healthy (healthcheck
    // reads the config to find the socket, so it gets a valid one).
    std::fs::write(&config, &original).unwrap();
    let (healthy, report) = common::run::healthcheck(&config);
    assert!(healthy, "{report}");
    assert!(stop(child), "no clean stop:\n{}", log.join("\n"));
    let audit = std::fs::read_to_string(dir.path().join("db/audit.log")).unwrap();
    assert!(audit.contains("\"action\":\"config_reload\""), "{audit}");
    assert!(
        audit.contains("\"action\":\"config_reload_refused\""),
        "{audit}"
    );
}
