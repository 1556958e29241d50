//! `/metrics`: Prometheus text exposition of the cameras (fps, bitrate, reconnects,
//! streaming, detector timings), the store (bytes, clips) and the guard (lockouts, locked
//! addresses, password checks, dashboard connections, open descriptors) and the
//! notification targets (sent, failed, rejected, expired).

use super::AppState;
use super::error::AppError;
use crate::live::{Live, LiveCamera};
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use std::fmt::Write;
use std::sync::Arc;

/// Locked addresses listed at most.
const LOCKED_ADDRESSES_LISTED: usize = 32;

/// The exposition being written: one gauge after another.
#[derive(Default)]
struct Gauges(String);

impl Gauges {
    fn add(&mut self, name: &str, help: &str, rows: Vec<(String, f64)>) {
        let _ = writeln!(self.0, "# HELP {name} {help}\n# TYPE {name} gauge");
        for (labels, v) in rows {
            let _ = writeln!(self.0, "{name}{labels} {v}");
        }
    }

    fn one(&mut self, name: &str, help: &str, value: f64) {
        self.add(name, help, vec![(String::new(), value)]);
    }
}

/// What /metrics reads from the index.
struct Indexed {
    clips: i64,
    bytes: i64,
    lockouts: i64,
    locked_addresses: Vec<(String, i64)>,
    damaged_files: u64,
}

pub async fn metrics(State(s): State<Arc<AppState>>) -> Result<Response, AppError> {
    let store = s.store.clone();
    let now = s.auth.now_ms();
    let indexed = tokio::task::spawn_blocking(move || {
        let (clips, bytes) = store.totals()?;
        Ok::<_, crate::store::StoreError>(Indexed {
            clips,
            bytes,
            lockouts: store.active_lockouts(now)?,
            locked_addresses: store.locked_addresses(now, LOCKED_ADDRESSES_LISTED)?,
            damaged_files: store.damaged_file_count()?,
        })
    })
    .await
    .map_err(AppError::internal)??;
    let mut g = Gauges::default();
    camera_gauges(&mut g, &s.live);
    g.one(
        "sentrix_storage_bytes",
        "Bytes of sealed clips, thumbnails and snapshots on disk.",
        indexed.bytes as f64,
    );
    g.one("sentrix_clips", "Clips in the index.", indexed.clips as f64);
    guard_gauges(&mut g, &s, &indexed, now);
    notify_gauges(&mut g, s.notify.as_deref());
    offsite_gauges(&mut g, s.offsite.as_ref());
    scrub_gauges(&mut g, &s.store, indexed.damaged_files);
    Ok(([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], g.0).into_response())
}

fn scrub_gauges(g: &mut Gauges, store: &crate::store::Store, damaged_files: u64) {
    let t = store.scrub_totals();
    g.one(
        "sentrix_damaged_files",
        "Damaged sealed files found (start-up check, scrub, playback), in the index.",
        damaged_files as f64,
    );
    g.one(
        "sentrix_scrub_read_bytes_total",
        "Sealed bytes the integrity scrub authenticated since start.",
        t.bytes as f64,
    );
    g.one(
        "sentrix_scrub_files_total",
        "Files the integrity scrub authenticated since start.",
        t.files as f64,
    );
    g.one(
        "sentrix_scrub_damaged_total",
        "Damaged files the integrity scrub found since start.",
        t.damaged as f64,
    );
    g.one(
        "sentrix_scrub_passes_total",
        "Complete integrity scrub passes since start.",
        t.passes as f64,
    );
    g.one(
        "sentrix_scrub_last_pass_seconds",
        "How long the last complete scrub pass took.",
        t.last_pass_ms as f64 / 1000.0,
    );
}

fn camera_gauges(g: &mut Gauges, live: &Live) {
    let cameras = live.cameras();
    let per = |f: &dyn Fn(&LiveCamera) -> Option<f64>| -> Vec<(String, f64)> {
        cameras
            .iter()
            .filter_map(|(id, c)| f(c).map(|v| (format!("{{camera=\"{id}\"}}"), v)))
            .collect()
    };
    let streaming = |c: &LiveCamera| c.status().state() == crate::ingest::CameraState::Streaming;
    g.add(
        "sentrix_camera_fps",
        "Access units per second.",
        per(&|c| Some(c.status().snapshot().fps)),
    );
    g.add(
        "sentrix_camera_kbit_s",
        "Stream bitrate in kbit/s.",
        per(&|c| Some(c.status().snapshot().kbit_s)),
    );
    g.add(
        "sentrix_camera_frames",
        "Access units received since the camera started (a restart of the camera starts it again).",
        per(&|c| Some(c.status().snapshot().frames as f64)),
    );
    g.add(
        "sentrix_camera_reconnects",
        "Reconnects since start.",
        per(&|c| Some(c.status().snapshot().reconnects as f64)),
    );
    g.add(
        "sentrix_camera_streaming",
        "1 while the camera streams.",
        per(&|c| Some(f64::from(u8::from(streaming(c))))),
    );
    g.add(
        "sentrix_detector_infer_ms",
        "Mean inference time in ms.",
        per(&|c| c.detector_stats().map(|d| d.mean_infer_ms)),
    );
    g.add(
        "sentrix_detector_fps",
        "Model runs per second.",
        per(&|c| c.detector_stats().map(|d| d.effective_fps)),
    );
    g.add(
        "sentrix_detector_gated_ratio",
        "Share of frames the motion gate kept from the model.",
        per(&|c| c.detector_stats().map(|d| d.gated_share)),
    );
    live_gauges(g, &cameras);
}

/// Live fMP4 viewers per camera stream, and the time from a picture's arrival from the
/// camera to its fragment being written to a viewer's socket.
fn live_gauges(g: &mut Gauges, cameras: &[(String, LiveCamera)]) {
    let feeds: Vec<(String, &str, &crate::media::feed::LiveFeed)> = cameras
        .iter()
        .flat_map(|(id, c)| {
            let f = c.feeds();
            let sub = f.sub.as_deref().map(|s| (id.clone(), "sub", s));
            std::iter::once((id.clone(), "main", &*f.main)).chain(sub)
        })
        .collect();
    let label = |id: &str, stream: &str| format!("{{camera=\"{id}\",stream=\"{stream}\"");
    g.add(
        "sentrix_live_viewers",
        "Live fMP4 viewers.",
        feeds
            .iter()
            .map(|(id, st, f)| (label(id, st) + "}", f.viewers() as f64))
            .collect(),
    );
    let mut latency = Vec::new();
    for (id, st, f) in &feeds {
        if let Some((median_ms, p99_ms)) = f.latency_ms() {
            latency.push((label(id, st) + ",quantile=\"0.5\"}", median_ms / 1000.0));
            latency.push((label(id, st) + ",quantile=\"0.99\"}", p99_ms / 1000.0));
        }
    }
    g.add(
        "sentrix_live_latency_seconds",
        "From a picture's arrival to its fragment written to a viewer's socket (recent).",
        latency,
    );
}

fn guard_gauges(g: &mut Gauges, s: &AppState, indexed: &Indexed, now_ms: i64) {
    g.one(
        "sentrix_lockouts",
        "User names, addresses and devices locked now.",
        indexed.lockouts as f64,
    );
    let locked = indexed.locked_addresses.iter().map(|(addr, until)| {
        let label = format!(
            "{{address=\"{}\"}}",
            crate::base::logging::bounded(addr, 64)
        );
        (label, ((until - now_ms).max(0) / 1000) as f64)
    });
    g.add(
        "sentrix_locked_address_seconds",
        "Seconds left of each locked client address's lockout (the latest 32).",
        locked.collect(),
    );
    g.one(
        "sentrix_password_checks_total",
        "PBKDF2 password checks run since start (real and dummy).",
        s.auth.password_checks() as f64,
    );
    let conns = s.connections.stats();
    g.one(
        "sentrix_http_connections",
        "Dashboard connections open now.",
        conns.open as f64,
    );
    g.one(
        "sentrix_http_connections_refused",
        "Dashboard connections refused (caps) since start.",
        conns.refused as f64,
    );
    g.one(
        "sentrix_http_connections_evicted",
        "Idle dashboard connections closed to admit others since start.",
        conns.evicted as f64,
    );
    g.one(
        "sentrix_open_fds",
        "File descriptors open in the process.",
        crate::base::fds::open_count() as f64,
    );
}

/// Messages each notification target has sent, failed and let expire since start.
fn notify_gauges(g: &mut Gauges, notify: Option<&crate::notify::NotifyState>) {
    let Some(state) = notify else {
        return;
    };
    use std::sync::atomic::Ordering::Relaxed;
    let per = |f: &dyn Fn(&crate::notify::TargetStatus) -> u64| -> Vec<(String, f64)> {
        state
            .targets
            .iter()
            .map(|t| {
                (
                    format!("{{target=\"{}\",type=\"{}\"}}", t.name, t.kind),
                    f(t) as f64,
                )
            })
            .collect()
    };
    g.add(
        "sentrix_notify_sent_total",
        "Messages delivered since start.",
        per(&|t| t.sent.load(Relaxed)),
    );
    g.add(
        "sentrix_notify_failed_total",
        "Failed delivery attempts since start.",
        per(&|t| t.failed.load(Relaxed)),
    );
    g.add(
        "sentrix_notify_rejected_total",
        "Messages the target refused for good (a 4xx, a refused certificate), not retried.",
        per(&|t| t.rejected.load(Relaxed)),
    );
    g.add(
        "sentrix_notify_expired_total",
        "Messages given up undelivered (older than notify.max_age_hours) since start.",
        per(&|t| t.expired.load(Relaxed)),
    );
}

/// Clips copied to the off-site bucket and failed attempts since start, and body bytes sent.
fn offsite_gauges(g: &mut Gauges, offsite: Option<&crate::offsite::OffsiteHandle>) {
    let Some(h) = offsite else {
        return;
    };
    use std::sync::atomic::Ordering::Relaxed;
    let one = |v: u64| vec![(String::new(), v as f64)];
    g.add(
        "sentrix_offsite_uploaded_total",
        "Clips copied to the off-site bucket and verified since start.",
        one(h.status.uploaded_total.load(Relaxed)),
    );
    g.add(
        "sentrix_offsite_failed_total",
        "Failed off-site upload attempts since start.",
        one(h.status.failed_total.load(Relaxed)),
    );
    g.add(
        "sentrix_offsite_sent_bytes_total",
        "Upload body bytes sent to the off-site bucket since start.",
        one(h
            .throttle
            .as_ref()
            .map_or(0, |t| t.sent_bytes.load(Relaxed))),
    );
}
