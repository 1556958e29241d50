//! `sentrix-bench hostile`: a hostile LAN against a running sentrix (scripts/bench-hostile.sh
//! starts one), from 16 loopback addresses. It prints, for a legitimate client that opens a
//! new TLS connection per request, the latency p50/p99:
//! - with nothing else going on;
//! - while 1,000 idle TLS connections are held (the server admits what its caps allow and
//!   evicts or refuses the rest);
//! - while 500 slow-header senders trickle a byte a second, reconnecting when closed.
//!
//! Then a brute force: 10,000 Basic guesses at one user from the 16 addresses, 64 at a
//! time, with the successes, the PBKDF2 checks the server ran (from /metrics) and the
//! server's CPU while it was refusing (from /proc/PID/stat).

use anyhow::{Context, bail};
use base64::Engine;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;

/// Attacking addresses: 127.0.0.2 ..= 127.0.0.17.
const ADDRESSES: u8 = 16;

pub struct HostileBench {
    pub port: u16,
    pub cert: std::path::PathBuf,
    pub user: String,
    pub password: String,
    pub pid: u32,
    pub seconds: u64,
}

struct Target {
    port: u16,
    tls: tokio_rustls::TlsConnector,
    basic: String,
}

/// A session cookie of the legitimate user (its Basic name is locked by the brute force).
async fn session_cookie(t: &Target) -> anyhow::Result<String> {
    let mut s = connect(t, [127, 0, 0, 1]).await?;
    let origin = format!("localhost:{}", t.port);
    let head = format!(
        "POST /auth/verify HTTP/1.1\r\nHost: {origin}\r\nOrigin: https://{origin}\r\nAuthorization: Basic {}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
        t.basic
    );
    s.write_all(head.as_bytes()).await?;
    let mut answer = String::new();
    let _ = s.read_to_string(&mut answer).await;
    answer
        .lines()
        .filter_map(|l| l.strip_prefix("set-cookie: "))
        .find(|c| c.contains("sentrix_session="))
        .and_then(|c| c.split(';').next())
        .map(str::to_string)
        .context("no session cookie from /auth/verify")
}

pub fn hostile(b: &HostileBench) -> anyhow::Result<()> {
    sentrix::base::fds::raise_soft_limit();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let target = Arc::new(Target {
        port: b.port,
        tls: connector(&b.cert)?,
        basic: basic(&b.user, &b.password),
    });
    rt.block_on(phases(b, target))
}

async fn phases(b: &HostileBench, t: Arc<Target>) -> anyhow::Result<()> {
    let window = Duration::from_secs(b.seconds);
    report("quiet", &legit_latencies(&t, window).await?);
    let idle = hold_idle(&t, 1000).await;
    println!("idle: {} of 1000 connections admitted", idle.len());
    report(
        "1,000 idle connections",
        &legit_latencies(&t, window).await?,
    );
    drop(idle);
    let stop = Arc::new(AtomicBool::new(false));
    let senders: Vec<_> = (0..500)
        .map(|i| tokio::spawn(slow_header_sender(t.clone(), address(i), stop.clone())))
        .collect();
    tokio::time::sleep(Duration::from_secs(2)).await;
    report(
        "500 slow-header senders",
        &legit_latencies(&t, window).await?,
    );
    stop.store(true, Ordering::Relaxed);
    for s in senders {
        let _ = s.await;
    }
    brute_force(&t, b.pid, 10_000).await
}

fn address(i: usize) -> [u8; 4] {
    [127, 0, 0, 2 + (i % ADDRESSES as usize) as u8]
}

pub(super) fn basic(user: &str, password: &str) -> String {
    let raw = format!("{user}:{password}");
    base64::engine::general_purpose::STANDARD.encode(raw)
}

pub(super) fn connector(cert: &std::path::Path) -> anyhow::Result<tokio_rustls::TlsConnector> {
    use rustls::pki_types::pem::PemObject;
    let pem = std::fs::read(cert).with_context(|| format!("reading {}", cert.display()))?;
    let mut roots = rustls::RootCertStore::empty();
    roots.add(rustls::pki_types::CertificateDer::from_pem_slice(&pem)?)?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(tokio_rustls::TlsConnector::from(Arc::new(config)))
}

/// A TLS connection from `local`, within 5 s.
async fn connect(t: &Target, local: [u8; 4]) -> anyhow::Result<TlsStream<TcpStream>> {
    let socket = tokio::net::TcpSocket::new_v4()?;
    socket.bind(SocketAddr::from((local, 0)))?;
    let server = SocketAddr::from(([127, 0, 0, 1], t.port));
    let name = rustls::pki_types::ServerName::try_from("localhost")?;
    let handshake = async {
        let tcp = socket.connect(server).await?;
        Ok::<_, anyhow::Error>(t.tls.connect(name, tcp).await?)
    };
    tokio::time::timeout(Duration::from_secs(5), handshake)
        .await
        .context("no handshake within 5 s")?
}

/// One `GET path` on a new connection; the response status.
async fn get(t: &Target, local: [u8; 4], path: &str, auth: &str) -> anyhow::Result<u16> {
    let mut s = connect(t, local).await?;
    let head = format!(
        "GET {path} HTTP/1.1\r\nHost: localhost\r\nAuthorization: Basic {auth}\r\nConnection: close\r\n\r\n"
    );
    s.write_all(head.as_bytes()).await?;
    let mut answer = Vec::new();
    let _ = s.read_to_end(&mut answer).await;
    let status = answer.get(9..12).and_then(|d| std::str::from_utf8(d).ok());
    status
        .and_then(|s| s.parse().ok())
        .context("no HTTP status in the answer")
}

/// Latencies (ms) of sequential legitimate requests over `window`.
async fn legit_latencies(t: &Target, window: Duration) -> anyhow::Result<Vec<f64>> {
    let end = Instant::now() + window;
    let mut ms = Vec::new();
    while Instant::now() < end {
        let asked = Instant::now();
        let status = get(t, [127, 0, 0, 1], "/api/health", &t.basic).await;
        match status {
            Ok(200) => ms.push(asked.elapsed().as_secs_f64() * 1000.0),
            Ok(s) => bail!("the legitimate request got {s}"),
            Err(_) => ms.push(f64::INFINITY),
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Ok(ms)
}

fn report(phase: &str, ms: &[f64]) {
    let mut sorted = ms.to_vec();
    sorted.sort_by(f64::total_cmp);
    let at = |q: f64| sorted[((sorted.len() as f64 - 1.0) * q).round() as usize];
    let failed = sorted.iter().filter(|v| v.is_infinite()).count();
    println!(
        "{phase}: legitimate requests p50 {:.1} ms, p99 {:.1} ms, {} requests, {failed} failed",
        at(0.5),
        at(0.99),
        sorted.len()
    );
    super::table::add(super::table::Figure::alone(
        &format!("hostile LAN, {phase}: legitimate requests"),
        format!(
            "p50 {:.1} ms, p99 {:.1} ms, {failed} failed",
            at(0.5),
            at(0.99)
        ),
    ));
}

/// Opens `n` TLS connections from the attacking addresses and keeps those admitted.
async fn hold_idle(t: &Target, n: usize) -> Vec<TlsStream<TcpStream>> {
    let mut held = Vec::new();
    for i in 0..n {
        if let Ok(c) = connect(t, address(i)).await {
            held.push(c);
        }
    }
    held
}

/// Sends a request head one byte a second, reconnecting whenever the server closes.
async fn slow_header_sender(t: Arc<Target>, local: [u8; 4], stop: Arc<AtomicBool>) {
    let head = b"GET /api/health HTTP/1.1\r\nHost: localhost\r\nX-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
    while !stop.load(Ordering::Relaxed) {
        let Ok(mut s) = connect(&t, local).await else {
            tokio::time::sleep(Duration::from_millis(500)).await;
            continue;
        };
        for byte in head.iter() {
            if stop.load(Ordering::Relaxed) || s.write_all(&[*byte]).await.is_err() {
                break;
            }
            let _ = s.flush().await;
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    }
}

/// `guesses` wrong passwords for the user from the attacking addresses, 64 at a time.
async fn brute_force(t: &Arc<Target>, pid: u32, guesses: usize) -> anyhow::Result<()> {
    let cookie = session_cookie(t).await?;
    let checks_before = password_checks(t, &cookie).await?;
    let cpu_before = cpu_seconds(pid)?;
    let started = Instant::now();
    let user = basic_user(&t.basic);
    let mut statuses = std::collections::BTreeMap::<u16, usize>::new();
    for batch in (0..guesses).collect::<Vec<_>>().chunks(64) {
        let asks: Vec<_> = batch
            .iter()
            .map(|&i| {
                let (t, auth) = (t.clone(), basic(&user, &format!("guess number {i}")));
                tokio::spawn(async move { get(&t, address(i), "/api/events", &auth).await })
            })
            .collect();
        for a in asks {
            let status = a.await.ok().and_then(|r| r.ok()).unwrap_or(0);
            *statuses.entry(status).or_default() += 1;
        }
    }
    let wall = started.elapsed().as_secs_f64();
    let cpu = cpu_seconds(pid)? - cpu_before;
    let checks = password_checks(t, &cookie).await? - checks_before;
    let successes = statuses.get(&200).copied().unwrap_or(0);
    println!(
        "brute force: {guesses} guesses from {ADDRESSES} addresses in {wall:.1} s: {successes} successes, \
         {checks} password checks run, server CPU {:.0} % of one core; answers {statuses:?}",
        cpu / wall * 100.0
    );
    super::table::add(super::table::Figure::alone(
        &format!("hostile LAN, {guesses} password guesses from {ADDRESSES} addresses"),
        format!(
            "{successes} successes, {checks} PBKDF2 checks, {:.0} % CPU",
            cpu / wall * 100.0
        ),
    ));
    Ok(())
}

fn basic_user(encoded: &str) -> String {
    let raw = base64::engine::general_purpose::STANDARD
        .decode(encoded)
        .unwrap_or_default();
    let text = String::from_utf8_lossy(&raw).to_string();
    text.split(':').next().unwrap_or_default().to_string()
}

/// `sentrix_password_checks_total` from /metrics, asked in the legitimate user's session.
async fn password_checks(t: &Target, cookie: &str) -> anyhow::Result<f64> {
    let mut s = connect(t, [127, 0, 0, 1]).await?;
    let head = format!(
        "GET /metrics HTTP/1.1\r\nHost: localhost\r\nCookie: {cookie}\r\nConnection: close\r\n\r\n"
    );
    s.write_all(head.as_bytes()).await?;
    let mut answer = String::new();
    let _ = s.read_to_string(&mut answer).await;
    answer
        .lines()
        .find_map(|l| l.strip_prefix("sentrix_password_checks_total "))
        .and_then(|v| v.trim().parse().ok())
        .context("no sentrix_password_checks_total in /metrics")
}

/// User plus system CPU seconds of process `pid`.
pub(super) fn cpu_seconds(pid: u32) -> anyhow::Result<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    let after_name = stat.rsplit(')').next().unwrap_or("");
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    // SAFETY: sysconf only reads a system constant.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    Ok((ticks(11) + ticks(12)) / hz)
}
