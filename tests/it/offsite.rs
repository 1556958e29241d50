//! Off-site copies end to end: `sentrix run` replicating to s3s-fs, a real S3-compatible
//! server (built by `scripts/deps.sh test`), on loopback, with SigV4 credentials read from
//! files. s3s-fs keeps each object as a plain file, so the tests read and damage the
//! bucket's objects directly.
//!
//! - A recorded event's clip lands byte-for-byte equal to the local sealed file, beside its
//!   sealed index record; no object holds `ftyp`, a JPEG, the camera password or a label.
//! - Stolen box: an empty data directory with the same key and `offsite restore` lists the
//!   same events and serves the same clip bytes; with another key it refuses, naming the
//!   key; a flipped byte is refused by `offsite fetch` and `offsite restore`, and nothing
//!   of the bad clip is kept.
//! - Outage and kill -9: 5 clips recorded while the server is down arrive, each once,
//!   after a restart of both; recording kept every frame meanwhile.
//! - A 25 MB clip goes up in parts at the bandwidth cap (within 20 % over 30 s), survives
//!   a kill -9 mid-upload and resumes at its next part.

use crate::common::run::*;
use crate::common::{self, wait_until};
use crate::notify_servers::free_port;
use sentrix_testkit::servers::{Daemon, s3_server};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

const BUCKET: &str = "nvr-offsite";
const ACCESS: &str = "AKIASENTRIXTEST01";
const SECRET: &str = "s3-secret-4e2b9d71";
const CAMERA_PASSWORD: &str = "cam-pass-77f0a3";

/// s3s-fs on `port`, objects under `root/BUCKET/`.
fn s3(root: &Path, port: u16) -> Daemon {
    s3_server(root, port, BUCKET, ACCESS, SECRET).unwrap()
}

/// A data directory's config: the demo camera (and a disabled camera whose URL holds a
/// password), and `storage.offsite` to s3s-fs on `port` with `extra` keys. Motion events
/// are off (the whole picture would have to change), so the clips are the manual
/// triggers' and the tests can count them.
fn offsite_config(dir: &Path, key_file: &Path, port: u16, extra: &str) -> PathBuf {
    std::fs::write(dir.join("access"), ACCESS).unwrap();
    std::fs::write(dir.join("secret"), SECRET).unwrap();
    let api_port = free_port();
    let text = format!(
        "network:\n  api_port: {api_port}\n\
         record:\n  pre_detection_buffer: 1\n  post_detection_buffer: 1\n\
         detect:\n  motion:\n    min_area: 1.0\n\
         storage:\n  recordings_dir: rec\n  database: db/sentrix.db\n  encryption:\n    key_file: {}\n\
         \x20 offsite:\n    endpoint: http://127.0.0.1:{port}\n    bucket: {BUCKET}\n\
         \x20   path_style: true\n    access_key_id: {{file: access}}\n\
         \x20   secret_access_key: {{file: secret}}\n{extra}\
         cameras:\n  - id: demo\n    url: demo://?width=640&height=360&fps=10&bitrate=500\n\
         \x20 - id: porch\n    enabled: false\n    url: rtsp://admin:{CAMERA_PASSWORD}@127.0.0.1:1/main\n",
        key_file.display()
    );
    let path = dir.join("surveillance.yml");
    std::fs::write(&path, text).unwrap();
    path
}

fn sentrix(args: &[&str], config: &Path) -> std::process::Output {
    Command::new(SENTRIX)
        .args(args)
        .arg("--config")
        .arg(config)
        .output()
        .unwrap()
}

fn text(out: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Every file under `dir`, recursively (s3s-fs's objects and its own bookkeeping).
fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return out;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(files_under(&p));
        } else {
            out.push(p);
        }
    }
    out
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

async fn clips(client: &reqwest::Client, base: &str) -> Vec<Value> {
    let v = get_json_as_admin(client, &format!("{base}/api/clips?camera=demo")).await;
    v["clips"].as_array().cloned().unwrap_or_default()
}

/// Waits until `n` clips exist and every one is in `state`; returns them.
async fn wait_for_clips(client: &reqwest::Client, base: &str, n: usize, state: &str) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let list = clips(client, base).await;
        if list.len() >= n
            && list
                .iter()
                .all(|c| c["offsite"].as_str().unwrap_or("").starts_with(state))
        {
            return list;
        }
        assert!(Instant::now() < deadline, "not {n} clips {state}: {list:?}");
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

async fn get_bytes(client: &reqwest::Client, url: &str) -> Vec<u8> {
    let r = client
        .get(url)
        .basic_auth("alice", Some(ADMIN_PASSWORD))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{url}");
    r.bytes().await.unwrap().to_vec()
}

/// Waits until nothing is queued or failed and every record is written; the status.
async fn wait_settled(client: &reqwest::Client, base: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let v = get_json_as_admin(client, &format!("{base}/api/offsite")).await;
        if v["queued"] == 0 && v["failed"] == 0 && v["records_pending"] == 0 {
            return v;
        }
        assert!(Instant::now() < deadline, "the queue does not drain: {v}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// This box's folder in the bucket, from `/api/offsite`.
async fn prefix_of(client: &reqwest::Client, base: &str) -> String {
    let v = get_json_as_admin(client, &format!("{base}/api/offsite")).await;
    v["prefix"]
        .as_str()
        .unwrap_or_else(|| panic!("{v}"))
        .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sealed_copies_restore_a_stolen_box_and_refuse_a_wrong_key_or_damage() {
    let dir = common::temp_dir();
    let (s3_root, port) = (dir.path().join("s3"), free_port());
    let _server = s3(&s3_root, port);
    let key = dir.path().join("clip.key");
    let config = offsite_config(dir.path(), &key, port, "");
    assert!(add_admin(&config).status.success());
    let (child, rx) = spawn_run(&config);
    let mut log = Vec::new();
    let base = dashboard_base(&rx, &mut log);
    let client = https_client(&std::fs::read(dir.path().join("certs/server.crt")).unwrap());
    wait_for(&rx, "streaming", &mut log).expect("the demo camera streams");
    let event = trigger_demo(&client, &base).await;
    let event_id = event["event"]["id"].as_i64().unwrap();
    let clip = wait_for_clips(&client, &base, 1, "uploaded")
        .await
        .remove(0);
    let id = clip["id"].as_i64().unwrap();
    let prefix = prefix_of(&client, &base).await;
    let status = wait_settled(&client, &base).await;
    assert_eq!(status["uploaded"], 1, "{status}");
    let mp4 = get_bytes(&client, &format!("{base}/clips/{id}.mp4")).await;
    let snapshot_url = format!("/api/events/{event_id}/snapshot.jpg");
    let snapshot = get_bytes(&client, &format!("{base}{snapshot_url}")).await;
    // Acknowledging the event rewrites the clip's record in the bucket.
    let acked = client
        .post(format!("{base}/api/events/{event_id}/ack"))
        .header("origin", &base)
        .basic_auth("alice", Some(ADMIN_PASSWORD))
        .send()
        .await
        .unwrap();
    assert!(acked.status().is_success());
    wait_settled(&client, &base).await;
    let events = get_json_as_admin(&client, &format!("{base}/api/events?camera=demo")).await;
    let listed = events["events"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["id"] == event_id);
    assert_eq!(listed.unwrap()["clip_offsite"], "uploaded", "{events}");
    let metrics = get_text_as_admin(&client, &format!("{base}/metrics")).await;
    assert!(
        metrics.contains("sentrix_offsite_uploaded_total 1"),
        "{metrics}"
    );
    assert!(stop(child), "clean stop");
    for line in &log {
        assert!(
            !line.contains(SECRET) && !line.contains(ACCESS),
            "a credential in the log: {line}"
        );
    }
    assert!(!status.to_string().contains(SECRET));

    // The bucket holds the sealed clip, unchanged, and its sealed record; nothing in clear.
    let bucket = s3_root.join(BUCKET).join(&prefix);
    let local = std::fs::read(dir.path().join("rec").join(local_path(dir.path(), id))).unwrap();
    let remote_clip = bucket.join(format!("clips/{id}.sntx"));
    assert_eq!(
        std::fs::read(&remote_clip).unwrap(),
        local,
        "byte-for-byte the local file"
    );
    assert!(
        bucket.join(format!("index/{id}.sntx")).exists(),
        "the sealed index record"
    );
    assert!(
        bucket.join(format!("snapshots/{event_id}.sntx")).exists(),
        "the event's sealed snapshot"
    );
    for f in files_under(&s3_root) {
        let bytes = std::fs::read(&f).unwrap();
        for (what, needle) in [
            ("ftyp", &b"ftyp"[..]),
            ("a JPEG", &[0xff, 0xd8, 0xff][..]),
            ("the camera password", CAMERA_PASSWORD.as_bytes()),
            ("a label", b"manual"),
            ("the camera id", b"porch"),
        ] {
            assert!(!contains(&bytes, needle), "{} holds {what}", f.display());
        }
    }

    // Stolen box: a new data directory with the same key restores the events and clips.
    let new_box = dir.path().join("new-box");
    std::fs::create_dir(&new_box).unwrap();
    let new_config = offsite_config(&new_box, &key, port, "");
    let listed = sentrix(&["offsite", "list", "--prefix", &prefix], &new_config);
    assert!(listed.status.success(), "{}", text(&listed));
    assert!(
        text(&listed).contains(&format!("\n{id}\tdemo\t")),
        "{}",
        text(&listed)
    );
    let restored = sentrix(&["offsite", "restore", "--prefix", &prefix], &new_config);
    assert!(restored.status.success(), "{}", text(&restored));
    assert!(
        text(&restored).contains("restored 1 clips"),
        "{}",
        text(&restored)
    );
    assert!(add_admin(&new_config).status.success());
    let (child, rx) = spawn_run(&new_config);
    let base = dashboard_base(&rx, &mut log);
    let client = https_client(&std::fs::read(new_box.join("certs/server.crt")).unwrap());
    let events = get_json_as_admin(&client, &format!("{base}/api/events?camera=demo")).await;
    let ids: Vec<i64> = events["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["id"].as_i64())
        .collect();
    assert!(ids.contains(&event_id), "the old event is listed: {events}");
    let old_event = events["events"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["id"] == event_id);
    assert_eq!(
        old_event.unwrap()["acknowledged"],
        true,
        "the record followed the ack"
    );
    assert_eq!(
        get_bytes(&client, &format!("{base}{snapshot_url}")).await,
        snapshot,
        "the event's snapshot came back"
    );
    assert_eq!(
        get_bytes(&client, &format!("{base}/clips/{id}.mp4")).await,
        mp4,
        "the same clip bytes"
    );
    let restored_clip = get_json_as_admin(&client, &format!("{base}/api/clips/{id}")).await;
    assert_eq!(restored_clip["offsite"], "uploaded", "{restored_clip}");
    assert!(stop(child));

    // Another key: refused, naming both keys; nothing kept.
    let other = dir.path().join("other-box");
    std::fs::create_dir(&other).unwrap();
    let other_config = offsite_config(&other, &other.join("clip.key"), port, "");
    let wrong = sentrix(&["offsite", "restore", "--prefix", &prefix], &other_config);
    assert!(!wrong.status.success());
    let key_id = String::from_utf8_lossy(&sentrix(&["key-id"], &config).stdout)
        .trim()
        .to_string();
    assert!(
        text(&wrong).contains(&format!("is sealed with key {key_id}")),
        "{}",
        text(&wrong)
    );
    assert!(
        files_under(&other.join("rec")).is_empty(),
        "no partial restore"
    );

    // A flipped byte: fetch and restore refuse the object by name and keep nothing of it.
    let mut damaged = std::fs::read(&remote_clip).unwrap();
    let at = damaged.len() / 2;
    damaged[at] ^= 0x20;
    std::fs::write(&remote_clip, &damaged).unwrap();
    let out = dir.path().join("fetched");
    let fetch_clip = || {
        let id = id.to_string();
        let args = [
            "offsite",
            "fetch",
            &id,
            "-o",
            out.to_str().unwrap(),
            "--prefix",
            &prefix,
        ];
        sentrix(&args, &new_config)
    };
    let fetch = fetch_clip();
    assert!(!fetch.status.success());
    assert!(
        text(&fetch).contains(&format!(
            "{prefix}/clips/{id}.sntx does not match its index record"
        )),
        "{}",
        text(&fetch)
    );
    assert!(
        files_under(&out).is_empty(),
        "nothing fetched is kept: {:?}",
        files_under(&out)
    );
    let third = dir.path().join("third-box");
    std::fs::create_dir(&third).unwrap();
    let third_config = offsite_config(&third, &key, port, "");
    let refused = sentrix(&["offsite", "restore", "--prefix", &prefix], &third_config);
    assert!(!refused.status.success());
    assert!(
        text(&refused).contains(&format!("clips/{id}.sntx does not match")),
        "{}",
        text(&refused)
    );
    // The refused clip left no file, whole or partial; its verified event and snapshot
    // are history and stay.
    let kept = files_under(&third.join("rec"));
    assert!(
        kept.iter().all(|f| {
            let name = f.to_string_lossy();
            !name.contains(".mp4") && !name.ends_with(".partial")
        }),
        "no partial clip: {kept:?}"
    );
    // A missing object is named.
    let aside = remote_clip.with_extension("aside");
    std::fs::rename(&remote_clip, &aside).unwrap();
    let missing = fetch_clip();
    assert!(!missing.status.success());
    let says = format!("{prefix}/clips/{id}.sntx is missing from the bucket");
    assert!(text(&missing).contains(&says), "{}", text(&missing));
    std::fs::rename(&aside, &remote_clip).unwrap();
    // Undamaged again, fetch writes the verified MP4.
    damaged[at] ^= 0x20;
    std::fs::write(&remote_clip, &damaged).unwrap();
    let fetch = fetch_clip();
    assert!(fetch.status.success(), "{}", text(&fetch));
    let files = files_under(&out);
    assert_eq!(files.len(), 1, "{files:?}");
    assert_eq!(std::fs::read(&files[0]).unwrap(), mp4, "the decrypted clip");
}

/// The relative path of clip `id` in the data directory's index.
fn local_path(dir: &Path, id: i64) -> String {
    let conn = rusqlite_path(dir);
    conn.query_row("SELECT path FROM clips WHERE id = ?1", [id], |r| r.get(0))
        .unwrap()
}

fn rusqlite_path(dir: &Path) -> rusqlite::Connection {
    rusqlite::Connection::open(dir.join("db/sentrix.db")).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clips_recorded_during_an_outage_arrive_once_after_kill_9() {
    let dir = common::temp_dir();
    let (s3_root, port) = (dir.path().join("s3"), free_port());
    let config = offsite_config(dir.path(), &dir.path().join("clip.key"), port, "");
    assert!(add_admin(&config).status.success());
    let (mut child, rx) = spawn_run(&config);
    let mut log = Vec::new();
    let base = dashboard_base(&rx, &mut log);
    let client = https_client(&std::fs::read(dir.path().join("certs/server.crt")).unwrap());
    wait_for(&rx, "streaming", &mut log).expect("the demo camera streams");
    // The server is down: 5 clips are recorded and wait in the queue.
    for _ in 0..5 {
        trigger_demo(&client, &base).await;
        tokio::time::sleep(Duration::from_secs(4)).await;
    }
    let waiting = wait_for_clips(&client, &base, 5, "failed: ").await;
    for c in &waiting {
        let expected = c["duration_ms"].as_f64().unwrap() / 1000.0 * 10.0;
        let frames = c["frames"].as_f64().unwrap();
        assert!(
            frames >= expected * 0.95 - 1.0,
            "recording kept every frame: {c}"
        );
    }
    let prefix = prefix_of(&client, &base).await;
    child.kill().unwrap();
    child.wait().unwrap();

    let _server = s3(&s3_root, port);
    let (child, rx) = spawn_run(&config);
    let base = dashboard_base(&rx, &mut log);
    let uploaded = wait_for_clips(&client, &base, 5, "uploaded").await;
    wait_settled(&client, &base).await;
    assert!(stop(child));
    let bucket = s3_root.join(BUCKET).join(&prefix);
    let mut objects: Vec<String> = files_under(&bucket.join("clips"))
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    objects.sort();
    let mut want: Vec<String> = uploaded
        .iter()
        .map(|c| format!("{}.sntx", c["id"]))
        .collect();
    want.sort();
    assert_eq!(objects, want, "each clip exactly once");
    assert_eq!(files_under(&bucket.join("index")).len(), uploaded.len());
}

/// Body bytes sent, from /api/offsite.
async fn sent_bytes(client: &reqwest::Client, base: &str) -> f64 {
    let v = get_json_as_admin(client, &format!("{base}/api/offsite")).await;
    v["sent_bytes"].as_f64().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_large_clip_goes_in_parts_at_the_cap_and_resumes_after_kill_9() {
    let dir = common::temp_dir();
    let (s3_root, port) = (dir.path().join("s3"), free_port());
    let _server = s3(&s3_root, port);
    let key = dir.path().join("clip.key");
    let cap_kbps = 4000.0;
    let capped = offsite_config(
        dir.path(),
        &key,
        port,
        "    max_kbps: 4000\n    prefix: bigbox\n",
    );
    // A 25 MB clip of noise, recorded by the test writer into the same store.
    let mut writer = Command::new(SENTRIX)
        .args([
            "test-writer",
            "--clip-seconds",
            "24",
            "--bitrate-kbps",
            "9000",
            "--config",
        ])
        .arg(&capped)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut first = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(writer.stdout.take().unwrap()),
        &mut first,
    )
    .unwrap();
    writer.kill().unwrap();
    writer.wait().unwrap();
    let id: i64 = first.split_whitespace().nth(1).unwrap().parse().unwrap();
    let local = dir.path().join("rec").join(local_path(dir.path(), id));
    let size = std::fs::metadata(&local).unwrap().len();
    assert!(size > 17 << 20, "a clip that needs parts: {size} bytes");

    assert!(add_admin(&capped).status.success());
    let (mut child, rx) = spawn_run(&capped);
    let mut log = Vec::new();
    let base = dashboard_base(&rx, &mut log);
    let client = https_client(&std::fs::read(dir.path().join("certs/server.crt")).unwrap());
    let started = wait_until(Duration::from_secs(20), || {
        !files_under(&s3_root).is_empty()
    });
    assert!(started.is_some(), "the upload starts");
    tokio::time::sleep(Duration::from_secs(2)).await;
    let (t0, b0) = (Instant::now(), sent_bytes(&client, &base).await);
    tokio::time::sleep(Duration::from_secs(30)).await;
    let (t1, b1) = (Instant::now(), sent_bytes(&client, &base).await);
    let rate_kbps = (b1 - b0) * 8.0 / 1000.0 / (t1 - t0).as_secs_f64();
    assert!(
        (rate_kbps - cap_kbps).abs() <= cap_kbps * 0.2,
        "{rate_kbps:.0} kbit/s against a cap of {cap_kbps}"
    );
    let parts_done: String = rusqlite_path(dir.path())
        .query_row(
            "SELECT parts FROM offsite_clips WHERE clip_id = ?1",
            [id],
            |r| r.get(0),
        )
        .unwrap();
    let parts_before = parts_done.split_whitespace().count();
    assert!(parts_before >= 1, "parts recorded as they land");
    child.kill().unwrap();
    child.wait().unwrap();

    // Uncapped now: the upload resumes at its next part, and the copy is whole.
    let uncapped = offsite_config(dir.path(), &key, port, "    prefix: bigbox\n");
    let (child, rx) = spawn_run(&uncapped);
    let base = dashboard_base(&rx, &mut log);
    let done = wait_for_clip_state(&client, &base, id, "uploaded").await;
    let resent = sent_bytes(&client, &base).await as u64;
    assert!(stop(child));
    // The writer's cut second clip, salvaged by the start-up sweep, went up too.
    let others: i64 = rusqlite_path(dir.path())
        .query_row(
            "SELECT COALESCE(SUM(file_bytes), 0) FROM clips WHERE id != ?1",
            [id],
            |r| r.get(0),
        )
        .unwrap();
    assert!(
        resent <= size - (parts_before as u64) * (8 << 20) + others as u64 + (64 << 10),
        "resumed after {parts_before} parts, yet sent {resent} of {size} bytes: {done}"
    );
    let remote = s3_root.join(BUCKET).join(format!("bigbox/clips/{id}.sntx"));
    assert!(
        std::fs::read(&remote).unwrap() == std::fs::read(&local).unwrap(),
        "the copy is whole"
    );
}

async fn wait_for_clip_state(client: &reqwest::Client, base: &str, id: i64, state: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let c = get_json_as_admin(client, &format!("{base}/api/clips/{id}")).await;
        if c["offsite"] == state {
            return c;
        }
        assert!(Instant::now() < deadline, "clip {id} not {state}: {c}");
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}
