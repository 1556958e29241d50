//! Secrets in camera URLs: `CameraUrl` keeps the full URL (with its password) for the one
//! place that needs it, the RTSP source, and shows `rtsp://user:***@host/...` everywhere
//! else (`Display`, `Debug`, logs, errors, status). `Redactor` scrubs the password out of
//! free text that came from elsewhere, such as GStreamer error messages.

use std::fmt;

/// What a password is replaced with.
pub const MASK: &str = "***";

/// A camera URL whose password never leaves through `Display` or `Debug`.
#[derive(Clone, PartialEq, Eq)]
pub struct CameraUrl {
    url: url::Url,
}

impl CameraUrl {
    /// Parses a URL; the error text never contains the input (it may hold a password).
    pub fn parse(raw: &str) -> Result<Self, String> {
        let url = url::Url::parse(raw).map_err(|e| format!("not a valid URL ({e})"))?;
        Ok(Self { url })
    }

    /// The URL with its password, for the RTSP client only. Never log this.
    pub fn expose_secret(&self) -> &str {
        self.url.as_str()
    }

    pub fn scheme(&self) -> &str {
        self.url.scheme()
    }

    pub fn host(&self) -> Option<&str> {
        self.url.host_str()
    }

    pub fn port_or_default(&self) -> Option<u16> {
        self.url
            .port_or_known_default()
            .or(match self.url.scheme() {
                "rtsp" => Some(554),
                "rtsps" => Some(322),
                _ => None,
            })
    }

    /// "host:port" (the scheme's default port when the URL names none), or the host alone
    /// for a scheme without one; None without a host. Safe to show.
    pub fn endpoint(&self) -> Option<String> {
        let host = self.host()?;
        Some(match self.port_or_default() {
            Some(port) => format!("{host}:{port}"),
            None => host.to_string(),
        })
    }

    pub fn username(&self) -> Option<&str> {
        Some(self.url.username()).filter(|u| !u.is_empty())
    }

    pub fn has_password(&self) -> bool {
        self.url.password().is_some()
    }

    /// The same URL with `password` for its user (percent-encoded as URLs need).
    pub fn with_password(&self, password: &str) -> Result<Self, String> {
        let mut url = self.url.clone();
        url.set_password(Some(password))
            .map_err(|_| "this URL cannot carry a password".to_string())?;
        Ok(Self { url })
    }

    /// The URL as it may be shown: password replaced by `***`.
    pub fn redacted(&self) -> String {
        if self.url.password().is_none() {
            return self.url.to_string();
        }
        let mut shown = self.url.clone();
        // set_password only fails for URLs that cannot have credentials, which this one has.
        let _ = shown.set_password(Some(MASK));
        shown.to_string()
    }

    /// A scrubber for text that may quote this URL or its password.
    pub fn redactor(&self) -> Redactor {
        Redactor::for_url(self)
    }
}

impl fmt::Display for CameraUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.redacted())
    }
}

/// Serialized redacted: a config written back out never carries the password.
impl serde::Serialize for CameraUrl {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.redacted())
    }
}

impl fmt::Debug for CameraUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CameraUrl({})", self.redacted())
    }
}

/// Removes known secrets from free text (error messages from libraries, for example).
#[derive(Clone, Default)]
pub struct Redactor {
    secrets: Vec<String>,
}

impl Redactor {
    pub fn for_url(url: &CameraUrl) -> Self {
        let mut secrets = Vec::new();
        if let Some(pw) = url.url.password() {
            // The URL keeps the password percent-encoded; libraries may print either form.
            secrets.push(pw.to_string());
            if let Ok(decoded) = percent_decode(pw)
                && decoded != pw
            {
                secrets.push(decoded);
            }
        }
        secrets.retain(|s| !s.is_empty());
        // Longest first, so a secret that contains another is masked whole.
        secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
        Self { secrets }
    }

    pub fn scrub(&self, text: &str) -> String {
        let mut out = text.to_string();
        for secret in &self.secrets {
            if out.contains(secret.as_str()) {
                out = out.replace(secret.as_str(), MASK);
            }
        }
        out
    }
}

fn percent_decode(s: &str) -> Result<String, ()> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).map_err(|_| ())?;
            out.push(u8::from_str_radix(hex, 16).map_err(|_| ())?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn password_is_masked_in_display_and_debug() {
        let url = CameraUrl::parse("rtsp://admin:s3cr%40t@10.0.0.5:554/stream1").unwrap();
        assert_eq!(url.to_string(), "rtsp://admin:***@10.0.0.5:554/stream1");
        assert!(!format!("{url:?}").contains("s3cr"));
        assert_eq!(
            url.expose_secret(),
            "rtsp://admin:s3cr%40t@10.0.0.5:554/stream1"
        );
    }

    #[test]
    fn url_without_password_is_unchanged() {
        let url = CameraUrl::parse("rtsp://cam.local/live").unwrap();
        assert_eq!(url.to_string(), "rtsp://cam.local/live");
        assert_eq!(url.port_or_default(), Some(554));
    }

    #[test]
    fn redactor_masks_encoded_and_decoded_password() {
        let url = CameraUrl::parse("rtsp://admin:s3cr%40t@host/x").unwrap();
        let r = url.redactor();
        assert_eq!(
            r.scrub("auth failed for s3cr@t and s3cr%40t"),
            "auth failed for *** and ***"
        );
    }

    #[test]
    fn parse_error_does_not_echo_input() {
        let err = CameraUrl::parse("rtsp://admin:hunter2@[bad").unwrap_err();
        assert!(!err.contains("hunter2"), "{err}");
    }
}
