//! The audit log: one JSON line per security-relevant action (logins, failures, lockouts,
//! logouts, user changes, file access), appended to a 0600 file beside the database and
//! sent to tracing under the `audit` target. Passwords and keys never reach it.
//!
//! Bounded whatever a client sends:
//! - user names are cut to `MAX_USER_BYTES` and objects (paths) to `MAX_OBJECT_BYTES`,
//!   and written as JSON strings, so they cannot forge lines;
//! - a refused login's user name that does not exist is not written as typed (it may be a
//!   password typed into the wrong field): `unknown user #1a2b3c4d`, a salted hash that
//!   tells repeated names apart and reveals nothing;
//! - refusals repeated by one address (same action, same user) are written once per
//!   `REPEAT_WINDOW`, then summed up: `"repeated": 512` in a line of their own;
//! - the file rotates at `ROTATE_BYTES` to `audit.log.1` (one old file kept), so it never
//!   takes more than twice that; retention deletes the old file before any clip (clips
//!   take priority over logs).

use std::collections::HashMap;
use std::io::Write;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

pub const MAX_USER_BYTES: usize = 64;
pub const MAX_OBJECT_BYTES: usize = 256;
/// Size at which audit.log is rotated.
pub const ROTATE_BYTES: u64 = 4 * 1024 * 1024;
/// Identical refusals from one address within this window are written once, then counted.
const REPEAT_WINDOW: Duration = Duration::from_secs(10);
/// Distinct (address, action, user) keys tracked for aggregation at most.
const MAX_REPEAT_KEYS: usize = 4096;
/// Actions that a client can repeat at will: aggregated.
const REFUSALS: &[&str] = &[
    "login_failed",
    "locked_out",
    "rate_limited",
    "csrf_refused",
    "path_refused",
    "alarm_refused",
];

type RepeatKey = (IpAddr, String, String);

struct Writer {
    path: Option<PathBuf>,
    file: Option<std::fs::File>,
    bytes: u64,
    /// Per key: when its window started and how many were held back since.
    repeats: HashMap<RepeatKey, (Instant, u64)>,
}

pub struct Audit {
    writer: Mutex<Writer>,
    salt: [u8; 16],
}

impl Audit {
    /// Appends to `path` (created 0600); with None, only tracing gets the lines.
    pub fn open(path: Option<&Path>) -> std::io::Result<Self> {
        let file = path.map(open_append).transpose()?;
        let bytes = file
            .as_ref()
            .and_then(|f| f.metadata().ok())
            .map_or(0, |m| m.len());
        let mut salt = [0u8; 16];
        let _ = getrandom::getrandom(&mut salt);
        Ok(Self {
            writer: Mutex::new(Writer {
                path: path.map(Path::to_path_buf),
                file,
                bytes,
                repeats: HashMap::new(),
            }),
            salt,
        })
    }

    /// Records `action` on `object` by `user` (None: not authenticated) from `ip`.
    pub fn log(&self, user: Option<&str>, ip: IpAddr, action: &str, object: &str) {
        let user = user.map(|u| cut(u, MAX_USER_BYTES));
        self.record(user, ip, action, object);
    }

    /// As `log`, for a user name that does not exist: written as a salted hash.
    pub fn log_unknown_user(&self, typed: &str, ip: IpAddr, action: &str, object: &str) {
        use sha2::{Digest, Sha256};
        let digest = Sha256::new()
            .chain_update(self.salt)
            .chain_update(typed.as_bytes())
            .finalize();
        let tag: String = digest[..4].iter().map(|b| format!("{b:02x}")).collect();
        self.record(Some(format!("unknown user #{tag}")), ip, action, object);
    }

    fn record(&self, user: Option<String>, ip: IpAddr, action: &str, object: &str) {
        let mut w = self.writer.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        w.flush_repeats(now, false);
        if REFUSALS.contains(&action) {
            let key = (ip, action.to_string(), user.clone().unwrap_or_default());
            if let Some((_, held)) = w.repeats.get_mut(&key) {
                *held += 1;
                return;
            }
            w.repeats.insert(key, (now, 0));
        }
        let line = serde_json::json!({
            "ts_ms": crate::base::clock::wall_ms(),
            "user": user,
            "ip": ip.to_string(),
            "action": action,
            "object": cut(object, MAX_OBJECT_BYTES),
        });
        w.write(&line);
    }
}

impl Writer {
    /// Writes the count of every held-back repeat whose window has passed (all of them
    /// with `all`, or when too many keys are tracked).
    fn flush_repeats(&mut self, now: Instant, all: bool) {
        let all = all || self.repeats.len() >= MAX_REPEAT_KEYS;
        let done: Vec<RepeatKey> = self
            .repeats
            .iter()
            .filter(|(_, (since, _))| all || now.duration_since(*since) >= REPEAT_WINDOW)
            .map(|(k, _)| k.clone())
            .collect();
        for key in done {
            let Some((_, held)) = self.repeats.remove(&key) else {
                continue;
            };
            if held == 0 {
                continue;
            }
            let (ip, action, user) = key;
            let line = serde_json::json!({
                "ts_ms": crate::base::clock::wall_ms(),
                "user": (!user.is_empty()).then_some(user),
                "ip": ip.to_string(),
                "action": action,
                "repeated": held,
                "within_s": REPEAT_WINDOW.as_secs(),
            });
            self.write(&line);
        }
    }

    fn write(&mut self, line: &serde_json::Value) {
        let line = line.to_string();
        tracing::info!(target: "audit", "{line}");
        if self.bytes + line.len() as u64 + 1 > ROTATE_BYTES {
            self.rotate();
        }
        if let Some(f) = self.file.as_mut() {
            match writeln!(f, "{line}") {
                Ok(()) => self.bytes += line.len() as u64 + 1,
                Err(e) => tracing::error!("audit log write failed: {e}"),
            }
        }
    }

    /// audit.log → audit.log.1 (replacing the older one), and a fresh audit.log.
    fn rotate(&mut self) {
        let Some(path) = self.path.clone() else {
            return;
        };
        self.file = None;
        if let Err(e) = std::fs::rename(&path, rotated(&path)) {
            tracing::error!("cannot rotate the audit log {}: {e}", path.display());
        }
        match open_append(&path) {
            Ok(f) => self.file = Some(f),
            Err(e) => tracing::error!("cannot reopen the audit log {}: {e}", path.display()),
        }
        self.bytes = 0;
    }
}

impl Drop for Audit {
    fn drop(&mut self) {
        let mut w = self.writer.lock().unwrap_or_else(|p| p.into_inner());
        w.flush_repeats(Instant::now(), true);
    }
}

/// The rotated file beside `path` (`audit.log.1`), which retention may delete first.
pub fn rotated(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(".1");
    PathBuf::from(name)
}

fn open_append(path: &Path) -> std::io::Result<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .mode(0o600)
        .open(path)
}

/// `text` cut to at most `max_bytes` at a character boundary, marked when cut.
fn cut(text: &str, max_bytes: usize) -> String {
    if text.len() <= max_bytes {
        return text.to_string();
    }
    let mut end = max_bytes;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…({} bytes)", &text[..end], text.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_bounded_and_repeats_summed() -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("audit.log");
        let audit = Audit::open(Some(&path))?;
        let ip: IpAddr = [10, 0, 0, 9].into();
        let long = "x".repeat(60_000);
        for _ in 0..100 {
            audit.log_unknown_user(&long, ip, "login_failed", &long);
        }
        audit.log(Some(&long), ip, "login", "/auth/verify");
        drop(audit);
        let text = std::fs::read_to_string(&path)?;
        let lines = text
            .lines()
            .map(serde_json::from_str)
            .collect::<Result<Vec<serde_json::Value>, _>>()?;
        let text_of = |v: &serde_json::Value| v.as_str().unwrap_or_default().to_string();
        assert_eq!(lines.len(), 3, "{text}");
        assert!(text_of(&lines[0]["user"]).starts_with("unknown user #"));
        let object = text_of(&lines[0]["object"]);
        assert!(!object.is_empty() && object.len() < 300);
        let user = text_of(&lines[1]["user"]);
        assert!(!user.is_empty() && user.len() < 100);
        assert_eq!(lines[2]["repeated"], 99);
        assert!(text.len() < 2000, "{} bytes", text.len());
        Ok(())
    }

    #[test]
    fn the_file_rotates() -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("audit.log");
        let audit = Audit::open(Some(&path))?;
        let ip: IpAddr = [10, 0, 0, 9].into();
        let object = "y".repeat(200);
        for i in 0..(ROTATE_BYTES / 200 + 10) {
            audit.log(Some("alice"), ip, "clip_download", &format!("{i}{object}"));
        }
        let now = std::fs::metadata(&path).unwrap().len();
        let old = std::fs::metadata(rotated(&path)).unwrap().len();
        assert!(
            now < ROTATE_BYTES && old <= ROTATE_BYTES && now > 0,
            "{now} {old}"
        );
        Ok(())
    }
}
