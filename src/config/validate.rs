//! Checks made after parsing: ranges, unique and URL-safe camera ids, URL schemes, paths
//! that must be writable or readable, and the rule that a non-loopback bind keeps TLS and
//! auth on. Each problem is returned with the key path it belongs to; `config.rs` turns the
//! path into a line and column.

use super::Config;
use crate::base::redact::CameraUrl;
use std::collections::HashMap;
use std::path::Path;

type Problems = Vec<(String, String)>;

pub fn check(c: &Config) -> Problems {
    let mut p = Problems::new();
    check_network_security(c, &mut p);
    check_record(c, &mut p);
    check_detect(c, &mut p);
    check_storage(c, &mut p);
    check_cameras(c, &mut p);
    super::notify::check(c, &mut p);
    super::review::check(c, &mut p);
    super::alarms::check(c, &mut p);
    p
}

fn range(p: &mut Problems, key: &str, value: f64, min: f64, max: f64, unit: &str) {
    if !value.is_finite() || value < min || value > max {
        p.push((
            key.into(),
            format!("{value} is out of range: must be {min}..={max}{unit}"),
        ));
    }
}

/// `network`: the port, the connection caps and the timeouts.
fn check_network(c: &Config, p: &mut Problems) {
    if c.network.api_port == 0 {
        p.push((
            "network.api_port".into(),
            "must be a port number 1..=65535".into(),
        ));
    }
    let n = &c.network;
    range(
        p,
        "network.max_connections",
        n.max_connections as f64,
        4.0,
        65536.0,
        "",
    );
    let per_address = n.max_connections_per_address as f64;
    range(
        p,
        "network.max_connections_per_address",
        per_address,
        1.0,
        n.max_connections as f64,
        "",
    );
    range(
        p,
        "network.header_timeout",
        n.header_timeout as f64,
        1.0,
        300.0,
        " s",
    );
    range(
        p,
        "network.idle_timeout",
        n.idle_timeout as f64,
        5.0,
        3600.0,
        " s",
    );
}

fn check_network_security(c: &Config, p: &mut Problems) {
    check_network(c, p);
    let s = &c.security;
    if !c.network.bind.is_loopback() {
        if !s.use_tls {
            p.push((
                "security.use_tls".into(),
                format!(
                    "must be true when network.bind is {} (not loopback)",
                    c.network.bind
                ),
            ));
        }
        if !s.require_auth {
            p.push((
                "security.require_auth".into(),
                format!(
                    "must be true when network.bind is {} (not loopback)",
                    c.network.bind
                ),
            ));
        }
    }
    range(
        p,
        "security.session_timeout",
        s.session_timeout as f64,
        60.0,
        30.0 * 86400.0,
        " s",
    );
    range(
        p,
        "security.max_login_attempts",
        s.max_login_attempts as f64,
        1.0,
        100.0,
        "",
    );
    range(
        p,
        "security.lockout_duration",
        s.lockout_duration as f64,
        1.0,
        7.0 * 86400.0,
        " s",
    );
    for (i, origin) in s.allowed_origins.iter().enumerate() {
        let key = format!("security.allowed_origins[{i}]");
        match url::Url::parse(origin) {
            Ok(u) if matches!(u.scheme(), "http" | "https") && u.path() == "/" => {}
            _ if origin == "*" => p.push((
                key,
                "\"*\" is not allowed with credentials; list origins".into(),
            )),
            _ => p.push((
                key,
                format!("{origin:?} is not an origin like https://host:port"),
            )),
        }
    }
    if s.use_tls {
        for (key, path) in [
            ("security.tls_key", &s.tls_key),
            ("security.tls_cert", &s.tls_cert),
        ] {
            // Missing files are generated on first run, so their directory must be writable.
            let path = path.clone();
            if !path.exists() {
                if let Err(e) = writable_dir(path.parent().unwrap_or(Path::new("."))) {
                    p.push((
                        key.into(),
                        format!(
                            "{} does not exist and cannot be created: {e}",
                            path.display()
                        ),
                    ));
                }
            } else if let Err(e) = readable_file(&path) {
                p.push((key.into(), e));
            }
        }
    }
}

fn check_record(c: &Config, p: &mut Problems) {
    let r = &c.record;
    range(
        p,
        "record.pre_detection_buffer",
        r.pre_detection_buffer,
        0.0,
        300.0,
        " s",
    );
    range(
        p,
        "record.post_detection_buffer",
        r.post_detection_buffer,
        0.0,
        3600.0,
        " s",
    );
    range(p, "record.min_confidence", r.min_confidence, 0.0, 1.0, "");
    range(
        p,
        "record.max_clip_length",
        r.max_clip_length,
        5.0,
        86400.0,
        " s",
    );
    range(
        p,
        "record.segment_seconds",
        r.segment_seconds,
        10.0,
        600.0,
        " s",
    );
}

fn check_detect(c: &Config, p: &mut Problems) {
    let d = &c.detect;
    range(p, "detect.confidence", d.confidence, 0.0, 1.0, "");
    range(p, "detect.fps", d.fps as f64, 1.0, 30.0, " fps");
    range(p, "detect.threads", d.threads as f64, 1.0, 16.0, "");
    if !d.input_size.is_multiple_of(32) || !(96..=1280).contains(&d.input_size) {
        p.push((
            "detect.input_size".into(),
            format!("{} must be a multiple of 32 in 96..=1280", d.input_size),
        ));
    }
    if let Some(model) = &d.model
        && let Err(e) = readable_file(model)
    {
        p.push(("detect.model".into(), e));
    }
    if let Some(labels) = &d.labels_file
        && let Err(e) = readable_file(labels)
    {
        p.push(("detect.labels_file".into(), e));
    }
    for (i, label) in d.labels.iter().enumerate() {
        if label.trim().is_empty() {
            p.push((format!("detect.labels[{i}]"), "must not be empty".into()));
        }
    }
    for (label, score) in &d.min_score {
        range(
            p,
            &format!("detect.min_score.{label}"),
            *score,
            0.0,
            1.0,
            "",
        );
    }
    range(p, "detect.event_gap", d.event_gap, 0.5, 600.0, " s");
    range(p, "detect.dedup_window", d.dedup_window, 0.0, 3600.0, " s");
    let m = &d.motion;
    range(
        p,
        "detect.motion.threshold",
        m.threshold as f64,
        1.0,
        254.0,
        "",
    );
    range(p, "detect.motion.min_area", m.min_area, 0.0, 1.0, "");
    range(
        p,
        "detect.motion.forced_interval",
        m.forced_interval,
        0.0,
        3600.0,
        " s",
    );
    if d.model.is_none() && !m.enabled && d.enabled {
        p.push((
            "detect.motion.enabled".into(),
            "with no detect.model, motion is the only trigger: it cannot be off (set detect.enabled: false instead)".into(),
        ));
    }
}

/// Zones and masks: at least 3 corners, each inside the picture (0..=1).
fn check_areas(p: &mut Problems, key: &str, areas: &[crate::config::Area]) {
    for (i, area) in areas.iter().enumerate() {
        let at = format!("{key}[{i}].points");
        if area.points.len() < 3 {
            p.push((
                at.clone(),
                format!(
                    "a polygon needs at least 3 points, not {}",
                    area.points.len()
                ),
            ));
        }
        for (j, [x, y]) in area.points.iter().enumerate() {
            if !(0.0..=1.0).contains(x) || !(0.0..=1.0).contains(y) {
                p.push((
                    at.clone(),
                    format!("point {j} [{x}, {y}] is outside the picture: coordinates are fractions 0..1 of width and height"),
                ));
            }
        }
    }
}

fn check_storage(c: &Config, p: &mut Problems) {
    let s = &c.storage;
    if let Err(e) = writable_dir(&s.recordings_dir) {
        p.push(("storage.recordings_dir".into(), e));
    }
    let db = &s.database;
    if db.is_dir() {
        p.push((
            "storage.database".into(),
            format!("{} is a directory, not a file", db.display()),
        ));
    } else if let Err(e) = writable_dir(db.parent().unwrap_or(Path::new("."))) {
        p.push(("storage.database".into(), e));
    }
    if s.encryption.key_source == super::KeySource::File {
        let key = &s.encryption.key_file;
        if !key.exists() {
            if let Err(e) = writable_dir(key.parent().unwrap_or(Path::new("."))) {
                p.push(("storage.encryption.key_file".into(), e));
            }
        } else if let Err(e) = readable_file(key) {
            p.push(("storage.encryption.key_file".into(), e));
        }
    }
    let r = &s.retention;
    range(
        p,
        "storage.retention.max_size_gb",
        r.max_size_gb,
        0.01,
        1.0e6,
        " GB",
    );
    for (key, days) in [
        ("storage.retention.event_days", r.event_days),
        ("storage.retention.continuous_days", r.continuous_days),
    ] {
        range(p, key, days, 0.0, 36500.0, " days (0 = no age limit)");
    }
    range(
        p,
        "storage.retention.min_free_percent",
        r.min_free_percent,
        0.0,
        90.0,
        " %",
    );
    range(
        p,
        "storage.scrub_days",
        s.scrub_days,
        0.0,
        365.0,
        " days (0 = no scrub)",
    );
    range(
        p,
        "storage.scrub_rate_mb_s",
        s.scrub_rate_mb_s,
        0.1,
        1000.0,
        " MB/s",
    );
    if let Some(o) = &s.offsite {
        super::offsite::check(o, p);
    }
}

fn check_cameras(c: &Config, p: &mut Problems) {
    let mut first_seen: HashMap<&str, usize> = HashMap::new();
    for (i, cam) in c.cameras.iter().enumerate() {
        let at = |k: &str| format!("cameras[{i}].{k}");
        let id_ok = !cam.id.is_empty()
            && cam.id.len() <= 64
            && cam
                .id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if !id_ok {
            p.push((
                at("id"),
                format!("{:?} must be 1-64 characters of A-Z a-z 0-9 - _", cam.id),
            ));
        } else if let Some(j) = first_seen.insert(&cam.id, i) {
            p.push((
                at("id"),
                format!("duplicate camera id {:?} (also cameras[{j}])", cam.id),
            ));
            first_seen.insert(&cam.id, j);
        }
        match &cam.url {
            Some(u) => check_camera_url(p, &at("url"), u),
            None if cam.alarm.is_none() => p.push((
                at("url"),
                "missing: every camera needs a url, unless it only sends alarms (`alarm`)".into(),
            )),
            None => {}
        }
        if let Some(u) = &cam.detect_url {
            check_camera_url(p, &at("detect_url"), u);
        }
        let rtsps = cam
            .url
            .iter()
            .chain(&cam.detect_url)
            .any(|u| u.scheme() == "rtsps");
        if cam.rtsp_client == crate::config::choices::RtspClient::Native && rtsps {
            p.push((
                at("rtsp_client"),
                "native speaks rtsp:// only; use gstreamer for an rtsps:// camera".into(),
            ));
        }
        if let Some(secret) = &cam.password {
            check_password_place(p, &at, cam, secret);
        }
        range(p, &at("stall_timeout"), cam.stall_timeout, 2.0, 300.0, " s");
        check_areas(p, &at("zones"), &cam.zones);
        check_areas(p, &at("masks"), &cam.masks);
    }
}

/// `cameras[].password` is the password of the URLs' user: each URL must name the user
/// and carry no password of its own (one place for it), and the secret must be readable.
fn check_password_place(
    p: &mut Problems,
    at: &dyn Fn(&str) -> String,
    cam: &crate::config::Camera,
    secret: &crate::config::secret::Secret,
) {
    crate::config::secret::check_readable(secret, &at("password"), p);
    for (key, url) in [("url", &cam.url), ("detect_url", &cam.detect_url)] {
        let Some(url) = url else { continue };
        if url.has_password() {
            p.push((
                at(key),
                "has a password while `password` gives one too: keep it in one place".into(),
            ));
        } else if url.username().is_none() {
            p.push((
                at(key),
                "names no user for `password`: write rtsp://USER@host/path".into(),
            ));
        }
    }
}

fn check_camera_url(p: &mut Problems, key: &str, url: &CameraUrl) {
    match url.scheme() {
        "rtsp" | "rtsps" => {
            if url.host().is_none_or(str::is_empty) {
                p.push((key.into(), format!("{url} has no host")));
            }
        }
        "demo" => {
            if let Err(e) = crate::config::demo::DemoSpec::from_url(url) {
                p.push((key.into(), e));
            }
        }
        other => p.push((
            key.into(),
            format!("scheme {other:?} of {url} is not supported: use rtsp://, rtsps:// or demo://"),
        )),
    }
}

/// Ok if `dir` exists as a writable directory, or could be created (its nearest existing
/// ancestor is a writable directory).
fn writable_dir(dir: &Path) -> Result<(), String> {
    let mut probe = dir;
    loop {
        if probe.exists() {
            if !probe.is_dir() {
                return Err(format!("{} is not a directory", probe.display()));
            }
            return if access(probe, libc::W_OK | libc::X_OK) {
                Ok(())
            } else {
                Err(format!("{} is not writable by this user", probe.display()))
            };
        }
        match probe.parent() {
            Some(parent) if !parent.as_os_str().is_empty() => probe = parent,
            _ => return Ok(()), // a relative path whose first component will be created in "."
        }
    }
}

fn readable_file(path: &Path) -> Result<(), String> {
    match std::fs::File::open(path) {
        Ok(f) => match f.metadata() {
            Ok(m) if m.is_file() => Ok(()),
            Ok(_) => Err(format!("{} is not a regular file", path.display())),
            Err(e) => Err(format!("{}: {e}", path.display())),
        },
        Err(e) => Err(format!("cannot read {}: {e}", path.display())),
    }
}

fn access(path: &Path, mode: libc::c_int) -> bool {
    use std::os::unix::ffi::OsStrExt;
    let Ok(c) = std::ffi::CString::new(path.as_os_str().as_bytes()) else {
        return false;
    };
    // SAFETY: `c` is a valid NUL-terminated string that outlives the call.
    unsafe { libc::access(c.as_ptr(), mode) == 0 }
}
