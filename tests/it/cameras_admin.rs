//! Cameras managed from the dashboard, against `sentrix run` through real TLS: an admin
//! adds a camera that needs a password (typed in its URL), and it streams while the file's
//! demo camera keeps running untouched; the password is sealed (no file under the data
//! directory, log or audit holds it) and never sent back; a bad entry gets check-config's
//! own message keyed inside the entry; the file's cameras cannot be changed here; the
//! camera survives a restart (its password opened again, or the fixture would refuse it);
//! an edit restarts it alone; removing it says its recordings stay for retention; a viewer
//! may not change cameras. surveillance.yml is never written.

use crate::common::run::{ADMIN_PASSWORD, SENTRIX, add_admin, spawn_run, stop, write_config};
use crate::common::{self, RtspFixture};
use serde_json::{Value, json};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const GATE_PASSWORD: &str = "gate-pass-7731";
const VIEWER_PASSWORD: &str = "another long password";

fn add_viewer(config: &std::path::Path) {
    use std::io::Write;
    let mut add = Command::new(SENTRIX)
        .args(["user", "add", "bob", "--role", "viewer", "--password-stdin"])
        .arg("--config")
        .arg(config)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut stdin = add.stdin.take().unwrap();
    stdin
        .write_all(format!("{VIEWER_PASSWORD}\n").as_bytes())
        .unwrap();
    drop(stdin);
    assert!(add.wait().unwrap().success());
}

struct Api {
    client: reqwest::Client,
    base: String,
}

impl Api {
    async fn call(
        &self,
        method: &str,
        path: &str,
        body: Option<Value>,
        user: (&str, &str),
    ) -> (u16, Value) {
        let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let mut r = self
            .client
            .request(method, format!("{}{path}", self.base))
            .header("origin", &self.base)
            .basic_auth(user.0, Some(user.1));
        if let Some(b) = body {
            r = r.json(&b);
        }
        let r = r.send().await.unwrap();
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    async fn admin(&self, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        self.call(method, path, body, ("alice", ADMIN_PASSWORD))
            .await
    }

    async fn camera(&self, id: &str) -> Option<Value> {
        let (_, v) = self.admin("GET", "/api/cameras", None).await;
        v["cameras"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["id"] == id)
            .cloned()
    }

    /// A camera's figure from `/metrics` (e.g. `sentrix_camera_frames`).
    async fn metric(&self, name: &str, id: &str) -> f64 {
        let (user, pw) = ("alice", ADMIN_PASSWORD);
        let text = self
            .client
            .get(format!("{}/metrics", self.base))
            .basic_auth(user, Some(pw))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let head = format!("{name}{{camera=\"{id}\"}} ");
        text.lines()
            .find_map(|l| l.strip_prefix(&head))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or_else(|| panic!("no {head} in {text}"))
    }

    /// Waits until camera `id` streams; panics with its last answer after 25 s.
    async fn wait_streaming(&self, id: &str) {
        let start = Instant::now();
        loop {
            let cam = self.camera(id).await;
            if cam.as_ref().is_some_and(|c| c["state"] == "streaming") {
                return;
            }
            assert!(start.elapsed() < Duration::from_secs(25), "{id}: {cam:?}");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

fn ingest_starts(log: &[String], id: &str) -> usize {
    log.iter()
        .filter(|l| l.contains("starting ingest") && l.contains(&format!("camera={id}")))
        .count()
}

fn drain(rx: &std::sync::mpsc::Receiver<String>, log: &mut Vec<String>) {
    while let Ok(line) = rx.try_recv() {
        log.push(line);
    }
}

/// No file under `dir` holds `needle`.
fn assert_nowhere(dir: &std::path::Path, needle: &str) {
    for f in common::files_under(dir) {
        let bytes = std::fs::read(&f).unwrap_or_default();
        assert!(
            !bytes.windows(needle.len()).any(|w| w == needle.as_bytes()),
            "{needle:?} in clear in {}",
            f.display()
        );
    }
}

#[test]
fn cameras_are_added_changed_and_removed_in_the_dashboard() {
    let dir = common::temp_dir();
    let config = write_config(dir.path());
    let yaml_before = std::fs::read(&config).unwrap();
    assert!(add_admin(&config).status.success());
    add_viewer(&config);
    let gate = RtspFixture::with_spec(Default::default(), Some(("admin", GATE_PASSWORD)));
    let cert_path = dir.path().join("certs/server.crt");
    let mut log = Vec::new();
    let rt = tokio::runtime::Runtime::new().unwrap();

    let (child, rx) = spawn_run(&config);
    let base = common::run::dashboard_base(&rx, &mut log);
    let api = Api {
        client: common::run::https_client(&std::fs::read(&cert_path).unwrap()),
        base,
    };
    rt.block_on(async {
        api.wait_streaming("demo").await;
        let demo = api.camera("demo").await.unwrap();
        assert_eq!(demo["source"], "yaml", "{demo}");
        let demo_frames = api.metric("sentrix_camera_frames", "demo").await;

        // Added with the password typed in the URL: sealed, masked, never sent back.
        let url = gate.url_with("admin", GATE_PASSWORD);
        let (status, v) = api
            .admin("POST", "/api/cameras", Some(json!({"id": "gate", "name": "Gate", "url": url})))
            .await;
        assert_eq!(status, 201, "{v}");
        assert_eq!(v["camera"]["password"], "••••", "{v}");
        assert_eq!(v["camera"]["source"], "dashboard", "{v}");
        assert!(!v.to_string().contains(GATE_PASSWORD), "{v}");
        api.wait_streaming("gate").await;
        let (_, all) = api.admin("GET", "/api/cameras", None).await;
        assert!(!all.to_string().contains(GATE_PASSWORD));

        // A bad entry: check-config's message, keyed inside the entry.
        let (status, v) = api
            .admin("POST", "/api/cameras", Some(json!({"id": "shed", "url": "ftp://cam.lan/x"})))
            .await;
        assert_eq!(status, 400, "{v}");
        assert_eq!(v["problems"][0]["key"], "url", "{v}");
        let message = v["problems"][0]["message"].as_str().unwrap().to_string();
        assert!(message.starts_with("scheme \"ftp\""), "{message}");
        let (status, v) = api
            .admin("POST", "/api/cameras", Some(json!({"id": "shed", "url": "rtsp://cam.lan/x", "zones": [{"name": "z", "points": [[0.1, 0.1], [2.0, 0.5]]}]})))
            .await;
        assert_eq!(status, 400, "{v}");
        let (status, v) = api
            .admin("POST", "/api/cameras", Some(json!({"id": "shed", "url": "rtsp://cam.lan/x", "colour": "red"})))
            .await;
        assert_eq!(status, 400, "{v}");
        assert!(v["message"].as_str().unwrap().contains("colour"), "{v}");

        // The file's cameras are shown, not changed here; ids stay unique.
        for (method, path, body) in [
            ("POST", "/api/cameras", Some(json!({"id": "demo", "url": "rtsp://cam.lan/x"}))),
            ("PUT", "/api/cameras/demo", Some(json!({"url": "rtsp://cam.lan/x"}))),
            ("DELETE", "/api/cameras/demo", None),
            ("POST", "/api/cameras", Some(json!({"id": "gate", "url": "rtsp://cam.lan/x"}))),
        ] {
            let (status, v) = api.admin(method, path, body).await;
            assert_eq!(status, 409, "{method} {path}: {v}");
        }
        let (status, _) = api.admin("DELETE", "/api/cameras/nope", None).await;
        assert_eq!(status, 404);
        let (status, _) = api
            .call("POST", "/api/cameras", Some(json!({"id": "x", "url": "rtsp://cam.lan/x"})), ("bob", VIEWER_PASSWORD))
            .await;
        assert_eq!(status, 403);
        // The demo camera's frame counter ran on through every change: never restarted.
        let frames_now = api.metric("sentrix_camera_frames", "demo").await;
        assert!(frames_now > demo_frames, "{frames_now} after {demo_frames}");
        assert_eq!(api.metric("sentrix_camera_reconnects", "demo").await, 0.0);
    });
    drain(&rx, &mut log);
    // The demo camera was never restarted by the changes.
    assert_eq!(ingest_starts(&log, "demo"), 1, "{}", log.join("\n"));
    assert!(stop(child));
    drain(&rx, &mut log);
    assert!(!log.join("\n").contains(GATE_PASSWORD));
    assert_nowhere(dir.path(), GATE_PASSWORD);
    assert_eq!(
        std::fs::read(&config).unwrap(),
        yaml_before,
        "the YAML was rewritten"
    );

    // After a restart the camera is back, its sealed password opened again.
    let (child, rx) = spawn_run(&config);
    let mut log = Vec::new();
    let base = common::run::dashboard_base(&rx, &mut log);
    let api = Api { base, ..api };
    rt.block_on(async {
        api.wait_streaming("gate").await;
        // An edit without a password keeps it; the camera restarts alone.
        let (status, v) = api
            .admin("PUT", "/api/cameras/gate", Some(json!({"name": "Front gate", "url": format!("rtsp://admin@127.0.0.1:{}/cam", gate.port)})))
            .await;
        assert_eq!(status, 200, "{v}");
        assert_eq!(v["camera"]["name"], "Front gate", "{v}");
        assert_eq!(v["camera"]["password"], "••••", "{v}");
        api.wait_streaming("gate").await;
        // A wrong password is the camera's trouble, in words.
        let (status, v) = api
            .admin("PUT", "/api/cameras/gate", Some(json!({"name": "Front gate", "url": format!("rtsp://admin@127.0.0.1:{}/cam", gate.port), "password": "not-it"})))
            .await;
        assert_eq!(status, 200, "{v}");
        let start = Instant::now();
        loop {
            let cam = api.camera("gate").await.unwrap();
            if cam["trouble"]["kind"] == "wrong_password" {
                break;
            }
            assert!(start.elapsed() < Duration::from_secs(20), "{cam}");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        let (status, v) = api.admin("DELETE", "/api/cameras/gate", None).await;
        assert_eq!(status, 200, "{v}");
        assert!(v["message"].as_str().unwrap().contains("retention"), "{v}");
        assert!(api.camera("gate").await.is_none());
        api.wait_streaming("demo").await;
    });
    drain(&rx, &mut log);
    assert_eq!(ingest_starts(&log, "demo"), 1, "{}", log.join("\n"));
    assert!(stop(child));
    assert_nowhere(dir.path(), GATE_PASSWORD);
}

/// Motion events of camera `id` that started after `since_ms`.
async fn events_since(api: &Api, id: &str, since_ms: i64) -> usize {
    let (_, v) = api
        .admin(
            "GET",
            &format!("/api/events?camera={id}&since={since_ms}"),
            None,
        )
        .await;
    v["events"].as_array().map_or(0, |e| e.len())
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

#[test]
fn drawn_zones_apply_at_once_and_outlive_a_restart() {
    let dir = common::temp_dir();
    let config = write_config(dir.path());
    let yaml_before = std::fs::read(&config).unwrap();
    assert!(add_admin(&config).status.success());
    let mut log = Vec::new();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let (child, rx) = spawn_run(&config);
    let base = common::run::dashboard_base(&rx, &mut log);
    let cert = std::fs::read(dir.path().join("certs/server.crt")).unwrap();
    let api = Api {
        client: common::run::https_client(&cert),
        base,
    };
    // The demo ball moves 6 s in every 20: motion events come, unless a zone keeps them out.
    let corner =
        json!([{"name": "corner", "points": [[0.0, 0.0], [0.01, 0.0], [0.01, 0.01], [0.0, 0.01]]}]);
    let everywhere =
        json!([{"name": "drive", "points": [[0.0, 0.0], [1.0, 0.0], [1.0, 1.0], [0.0, 1.0]]}]);
    rt.block_on(async {
        api.wait_streaming("demo").await;
        let (status, v) = api
            .admin(
                "PUT",
                "/api/cameras/demo/zones",
                Some(json!({"zones": [{"points": [[0.1, 0.1], [0.2, 0.2]]}]})),
            )
            .await;
        assert_eq!(status, 400, "{v}");
        assert!(
            v["problems"][0]["key"]
                .as_str()
                .unwrap()
                .starts_with("zones[0]"),
            "{v}"
        );
        let (status, v) = api
            .admin(
                "PUT",
                "/api/cameras/demo/zones",
                Some(json!({"zones": corner})),
            )
            .await;
        assert_eq!(status, 200, "{v}");
        assert_eq!(v["camera"]["zones"][0]["name"], "corner", "{v}");
        // Outside the zone: a whole cycle of the ball and no event.
        let since = now_ms() + 1000;
        tokio::time::sleep(Duration::from_secs(24)).await;
        assert_eq!(events_since(&api, "demo", since).await, 0);
        // Inside it: an event within a cycle.
        let (status, v) = api
            .admin(
                "PUT",
                "/api/cameras/demo/zones",
                Some(json!({"zones": everywhere})),
            )
            .await;
        assert_eq!(status, 200, "{v}");
        let since = now_ms();
        let start = Instant::now();
        while events_since(&api, "demo", since).await == 0 {
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "no event inside the zone"
            );
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    });
    drain(&rx, &mut log);
    assert_eq!(ingest_starts(&log, "demo"), 1, "{}", log.join("\n"));
    assert!(
        log.iter()
            .any(|l| l.contains("zones and masks applied: 1 zones")),
        "{}",
        log.join("\n")
    );
    assert!(stop(child));

    let (child, rx) = spawn_run(&config);
    let mut log = Vec::new();
    let base = common::run::dashboard_base(&rx, &mut log);
    let api = Api { base, ..api };
    rt.block_on(async {
        let demo = api.camera("demo").await.unwrap();
        assert_eq!(demo["zones"], everywhere, "{demo}");
    });
    assert!(stop(child));
    assert_eq!(
        std::fs::read(&config).unwrap(),
        yaml_before,
        "the YAML was rewritten"
    );
}
