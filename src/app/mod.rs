//! `sentrix run`. In order: install the signal handlers; lock the data directory; start the
//! shared services (model, key, store and its sweep, retention, audit, health); start one
//! set of tasks per enabled camera; start the dashboard; tell systemd it is ready; then
//! loop over status ticks and signals until a stop. Everything watches one cancellation
//! token: cancelling it stops the cameras (open clips finished) and the services, with a
//! deadline that a stuck thread cannot block.
//!
//! Signals: SIGINT/SIGTERM stop. SIGUSR1 makes a "manual" event on every camera, as the
//! dashboard's trigger does. SIGHUP (`systemctl reload sentrix`) re-reads the config: a
//! broken one is logged with its file:line and ignored; a valid one that changes only
//! cameras, network or security is applied in place (only changed cameras restart, the
//! dashboard restarts); one that changes storage, recording, detection or notifications stops everything
//! and `run` returns it to be started again. Reloads are audited.

mod cameras;
mod managed;
mod review;
pub mod scrub;
mod services;
pub mod signals;
mod status;
pub mod store_setup;

use crate::config::Config;
use cameras::Cameras;
use services::Services;
use signals::Signals;
use std::path::PathBuf;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// How long stopping waits for a camera (its clip finished) before leaving it behind.
const STOP_DEADLINE: Duration = Duration::from_secs(10);

pub struct RunOptions {
    /// How often each camera's status is logged.
    pub status_interval: Duration,
    /// The config file, re-read on SIGHUP.
    pub config_file: PathBuf,
}

/// Why `run` returned.
pub enum RunEnd {
    /// SIGTERM/SIGINT: the process should exit.
    Stopped,
    /// SIGHUP with a new config that changes what every camera shares: everything was
    /// stopped cleanly (open clips finished) and should start again with it.
    Reload(Box<Config>),
}

pub async fn run(config: Config, opts: RunOptions) -> anyhow::Result<RunEnd> {
    let mut signals = Signals::install()?;
    let _lock = crate::store::DataLock::acquire(&config.paths.data_lock)?;
    crate::ingest::init_gstreamer()?;
    let shutdown = CancellationToken::new();
    let mut services = Services::start(&config, &shutdown).await?;
    // The dashboard's cameras join the file's (the file is never rewritten).
    let config = managed::merge(config, &services.store);
    let started = Cameras::start(&config, &services, &shutdown);
    let mut cameras = match started {
        Ok(c) => c,
        Err(e) => {
            shutdown.cancel();
            services.stopped().await;
            return Err(e);
        }
    };
    let looped = match services.start_dashboard(&config, &opts).await {
        Ok(()) => {
            let status = status::systemd_status(&services.live, &services.store);
            services
                .notifier
                .notify(&format!("READY=1\nSTATUS={status}"));
            main_loop(
                config,
                &opts,
                &mut services,
                &mut cameras,
                &mut signals,
                &shutdown,
            )
            .await
        }
        Err(e) => Err(e),
    };
    shutdown.cancel();
    cameras.stopped(STOP_DEADLINE).await;
    services.stopped().await;
    tracing::info!("stopped");
    looped
}

/// Status ticks, the main heartbeat and the signals, until a stop or a full reload.
async fn main_loop(
    mut config: Config,
    opts: &RunOptions,
    services: &mut Services,
    cameras: &mut Cameras,
    signals: &mut Signals,
    shutdown: &CancellationToken,
) -> anyhow::Result<RunEnd> {
    let mut status_tick = tokio::time::interval(opts.status_interval);
    status_tick.tick().await;
    let mut heartbeat = tokio::time::interval(Duration::from_secs(1));
    let Some(mut changes) = services.camera_changes.take() else {
        anyhow::bail!("the camera change queue was taken twice");
    };
    loop {
        tokio::select! {
            _ = status_tick.tick() => log_status(services),
            _ = heartbeat.tick() => {
                services.health.main().beat();
                #[cfg(feature = "test-faults")]
                crate::faults::main_loop_hook();
            }
            _ = signals.usr1.recv() => manual_events(services).await,
            Some(request) = changes.recv() => {
                managed::apply(request, &mut config, services, cameras, shutdown, STOP_DEADLINE).await;
            }
            _ = signals.hup.recv() => {
                if let Some(new) = reload(&mut config, opts, services, cameras, shutdown).await? {
                    return Ok(RunEnd::Reload(Box::new(new)));
                }
            }
            _ = signals.term.recv() => return Ok(stopping(services, "SIGTERM")),
            _ = signals.int.recv() => return Ok(stopping(services, "SIGINT")),
        }
    }
}

fn stopping(services: &Services, signal: &str) -> RunEnd {
    tracing::info!("{signal}: shutting down");
    services.notifier.notify("STOPPING=1");
    RunEnd::Stopped
}

fn log_status(services: &Services) {
    let line = status::systemd_status(&services.live, &services.store);
    services.notifier.notify(&format!("STATUS={line}"));
    for (_, cam) in services.live.cameras() {
        tracing::info!("{}", status::camera_line(&cam));
    }
}

/// SIGUSR1: a "manual" event (and so a clip) on every running camera.
async fn manual_events(services: &Services) {
    tracing::info!("SIGUSR1: manual trigger on every camera");
    let (live, store) = (services.live.clone(), services.store.clone());
    let made = tokio::task::spawn_blocking(move || {
        for (id, _) in live.cameras() {
            match live.manual_event(&id, &store) {
                Ok(ev) => tracing::info!(camera = %id, "manual event {}", ev.id),
                Err(e) => tracing::error!(camera = %id, "manual event: {e}"),
            }
        }
    })
    .await;
    if let Err(e) = made {
        tracing::error!("manual events: {e}");
    }
}

/// SIGHUP. Returns the new config when everything must restart with it; applies it in
/// place (and returns None) when only cameras, network or security changed; keeps the old
/// one when the new file is broken.
async fn reload(
    config: &mut Config,
    opts: &RunOptions,
    services: &mut Services,
    cameras: &mut Cameras,
    shutdown: &CancellationToken,
) -> anyhow::Result<Option<Config>> {
    let file = opts.config_file.display().to_string();
    let new = match Config::load(&opts.config_file) {
        Ok(new) => managed::merge(new, &services.store),
        Err(e) => {
            tracing::error!(
                "SIGHUP: the new config is not used, sentrix keeps running with the old one: {e}"
            );
            services.audit_local("config_reload_refused", &file);
            return Ok(None);
        }
    };
    tracing::info!("SIGHUP: config {file} read; applying it");
    services.audit_local("config_reload", &file);
    services.notifier.notify("RELOADING=1");
    if !shared_parts_equal(config, &new) {
        tracing::info!(
            "SIGHUP: the new config changes storage, recording, detection or notifications; restarting everything with it"
        );
        return Ok(Some(new));
    }
    for cam in &new.cameras {
        services.store.ensure_camera(&cam.id, &cam.name)?;
    }
    let touched = cameras
        .apply(&new, services, shutdown, STOP_DEADLINE)
        .await?;
    services
        .store
        .set_review_policy(crate::store::ReviewPolicy::from_config(&new.review));
    services.restart_dashboard(&new, opts).await?;
    tracing::info!(
        "SIGHUP: reload applied; cameras restarted: {}; {} running",
        if touched.is_empty() {
            "none".to_string()
        } else {
            touched.join(", ")
        },
        cameras.len()
    );
    *config = new;
    let status = status::systemd_status(&services.live, &services.store);
    services
        .notifier
        .notify(&format!("READY=1\nSTATUS={status}"));
    Ok(None)
}

/// Whether two configs agree on everything the cameras share (the store, recording,
/// detection, notifications and the data paths), so a reload can be applied camera by
/// camera.
fn shared_parts_equal(old: &Config, new: &Config) -> bool {
    let shared = |c: &Config| {
        serde_json::to_value((&c.storage, &c.record, &c.detect)).map_err(|e| e.to_string())
    };
    old.paths == new.paths && shared(old) == shared(new) && old.notify == new.notify
}
