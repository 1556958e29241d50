//! Serving sealed files: Range requests on a multi-chunk encrypted clip, and path traversal
//! on /recordings (in-process, with raw request paths no HTTP client would send).

use crate::fixture::*;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use base64::Engine;
use tower::ServiceExt;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ranges_of_an_encrypted_clip() {
    let s = start().await;
    let c = s.client();
    let total = s.clip_bytes.len();
    assert!(total > 10 * 4096, "the clip spans many chunks");
    let url = s.url(&format!("/clips/{}.mp4", s.clip_id));
    let fetch = |range: Option<&'static str>| {
        let mut r = c.get(&url).basic_auth("bob", Some(VIEWER_PW));
        if let Some(v) = range {
            r = r.header("range", v);
        }
        r.send()
    };
    let r = fetch(None).await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["accept-ranges"], "bytes");
    assert_eq!(r.headers()["content-type"], "video/mp4");
    assert_eq!(r.bytes().await.unwrap().as_ref(), &s.clip_bytes[..]);
    let cases: [(&str, usize, usize); 4] = [
        ("bytes=0-", 0, total),
        ("bytes=100-199", 100, 200),
        ("bytes=-500", total - 500, total),
        ("bytes=4000-8300", 4000, 8301), // crosses two chunk boundaries
    ];
    for (range, a, b) in cases {
        let r = fetch(Some(range)).await.unwrap();
        assert_eq!(r.status(), 206, "{range}");
        assert_eq!(
            r.headers()["content-range"],
            format!("bytes {a}-{}/{total}", b - 1).as_str(),
            "{range}"
        );
        assert_eq!(r.headers()["content-length"], (b - a).to_string().as_str());
        assert_eq!(
            r.bytes().await.unwrap().as_ref(),
            &s.clip_bytes[a..b],
            "{range}"
        );
    }
    let past: &'static str = Box::leak(format!("bytes={total}-").into_boxed_str());
    let r = fetch(Some(past)).await.unwrap();
    assert_eq!(r.status(), 416);
    assert_eq!(
        r.headers()["content-range"],
        format!("bytes */{total}").as_str()
    );
    let r = fetch(Some("bytes=banana")).await.unwrap();
    assert_eq!(r.status(), 200, "a malformed Range is ignored");
    assert_eq!(r.bytes().await.unwrap().len(), total);
    // Nothing on disk is plaintext, and missing ids are 404 JSON.
    crate::common::assert_no_plaintext(s.store.recordings_dir());
    let r = c
        .get(s.url("/clips/99999.mp4"))
        .basic_auth("bob", Some(VIEWER_PW))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    assert_eq!(
        r.json::<serde_json::Value>().await.unwrap()["error"],
        "NotFound"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recordings_route_refuses_traversal() {
    let s = start().await;
    let clip = s.store.clip(s.clip_id).unwrap();
    // A symlink inside the recordings dir that points out of it.
    let outside = s.dir.path().join("secret.mp4.sntx");
    std::fs::write(&outside, b"outside").unwrap();
    std::os::unix::fs::symlink(
        &outside,
        s.store.recordings_dir().join("porch/link.mp4.sntx"),
    )
    .unwrap();
    let app = app(state(&s.store, &s.clock, s.dir.path()));
    let basic = base64::engine::general_purpose::STANDARD.encode(format!("bob:{VIEWER_PW}"));
    let get = |uri: String| {
        let app = app.clone();
        let basic = basic.clone();
        async move {
            let req = Request::get(uri.as_str())
                .header("authorization", format!("Basic {basic}"))
                .body(Body::empty())
                .unwrap();
            let r = app.oneshot(req).await.unwrap();
            let status = r.status();
            let body = axum::body::to_bytes(r.into_body(), 1 << 24).await.unwrap();
            (status, body)
        }
    };
    for uri in [
        "/recordings/../../../etc/passwd",
        "/recordings/..%2F..%2F..%2Fetc%2Fpasswd",
        "/recordings/%2e%2e/%2e%2e/etc/passwd.mp4",
        "/recordings/....//....//etc/passwd",
        "/recordings/%252e%252e%252fetc%252fpasswd",
        "/recordings/..%5C..%5Cetc%5Cpasswd.mp4",
        "/recordings//etc/passwd.mp4",
        "/recordings/porch%00.mp4",
        "/recordings/porch/link.mp4",
        "/recordings/porch/x.txt",
    ] {
        let (status, body) = get(uri.to_string()).await;
        assert!(
            status == StatusCode::FORBIDDEN
                || status == StatusCode::NOT_FOUND
                || status == StatusCode::BAD_REQUEST,
            "{uri}: {status}"
        );
        let text = String::from_utf8_lossy(&body);
        assert!(
            !text.contains("root:") && !text.contains("outside"),
            "{uri}: {text}"
        );
        assert!(
            !text.contains(&s.dir.path().display().to_string()),
            "{uri} leaks a path: {text}"
        );
    }
    for uri in [
        "/recordings/../../../etc/passwd",
        "/recordings/..%2F..%2F..%2Fetc%2Fpasswd",
        "/recordings/..%5C..%5Cetc%5Cpasswd.mp4",
        "/recordings/porch%00.mp4",
        "/recordings/porch/link.mp4",
    ] {
        assert_eq!(get(uri.to_string()).await.0, StatusCode::FORBIDDEN, "{uri}");
    }
    assert_eq!(
        get("/recordings/porch/none.mp4".into()).await.0,
        StatusCode::NOT_FOUND
    );
    // The real clip, by its path without the .sntx suffix: decrypted bytes.
    let rel = clip.path.trim_end_matches(".sntx").to_string();
    let (status, body) = get(format!("/recordings/{rel}")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body.as_ref(), &s.clip_bytes[..]);
    let audit = std::fs::read_to_string(s.dir.path().join("audit.log")).unwrap();
    assert!(audit.contains("file_access_refused"), "{audit}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn damaged_and_vanished_files_get_410_before_any_byte_and_damage_is_salvaged() {
    let s = start().await;
    let c = s.client();
    let get = |path: String| {
        c.get(s.url(&path))
            .basic_auth("bob", Some(VIEWER_PW))
            .send()
    };
    let list = || async {
        let r = get("/api/clips".into()).await.unwrap();
        r.json::<serde_json::Value>().await.unwrap()
    };
    let rec = s.store.clip(s.clip_id).unwrap();
    let file = s.dir.path().join("rec").join(&rec.path);
    // Cut the file's end: the last chunk no longer authenticates.
    crate::common::cut_tail(&file, 100);
    let served = format!("/recordings/{}", rec.path.trim_end_matches(".sntx"));
    let r = get(served).await.unwrap();
    assert_eq!(r.status(), 410);
    let v: serde_json::Value = r.json().await.unwrap();
    assert!(v["message"].as_str().unwrap().contains("truncated"), "{v}");
    let r = get(format!("/clips/{}.mp4", s.clip_id)).await.unwrap();
    assert_eq!(r.status(), 410);
    let v: serde_json::Value = r.json().await.unwrap();
    assert!(v["message"].as_str().unwrap().contains("cut short"), "{v}");
    // Found in playback, salvaged to its last good fragment as the start-up check would:
    // listed as salvaged with what was lost, its page names the damage, and what is left
    // plays.
    let clips = list().await;
    let note = clips["clips"][0]["salvaged"].as_str().unwrap_or_default();
    assert!(note.starts_with("salvaged: the last "), "{clips}");
    let page = get(format!("/api/clips/{}", s.clip_id)).await.unwrap();
    let page: serde_json::Value = page.json().await.unwrap();
    assert_eq!(page["damaged_files"][0]["found_by"], "playback", "{page}");
    // Health and /metrics count it.
    let admin = |path: &str| {
        c.get(s.url(path))
            .basic_auth("alice", Some(ADMIN_PW))
            .send()
    };
    let health: serde_json::Value = admin("/api/health").await.unwrap().json().await.unwrap();
    assert_eq!(health["storage"]["damaged_files"], 1, "{health}");
    let metrics = admin("/metrics").await.unwrap().text().await.unwrap();
    assert!(metrics.contains("\nsentrix_damaged_files 1\n"), "{metrics}");
    let r = get(format!("/clips/{}.mp4", s.clip_id)).await.unwrap();
    assert_eq!(r.status(), 200);
    let left = r.bytes().await.unwrap();
    assert!(!left.is_empty() && left.len() < s.clip_bytes.len());

    // A second clip whose file is deleted behind the store's back leaves the listing.
    let mp4 = s.clip_bytes.clone();
    let mut w = s
        .store
        .begin_clip(sentrix::store::ClipMeta {
            camera_id: "porch".into(),
            start_ms: rec.start_ms + 60_000,
            ..Default::default()
        })
        .unwrap();
    w.write(&mp4).unwrap();
    let gone = w.finish(None).unwrap();
    std::fs::remove_file(s.dir.path().join("rec").join(&gone.path)).unwrap();
    let r = get(format!("/clips/{}.mp4", gone.id)).await.unwrap();
    assert_eq!(r.status(), 410);
    let clips = list().await;
    let ids: Vec<i64> = clips["clips"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_i64().unwrap())
        .collect();
    assert_eq!(
        ids,
        vec![s.clip_id],
        "the clip without a file is still listed"
    );
}
