//! Starting the dashboard: refuses to serve without a user when auth is on (there is no
//! default password), loads or generates the certificate, binds `network.bind`:`api_port`,
//! and serves the router (web/listen.rs: rustls, hyper, connection caps and timeouts)
//! until its token is cancelled.

use super::conn::{ConnTable, Limits};
use super::listen::serve;
use super::{AppState, CameraInfo, router};
use crate::config::Config;
use crate::store::Store;
use anyhow::Context;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// Starts the HTTPS dashboard unless it cannot be served safely: with auth on and no user
/// yet, it stays off and says exactly how to add one (there is no default password).
pub async fn start(
    config: &Config,
    config_file: &std::path::Path,
    store: &Store,
    running: super::Running,
    audit: Arc<crate::audit::Audit>,
    stop: CancellationToken,
) -> anyhow::Result<Option<Started>> {
    if !may_serve(config, config_file, store)? {
        return Ok(None);
    }
    let tls = tls_config(config)?;
    let table = ConnTable::new(limits(config, crate::base::fds::raise_soft_limit()));
    let state = Arc::new(
        app_state(config, store, audit)?
            .with_running(running)
            .with_connections(table.clone()),
    );
    let addr = std::net::SocketAddr::new(config.network.bind, config.network.api_port);
    let listener = std::net::TcpListener::bind(addr)
        .with_context(|| format!("cannot listen on {addr} (network.bind, network.api_port)"))?;
    listener.set_nonblocking(true)?;
    let bound = listener.local_addr()?;
    let scheme = if tls.is_some() { "https" } else { "http" };
    tracing::info!("dashboard on {scheme}://{bound}/");
    spawn_token_use_writer(state.auth.clone(), stop.clone());
    let auth = state.auth.clone();
    let app = router(state);
    let (serve_tls, serve_table) = (tls.clone(), table.clone());
    let task = tokio::spawn(async move {
        if let Err(e) = serve(app, listener, serve_tls, serve_table, stop).await {
            tracing::error!("dashboard stopped: {e}");
        }
    });
    Ok(Some(Started {
        task,
        table,
        auth,
        tls,
    }))
}

/// A running dashboard: its task, and what other listeners on the box share with it (the
/// connection table, the login gate and the certificate).
pub struct Started {
    pub task: tokio::task::JoinHandle<()>,
    pub table: Arc<ConnTable>,
    pub auth: Arc<crate::auth::Authenticator>,
    pub tls: Option<Arc<rustls::ServerConfig>>,
}

/// Writes API token use counts each second (auth/tokens.rs counts them in memory) until
/// the dashboard stops, and once more then.
fn spawn_token_use_writer(auth: Arc<crate::auth::Authenticator>, stop: CancellationToken) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(std::time::Duration::from_secs(1));
        loop {
            let stopping = tokio::select! {
                _ = tick.tick() => false,
                _ = stop.cancelled() => true,
            };
            let a = auth.clone();
            let _ = tokio::task::spawn_blocking(move || a.flush_token_uses()).await;
            if stopping {
                return;
            }
        }
    });
}

/// Whether the dashboard may start (a user exists, or auth is off), warning about every
/// setting that weakens it.
fn may_serve(
    config: &Config,
    config_file: &std::path::Path,
    store: &Store,
) -> anyhow::Result<bool> {
    if !config.network.bind.is_loopback() {
        tracing::warn!(
            "network.bind is {}: the dashboard will be reachable from the network (TLS and auth stay on)",
            config.network.bind
        );
    }
    let sec = &config.security;
    if sec.require_auth && store.users()?.is_empty() {
        tracing::warn!(
            "the dashboard is off: there is no user yet. Run `sentrix init --config {0}` (prints a generated admin password once) or `sentrix user add NAME --role admin --config {0}`",
            config_file.display()
        );
        return Ok(false);
    }
    if !sec.require_auth {
        tracing::warn!(
            "security.require_auth is false: anyone who reaches the dashboard can use it"
        );
    }
    Ok(true)
}

/// The certificate pair (generated on first use) as a rustls config, or None without TLS.
fn tls_config(config: &Config) -> anyhow::Result<Option<Arc<rustls::ServerConfig>>> {
    if !config.security.use_tls {
        tracing::warn!("security.use_tls is false: passwords and video cross the network in clear");
        return Ok(None);
    }
    let files = crate::tls::ensure(config)?;
    if files.generated {
        tracing::info!(
            "generated a self-signed certificate {}",
            files.cert.display()
        );
    }
    tracing::info!(
        "dashboard certificate SHA-256 fingerprint {}",
        files.fingerprint
    );
    Ok(Some(files.server))
}

/// The handlers' shared state: the store, the authenticator, the audit log, the cameras as
/// listed (URLs redacted) and the security settings.
fn app_state(
    config: &Config,
    store: &Store,
    audit: Arc<crate::audit::Audit>,
) -> anyhow::Result<AppState> {
    let sec = &config.security;
    let auth = Arc::new(crate::auth::Authenticator::new(
        store.clone(),
        crate::auth::Policy::from_config(sec),
        crate::base::clock::system(),
    ));
    let cameras = camera_infos(config, store);
    Ok(AppState::new(
        store.clone(),
        auth,
        audit,
        cameras,
        sec.use_tls,
        sec.require_auth,
        sec.allowed_origins.clone(),
    )?)
}

/// The cameras of `config` as the API lists them.
pub fn camera_infos(config: &Config, store: &Store) -> Vec<CameraInfo> {
    config
        .cameras
        .iter()
        .map(|c| CameraInfo {
            id: c.id.clone(),
            name: c.name.clone(),
            url: c.url.as_ref().map(|u| u.redacted()).unwrap_or_default(),
            enabled: c.enabled,
            alarm_only: c.url.is_none(),
            alarm_address: crate::config::alarms::smtp_address(c, |id| {
                store.keyed_tag(crate::config::alarms::ADDRESS_TAG_PURPOSE, id, 8)
            }),
            source: if c.managed { "dashboard" } else { "yaml" },
            password: (c.password.is_some() || c.url.as_ref().is_some_and(|u| u.has_password()))
                .then_some(super::cameras_admin::MASK),
            zones: c.zones.clone(),
            masks: c.masks.clone(),
        })
        .collect()
}

/// The connection limits for `config`: its `network` settings, within the descriptor budget
/// left by the store and the cameras (fds.rs).
pub fn limits(config: &Config, nofile: u64) -> Limits {
    let n = &config.network;
    let enabled = config.cameras.iter().filter(|c| c.enabled).count();
    let budget = crate::base::fds::web_connection_budget(nofile, enabled);
    if budget < n.max_connections {
        tracing::info!(
            "dashboard connections capped at {budget} (not network.max_connections = {}): \
             the descriptor limit is {nofile} and recording keeps its reserve",
            n.max_connections
        );
    }
    let max_total = n.max_connections.min(budget);
    Limits {
        max_total,
        max_per_address: n.max_connections_per_address.min(max_total),
        header_timeout: Duration::from_secs(n.header_timeout),
        idle_timeout: Duration::from_secs(n.idle_timeout),
        ..Limits::default()
    }
}
