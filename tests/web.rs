//! The dashboard's HTTP layer over real TLS (a generated certificate, rustls on both
//! ends, reqwest trusting that certificate): auth on every route but /healthz, sessions,
//! the /auth/verify rate limit, lockout (simulated clock, surviving a restart), CSRF,
//! CORS, security headers, Range serving of a multi-chunk encrypted clip, and path
//! traversal on /recordings (in-process, with raw request paths no HTTP client would send).

mod common;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use base64::Engine;
use sentrix::auth::{Authenticator, Policy, password};
use sentrix::store::{ClipMeta, MasterKey, RetentionPolicy, Store, StoreConfig};
use sentrix::web::{AppState, CameraInfo, audit::Audit, router};
use std::sync::atomic::{AtomicI64, Ordering::SeqCst};
use std::sync::{Arc, Mutex};
use tower::ServiceExt;

const ADMIN_PW: &str = "correct horse battery";
const VIEWER_PW: &str = "viewer password 42";
const CAMERA_URL: &str = "rtsp://admin:cam-secret-77@10.0.0.2/stream";
const MASTER_KEY: [u8; 32] = [9u8; 32];

/// Every secret the tests in this file hand to the server (passwords, the camera URL's
/// password, the master key, each TLS private key, passwords set over the API). Every
/// response body the server sends and every log line it writes is checked against them.
static SECRETS: Mutex<Vec<String>> = Mutex::new(Vec::new());
/// Responses or log lines that held a secret: `(where, secret)`.
static LEAKS: Mutex<Vec<(String, String)>> = Mutex::new(Vec::new());
/// Log lines written in this process (the server runs in-process here).
static LOG: Mutex<Vec<u8>> = Mutex::new(Vec::new());

fn register_secret(secret: &str) {
    SECRETS.lock().unwrap().push(secret.to_string());
}

fn check_for_secrets(place: &str, bytes: &[u8]) {
    let text = String::from_utf8_lossy(bytes);
    for secret in SECRETS.lock().unwrap().iter() {
        if text.contains(secret.as_str()) {
            LEAKS
                .lock()
                .unwrap()
                .push((place.to_string(), secret.clone()));
        }
    }
}

/// Fails the test if any response so far, or the log, held a secret.
fn assert_no_secret_leaked() {
    check_for_secrets("log", &LOG.lock().unwrap());
    let leaks = LEAKS.lock().unwrap();
    assert!(leaks.is_empty(), "secrets leaked: {leaks:?}");
}

struct LogWriter;
impl std::io::Write for LogWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        LOG.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn init_secrets_and_log() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        for s in [ADMIN_PW, VIEWER_PW, "cam-secret-77"] {
            register_secret(s);
        }
        register_secret(
            &MASTER_KEY
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect::<String>(),
        );
        register_secret(&base64::engine::general_purpose::STANDARD.encode(MASTER_KEY));
        let _ = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::DEBUG)
            .with_writer(|| LogWriter)
            .with_ansi(false)
            .try_init();
    });
}

/// Buffers each response the server sends (all but the endless live streams) to check it
/// for secrets, then passes it on unchanged.
async fn capture(req: Request<Body>, next: axum::middleware::Next) -> axum::response::Response {
    let place = format!("{} {}", req.method(), req.uri());
    let resp = next.run(req).await;
    let kind = resp
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    if kind.starts_with("multipart/") || kind.starts_with("text/event-stream") {
        return resp;
    }
    let (parts, body) = resp.into_parts();
    let bytes = axum::body::to_bytes(body, 1 << 30)
        .await
        .unwrap_or_default();
    check_for_secrets(&place, &bytes);
    for (name, value) in &parts.headers {
        check_for_secrets(&format!("{place} header {name}"), value.as_bytes());
    }
    axum::response::Response::from_parts(parts, Body::from(bytes))
}

/// The router under test, with every response checked for secrets.
fn app(st: Arc<AppState>) -> axum::Router {
    router(st).layer(axum::middleware::from_fn(capture))
}

struct Server {
    dir: tempfile::TempDir,
    store: Store,
    clock: Arc<AtomicI64>,
    base: String,
    cert_pem: Vec<u8>,
    clip_id: i64,
    clip_bytes: Vec<u8>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

fn policy() -> Policy {
    Policy {
        max_attempts: 5,
        lockout_ms: 900_000,
        session_timeout_ms: 3_600_000,
    }
}

fn state(store: &Store, clock: &Arc<AtomicI64>, dir: &std::path::Path) -> Arc<AppState> {
    let c = clock.clone();
    let auth = Arc::new(Authenticator::new(
        store.clone(),
        policy(),
        Arc::new(move || c.load(SeqCst)),
    ));
    let audit = Arc::new(Audit::open(Some(&dir.join("audit.log"))).unwrap());
    Arc::new(
        AppState::new(
            store.clone(),
            auth,
            audit,
            vec![CameraInfo {
                id: "porch".into(),
                name: "Porch".into(),
                url: sentrix::redact::CameraUrl::parse(CAMERA_URL)
                    .unwrap()
                    .redacted(),
                enabled: true,
            }],
            true,
            true,
            vec!["https://trusted.example".into()],
        )
        .unwrap(),
    )
}

async fn start() -> Server {
    init_secrets_and_log();
    let dir = common::temp_dir();
    let (store, _) = Store::open(
        StoreConfig {
            recordings_dir: dir.path().join("rec"),
            database: dir.path().join("db/sentrix.db"),
            chunk_size: 4096, // many chunks, so ranges cross chunk boundaries
            retention: RetentionPolicy::KEEP_ALL,
        },
        MasterKey::from_bytes(MASTER_KEY),
    )
    .unwrap();
    let now = sentrix::store::now_ms();
    store
        .add_user("alice", "admin", &password::hash(ADMIN_PW).unwrap(), now)
        .unwrap();
    store
        .add_user("bob", "viewer", &password::hash(VIEWER_PW).unwrap(), now)
        .unwrap();
    let mp4 = tokio::task::spawn_blocking(|| common::synthetic_mp4(3))
        .await
        .unwrap();
    let mut w = store
        .begin_clip(ClipMeta {
            camera_id: "porch".into(),
            start_ms: now,
            ..Default::default()
        })
        .unwrap();
    w.write(&mp4).unwrap();
    let rec = w.finish(None).unwrap();
    let (cert, key) = (
        dir.path().join("certs/server.crt"),
        dir.path().join("certs/server.key"),
    );
    sentrix::web::tls::generate(&cert, &key, &sentrix::web::tls::default_names(&[])).unwrap();
    for line in std::fs::read_to_string(&key).unwrap().lines() {
        if !line.starts_with("-----") {
            register_secret(line);
        }
    }
    let tls = sentrix::web::tls::server_config(&cert, &key).unwrap();
    let clock = Arc::new(AtomicI64::new(now));
    let app = app(state(&store, &clock, dir.path()));
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let port = listener.local_addr().unwrap().port();
    let (stop, stop_rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(async move {
        sentrix::web::serve(app, listener, Some(tls), async {
            let _ = stop_rx.await;
        })
        .await
        .unwrap();
    });
    Server {
        cert_pem: std::fs::read(&cert).unwrap(),
        dir,
        store,
        clock,
        base: format!("https://localhost:{port}"),
        clip_id: rec.id,
        clip_bytes: mp4,
        stop: Some(stop),
    }
}

impl Server {
    fn client(&self) -> reqwest::Client {
        reqwest::Client::builder()
            .use_rustls_tls()
            .add_root_certificate(reqwest::Certificate::from_pem(&self.cert_pem).unwrap())
            .build()
            .unwrap()
    }
    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        // Every test ends with the sweep: no secret in any response or log line.
        if !std::thread::panicking() {
            assert_no_secret_leaked();
        }
    }
}

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
    s.clock.fetch_add(901_000, SeqCst);
    assert_eq!(app.oneshot(req()).await.unwrap().status(), 200);
    assert_eq!(get("alice", ADMIN_PW).await.unwrap().status(), 200);
}

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
    common::assert_no_plaintext(s.store.recordings_dir());
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admins_manage_users_and_changes_apply_at_once() {
    const CAROL_PW: &str = "carol first password";
    const CAROL_PW2: &str = "carol second password";
    const CAROL_PW3: &str = "carol third password";
    for pw in [CAROL_PW, CAROL_PW2, CAROL_PW3] {
        register_secret(pw);
    }
    let s = start().await;
    let c = s.client();
    let send = |method: reqwest::Method, path: &str, user: &str, pw: &str, body: Option<&str>| {
        let mut r = c
            .request(method, s.url(path))
            .header("origin", &s.base)
            .basic_auth(user, Some(pw));
        if let Some(b) = body {
            r = r
                .header("content-type", "application/json")
                .body(b.to_string());
        }
        r.send()
    };
    use reqwest::Method as M;
    let add_carol = format!(r#"{{"username":"carol","role":"viewer","password":"{CAROL_PW}"}}"#);
    // Viewers do not manage users; bad input is a 4xx JSON error that says why.
    let r = send(M::POST, "/api/users", "bob", VIEWER_PW, Some(&add_carol))
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    for (body, status, says) in [
        (
            r#"{"username":"carol","role":"viewer","password":"short"}"#,
            400,
            "at least 10",
        ),
        (
            r#"{"username":"ca:rol","role":"viewer","password":"long enough pw"}"#,
            400,
            "user name",
        ),
        (
            r#"{"username":"carol","role":"root","password":"long enough pw"}"#,
            400,
            "not admin or viewer",
        ),
        (r#"{"username":"carol","role":"viewer""#, 400, "bad JSON"),
        (
            r#"{"username":"bob","role":"viewer","password":"long enough pw"}"#,
            409,
            "already exists",
        ),
    ] {
        let r = send(M::POST, "/api/users", "alice", ADMIN_PW, Some(body))
            .await
            .unwrap();
        assert_eq!(r.status(), status, "{body}");
        let v: serde_json::Value = r.json().await.unwrap();
        assert!(v["message"].as_str().unwrap().contains(says), "{body}: {v}");
    }
    // A foreign Origin cannot add users, even with an admin's credentials.
    let r = c
        .post(s.url("/api/users"))
        .header("origin", "http://evil.com")
        .basic_auth("alice", Some(ADMIN_PW))
        .body(add_carol.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);

    let r = send(M::POST, "/api/users", "alice", ADMIN_PW, Some(&add_carol))
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let r = send(M::GET, "/api/users", "alice", ADMIN_PW, None)
        .await
        .unwrap();
    let v: serde_json::Value = r.json().await.unwrap();
    let names: Vec<&str> = v["users"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["alice", "bob", "carol"]);
    assert!(
        !v.to_string().contains("pbkdf2"),
        "no hash in the list: {v}"
    );
    let events = |pw: &'static str| send(M::GET, "/api/events", "carol", pw, None);
    let r = events(CAROL_PW).await.unwrap();
    assert_eq!(r.status(), 200);
    let carol_session = r.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_string();

    // Carol changes her own password: the current one is required and checked.
    let mine = format!(r#"{{"password":"{CAROL_PW2}","current_password":"not it at all"}}"#);
    let r = send(
        M::PUT,
        "/api/users/carol/password",
        "carol",
        CAROL_PW,
        Some(&mine),
    )
    .await
    .unwrap();
    assert_eq!(r.status(), 403);
    let theirs = format!(r#"{{"password":"{CAROL_PW2}","current_password":"{VIEWER_PW}"}}"#);
    let r = send(
        M::PUT,
        "/api/users/bob/password",
        "carol",
        CAROL_PW,
        Some(&theirs),
    )
    .await
    .unwrap();
    assert_eq!(r.status(), 403, "a viewer cannot change another's password");
    let mine = format!(r#"{{"password":"{CAROL_PW2}","current_password":"{CAROL_PW}"}}"#);
    let r = send(
        M::PUT,
        "/api/users/carol/password",
        "carol",
        CAROL_PW,
        Some(&mine),
    )
    .await
    .unwrap();
    assert_eq!(r.status(), 200);
    // The old password stops working at once, although it had been verified (and cached).
    assert_eq!(events(CAROL_PW).await.unwrap().status(), 401);
    assert_eq!(events(CAROL_PW2).await.unwrap().status(), 200);

    // An admin resets it: carol's sessions end.
    let reset = format!(r#"{{"password":"{CAROL_PW3}"}}"#);
    let r = send(
        M::PUT,
        "/api/users/carol/password",
        "alice",
        ADMIN_PW,
        Some(&reset),
    )
    .await
    .unwrap();
    assert_eq!(r.status(), 200);
    let r = c
        .get(s.url("/api/events"))
        .header("cookie", &carol_session)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401, "the session outlived a password reset");
    assert_eq!(events(CAROL_PW3).await.unwrap().status(), 200);

    // Removal: not oneself, not someone missing; afterwards carol cannot log in.
    let r = send(M::DELETE, "/api/users/alice", "alice", ADMIN_PW, None)
        .await
        .unwrap();
    assert_eq!(r.status(), 409);
    let r = send(M::DELETE, "/api/users/nobody", "alice", ADMIN_PW, None)
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    let r = send(M::DELETE, "/api/users/carol", "bob", VIEWER_PW, None)
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    let r = send(M::DELETE, "/api/users/carol", "alice", ADMIN_PW, None)
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(events(CAROL_PW3).await.unwrap().status(), 401);

    let audit = std::fs::read_to_string(s.dir.path().join("audit.log")).unwrap();
    for action in ["user_add", "user_passwd", "user_remove"] {
        assert!(
            audit.contains(&format!("\"action\":\"{action}\"")),
            "{action}: {audit}"
        );
    }
    check_for_secrets("audit.log", audit.as_bytes());
}

/// `sentrix user passwd|remove` runs in another process and cannot tell the server: the
/// server notices by itself at the next request, for sessions and cached Basic logins.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_made_outside_the_server_ends_sessions_and_cached_logins() {
    const BOB_NEW: &str = "bob changed password";
    register_secret(BOB_NEW);
    let s = start().await;
    let c = s.client();
    let basic = |pw: &'static str| {
        c.get(s.url("/api/events"))
            .basic_auth("bob", Some(pw))
            .send()
    };
    let r = basic(VIEWER_PW).await.unwrap();
    assert_eq!(r.status(), 200);
    let cookie = r.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_string();
    let with_cookie = |cookie: String| c.get(s.url("/api/events")).header("cookie", cookie).send();
    assert_eq!(basic(VIEWER_PW).await.unwrap().status(), 200, "cached");
    assert_eq!(with_cookie(cookie.clone()).await.unwrap().status(), 200);

    // What `sentrix user passwd bob` does, straight to the database.
    let store = s.store.clone();
    tokio::task::spawn_blocking(move || {
        sentrix::auth::accounts::set_password(&store, "bob", BOB_NEW).unwrap()
    })
    .await
    .unwrap();
    assert_eq!(
        with_cookie(cookie).await.unwrap().status(),
        401,
        "session kept"
    );
    assert_eq!(
        basic(VIEWER_PW).await.unwrap().status(),
        401,
        "cached login kept"
    );
    let r = basic(BOB_NEW).await.unwrap();
    assert_eq!(r.status(), 200);
    let cookie = r.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_string();

    // `sentrix user remove bob`.
    sentrix::auth::accounts::remove(&s.store, "bob").unwrap();
    assert_eq!(with_cookie(cookie).await.unwrap().status(), 401);
    assert_eq!(basic(BOB_NEW).await.unwrap().status(), 401);
}
