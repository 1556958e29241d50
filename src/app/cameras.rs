//! One camera, one set of tasks: `CameraTasks::start` builds everything a camera runs —
//! its demo server (for `demo://` URLs), the ingest supervisor, the optional detection
//! sub-stream, the recorder and the detector — registers it with health and the live map,
//! and ties it to a cancellation token. Cancelling the token (the whole program's shutdown
//! or a reload of this camera) stops it in data-flow order: ingest first, so the detector
//! ends its open events and the recorder finishes its open clip as their inputs close.
//! `Cameras` holds them by id and applies a reload camera by camera.

use super::services::Services;
use crate::base::redact::CameraUrl;
use crate::config::{Camera, Config};
use crate::detect::{DetectorRunner, DetectorSettings};
use crate::health::CameraParts;
use crate::ingest::demo::{DemoSpec, Mount, RtspServer};
use crate::ingest::pipeline::{DecodeSpec, Source};
use crate::ingest::{CameraSupervisor, IngestOutputs, SupervisorConfig};
use crate::live::{LiveCamera, LiveFeeds};
use crate::media::feed::LiveFeed;
use crate::record::recorder::RecordSettings;
use crate::record::runner::RecorderRunner;
use anyhow::Context;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// The running parts of one camera, owned by its stop task.
struct Parts {
    demo: Option<RtspServer>,
    ingest: CameraSupervisor,
    sub_ingest: Option<CameraSupervisor>,
    recorder: RecorderRunner,
    detector: Option<DetectorRunner>,
}

impl Parts {
    /// Stops in data-flow order (blocking): pipelines to NULL, then the detector ends its
    /// events and the recorder finishes its clip as their inputs close.
    fn stop(self) {
        self.ingest.stop();
        if let Some(sub) = self.sub_ingest {
            sub.stop();
        }
        if let Some(d) = self.detector {
            d.join();
        }
        self.recorder.join();
        if let Some(server) = self.demo {
            server.stop();
        }
        // Its pipelines, rings and frames are freed now: hand the pages back (memory.rs).
        crate::base::memory::release_free();
    }
}

/// One running camera: the config it was started from, its token and its stop task.
pub struct CameraTasks {
    pub camera: Camera,
    /// Its detector's zones and masks, replaced in place (None without detection).
    areas: Option<Arc<tokio::sync::watch::Sender<crate::detect::runner::Areas>>>,
    stop: CancellationToken,
    stopped: JoinHandle<()>,
}

impl CameraTasks {
    /// Starts camera `cam` under `shutdown` (a child token: cancelling either stops it).
    pub fn start(
        cam: &Camera,
        config: &Config,
        services: &Services,
        shutdown: &CancellationToken,
    ) -> anyhow::Result<Self> {
        let parts = start_parts(cam, config, services)
            .with_context(|| format!("while starting camera {}", cam.id))?;
        services.health.add_camera(
            &cam.id,
            CameraParts {
                ingest: std::iter::once(&parts.ingest)
                    .chain(&parts.sub_ingest)
                    .map(|s| s.status().clone())
                    .collect(),
                recorder: parts.recorder.heartbeat().clone(),
                detector: parts.detector.as_ref().map(|d| d.heartbeat().clone()),
            },
        );
        let areas = parts.detector.as_ref().map(|d| d.areas());
        let stop = shutdown.child_token();
        let (token, id) = (stop.clone(), cam.id.clone());
        let (health, live) = (services.health.clone(), services.live.clone());
        let stopped = tokio::spawn(async move {
            token.cancelled().await;
            // Stopping on purpose: not a failure for health, and no longer shown.
            health.remove_camera(&id);
            live.remove(&id);
            if let Err(e) = tokio::task::spawn_blocking(move || parts.stop()).await {
                tracing::error!(camera = %id, "stopping the camera failed: {e}");
            }
        });
        Ok(Self {
            camera: cam.clone(),
            areas,
            stop,
            stopped,
        })
    }

    /// Stops this camera and waits for it, at most `deadline`.
    pub async fn stop(self, deadline: Duration) {
        self.stop.cancel();
        wait_stopped(&self.camera.id, self.stopped, deadline).await;
    }
}

async fn wait_stopped(id: &str, stopped: JoinHandle<()>, deadline: Duration) {
    if tokio::time::timeout(deadline, stopped).await.is_err() {
        tracing::error!(
            camera = %id,
            "did not stop within {} s (a stuck thread); leaving it behind",
            deadline.as_secs()
        );
    }
}

/// Demo server, ingest (and sub-stream), recorder and detector of one camera, with its
/// live view registered.
fn start_parts(cam: &Camera, config: &Config, services: &Services) -> anyhow::Result<Parts> {
    let url = cam
        .url
        .as_ref()
        .ok_or_else(|| anyhow::anyhow!("an alarm-only camera has nothing to ingest"))?;
    let demo = start_demo_server(cam, url)?;
    let decode = config.detect.enabled.then_some(DecodeSpec {
        width: config.detect.input_size,
        height: 0, // keep the camera's aspect ratio
        fps: config.detect.fps,
    });
    let mut sc = SupervisorConfig::new(&cam.id, Source::Rtsp(demo_or(&demo, cam, url)?));
    sc.stall_timeout = Duration::from_secs_f64(cam.stall_timeout);
    sc.decoder = cam.decoder.clone();
    sc.rtsp_client = cam.rtsp_client;
    sc.transport = cam.transport;
    // With a sub-stream, detection decodes that instead of the main stream.
    sc.decode = decode.filter(|_| cam.detect_url.is_none());
    let main_feed = Arc::new(LiveFeed::default());
    sc.live = Some(main_feed.clone());
    tracing::info!(camera = %cam.id, url = %url, "starting ingest");
    let (ingest, outputs) = CameraSupervisor::spawn(sc.clone())?;
    let (sub_ingest, frames, sub_feed) = match (&cam.detect_url, decode) {
        (Some(sub), Some(spec)) => {
            let mut dc = sc;
            dc.camera_id = format!("{}-detect", cam.id);
            dc.source = Source::Rtsp(demo_or(&demo, cam, sub)?);
            dc.decode = Some(spec);
            let sub_feed = Arc::new(LiveFeed::default());
            dc.live = Some(sub_feed.clone());
            tracing::info!(camera = %cam.id, url = %sub, "starting the detection sub-stream");
            let (sub, sub_outputs) = CameraSupervisor::spawn(dc)?;
            (Some(sub), drain_units(sub_outputs), Some(sub_feed))
        }
        _ => (None, outputs.frames.clone(), None),
    };
    let recorder = RecorderRunner::spawn(
        &cam.id,
        RecordSettings::from_config(&config.record, config.record_mode(cam)),
        services.store.clone(),
        outputs.units,
        frames.clone(),
    )?;
    let detector = match config.detect.enabled {
        true => Some(DetectorRunner::spawn(
            DetectorSettings::from_config(config, cam),
            services.pool.clone(),
            frames.clone(),
            services.store.clone(),
            recorder.trigger_handle(),
            services.bus.clone(),
        )?),
        false => None,
    };
    let live = LiveCamera::new(
        ingest.status().clone(),
        &recorder,
        frames,
        detector.as_ref().map(|d| d.counters().clone()),
        LiveFeeds {
            main: main_feed,
            sub: sub_feed,
        },
    );
    services.live.insert(&cam.id, live);
    Ok(Parts {
        demo,
        ingest,
        sub_ingest,
        recorder,
        detector,
    })
}

/// Only a sub-stream's decoded frames are used: its access units are drained.
fn drain_units(
    outputs: IngestOutputs,
) -> tokio::sync::watch::Receiver<Option<std::sync::Arc<crate::ingest::Frame>>> {
    let mut units = outputs.units;
    tokio::spawn(async move { while units.recv().await.is_some() {} });
    outputs.frames
}

/// The built-in synthetic camera of a `demo://` URL, on its own loopback RTSP server.
fn start_demo_server(cam: &Camera, url: &CameraUrl) -> anyhow::Result<Option<RtspServer>> {
    if url.scheme() != "demo" {
        return Ok(None);
    }
    let spec = DemoSpec::from_url(url).map_err(|e| anyhow::anyhow!("{e}"))?;
    let mut mount = Mount::new(&format!("/{}", cam.id), spec.launch_line());
    mount.move_rest_s = (spec.rest_s > 0).then_some((spec.move_s, spec.rest_s));
    let server = RtspServer::start(0, &[mount]).context("while starting the demo camera")?;
    tracing::info!(camera = %cam.id, "demo camera on rtsp://127.0.0.1:{}", server.port());
    Ok(Some(server))
}

/// The URL to ingest: a `demo://` URL is served by the camera's demo server.
/// The URL ingest reads: the demo server's for `demo://`, else the camera's own with
/// `cameras[].password` filled in (read now, so a rotated file takes effect on restart).
fn demo_or(demo: &Option<RtspServer>, cam: &Camera, url: &CameraUrl) -> anyhow::Result<CameraUrl> {
    match (demo, url.scheme(), &cam.password) {
        (Some(server), "demo", _) => CameraUrl::parse(&server.url(&format!("/{}", cam.id)))
            .map_err(|e| anyhow::anyhow!("demo camera URL: {e}")),
        (_, _, Some(secret)) => {
            let password = secret
                .reveal()
                .map_err(|e| anyhow::anyhow!("cameras[{}].password: {e}", cam.id))?;
            url.with_password(&password)
                .map_err(|e| anyhow::anyhow!("cameras[{}].password: {e}", cam.id))
        }
        _ => Ok(url.clone()),
    }
}

/// The running cameras by id.
#[derive(Default)]
pub struct Cameras(BTreeMap<String, CameraTasks>);

impl Cameras {
    /// Starts every enabled camera of `config`.
    pub fn start(
        config: &Config,
        services: &Services,
        shutdown: &CancellationToken,
    ) -> anyhow::Result<Self> {
        let mut cameras = Self::default();
        for cam in config.streaming_cameras() {
            match CameraTasks::start(cam, config, services, shutdown) {
                Ok(tasks) => {
                    cameras.0.insert(cam.id.clone(), tasks);
                }
                // A dashboard camera that cannot start must not keep the box from
                // recording the others: it is left out, and can be changed or removed.
                Err(e) if cam.managed => tracing::error!(
                    camera = %cam.id,
                    "dashboard camera not started: {e:#}; change or remove it in the dashboard"
                ),
                Err(e) => return Err(e),
            }
        }
        if cameras.0.is_empty() {
            tracing::warn!("no enabled cameras that stream in the config; nothing to ingest");
        }
        Ok(cameras)
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Applies a reloaded config camera by camera: a camera whose entry is unchanged keeps
    /// running (its stream, counters and pre-roll untouched); a changed one restarts; a
    /// removed or disabled one stops; a new one starts. Returns the ids it touched.
    pub async fn apply(
        &mut self,
        new: &Config,
        services: &Services,
        shutdown: &CancellationToken,
        deadline: Duration,
    ) -> anyhow::Result<Vec<String>> {
        let wanted: BTreeMap<&str, &Camera> = new
            .streaming_cameras()
            .map(|c| (c.id.as_str(), c))
            .collect();
        let stale: Vec<String> = self
            .0
            .iter()
            .filter(|(id, t)| {
                wanted
                    .get(id.as_str())
                    .is_none_or(|w| !same_but_areas(w, &t.camera))
            })
            .map(|(id, _)| id.clone())
            .collect();
        for id in &stale {
            if let Some(tasks) = self.0.remove(id) {
                tracing::info!(camera = %id, "reload: stopping the camera");
                tasks.stop(deadline).await;
            }
        }
        self.set_areas(&wanted);
        let mut touched = stale;
        for (id, cam) in wanted {
            if !self.0.contains_key(id) {
                tracing::info!(camera = %id, "reload: starting the camera");
                let tasks = CameraTasks::start(cam, new, services, shutdown)?;
                self.0.insert(id.to_string(), tasks);
                if !touched.iter().any(|t| t == id) {
                    touched.push(id.to_string());
                }
            }
        }
        Ok(touched)
    }

    /// Hands changed zones and masks to running detectors, which take them at their next
    /// frame: nothing restarts.
    fn set_areas(&mut self, wanted: &BTreeMap<&str, &Camera>) {
        for (id, tasks) in self.0.iter_mut() {
            let Some(cam) = wanted.get(id.as_str()) else {
                continue;
            };
            if (&cam.zones, &cam.masks) == (&tasks.camera.zones, &tasks.camera.masks) {
                continue;
            }
            if let Some(areas) = &tasks.areas {
                areas.send_replace((cam.zones.clone(), cam.masks.clone()));
            }
            tracing::info!(camera = %id, "reload: new zones and masks, without a restart");
            tasks.camera = (*cam).clone();
        }
    }

    /// Waits, at most `deadline` in all, for every camera to stop once the shutdown token
    /// is cancelled.
    pub async fn stopped(self, deadline: Duration) {
        let waits = self
            .0
            .into_iter()
            .map(|(id, t)| async move { wait_stopped(&id, t.stopped, deadline).await });
        futures_util::future::join_all(waits).await;
    }
}

/// Whether two entries differ at most in zones and masks (which a running detector takes
/// without a restart).
fn same_but_areas(a: &Camera, b: &Camera) -> bool {
    let bare = |c: &Camera| {
        let mut c = c.clone();
        c.zones.clear();
        c.masks.clear();
        c
    };
    bare(a) == bare(b)
}
