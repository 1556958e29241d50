//! Floods against the whole product.
//!
//! Descriptor exhaustion: `sentrix run` runs with a limit of 256
//! open files; an attacker on 16 loopback addresses opens TLS connections until each
//! address is refused, and holds them all. Meanwhile a legitimate request is answered in
//! under 2 s, a manual trigger still makes a clip that plays, the process lives and its log
//! grows by less than 1 MB; once the attacker leaves, descriptors return to the baseline.
//!
//! A many-address flood: 1,000 addresses in 127.0.0.0/8 each hold one silent connection
//! (half of them past the TLS handshake) and keep reconnecting, so every connection stays
//! young. The owner, signed in from 127.0.0.1, is answered within 2 s every time on a new
//! connection; the test prints p50/p99 and the server's CPU.

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

/// One flooder from `local`: connects, completes the TLS handshake when `handshake`, then
/// sends nothing; reconnects when the server closes it or after `young` (so its connection
/// never grows old), until `stop`. Counts its connection attempts in `attempts`.
async fn flooder(
    port: u16,
    local: [u8; 4],
    handshake: Option<tokio_rustls::TlsConnector>,
    young: Duration,
    attempts: Arc<std::sync::atomic::AtomicU64>,
    stop: tokio_util::sync::CancellationToken,
) {
    use tokio::io::AsyncReadExt;
    while !stop.is_cancelled() {
        attempts.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let hold = async {
            let mut buf = [0u8; 256];
            match &handshake {
                Some(tls) => {
                    if let Ok(mut s) = common::tls::connect_from(tls, port, local).await {
                        let _ = s.read(&mut buf).await;
                    }
                }
                None => {
                    let socket = tokio::net::TcpSocket::new_v4().ok()?;
                    socket.bind(std::net::SocketAddr::from((local, 0))).ok()?;
                    let to = std::net::SocketAddr::from(([127, 0, 0, 1], port));
                    let mut tcp = socket.connect(to).await.ok()?;
                    let _ = tcp.read(&mut buf).await;
                }
            }
            Some(())
        };
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::timeout(young, hold) => {}
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// CPU seconds (user + system) `pid` has used.
fn cpu_seconds(pid: u32) -> f64 {
    common::cpu_seconds(&format!("/proc/{pid}/stat"))
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

#[test]
fn the_owner_is_answered_while_a_thousand_addresses_flood_the_dashboard() {
    let dir = common::temp_dir();
    let config = write_config(dir.path());
    let text = std::fs::read_to_string(&config).unwrap();
    std::fs::write(&config, format!("detect:\n  enabled: false\n{text}")).unwrap();
    assert!(add_admin(&config).status.success());
    let (child, rx) = common::run::spawn_run(&config);
    let pid = child.id();
    let mut log = Vec::new();
    let line = wait_for(&rx, "dashboard on https://", &mut log)
        .unwrap_or_else(|| panic!("no dashboard:\n{}", log.join("\n")));
    let port: u16 = dashboard_port(&line).parse().unwrap();
    std::thread::spawn(move || for _ in rx {});
    let cert = std::fs::read(dir.path().join("certs/server.crt")).unwrap();
    let base = format!("https://localhost:{port}");
    let owner_rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    // A client bound to 127.0.0.1 that opens a new connection for every request (the
    // hardest case: no kept-alive connection to fall back on).
    let fresh_client = reqwest::Client::builder()
        .use_rustls_tls()
        .add_root_certificate(reqwest::Certificate::from_pem(&cert).unwrap())
        .local_address(std::net::IpAddr::from([127, 0, 0, 1]))
        .pool_max_idle_per_host(0)
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let cookie = owner_rt.block_on(common::run::session_cookie(
        &fresh_client,
        &base,
        "alice",
        ADMIN_PASSWORD,
    ));
    // The server's CPU while it only records, for comparison.
    let (cpu_idle_before, idle_started) = (cpu_seconds(pid), Instant::now());
    std::thread::sleep(Duration::from_secs(3));
    let recording_share =
        (cpu_seconds(pid) - cpu_idle_before) / idle_started.elapsed().as_secs_f64();

    // The flood: 1,000 addresses in 127.0.0.0/8, half of them completing the handshake,
    // each holding one silent connection for at most 1.5 s and reconnecting.
    let flood_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let halt = tokio_util::sync::CancellationToken::new();
    let attempts = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let tls = common::tls::connector(&cert);
    for n in 0..1000u32 {
        let local = [127, 1, (n / 250) as u8, (n % 250 + 1) as u8];
        let handshake = (n % 2 == 1).then(|| tls.clone());
        let young = Duration::from_millis(500 + u64::from(n % 10) * 100);
        flood_rt.spawn(flooder(
            port,
            local,
            handshake,
            young,
            attempts.clone(),
            halt.clone(),
        ));
    }
    std::thread::sleep(Duration::from_secs(3));
    let cpu_before = cpu_seconds(pid);
    let attempts_before = attempts.load(std::sync::atomic::Ordering::Relaxed);
    let flood_started = Instant::now();

    // The owner: 40 requests, every 250 ms, each on a new connection, with its cookie.
    let mut took = Vec::new();
    for _ in 0..40 {
        let asked = Instant::now();
        let status = owner_rt.block_on(async {
            let r = fresh_client
                .get(format!("{base}/api/cameras"))
                .header("cookie", &cookie)
                .send()
                .await;
            r.map(|r| r.status().as_u16()).map_err(|e| format!("{e:?}"))
        });
        took.push(asked.elapsed());
        assert_eq!(
            status,
            Ok(200),
            "the owner's request {} during the flood",
            took.len()
        );
        std::thread::sleep(Duration::from_millis(250));
    }
    let flood_s = flood_started.elapsed().as_secs_f64();
    let cpu_share = (cpu_seconds(pid) - cpu_before) / flood_s;
    let attempts_per_s =
        (attempts.load(std::sync::atomic::Ordering::Relaxed) - attempts_before) as f64 / flood_s;
    halt.cancel();
    let metrics = owner_rt.block_on(async {
        let r = fresh_client
            .get(format!("{base}/metrics"))
            .header("cookie", &cookie)
            .send()
            .await
            .unwrap();
        r.text().await.unwrap()
    });
    flood_rt.shutdown_timeout(Duration::from_secs(2));
    took.sort();
    let counter = |name: &str| {
        metrics
            .lines()
            .find(|l| l.starts_with(&format!("{name} ")))
            .unwrap_or(name)
            .to_string()
    };
    eprintln!(
        "flood of 1,000 addresses: owner p50 {:?}, p99 {:?}, max {:?}; server CPU {:.0} % of a \
         core (recording alone {:.0} %); flood {attempts_per_s:.0} connection attempts/s; {}; {}",
        percentile(&took, 0.5),
        percentile(&took, 0.99),
        took[took.len() - 1],
        cpu_share * 100.0,
        recording_share * 100.0,
        counter("sentrix_http_connections_refused"),
        counter("sentrix_http_connections_evicted"),
    );
    assert!(
        took.iter().all(|t| *t < Duration::from_secs(2)),
        "the owner waited {:?}",
        took.last()
    );
    // The flood's own cost is bounded by the rates of new connections: about half a core.
    assert!(
        cpu_share - recording_share < 0.75,
        "the flood took {:.0} % of a core",
        (cpu_share - recording_share) * 100.0
    );
    assert!(stop(child), "no clean stop after the flood");
}
