//! `sentrix run` as a child process for end-to-end tests: a config with the demo camera
//! and the dashboard on a free port, its log lines as a channel, an admin added through
//! `sentrix user add --password-stdin`, and a clean SIGTERM stop.

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

pub const SENTRIX: &str = env!("CARGO_BIN_EXE_sentrix");
pub const ADMIN_PASSWORD: &str = "a long enough password";

pub fn write_config(dir: &std::path::Path) -> std::path::PathBuf {
    write_config_with(
        dir,
        "  - id: demo\n    url: demo://?width=640&height=360&fps=10&bitrate=500\n",
    )
}

/// The same config with `cameras` (YAML list items under `cameras:`).
pub fn write_config_with(dir: &std::path::Path, cameras: &str) -> std::path::PathBuf {
    // A port that was free a moment ago (the config refuses 0).
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let text = format!(
        "network:\n  api_port: {port}\nrecord:\n  pre_detection_buffer: 1\n  post_detection_buffer: 1\nstorage:\n  recordings_dir: rec\n  database: db/sentrix.db\n  encryption:\n    key_file: clip.key\ncameras:\n{cameras}"
    );
    let path = dir.join("surveillance.yml");
    std::fs::write(&path, text).unwrap();
    path
}

/// Starts `sentrix run`, returns the child and a channel of its log lines.
pub fn spawn_run(config: &std::path::Path) -> (std::process::Child, mpsc::Receiver<String>) {
    spawn_run_with(config, &[], &[])
}

/// `sentrix run` with extra arguments and environment variables (a `RUST_LOG` among them
/// replaces the default `info`).
pub fn spawn_run_with(
    config: &std::path::Path,
    args: &[&str],
    env: &[(&str, &std::ffi::OsStr)],
) -> (std::process::Child, mpsc::Receiver<String>) {
    let mut child = Command::new(SENTRIX)
        .args(["run", "--config"])
        .arg(config)
        .args(args)
        .env("RUST_LOG", "info")
        .envs(env.iter().copied())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (tx, rx) = mpsc::channel();
    let stderr = child.stderr.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    (child, rx)
}

pub fn wait_for(
    rx: &mpsc::Receiver<String>,
    needle: &str,
    log: &mut Vec<String>,
) -> Option<String> {
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while let Some(left) = deadline.checked_duration_since(std::time::Instant::now()) {
        match rx.recv_timeout(left) {
            Ok(line) => {
                log.push(line.clone());
                if line.contains(needle) {
                    return Some(line);
                }
            }
            Err(_) => break,
        }
    }
    None
}

pub fn stop(mut child: std::process::Child) -> bool {
    // Let start-up finish installing its signal handlers.
    std::thread::sleep(Duration::from_millis(1500));
    // SAFETY: signalling our own child.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    child.wait().unwrap().success()
}

/// `sentrix user add alice --role admin --password-stdin` with ADMIN_PASSWORD.
pub fn add_admin(config: &std::path::Path) -> std::process::Output {
    let mut add = Command::new(SENTRIX)
        .args([
            "user",
            "add",
            "alice",
            "--role",
            "admin",
            "--password-stdin",
            "--config",
        ])
        .arg(config)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    add.stdin
        .take()
        .unwrap()
        .write_all(format!("{ADMIN_PASSWORD}\n").as_bytes())
        .unwrap();
    add.wait_with_output().unwrap()
}

/// Waits for the `dashboard on https://…` line; returns `https://localhost:PORT`.
pub fn dashboard_base(rx: &mpsc::Receiver<String>, log: &mut Vec<String>) -> String {
    let line = wait_for(rx, "dashboard on https://", log)
        .unwrap_or_else(|| panic!("no dashboard:\n{}", log.join("\n")));
    format!("https://localhost:{}", dashboard_port(&line))
}

/// The port of the `dashboard on https://…` log line.
pub fn dashboard_port(line: &str) -> String {
    line.split("https://")
        .nth(1)
        .and_then(|r| r.split('/').next())
        .and_then(|a| a.rsplit(':').next())
        .unwrap()
        .to_string()
}

/// A client trusting `cert` (the instance's generated certificate).
pub fn https_client(cert: &[u8]) -> reqwest::Client {
    reqwest::Client::builder()
        .use_rustls_tls()
        .add_root_certificate(reqwest::Certificate::from_pem(cert).unwrap())
        .build()
        .unwrap()
}

/// GET `url` as alice (the admin).
async fn get_as_admin(client: &reqwest::Client, url: &str) -> reqwest::Response {
    client
        .get(url)
        .basic_auth("alice", Some(ADMIN_PASSWORD))
        .send()
        .await
        .unwrap()
}

/// GET `url` as alice (the admin): its JSON body.
pub async fn get_json_as_admin(client: &reqwest::Client, url: &str) -> serde_json::Value {
    get_as_admin(client, url).await.json().await.unwrap()
}

/// GET `url` as alice (the admin): its body as text.
pub async fn get_text_as_admin(client: &reqwest::Client, url: &str) -> String {
    get_as_admin(client, url).await.text().await.unwrap()
}

/// An admin's manual trigger on the demo camera; asserts 202 Accepted and returns the
/// answer (`{"triggered", "camera", "event"}`).
pub async fn trigger_demo(client: &reqwest::Client, base: &str) -> serde_json::Value {
    let r = client
        .post(format!("{base}/api/cameras/demo/trigger"))
        .header("origin", base)
        .basic_auth("alice", Some(ADMIN_PASSWORD))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    r.json().await.unwrap()
}

/// `sentrix healthcheck`: (healthy, the JSON report or the reason it has none).
pub fn healthcheck(config: &std::path::Path) -> (bool, String) {
    let out = Command::new(SENTRIX)
        .args(["healthcheck", "--config"])
        .arg(config)
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).to_string(),
    )
}

/// A session cookie (`sentrix_session=…`) for `user`, from `/auth/verify`.
pub async fn session_cookie(client: &reqwest::Client, base: &str, user: &str, pw: &str) -> String {
    let r = client
        .post(format!("{base}/auth/verify"))
        .header("origin", base)
        .basic_auth(user, Some(pw))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "/auth/verify as {user}");
    r.headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().split(';').next().unwrap().to_string())
        .find(|c| c.contains("sentrix_session="))
        .expect("a session cookie")
}
