//! The web tests' server: a store with two users and a multi-chunk encrypted clip, the
//! router behind real TLS on a loopback port (a generated certificate that the client
//! trusts), a simulated clock for lockouts, and the secret sweep: every response body and
//! header, and every log line, is checked against every secret the tests handed over.

use axum::body::Body;
use axum::http::Request;
use base64::Engine;
use sentrix::audit::Audit;
use sentrix::auth::{Authenticator, Policy, password};
pub use sentrix::base::clock::{Clock, SimClock};
use sentrix::store::{ClipMeta, MasterKey, RetentionPolicy, Store, StoreConfig};
use sentrix::web::{AppState, CameraInfo, router};
use std::sync::{Arc, Mutex};

pub const ADMIN_PW: &str = "correct horse battery";
pub const VIEWER_PW: &str = "viewer password 42";
pub const CAMERA_URL: &str = "rtsp://admin:cam-secret-77@10.0.0.2/stream";
pub const MASTER_KEY: [u8; 32] = [9u8; 32];

/// Every secret the tests in this file hand to the server (passwords, the camera URL's
/// password, the master key, each TLS private key, passwords set over the API). Every
/// response body the server sends and every log line it writes is checked against them.
pub static SECRETS: Mutex<Vec<String>> = Mutex::new(Vec::new());
/// Responses or log lines that held a secret: `(where, secret)`.
pub static LEAKS: Mutex<Vec<(String, String)>> = Mutex::new(Vec::new());
/// Log lines written in this process (the server runs in-process here).
pub static LOG: Mutex<Vec<u8>> = Mutex::new(Vec::new());

pub fn register_secret(secret: &str) {
    SECRETS.lock().unwrap().push(secret.to_string());
}

pub fn check_for_secrets(place: &str, bytes: &[u8]) {
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
pub fn assert_no_secret_leaked() {
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

pub fn init_secrets_and_log() {
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
pub fn app(st: Arc<AppState>) -> axum::Router {
    router(st).layer(axum::middleware::from_fn(capture))
}

pub struct Server {
    pub dir: tempfile::TempDir,
    pub store: Store,
    pub clock: Arc<SimClock>,
    pub base: String,
    pub cert_pem: Vec<u8>,
    pub clip_id: i64,
    pub clip_bytes: Vec<u8>,
    /// The served state (authenticator counters, connection table).
    pub state: Arc<AppState>,
    stop: Option<tokio_util::sync::CancellationToken>,
}

pub fn policy() -> Policy {
    Policy {
        max_attempts: 5,
        lockout_ms: 900_000,
        session_timeout_ms: 3_600_000,
    }
}

pub fn state(store: &Store, clock: &Arc<SimClock>, dir: &std::path::Path) -> Arc<AppState> {
    let auth = Arc::new(Authenticator::new(store.clone(), policy(), clock.clone()));
    let audit = Arc::new(Audit::open(Some(&dir.join("audit.log"))).unwrap());
    Arc::new(
        AppState::new(
            store.clone(),
            auth,
            audit,
            vec![CameraInfo {
                id: "porch".into(),
                name: "Porch".into(),
                url: sentrix::base::redact::CameraUrl::parse(CAMERA_URL)
                    .unwrap()
                    .redacted(),
                enabled: true,
                alarm_only: false,
                alarm_address: None,
                source: "yaml",
                password: Some("••••"),
                zones: Vec::new(),
                masks: Vec::new(),
            }],
            true,
            true,
            vec!["https://trusted.example".into()],
        )
        .unwrap(),
    )
}

pub async fn start() -> Server {
    start_with(Default::default()).await
}

/// The server with connection `limits` of the test's choosing.
pub async fn start_with(limits: sentrix::web::conn::Limits) -> Server {
    init_secrets_and_log();
    let dir = crate::common::temp_dir();
    let (store, _) = Store::open(
        StoreConfig {
            recordings_dir: dir.path().join("rec"),
            database: dir.path().join("db/sentrix.db"),
            chunk_size: 4096, // many chunks, so ranges cross chunk boundaries
            retention: RetentionPolicy::KEEP_ALL,
            offsite_uploaded_first: false,
            review: Default::default(),
        },
        MasterKey::from_bytes(MASTER_KEY),
    )
    .unwrap();
    let now = sentrix::base::clock::wall_ms();
    store
        .add_user("alice", "admin", &password::hash(ADMIN_PW).unwrap(), now)
        .unwrap();
    store
        .add_user("bob", "viewer", &password::hash(VIEWER_PW).unwrap(), now)
        .unwrap();
    let mp4 = tokio::task::spawn_blocking(|| crate::common::synthetic_mp4(3))
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
    sentrix::tls::generate(&cert, &key, &sentrix::tls::default_names(&[])).unwrap();
    for line in std::fs::read_to_string(&key).unwrap().lines() {
        if !line.starts_with("-----") {
            register_secret(line);
        }
    }
    let tls = sentrix::tls::server_config(&cert, &key).unwrap();
    let clock = SimClock::at(now);
    let st = state(&store, &clock, dir.path());
    let table = sentrix::web::conn::ConnTable::new(limits);
    let st = Arc::new(
        Arc::try_unwrap(st)
            .ok()
            .unwrap()
            .with_connections(table.clone()),
    );
    let app = app(st.clone());
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let port = listener.local_addr().unwrap().port();
    let stop = tokio_util::sync::CancellationToken::new();
    let serving = stop.clone();
    tokio::spawn(async move {
        sentrix::web::serve(app, listener, Some(tls), table, serving)
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
        state: st,
        stop: Some(stop),
    }
}

impl Server {
    pub fn client(&self) -> reqwest::Client {
        reqwest::Client::builder()
            .use_rustls_tls()
            .add_root_certificate(reqwest::Certificate::from_pem(&self.cert_pem).unwrap())
            .build()
            .unwrap()
    }
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            s.cancel();
        }
        // Every test ends with the sweep: no secret in any response or log line.
        if !std::thread::panicking() {
            assert_no_secret_leaked();
        }
    }
}

/// The `name=value` part of the session cookie a response sets.
pub fn session_cookie(r: &reqwest::Response) -> String {
    let set = r.headers()["set-cookie"].to_str().unwrap();
    set.split(';').next().unwrap().to_string()
}
