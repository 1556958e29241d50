//! What each notification target has done, for the dashboard and `/metrics`: messages
//! sent, failed attempts, messages rejected for good and expired messages, the last delivery and the last error (an
//! error's text is ours or the protocol library's, never a secret or a full URL), and for
//! MQTT whether the broker is connected. Also the armed mode, kept in the index.

use crate::config::notify::ArmedMode;
use crate::store::Store;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// The setting that holds the armed mode once it was changed at run time.
const ARMED_SETTING: &str = "notify.armed";

#[derive(Debug, Default, Clone, serde::Serialize)]
pub struct LastResult {
    pub last_ok_ms: Option<i64>,
    pub last_error: Option<String>,
    pub last_error_ms: Option<i64>,
    /// MQTT only: connected to the broker now.
    pub connected: Option<bool>,
}

#[derive(Debug)]
pub struct TargetStatus {
    pub name: String,
    pub kind: &'static str,
    pub sent: AtomicU64,
    pub failed: AtomicU64,
    /// Messages the target refused for good (not retried).
    pub rejected: AtomicU64,
    pub expired: AtomicU64,
    last: Mutex<LastResult>,
}

impl TargetStatus {
    pub fn new(name: &str, kind: &'static str) -> Self {
        Self {
            name: name.to_string(),
            kind,
            sent: AtomicU64::new(0),
            failed: AtomicU64::new(0),
            rejected: AtomicU64::new(0),
            expired: AtomicU64::new(0),
            last: Mutex::new(LastResult::default()),
        }
    }

    fn last(&self) -> std::sync::MutexGuard<'_, LastResult> {
        self.last.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn delivered(&self, now_ms: i64) {
        self.sent.fetch_add(1, Relaxed);
        self.last().last_ok_ms = Some(now_ms);
    }

    pub fn attempt_failed(&self, now_ms: i64, error: &str) {
        self.failed.fetch_add(1, Relaxed);
        self.record_error(now_ms, error);
    }

    /// A message the target refused for good.
    pub fn rejected(&self, now_ms: i64, error: &str) {
        self.rejected.fetch_add(1, Relaxed);
        self.record_error(now_ms, error);
    }

    /// An error that is not a failed delivery (a broker refusing the connection).
    pub fn record_error(&self, now_ms: i64, error: &str) {
        let mut last = self.last();
        last.last_error = Some(error.to_string());
        last.last_error_ms = Some(now_ms);
    }

    pub fn set_connected(&self, connected: bool) {
        self.last().connected = Some(connected);
    }

    pub fn snapshot(&self) -> LastResult {
        self.last().clone()
    }
}

/// The targets' statuses and the armed mode, shared with the dashboard.
pub struct NotifyState {
    pub targets: Vec<std::sync::Arc<TargetStatus>>,
    armed: Mutex<ArmedMode>,
    store: Store,
}

impl NotifyState {
    /// The armed mode kept in the index, else the config's.
    pub fn new(
        store: Store,
        configured: ArmedMode,
        targets: Vec<std::sync::Arc<TargetStatus>>,
    ) -> Self {
        let kept = store
            .setting(ARMED_SETTING)
            .ok()
            .flatten()
            .and_then(|s| ArmedMode::parse(&s));
        Self {
            targets,
            armed: Mutex::new(kept.unwrap_or(configured)),
            store,
        }
    }

    pub fn armed(&self) -> ArmedMode {
        *self.armed.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Switches the armed mode and keeps it across restarts.
    pub fn set_armed(&self, mode: ArmedMode) -> Result<(), crate::store::StoreError> {
        let mut armed = self.armed.lock().unwrap_or_else(|p| p.into_inner());
        self.store.set_setting(ARMED_SETTING, mode.as_str())?;
        *armed = mode;
        Ok(())
    }

    pub fn target(&self, name: &str) -> Option<&std::sync::Arc<TargetStatus>> {
        self.targets.iter().find(|t| t.name == name)
    }
}
