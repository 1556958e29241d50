//! A hostile LAN against the dashboard: simultaneous guesses, a stranger locking the admin
//! out, guesses on every route that checks credentials, huge user names, slow headers,
//! idle connections, HTTP/2 with prior knowledge, and streams that must end with the
//! session.

use crate::fixture::*;
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::Request;
use base64::Engine;
use sentrix::web::conn::Limits;
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tower::ServiceExt;

fn basic(user: &str, pw: &str) -> String {
    let raw = format!("{user}:{pw}");
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(raw)
    )
}

/// A request from `addr` (as the real server would tag it).
fn from(addr: [u8; 4], req: axum::http::request::Builder) -> Request<Body> {
    let mut req = req.body(Body::empty()).unwrap();
    let peer = SocketAddr::from((addr, 40000));
    req.extensions_mut().insert(ConnectInfo(peer));
    req
}

fn get(path: &str) -> axum::http::request::Builder {
    Request::get(path)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn simultaneous_guesses_cannot_race_past_the_lockout() {
    let s = start().await;
    let st = s.state.clone();
    let app = app(st.clone());
    // 64 guesses for alice from 16 addresses at once; the right one is sent a moment after
    // the others, while they are still being checked.
    let mut tasks = Vec::new();
    for i in 0..63u8 {
        let app = app.clone();
        let req = from(
            [10, 9, 0, i % 16],
            get("/api/events").header("authorization", basic("alice", &format!("guess {i}"))),
        );
        tasks.push(tokio::spawn(async move {
            app.oneshot(req).await.unwrap().status()
        }));
    }
    tokio::time::sleep(Duration::from_millis(20)).await;
    let right = from(
        [10, 9, 0, 99],
        get("/api/events").header("authorization", basic("alice", ADMIN_PW)),
    );
    tasks.push(tokio::spawn({
        let app = app.clone();
        async move { app.oneshot(right).await.unwrap().status() }
    }));
    let mut statuses = Vec::new();
    for t in tasks {
        statuses.push(t.await.unwrap().as_u16());
    }
    assert!(!statuses.contains(&200), "{statuses:?}");
    assert_eq!(statuses[63], 429, "the right password after the lock");
    let hashes = st.auth.password_checks();
    assert!(
        hashes <= policy().max_attempts as u64,
        "{hashes} PBKDF2 checks ran for 64 simultaneous guesses (max_login_attempts 5)"
    );
    assert!(
        statuses.iter().filter(|&&c| c == 401).count() <= 5,
        "{statuses:?}"
    );
}

/// Runs `req` through `app`; (status, Set-Cookie values).
async fn send(app: &axum::Router, req: Request<Body>) -> (u16, Vec<String>) {
    let r = app.clone().oneshot(req).await.unwrap();
    let cookies = r
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_string())
        .collect();
    (r.status().as_u16(), cookies)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stranger_cannot_lock_the_admin_out_of_a_known_device() {
    let s = start().await;
    let app = app(s.state.clone());
    let home: [u8; 4] = [192, 168, 1, 20];
    let stranger: [u8; 4] = [192, 168, 1, 66];
    // Alice logs in from her browser: it gets the known-device cookie (__Host-, Secure).
    let (status, cookies) = send(
        &app,
        from(
            home,
            get("/auth/verify")
                .method("POST")
                .header("authorization", basic("alice", ADMIN_PW))
                .header("origin", "https://localhost")
                .header("host", "localhost"),
        ),
    )
    .await;
    assert_eq!(status, 200);
    let device = cookies
        .iter()
        .find(|c| c.starts_with("__Host-sentrix_device="))
        .unwrap_or_else(|| panic!("no device cookie: {cookies:?}"));
    for part in ["HttpOnly", "Secure", "SameSite=Strict", "Path=/"] {
        assert!(device.contains(part), "{device}");
    }
    let device = device.split(';').next().unwrap().to_string();
    assert!(
        cookies
            .iter()
            .any(|c| c.starts_with("__Host-sentrix_session=")),
        "{cookies:?}"
    );

    // A script sending Basic with each request makes no device (only the login page does).
    let (status, cookies) = send(
        &app,
        from(
            [192, 168, 1, 30],
            get("/api/events").header("authorization", basic("bob", VIEWER_PW)),
        ),
    )
    .await;
    assert_eq!(status, 200);
    assert!(
        !cookies.iter().any(|c| c.contains("sentrix_device")),
        "{cookies:?}"
    );

    // A stranger guesses at alice until the name is locked, also with a made-up device.
    let fake_device = format!("__Host-sentrix_device={}", "ab".repeat(32));
    for i in 0..8 {
        let req = get("/api/events")
            .header("authorization", basic("alice", &format!("guess {i}")))
            .header("cookie", &fake_device);
        send(&app, from(stranger, req)).await;
    }
    let right = |who: [u8; 4], cookie: Option<&str>| {
        let mut req = get("/api/events").header("authorization", basic("alice", ADMIN_PW));
        if let Some(c) = cookie {
            req = req.header("cookie", c);
        }
        from(who, req)
    };
    assert_eq!(
        send(&app, right(stranger, None)).await.0,
        429,
        "locked to strangers"
    );
    assert_eq!(
        send(&app, right([192, 168, 1, 21], None)).await.0,
        429,
        "locked to any unknown device"
    );
    // Her browser still gets in, and the lock shows on the Users page.
    assert_eq!(send(&app, right(home, Some(&device))).await.0, 200);
    let list = get("/api/users")
        .header("authorization", basic("alice", ADMIN_PW))
        .header("cookie", &device);
    let r = app.clone().oneshot(from(home, list)).await.unwrap();
    let body = axum::body::to_bytes(r.into_body(), 1 << 20).await.unwrap();
    let users: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert!(users["users"][0]["locked_until_ms"].is_i64(), "{users}");
    // An admin unlocks the name: unknown devices may log in again.
    let unlock = get("/api/users/alice/unlock")
        .method("POST")
        .header("origin", "https://localhost")
        .header("host", "localhost")
        .header("authorization", basic("alice", ADMIN_PW))
        .header("cookie", &device);
    assert_eq!(send(&app, from(home, unlock)).await.0, 200);
    assert_eq!(send(&app, right([192, 168, 1, 21], None)).await.0, 200);
    let audit = std::fs::read_to_string(s.dir.path().join("audit.log")).unwrap();
    assert!(audit.contains("\"action\":\"user_unlock\""), "{audit}");
    assert!(audit.contains("\"ip\":\"192.168.1.66\""), "{audit}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn browsers_never_get_a_basic_challenge() {
    let s = start().await;
    let app = app(s.state.clone());
    let challenge = |browser: bool| {
        let mut req = get("/api/events");
        if browser {
            req = req.header("sec-fetch-mode", "cors");
        }
        let app = app.clone();
        let req = from([10, 3, 3, 3], req);
        async move {
            let r = app.oneshot(req).await.unwrap();
            assert_eq!(r.status(), 401);
            r.headers().contains_key("www-authenticate")
        }
    };
    assert!(challenge(false).await, "curl and scripts are challenged");
    assert!(
        !challenge(true).await,
        "a browser would cache Basic past a logout"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_route_that_checks_credentials_is_rate_limited() {
    let s = start().await;
    let st = s.state.clone();
    let app = app(st.clone());
    // A session for the password-change route.
    let (_, cookies) = send(
        &app,
        from(
            [10, 1, 1, 1],
            get("/auth/verify")
                .method("POST")
                .header("authorization", basic("bob", VIEWER_PW))
                .header("origin", "https://localhost")
                .header("host", "localhost"),
        ),
    )
    .await;
    let session = cookies
        .iter()
        .find(|c| c.starts_with("__Host-sentrix_session="))
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_string();
    let routes: Vec<(&str, &str)> = vec![
        ("POST", "/auth/verify"),
        ("POST", "/auth/verify/"),
        ("GET", "/api/events"),
        ("GET", "/api/me"),
        ("GET", "/metrics"),
        ("GET", "/no/such/route"),
        ("PUT", "/api/users/bob/password"),
    ];
    for (n, (method, path)) in routes.into_iter().enumerate() {
        let before = st.auth.password_checks();
        let mut last = 0;
        for i in 0..30 {
            let mut req = Request::builder()
                .method(method)
                .uri(path)
                .header("origin", "https://localhost")
                .header("host", "localhost");
            let addr = [10, 2, n as u8, 1];
            let req = if path.ends_with("/password") {
                req = req
                    .header("cookie", &session)
                    .header("content-type", "application/json");
                let body =
                    format!(r#"{{"password":"a new password 1","current_password":"guess {i}"}}"#);
                let mut r = req.body(Body::from(body)).unwrap();
                r.extensions_mut()
                    .insert(ConnectInfo(SocketAddr::from((addr, 1))));
                r
            } else {
                from(
                    addr,
                    req.header("authorization", basic(&format!("user{i}"), "guess")),
                )
            };
            last = send(&app, req).await.0;
        }
        let hashes = st.auth.password_checks() - before;
        assert_eq!(last, 429, "{method} {path}");
        assert!(
            hashes <= 5,
            "{method} {path}: {hashes} checks ran for 30 guesses"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn huge_user_names_do_not_grow_the_audit_log() {
    let s = start().await;
    let c = s.client();
    let audit = s.dir.path().join("audit.log");
    let before = std::fs::metadata(&audit).map_or(0, |m| m.len());
    // 60 KB names: the request head is over the limit, refused before any work, with a 431
    // the client can read: the server lingers on close instead of resetting a client that
    // is still sending. (Each 431 closes its connection; 20 stay within the address's
    // burst of new connections.)
    let huge = "N".repeat(60_000);
    for _ in 0..20 {
        let r = c
            .get(s.url("/api/events"))
            .basic_auth(&huge, Some("x"))
            .send()
            .await;
        // The answer says the connection closes, so the client never reuses it (and races
        // the server's close with its next request).
        let code = r.map_or_else(
            |e| format!("{e:?}"),
            |r| match r.headers().get("connection").map(|v| v.as_bytes()) {
                Some(b"close") => r.status().as_u16().to_string(),
                other => format!("{} with connection {other:?}", r.status()),
            },
        );
        assert_eq!(code, "431");
    }
    // A thousand more, as fast as they go: past the address's rate of new connections
    // they are refused at accept (status 0 here), and none reaches the audit log.
    let mut statuses = std::collections::BTreeMap::new();
    for i in 0..1000 {
        let name = if i % 2 == 0 {
            huge.clone()
        } else {
            format!("{}{i}", "n".repeat(8_000))
        };
        let r = c
            .get(s.url("/api/events"))
            .basic_auth(&name, Some("x"))
            .send()
            .await;
        let code = r.map(|r| r.status().as_u16()).unwrap_or(0);
        *statuses.entry(code).or_insert(0) += 1;
    }
    let grown = std::fs::metadata(&audit).map_or(0, |m| m.len()) - before;
    assert!(
        grown < 1_000_000,
        "audit grew {grown} bytes; statuses {statuses:?}"
    );
    assert!(
        statuses
            .keys()
            .all(|code| [0, 401, 429, 431].contains(code)),
        "{statuses:?}"
    );
    let text = std::fs::read_to_string(&audit).unwrap();
    assert!(
        !text.contains(&"n".repeat(100)),
        "a typed name reached the audit log"
    );
    assert!(text.contains("unknown user #"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oversized_body_gets_a_readable_413_every_time() {
    let s = start().await;
    let c = s.client();
    // 2 MB of JSON, far past the 64 KiB limit, sent by a client that has not finished
    // sending when the server answers.
    let big = format!(
        r#"{{"name":"carol","password":"{}"}}"#,
        "p".repeat(2_000_000)
    );
    let mut statuses = std::collections::BTreeMap::new();
    for _ in 0..20 {
        let r = c
            .post(s.url("/api/users"))
            .header("content-type", "application/json")
            .header("origin", &s.base)
            .basic_auth("alice", Some(ADMIN_PW))
            .body(big.clone())
            .send()
            .await;
        // The answer says the connection closes, so the client never reuses it (and races
        // the server's close with its next request).
        let code = r.map_or_else(
            |e| format!("{e:?}"),
            |r| match r.headers().get("connection").map(|v| v.as_bytes()) {
                Some(b"close") => r.status().as_u16().to_string(),
                other => format!("{} with connection {other:?}", r.status()),
            },
        );
        *statuses.entry(code).or_insert(0) += 1;
    }
    assert_eq!(statuses.get("413").copied(), Some(20), "{statuses:?}");
}

/// A TLS connection to the test server from `local` (any 127.x address).
async fn tls_connect(s: &Server, local: [u8; 4]) -> std::io::Result<crate::common::tls::Stream> {
    let port: u16 = s.base.rsplit(':').next().unwrap().parse().unwrap();
    let tls = crate::common::tls::connector(&s.cert_pem);
    crate::common::tls::connect_from(&tls, port, local).await
}

/// The status of `/api/events` for the viewer bob, over a new HTTPS client (a new
/// connection, so it is admitted like any newcomer).
async fn events_as_bob(s: &Server) -> u16 {
    let r = s.client().get(s.url("/api/events"));
    r.basic_auth("bob", Some(VIEWER_PW))
        .send()
        .await
        .map_or(0, |r| r.status().as_u16())
}

/// Whether the server has closed `stream` (EOF or error) within `wait`.
async fn closed_within<S: tokio::io::AsyncRead + Unpin>(stream: &mut S, wait: Duration) -> bool {
    let mut buf = [0u8; 4096];
    let deadline = Instant::now() + wait;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, stream.read(&mut buf)).await {
            Err(_) => return false,
            Ok(Ok(0)) | Ok(Err(_)) => return true,
            Ok(Ok(_)) => continue,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_headers_idle_connections_and_http2_are_bounded() {
    let limits = Limits {
        max_total: 24,
        max_per_address: 8,
        header_timeout: Duration::from_secs(2),
        ..Limits::default()
    };
    let s = start_with(limits).await;
    // Slow headers: a byte every 300 ms is closed at the header timeout.
    let mut slow = tls_connect(&s, [127, 0, 0, 5]).await.unwrap();
    let started = Instant::now();
    let head = b"GET /api/events HTTP/1.1\r\nHost: localhost\r\nX-Slow: ";
    slow.write_all(head).await.unwrap();
    let mut closed = false;
    for _ in 0..20 {
        if slow.write_all(b"a").await.is_err()
            || closed_within(&mut slow, Duration::from_millis(300)).await
        {
            closed = true;
            break;
        }
    }
    let took = started.elapsed();
    assert!(
        closed,
        "a slow header sender was still connected after {took:?}"
    );
    assert!(took < Duration::from_secs(4), "closed after {took:?}");

    // Per address: the 9th connection from one address is refused; others still served.
    let mut idle = Vec::new();
    for _ in 0..8 {
        idle.push(tls_connect(&s, [127, 0, 0, 6]).await.unwrap());
    }
    let ninth = tls_connect(&s, [127, 0, 0, 6]).await;
    assert!(
        ninth.is_err(),
        "a 9th connection from one address was admitted"
    );
    // Fill the total cap from more addresses; a newcomer then evicts an idle one.
    for a in 7..9 {
        for _ in 0..8 {
            idle.push(tls_connect(&s, [127, 0, 0, a]).await.unwrap());
        }
    }
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let started = Instant::now();
    assert_eq!(events_as_bob(&s).await, 200);
    assert!(started.elapsed() < Duration::from_secs(2));
    let stats = s.state.connections.stats();
    assert!(stats.evicted >= 1 && stats.refused >= 1, "{stats:?}");
    drop(idle);

    // HTTP/2 with prior knowledge is not served (ALPN offers only http/1.1).
    let mut h2 = tls_connect(&s, [127, 0, 0, 9]).await.unwrap();
    h2.write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")
        .await
        .unwrap();
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(3), h2.read_to_end(&mut answer)).await;
    let text = String::from_utf8_lossy(&answer);
    assert!(
        answer.is_empty() || text.starts_with("HTTP/1.1 4"),
        "HTTP/2 prior knowledge got: {text:?}"
    );
    // Descriptors held by the server return once the clients are gone.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        s.state.connections.stats().open <= 2,
        "{:?}",
        s.state.connections.stats()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_event_stream_ends_with_its_session() {
    let s = start().await;
    let c = s.client();
    for end in ["logout", "password", "removal"] {
        let (user, pw) = if end == "removal" {
            ("carol", "carol's password 1")
        } else {
            ("bob", VIEWER_PW)
        };
        register_secret(pw);
        if end == "removal" {
            let body = format!(r#"{{"username":"carol","role":"viewer","password":"{pw}"}}"#);
            let r = c
                .post(s.url("/api/users"))
                .header("origin", &s.base)
                .basic_auth("alice", Some(ADMIN_PW))
                .header("content-type", "application/json")
                .body(body)
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 201);
        }
        let r = c
            .post(s.url("/auth/verify"))
            .header("origin", &s.base)
            .basic_auth(user, Some(pw))
            .send()
            .await
            .unwrap();
        let cookie = session_cookie(&r);
        let mut sse = c
            .get(s.url("/api/events/stream"))
            .header("cookie", &cookie)
            .send()
            .await
            .unwrap();
        assert_eq!(sse.status(), 200);
        let next_phc = sentrix::auth::password::hash("bob's next password").unwrap();
        let revoked_at = Instant::now();
        match end {
            "logout" => {
                let r = c
                    .post(s.url("/auth/logout"))
                    .header("origin", &s.base)
                    .header("cookie", &cookie)
                    .send()
                    .await
                    .unwrap();
                assert_eq!(r.status(), 200);
            }
            "password" => {
                // Changed from the CLI's side (another process): the stamp no longer matches.
                s.store.set_user_password("bob", &next_phc).unwrap();
            }
            _ => {
                let r = c
                    .delete(s.url("/api/users/carol"))
                    .header("origin", &s.base)
                    .basic_auth("alice", Some(ADMIN_PW))
                    .send()
                    .await
                    .unwrap();
                assert_eq!(r.status(), 200);
            }
        }
        let ended = tokio::time::timeout(Duration::from_secs(2), async {
            while let Ok(Some(_)) = sse.chunk().await {}
        })
        .await;
        let took = revoked_at.elapsed();
        assert!(
            ended.is_ok() && took < Duration::from_millis(1100),
            "{end}: stream still open after {took:?}"
        );
    }
    let _ = s.clock.wall_ms();
}
