//! `sentrix-bench alarms`: the SMTP alarm receiver in process, as `sentrix run` wires it
//! (the dashboard's connection table and login gate, the intake thread, a temporary store),
//! fed by a plain SMTP client of our own over loopback:
//!
//! - latency from the end of DATA (the client's `.`) to the event's `start` on the event
//!   bus (what the live feed sends as SSE), median and p99 over `alarms` one-picture
//!   messages;
//! - CPU per alarm of five 1280x720 pictures, including the H.264 clip encode, from the
//!   process's CPU time over `clips` such alarms (each waited for to its `end`).

use sentrix::alarm::{intake, smtp};
use sentrix::detect::runner::{EventBus, EventNotice};
use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::broadcast;

const ADDRESS: &str = "bench@cams.test";

pub fn alarms(dir: &Path, alarms: usize, clips: usize) -> anyhow::Result<()> {
    super::in_work_dir(dir, "alarms", |work| measure(work, alarms, clips))
}

fn measure(work: &Path, alarms: usize, clips: usize) -> anyhow::Result<()> {
    gstreamer::init()?;
    let store = super::work_store(work)?;
    let bus = sentrix::detect::runner::event_bus();
    let rt = tokio::runtime::Runtime::new()?;
    let stop = tokio_util::sync::CancellationToken::new();
    let (port, thread) = rt.block_on(start(&store, &bus, &stop))?;
    let pictures = jpegs(5)?;
    let mut events = bus.subscribe();

    let mut latency_ms = Vec::with_capacity(alarms);
    for _ in 0..alarms {
        let sent = send(port, &pictures[..1])?;
        latency_ms.push(
            wait(&rt, &mut events, "start")?
                .duration_since(sent)
                .as_secs_f64()
                * 1e3,
        );
        wait(&rt, &mut events, "end")?;
    }
    let (median, p99) = super::quantiles(latency_ms);
    println!(
        "bench alarms: end of DATA to the event's start, {alarms} alarms: median {median:.1} ms, p99 {p99:.1} ms"
    );
    super::table::add(super::table::Figure::alone(
        "alarm by mail: end of DATA to the event (SSE start)",
        format!("median {median:.1} ms, p99 {p99:.1} ms"),
    ));

    let cpu_before = cpu_seconds();
    let started = Instant::now();
    for _ in 0..clips {
        send(port, &pictures)?;
        wait(&rt, &mut events, "start")?;
        wait(&rt, &mut events, "end")?;
    }
    let cpu_ms = (cpu_seconds() - cpu_before) * 1e3 / clips.max(1) as f64;
    let wall_ms = started.elapsed().as_secs_f64() * 1e3 / clips.max(1) as f64;
    println!(
        "bench alarms: an alarm of 5 pictures (1280x720) with its clip: {cpu_ms:.0} ms CPU ({wall_ms:.0} ms wall, batch 0.1 s), over {clips}"
    );
    super::table::add(super::table::Figure::alone(
        "alarm of 5 pictures with its H.264 clip, CPU",
        format!("{cpu_ms:.0} ms"),
    ));
    stop.cancel();
    let _ = thread.join();
    Ok(())
}

/// The receiver on a free loopback port, with one camera that takes `ADDRESS`.
async fn start(
    store: &sentrix::store::Store,
    bus: &EventBus,
    stop: &tokio_util::sync::CancellationToken,
) -> anyhow::Result<(u16, std::thread::JoinHandle<()>)> {
    let rules = HashMap::from([(
        "bench".to_string(),
        intake::CameraRules {
            label: "alarm".into(),
            batch: Duration::from_millis(100),
            picture_ms: 1000,
        },
    )]);
    let (intake, thread) = intake::spawn(
        store.clone(),
        Some(bus.clone()),
        None,
        rules,
        600,
        stop.clone(),
    )?;
    let security = sentrix::config::Security::default();
    let auth = sentrix::auth::Authenticator::new(
        store.clone(),
        sentrix::auth::Policy::from_config(&security),
        sentrix::base::clock::system(),
    );
    let mailbox = smtp::Mailbox {
        camera: "bench".into(),
        login: None,
    };
    let receiver = Arc::new(smtp::Receiver {
        mailboxes: HashMap::from([(ADDRESS.to_string(), mailbox)]),
        allow_plain_auth: false,
        max_message_bytes: 25 << 20,
        max_pictures: 20,
        max_megapixels: 40.0,
        tls: None,
        table: sentrix::web::conn::ConnTable::new(sentrix::web::conn::Limits::default()),
        auth: Arc::new(auth),
        audit: Arc::new(sentrix::audit::Audit::open(None)?),
        intake,
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let port = listener.local_addr()?.port();
    tokio::spawn(smtp::serve(receiver, listener, stop.clone()));
    Ok((port, thread))
}

/// `count` distinct 1280x720 JPEGs of GStreamer's test pattern.
fn jpegs(count: usize) -> anyhow::Result<Vec<Vec<u8>>> {
    use gstreamer::prelude::*;
    let line = format!(
        "videotestsrc num-buffers={count} pattern=ball ! video/x-raw,width=1280,height=720 ! jpegenc ! appsink name=out"
    );
    let pipeline = gstreamer::parse::launch(&line)?
        .downcast::<gstreamer::Pipeline>()
        .map_err(|_| anyhow::anyhow!("not a pipeline"))?;
    let sink = pipeline
        .by_name("out")
        .and_then(|e| e.downcast::<gstreamer_app::AppSink>().ok())
        .ok_or_else(|| anyhow::anyhow!("no appsink"))?;
    pipeline.set_state(gstreamer::State::Playing)?;
    let mut out = Vec::new();
    while let Ok(sample) = sink.pull_sample() {
        if let Some(b) = sample.buffer() {
            out.push(b.map_readable()?.to_vec());
        }
    }
    pipeline.set_state(gstreamer::State::Null)?;
    anyhow::ensure!(out.len() == count, "made {} of {count} pictures", out.len());
    Ok(out)
}

/// One message with `pictures` attached, by a minimal SMTP client; returns when the
/// client sent the final `.` (the server's answer is read after).
fn send(port: u16, pictures: &[Vec<u8>]) -> anyhow::Result<Instant> {
    use base64::Engine;
    let stream = std::net::TcpStream::connect(("127.0.0.1", port))?;
    stream.set_nodelay(true)?;
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut w = stream;
    let reply = |expect: &str, r: &mut BufReader<std::net::TcpStream>| -> anyhow::Result<()> {
        let mut line = String::new();
        loop {
            line.clear();
            r.read_line(&mut line)?;
            if line.len() < 4 || line.as_bytes()[3] != b'-' {
                break;
            }
        }
        anyhow::ensure!(line.starts_with(expect), "expected {expect}, got {line:?}");
        Ok(())
    };
    reply("220", &mut reader)?;
    for (cmd, expect) in [
        ("EHLO bench.test".to_string(), "250"),
        ("MAIL FROM:<cam@bench.test>".into(), "250"),
        (format!("RCPT TO:<{ADDRESS}>"), "250"),
        ("DATA".into(), "354"),
    ] {
        write!(w, "{cmd}\r\n")?;
        reply(expect, &mut reader)?;
    }
    let mut body = String::from(
        "Subject: Motion\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n",
    );
    for (i, p) in pictures.iter().enumerate() {
        body.push_str(&format!(
            "--b\r\nContent-Type: image/jpeg\r\nContent-Transfer-Encoding: base64\r\nContent-Disposition: attachment; filename=p{i}.jpg\r\n\r\n"
        ));
        let encoded = base64::engine::general_purpose::STANDARD.encode(p);
        for chunk in encoded.as_bytes().chunks(76) {
            body.push_str(std::str::from_utf8(chunk)?);
            body.push_str("\r\n");
        }
    }
    body.push_str("--b--\r\n.\r\n");
    w.write_all(body.as_bytes())?;
    let sent = Instant::now();
    reply("250", &mut reader)?;
    write!(w, "QUIT\r\n")?;
    Ok(sent)
}

/// Waits for the next `kind` notice on the bus; when it came.
fn wait(
    rt: &tokio::runtime::Runtime,
    events: &mut broadcast::Receiver<EventNotice>,
    kind: &str,
) -> anyhow::Result<Instant> {
    rt.block_on(async {
        loop {
            let n = tokio::time::timeout(Duration::from_secs(30), events.recv())
                .await
                .map_err(|_| anyhow::anyhow!("no {kind} notice in 30 s"))??;
            if n.kind == kind {
                return Ok(Instant::now());
            }
        }
    })
}

/// This process's CPU time (user + system), s.
fn cpu_seconds() -> f64 {
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: getrusage fills the struct we own.
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) };
    let tv = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    tv(usage.ru_utime) + tv(usage.ru_stime)
}
