//! ONVIF against an implementation this project did not write: ipycam's ONVIF device and
//! media service and WS-Discovery responder (tests/it/onvif_py/camera.py) fronting the
//! test's RTSP server, whose clock runs 120 s ahead. Through `sentrix run` and real TLS:
//! a directed scan to its loopback discovery port finds it; a wrong login is "wrong
//! password"; the right one answers its identity, the clock offset with a warning, and a
//! main and a sub profile whose stream URIs the probe reads; the camera is added with them
//! and streams, and a second scan says it is added. Then, in a network namespace the test
//! makes (so nothing reaches the host's network), `sentrix onvif discover` finds ipycam's
//! own multicast responder by multicast alone.

use crate::common;
use crate::common::run::{ADMIN_PASSWORD, SENTRIX, add_admin, spawn_run, stop, write_config};
use sentrix::ingest::demo::{DemoSpec, Mount, RtspServer};
use serde_json::{Value, json};
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub(crate) const USER: &str = "admin";
pub(crate) const PASSWORD: &str = "gate-onvif-5521";

fn ipycam_dir() -> String {
    std::env::var("SENTRIX_IPYCAM_DIR").unwrap_or_else(|_| {
        format!(
            "{}/.cache/sentrix/ipycam-1.3.0",
            std::env::var("HOME").unwrap()
        )
    })
}

/// An RTSP server with a 640x360 main stream and a 320x180 sub-stream, both behind the login.
pub(crate) fn rtsp_server() -> RtspServer {
    let mount = |path: &str, width, height| {
        let spec = DemoSpec {
            width,
            height,
            fps: 15,
            bitrate_kbps: 400,
            ..Default::default()
        };
        let mut m = Mount::new(path, spec.launch_line());
        m.credentials = Some((USER.into(), PASSWORD.into()));
        m
    };
    RtspServer::start(0, &[mount("/main", 640, 360), mount("/sub", 320, 180)]).unwrap()
}

/// ipycam's camera; returns it with its HTTP and discovery ports.
pub(crate) fn ipycam(rtsp_port: u16) -> (Child, u16, u16) {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/it/onvif_py/camera.py");
    let args = [
        ipycam_dir(),
        rtsp_port.to_string(),
        "main".into(),
        "sub".into(),
        USER.into(),
        PASSWORD.into(),
        "120".into(),
    ];
    let mut child = Command::new("/usr/bin/python3")
        .arg(script)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let ports: Vec<u16> = line
        .split_whitespace()
        .skip(1)
        .filter_map(|p| p.parse().ok())
        .collect();
    assert_eq!(ports.len(), 2, "camera.py said {line:?}");
    (child, ports[0], ports[1])
}

async fn admin_call(
    client: &reqwest::Client,
    base: &str,
    method: reqwest::Method,
    path: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let mut r = client
        .request(method, format!("{base}{path}"))
        .header("origin", base)
        .basic_auth("alice", Some(ADMIN_PASSWORD));
    if let Some(b) = body {
        r = r.json(&b);
    }
    let r = r.send().await.unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

#[test]
fn discover_profiles_probe_add_and_stream_through_onvif() {
    let server = rtsp_server();
    let (mut camera, http_port, discovery_port) = ipycam(server.port());
    let dir = common::temp_dir();
    let config = write_config(dir.path());
    assert!(add_admin(&config).status.success());
    let (child, rx) = spawn_run(&config);
    let mut log = Vec::new();
    let base = common::run::dashboard_base(&rx, &mut log);
    let cert = std::fs::read(dir.path().join("certs/server.crt")).unwrap();
    let client = common::run::https_client(&cert);
    let rt = tokio::runtime::Runtime::new().unwrap();
    let xaddr = format!("http://127.0.0.1:{http_port}/onvif/device_service");
    rt.block_on(async {
        use reqwest::Method as M;
        // Discovery, directed at the camera's loopback port: no multicast from a test.
        let scan = format!("/api/onvif/discover?targets=127.0.0.1:{discovery_port}&multicast=false");
        let (status, v) = admin_call(&client, &base, M::GET, &scan, None).await;
        assert_eq!(status, 200, "{v}");
        let found = &v["cameras"][0];
        assert_eq!(found["xaddrs"][0], xaddr, "{v}");
        assert_eq!(found["name"], "Test Gate", "{v}");
        assert_eq!(found["added_as"], json!([]), "{v}");

        let read = |password: &str| json!({"xaddr": xaddr, "username": USER, "password": password});
        let (status, v) = admin_call(&client, &base, M::POST, "/api/onvif/profiles", Some(read("not-it"))).await;
        assert_eq!(status, 200, "{v}");
        assert_eq!(v["trouble"]["kind"], "wrong_password", "{v}");
        let asked = Instant::now();
        let (status, v) = admin_call(&client, &base, M::POST, "/api/onvif/profiles", Some(read(PASSWORD))).await;
        eprintln!("profiles in {:?}: {v}", asked.elapsed());
        assert_eq!((status, &v["ok"]), (200, &json!(true)), "{v}");
        let cam = &v["camera"];
        assert_eq!((cam["manufacturer"].as_str(), cam["model"].as_str()), (Some("IPyCam"), Some("VirtualCam-1")));
        let offset = cam["clock_offset_s"].as_f64().unwrap();
        assert!((117.0..=123.0).contains(&offset), "{cam}");
        assert!(cam["clock_warning"].as_str().unwrap().contains("ahead"), "{cam}");
        let profiles = cam["profiles"].as_array().unwrap();
        assert_eq!(profiles.len(), 2, "{cam}");
        let port = server.port();
        assert_eq!(profiles[0]["stream_uri"], format!("rtsp://127.0.0.1:{port}/main"));
        assert_eq!(profiles[1]["stream_uri"], format!("rtsp://127.0.0.1:{port}/sub"));
        assert_eq!((profiles[1]["width"].as_u64(), profiles[1]["codec"].as_str()), (Some(320), Some("H264")));
        assert!(!v.to_string().contains(PASSWORD));

        // The probe reads the main profile's stream; the camera is added with both.
        let with_user = |uri: &Value| uri.as_str().unwrap().replacen("rtsp://", &format!("rtsp://{USER}@"), 1);
        let main_uri = with_user(&profiles[0]["stream_uri"]);
        let sub_uri = with_user(&profiles[1]["stream_uri"]);
        let probe_url = main_uri.replacen(&format!("{USER}@"), &format!("{USER}:{PASSWORD}@"), 1);
        let (_, p) = admin_call(&client, &base, M::POST, "/api/cameras/probe", Some(json!({"url": probe_url}))).await;
        assert_eq!((p["ok"].as_bool(), p["width"].as_u64()), (Some(true), Some(640)), "{p}");
        let entry = json!({"id": "gate", "name": "Gate", "url": main_uri, "detect_url": sub_uri, "password": PASSWORD});
        let (status, v) = admin_call(&client, &base, M::POST, "/api/cameras", Some(entry)).await;
        assert_eq!(status, 201, "{v}");
        let start = Instant::now();
        loop {
            let (_, all) = admin_call(&client, &base, M::GET, "/api/cameras", None).await;
            let gate = all["cameras"].as_array().unwrap().iter().find(|c| c["id"] == "gate").cloned().unwrap();
            if gate["state"] == "streaming" {
                break;
            }
            assert!(start.elapsed() < Duration::from_secs(20), "{gate}");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        let (_, v) = admin_call(&client, &base, M::GET, &scan, None).await;
        assert_eq!(v["cameras"][0]["added_as"], json!(["gate"]), "{v}");
    });
    assert!(stop(child));
    let _ = camera.kill();
    let _ = camera.wait();
    while let Ok(line) = rx.try_recv() {
        log.push(line);
    }
    assert!(
        !log.join("\n").contains(PASSWORD),
        "the camera password in the log"
    );
}

#[test]
fn multicast_discovery_inside_a_network_namespace_of_its_own() {
    // A new network namespace with its loopback up and multicast routed to it: the probe
    // and ipycam's multicast answer never leave it.
    let script = format!(
        "set -e; ip link set lo up; ip link set lo multicast on; ip route add 224.0.0.0/4 dev lo; \
         sleep 30 | /usr/bin/python3 {cam} {ipycam} 8554 main sub {USER} {PASSWORD} 0 --multicast > /dev/null & \
         sleep 1.5; {SENTRIX} onvif discover --wait-ms 1500; kill $! 2>/dev/null || true",
        cam = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/it/onvif_py/camera.py"),
        ipycam = ipycam_dir(),
    );
    let out = Command::new("unshare")
        .args(["--net", "sh", "-c", &script])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let found: Vec<Value> = stdout
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    assert_eq!(found.len(), 1, "{stdout}");
    assert_eq!(found[0]["name"], "Test Gate", "{stdout}");
    assert!(
        found[0]["xaddrs"][0]
            .as_str()
            .unwrap()
            .ends_with("/onvif/device_service"),
        "{stdout}"
    );
}
