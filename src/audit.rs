//! The audit log: one JSON line per security-relevant action (logins, failures, lockouts,
//! logouts, user changes, file access), appended to a 0600 file beside the database and
//! sent to tracing under the `audit` target. Passwords and keys never reach it; user names
//! and paths are written as JSON strings, so they cannot forge lines.

use std::io::Write;
use std::net::IpAddr;
use std::path::Path;
use std::sync::Mutex;

pub struct Audit {
    file: Mutex<Option<std::fs::File>>,
}

impl Audit {
    /// Appends to `path` (created 0600); with None, only tracing gets the lines.
    pub fn open(path: Option<&Path>) -> std::io::Result<Self> {
        use std::os::unix::fs::OpenOptionsExt;
        let file = match path {
            Some(p) => Some(
                std::fs::OpenOptions::new()
                    .append(true)
                    .create(true)
                    .mode(0o600)
                    .open(p)?,
            ),
            None => None,
        };
        Ok(Self {
            file: Mutex::new(file),
        })
    }

    pub fn log(&self, user: Option<&str>, ip: IpAddr, action: &str, object: &str) {
        let line = serde_json::json!({
            "ts_ms": crate::store::now_ms(),
            "user": user,
            "ip": ip.to_string(),
            "action": action,
            "object": object,
        })
        .to_string();
        tracing::info!(target: "audit", "{line}");
        if let Some(f) = self.file.lock().unwrap_or_else(|p| p.into_inner()).as_mut()
            && let Err(e) = writeln!(f, "{line}")
        {
            tracing::error!("audit log write failed: {e}");
        }
    }
}
