//! Review over a whole `sentrix run` with the shipped surveillance.yml (its demo camera,
//! motion alone): within a minute an event has ended with a clip that plays; its review
//! item comes over the live feed, is hidden from the default list as motion-only, and
//! "mark all as reviewed" clears it and acknowledges its events.

use crate::common;
use crate::common::run::*;
use serde_json::Value;
use std::time::{Duration, Instant};

/// The repository's surveillance.yml, on a free port, in `dir`.
fn shipped_config(dir: &std::path::Path) -> std::path::PathBuf {
    let shipped =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/surveillance.yml")).unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    assert!(shipped.contains("api_port: 8443"));
    let path = dir.join("surveillance.yml");
    std::fs::write(
        &path,
        shipped.replace("api_port: 8443", &format!("api_port: {port}")),
    )
    .unwrap();
    path
}

/// The first ended event with a finished clip, polling until `deadline`.
async fn ended_event_with_clip(
    client: &reqwest::Client,
    base: &str,
    deadline: Instant,
) -> Option<Value> {
    while Instant::now() < deadline {
        let v = get_json_as_admin(client, &format!("{base}/api/events")).await;
        let found = v["events"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|e| !e["end_ms"].is_null() && e["clip_id"].as_i64().is_some());
        if let Some(e) = found {
            return Some(e.clone());
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    None
}

/// Reads the live feed until an `event: review` message; its data.
async fn first_review_message(mut feed: reqwest::Response) -> Option<Value> {
    let mut text = String::new();
    while let Ok(Some(chunk)) = feed.chunk().await {
        text.push_str(&String::from_utf8_lossy(&chunk));
        if let Some(at) = text.find("event: review\n") {
            let rest = &text[at..];
            if let Some(line) = rest.lines().find(|l| l.starts_with("data: ")) {
                return serde_json::from_str(&line[6..]).ok();
            }
        }
    }
    None
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_shows_an_ended_event_with_a_clip_and_a_review_item_within_a_minute() {
    let dir = common::temp_dir();
    let config = shipped_config(dir.path());
    assert!(add_admin(&config).status.success());
    let started = Instant::now();
    let (child, rx) = spawn_run(&config);
    let mut log = Vec::new();
    let base = dashboard_base(&rx, &mut log);
    let client = https_client(&std::fs::read(dir.path().join("certs/server.crt")).unwrap());
    let feed = client
        .get(format!("{base}/api/events/stream"))
        .basic_auth("alice", Some(ADMIN_PASSWORD))
        .send()
        .await
        .unwrap();
    let review_message = tokio::spawn(first_review_message(feed));
    let deadline = started + Duration::from_secs(60);
    let Some(event) = ended_event_with_clip(&client, &base, deadline).await else {
        log.extend(rx.try_iter());
        panic!(
            "no ended event with a clip within 60 s:\n{}",
            log.join("\n")
        );
    };
    eprintln!(
        "demo: event {} ended with clip {} after {:.1} s",
        event["id"],
        event["clip_id"],
        started.elapsed().as_secs_f64()
    );
    let clip_id = event["clip_id"].as_i64().unwrap();
    let mp4 = client
        .get(format!("{base}/clips/{clip_id}.mp4"))
        .basic_auth("alice", Some(ADMIN_PASSWORD))
        .send()
        .await
        .unwrap();
    assert_eq!(mp4.status(), 200);
    let path = dir.path().join("demo.mp4");
    std::fs::write(&path, mp4.bytes().await.unwrap()).unwrap();
    common::assert_decodes_cleanly(&path);
    assert!(common::frames_in(&path) > 0);

    let message = tokio::time::timeout(Duration::from_secs(10), review_message)
        .await
        .expect("a review message on the live feed")
        .unwrap()
        .expect("the feed carried a review message");
    assert_eq!(message["item"]["camera_id"], "demo");
    assert_eq!(message["item"]["severity"], "motion");

    // Motion-only items are left out of the default list, shown when asked for.
    let default = get_json_as_admin(&client, &format!("{base}/api/review")).await;
    assert_eq!(default["items"].as_array().unwrap().len(), 0, "{default}");
    let any = get_json_as_admin(&client, &format!("{base}/api/review?severity=any")).await;
    assert!(any["unreviewed"]["motion"].as_i64().unwrap() >= 1, "{any}");
    let item_id = event["review_id"]
        .as_i64()
        .expect("the event has a review item");
    let detail = get_json_as_admin(&client, &format!("{base}/api/review/{item_id}")).await;
    let clips = detail["recording"]["clip_ids"].as_array().unwrap();
    assert!(clips.contains(&clip_id.into()), "{detail}");
    assert!(
        detail["events"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["id"] == event["id"]),
        "{detail}"
    );
    assert!(detail["recording"]["from_ms"].as_i64() < detail["item"]["start_ms"].as_i64());
    let bad = client
        .get(format!("{base}/api/review?severity=loud"))
        .basic_auth("alice", Some(ADMIN_PASSWORD))
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 400);

    // Mark all as reviewed: the badge count goes to 0 and the events are acknowledged.
    let before_ms = sentrix::base::clock::wall_ms() + 1;
    let marked: Value = client
        .post(format!("{base}/api/review/reviewed"))
        .header("origin", &base)
        .basic_auth("alice", Some(ADMIN_PASSWORD))
        .json(&serde_json::json!({"before_ms": before_ms, "camera": "demo"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(marked["marked"].as_i64().unwrap() >= 1, "{marked}");
    let q = format!("{base}/api/review?severity=any&until={before_ms}");
    let after = get_json_as_admin(&client, &q).await;
    assert_eq!(after["unreviewed"]["motion"], 0, "{after}");
    assert!(
        after["items"]
            .as_array()
            .unwrap()
            .iter()
            .all(|i| i["reviewed"] == true)
    );
    let acked = get_json_as_admin(&client, &format!("{base}/api/events/{}", event["id"])).await;
    assert_eq!(acked["acknowledged"], true, "{acked}");
    assert!(stop(child));
}
