//! `surveillance.yml`: the schema (serde, `deny_unknown_fields`, secure defaults), loading,
//! and the checks made after parsing. Every error names the file, the line and column, and
//! the key, as `file:line:col: key: message`. Relative paths in the file are relative to the
//! directory that holds it.

pub mod alarms;
pub mod choices;
pub mod demo;
mod locate;
pub mod notify;
pub mod offsite;
mod paths;
pub mod review;
pub mod secret;
mod validate;

pub use locate::{KeyIndex, Position};
pub use paths::Paths;

use crate::base::redact::CameraUrl;
use serde::{Deserialize, Deserializer, Serialize};
use std::collections::BTreeMap;
use std::fmt;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

/// Whether one of `cameras` (all when empty) has a zone named `zone` (rules that name zones).
fn has_zone(c: &Config, cameras: &[String], zone: &str) -> bool {
    c.cameras
        .iter()
        .filter(|x| cameras.is_empty() || cameras.contains(&x.id))
        .any(|x| x.zones.iter().any(|z| z.name == zone))
}

/// Where `sentrix` looks for its config when `--config` is not given, in order.
pub const DEFAULT_CONFIG_PATHS: [&str; 2] = ["surveillance.yml", "/etc/sentrix/surveillance.yml"];

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    #[serde(default)]
    pub network: Network,
    #[serde(default)]
    pub security: Security,
    #[serde(default)]
    pub record: Record,
    #[serde(default)]
    pub detect: Detect,
    #[serde(default)]
    pub storage: Storage,
    #[serde(default)]
    pub cameras: Vec<Camera>,
    #[serde(default)]
    pub notify: notify::Notify,
    #[serde(default)]
    pub review: review::Review,
    /// Receivers for cameras that send their alarm pictures by e-mail.
    #[serde(default)]
    pub alarms: alarms::Alarms,
    /// The directory relative paths are resolved against (the config file's directory).
    #[serde(skip)]
    pub base_dir: PathBuf,
    /// Every path of the instance, absolute (filled by `from_text`).
    #[serde(skip)]
    pub paths: Paths,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Network {
    /// Address the dashboard listens on. Anything but loopback is reachable from the LAN.
    pub bind: IpAddr,
    pub api_port: u16,
    /// Most dashboard connections open at once; also bounded by the descriptor budget.
    pub max_connections: usize,
    /// Most dashboard connections open at once from one client address.
    pub max_connections_per_address: usize,
    /// Seconds a client has to send a request head (also the keep-alive idle limit).
    pub header_timeout: u64,
    /// Seconds a connection may wait with no progress either way before it is closed.
    pub idle_timeout: u64,
}

impl Default for Network {
    fn default() -> Self {
        Self {
            bind: IpAddr::from([127, 0, 0, 1]),
            api_port: 8443,
            max_connections: 128,
            max_connections_per_address: 32,
            header_timeout: 10,
            idle_timeout: 60,
        }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Security {
    pub use_tls: bool,
    pub tls_key: PathBuf,
    pub tls_cert: PathBuf,
    pub require_auth: bool,
    /// Idle seconds before a dashboard session expires.
    pub session_timeout: u64,
    pub max_login_attempts: u32,
    /// Seconds a username or client address stays locked after too many failures.
    pub lockout_duration: u64,
    /// Origins allowed to call the API from another site (CORS); empty means none.
    pub allowed_origins: Vec<String>,
}

impl Default for Security {
    fn default() -> Self {
        Self {
            use_tls: true,
            tls_key: PathBuf::from("certs/server.key"),
            tls_cert: PathBuf::from("certs/server.crt"),
            require_auth: true,
            session_timeout: 3600,
            max_login_attempts: 5,
            lockout_duration: 900,
            allowed_origins: Vec::new(),
        }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Record {
    /// Seconds of video kept before a trigger (the clip starts at a keyframe at or before).
    pub pre_detection_buffer: f64,
    /// Seconds recorded after the last trigger.
    pub post_detection_buffer: f64,
    /// Minimum detection score that starts a recording.
    pub min_confidence: f64,
    /// Longest clip in seconds; longer events continue in the next clip.
    pub max_clip_length: f64,
    /// Memory bound of each camera's pre-roll ring in MiB; unset derives it from the
    /// bitrate (2 x bitrate x (pre-roll + 4 s), 4..64 MiB).
    pub ring_max_mb: Option<f64>,
    /// `events`: clips around detections only. `continuous`: every second, in segments,
    /// with events marked on top. Each camera may override it (`record_mode`).
    pub mode: RecordMode,
    /// Length of a continuous-recording segment in seconds (cut at the next keyframe).
    pub segment_seconds: f64,
}

/// What a camera records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum RecordMode {
    /// Clips around detections and manual triggers, with pre- and post-roll.
    #[default]
    Events,
    /// Everything, as gapless segments; events are marked time ranges over them.
    Continuous,
}

impl RecordMode {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Events => "events",
            Self::Continuous => "continuous",
        }
    }
}

impl Default for Record {
    fn default() -> Self {
        Self {
            pre_detection_buffer: 5.0,
            post_detection_buffer: 10.0,
            min_confidence: 0.5,
            max_clip_length: 300.0,
            ring_max_mb: None,
            mode: RecordMode::Events,
            segment_seconds: 60.0,
        }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Detect {
    /// Decode frames for detection (and, later, live view). Off means remux-only ingest.
    pub enabled: bool,
    /// YOLO ONNX model; none means motion-only.
    pub model: Option<PathBuf>,
    /// Minimum score for a detection to count.
    pub confidence: f64,
    /// Frames per second handed to the detector.
    pub fps: u32,
    /// Square model input in pixels (multiple of 32).
    pub input_size: u32,
    /// Inference worker threads.
    pub threads: u32,
    /// Labels that count as detections.
    pub labels: Vec<String>,
    /// Output layout: yolox, yolov5 or yolov8 (yolo11); unset detects it from the shape.
    pub format: Option<choices::Layout>,
    /// Inference arithmetic: f32, or f16 for CPUs with half-precision arithmetic (Pi 5,
    /// Jetson Orin); f16 is emulated, and slower, elsewhere.
    pub precision: choices::Precision,
    /// Class names, one a line, in model output order; unset means COCO's 80.
    pub labels_file: Option<PathBuf>,
    /// Per-label minimum score, overriding `confidence` (and raising the recording
    /// threshold `record.min_confidence` when higher).
    pub min_score: BTreeMap<String, f64>,
    /// Seconds an object may go unseen before its event ends.
    pub event_gap: f64,
    /// Seconds after an event ends during which the same object (same label, overlapping
    /// box) continues that event instead of starting a new one.
    pub dedup_window: f64,
    /// The cheap frame-difference gate in front of the model.
    pub motion: Motion,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Motion {
    /// Off: every frame goes to the model.
    pub enabled: bool,
    /// Grey-level change (0-255) for a pixel of the small copy to count as changed.
    pub threshold: u8,
    /// Share of the unmasked frame (0-1) that must change to count as motion.
    pub min_area: f64,
    /// Seconds between forced model runs while nothing moves (0 = never).
    pub forced_interval: f64,
}

impl Default for Motion {
    fn default() -> Self {
        Self {
            enabled: true,
            threshold: 25,
            min_area: 0.003,
            forced_interval: 10.0,
        }
    }
}

/// An area of a camera's picture in normalised coordinates (0,0 top-left, 1,1 bottom-right).
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Area {
    #[serde(default)]
    pub name: String,
    /// Polygon corners as [x, y] pairs, at least 3.
    pub points: Vec<[f64; 2]>,
    /// Zones only: labels this zone applies to (empty: all).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub labels: Vec<String>,
}

impl Default for Detect {
    fn default() -> Self {
        Self {
            enabled: true,
            model: None,
            confidence: 0.4,
            fps: 5,
            input_size: 416,
            threads: 1,
            labels: [
                "person",
                "car",
                "dog",
                "cat",
                "bicycle",
                "motorcycle",
                "truck",
            ]
            .map(String::from)
            .to_vec(),
            format: None,
            precision: choices::Precision::F32,
            labels_file: None,
            min_score: BTreeMap::new(),
            event_gap: 5.0,
            dedup_window: 30.0,
            motion: Motion::default(),
        }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Storage {
    pub recordings_dir: PathBuf,
    pub database: PathBuf,
    pub encryption: Encryption,
    pub retention: Retention,
    /// Sealed copies in an S3-compatible bucket (off when absent).
    pub offsite: Option<offsite::Offsite>,
    /// Every sealed file is authenticated whole once per this many days (0 = no scrub).
    pub scrub_days: f64,
    /// The scrub's read rate, MB/s (it runs at idle CPU and I/O priority besides).
    pub scrub_rate_mb_s: f64,
}

impl Default for Storage {
    fn default() -> Self {
        Self {
            recordings_dir: PathBuf::from("/var/lib/sentrix/recordings"),
            database: PathBuf::from("/var/lib/sentrix/sentrix.db"),
            encryption: Encryption::default(),
            retention: Retention::default(),
            offsite: None,
            scrub_days: 7.0,
            scrub_rate_mb_s: 4.0,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum KeySource {
    Keyring,
    SystemdCredential,
    Passphrase,
    File,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Encryption {
    pub key_source: KeySource,
    /// Used by `key_source: file`: 32 random bytes, created 0600 on first run.
    pub key_file: PathBuf,
}

impl Default for Encryption {
    fn default() -> Self {
        Self {
            key_source: KeySource::File,
            key_file: PathBuf::from("/var/lib/sentrix/clip.key"),
        }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Retention {
    pub max_size_gb: f64,
    /// Days kept of event clips and of continuous footage that overlaps an event (0 = no
    /// age limit). `max_age_days`, its name before continuous recording, still works.
    #[serde(alias = "max_age_days")]
    pub event_days: f64,
    /// Days kept of continuous footage that overlaps no event (0 = no age limit).
    pub continuous_days: f64,
    pub min_free_percent: f64,
}

impl Default for Retention {
    fn default() -> Self {
        Self {
            max_size_gb: 100.0,
            event_days: 30.0,
            continuous_days: 7.0,
            min_free_percent: 10.0,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Camera {
    /// Short, URL-safe, unique: used in API paths and file names.
    pub id: String,
    #[serde(default)]
    pub name: String,
    /// `rtsp://`, `rtsps://`, or `demo://` for the built-in synthetic camera. Absent only
    /// for an alarm-only camera (one that e-mails pictures and cannot stream).
    #[serde(default, deserialize_with = "optional_camera_url")]
    pub url: Option<CameraUrl>,
    /// Optional sub-stream for detection.
    #[serde(default, deserialize_with = "optional_camera_url")]
    pub detect_url: Option<CameraUrl>,
    #[serde(default = "yes")]
    pub enabled: bool,
    /// Seconds without a frame before the connection is judged stalled and restarted.
    #[serde(default = "default_stall_timeout")]
    pub stall_timeout: f64,
    /// Decoder for detection frames: auto, software, v4l2, nvv4l2 or an element name.
    #[serde(default)]
    pub decoder: choices::DecoderChoice,
    /// RTSP client: auto (native for rtsp://, gstreamer for rtsps://), gstreamer
    /// (rtspsrc) or native (retina: less CPU, rtsp:// only).
    #[serde(default)]
    pub rtsp_client: choices::RtspClient,
    /// RTP transport: auto (TCP, then UDP when the camera offers only that), tcp or udp.
    #[serde(default)]
    pub transport: choices::Transport,
    /// The password of the URLs' user, kept out of the YAML: `{file: PATH}`,
    /// `{credential: NAME}` or `{env: NAME}` (an inline string works too).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<secret::Secret>,
    /// Where objects count: an object is kept when its box's bottom centre is inside one of
    /// these polygons. None: everywhere.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub zones: Vec<Area>,
    /// Areas ignored by motion and detection (a busy road, a tree, a TV).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub masks: Vec<Area>,
    /// Overrides `record.mode` for this camera.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub record_mode: Option<RecordMode>,
    /// Alarm pictures this camera sends by e-mail (alarm/).
    #[serde(default)]
    pub alarm: Option<alarms::CameraAlarm>,
    /// Added in the dashboard (kept in the index), not in the file.
    #[serde(skip)]
    pub managed: bool,
}

fn yes() -> bool {
    true
}

fn default_stall_timeout() -> f64 {
    10.0
}

// serde_yaml places errors raised inside a field's deserializer at the enclosing mapping,
// so these messages start with the field name; `serde_issue` moves them to the field.
fn optional_camera_url<'de, D: Deserializer<'de>>(d: D) -> Result<Option<CameraUrl>, D::Error> {
    match Option::<String>::deserialize(d)? {
        None => Ok(None),
        Some(raw) => CameraUrl::parse(&raw)
            .map(Some)
            .map_err(|e| serde::de::Error::custom(format!("url: {e}"))),
    }
}

/// One problem found in a config file, already located.
#[derive(Debug, Clone, PartialEq)]
pub struct Issue {
    pub line: usize,
    pub col: usize,
    /// The key path, e.g. `cameras[1].url`; empty for syntax errors.
    pub key: String,
    pub message: String,
}

#[derive(Debug)]
pub enum ConfigError {
    /// The file could not be read.
    Read {
        file: PathBuf,
        error: std::io::Error,
    },
    /// The file was read; these issues were found.
    Invalid { file: PathBuf, issues: Vec<Issue> },
    /// No `--config` was given and none of the default paths exists.
    NotFound,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Read { file, error } => {
                write!(f, "{}: cannot read config: {error}", file.display())
            }
            Self::NotFound => write!(
                f,
                "no config file: looked for {}; pass --config PATH",
                DEFAULT_CONFIG_PATHS.join(" and ")
            ),
            Self::Invalid { file, issues } => {
                for (i, issue) in issues.iter().enumerate() {
                    if i > 0 {
                        writeln!(f)?;
                    }
                    write!(f, "{}:{}:{}: ", file.display(), issue.line, issue.col)?;
                    if !issue.key.is_empty() {
                        write!(f, "{}: ", issue.key)?;
                    }
                    write!(f, "{}", issue.message)?;
                }
                Ok(())
            }
        }
    }
}

impl std::error::Error for ConfigError {}

/// The config file to use: `explicit` if given, else the first default path that exists.
pub fn find_config(explicit: Option<&Path>) -> Result<PathBuf, ConfigError> {
    if let Some(p) = explicit {
        return Ok(p.to_path_buf());
    }
    DEFAULT_CONFIG_PATHS
        .iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
        .ok_or(ConfigError::NotFound)
}

impl Config {
    /// Reads, parses and validates a config file.
    pub fn load(file: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(file).map_err(|error| ConfigError::Read {
            file: file.to_path_buf(),
            error,
        })?;
        let base_dir = file
            .parent()
            .map(|p| {
                if p.as_os_str().is_empty() {
                    Path::new(".")
                } else {
                    p
                }
            })
            .unwrap_or(Path::new("."))
            .to_path_buf();
        Self::from_text(&text, base_dir).map_err(|issues| ConfigError::Invalid {
            file: file.to_path_buf(),
            issues,
        })
    }

    /// Parses and validates config text; relative paths resolve against `base_dir`.
    pub fn from_text(text: &str, base_dir: PathBuf) -> Result<Self, Vec<Issue>> {
        let index = KeyIndex::build(text);
        let mut config: Config =
            serde_yaml::from_str(text).map_err(|e| vec![serde_issue(&e, &index)])?;
        config.base_dir = match base_dir.is_absolute() {
            true => base_dir,
            false => std::env::current_dir()
                .map(|cwd| cwd.join(&base_dir))
                .unwrap_or(base_dir),
        };
        config.make_paths_absolute();
        config.paths = Paths::derive(&config);
        let problems = validate::check(&config);
        if problems.is_empty() {
            return Ok(config);
        }
        Err(problems
            .into_iter()
            .map(|(key, message)| {
                let Position { line, col } = index.find(&key);
                Issue {
                    line,
                    col,
                    key,
                    message,
                }
            })
            .collect())
    }

    /// Rewrites every path in the file as an absolute one, once, at load.
    fn make_paths_absolute(&mut self) {
        let base = self.base_dir.clone();
        let abs = |p: &mut PathBuf| *p = paths::absolute(&base, p);
        abs(&mut self.storage.recordings_dir);
        abs(&mut self.storage.database);
        abs(&mut self.storage.encryption.key_file);
        abs(&mut self.security.tls_cert);
        abs(&mut self.security.tls_key);
        self.detect.model.iter_mut().for_each(abs);
        self.detect.labels_file.iter_mut().for_each(abs);
        if let Some(o) = &mut self.storage.offsite {
            o.make_absolute(&base);
        }
        for t in &mut self.notify.targets {
            t.ca_file_mut().into_iter().for_each(abs);
            for (_, secret) in t.secrets_mut() {
                secret.make_absolute(&base);
            }
        }
        for secret in self.cameras.iter_mut().filter_map(|c| c.password.as_mut()) {
            secret.make_absolute(&base);
        }
        for alarm in self.cameras.iter_mut().filter_map(|c| c.alarm.as_mut()) {
            if let Some(secret) = alarm.smtp.as_mut().and_then(|s| s.password.as_mut()) {
                secret.make_absolute(&base);
            }
            if let Some(ftp) = alarm.ftp.as_mut() {
                ftp.password.make_absolute(&base);
            }
        }
    }

    /// This config with `managed` (the dashboard's cameras) after the file's own, checked
    /// by the same rules as the file: `(key, message)` for each problem, keys such as
    /// `cameras[3].url`.
    pub fn with_managed(
        &self,
        managed: impl IntoIterator<Item = Camera>,
    ) -> Result<Config, Vec<(String, String)>> {
        let mut merged = self.clone();
        merged.cameras.retain(|c| !c.managed);
        merged.cameras.extend(managed.into_iter().map(|mut c| {
            c.managed = true;
            c
        }));
        let problems = validate::check(&merged);
        match problems.is_empty() {
            true => Ok(merged),
            false => Err(problems),
        }
    }

    /// What `check-config` would say of this config: `(key, message)` per problem.
    pub fn problems(&self) -> Vec<(String, String)> {
        validate::check(self)
    }

    pub fn enabled_cameras(&self) -> impl Iterator<Item = &Camera> {
        self.cameras.iter().filter(|c| c.enabled)
    }

    /// The enabled cameras that stream (every one but the alarm-only ones).
    pub fn streaming_cameras(&self) -> impl Iterator<Item = &Camera> {
        self.enabled_cameras().filter(|c| c.url.is_some())
    }

    /// What camera `cam` records: its own `record_mode`, else `record.mode`.
    pub fn record_mode(&self, cam: &Camera) -> RecordMode {
        cam.record_mode.unwrap_or(self.record.mode)
    }
}

/// serde_yaml's error as an Issue: its message already names the key path (`cameras[0]:
/// unknown field ...`); its Display adds "at line L column C", which we carry separately.
fn serde_issue(e: &serde_yaml::Error, index: &KeyIndex) -> Issue {
    let (mut line, mut col) = e
        .location()
        .map(|l| (l.line(), l.column()))
        .unwrap_or((1, 1));
    let text = e.to_string();
    let text = match text.rfind(" at line ") {
        Some(i) => text[..i].to_string(),
        None => text,
    };
    let (mut key, mut message) = match text.split_once(": ") {
        Some((k, m)) if !k.contains(' ') => (k.to_string(), m.to_string()),
        _ => (String::new(), text),
    };
    // A field deserializer's own error ("url: not a valid URL") belongs to that field.
    for field in ["url", "detect_url"] {
        if let Some(rest) = message.strip_prefix(&format!("{field}: ")) {
            key = if key.is_empty() {
                field.to_string()
            } else {
                format!("{key}.{field}")
            };
            message = rest.to_string();
            Position { line, col } = index.find(&key);
            break;
        }
    }
    Issue {
        line,
        col,
        key,
        message,
    }
}
