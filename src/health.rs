//! The health loop behind systemd's watchdog: every half watchdog interval it checks that
//! the main loop still ticks (its heartbeat is fresh), that every camera supervisor still
//! runs its loop (their heartbeats), and that the store answers a query; only then does it
//! send `WATCHDOG=1`. A deadlock anywhere in those parts starves the watchdog and systemd
//! restarts the service. A check that blocks (a stuck store lock) blocks the loop too,
//! which is the same verdict. The same checks answer `sentrix healthcheck` over a Unix
//! socket beside the database (for Docker-style and monitoring use).

use crate::ingest::StatusHandle;
use crate::store::Store;
use crate::systemd::Notifier;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::time::Duration;

/// A supervisor or the main loop counts as stuck after this long without a heartbeat: the
/// watchdog interval, but at least 3 s (the main loop beats every second, supervisors every
/// 0.5 s) and at most 20 s (a slow pipeline teardown takes a few seconds).
pub fn stale_after(watchdog_interval: Duration) -> Duration {
    watchdog_interval.clamp(Duration::from_secs(3), Duration::from_secs(20))
}

pub struct HealthInputs {
    /// `crate::clock::monotonic_ms` of the main loop's last tick.
    pub main_heartbeat_ms: Arc<AtomicU64>,
    pub cameras: Vec<StatusHandle>,
    pub store: Store,
    pub stale_after: Duration,
}

/// Why the process is unhealthy, or None.
pub fn check(inputs: &HealthInputs) -> Option<String> {
    let now = crate::clock::monotonic_ms();
    let stale = |ms: u64| now.saturating_sub(ms) > inputs.stale_after.as_millis() as u64;
    if stale(inputs.main_heartbeat_ms.load(Relaxed)) {
        return Some("the main loop has stopped ticking".into());
    }
    for cam in &inputs.cameras {
        if stale(cam.heartbeat_ms()) {
            return Some(format!(
                "the ingest supervisor of camera {} has stopped",
                cam.id()
            ));
        }
    }
    if let Err(e) = inputs.store.ping() {
        return Some(format!("the clip store does not answer: {e}"));
    }
    None
}

/// Runs the watchdog loop on its own thread until `stop` is set.
pub fn spawn_watchdog(
    notifier: Arc<Notifier>,
    interval: Duration,
    inputs: Arc<HealthInputs>,
    stop: Arc<AtomicBool>,
) -> std::io::Result<std::thread::JoinHandle<()>> {
    std::thread::Builder::new().name("watchdog".into()).spawn(move || {
        let period = (interval / 2).max(Duration::from_millis(100));
        let mut was_healthy = true;
        while !stop.load(Relaxed) {
            match check(&inputs) {
                None => {
                    notifier.notify("WATCHDOG=1");
                    if !was_healthy {
                        tracing::info!("health restored; feeding the watchdog again");
                    }
                    was_healthy = true;
                }
                Some(why) => {
                    if was_healthy {
                        tracing::error!("unhealthy: {why}; withholding the watchdog so systemd restarts sentrix");
                    }
                    was_healthy = false;
                }
            }
            std::thread::sleep(period);
        }
    })
}

/// The health socket of the instance a config describes: beside its database.
pub fn socket_path(config: &crate::config::Config) -> std::path::PathBuf {
    let db = config.resolve(&config.storage.database);
    db.parent()
        .unwrap_or(std::path::Path::new("."))
        .join("sentrix.sock")
}

/// One JSON line describing health: `{"status":"ok"|"unhealthy","reason":…,"cameras":[…]}`.
pub fn report(inputs: &HealthInputs) -> String {
    let problem = check(inputs);
    let cameras: Vec<serde_json::Value> = inputs
        .cameras
        .iter()
        .map(|c| serde_json::json!({"id": c.id(), "state": c.state().as_str()}))
        .collect();
    serde_json::json!({
        "status": if problem.is_none() { "ok" } else { "unhealthy" },
        "reason": problem,
        "cameras": cameras,
    })
    .to_string()
}

/// Answers every connection on a Unix socket at `path` (0600) with `report`, until `stop`.
pub fn serve_socket(
    path: std::path::PathBuf,
    inputs: Arc<HealthInputs>,
    stop: Arc<AtomicBool>,
) -> std::io::Result<std::thread::JoinHandle<()>> {
    use std::io::Write;
    use std::os::unix::fs::PermissionsExt;
    // A socket left by a crashed instance would make bind fail.
    if std::os::unix::net::UnixStream::connect(&path).is_err() {
        let _ = std::fs::remove_file(&path);
    }
    let listener = std::os::unix::net::UnixListener::bind(&path)?;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))?;
    listener.set_nonblocking(true)?;
    std::thread::Builder::new()
        .name("health-socket".into())
        .spawn(move || {
            while !stop.load(Relaxed) {
                match listener.accept() {
                    Ok((mut stream, _)) => {
                        let _ = stream.set_nonblocking(false);
                        let _ = writeln!(stream, "{}", report(&inputs));
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                        std::thread::sleep(Duration::from_millis(100))
                    }
                    Err(e) => {
                        tracing::warn!("health socket: {e}");
                        std::thread::sleep(Duration::from_millis(500));
                    }
                }
            }
            let _ = std::fs::remove_file(&path);
        })
}

/// `sentrix healthcheck`: asks the running instance; Ok(report) if healthy.
pub fn query(config: &crate::config::Config) -> Result<String, String> {
    use std::io::Read;
    let path = socket_path(config);
    let mut stream = std::os::unix::net::UnixStream::connect(&path).map_err(|e| {
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
