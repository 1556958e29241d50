//! Descriptor exhaustion against the whole product. `sentrix run` runs with a limit of 256
//! open files; an attacker on 16 loopback addresses opens TLS connections until each
//! address is refused, and holds them all. Meanwhile a legitimate request is answered in
//! under 2 s, a manual trigger still makes a clip that plays, the process lives and its log
//! grows by less than 1 MB; once the attacker leaves, descriptors return to the baseline.

use crate::common;
use crate::common::run::{
    ADMIN_PASSWORD, SENTRIX, add_admin, dashboard_port, https_client, stop, wait_for, write_config,
};
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const NOFILE: u64 = 256;

fn spawn_with_low_limit(
    config: &std::path::Path,
) -> (std::process::Child, std::sync::mpsc::Receiver<String>) {
    let mut cmd = Command::new(SENTRIX);
    cmd.args(["run", "--config"])
        .arg(config)
        .env("RUST_LOG", "info");
    cmd.stdout(Stdio::null()).stderr(Stdio::piped());
    // SAFETY: setrlimit is async-signal-safe; the closure touches nothing else.
    unsafe {
        cmd.pre_exec(|| {
            let lim = libc::rlimit {
                rlim_cur: NOFILE,
                rlim_max: NOFILE,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &lim) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let mut child = cmd.spawn().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let stderr = child.stderr.take().unwrap();
    std::thread::spawn(move || {
        use std::io::BufRead;
        for line in std::io::BufReader::new(stderr)
            .lines()
            .map_while(Result::ok)
        {
            let _ = tx.send(line);
        }
    });
    (child, rx)
}

fn fds_of(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, |d| d.count())
}

/// A TLS handshake with the dashboard from `local`; None when the server refuses it.
async fn attacker_connection(
    port: u16,
    local: [u8; 4],
    tls: &tokio_rustls::TlsConnector,
) -> Option<common::tls::Stream> {
    let connect = common::tls::connect_from(tls, port, local);
    tokio::time::timeout(Duration::from_secs(3), connect)
        .await
        .ok()?
        .ok()
}

#[test]
fn a_connection_flood_under_a_low_descriptor_limit_does_not_stop_recording() {
    let dir = common::temp_dir();
    let config = write_config(dir.path());
    let text = std::fs::read_to_string(&config).unwrap();
    std::fs::write(&config, format!("detect:\n  enabled: false\n{text}")).unwrap();
    assert!(add_admin(&config).status.success());
    let (child, rx) = spawn_with_low_limit(&config);
    let pid = child.id();
    let mut log = Vec::new();
    let line = wait_for(&rx, "dashboard on https://", &mut log)
        .unwrap_or_else(|| panic!("no dashboard:\n{}", log.join("\n")));
    let port: u16 = dashboard_port(&line).parse().unwrap();
    wait_for(&rx, "streaming (connection 1)", &mut log)
        .unwrap_or_else(|| panic!("no video:\n{}", log.join("\n")));
    let log = Arc::new(Mutex::new(log));
    let sink = log.clone();
    std::thread::spawn(move || {
        for line in rx {
            sink.lock().unwrap().push(line);
        }
    });
    std::thread::sleep(Duration::from_secs(3));
    let baseline = fds_of(pid);
    let cert = std::fs::read(dir.path().join("certs/server.crt")).unwrap();
    let base = format!("https://localhost:{port}");
    let rt = tokio::runtime::Runtime::new().unwrap();
    let log_bytes = |log: &Arc<Mutex<Vec<String>>>| {
        log.lock()
            .unwrap()
            .iter()
            .map(|l| l.len() + 1)
            .sum::<usize>()
    };
    let health_as_alice = || {
        rt.block_on(async {
            let asked = https_client(&cert).get(format!("{base}/api/health"));
            let sent = asked.basic_auth("alice", Some(ADMIN_PASSWORD)).send().await;
            sent.map(|r| r.status().as_u16())
                .map_err(|e| format!("{e:?}"))
        })
    };
    let log_before = log_bytes(&log);

    // The flood: every address opens connections until it is refused, and holds them.
    let tls = common::tls::connector(&cert);
    let (held, refused) = rt.block_on(async {
        let mut held = Vec::new();
        let mut refused = 0;
        for a in 2..18u8 {
            for _ in 0..40 {
                match attacker_connection(port, [127, 0, 0, a], &tls).await {
                    Some(c) => held.push(c),
                    None => {
                        refused += 1;
                        break;
                    }
                }
            }
        }
        (held, refused)
    });
    let peak = fds_of(pid);
    eprintln!(
        "flood: {} connections held, {refused} addresses refused; fds {baseline} -> {peak} (limit {NOFILE})",
        held.len()
    );
    assert!(refused >= 1, "no address was ever refused");
    assert!(peak < NOFILE as usize);

    // While they are held: a legitimate request, a manual trigger that makes a clip.
    let asked = Instant::now();
    let status = health_as_alice();
    let took = asked.elapsed();
    let client = https_client(&cert);
    assert_eq!(status, Ok(200), "a legitimate request during the flood");
    assert!(took < Duration::from_secs(2), "answered after {took:?}");
    let clips_url = format!("{base}/api/clips");
    let clip_count = |rt: &tokio::runtime::Runtime| -> Vec<i64> {
        rt.block_on(async {
            let v = common::run::get_json_as_admin(&client, &clips_url).await;
            v["clips"]
                .as_array()
                .unwrap()
                .iter()
                .map(|c| c["id"].as_i64().unwrap())
                .collect()
        })
    };
    let before = clip_count(&rt);
    rt.block_on(common::run::trigger_demo(&client, &base));
    let deadline = Instant::now() + Duration::from_secs(20);
    let new_clip = loop {
        let now = clip_count(&rt);
        if let Some(id) = now.iter().find(|id| !before.contains(id)) {
            break *id;
        }
        assert!(
            Instant::now() < deadline,
            "the trigger made no clip during the flood"
        );
        std::thread::sleep(Duration::from_millis(500));
    };
    let mp4 = rt.block_on(async {
        client
            .get(format!("{base}/clips/{new_clip}.mp4"))
            .basic_auth("alice", Some(ADMIN_PASSWORD))
            .send()
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap()
    });
    let out = dir.path().join("flood-clip.mp4");
    std::fs::write(&out, &mp4).unwrap();
    assert!(
        common::ffprobe_duration(&out) > 1.0,
        "the clip made during the flood does not play"
    );
    let mut child = child;
    assert!(
        child.try_wait().unwrap().is_none(),
        "sentrix died during the flood"
    );
    let grown = log_bytes(&log) - log_before;
    assert!(
        grown < 1_000_000,
        "the log grew {grown} bytes during the flood"
    );

    // The attacker leaves: descriptors return to the baseline.
    drop(held);
    std::thread::sleep(Duration::from_secs(3));
    let after = fds_of(pid);
    eprintln!("fds: baseline {baseline}, peak {peak}, after {after}; log grew {grown} bytes");
    assert!(
        after <= baseline + 6,
        "fds {baseline} -> {after} after the flood"
    );
    assert!(
        stop(child),
        "no clean stop:\n{}",
        log.lock().unwrap().join("\n")
    );
}
