//! Recorded time over HTTPS: the timeline (spans, gaps, events), one MP4 for a range that
//! crosses two segments and a gap (plays cleanly, `Range` into its middle, a named
//! download), the keep flag, and bad input: each a JSON 4xx, never a 5xx. Every playback
//! and export is audited.

use crate::fixture::*;
use sentrix::store::ClipMeta;

/// Three 3-second segments of camera "porch": two of one run from `t0`, then a gap, then
/// one of another run at `t0 + 10 s`. Returns t0.
async fn add_segments(s: &Server) -> i64 {
    let mp4 = tokio::task::spawn_blocking(|| crate::common::synthetic_mp4(3))
        .await
        .unwrap();
    let t0 = sentrix::base::clock::wall_ms() - 120_000;
    let store = s.store.clone();
    tokio::task::spawn_blocking(move || {
        for (start, run) in [(t0, t0), (t0 + 3000, t0), (t0 + 10_000, t0 + 10_000)] {
            let mut w = store
                .begin_clip(ClipMeta {
                    camera_id: "porch".into(),
                    start_ms: start,
                    run_start_ms: Some(run),
                    ..Default::default()
                })
                .unwrap();
            w.write(&mp4).unwrap();
            w.finish(None).unwrap();
        }
    })
    .await
    .unwrap();
    t0
}

/// Writes `bytes` to a file, checks a full decode is clean, and counts its frames.
fn decodes_cleanly(bytes: &[u8]) -> u64 {
    let dir = crate::common::temp_dir();
    let path = dir.path().join("x.mp4");
    std::fs::write(&path, bytes).unwrap();
    crate::common::assert_decodes_cleanly(&path);
    crate::common::frames_in(&path)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn timeline_and_export_across_a_gap() {
    let s = start().await;
    let t0 = add_segments(&s).await;
    let event = s
        .store
        .insert_event("porch", "person", t0 + 4000, 0.9, &[0.1, 0.1, 0.5, 0.9])
        .unwrap();
    s.store
        .update_event(event, Some(t0 + 5000), 0.93, &[0.1, 0.1, 0.5, 0.9])
        .unwrap();
    let c = s.client();
    let get = |path: String| {
        c.get(s.url(&path))
            .basic_auth("bob", Some(VIEWER_PW))
            .send()
    };
    let r = get(format!(
        "/api/timeline?camera=porch&from={}&to={}",
        t0 - 5000,
        t0 + 20_000
    ))
    .await
    .unwrap();
    assert_eq!(r.status(), 200);
    let t: serde_json::Value = r.json().await.unwrap();
    let spans = t["spans"].as_array().unwrap();
    assert_eq!(spans.len(), 2, "{t}");
    assert_eq!(spans[0]["start_ms"], t0);
    assert_eq!(spans[0]["pieces"], 2);
    assert_eq!(spans[0]["kind"], "segment");
    assert_eq!(spans[1]["start_ms"], t0 + 10_000);
    let gaps = t["gaps"].as_array().unwrap();
    assert_eq!(
        gaps[1][0], spans[0]["end_ms"],
        "the gap between the runs: {t}"
    );
    assert_eq!(gaps[1][1], t0 + 10_000);
    assert_eq!(t["events"][0]["id"], event);
    assert_eq!(t["events"][0]["label"], "person");

    // One MP4 from the middle of the first segment to the middle of the third.
    let path = format!(
        "/api/recordings/porch.mp4?from={}&to={}",
        t0 + 1000,
        t0 + 11_500
    );
    let r = get(path.clone()).await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "video/mp4");
    assert_eq!(r.headers()["accept-ranges"], "bytes");
    let gaps = r.headers()["x-sentrix-gaps"].to_str().unwrap().to_string();
    assert!(gaps.contains(&format!("-{}", t0 + 10_000)), "{gaps}");
    assert!(
        r.headers()["x-sentrix-codec"]
            .to_str()
            .unwrap()
            .starts_with("avc1.")
    );
    let whole = r.bytes().await.unwrap();
    let frames = decodes_cleanly(&whole);
    // 5 s + 1.5 s recorded in range, starting at a keyframe up to 1 s early.
    assert!((6 * 25..=8 * 25).contains(&frames), "{frames} frames");
    let mid = whole.len() / 2;
    let r = c
        .get(s.url(&path))
        .basic_auth("bob", Some(VIEWER_PW))
        .header("range", format!("bytes={mid}-{}", mid + 9999))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 206);
    assert_eq!(r.bytes().await.unwrap(), whole[mid..mid + 10_000]);
    let r = get(format!("{path}&download=1")).await.unwrap();
    let disposition = r.headers()["content-disposition"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(
        disposition.starts_with("attachment; filename=\"sentrix-porch-"),
        "{disposition}"
    );
    let audit = std::fs::read_to_string(s.dir.path().join("audit.log")).unwrap();
    assert!(audit.contains("\"action\":\"recording_play\""), "{audit}");
    assert!(audit.contains("\"action\":\"recording_export\""), "{audit}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_ranges_are_json_4xx() {
    let s = start().await;
    let c = s.client();
    let now = sentrix::base::clock::wall_ms();
    let day = 86_400_000;
    let cases: Vec<(String, u16)> = vec![
        (
            format!("/api/recordings/porch.mp4?from={}&to={}", now, now - 1000),
            400,
        ),
        (
            format!(
                "/api/recordings/porch.mp4?from={}&to={}",
                now + day,
                now + day + 1
            ),
            400,
        ),
        (
            format!("/api/recordings/garage.mp4?from={}&to={}", now - 1000, now),
            404,
        ),
        (
            format!(
                "/api/recordings/porch.mp4?from={}&to={}",
                now - 2 * day,
                now
            ),
            400,
        ),
        (
            "/api/recordings/porch.mp4?from=yesterday&to=now".into(),
            400,
        ),
        ("/api/recordings/porch.mp4?from=1e3&to=2e3".into(), 400),
        ("/api/recordings/porch.mp4".into(), 400),
        (
            format!(
                "/api/recordings/porch.mp4?from={}&to={}",
                now - 9000,
                now - 8000
            ),
            404,
        ),
        ("/api/recordings/porch.avi?from=1&to=2".into(), 404),
        (format!("/api/timeline?from={}&to={}", now - 1000, now), 400),
        (
            format!("/api/timeline?camera=porch&from={}&to={}", now, now - 1),
            400,
        ),
        (
            format!(
                "/api/timeline?camera=porch&from={}&to={}",
                now - 30 * day,
                now
            ),
            400,
        ),
        ("/api/timeline?camera=porch&from=%ff&to=1".into(), 400),
        ("/api/events?since=abc".into(), 400),
    ];
    for (path, status) in cases {
        let r = c
            .get(s.url(&path))
            .basic_auth("bob", Some(VIEWER_PW))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), status, "{path}");
        let body: serde_json::Value = r
            .json()
            .await
            .unwrap_or_else(|_| panic!("{path}: not JSON"));
        assert!(
            body["error"].is_string() && body["message"].is_string(),
            "{path}: {body}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keep_is_for_admins_and_checked() {
    let s = start().await;
    let now = sentrix::base::clock::wall_ms();
    let id = s
        .store
        .insert_event("porch", "car", now - 5000, 0.8, &[0.0; 4])
        .unwrap();
    let c = s.client();
    let post = |user: &'static str, pw: &'static str, body: &'static str| {
        c.post(s.url(&format!("/api/events/{id}/keep")))
            .basic_auth(user, Some(pw))
            .header("origin", &s.base)
            .header("content-type", "application/json")
            .body(body)
            .send()
    };
    assert_eq!(
        post("bob", VIEWER_PW, r#"{"keep":true}"#)
            .await
            .unwrap()
            .status(),
        403
    );
    assert_eq!(
        post("alice", ADMIN_PW, r#"{"keep":"yes"}"#)
            .await
            .unwrap()
            .status(),
        400
    );
    let r = post("alice", ADMIN_PW, r#"{"keep":true}"#).await.unwrap();
    assert_eq!(r.status(), 200);
    assert!(s.store.event(id).unwrap().keep);
    let r = c
        .post(s.url("/api/events/999999/keep"))
        .basic_auth("alice", Some(ADMIN_PW))
        .header("origin", &s.base)
        .body(r#"{"keep":true}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
}
