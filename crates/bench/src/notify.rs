//! `sentrix-bench notify`: notifications against real servers on loopback (servers.rs:
//! Mosquitto with TLS, aiosmtpd with STARTTLS, an HTTPS receiver for the webhook and
//! ntfy targets).
//! - Latency: N person events, each with a sealed snapshot, sent on the event bus of an
//!   in-process notification service one after another; the time from the bus to the
//!   message's arrival at each target (the HTTPS request read, the MQTT publish received,
//!   the mail in the maildir), median and p99 per target.
//! - Idle cost: `sentrix run` without cameras, once with the four targets configured and
//!   once with none, each for the same time: CPU seconds and peak RSS of each (wait4).

use anyhow::{Context, bail};
use sentrix::config::Config;
use sentrix::detect::runner::{EventNotice, event_bus};
use sentrix_testkit::servers::{
    Receiver, Subscriber, TestCert, free_port, mails, mosquitto, smtp_server,
};
use std::path::Path;
use std::time::{Duration, Instant};

const USER: &str = "sentrix";
const PASSWORD: &str = "bench-mqtt-password";

pub fn notify(events: usize, idle_seconds: u64) -> anyhow::Result<()> {
    sentrix::ingest::init_gstreamer()?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    super::in_work_dir(&std::env::temp_dir(), "notify", |work| {
        std::fs::create_dir_all(work)?;
        rt.block_on(measure(work, events, idle_seconds))
    })
}

/// The servers, and the `notify:` section that points at them.
struct Servers {
    receiver: Receiver,
    subscriber: Subscriber,
    maildir: std::path::PathBuf,
    notify_yaml: String,
    _daemons: Vec<sentrix_testkit::servers::Daemon>,
}

async fn start_servers(work: &Path) -> anyhow::Result<Servers> {
    let cert = TestCert::make(work)?;
    let (mqtt_port, smtp_port) = (free_port()?, free_port()?);
    let receiver = Receiver::start(&cert, 0).await?;
    let broker = mosquitto(work, &cert, mqtt_port, USER, PASSWORD)?;
    let maildir = work.join("maildir");
    let smtp = smtp_server(&maildir, &cert, smtp_port)?;
    let subscriber = Subscriber::start(&cert, mqtt_port, USER, PASSWORD).await?;
    std::fs::write(work.join("mqtt.pass"), PASSWORD)?;
    let (ca, http) = (cert.cert.display(), receiver.port);
    let notify_yaml = [
        "notify:".to_string(),
        "  targets:".into(),
        format!("    - {{type: mqtt, name: ha, host: localhost, port: {mqtt_port}, ca_file: {ca}, username: {USER}, password: {{file: mqtt.pass}}, labels: [person]}}"),
        format!("    - {{type: webhook, name: hook, url: 'https://localhost:{http}/hook', ca_file: {ca}, secret: bench-hook-key, snapshot: true}}"),
        format!("    - {{type: email, name: mail, host: localhost, port: {smtp_port}, ca_file: {ca}, from: nvr@localhost, to: [me@localhost]}}"),
        format!("    - {{type: ntfy, name: phone, url: 'https://localhost:{http}/ntfy/bench', ca_file: {ca}}}"),
        "  rules:".into(),
        "    - {target: hook, cooldown: 0}".into(),
        "    - {target: mail, cooldown: 0}".into(),
        "    - {target: phone, cooldown: 0}".into(),
    ]
    .join("\n");
    Ok(Servers {
        receiver,
        subscriber,
        maildir,
        notify_yaml,
        _daemons: vec![broker, smtp],
    })
}

async fn measure(work: &Path, events: usize, idle_seconds: u64) -> anyhow::Result<()> {
    let servers = start_servers(work).await?;
    let text = format!(
        "storage:\n  recordings_dir: rec\n  database: db/index.db\n  encryption:\n    key_file: clip.key\n\
         cameras:\n  - id: bench\n    url: demo://\n{}\n",
        servers.notify_yaml
    );
    let config = Config::from_text(&text, work.to_path_buf())
        .map_err(|e| anyhow::anyhow!("bench config: {e:?}"))?;
    println!(
        "bench notify: {events} person events, each to MQTT (TLS), a webhook (HTTPS, with snapshot), e-mail (STARTTLS) and ntfy (HTTPS), on loopback"
    );
    let per_target = latencies(work, &config, &servers, events).await?;
    for (target, ms) in per_target {
        let (median, p99) = super::quantiles(ms);
        println!("bench notify: {target:<8} median {median:6.1} ms  p99 {p99:6.1} ms");
        super::table::add(super::table::Figure::alone(
            &format!("notification latency, {target}"),
            format!("median {median:.1} ms, p99 {p99:.1} ms"),
        ));
    }
    idle(work, &servers, idle_seconds)
}

/// A sealed snapshot like a detector's: a 416x234 JPEG of a grey gradient.
fn snapshot_jpeg() -> anyhow::Result<Vec<u8>> {
    let (w, h) = (416u32, 234u32);
    let rgb: Vec<u8> = (0..w * h * 3)
        .map(|i| ((i / 3) % w * 255 / w) as u8)
        .collect();
    let frame = sentrix::ingest::Frame {
        pts_ns: 0,
        width: w,
        height: h,
        rgb: gstreamer::Buffer::from_mut_slice(rgb),
    };
    sentrix::record::snapshot::encode_jpeg(&frame).map_err(anyhow::Error::msg)
}

/// Per target, the ms from the bus to each message's arrival.
async fn latencies(
    work: &Path,
    config: &Config,
    servers: &Servers,
    events: usize,
) -> anyhow::Result<Vec<(&'static str, Vec<f64>)>> {
    let store = super::work_store(work)?;
    let jpeg = snapshot_jpeg()?;
    let bus = event_bus();
    let shutdown = tokio_util::sync::CancellationToken::new();
    let service = sentrix::notify::Notifications::start(
        config,
        &store,
        &sentrix::live::Live::default(),
        &bus,
        &shutdown,
    );
    let connected = || service.state.targets[0].snapshot().connected == Some(true);
    wait(Duration::from_secs(15), connected)
        .await
        .context("the MQTT target did not connect")?;
    let mut out: Vec<(&str, Vec<f64>)> = ["mqtt", "webhook", "email", "ntfy"]
        .iter()
        .map(|t| (*t, Vec::new()))
        .collect();
    for i in 0..events {
        let id = store.insert_event(
            "bench",
            "person",
            sentrix::base::clock::wall_ms(),
            0.9,
            &[0.3, 0.3, 0.6, 0.9],
        )?;
        store.set_event_snapshot(id, &jpeg)?;
        let event = store.event(id)?;
        let sent = Instant::now();
        let _ = bus.send(EventNotice {
            kind: "start",
            event,
        });
        let mut arrived: [Option<Instant>; 4] = [None; 4];
        let deadline = sent + Duration::from_secs(20);
        while arrived.iter().any(Option::is_none) {
            if Instant::now() > deadline {
                bail!("event {i}: not every target got its message within 20 s: {arrived:?}");
            }
            let n = i + 1;
            let counts = [
                servers
                    .subscriber
                    .on("sentrix/bench/events")
                    .get(i)
                    .map(|s| s.at),
                servers.receiver.requests("/hook").get(i).map(|r| r.at),
                (mails(&servers.maildir).len() >= n).then(Instant::now),
                servers.receiver.requests("/ntfy").get(i).map(|r| r.at),
            ];
            for (slot, at) in arrived.iter_mut().zip(counts) {
                if slot.is_none() {
                    *slot = at;
                }
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        for ((_, ms), at) in out.iter_mut().zip(arrived) {
            if let Some(at) = at {
                ms.push(at.duration_since(sent).as_secs_f64() * 1000.0);
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    shutdown.cancel();
    service.stopped().await;
    Ok(out)
}

async fn wait(limit: Duration, cond: impl Fn() -> bool) -> anyhow::Result<()> {
    let deadline = Instant::now() + limit;
    while !cond() {
        if Instant::now() > deadline {
            bail!("timed out after {} s", limit.as_secs());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Ok(())
}

/// `sentrix run` with no camera, with and without the four targets.
fn idle(work: &Path, servers: &Servers, seconds: u64) -> anyhow::Result<()> {
    let exe = crate::sentrix_exe();
    let mut results = Vec::new();
    for (name, notify) in [("none", ""), ("all four", servers.notify_yaml.as_str())] {
        let dir = work.join(format!("idle-{}", results.len()));
        std::fs::create_dir_all(&dir)?;
        std::fs::copy(work.join("mqtt.pass"), dir.join("mqtt.pass"))?;
        let port = free_port()?;
        let text = format!(
            "network:\n  api_port: {port}\nstorage:\n  recordings_dir: rec\n  database: db/index.db\n  encryption:\n    key_file: clip.key\ncameras: []\n{notify}\n"
        );
        std::fs::write(dir.join("surveillance.yml"), text)?;
        let child = std::process::Command::new(&exe)
            .args(["run", "--config"])
            .arg(dir.join("surveillance.yml"))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()?;
        std::thread::sleep(Duration::from_secs(seconds));
        // SAFETY: signalling our own child.
        unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
        let usage = super::wait_usage(&child)?;
        println!(
            "bench notify: idle `sentrix run` (no camera), targets {name:<8}: {:.2} s CPU in {seconds} s ({:.2} %), peak RSS {:.1} MB",
            usage.cpu_s,
            usage.cpu_s / seconds as f64 * 100.0,
            usage.max_rss_mb
        );
        results.push(usage);
    }
    if let [none, all] = results.as_slice() {
        println!(
            "bench notify: four idle targets cost {:+.2} s CPU per {seconds} s and {:+.1} MB RSS",
            all.cpu_s - none.cpu_s,
            all.max_rss_mb - none.max_rss_mb
        );
    }
    Ok(())
}
