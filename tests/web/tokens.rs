//! API tokens over real TLS: made by an admin and shown once, scopes enforced per route,
//! never a dashboard session, refused in a URL, counted and audited per use, expiring,
//! revoked at the next request (and an open event stream ends), stored only as a hash;
//! unknown tokens lock the address out like password guesses. And the analytics route
//! answers a token with `events:read`.

use crate::fixture::*;
use reqwest::Method as M;
use serde_json::Value;

/// Makes a token as alice over the API; returns it (registered as a secret from then on).
async fn make_token(s: &Server, c: &reqwest::Client, body: &str) -> String {
    let r = c
        .post(s.url("/api/tokens"))
        .header("origin", &s.base)
        .basic_auth("alice", Some(ADMIN_PW))
        .header("content-type", "application/json")
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201, "{body}");
    let v: Value = r.json().await.unwrap();
    let token = v["token"].as_str().unwrap().to_string();
    assert!(token.starts_with("stx_") && token.len() == 68, "{token}");
    assert!(v["info"].get("token_hash").is_none());
    register_secret(&token);
    token
}

async fn with_token(
    s: &Server,
    c: &reqwest::Client,
    method: M,
    path: &str,
    token: &str,
) -> reqwest::Response {
    c.request(method, s.url(path))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_are_scoped_counted_expiring_and_revocable() {
    let s = start().await;
    let c = s.client();
    let now = s.clock.wall_ms();
    let event = s
        .store
        .insert_event("porch", "person", now - 5000, 0.9, &[0.1, 0.1, 0.5, 0.9])
        .unwrap();
    // Viewers make no tokens; a viewer's token never holds admin.
    let r = c
        .post(s.url("/api/tokens"))
        .header("origin", &s.base)
        .basic_auth("bob", Some(VIEWER_PW))
        .body(r#"{"name":"x","role":"viewer"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    for (body, says) in [
        (
            r#"{"name":"x","role":"viewer","scopes":["admin"]}"#,
            "admin scope",
        ),
        (
            r#"{"name":"x","role":"viewer","scopes":["root"]}"#,
            "unknown variant",
        ),
        (r#"{"name":"x y","role":"viewer"}"#, "token name"),
        (
            r#"{"name":"x","role":"viewer","expires_days":-1}"#,
            "out of range",
        ),
    ] {
        let r = c
            .post(s.url("/api/tokens"))
            .header("origin", &s.base)
            .basic_auth("alice", Some(ADMIN_PW))
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 400, "{body}");
        let v: Value = r.json().await.unwrap();
        assert!(v["message"].as_str().unwrap().contains(says), "{body}: {v}");
    }
    let reader = make_token(
        &s,
        &c,
        r#"{"name":"ha","role":"viewer","scopes":["events:read"]}"#,
    )
    .await;
    let admin = make_token(&s, &c, r#"{"name":"ops","role":"admin"}"#).await;

    // Scopes, per route.
    for (path, status) in [
        ("/api/events", 200),
        (&format!("/api/events/{event}") as &str, 200),
        ("/api/analytics", 200),
        ("/api/cameras", 200),
        (&format!("/clips/{}.mp4", s.clip_id), 403),
        ("/api/clips", 403),
        ("/api/events/stream", 403),
        ("/api/users", 403),
        ("/api/tokens", 403),
    ] {
        let r = with_token(&s, &c, M::GET, path, &reader).await;
        assert_eq!(r.status(), status, "viewer token on {path}");
        assert!(
            r.headers().get("set-cookie").is_none(),
            "{path}: a token opens no session"
        );
    }
    let r = with_token(
        &s,
        &c,
        M::POST,
        &format!("/api/events/{event}/ack"),
        &reader,
    )
    .await;
    assert_eq!(r.status(), 403);
    // An admin token may change things, with no Origin (no CSRF check for a bearer).
    let r = with_token(&s, &c, M::POST, &format!("/api/events/{event}/ack"), &admin).await;
    assert_eq!(r.status(), 200);
    let r = with_token(&s, &c, M::GET, &format!("/clips/{}.mp4", s.clip_id), &admin).await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.bytes().await.unwrap().to_vec(), s.clip_bytes);
    // Never the dashboard: its page and the login route refuse tokens.
    for (m, path) in [(M::GET, "/"), (M::POST, "/auth/verify")] {
        let r = with_token(&s, &c, m, path, &admin).await;
        assert_eq!(r.status(), 403, "{path}");
        assert!(r.headers().get("set-cookie").is_none());
    }
    // A token in a URL is refused before anything, by name or by its prefix.
    for q in [
        format!("access_token={reader}"),
        format!("camera=porch&x={reader}"),
        "token=whatever".to_string(),
    ] {
        let r = c
            .get(s.url(&format!("/api/events?{q}")))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 400, "{q}");
        let v: Value = r.json().await.unwrap();
        assert!(
            v["message"]
                .as_str()
                .unwrap()
                .contains("Authorization header")
        );
    }

    // 24 uses at once (under the 32 connections an address may hold) all count: in
    // memory, written at most once a second per token.
    let burst: Vec<_> = (0..24)
        .map(|_| with_token(&s, &c, M::GET, "/api/cameras", &reader))
        .collect();
    for r in futures_util::future::join_all(burst).await {
        assert_eq!(r.status(), 200);
    }
    // Uses are counted with the address; the list never shows a token or its hash.
    let r = c
        .get(s.url("/api/tokens"))
        .basic_auth("alice", Some(ADMIN_PW))
        .send()
        .await
        .unwrap();
    let v: Value = r.json().await.unwrap();
    let ha = v["tokens"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "ha")
        .unwrap();
    assert_eq!(ha["uses"], 34, "{ha}"); // 9 reads, the refused ack and the burst
    assert_eq!(ha["last_address"], "127.0.0.1");
    assert_eq!(ha["scopes"], "events:read");
    assert!(ha.get("token_hash").is_none());
    // The database holds the hash, never the token.
    let db = std::fs::read(s.dir.path().join("db/sentrix.db")).unwrap();
    let wal = std::fs::read(s.dir.path().join("db/sentrix.db-wal")).unwrap_or_default();
    for bytes in [&db, &wal] {
        let text = String::from_utf8_lossy(bytes);
        assert!(!text.contains(&reader) && !text.contains(&reader[4..]));
    }
    let hash = sentrix::auth::tokens::token_hash(&reader);
    assert!(
        String::from_utf8_lossy(&db).contains(&hash)
            || String::from_utf8_lossy(&wal).contains(&hash)
    );
    // Every use is audited under the token's name.
    let audit = std::fs::read_to_string(s.dir.path().join("audit.log")).unwrap();
    assert!(
        audit.contains("token:ha") && audit.contains("token_used"),
        "{audit}"
    );
    assert!(audit.contains("token_scope_refused"));

    expiry_and_revocation(&s, &c, &admin).await;
    unknown_tokens_lock_the_address(&s, &c).await;
    assert_no_secret_leaked();
}

async fn expiry_and_revocation(s: &Server, c: &reqwest::Client, admin: &str) {
    let short = make_token(s, c, r#"{"name":"short","role":"viewer","expires_days":1}"#).await;
    assert_eq!(
        with_token(s, c, M::GET, "/api/events", &short)
            .await
            .status(),
        200
    );
    // An open event stream authorized by a token ends when the token is revoked.
    let live = make_token(s, c, r#"{"name":"live","role":"viewer"}"#).await;
    let mut stream = with_token(s, c, M::GET, "/api/events/stream", &live).await;
    assert_eq!(stream.status(), 200);
    let r = with_token(s, c, M::DELETE, "/api/tokens/live", admin).await;
    assert_eq!(r.status(), 200);
    let ended = tokio::time::timeout(std::time::Duration::from_secs(5), async {
        while let Ok(Some(_)) = stream.chunk().await {}
    })
    .await;
    assert!(ended.is_ok(), "the stream outlived its token");
    assert_eq!(
        with_token(s, c, M::GET, "/api/events", &live)
            .await
            .status(),
        401
    );
    assert_eq!(
        with_token(s, c, M::DELETE, "/api/tokens/live", admin)
            .await
            .status(),
        404
    );
    // Two days later the one-day token has expired, and says so.
    s.clock.advance(2 * 86_400_000);
    let r = with_token(s, c, M::GET, "/api/events", &short).await;
    assert_eq!(r.status(), 401);
    let v: Value = r.json().await.unwrap();
    assert!(v["message"].as_str().unwrap().contains("expired"), "{v}");
}

async fn unknown_tokens_lock_the_address(s: &Server, c: &reqwest::Client) {
    let fake = format!("stx_{}", "ab".repeat(32));
    for _ in 0..5 {
        let r = with_token(s, c, M::GET, "/api/events", &fake).await;
        assert!(matches!(r.status().as_u16(), 401 | 429));
    }
    let r = with_token(s, c, M::GET, "/api/events", &fake).await;
    assert_eq!(r.status(), 429, "five unknown tokens lock the address");
    let long = "x".repeat(60_000);
    let r = with_token(s, c, M::GET, "/api/events", &long).await;
    assert!(matches!(r.status().as_u16(), 401 | 429 | 431));
}
