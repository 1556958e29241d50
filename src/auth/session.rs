//! Sessions: random 256-bit ids (hex) mapped to a user, ended by `POST /auth/logout` or
//! after `session_timeout` without a request. Held in memory: a restart logs everyone out,
//! which the browser's stored Basic credentials turn into one silent re-login.

use super::{Principal, Stamp};
use std::collections::HashMap;
use std::sync::Mutex;

struct Session {
    principal: Principal,
    /// The user's credentials when the session opened (see `Stamp`).
    stamp: Stamp,
    last_seen_ms: i64,
}

pub struct Sessions {
    timeout_ms: i64,
    map: Mutex<HashMap<String, Session>>,
}

impl Sessions {
    pub fn new(timeout_ms: i64) -> Self {
        Self {
            timeout_ms,
            map: Mutex::new(HashMap::new()),
        }
    }

    /// Opens a session; returns its id.
    pub fn open(&self, principal: Principal, stamp: Stamp, now_ms: i64) -> Result<String, String> {
        let mut id = [0u8; 32];
        getrandom::getrandom(&mut id).map_err(|e| e.to_string())?;
        let id: String = id.iter().map(|b| format!("{b:02x}")).collect();
        let mut map = self.map.lock().unwrap_or_else(|p| p.into_inner());
        map.retain(|_, s| now_ms - s.last_seen_ms <= self.timeout_ms);
        map.insert(
            id.clone(),
            Session {
                principal,
                stamp,
                last_seen_ms: now_ms,
            },
        );
        Ok(id)
    }

    /// The session's user and stamp, refreshing its idle timer; None if unknown or expired.
    pub fn touch(&self, id: &str, now_ms: i64) -> Option<(Principal, Stamp)> {
        let mut map = self.map.lock().unwrap_or_else(|p| p.into_inner());
        let expired = match map.get_mut(id) {
            Some(s) if now_ms - s.last_seen_ms <= self.timeout_ms => {
                s.last_seen_ms = now_ms;
                return Some((s.principal.clone(), s.stamp));
            }
            Some(_) => true,
            None => false,
        };
        if expired {
            map.remove(id);
        }
        None
    }

    /// The session's user and stamp if it is open and not expired, without refreshing it
    /// (a stream re-checking its session must not keep it alive).
    pub fn peek(&self, id: &str, now_ms: i64) -> Option<(Principal, Stamp)> {
        let map = self.map.lock().unwrap_or_else(|p| p.into_inner());
        map.get(id)
            .filter(|s| now_ms - s.last_seen_ms <= self.timeout_ms)
            .map(|s| (s.principal.clone(), s.stamp))
    }

    pub fn close(&self, id: &str) -> Option<Principal> {
        self.map
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(id)
            .map(|s| s.principal)
    }

    /// Replaces the stamp of session `id` (its user changed their own password in it).
    pub fn restamp(&self, id: &str, stamp: Stamp) {
        if let Some(s) = self
            .map
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get_mut(id)
        {
            s.stamp = stamp;
        }
    }
}
