//! The dashboard as `sentrix run` starts it: off (with the exact command to fix it) while
//! there is no user; after `sentrix user add … --password-stdin`, served over TLS with a
//! generated certificate whose fingerprint is logged, answering a real HTTPS client.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

const SENTRIX: &str = env!("CARGO_BIN_EXE_sentrix");

fn write_config(dir: &std::path::Path) -> std::path::PathBuf {
    // A port that was free a moment ago (the config refuses 0).
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let text = format!(
        "network:\n  api_port: {port}\ndetect:\n  enabled: false\nstorage:\n  recordings_dir: rec\n  database: db/sentrix.db\n  encryption:\n    key_file: clip.key\ncameras: []\n"
    );
    let path = dir.join("surveillance.yml");
    std::fs::write(&path, text).unwrap();
    path
}

/// Starts `sentrix run`, returns the child and a channel of its log lines.
fn spawn_run(config: &std::path::Path) -> (std::process::Child, mpsc::Receiver<String>) {
    let mut child = Command::new(SENTRIX)
        .args(["run", "--config"])
        .arg(config)
        .env("RUST_LOG", "info")
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

fn wait_for(rx: &mpsc::Receiver<String>, needle: &str, log: &mut Vec<String>) -> Option<String> {
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

fn stop(mut child: std::process::Child) -> bool {
    // Let start-up finish installing its signal handlers.
    std::thread::sleep(Duration::from_millis(1500));
    // SAFETY: signalling our own child.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    child.wait().unwrap().success()
}

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
        .arg(&config)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    add.stdin
        .take()
        .unwrap()
        .write_all(b"a long enough password\n")
        .unwrap();
    let out = add.wait_with_output().unwrap();
    assert!(out.status.success());
    assert!(!String::from_utf8_lossy(&out.stdout).contains("a long enough password"));
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
    let addr = line
        .split("https://")
        .nth(1)
        .and_then(|r| r.split('/').next())
        .unwrap()
        .to_string();
    let port = addr.rsplit(':').next().unwrap().to_string();
    let key = dir.path().join("certs/server.key");
    let mode =
        std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&key).unwrap().permissions());
    assert_eq!(mode & 0o777, 0o600, "key file mode");
    let cert = std::fs::read(dir.path().join("certs/server.crt")).unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let (status, body, fp_ok) = rt.block_on(async {
        let client = reqwest::Client::builder()
            .use_rustls_tls()
            .add_root_certificate(reqwest::Certificate::from_pem(&cert).unwrap())
            .build()
            .unwrap();
        let r = client
            .get(format!("https://localhost:{port}/api/health"))
            .basic_auth("alice", Some("a long enough password"))
            .send()
            .await
            .unwrap();
        let status = r.status();
        (status, r.text().await.unwrap(), true)
    });
    assert!(fp_ok);
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("\"status\":\"ok\""), "{body}");
    // The logged fingerprint is the certificate's.
    let der = rustls::pki_types::CertificateDer::from_pem_slice(&cert).unwrap();
    let fp = sentrix::web::tls::fingerprint(&der);
    assert!(fp_line.contains(&fp), "{fp_line} vs {fp}");
    assert!(
        stop(child),
        "sentrix run did not stop cleanly:\n{}",
        log.join("\n")
    );
    let all = log.join("\n");
    assert!(!all.contains("a long enough password"));
}

use rustls::pki_types::pem::PemObject;
