//! Authentication and request rules: auth on every route but /healthz, sessions and the
//! security headers, the /auth/verify rate limit, CORS and CSRF, lockout per user and
//! address that survives a restart, and Basic paying PBKDF2 once.

use crate::fixture::*;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use base64::Engine;
use tower::ServiceExt;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auth_on_every_route_sessions_and_headers() {
    let s = start().await;
    let c = s.client();
    let r = c.get(s.url("/healthz")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.text().await.unwrap(), r#"{"status":"ok"}"#);
    for path in [
        "/api/health",
        "/api/cameras",
        "/api/events",
        "/api/events/1",
        "/api/clips",
        "/api/clips/1",
        "/clips/1.mp4",
        "/clips/1.jpg",
        "/recordings/porch/x.mp4",
        "/metrics",
        "/api/me",
        "/api/users",
    ] {
        let r = c.get(s.url(path)).send().await.unwrap();
        assert_eq!(r.status(), 401, "{path}");
        assert_eq!(
            r.headers()["www-authenticate"],
            r#"Basic realm="sentrix", charset="UTF-8""#,
            "{path}"
        );
        let body: serde_json::Value = r.json().await.unwrap();
        assert_eq!(body["error"], "Unauthorized", "{path}");
    }
    // A signed-out browser opening the dashboard lands on the (public) login page.
    let r = c.get(s.url("/")).send().await.unwrap();
    assert_eq!(r.url().path(), "/login");
    assert!(r.text().await.unwrap().contains("id=\"login\""));
    for asset in ["/assets/app.js", "/assets/login.js", "/assets/app.css"] {
        assert_eq!(
            c.get(s.url(asset)).send().await.unwrap().status(),
            200,
            "{asset}"
        );
    }
    let r = c.post(s.url("/auth/logout")).send().await.unwrap();
    assert_eq!(
        r.status(),
        403,
        "a POST without Origin is refused before auth"
    );

    // Basic → 200, a session cookie, the security headers.
    let r = c
        .get(s.url("/api/cameras"))
        .basic_auth("alice", Some(ADMIN_PW))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let h = r.headers().clone();
    let cookie = h["set-cookie"].to_str().unwrap().to_string();
    for part in ["sentrix_session=", "HttpOnly", "Secure", "SameSite=Strict"] {
        assert!(cookie.contains(part), "{cookie}");
    }
    assert!(
        h["content-security-policy"]
            .to_str()
            .unwrap()
            .contains("frame-ancestors 'none'")
    );
    assert!(
        !h["content-security-policy"]
            .to_str()
            .unwrap()
            .contains("unsafe-inline")
    );
    assert_eq!(h["strict-transport-security"], "max-age=31536000");
    assert_eq!(h["x-content-type-options"], "nosniff");
    assert_eq!(h["referrer-policy"], "same-origin");
    assert_eq!(h["cache-control"], "no-store");
    let body = r.text().await.unwrap();
    assert!(
        !body.contains("admin:") || body.contains("***"),
        "camera password leaked: {body}"
    );

    // The session alone authenticates; logout ends it.
    let session = cookie.split(';').next().unwrap().to_string();
    let r = c
        .get(s.url("/api/events"))
        .header("cookie", &session)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let r = c
        .post(s.url("/auth/logout"))
        .header("cookie", &session)
        .header("origin", &s.base)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let r = c
        .get(s.url("/api/events"))
        .header("cookie", &session)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);

    // No secret in the audit log.
    let audit = std::fs::read_to_string(s.dir.path().join("audit.log")).unwrap();
    assert!(audit.contains("\"action\":\"login\""), "{audit}");
    assert!(!audit.contains(ADMIN_PW));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_is_rate_limited_and_cors_and_csrf_hold() {
    let s = start().await;
    let c = s.client();
    for i in 1..=6 {
        let r = c
            .post(s.url("/auth/verify"))
            .header("origin", &s.base)
            .basic_auth("alice", Some(ADMIN_PW))
            .send()
            .await
            .unwrap();
        if i <= 5 {
            assert_eq!(r.status(), 200, "attempt {i}");
            let v: serde_json::Value = r.json().await.unwrap();
            assert_eq!(v["authenticated"], true);
            assert_eq!(v["user_type"], "admin");
            assert_eq!(v["username"], "alice");
        } else {
            assert_eq!(r.status(), 429, "attempt {i}");
            assert!(r.headers().contains_key("retry-after"));
        }
    }
    // A foreign Origin: refused even with valid credentials, and no CORS headers.
    let r = c
        .post(s.url(&format!("/api/events/{}/ack", 1)))
        .header("origin", "http://evil.com")
        .basic_auth("alice", Some(ADMIN_PW))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    assert!(!r.headers().contains_key("access-control-allow-origin"));
    let r = c
        .get(s.url("/api/events"))
        .header("origin", "http://evil.com")
        .basic_auth("bob", Some(VIEWER_PW))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(!r.headers().contains_key("access-control-allow-origin"));
    let r = c
        .get(s.url("/api/events"))
        .header("origin", "https://trusted.example")
        .basic_auth("bob", Some(VIEWER_PW))
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.headers()["access-control-allow-origin"],
        "https://trusted.example"
    );
    // Same origin: the viewer may not acknowledge, the admin may (404: no such event).
    let ack = |user: &'static str, pw: &'static str| {
        c.post(s.url("/api/events/999/ack"))
            .header("origin", &s.base)
            .basic_auth(user, Some(pw))
            .send()
    };
    assert_eq!(ack("bob", VIEWER_PW).await.unwrap().status(), 403);
    assert_eq!(ack("alice", ADMIN_PW).await.unwrap().status(), 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lockout_per_user_and_address_survives_a_restart() {
    let s = start().await;
    let c = s.client();
    let get = |user: &'static str, pw: &'static str| {
        c.get(s.url("/api/events"))
            .basic_auth(user, Some(pw))
            .send()
    };
    for i in 1..=5 {
        let r = get("alice", "wrong password").await.unwrap();
        let want = if i < 5 { 401 } else { 429 };
        assert_eq!(r.status(), want, "attempt {i}");
    }
    let r = get("alice", ADMIN_PW).await.unwrap();
    assert_eq!(r.status(), 429, "the right password while locked");
    let retry: u64 = r.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((890..=900).contains(&retry), "{retry}");
    // The address is locked too: bob from the same address waits as well.
    assert_eq!(get("bob", VIEWER_PW).await.unwrap().status(), 429);

    // A restart (new authenticator on the same database) keeps the lock.
    let restarted = state(&s.store, &s.clock, s.dir.path());
    let app = app(restarted);
    let basic = base64::engine::general_purpose::STANDARD.encode(format!("alice:{ADMIN_PW}"));
    let req = || {
        Request::get("/api/events")
            .header("authorization", format!("Basic {basic}"))
            .body(Body::empty())
            .unwrap()
    };
    assert_eq!(app.clone().oneshot(req()).await.unwrap().status(), 429);

    // After the lockout duration (simulated), the right password works again.
    s.clock.advance(901_000);
    assert_eq!(app.oneshot(req()).await.unwrap().status(), 200);
    assert_eq!(get("alice", ADMIN_PW).await.unwrap().status(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn basic_on_every_request_pays_pbkdf2_once() {
    let s = start().await;
    let st = state(&s.store, &s.clock, s.dir.path());
    let app = app(st.clone());
    let basic = base64::engine::general_purpose::STANDARD.encode(format!("bob:{VIEWER_PW}"));
    for _ in 0..20 {
        let req = Request::get("/api/events")
            .header("authorization", format!("Basic {basic}"))
            .body(Body::empty())
            .unwrap();
        let r = app.clone().oneshot(req).await.unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        // Only the first answer opens a session.
        let _ = r.headers().get("set-cookie");
    }
    assert_eq!(st.auth.password_checks(), 1, "PBKDF2 ran more than once");
    // A wrong password is never served from the cache.
    let bad = base64::engine::general_purpose::STANDARD.encode("bob:not the password");
    let req = Request::get("/api/events")
        .header("authorization", format!("Basic {bad}"))
        .body(Body::empty())
        .unwrap();
    assert_eq!(
        app.oneshot(req).await.unwrap().status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(st.auth.password_checks(), 2);
}
