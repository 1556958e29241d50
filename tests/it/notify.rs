//! Notifications end to end, `sentrix run` delivering to real servers on loopback
//! (notify_servers.rs): Mosquitto over TLS with a password, aiosmtpd with STARTTLS, and an
//! HTTPS receiver standing in for a webhook consumer and an ntfy server.
//!
//! - The walking-people footage: every person event makes exactly one message at each
//!   target, with a snapshot that decodes as a JPEG; webhook signatures verify and fail
//!   on a tampered body; Home Assistant discovery configs are retained and valid, the
//!   occupancy sensor goes ON and back OFF, a removed label's entity is cleared; secrets
//!   appear in no log line or API answer.
//! - The outbox: with the webhook receiver down, 5 events, `kill -9`, a restart and the
//!   receiver back, every message arrives exactly once (by its idempotency key), and
//!   recording's frame counts were unaffected; a cooldown turns 10 events into 1 message;
//!   armed mode `off` sends none; an unreachable broker is a status, not a crash.

use crate::common::run::*;
use crate::common::{self, wait_until};
use crate::notify_servers::*;
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

const MQTT_USER: &str = "sentrix";
const MQTT_PASSWORD: &str = "mqtt-pass-8f3e1c";
const HOOK_SECRET: &str = "hook-secret-5d0b77";
const NTFY_TOKEN: &str = "tk_ntfy_a61c04";

/// The JSON event part of a webhook request (plain JSON or multipart), and the JPEG.
fn webhook_parts(r: &Received) -> (Value, Option<Vec<u8>>) {
    let kind = r.header("content-type").unwrap_or_default().to_string();
    let Some(boundary) = kind.split("boundary=").nth(1) else {
        return (serde_json::from_slice(&r.body).unwrap(), None);
    };
    let sep = format!("--{boundary}");
    let mut json = Value::Null;
    let mut jpeg = None;
    for part in split_bytes(&r.body, sep.as_bytes()) {
        let Some(at) = find(part, b"\r\n\r\n") else {
            continue;
        };
        let (head, body) = (String::from_utf8_lossy(&part[..at]), &part[at + 4..]);
        let body = body.strip_suffix(b"\r\n").unwrap_or(body);
        if head.contains("name=\"event\"") {
            json = serde_json::from_slice(body).unwrap();
        } else if head.contains("name=\"snapshot\"") {
            jpeg = Some(body.to_vec());
        }
    }
    (json, jpeg)
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

fn split_bytes<'a>(mut hay: &'a [u8], sep: &[u8]) -> Vec<&'a [u8]> {
    let mut out = Vec::new();
    while let Some(i) = find(hay, sep) {
        out.push(&hay[..i]);
        hay = &hay[i + sep.len()..];
    }
    out.push(hay);
    out
}

/// Whether the request's signature is HMAC-SHA256(secret, "TIMESTAMP.BODY") of `body`.
fn signature_holds(r: &Received, secret: &str, body: &[u8]) -> bool {
    let ts = r.header("x-sentrix-timestamp").unwrap();
    sentrix::notify::http::signature(secret.as_bytes(), ts, body)
        == r.header("x-sentrix-signature").unwrap()
}

/// `ffmpeg` decodes `jpeg` as an image without a complaint.
fn assert_jpeg(jpeg: &[u8], what: &str) {
    assert!(jpeg.starts_with(&[0xff, 0xd8]), "{what}: not a JPEG");
    let file = tempfile::NamedTempFile::with_suffix(".jpg").unwrap();
    std::fs::write(file.path(), jpeg).unwrap();
    common::assert_decodes_cleanly(file.path());
}

/// The JPEG attached to a mail (base64 after the image/jpeg part's headers).
fn mail_jpeg(mail: &str) -> Option<Vec<u8>> {
    use base64::Engine;
    let at = mail.find("Content-Type: image/jpeg")?;
    let rest = &mail[at..];
    let body = &rest[rest.find("\r\n\r\n").or_else(|| rest.find("\n\n"))?..];
    let b64: String = body
        .lines()
        .map(str::trim)
        .skip_while(|l| l.is_empty())
        .take_while(|l| !l.is_empty() && !l.starts_with("--"))
        .collect();
    base64::engine::general_purpose::STANDARD.decode(b64).ok()
}

fn mail_header<'a>(mail: &'a str, name: &str) -> Option<&'a str> {
    mail.lines()
        .find(|l| {
            l.to_ascii_lowercase()
                .starts_with(&format!("{}:", name.to_ascii_lowercase()))
        })
        .map(|l| l[name.len() + 1..].trim())
}

/// Counts of event ids in `ids`.
fn tally(ids: impl IntoIterator<Item = i64>) -> BTreeMap<i64, usize> {
    let mut m = BTreeMap::new();
    for id in ids {
        *m.entry(id).or_default() += 1;
    }
    m
}

fn notify_yaml(
    cert: &TestCert,
    mqtt_port: u16,
    http_port: u16,
    smtp_port: u16,
    mqtt_labels: &str,
) -> String {
    let ca = cert.cert.display();
    let model = common::testdata_dir().join("yolox_nano.onnx");
    [
        "detect:".to_string(),
        format!("  model: {}", model.display()),
        "  confidence: 0.3".into(),
        "  labels: [person]".into(),
        "  event_gap: 2".into(),
        "notify:".into(),
        "  public_url: https://nvr.test:8443".into(),
        "  targets:".into(),
        format!("    - {{type: mqtt, name: ha, host: localhost, port: {mqtt_port}, ca_file: {ca}, username: {MQTT_USER}, password: {{file: mqtt.pass}}, labels: {mqtt_labels}}}"),
        format!("    - {{type: webhook, name: hook, url: 'https://localhost:{http_port}/hook', ca_file: {ca}, secret: {{file: hook.secret}}, snapshot: true}}"),
        format!("    - {{type: email, name: mail, host: localhost, port: {smtp_port}, ca_file: {ca}, from: sentrix@localhost, to: [owner@localhost]}}"),
        format!("    - {{type: ntfy, name: phone, url: 'https://localhost:{http_port}/ntfy/door', ca_file: {ca}, token: {{env: NTFY_TOKEN}}}}"),
        format!("    - {{type: webhook, name: items, url: 'https://localhost:{http_port}/items', ca_file: {ca}, secret: {{file: hook.secret}}}}"),
        "  rules:".into(),
        "    - {target: hook, labels: [person], cooldown: 0}".into(),
        "    - {target: mail, labels: [person], cooldown: 0}".into(),
        "    - {target: phone, labels: [person], cooldown: 0}".into(),
        "    - {target: items, severity: [alert], on: both, cooldown: 0}".into(),
    ]
    .join("\n")
        + "\n"
}

/// The person events, once each has ended.
async fn ended_person_events(client: &reqwest::Client, base: &str) -> Vec<Value> {
    let v = get_json_as_admin(client, &format!("{base}/api/events?label=person")).await;
    v["events"].as_array().cloned().unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn people_reach_every_target_once_with_a_snapshot() {
    let dir = common::temp_dir();
    let cert = test_cert(dir.path());
    let (mqtt_port, smtp_port) = (free_port(), free_port());
    let receiver = receiver(&cert, 0).await;
    let _broker = mosquitto(dir.path(), &cert, mqtt_port, MQTT_USER, MQTT_PASSWORD);
    let maildir = dir.path().join("maildir");
    let _smtp = smtp_server(&maildir, &cert, smtp_port);
    let sub = subscriber(&cert, mqtt_port, MQTT_USER, MQTT_PASSWORD).await;
    std::fs::write(dir.path().join("mqtt.pass"), format!("{MQTT_PASSWORD}\n")).unwrap();
    std::fs::write(dir.path().join("hook.secret"), HOOK_SECRET).unwrap();
    let mut camera = common::RtspFixture::with_launch(&crate::detect_events::people_launch());
    let cameras = format!(
        "  - id: square\n    name: Town square\n    url: {}\n{}",
        camera.url(),
        notify_yaml(&cert, mqtt_port, receiver.port, smtp_port, "[person, car]")
    );
    let config = write_config_with(dir.path(), &cameras);
    let added = add_admin(&config);
    assert!(
        added.status.success(),
        "{}",
        String::from_utf8_lossy(&added.stderr)
    );
    let token = std::ffi::OsStr::new(NTFY_TOKEN);
    let (child, rx) = spawn_run_with(&config, &[], &[("NTFY_TOKEN", token)]);
    let mut log = Vec::new();
    let base = dashboard_base(&rx, &mut log);
    let client = https_client(&std::fs::read(dir.path().join("certs/server.crt")).unwrap());
    // The footage plays once (11.5 s); then the camera goes away and the events end.
    wait_until(Duration::from_secs(40), || camera.sent_frames() >= 280)
        .expect("the footage played");
    camera.stop();
    let mut events = Vec::new();
    let settled = async {
        loop {
            events = ended_person_events(&client, &base).await;
            let all_ended = !events.is_empty() && events.iter().all(|e| !e["end_ms"].is_null());
            let ids: BTreeSet<i64> = events.iter().filter_map(|e| e["id"].as_i64()).collect();
            let hooked: BTreeSet<i64> = receiver
                .requests("/hook")
                .iter()
                .filter_map(|r| webhook_parts(r).0["event"]["id"].as_i64())
                .collect();
            let mailed = mails(&maildir).len();
            let items = review_items(&client, &base).await;
            let items_closed = !items.is_empty() && items.iter().all(|i| !i["end_ms"].is_null());
            if all_ended
                && items_closed
                && receiver.requests("/items").len() >= 2 * items.len()
                && hooked == ids
                && mailed >= ids.len()
                && receiver.requests("/ntfy").len() >= ids.len()
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    };
    if tokio::time::timeout(Duration::from_secs(60), settled)
        .await
        .is_err()
    {
        log.extend(rx.try_iter());
        panic!(
            "deliveries did not settle: {} events, {} webhooks, {} mails, {} ntfy\n{}",
            events.len(),
            receiver.requests("/hook").len(),
            mails(&maildir).len(),
            receiver.requests("/ntfy").len(),
            log.join("\n")
        );
    }
    // Anything still queued would show as a second message below.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let ids: BTreeSet<i64> = events.iter().filter_map(|e| e["id"].as_i64()).collect();
    let once: BTreeMap<i64, usize> = ids.iter().map(|&id| (id, 1)).collect();

    check_webhook(&receiver, &once);
    check_ntfy(&receiver, &once);
    check_mail(&maildir, &once);
    check_mqtt(&sub, &once, &events);
    check_review(&client, &base, &events, &sub, &receiver).await;
    let status = get_json_as_admin(&client, &format!("{base}/api/notify")).await;
    let metrics = get_text_as_admin(&client, &format!("{base}/metrics")).await;
    // Every per-event target sent a message per event; `items` one start and one end per item.
    for t in status["targets"].as_array().unwrap() {
        let least = if t["name"] == "items" {
            2
        } else {
            ids.len() as u64
        };
        assert!(t["sent"].as_u64().unwrap() >= least, "{t}");
        assert_eq!(t["pending"], 0, "{t}");
    }
    assert!(
        metrics.contains("sentrix_notify_sent_total{target=\"hook\",type=\"webhook\"}"),
        "{metrics}"
    );

    // A label taken out of the MQTT target: its entity's config is cleared at the next start.
    for line in rx.try_iter() {
        log.push(line);
    }
    assert!(stop(child));
    let offline = wait_until(Duration::from_secs(5), || {
        sub.on("sentrix/availability")
            .last()
            .is_some_and(|s| s.payload == b"offline")
    });
    assert!(offline.is_some(), "availability offline at shutdown");
    let text = std::fs::read_to_string(&config)
        .unwrap()
        .replace("labels: [person, car]}", "labels: [person]}");
    std::fs::write(&config, text).unwrap();
    let (child, rx2) = spawn_run_with(&config, &[], &[("NTFY_TOKEN", token)]);
    dashboard_base(&rx2, &mut log);
    let car = discovery_topic(&sub, "square_car");
    let cleared = wait_until(Duration::from_secs(15), || {
        sub.on(&car).last().is_some_and(|s| s.payload.is_empty())
    });
    assert!(cleared.is_some(), "the car sensor's config was not cleared");
    assert!(stop(child));
    log.extend(rx2.try_iter());
    for secret in [MQTT_PASSWORD, HOOK_SECRET, NTFY_TOKEN] {
        for (place, text) in [
            ("log", log.join("\n")),
            ("/api/notify", status.to_string()),
            ("/metrics", metrics.clone()),
        ] {
            assert!(!text.contains(secret), "{place} holds a secret");
        }
    }
}

/// Every review item, motion-only ones too, newest first.
async fn review_items(client: &reqwest::Client, base: &str) -> Vec<Value> {
    let v = get_json_as_admin(
        client,
        &format!("{base}/api/review?severity=any&limit=1000"),
    )
    .await;
    v["items"].as_array().cloned().unwrap_or_default()
}

/// The walkers as review items: at most a tenth as many items as events, each event in
/// exactly one, items of the camera not overlapping and within the cap; MQTT announces
/// each alert item once as new (not each event), and the per-item rule sends one start
/// and one end per alert item.
async fn check_review(
    client: &reqwest::Client,
    base: &str,
    events: &[Value],
    sub: &Subscriber,
    receiver: &Receiver,
) {
    let mut items = review_items(client, base).await;
    items.reverse();
    let alerts: BTreeSet<i64> = items
        .iter()
        .filter(|i| i["severity"] == "alert")
        .filter_map(|i| i["id"].as_i64())
        .collect();
    eprintln!(
        "pedestrian footage: {} events, {} review items ({} alerts)",
        events.len(),
        items.len(),
        alerts.len()
    );
    assert!(
        items.len() * 10 <= events.len(),
        "{} items for {} events",
        items.len(),
        events.len()
    );
    let held: i64 = items.iter().map(|i| i["events"].as_i64().unwrap()).sum();
    assert_eq!(
        held as usize,
        events.len(),
        "every event in exactly one item"
    );
    let ids: BTreeSet<i64> = items.iter().filter_map(|i| i["id"].as_i64()).collect();
    assert!(
        events
            .iter()
            .all(|e| e["review_id"].as_i64().is_some_and(|r| ids.contains(&r)))
    );
    for w in items.windows(2) {
        assert!(
            w[0]["end_ms"].as_i64() <= w[1]["start_ms"].as_i64(),
            "{w:?}"
        );
    }
    for i in &items {
        assert!(i["end_ms"].as_i64().unwrap() - i["start_ms"].as_i64().unwrap() <= 300_000);
    }
    let new_alerts: Vec<i64> = sub
        .on("sentrix/square/review")
        .iter()
        .filter_map(|s| serde_json::from_slice::<Value>(&s.payload).ok())
        .filter(|v| v["notice"] == "new" && v["review"]["severity"] == "alert")
        .filter_map(|v| v["review"]["id"].as_i64())
        .collect();
    assert_eq!(new_alerts.iter().copied().collect::<BTreeSet<_>>(), alerts);
    assert_eq!(
        new_alerts.len(),
        alerts.len(),
        "one MQTT 'new' per alert item"
    );
    let unreviewed = sub.on("sentrix/square/review/unreviewed_alerts");
    assert_eq!(
        unreviewed.last().map(|s| s.payload.clone()),
        Some(alerts.len().to_string().into_bytes())
    );
    let sent: Vec<Value> = receiver
        .requests("/items")
        .iter()
        .map(|r| webhook_parts(r).0)
        .collect();
    for kind in ["start", "end"] {
        let of_kind: Vec<i64> = sent
            .iter()
            .filter(|j| j["kind"] == kind)
            .filter_map(|j| j["review"]["id"].as_i64())
            .collect();
        assert_eq!(of_kind.len(), alerts.len(), "{kind}: {sent:?}");
        assert_eq!(of_kind.into_iter().collect::<BTreeSet<_>>(), alerts);
    }
    assert!(
        sent.iter()
            .all(|j| j["url"].as_str().unwrap().contains("/#review/"))
    );
}

/// The retained discovery topic of a binary sensor whose id ends `suffix`.
fn discovery_topic(sub: &Subscriber, suffix: &str) -> String {
    let configs = sub.topics_starting("homeassistant/binary_sensor/");
    configs
        .iter()
        .map(|s| s.topic.clone())
        .find(|t| t.ends_with(&format!("/{suffix}/config")))
        .unwrap_or_else(|| panic!("no discovery config for {suffix}"))
}

fn check_webhook(receiver: &Receiver, once: &BTreeMap<i64, usize>) {
    let hooks = receiver.requests("/hook");
    let parts: Vec<(Value, Option<Vec<u8>>)> = hooks.iter().map(webhook_parts).collect();
    assert_eq!(
        &tally(parts.iter().filter_map(|(j, _)| j["event"]["id"].as_i64())),
        once
    );
    let deliveries: BTreeSet<&str> = hooks
        .iter()
        .filter_map(|r| r.header("x-sentrix-delivery"))
        .collect();
    assert_eq!(
        deliveries.len(),
        hooks.len(),
        "one idempotency key per message"
    );
    for (r, (json, jpeg)) in hooks.iter().zip(&parts) {
        assert_eq!(json["kind"], "start");
        assert_eq!(json["camera"]["name"], "Town square");
        assert!(
            json["url"]
                .as_str()
                .unwrap()
                .starts_with("https://nvr.test:8443/#event/")
        );
        assert_jpeg(jpeg.as_ref().expect("snapshot part"), "webhook snapshot");
        assert!(
            signature_holds(r, HOOK_SECRET, &r.body),
            "the signature verifies"
        );
        let mut tampered = r.body.clone();
        let i = find(&tampered, b"\"label\"").unwrap();
        tampered[i + 9] ^= 0x20;
        assert!(
            !signature_holds(r, HOOK_SECRET, &tampered),
            "a tampered body fails"
        );
        assert!(!signature_holds(r, "another secret", &r.body));
    }
}

fn check_ntfy(receiver: &Receiver, once: &BTreeMap<i64, usize>) {
    let sent = receiver.requests("/ntfy/door");
    let ids = sent.iter().map(|r| {
        let name = r.header("filename").expect("an attachment");
        name.trim_start_matches("event-")
            .trim_end_matches(".jpg")
            .parse::<i64>()
            .unwrap()
    });
    assert_eq!(&tally(ids), once);
    for r in &sent {
        assert_eq!(r.method, "PUT");
        assert_eq!(r.header("title"), Some("person at Town square"));
        assert_eq!(
            r.header("authorization"),
            Some(format!("Bearer {NTFY_TOKEN}").as_str())
        );
        assert!(r.header("tags").unwrap().contains("person"));
        assert_eq!(r.header("priority"), Some("4"));
        assert!(r.header("click").unwrap().contains("/#event/"));
        assert_jpeg(&r.body, "ntfy attachment");
    }
}

fn check_mail(maildir: &std::path::Path, once: &BTreeMap<i64, usize>) {
    let all = mails(maildir);
    let ids = all.iter().map(|m| {
        let at = m.find("filename=\"event-").expect("an attachment") + 16;
        m[at..].split('.').next().unwrap().parse::<i64>().unwrap()
    });
    assert_eq!(&tally(ids), once);
    for m in &all {
        let subject = mail_header(m, "Subject").unwrap();
        assert!(subject.contains("person at Town square"), "{subject}");
        assert!(m.contains("https://nvr.test:8443/#event/"));
        assert!(mail_header(m, "Message-ID").unwrap().ends_with("@sentrix>"));
        assert_jpeg(&mail_jpeg(m).expect("a JPEG attachment"), "mail attachment");
    }
}

fn check_mqtt(sub: &Subscriber, once: &BTreeMap<i64, usize>, events: &[Value]) {
    let notices: Vec<Value> = sub
        .on("sentrix/square/events")
        .iter()
        .filter_map(|s| serde_json::from_slice(&s.payload).ok())
        .collect();
    // At least once, each with its idempotency key: one start per event by that key.
    let by_key: BTreeMap<&str, &Value> = notices
        .iter()
        .map(|v| (v["delivery"].as_str().expect("a delivery key"), v))
        .collect();
    let starts = by_key
        .values()
        .filter(|v| v["kind"] == "start")
        .filter_map(|v| v["event"]["id"].as_i64());
    assert_eq!(&tally(starts), once);
    let states: Vec<Vec<u8>> = sub
        .on("sentrix/square/person")
        .into_iter()
        .map(|s| s.payload)
        .collect();
    let on = states
        .iter()
        .position(|p| p == b"ON")
        .expect("the sensor went ON");
    assert!(
        states[on..].iter().any(|p| p == b"OFF"),
        "and OFF after: {states:?}"
    );
    assert_eq!(states.last().map(Vec::as_slice), Some(&b"OFF"[..]));
    let topic = discovery_topic(sub, "square_person");
    let config = sub.on(&topic).last().cloned().unwrap();
    assert!(config.retain || !config.payload.is_empty());
    let c: Value = serde_json::from_slice(&config.payload).expect("discovery config is JSON");
    assert_eq!(c["state_topic"], "sentrix/square/person");
    assert_eq!(c["device_class"], "occupancy");
    assert!(
        c["device"]["identifiers"][0]
            .as_str()
            .unwrap()
            .starts_with("sentrix_")
    );
    for kind in ["camera", "sensor"] {
        let found = sub.topics_starting(&format!("homeassistant/{kind}/"));
        let c: Value = serde_json::from_slice(&found.last().expect(kind).payload).unwrap();
        assert_eq!(
            c["device"],
            serde_json::from_slice::<Value>(&config.payload).unwrap()["device"]
        );
    }
    let snap = sub.on("sentrix/square/snapshot");
    assert_jpeg(&snap.last().expect("a snapshot").payload, "MQTT snapshot");
    let today = sub.on("sentrix/square/events_today");
    let count: usize = String::from_utf8_lossy(&today.last().unwrap().payload)
        .parse()
        .unwrap();
    assert!(count >= events.len(), "events today {count}");
}

const INLINE_SECRET: &str = "inline-secret-0c9a41";

/// The demo camera with three webhooks on one receiver (`/hook` without a cooldown, `/cool`
/// with 60 s, and `revoked`, whose token the receiver refuses with 401) for manual events,
/// and an MQTT broker that is not there.
fn outbox_config(
    dir: &std::path::Path,
    cert: &TestCert,
    http_port: u16,
    dead_port: u16,
) -> std::path::PathBuf {
    let ca = cert.cert.display();
    let cameras = [
        "  - id: demo".to_string(),
        "    url: demo://?width=640&height=360&fps=10&bitrate=500".into(),
        "notify:".into(),
        "  retry_max_seconds: 2".into(),
        "  targets:".into(),
        format!("    - {{type: webhook, name: hook, url: 'https://localhost:{http_port}/hook', ca_file: {ca}, secret: {INLINE_SECRET}}}"),
        format!("    - {{type: webhook, name: cool, url: 'https://localhost:{http_port}/cool', ca_file: {ca}}}"),
        format!("    - {{type: mqtt, name: ha, host: 127.0.0.1, port: {dead_port}, tls: false}}"),
        format!("    - {{type: webhook, name: revoked, url: 'https://localhost:{http_port}/status/401', ca_file: {ca}}}"),
        "  rules:".into(),
        "    - {target: hook, labels: [manual], cooldown: 0}".into(),
        "    - {target: cool, labels: [manual], cooldown: 60}".into(),
        "    - {target: revoked, labels: [manual], cooldown: 0}".into(),
    ]
    .join("\n")
        + "\n";
    write_config_with(dir, &cameras)
}

/// Triggers `n` manual events one every `gap`; returns their ids.
async fn manual_events(client: &reqwest::Client, base: &str, n: usize, gap: Duration) -> Vec<i64> {
    let mut ids = Vec::new();
    for _ in 0..n {
        let v = trigger_demo(client, base).await;
        ids.push(v["event"]["id"].as_i64().unwrap());
        tokio::time::sleep(gap).await;
    }
    ids
}

fn hooked_ids(receiver: &Receiver, path: &str) -> Vec<i64> {
    receiver
        .requests(path)
        .iter()
        .filter_map(|r| webhook_parts(r).0["event"]["id"].as_i64())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outbox_survives_a_dead_target_and_kill_9() {
    let dir = common::temp_dir();
    let cert = test_cert(dir.path());
    let (http_port, dead_port) = (free_port(), free_port());
    let config = outbox_config(dir.path(), &cert, http_port, dead_port);
    assert!(add_admin(&config).status.success());
    let (mut child, rx) = spawn_run(&config);
    let mut log = Vec::new();
    let base = dashboard_base(&rx, &mut log);
    let client = https_client(&std::fs::read(dir.path().join("certs/server.crt")).unwrap());
    wait_for(&rx, "streaming", &mut log).expect("the demo camera streams");

    // The receiver is down: 5 events are written to the outbox and retried.
    let first = manual_events(&client, &base, 5, Duration::from_millis(600)).await;
    let mut failing = false;
    for _ in 0..50 {
        let s = get_json_as_admin(&client, &format!("{base}/api/notify")).await;
        let hook = &s["targets"][0];
        failing = hook["pending"] == 5
            && hook["failed"].as_u64() >= Some(2)
            && !hook["last_error"].is_null();
        if failing {
            break;
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    assert!(
        failing,
        "the outbox holds the messages while the target is down"
    );
    let status = get_json_as_admin(&client, &format!("{base}/api/notify")).await;
    let ha = &status["targets"][2];
    assert_eq!(ha["connected"], false, "{ha}");
    assert!(
        ha["last_error"].as_str().is_some_and(|e| !e.is_empty()),
        "{ha}"
    );
    // Recording went on at full rate meanwhile: the clip of those events has every frame.
    let clip = wait_for_clip(&client, &base).await;
    let expected = clip["duration_ms"].as_f64().unwrap() / 1000.0 * 10.0;
    let frames = clip["frames"].as_f64().unwrap();
    assert!(
        frames >= expected * 0.95 - 1.0,
        "{frames} frames in {expected:.0} expected: {clip}"
    );

    // kill -9, the receiver comes back, sentrix restarts: each message arrives once.
    child.kill().unwrap();
    child.wait().unwrap();
    let receiver = receiver(&cert, http_port).await;
    let (child, rx) = spawn_run(&config);
    let base = dashboard_base(&rx, &mut log);
    let arrived = wait_until(Duration::from_secs(30), || {
        hooked_ids(&receiver, "/hook").len() >= 5
    });
    assert!(
        arrived.is_some(),
        "the queued messages arrive after the restart"
    );
    tokio::time::sleep(Duration::from_secs(3)).await;
    let hooks = receiver.requests("/hook");
    let keys: BTreeSet<&str> = hooks
        .iter()
        .filter_map(|r| r.header("x-sentrix-delivery"))
        .collect();
    assert_eq!((hooks.len(), keys.len()), (5, 5), "each exactly once");
    assert_eq!(
        tally(hooked_ids(&receiver, "/hook")),
        tally(first.iter().copied())
    );
    assert_eq!(
        hooked_ids(&receiver, "/cool").len(),
        1,
        "the cooldown let one through"
    );
    // A 401 is permanent: each message to the revoked target was tried once (no retry
    // within 3 s, though retry_max_seconds is 2), rejected, and shown as such.
    assert_eq!(receiver.requests("/status/401").len(), 5, "tried once each");
    let status = get_json_as_admin(&client, &format!("{base}/api/notify")).await;
    let revoked = &status["targets"][3];
    assert_eq!(
        (
            &revoked["name"],
            &revoked["rejected"],
            &revoked["failed"],
            &revoked["pending"]
        ),
        (&json!("revoked"), &json!(5), &json!(0), &json!(0)),
        "{revoked}"
    );
    assert!(
        revoked["last_error"]
            .as_str()
            .is_some_and(|e| e.contains("401") && e.contains("not retried")),
        "{revoked}"
    );
    for r in &hooks {
        assert!(signature_holds(r, INLINE_SECRET, &r.body));
        let mut tampered = r.body.clone();
        tampered[5] ^= 1;
        assert!(!signature_holds(r, INLINE_SECRET, &tampered));
    }

    // 10 events in 10 s: ten messages without a cooldown, one with it.
    let ten = manual_events(&client, &base, 10, Duration::from_secs(1)).await;
    let all = wait_until(Duration::from_secs(20), || {
        hooked_ids(&receiver, "/hook").len() >= 15
    });
    assert!(all.is_some());
    tokio::time::sleep(Duration::from_secs(2)).await;
    let cool = hooked_ids(&receiver, "/cool");
    assert_eq!(cool.len(), 2, "{cool:?}");
    assert_eq!(cool[1], ten[0], "the first of the ten, and none after it");

    // Armed off: nothing is sent, and it stays off across a restart.
    let r = client
        .put(format!("{base}/api/notify/armed"))
        .header("origin", &base)
        .basic_auth("alice", Some(ADMIN_PASSWORD))
        .body(r#"{"mode":"off"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    manual_events(&client, &base, 2, Duration::from_millis(300)).await;
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert_eq!(
        receiver.requests("/hook").len(),
        15,
        "armed off sends nothing"
    );
    assert!(stop(child));
    let (child, rx) = spawn_run(&config);
    let base = dashboard_base(&rx, &mut log);
    let status = get_json_as_admin(&client, &format!("{base}/api/notify")).await;
    assert_eq!(status["armed"], "off");
    assert!(stop(child));
    log.extend(rx.try_iter());
    assert!(!log.join("\n").contains(INLINE_SECRET));
    assert!(!status.to_string().contains(INLINE_SECRET));
}

/// The first finished clip of the demo camera.
async fn wait_for_clip(client: &reqwest::Client, base: &str) -> Value {
    for _ in 0..60 {
        let v = get_json_as_admin(client, &format!("{base}/api/clips?camera=demo")).await;
        if let Some(c) = v["clips"].as_array().and_then(|a| a.first()) {
            return c.clone();
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    panic!("no clip");
}
