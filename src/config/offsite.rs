//! `storage.offsite`: sealed copies of clips in an S3-compatible bucket (offsite/). The
//! credentials come from a file, a systemd credential or the environment, never from the
//! YAML itself; the endpoint is https, or plain http only to a loopback address.

use super::secret::{Secret, SecretSource};
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Offsite {
    /// `https://s3.eu-central-1.amazonaws.com`, `https://minio.lan:9000`, …
    pub endpoint: String,
    pub bucket: String,
    #[serde(default = "default_region")]
    pub region: String,
    /// Where this box's objects go in the bucket; default: the box's id.
    #[serde(default)]
    pub prefix: Option<String>,
    /// `https://endpoint/bucket/key` (MinIO, most self-hosted servers) rather than
    /// `https://bucket.endpoint/key`.
    #[serde(default)]
    pub path_style: bool,
    pub access_key_id: Secret,
    pub secret_access_key: Secret,
    #[serde(default)]
    pub what: OffsiteWhat,
    /// Upload bandwidth cap in kbit/s (0: none).
    #[serde(default)]
    pub max_kbps: u32,
    /// Objects older than this are deleted from the bucket by sentrix (0: kept forever).
    #[serde(default)]
    pub retention_days: f64,
    /// Local retention by age waits until a clip bound for the bucket is there.
    #[serde(default)]
    pub require_uploaded_before_delete: bool,
    /// A PEM CA bundle trusted besides the system's (a self-hosted server's own CA).
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
}

/// Which clips go to the bucket.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum OffsiteWhat {
    /// Event clips, and continuous segments that overlap an event.
    #[default]
    Events,
    /// Every clip and segment.
    All,
}

impl OffsiteWhat {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Events => "events",
            Self::All => "all",
        }
    }
}

fn default_region() -> String {
    "us-east-1".into()
}

type Problems = Vec<(String, String)>;

impl Offsite {
    pub fn make_absolute(&mut self, base: &std::path::Path) {
        self.access_key_id.make_absolute(base);
        self.secret_access_key.make_absolute(base);
        if let Some(p) = &mut self.ca_file {
            *p = super::paths::absolute(base, p);
        }
    }
}

/// The checks of `storage.offsite` after parsing.
pub fn check(o: &Offsite, p: &mut Problems) {
    const KEY: &str = "storage.offsite";
    check_endpoint(&o.endpoint, p);
    if !valid_bucket(&o.bucket) {
        p.push((
            format!("{KEY}.bucket"),
            format!(
                "{:?} is not a bucket name (3-63 lowercase letters, digits, '-' and '.')",
                o.bucket
            ),
        ));
    }
    if let Some(prefix) = &o.prefix
        && !valid_prefix(prefix)
    {
        p.push((
            format!("{KEY}.prefix"),
            format!("{prefix:?} must be 1-64 of A-Z a-z 0-9 . _ - (no '/', no '..')"),
        ));
    }
    for (field, secret) in [
        ("access_key_id", &o.access_key_id),
        ("secret_access_key", &o.secret_access_key),
    ] {
        check_credential(&format!("{KEY}.{field}"), secret, p);
    }
    if !(0.0..=36500.0).contains(&o.retention_days) {
        p.push((
            format!("{KEY}.retention_days"),
            "must be 0 (keep forever) to 36500".into(),
        ));
    }
    if let Some(ca) = &o.ca_file
        && let Err(e) = std::fs::read(ca)
    {
        p.push((
            format!("{KEY}.ca_file"),
            format!("cannot read {}: {e}", ca.display()),
        ));
    }
}

fn check_endpoint(endpoint: &str, p: &mut Problems) {
    let key = "storage.offsite.endpoint".to_string();
    match url::Url::parse(endpoint) {
        Ok(u) if u.scheme() == "https" && u.host_str().is_some() => {}
        Ok(u)
            if u.scheme() == "http"
                && u.host_str().is_some_and(super::notify::is_loopback_host) => {}
        Ok(u) if u.scheme() == "http" => p.push((
            key,
            format!(
                "{endpoint:?} is plain http to a non-loopback host: use https (the \
                 credentials' signatures and the upload timings would cross the network in clear)"
            ),
        )),
        Ok(_) => p.push((key, format!("{endpoint:?} must be an https:// URL"))),
        Err(e) => p.push((key, format!("{endpoint:?} is not a URL: {e}"))),
    }
}

/// Credentials never sit in the YAML: a file, a systemd credential or the environment.
fn check_credential(key: &str, secret: &Secret, p: &mut Problems) {
    match secret {
        Secret::Inline(_) => p.push((
            key.into(),
            "must not be written in the config: use {file: PATH}, {credential: NAME} \
             (systemd) or {env: NAME}"
                .into(),
        )),
        Secret::Source(SecretSource::File(_)) => match secret.reveal() {
            Ok(v) if v.trim().is_empty() => p.push((key.into(), "is empty".into())),
            Ok(_) => {}
            Err(e) => p.push((key.into(), e)),
        },
        // Checked when `run` starts: a shell running check-config has neither.
        Secret::Source(_) => {}
    }
}

fn valid_bucket(b: &str) -> bool {
    (3..=63).contains(&b.len())
        && b.bytes()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'-' || c == b'.')
        && !b.starts_with(['-', '.'])
        && !b.ends_with(['-', '.'])
}

pub fn valid_prefix(prefix: &str) -> bool {
    (1..=64).contains(&prefix.len())
        && prefix
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'.' | b'_' | b'-'))
        && prefix != "."
        && !prefix.contains("..")
}
