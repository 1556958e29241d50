//! Health: what the systemd watchdog, `sentrix healthcheck`, `/api/health` and the camera
//! tiles judge. Every long-lived thread proves it lives: the main loop, each camera's
//! ingest supervisor, recorder and detector beat a heartbeat at least once a second, and a
//! guard marks a thread's heartbeat ended when it exits (a panic's unwinding included).
//! A part is unhealthy when it has died or its heartbeat is older than `stale_after`; the
//! store is unhealthy when an fsync failure stopped its writing or it does not answer.
//! Each problem names its part ("the recorder of camera front has died"). The watchdog
//! thread sends `WATCHDOG=1` only while there is none, so systemd restarts a process with
//! a dead or stuck part. The same report answers `sentrix healthcheck` over a 0600 Unix
//! socket beside the database.

use crate::base::heartbeat::Heartbeat;
use crate::base::systemd::Notifier;
use crate::ingest::StatusHandle;
use crate::store::Store;
use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// A part counts as stuck after this long without a heartbeat: the watchdog interval, but
/// at least 3 s (every part beats at least once a second) and at most 20 s (a slow
/// pipeline teardown takes a few seconds).
pub fn stale_after(watchdog_interval: Duration) -> Duration {
    watchdog_interval.clamp(Duration::from_secs(3), Duration::from_secs(20))
}

/// The running parts of one camera that health watches.
pub struct CameraParts {
    /// The main stream's supervisor, then the detection sub-stream's if any.
    pub ingest: Vec<StatusHandle>,
    pub recorder: Heartbeat,
    pub detector: Option<Heartbeat>,
}

/// Every part the watchdog, `sentrix healthcheck`, `/api/health` and the camera tiles
/// judge: the main loop, each camera's ingest, recorder and detector, and the store.
pub struct Health {
    main: Heartbeat,
    cameras: RwLock<BTreeMap<String, CameraParts>>,
    store: Store,
    stale_after: Duration,
}

impl Health {
    pub fn new(store: Store, stale_after: Duration) -> Arc<Self> {
        Arc::new(Self {
            main: Heartbeat::default(),
            cameras: RwLock::default(),
            store,
            stale_after,
        })
    }

    /// The main loop's heartbeat.
    pub fn main(&self) -> &Heartbeat {
        &self.main
    }

    pub fn add_camera(&self, id: &str, parts: CameraParts) {
        self.write().insert(id.to_string(), parts);
    }

    /// Forgets a camera before it is stopped on purpose (reload, shutdown).
    pub fn remove_camera(&self, id: &str) {
        self.write().remove(id);
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, BTreeMap<String, CameraParts>> {
        self.cameras.write().unwrap_or_else(|p| p.into_inner())
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, BTreeMap<String, CameraParts>> {
        self.cameras.read().unwrap_or_else(|p| p.into_inner())
    }

    /// What is wrong with camera `id`'s parts, by name, or None.
    pub fn camera_problem(&self, id: &str) -> Option<String> {
        let cameras = self.read();
        Self::parts_problem(
            id,
            cameras.get(id)?,
            crate::base::clock::monotonic_ms(),
            self.stale_after,
        )
    }

    fn parts_problem(id: &str, p: &CameraParts, now: u64, stale: Duration) -> Option<String> {
        for ingest in &p.ingest {
            if let Some(v) = ingest.heartbeat().verdict(now, stale) {
                return Some(format!(
                    "the ingest supervisor of camera {} {v}",
                    ingest.id()
                ));
            }
        }
        if let Some(v) = p.recorder.verdict(now, stale) {
            return Some(format!("the recorder of camera {id} {v}"));
        }
        let v = p.detector.as_ref()?.verdict(now, stale)?;
        Some(format!("the detector of camera {id} {v}"))
    }

    /// Every problem, each naming its part; empty when healthy.
    pub fn problems(&self) -> Vec<String> {
        self.judge().0
    }

    /// `{"status":"ok"|"unhealthy","reason":…,"problems":[…],"cameras":[{id,state,problem}]}`.
    pub fn report(&self) -> serde_json::Value {
        let (problems, cameras) = self.judge();
        serde_json::json!({
            "status": if problems.is_empty() { "ok" } else { "unhealthy" },
            "reason": problems.first(),
            "problems": problems,
            "cameras": cameras,
        })
    }

    /// One pass over every part: the problems, and each camera's state and problem.
    fn judge(&self) -> (Vec<String>, Vec<serde_json::Value>) {
        let now = crate::base::clock::monotonic_ms();
        let mut problems = Vec::new();
        if let Some(v) = self.main.verdict(now, self.stale_after) {
            problems.push(format!("the main loop {v}"));
        }
        let mut cameras = Vec::new();
        for (id, parts) in self.read().iter() {
            let problem = Self::parts_problem(id, parts, now, self.stale_after);
            let state = parts
                .ingest
                .first()
                .map_or("stopped", |s| s.state().as_str());
            cameras.push(serde_json::json!({"id": id, "state": state, "problem": problem}));
            problems.extend(problem);
        }
        if let Some(why) = self.store.writing_stopped() {
            problems.push(format!("the clip store has stopped writing: {why}"));
        }
        if let Err(e) = self.store.ping() {
            problems.push(format!("the clip store does not answer: {e}"));
        }
        (problems, cameras)
    }
}

/// Feeds systemd's watchdog from its own thread, every half interval, while `health` has
/// no problem; ends when `stop` is cancelled.
pub fn spawn_watchdog(
    notifier: Arc<Notifier>,
    interval: Duration,
    health: Arc<Health>,
    stop: CancellationToken,
) -> std::io::Result<std::thread::JoinHandle<()>> {
    std::thread::Builder::new()
        .name("watchdog".into())
        .spawn(move || {
            let period = (interval / 2).max(Duration::from_millis(100));
            let mut was_healthy = true;
            while !stop.is_cancelled() {
                let problems = health.problems();
                if problems.is_empty() {
                    notifier.notify("WATCHDOG=1");
                    if !was_healthy {
                        tracing::info!("health restored; feeding the watchdog again");
                    }
                } else if was_healthy {
                    tracing::error!(
                        "unhealthy: {}; withholding the watchdog so systemd restarts sentrix",
                        problems.join("; ")
                    );
                }
                was_healthy = problems.is_empty();
                std::thread::sleep(period);
            }
        })
}

/// Answers every connection on a Unix socket at `path` (0600) with `report`, until `stop`.
/// The thread blocks in accept(2) (no polling: an idle box costs nothing here); at `stop` a
/// task on the current tokio runtime shuts the listening socket down, which wakes it even
/// when the socket's file was removed by hand. Must be called inside a runtime.
pub fn serve_socket(
    path: std::path::PathBuf,
    health: Arc<Health>,
    stop: CancellationToken,
) -> std::io::Result<std::thread::JoinHandle<()>> {
    use std::io::Write;
    use std::os::unix::fs::PermissionsExt;
    let runtime = tokio::runtime::Handle::try_current().map_err(std::io::Error::other)?;
    // A socket left by a crashed instance would make bind fail.
    if std::os::unix::net::UnixStream::connect(&path).is_err() {
        let _ = std::fs::remove_file(&path);
    }
    let listener = std::os::unix::net::UnixListener::bind(&path)?;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))?;
    let waker = listener.try_clone()?;
    let thread = std::thread::Builder::new()
        .name("health-socket".into())
        .spawn({
            let stop = stop.clone();
            move || {
                for conn in listener.incoming() {
                    if stop.is_cancelled() {
                        break;
                    }
                    match conn {
                        Ok(mut stream) => {
                            let _ = writeln!(stream, "{}", health.report());
                        }
                        Err(e) => {
                            tracing::warn!("health socket: {e}");
                            std::thread::sleep(Duration::from_millis(500));
                        }
                    }
                }
                let _ = std::fs::remove_file(&path);
            }
        })?;
    runtime.spawn(async move {
        use std::os::fd::AsRawFd;
        stop.cancelled().await;
        // SAFETY: `waker` owns this descriptor (a dup of the listener's) for the call;
        // shutdown(2) touches no memory. accept(2) then fails with EINVAL.
        unsafe { libc::shutdown(waker.as_raw_fd(), libc::SHUT_RDWR) };
    });
    Ok(thread)
}

/// `sentrix healthcheck`: asks the running instance; Ok(report) if healthy.
pub fn query(paths: &crate::config::Paths) -> Result<String, String> {
    use std::io::Read;
    let path = &paths.health_socket;
    let mut stream = std::os::unix::net::UnixStream::connect(path).map_err(|e| {
        format!(
            "sentrix is not running for this config (no answer on {}: {e})",
            path.display()
        )
    })?;
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .map_err(|e| e.to_string())?;
    let mut text = String::new();
    stream
        .read_to_string(&mut text)
        .map_err(|e| format!("no answer from {}: {e}", path.display()))?;
    let text = text.trim().to_string();
    let healthy = serde_json::from_str::<serde_json::Value>(&text)
        .ok()
        .is_some_and(|v| v["status"] == "ok");
    if healthy { Ok(text) } else { Err(text) }
}
