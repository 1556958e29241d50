//! The status lines of a running instance, formatted in this one place: one log line per
//! camera every `status_interval`, and systemd's one-line `STATUS=`.

use crate::live::{Live, LiveCamera};
use crate::store::{Store, retention};

/// "demo: streaming 15.0 fps … recording=false clips=3 ring=1.2MB/4.0s detect_fps=…".
pub fn camera_line(cam: &LiveCamera) -> String {
    let rs = cam.recorder_status();
    let detect = cam
        .detector_stats()
        .map(|st| {
            format!(
                " detect_fps={:.1} infer_ms={:.1} gated={:.0}% events={}",
                st.effective_fps,
                st.mean_infer_ms,
                st.gated_share * 100.0,
                st.events
            )
        })
        .unwrap_or_default();
    let error = rs
        .last_error
        .map(|e| format!(" record_error=\"{e}\""))
        .unwrap_or_default();
    format!(
        "{} recording={} clips={} ring={:.1}MB/{:.1}s{detect}{error}",
        cam.status().snapshot().summary(),
        rs.recording,
        rs.clips,
        rs.ring_bytes as f64 / 1e6,
        rs.ring_span_s,
    )
}

/// "2/2 cameras streaming, 5 clips recorded, 12.3 GB free" for systemd's STATUS=.
pub fn systemd_status(live: &Live, store: &Store) -> String {
    let cameras = live.cameras();
    let streaming = cameras
        .iter()
        .filter(|(_, c)| c.status().state() == crate::ingest::CameraState::Streaming)
        .count();
    let clips: u64 = cameras.iter().map(|(_, c)| c.recorder_status().clips).sum();
    let free_gb = retention::fs_space(store.recordings_dir())
        .map(|(_, free)| free as f64 / 1e9)
        .unwrap_or(0.0);
    format!(
        "{streaming}/{} cameras streaming, {clips} clips recorded, {free_gb:.1} GB free",
        cameras.len()
    )
}
