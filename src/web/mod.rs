//! The HTTPS dashboard and API: `router(state)` (tests call it in-process) and `serve`
//! (listen.rs: our accept loop with connection caps and timeouts, conn.rs). One
//! middleware, `guard`, runs in front of every route:
//!
//! 1. `/healthz` passes untouched.
//! 2. `/auth/verify` (with or without a trailing slash) is limited to 5 requests a minute
//!    per client address; every password check on any route also passes auth's gate
//!    (auth/attempts.rs: a per-address rate limit and the lockout, reserved atomically).
//! 3. Unsafe methods (POST, PUT, PATCH, DELETE) and WebSocket upgrades need a same-origin
//!    `Origin` (or `Referer`),
//!    or an `X-CSRF-Token` bound to the session, else 403.
//! 4. Authentication: a valid session cookie, else HTTP Basic checked by `auth` (lockout
//!    before hashing, 429 + Retry-After when locked; a known-device cookie exempts its
//!    browser from its user's lock). A Basic success opens a session and sets its cookie,
//!    and the known-device cookie for a new browser (cookies.rs). Browsers never get a
//!    `WWW-Authenticate` challenge (it would make them cache Basic past a logout).
//! 5. Every response gets the security headers (CSP without inline script, HSTS under TLS,
//!    nosniff, frame-ancestors 'none', same-origin referrers, no-store), and CORS headers
//!    only for an origin listed in `security.allowed_origins`.

mod accounts;
mod analytics;
pub mod api;
pub mod cameras_admin;
pub mod conn;
mod conn_rate;
pub mod cookies;
pub mod error;
mod extract;
mod linger;
pub mod listen;
pub mod live;
mod live_mp4;
pub mod media;
pub mod metrics;
mod notify;
mod offsite;
mod onvif;
pub mod pages;
mod probe;
mod recordings;
mod review;
mod server;
mod tokens;

use crate::audit::Audit;
use crate::auth::{Authenticator, Credential, LoginError, Origin, Principal, Role};
use crate::store::Store;
use axum::Router;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use base64::Engine;
use error::AppError;
pub use extract::{Admin, ClientIp, JsonQuery, Operator};
pub use listen::serve;
pub use server::{camera_infos, start};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

/// `/auth/verify` attempts per client per minute.
const VERIFY_PER_MINUTE: usize = 5;

/// A camera as the API lists it (never its URL's password).
#[derive(Debug, Clone, serde::Serialize)]
pub struct CameraInfo {
    pub id: String,
    pub name: String,
    /// Empty for an alarm-only camera.
    pub url: String,
    pub enabled: bool,
    /// It has no stream: it only sends alarm pictures.
    pub alarm_only: bool,
    /// The recipient its alarm mail must go to; shown to admins only.
    #[serde(skip)]
    pub alarm_address: Option<String>,
    /// "yaml" (surveillance.yml, changed there) or "dashboard" (changed here).
    pub source: &'static str,
    /// `"••••"` when a password is set; the password itself is never sent.
    pub password: Option<&'static str>,
    /// Where objects count, and what motion and detection ignore (for the zone editor).
    pub zones: Vec<crate::config::Area>,
    pub masks: Vec<crate::config::Area>,
}

pub struct AppState {
    pub store: Store,
    pub auth: Arc<Authenticator>,
    pub audit: Arc<Audit>,
    /// The cameras the API lists; the run loop replaces the list after a change.
    cameras: Arc<std::sync::RwLock<Vec<CameraInfo>>>,
    /// Where camera changes go (None when no box runs here).
    pub desk: Option<cameras_admin::CameraDesk>,
    pub tls: bool,
    pub require_auth: bool,
    pub allowed_origins: Vec<String>,
    /// Canonical recordings_dir.
    pub recordings_root: PathBuf,
    /// Running cameras and the event bus (empty when only the store is served).
    pub live: crate::live::Live,
    /// The notification targets' statuses and the armed mode (None: not running here).
    pub notify: Option<Arc<crate::notify::NotifyState>>,
    /// The off-site uploader's status (None: off-site copies are off).
    pub offsite: Option<crate::offsite::OffsiteHandle>,
    pub started: std::time::Instant,
    /// The dashboard's open connections (a default table when served in-process).
    pub connections: Arc<conn::ConnTable>,
    verify_attempts: Mutex<HashMap<IpAddr, Vec<i64>>>,
}

/// What the running box hands the dashboard: its cameras, and the notification and
/// off-site services when they run.
#[derive(Clone, Default)]
pub struct Running {
    pub live: crate::live::Live,
    pub notify: Option<Arc<crate::notify::NotifyState>>,
    pub offsite: Option<crate::offsite::OffsiteHandle>,
    /// Camera management (the run loop applies the changes).
    pub desk: Option<cameras_admin::CameraDesk>,
}

impl AppState {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        store: Store,
        auth: Arc<Authenticator>,
        audit: Arc<Audit>,
        cameras: Vec<CameraInfo>,
        tls: bool,
        require_auth: bool,
        allowed_origins: Vec<String>,
    ) -> std::io::Result<Self> {
        let recordings_root = store.recordings_dir().canonicalize()?;
        Ok(Self {
            store,
            auth,
            audit,
            cameras: Arc::new(std::sync::RwLock::new(cameras)),
            desk: None,
            tls,
            require_auth,
            allowed_origins,
            recordings_root,
            live: crate::live::Live::default(),
            notify: None,
            offsite: None,
            started: std::time::Instant::now(),
            connections: conn::ConnTable::new(conn::Limits::default()),
            verify_attempts: Mutex::new(HashMap::new()),
        })
    }

    /// The running box's parts the dashboard shows and acts on.
    pub fn with_running(mut self, running: Running) -> Self {
        self.live = running.live;
        self.notify = running.notify;
        self.offsite = running.offsite;
        if let Some(desk) = running.desk {
            // The running box's list is the one the loop keeps current.
            *desk.list.write().unwrap_or_else(|p| p.into_inner()) = self.camera_list();
            self.cameras = desk.list.clone();
            self.desk = Some(desk);
        }
        self
    }

    /// Whether camera `id` is listed (without copying the list, for per-request checks).
    pub fn has_camera(&self, id: &str) -> bool {
        self.cameras
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .any(|c| c.id == id)
    }

    /// The cameras as the API lists them now.
    pub fn camera_list(&self) -> Vec<CameraInfo> {
        self.cameras
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    pub fn cookies(&self) -> cookies::Cookies {
        cookies::Cookies { tls: self.tls }
    }

    pub fn with_connections(mut self, table: Arc<conn::ConnTable>) -> Self {
        self.connections = table;
        self
    }

    /// Counts an `/auth/verify` attempt; Err(seconds to wait) past the limit.
    fn verify_allowed(&self, ip: IpAddr, now_ms: i64) -> Result<(), u64> {
        let mut map = self
            .verify_attempts
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        map.retain(|_, v| v.last().is_some_and(|&t| now_ms - t < 60_000));
        let times = map.entry(ip).or_default();
        times.retain(|&t| now_ms - t < 60_000);
        if times.len() >= VERIFY_PER_MINUTE {
            let wait_ms = 60_000 - (now_ms - times[0]);
            return Err((wait_ms.max(1000) as u64).div_ceil(1000));
        }
        times.push(now_ms);
        Ok(())
    }
}

/// Largest request body any route accepts (JSON forms; nothing uploads files).
const MAX_BODY_BYTES: usize = 64 * 1024;

pub fn router(state: Arc<AppState>) -> Router {
    api::routes()
        .layer(axum::extract::DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(axum::middleware::from_fn_with_state(state.clone(), guard))
        .layer(axum::middleware::from_fn(close_after_refused_body))
        .with_state(state)
}

/// Says `Connection: close` on an error answer to a request that carried a body.
///
/// The handler may not have read that body (a 413, or a 401 before it), so hyper closes
/// the connection afterwards. Without the header a client that finishes sending puts the
/// connection back in its pool and races our close with its next request, which then
/// fails with no answer at all. With it, the client knows not to reuse the connection.
async fn close_after_refused_body(req: Request, next: Next) -> Response {
    let carried_body = req.headers().contains_key(header::CONTENT_LENGTH)
        || req.headers().contains_key(header::TRANSFER_ENCODING);
    let mut response = next.run(req).await;
    let status = response.status();
    if carried_body && (status.is_client_error() || status.is_server_error()) {
        response
            .headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    response
}

/// The CSRF token of a session: derived from its id, so it needs no storage.
pub fn csrf_token(session_id: &str) -> String {
    Sha256::digest(format!("sentrix csrf\0{session_id}"))
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn basic_credentials(headers: &HeaderMap) -> Option<(String, String)> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, b64) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let raw = base64::engine::general_purpose::STANDARD
        .decode(b64.trim())
        .ok()?;
    let text = String::from_utf8(raw).ok()?;
    let (user, pass) = text.split_once(':')?;
    Some((user.to_string(), pass.to_string()))
}

fn bearer_token(headers: &HeaderMap) -> Option<String> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim().to_string())
}

/// Step 4 with an API token (no CSRF check: a browser never adds a bearer header by
/// itself). The route must be an API route within the token's scopes; each use is
/// counted and audited.
async fn token_login(
    state: &Arc<AppState>,
    req: &mut Request,
    token: String,
    ip: IpAddr,
    path: &str,
) -> Result<Granted, AppError> {
    use crate::auth::tokens::required_scope;
    let Some(scope) = required_scope(req.method(), path) else {
        return Err(AppError::forbidden(
            "API tokens are for the API; the dashboard needs a user login",
        ));
    };
    let auth = state.auth.clone();
    let grant = match blocking_auth(move || auth.token_login(&token, ip)).await? {
        Ok(grant) => grant,
        Err(e) => {
            audit_refusal(state, ("api-token", true), ip, path, &e);
            return Err(e.into());
        }
    };
    let who = grant.principal.user.clone();
    if !grant.scopes.contains(&scope) {
        state.audit.log(Some(&who), ip, "token_scope_refused", path);
        return Err(AppError::forbidden(format!(
            "this token lacks the {} scope",
            scope.as_str()
        )));
    }
    state.audit.log(Some(&who), ip, "token_used", path);
    req.extensions_mut()
        .insert(Credential::Token(grant.token_hash));
    req.extensions_mut().insert(grant.principal);
    Ok(Granted::default())
}

async fn blocking_auth<T: Send + 'static>(
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<T, AppError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(AppError::internal)
}

/// Whether an unsafe request comes from our own pages.
fn same_origin(headers: &HeaderMap, tls: bool) -> bool {
    let Some(host) = headers.get(header::HOST).and_then(|v| v.to_str().ok()) else {
        return false;
    };
    let origin = format!("{}://{host}", if tls { "https" } else { "http" });
    if let Some(o) = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) {
        return o == origin;
    }
    headers
        .get(header::REFERER)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|r| r == origin || r.starts_with(&format!("{origin}/")))
}

async fn guard(State(state): State<Arc<AppState>>, mut req: Request, next: Next) -> Response {
    let ip = ClientIp::of(req.extensions());
    let path = req.uri().path().to_string();
    let origin = header_text(req.headers(), header::ORIGIN);
    // Browsers send Sec-Fetch-Mode; they never get a Basic challenge (below).
    let browser = req.headers().contains_key("sec-fetch-mode");
    let wants_page = path == "/";
    let mut resp = if req
        .uri()
        .query()
        .is_some_and(crate::auth::tokens::query_has_token)
    {
        state.audit.log(None, ip, "token_in_url_refused", &path);
        AppError::bad_request(
            "API tokens go in the Authorization header (Bearer), never in the URL",
        )
        .into_response()
    } else if pages::is_public(&path) {
        next.run(req).await
    } else {
        match authorize(&state, &mut req, ip, &path).await {
            Ok(granted) => {
                if let Some(mark) = req.extensions().get::<conn::ConnMark>() {
                    mark.trust();
                }
                let mut resp = next.run(req).await;
                granted.set_cookies(&state, resp.headers_mut());
                resp
            }
            // A browser opening the dashboard signed out goes to the login page.
            Err(e) if wants_page && e.status == axum::http::StatusCode::UNAUTHORIZED => {
                axum::response::Redirect::to("/login").into_response()
            }
            Err(e) => e.into_response(),
        }
    };
    if browser {
        // A challenge would make the browser cache Basic credentials past a logout.
        resp.headers_mut().remove(header::WWW_AUTHENTICATE);
    }
    security_headers(&state, resp.headers_mut(), origin.as_deref());
    resp
}

fn header_text(headers: &HeaderMap, name: header::HeaderName) -> Option<String> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

/// What a successful authorization adds to the response: a new session's cookie, and the
/// known-device cookie for a browser that logged in from an unknown device.
#[derive(Default)]
struct Granted {
    new_session: Option<String>,
    new_device: Option<String>,
}

impl Granted {
    fn set_cookies(&self, state: &AppState, headers: &mut HeaderMap) {
        let cookies = state.cookies();
        let max_age_s = state.auth.sessions_timeout_s();
        let session = self
            .new_session
            .as_ref()
            .and_then(|id| cookies.session(id, max_age_s));
        let device = self.new_device.as_ref().and_then(|t| cookies.device(t));
        for v in [session, device].into_iter().flatten() {
            headers.append(header::SET_COOKIE, v);
        }
    }
}

/// Steps 2-4 of the guard.
async fn authorize(
    state: &Arc<AppState>,
    req: &mut Request,
    ip: IpAddr,
    path: &str,
) -> Result<Granted, AppError> {
    let now = state.auth.now_ms();
    if path.trim_end_matches('/') == "/auth/verify"
        && let Err(wait) = state.verify_allowed(ip, now)
    {
        state.audit.log(None, ip, "rate_limited", path);
        return Err(AppError::too_many(
            wait,
            "too many login attempts; wait a minute",
        ));
    }
    if let Some(token) = bearer_token(req.headers()) {
        return token_login(state, req, token, ip, path).await;
    }
    let cookies = state.cookies();
    let session = cookies.session_id(req.headers());
    check_origin(state, req, session.as_deref(), ip, path)?;
    if !state.require_auth {
        req.extensions_mut().insert(Principal {
            user: "anonymous".into(),
            role: Role::Admin,
        });
        req.extensions_mut().insert(Credential::Open);
        return Ok(Granted::default());
    }
    if let Some(id) = session {
        let auth = state.auth.clone();
        let sid = id.clone();
        let found = tokio::task::spawn_blocking(move || auth.session(&sid))
            .await
            .map_err(AppError::internal)??;
        if let Some(p) = found {
            req.extensions_mut().insert(Credential::Session(id.clone()));
            req.extensions_mut().insert(SessionId(id));
            req.extensions_mut().insert(p);
            return Ok(Granted::default());
        }
    }
    let Some((user, password)) = basic_credentials(req.headers()) else {
        return Err(AppError::unauthorized());
    };
    let device = cookies.device_token(req.headers());
    basic_login(state, req, (user, password), device, ip, path).await
}

/// Step 3: an unsafe method needs a same-origin request or the session's CSRF token.
fn check_origin(
    state: &AppState,
    req: &Request,
    session: Option<&str>,
    ip: IpAddr,
    path: &str,
) -> Result<(), AppError> {
    if is_websocket(req.headers()) {
        return check_websocket_origin(state, req.headers(), ip, path);
    }
    let unsafe_method = !matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS);
    if !unsafe_method || same_origin(req.headers(), state.tls) {
        return Ok(());
    }
    let token_ok = match (session, req.headers().get("x-csrf-token")) {
        (Some(id), Some(t)) => t.to_str().is_ok_and(|t| t == csrf_token(id)),
        _ => false,
    };
    if token_ok {
        return Ok(());
    }
    state.audit.log(None, ip, "csrf_refused", path);
    Err(AppError::forbidden(
        "cross-site request refused (Origin does not match)",
    ))
}

fn is_websocket(headers: &HeaderMap) -> bool {
    headers
        .get(header::UPGRADE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("websocket"))
}

/// A WebSocket upgrade is a GET that a foreign page could open with the user's cookies
/// and then read (browsers apply no same-origin policy to WebSockets), so its `Origin`,
/// which browsers always send, must be ours or one listed in `security.allowed_origins`.
/// A client without one is not a browser and has no cookies to abuse.
fn check_websocket_origin(
    state: &AppState,
    headers: &HeaderMap,
    ip: IpAddr,
    path: &str,
) -> Result<(), AppError> {
    let Some(origin) = headers.get(header::ORIGIN) else {
        return Ok(());
    };
    let listed = origin
        .to_str()
        .is_ok_and(|o| state.allowed_origins.iter().any(|a| a == o));
    if listed || same_origin(headers, state.tls) {
        return Ok(());
    }
    state.audit.log(None, ip, "csrf_refused", path);
    Err(AppError::forbidden(
        "WebSocket from another site refused (Origin does not match)",
    ))
}

/// Step 4 with HTTP Basic: checks the credentials (auth's gate, lockout and cache) and
/// opens a session unless they came from the cache.
async fn basic_login(
    state: &Arc<AppState>,
    req: &mut Request,
    (user, password): (String, String),
    device: Option<String>,
    ip: IpAddr,
    path: &str,
) -> Result<Granted, AppError> {
    let auth = state.auth.clone();
    let u = user.clone();
    // Only the login page's /auth/verify makes a known device (it is how browsers log
    // in): scripts sending Basic with each request never push a browser's device out of
    // its user's 16.
    let opens_session = path == "/auth/verify";
    let result = tokio::task::spawn_blocking(move || {
        let from = Origin {
            ip,
            device_token: device.as_deref(),
        };
        let login = auth
            .login_cached(&u, &password, from)
            .map_err(|e| (e, auth.user_exists(&u)))?;
        let new_device = match opens_session && !login.device_known {
            true => Some(auth.remember_device(&u).map_err(|e| (e, true))?),
            false => None,
        };
        Ok((login, new_device))
    })
    .await
    .map_err(AppError::internal)?;
    let (login, new_device) = match result {
        Ok(done) => done,
        Err((e, known)) => {
            audit_refusal(state, (&user, known), ip, path, &e);
            return Err(e.into());
        }
    };
    let mut granted = Granted {
        new_session: None,
        new_device,
    };
    // Verified from the cache: a client sending Basic each time needs no new session
    // (the login page's /auth/verify always gets one).
    if !login.cached || opens_session {
        let id = state.auth.open_session(&login)?;
        state
            .audit
            .log(Some(&login.principal.user), ip, "login", path);
        req.extensions_mut().insert(Credential::Session(id.clone()));
        req.extensions_mut().insert(SessionId(id.clone()));
        granted.new_session = Some(id);
    } else {
        req.extensions_mut().insert(Credential::Basic {
            user: login.principal.user.clone(),
            stamp: login.stamp,
        });
    }
    req.extensions_mut().insert(login.principal);
    Ok(granted)
}

/// Audits a refused login. A user name that does not exist is not written as typed (it
/// may be a password typed into the wrong field): the audit log hashes it.
fn audit_refusal(
    state: &AppState,
    (user, known): (&str, bool),
    ip: IpAddr,
    path: &str,
    e: &LoginError,
) {
    let event = match e {
        LoginError::Locked { .. } => "locked_out",
        LoginError::Throttled { .. } => "rate_limited",
        LoginError::Refused => "login_failed",
        LoginError::TokenExpired => "token_expired",
        LoginError::Internal(_) => return,
    };
    match known {
        true => state.audit.log(Some(user), ip, event, path),
        false => state.audit.log_unknown_user(user, ip, event, path),
    }
}

/// The request's session id (present once authenticated through a session).
#[derive(Debug, Clone)]
pub struct SessionId(pub String);

fn security_headers(state: &AppState, h: &mut HeaderMap, origin: Option<&str>) {
    let set = |h: &mut HeaderMap, k: header::HeaderName, v: &'static str| {
        h.insert(k, HeaderValue::from_static(v));
    };
    set(
        h,
        header::CONTENT_SECURITY_POLICY,
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' blob: data:; \
         media-src 'self' blob:; connect-src 'self'; object-src 'none'; base-uri 'none'; \
         form-action 'self'; frame-ancestors 'none'",
    );
    set(h, header::X_CONTENT_TYPE_OPTIONS, "nosniff");
    set(h, header::X_FRAME_OPTIONS, "DENY");
    set(h, header::REFERRER_POLICY, "same-origin");
    if !h.contains_key(header::CACHE_CONTROL) {
        set(h, header::CACHE_CONTROL, "no-store");
    }
    if state.tls {
        set(h, header::STRICT_TRANSPORT_SECURITY, "max-age=31536000");
    }
    if let Some(o) = origin
        && state.allowed_origins.iter().any(|a| a == o)
        && let Ok(v) = HeaderValue::from_str(o)
    {
        h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, v);
        set(h, header::ACCESS_CONTROL_ALLOW_CREDENTIALS, "true");
        h.append(header::VARY, HeaderValue::from_static("Origin"));
    }
}
