//! What every camera shares, started once per `run`: the detection model's inference pool,
//! the clip store (key loaded, startup sweep done) and its retention task, the event bus,
//! the audit log, health (the watchdog thread and the `healthcheck` socket), the live map
//! the dashboard reads, notifications (fed by the event bus), off-site copies (fed by the
//! index's upload queue), and the dashboard itself. Each task watches the one shutdown
//! token; the dashboard has a child token of its own so a reload can restart it alone.

use super::RunOptions;
use super::scrub::Scrubber;
use crate::audit::Audit;
use crate::base::systemd::Notifier;
use crate::config::Config;
use crate::detect::InferencePool;
use crate::detect::runner::EventBus;
use crate::health::Health;
use crate::live::Live;
use crate::store::{Store, StoreConfig, retention};
use anyhow::Context;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::time::Duration;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// How often the disk is checked for a retention pass due before its time.
const RETENTION_CHECK: Duration = Duration::from_secs(10);
/// How often retention runs (it also runs at once when a write hits a full disk).
const RETENTION_INTERVAL: Duration = Duration::from_secs(600);

pub struct Services {
    pub store: Store,
    pub pool: Option<Arc<InferencePool>>,
    pub bus: EventBus,
    pub live: Live,
    offsite: Option<crate::offsite::OffsiteHandle>,
    pub health: Arc<Health>,
    pub audit: Arc<Audit>,
    pub notifier: Arc<Notifier>,
    notifications: crate::notify::Notifications,
    shutdown: CancellationToken,
    /// The dashboard's token, its task and the alarm intake thread that runs beside it.
    dashboard: Option<(
        CancellationToken,
        JoinHandle<()>,
        Option<std::thread::JoinHandle<()>>,
    )>,
    threads: Vec<std::thread::JoinHandle<()>>,
    /// Camera management: the dashboard sends changes here; the run loop applies them.
    pub desk: crate::web::cameras_admin::CameraDesk,
    pub camera_changes:
        Option<tokio::sync::mpsc::Receiver<crate::web::cameras_admin::ChangeRequest>>,
    retention: JoinHandle<()>,
    /// The review watcher (app/review.rs).
    review: JoinHandle<()>,
}

impl Services {
    /// The model first (a bad model path stops start-up before anything runs), then the
    /// key and the store, retention, audit and health.
    pub async fn start(config: &Config, shutdown: &CancellationToken) -> anyhow::Result<Self> {
        let (pool, model) = load_model(config)?;
        let key =
            crate::app::store_setup::load_key(config).context("while loading the clip key")?;
        let (store, sweep) = Store::open(StoreConfig::from_config(config), key)
            .context("while opening the clip store")?;
        tracing::info!(
            "clip store {} (key {}): {sweep:?}",
            store.recordings_dir().display(),
            store.key_id()
        );
        for cam in &config.cameras {
            store.ensure_camera(&cam.id, &cam.name)?;
        }
        let audit_log = &config.paths.audit_log;
        let audit = Audit::open(Some(audit_log))
            .with_context(|| format!("cannot open the audit log {}", audit_log.display()))?;
        let watchdog_interval = crate::base::systemd::watchdog_interval();
        let stale =
            crate::health::stale_after(watchdog_interval.unwrap_or(Duration::from_secs(10)));
        let health = Health::new(store.clone(), stale);
        let notifier = Arc::new(Notifier::from_env());
        let mut threads = start_health(config, &health, &notifier, watchdog_interval, shutdown)?;
        let bus = crate::detect::runner::event_bus();
        let clock: crate::base::clock::ClockRef = Arc::new(crate::base::clock::SystemClock);
        if let Some(scrub) = Scrubber::from_config(config, &store, clock.clone(), Some(bus.clone()))
        {
            threads.push(scrub.spawn(shutdown.clone())?);
        }
        let review_bus = crate::store::review::review_bus();
        let watcher = super::review::spawn(
            store.clone(),
            &bus,
            review_bus.clone(),
            clock.clone(),
            shutdown.clone(),
        );
        let mut live = Live::new(Some(bus.clone()), model, Some(health.clone()));
        live.review_bus = Some(review_bus);
        let notifications =
            crate::notify::Notifications::start(config, &store, &live, &bus, shutdown);
        let offsite = crate::offsite::start(config, &store, shutdown);
        // One change at a time is applied; a few more may wait their turn.
        let (changes, camera_changes) = tokio::sync::mpsc::channel(4);
        let desk = crate::web::cameras_admin::CameraDesk {
            changes,
            list: Default::default(),
        };
        Ok(Self {
            desk,
            camera_changes: Some(camera_changes),
            retention: spawn_retention(store.clone(), shutdown.clone()),
            review: watcher,
            store,
            pool,
            bus,
            live,
            offsite,
            health,
            audit: Arc::new(audit),
            notifier,
            notifications,
            shutdown: shutdown.clone(),
            dashboard: None,
            threads,
        })
    }

    /// Starts the dashboard (unless it cannot be served safely, see web::start).
    pub async fn start_dashboard(
        &mut self,
        config: &Config,
        opts: &RunOptions,
    ) -> anyhow::Result<()> {
        let stop = self.shutdown.child_token();
        let server = crate::web::start(
            config,
            &opts.config_file,
            &self.store,
            crate::web::Running {
                live: self.live.clone(),
                notify: Some(self.notifications.state.clone()),
                offsite: self.offsite.clone(),
                desk: Some(self.desk.clone()),
            },
            self.audit.clone(),
            stop.clone(),
        )
        .await
        .context("while starting the dashboard")?;
        let Some(started) = server else {
            return Ok(());
        };
        let shared = crate::alarm::Shared {
            table: started.table,
            auth: started.auth,
            tls: started.tls,
            audit: self.audit.clone(),
        };
        let bus = Some(self.bus.clone());
        let alarms = crate::alarm::start(config, &self.store, bus, shared, stop.clone());
        let alarms = match alarms {
            Ok(thread) => thread,
            Err(e) => {
                stop.cancel();
                let _ = started.task.await;
                return Err(e.context("while starting the alarm receivers"));
            }
        };
        self.dashboard = Some((stop, started.task, alarms));
        Ok(())
    }

    /// Stops the dashboard and starts it again with `config` (after a reload).
    pub async fn restart_dashboard(
        &mut self,
        config: &Config,
        opts: &RunOptions,
    ) -> anyhow::Result<()> {
        if let Some((stop, task, alarms)) = self.dashboard.take() {
            stop.cancel();
            let _ = task.await;
            join_thread(alarms).await;
        }
        self.start_dashboard(config, opts).await
    }

    /// An action of sentrix itself in the audit log (config reloads).
    pub fn audit_local(&self, action: &str, object: &str) {
        self.audit
            .log(None, IpAddr::V4(Ipv4Addr::LOCALHOST), action, object);
    }

    /// After the shutdown token is cancelled: waits for the dashboard and health threads.
    pub async fn stopped(self) {
        if let Some((_, task, alarms)) = self.dashboard {
            let _ = task.await;
            join_thread(alarms).await;
        }
        self.retention.abort();
        let _ = self.review.await;
        self.notifications.stopped().await;
        let threads = self.threads;
        let _ = tokio::task::spawn_blocking(move || {
            for t in threads {
                let _ = t.join();
            }
        })
        .await;
    }
}

/// Waits for a thread (if any) without blocking the runtime.
async fn join_thread(thread: Option<std::thread::JoinHandle<()>>) {
    if let Some(t) = thread {
        let _ = tokio::task::spawn_blocking(move || t.join()).await;
    }
}

/// The configured model in an inference pool, and its name for the system page.
fn load_model(config: &Config) -> anyhow::Result<(Option<Arc<InferencePool>>, Option<String>)> {
    let Some(model) = crate::detect::load_configured_model(config)
        .context("while loading the detection model")?
    else {
        if config.detect.enabled {
            tracing::info!("no detect.model: events come from motion alone (label \"motion\")");
        }
        return Ok((None, None));
    };
    let file = config
        .detect
        .model
        .as_deref()
        .and_then(|p| p.file_name())
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let summary = format!(
        "{file} ({}, {}x{}, {} labels)",
        model.layout.name(),
        model.side,
        model.side,
        model.labels().len()
    );
    tracing::info!(
        "detection model {summary} loaded in {:.0} ms",
        model.load_ms
    );
    let pool = InferencePool::new(model, config.detect.threads as usize);
    Ok((Some(pool), Some(summary)))
}

/// The watchdog thread (under systemd) and the health socket's thread.
fn start_health(
    config: &Config,
    health: &Arc<Health>,
    notifier: &Arc<Notifier>,
    watchdog_interval: Option<Duration>,
    shutdown: &CancellationToken,
) -> anyhow::Result<Vec<std::thread::JoinHandle<()>>> {
    let mut threads = Vec::new();
    if let Some(interval) = watchdog_interval {
        tracing::info!("systemd watchdog every {} ms", interval.as_millis());
        threads.push(crate::health::spawn_watchdog(
            notifier.clone(),
            interval,
            health.clone(),
            shutdown.clone(),
        )?);
    }
    let socket = &config.paths.health_socket;
    threads.push(
        crate::health::serve_socket(socket.clone(), health.clone(), shutdown.clone())
            .with_context(|| format!("while opening the health socket {}", socket.display()))?,
    );
    Ok(threads)
}

/// Retention every 10 minutes until shutdown, and at once whenever a 10-second check finds
/// the disk below `min_free_percent` or the space reserve missing: a small card fills in
/// far less than 10 minutes.
fn spawn_retention(store: Store, shutdown: CancellationToken) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut check = tokio::time::interval(RETENTION_CHECK);
        let mut last_pass: Option<tokio::time::Instant> = None;
        loop {
            tokio::select! {
                _ = check.tick() => {}
                _ = shutdown.cancelled() => return,
            }
            let due = last_pass.is_none_or(|t| t.elapsed() >= RETENTION_INTERVAL);
            let store = store.clone();
            let pass = tokio::task::spawn_blocking(move || {
                if !due && !retention::needs_pass(&store) {
                    return Ok(None);
                }
                retention::enforce(&store, crate::base::clock::wall_ms()).map(Some)
            });
            match pass.await {
                Ok(Ok(None)) => continue,
                Ok(Ok(Some(r))) if r.deleted > 0 => tracing::info!(
                    "retention: deleted {} clips, freed {} bytes",
                    r.deleted,
                    r.freed_bytes
                ),
                Ok(Ok(Some(_))) => {}
                Ok(Err(e)) => tracing::error!("retention failed: {e}"),
                Err(e) => tracing::error!("retention task failed: {e}"),
            }
            last_pass = Some(tokio::time::Instant::now());
        }
    })
}
