//! The dashboard's two cookies, both HttpOnly, SameSite=Strict, Path=/:
//! - the session (`__Host-sentrix_session`): a random id, for `session_timeout`;
//! - the known device (`__Host-sentrix_device`): a random token set after a successful
//!   login and remembered for its user, so that browser can still log in while the user
//!   name is locked against unknown devices (auth/mod.rs), for a year.
//!
//! Under TLS both carry the `__Host-` prefix (the browser then insists on Secure, Path=/
//! and no Domain, so no other host or plain-HTTP page can plant or shadow them). Without
//! TLS (`security.use_tls: false`, loopback only) browsers refuse `__Host-` cookies, so the
//! names lose the prefix.

use axum::http::{HeaderMap, HeaderValue, header};

const KNOWN_DEVICE_MAX_AGE_S: i64 = 365 * 24 * 3600;

#[derive(Debug, Clone, Copy)]
pub struct Cookies {
    pub tls: bool,
}

impl Cookies {
    pub fn session_name(self) -> &'static str {
        if self.tls {
            "__Host-sentrix_session"
        } else {
            "sentrix_session"
        }
    }

    pub fn device_name(self) -> &'static str {
        if self.tls {
            "__Host-sentrix_device"
        } else {
            "sentrix_device"
        }
    }

    fn header(self, name: &str, value: &str, max_age_s: i64) -> Option<HeaderValue> {
        let secure = if self.tls { "; Secure" } else { "" };
        HeaderValue::from_str(&format!(
            "{name}={value}; Path=/; HttpOnly; SameSite=Strict; Max-Age={max_age_s}{secure}"
        ))
        .ok()
    }

    pub fn session(self, id: &str, max_age_s: i64) -> Option<HeaderValue> {
        self.header(self.session_name(), id, max_age_s)
    }

    pub fn clear_session(self) -> Option<HeaderValue> {
        self.header(self.session_name(), "", 0)
    }

    pub fn device(self, token: &str) -> Option<HeaderValue> {
        self.header(self.device_name(), token, KNOWN_DEVICE_MAX_AGE_S)
    }

    pub fn session_id(self, headers: &HeaderMap) -> Option<String> {
        read(headers, self.session_name())
    }

    pub fn device_token(self, headers: &HeaderMap) -> Option<String> {
        read(headers, self.device_name())
    }
}

/// Cookie `name`'s value in the request, if it is one of ours in shape (hex, 64 chars):
/// anything else is ignored rather than looked up.
fn read(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_string())
        .filter(|v| v.len() == 64 && v.bytes().all(|b| b.is_ascii_hexdigit()))
}
