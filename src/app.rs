//! `sentrix run`: opens the clip store (loading the key, sweeping what a crash left) and
//! runs retention every 10 minutes; starts the built-in demo camera server if a camera asks
//! for it, one ingest supervisor and one recorder per enabled camera, and the status log.
//! SIGUSR1 is the manual trigger (every camera records a "manual" clip with pre- and
//! post-roll). SIGINT or SIGTERM stops it all: pipelines to NULL, open clips finished,
//! threads joined. SIGHUP (`systemctl reload sentrix`) re-reads the config: a valid one
//! stops everything the same way and `run` returns it to be started again; a broken one is
//! logged with its file:line and ignored. Both are audited. Detection and the dashboard
//! attach to the outputs started here.

use crate::config::Config;
use crate::detect::{DetectorRunner, DetectorSettings, InferencePool};
use crate::health::HealthInputs;
use crate::ingest::demo::{DemoSpec, Mount, RtspServer};
use crate::ingest::pipeline::{DecodeSpec, Source};
use crate::ingest::{CameraSupervisor, SupervisorConfig};
use crate::record::recorder::RecordSettings;
use crate::record::runner::RecorderRunner;
use crate::redact::CameraUrl;
use crate::store::{Store, StoreConfig, keys, retention};
use crate::systemd::Notifier;
use anyhow::Context;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;
use tokio::signal::unix::{SignalKind, signal};

/// How often retention runs (it also runs at once when a write hits a full disk).
const RETENTION_INTERVAL: Duration = Duration::from_secs(600);

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
    /// SIGHUP with a valid new config: everything was stopped cleanly (open clips
    /// finished) and should start again with it.
    Reload(Box<Config>),
}

pub async fn run(config: Config, opts: RunOptions) -> anyhow::Result<RunEnd> {
    crate::ingest::init_gstreamer()?;
    if !config.network.bind.is_loopback() {
        tracing::warn!(
            "network.bind is {}: the dashboard will be reachable from the network (TLS and auth stay on)",
            config.network.bind
        );
    }
    // The model first: a bad model path stops start-up before anything else runs.
    let mut model_summary = None;
    let pool = crate::detect::load_configured_model(&config)
        .context("while loading the detection model")?
        .map(|model| {
            let name = config
                .detect
                .model
                .as_deref()
                .and_then(|p| p.file_name())
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            let summary = format!(
                "{name} ({}, {}x{}, {} labels)",
                model.layout.name(),
                model.side,
                model.side,
                model.labels().len()
            );
            tracing::info!(
                "detection model {summary} loaded in {:.0} ms",
                model.load_ms
            );
            model_summary = Some(summary);
            InferencePool::new(model, config.detect.threads as usize)
        });
    if config.detect.enabled && pool.is_none() {
        tracing::info!("no detect.model: events come from motion alone (label \"motion\")");
    }
    let key = keys::load(&config).context("while loading the clip key")?;
    let (store, sweep) = Store::open(StoreConfig::from_config(&config), key)
        .context("while opening the clip store")?;
    tracing::info!(
        "clip store {} (key {}): {sweep:?}",
        store.recordings_dir().display(),
        store.key_id()
    );
    for cam in &config.cameras {
        store.ensure_camera(&cam.id, &cam.name)?;
    }
    let retention_task = {
        let store = store.clone();
        tokio::spawn(async move {
            let mut every = tokio::time::interval(RETENTION_INTERVAL);
            loop {
                every.tick().await;
                let store = store.clone();
                match tokio::task::spawn_blocking(move || {
                    retention::enforce(&store, crate::store::now_ms())
                })
                .await
                {
                    Ok(Ok(r)) if r.deleted > 0 => tracing::info!(
                        "retention: deleted {} clips, freed {} bytes",
                        r.deleted,
                        r.freed_bytes
                    ),
                    Ok(Ok(_)) => {}
                    Ok(Err(e)) => tracing::error!("retention failed: {e}"),
                    Err(e) => tracing::error!("retention task failed: {e}"),
                }
            }
        })
    };
    let demo = start_demo_server(&config)?;
    let bus = crate::detect::runner::event_bus();
    let mut supervisors = Vec::new();
    let mut detect_supervisors = Vec::new();
    let mut recorders = Vec::new();
    let mut detectors = Vec::new();
    let mut live_cameras = std::collections::HashMap::new();
    let record_settings = RecordSettings::from_config(&config.record);
    let decode = config.detect.enabled.then_some(DecodeSpec {
        width: config.detect.input_size,
        height: 0, // keep the camera's aspect ratio
        fps: config.detect.fps,
    });
    for cam in config.enabled_cameras() {
        let url = demo_or(&demo, cam, &cam.url)?;
        let mut sc = SupervisorConfig::new(&cam.id, Source::Rtsp(url));
        sc.stall_timeout = Duration::from_secs_f64(cam.stall_timeout);
        sc.decoder = cam.decoder.clone();
        // With a sub-stream, detection decodes that instead of the main stream.
        sc.decode = decode.filter(|_| cam.detect_url.is_none());
        tracing::info!(camera = %cam.id, url = %cam.url, "starting ingest");
        let (supervisor, outputs) = CameraSupervisor::spawn(sc.clone())
            .with_context(|| format!("while starting camera {}", cam.id))?;
        let frames = match (&cam.detect_url, decode) {
            (Some(sub), Some(spec)) => {
                let mut dc = sc;
                dc.camera_id = format!("{}-detect", cam.id);
                dc.source = Source::Rtsp(demo_or(&demo, cam, sub)?);
                dc.decode = Some(spec);
                tracing::info!(camera = %cam.id, url = %sub, "starting the detection sub-stream");
                let (sub_supervisor, sub_outputs) =
                    CameraSupervisor::spawn(dc).with_context(|| {
                        format!("while starting the sub-stream of camera {}", cam.id)
                    })?;
                // Only its decoded frames are used; drain its access units.
                let mut units = sub_outputs.units;
                tokio::spawn(async move { while units.recv().await.is_some() {} });
                detect_supervisors.push(sub_supervisor);
                sub_outputs.frames
            }
            _ => outputs.frames,
        };
        let runner = RecorderRunner::spawn(
            &cam.id,
            record_settings.clone(),
            store.clone(),
            outputs.units,
            frames.clone(),
        )
        .with_context(|| format!("while starting the recorder of camera {}", cam.id))?;
        let mut live_camera = crate::web::live::LiveCamera {
            status: supervisor.status().clone(),
            trigger: runner.trigger_handle(),
            frames: frames.clone(),
            detector: None,
        };
        if config.detect.enabled {
            let detector = DetectorRunner::spawn(
                DetectorSettings::from_config(&config, cam),
                pool.clone(),
                frames,
                store.clone(),
                runner.trigger_handle(),
                bus.clone(),
            )
            .with_context(|| format!("while starting the detector of camera {}", cam.id))?;
            live_camera.detector = Some(detector.counters().clone());
            detectors.push((cam.id.clone(), detector));
        }
        live_cameras.insert(cam.id.clone(), live_camera);
        recorders.push(runner);
        supervisors.push(supervisor);
    }
    if supervisors.is_empty() {
        tracing::warn!("no enabled cameras in the config; nothing to ingest");
    }

    let (web_stop, web_stop_rx) = tokio::sync::watch::channel(false);
    let live = crate::web::live::Live {
        cameras: live_cameras,
        bus: Some(bus.clone()),
        model: model_summary,
    };
    let audit_path = crate::web::audit::path_for(&config);
    let audit = Arc::new(
        crate::web::audit::Audit::open(Some(&audit_path))
            .with_context(|| format!("cannot open the audit log {}", audit_path.display()))?,
    );
    let web = start_dashboard(
        &config,
        &opts.config_file,
        &store,
        live,
        audit.clone(),
        web_stop_rx,
    )
    .await
    .context("while starting the dashboard")?;

    let mut ticker = tokio::time::interval(opts.status_interval);
    ticker.tick().await;
    let mut usr1 =
        signal(SignalKind::user_defined1()).context("while installing the SIGUSR1 handler")?;
    // Test-only fault hook: with SENTRIX_TEST_FAULTS=1, SIGUSR2 freezes the main loop so
    // tests can see the watchdog withheld.
    let faults = std::env::var("SENTRIX_TEST_FAULTS").is_ok_and(|v| v == "1");
    let mut usr2 =
        signal(SignalKind::user_defined2()).context("while installing the SIGUSR2 handler")?;
    let mut hup = signal(SignalKind::hangup()).context("while installing the SIGHUP handler")?;
    let mut reload = None;
    let shutdown = shutdown_signal();
    tokio::pin!(shutdown);

    // systemd: ready now that every camera's ingest and recorder run; a watchdog thread
    // feeds WATCHDOG=1 only while the main loop, the supervisors and the store are healthy.
    let notifier = Arc::new(Notifier::from_env());
    let main_heartbeat_ms = Arc::new(AtomicU64::new(crate::clock::monotonic_ms()));
    let watchdog_stop = Arc::new(AtomicBool::new(false));
    let watchdog_interval = crate::systemd::watchdog_interval();
    let inputs = Arc::new(HealthInputs {
        main_heartbeat_ms: main_heartbeat_ms.clone(),
        cameras: supervisors.iter().map(|s| s.status().clone()).collect(),
        store: store.clone(),
        stale_after: crate::health::stale_after(
            watchdog_interval.unwrap_or(Duration::from_secs(10)),
        ),
    });
    let watchdog = match watchdog_interval {
        Some(interval) => {
            tracing::info!("systemd watchdog every {} ms", interval.as_millis());
            Some(crate::health::spawn_watchdog(
                notifier.clone(),
                interval,
                inputs.clone(),
                watchdog_stop.clone(),
            )?)
        }
        None => None,
    };
    let health_socket = crate::health::serve_socket(
        crate::health::socket_path(&config),
        inputs,
        watchdog_stop.clone(),
    )
    .context("while opening the health socket")?;
    notifier.notify(&format!(
        "READY=1\nSTATUS={}",
        status_line(&supervisors, &recorders, &store)
    ));
    let mut heartbeat = tokio::time::interval(Duration::from_secs(1));
    loop {
        tokio::select! {
            _ = ticker.tick() => {
                notifier.notify(&format!("STATUS={}", status_line(&supervisors, &recorders, &store)));
                for (s, r) in supervisors.iter().zip(&recorders) {
                    let rs = r.status();
                    let detect = detectors
                        .iter()
                        .find(|(id, _)| id == s.status().id())
                        .map(|(_, d)| {
                            let st = d.counters().stats();
                            format!(
                                " detect_fps={:.1} infer_ms={:.1} gated={:.0}% events={}",
                                st.effective_fps, st.mean_infer_ms, st.gated_share * 100.0, st.events
                            )
                        })
                        .unwrap_or_default();
                    tracing::info!(
                        "{} recording={} clips={} ring={:.1}MB/{:.1}s{detect}{}",
                        s.status().snapshot().summary(),
                        rs.recording,
                        rs.clips,
                        rs.ring_bytes as f64 / 1e6,
                        rs.ring_span_s,
                        rs.last_error.map(|e| format!(" record_error=\"{e}\"")).unwrap_or_default()
                    );
                }
            }
            _ = heartbeat.tick() => {
                main_heartbeat_ms.store(crate::clock::monotonic_ms(), Ordering::Relaxed);
            }
            _ = usr2.recv() => {
                if faults {
                    tracing::warn!("SIGUSR2 with SENTRIX_TEST_FAULTS=1: freezing the main loop (test fault)");
                    std::thread::sleep(Duration::from_secs(24 * 3600));
                }
            }
            _ = usr1.recv() => {
                tracing::info!("SIGUSR1: manual trigger on every camera");
                for r in &recorders {
                    r.trigger("manual");
                }
            }
            _ = hup.recv() => {
                let local = std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST);
                let file = opts.config_file.display().to_string();
                match Config::load(&opts.config_file) {
                    Ok(new) => {
                        tracing::info!("SIGHUP: config {file} reloaded; restarting cameras, recorders and the dashboard with it");
                        audit.log(None, local, "config_reload", &file);
                        notifier.notify("RELOADING=1");
                        reload = Some(Box::new(new));
                        break;
                    }
                    Err(e) => {
                        tracing::error!("SIGHUP: the new config is not used, sentrix keeps running with the old one: {e}");
                        audit.log(None, local, "config_reload_refused", &file);
                    }
                }
            }
            signal = &mut shutdown => {
                tracing::info!("{signal}: shutting down");
                notifier.notify("STOPPING=1");
                break;
            }
        }
    }
    let _ = web_stop.send(true);
    if let Some(w) = web {
        let _ = w.await;
    }
    watchdog_stop.store(true, Ordering::Relaxed);
    if let Some(w) = watchdog {
        let _ = w.join();
    }
    let _ = health_socket.join();
    tokio::task::spawn_blocking(move || {
        for s in supervisors.into_iter().chain(detect_supervisors) {
            s.stop();
        }
        // Ingest has stopped: each detector ends its open events, then each recorder
        // finishes its open clip.
        for (_, d) in detectors {
            d.join();
        }
        for r in recorders {
            r.join();
        }
        if let Some(server) = demo {
            server.stop();
        }
    })
    .await
    .context("while stopping pipelines")?;
    retention_task.abort();
    tracing::info!("stopped");
    Ok(match reload {
        Some(config) => RunEnd::Reload(config),
        None => RunEnd::Stopped,
    })
}

/// Starts the HTTPS dashboard unless it cannot be served safely: with auth on and no user
/// yet, it stays off and says exactly how to add one (there is no default password).
async fn start_dashboard(
    config: &Config,
    config_file: &std::path::Path,
    store: &Store,
    live: crate::web::live::Live,
    audit: Arc<crate::web::audit::Audit>,
    mut stop: tokio::sync::watch::Receiver<bool>,
) -> anyhow::Result<Option<tokio::task::JoinHandle<()>>> {
    let sec = &config.security;
    if sec.require_auth && store.users()?.is_empty() {
        tracing::warn!(
            "the dashboard is off: there is no user yet. Run `sentrix init --config {0}` (prints a generated admin password once) or `sentrix user add NAME --role admin --config {0}`",
            config_file.display()
        );
        return Ok(None);
    }
    if !sec.require_auth {
        tracing::warn!(
            "security.require_auth is false: anyone who reaches the dashboard can use it"
        );
    }
    let tls = if sec.use_tls {
        let files = crate::web::tls::ensure(config)?;
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
        Some(files.server)
    } else {
        tracing::warn!("security.use_tls is false: passwords and video cross the network in clear");
        None
    };
    let auth = Arc::new(crate::auth::Authenticator::new(
        store.clone(),
        crate::auth::Policy::from_config(sec),
        Arc::new(crate::store::now_ms),
    ));
    let cameras = config
        .cameras
        .iter()
        .map(|c| crate::web::CameraInfo {
            id: c.id.clone(),
            name: c.name.clone(),
            url: c.url.redacted(),
            enabled: c.enabled,
        })
        .collect();
    let state = Arc::new(
        crate::web::AppState::new(
            store.clone(),
            auth,
            audit,
            cameras,
            sec.use_tls,
            sec.require_auth,
            sec.allowed_origins.clone(),
        )?
        .with_live(live),
    );
    let addr = std::net::SocketAddr::new(config.network.bind, config.network.api_port);
    let listener = std::net::TcpListener::bind(addr)
        .with_context(|| format!("cannot listen on {addr} (network.bind, network.api_port)"))?;
    listener.set_nonblocking(true)?;
    let bound = listener.local_addr()?;
    tracing::info!(
        "dashboard on {}://{bound}/",
        if tls.is_some() { "https" } else { "http" }
    );
    let app = crate::web::router(state);
    Ok(Some(tokio::spawn(async move {
        let shutdown = async move {
            let _ = stop.wait_for(|s| *s).await;
        };
        if let Err(e) = crate::web::serve(app, listener, tls, shutdown).await {
            tracing::error!("dashboard stopped: {e}");
        }
    })))
}

/// The URL to ingest: a `demo://` URL is served by the built-in server at `/<camera id>`.
fn demo_or(
    demo: &Option<RtspServer>,
    cam: &crate::config::Camera,
    url: &CameraUrl,
) -> anyhow::Result<CameraUrl> {
    match (demo, url.scheme()) {
        (Some(server), "demo") => CameraUrl::parse(&server.url(&format!("/{}", cam.id)))
            .map_err(|e| anyhow::anyhow!("demo camera URL: {e}")),
        _ => Ok(url.clone()),
    }
}

/// Serves every enabled `demo://` camera at `/<camera id>` on one loopback RTSP server.
fn start_demo_server(config: &Config) -> anyhow::Result<Option<RtspServer>> {
    let mut mounts = Vec::new();
    for cam in config
        .enabled_cameras()
        .filter(|c| c.url.scheme() == "demo")
    {
        let spec =
            DemoSpec::from_url(&cam.url).map_err(|e| anyhow::anyhow!("camera {}: {e}", cam.id))?;
        mounts.push(Mount::new(&format!("/{}", cam.id), spec.launch_line()));
    }
    if mounts.is_empty() {
        return Ok(None);
    }
    let server = RtspServer::start(0, &mounts).context("while starting the demo camera server")?;
    tracing::info!(
        "demo camera server on rtsp://127.0.0.1:{} ({} camera(s))",
        server.port(),
        mounts.len()
    );
    Ok(Some(server))
}

/// "2/2 cameras streaming, 5 clips recorded, 12.3 GB free" for systemd's STATUS=.
fn status_line(
    supervisors: &[CameraSupervisor],
    recorders: &[RecorderRunner],
    store: &Store,
) -> String {
    let streaming = supervisors
        .iter()
        .filter(|s| s.status().state() == crate::ingest::CameraState::Streaming)
        .count();
    let clips: u64 = recorders.iter().map(|r| r.status().clips).sum();
    let free_gb = retention::fs_space(store.recordings_dir())
        .map(|(_, free)| free as f64 / 1e9)
        .unwrap_or(0.0);
    format!(
        "{streaming}/{} cameras streaming, {clips} clips recorded, {free_gb:.1} GB free",
        supervisors.len()
    )
}

async fn shutdown_signal() -> &'static str {
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        // Without signal handlers we can only wait for Ctrl-C through tokio's fallback.
        let _ = tokio::signal::ctrl_c().await;
        return "interrupt";
    };
    tokio::select! {
        _ = term.recv() => "SIGTERM",
        _ = int.recv() => "SIGINT",
    }
}
