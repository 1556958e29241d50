//! The HTTP targets, over reqwest with rustls (TLS verified against the system's roots and
//! an optional `ca_file`; no redirects followed, 15 s per attempt).
//!
//! Webhook: POST of the payload JSON — or multipart/form-data with parts `event` (the
//! JSON) and `snapshot` (the JPEG) when `snapshot: true` — with `X-Sentrix-Delivery` (the
//! idempotency key, the same on every attempt), `X-Sentrix-Event` (start, update, end),
//! `X-Sentrix-Timestamp` (Unix seconds) and, with a secret, `X-Sentrix-Signature:
//! sha256=HEX`, the HMAC-SHA256 of `TIMESTAMP.BODY` (the exact bytes sent).
//!
//! ntfy: the snapshot as the attachment (PUT, `Filename`) with `Title`, `Message`,
//! `Tags`, `Priority` and `Click` headers; a POST of the text when there is no snapshot.
//!
//! Errors name the host only: a webhook URL may carry a token in its path.

use super::error::DeliveryError;
use super::message::{Letter, Summary};
use crate::config::notify::{NtfyTarget, WebhookTarget};
use hmac::{Hmac, Mac};
use std::path::Path;
use std::time::Duration;

const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(15);

/// A client that trusts the system's roots and `ca_file`'s certificates.
pub fn client(ca_file: Option<&Path>) -> Result<reqwest::Client, String> {
    crate::tls::client_builder(ca_file)?
        .timeout(ATTEMPT_TIMEOUT)
        .build()
        .map_err(|e| format!("HTTP client: {e}"))
}

/// "https://host:port" of a URL, for messages.
pub fn origin_of(url: &str) -> String {
    url::Url::parse(url)
        .map(|u| u.origin().ascii_serialization())
        .unwrap_or_else(|_| "the configured URL".into())
}

/// Turns a send's result into Ok for a 2xx answer, else an error that names the host and
/// says whether trying again can help (error.rs).
async fn answer(url: &str, sent: reqwest::Result<reqwest::Response>) -> Result<(), DeliveryError> {
    let host = origin_of(url);
    match sent {
        Ok(r) if r.status().is_success() => Ok(()),
        Ok(r) => Err(DeliveryError::from_status(&host, r.status())),
        Err(e) => Err(DeliveryError::from_reqwest(&host, e)),
    }
}

/// One webhook message.
pub struct Webhook<'a> {
    pub target: &'a WebhookTarget,
    pub client: &'a reqwest::Client,
}

impl Webhook<'_> {
    pub async fn send(&self, letter: &Letter<'_>, now_ms: i64) -> Result<(), DeliveryError> {
        let Letter {
            delivery_id,
            payload,
            snapshot,
        } = *letter;
        let json = serde_json::to_vec(payload)
            .map_err(|e| DeliveryError::Permanent(format!("payload: {e}")))?;
        let (body, content_type) = match snapshot.filter(|_| self.target.snapshot) {
            Some(jpeg) => {
                let event_id = payload["event"]["id"].as_i64().unwrap_or_default();
                multipart(&json, jpeg, event_id, delivery_id)
            }
            None => (json, "application/json".to_string()),
        };
        let timestamp = (now_ms / 1000).to_string();
        let mut req = self
            .client
            .post(&self.target.url)
            .header("content-type", content_type)
            .header("x-sentrix-delivery", delivery_id)
            .header(
                "x-sentrix-event",
                payload["kind"].as_str().unwrap_or_default(),
            )
            .header("x-sentrix-timestamp", &timestamp);
        if let Some(secret) = &self.target.secret {
            // An unreadable secret file can be mended without a restart: retried.
            let key = secret
                .reveal()
                .map_err(|e| DeliveryError::Transient(format!("secret: {e}")))?;
            req = req.header(
                "x-sentrix-signature",
                signature(key.as_bytes(), &timestamp, &body),
            );
        }
        answer(&self.target.url, req.body(body).send().await).await
    }
}

/// `sha256=` and the hex HMAC-SHA256 of `TIMESTAMP.BODY`.
pub fn signature(key: &[u8], timestamp: &str, body: &[u8]) -> String {
    // HMAC takes a key of any length.
    let mut mac = match Hmac::<sha2::Sha256>::new_from_slice(key) {
        Ok(m) => m,
        Err(_) => return String::new(),
    };
    mac.update(timestamp.as_bytes());
    mac.update(b".");
    mac.update(body);
    let hex: String = mac
        .finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("sha256={hex}")
}

/// A multipart/form-data body with the event JSON and the snapshot; the boundary comes
/// from the delivery id, which neither part can hold.
fn multipart(json: &[u8], jpeg: &[u8], event_id: i64, delivery_id: &str) -> (Vec<u8>, String) {
    let boundary = format!("sentrix-{delivery_id}");
    let mut body = Vec::with_capacity(json.len() + jpeg.len() + 400);
    body.extend_from_slice(
        format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"event\"\r\n\
             Content-Type: application/json\r\n\r\n"
        )
        .as_bytes(),
    );
    body.extend_from_slice(json);
    body.extend_from_slice(
        format!(
            "\r\n--{boundary}\r\nContent-Disposition: form-data; name=\"snapshot\"; \
             filename=\"event-{event_id}.jpg\"\r\nContent-Type: image/jpeg\r\n\r\n"
        )
        .as_bytes(),
    );
    body.extend_from_slice(jpeg);
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    (body, format!("multipart/form-data; boundary={boundary}"))
}

/// One ntfy message.
pub struct Ntfy<'a> {
    pub target: &'a NtfyTarget,
    pub client: &'a reqwest::Client,
}

impl Ntfy<'_> {
    pub async fn send(&self, letter: &Letter<'_>) -> Result<(), DeliveryError> {
        let s = Summary::of(letter.payload);
        let mut tags = vec![s.label.clone()];
        tags.extend(self.target.tags.iter().cloned());
        let url = &self.target.url;
        let mut req = match letter.snapshot {
            Some(jpeg) => self
                .client
                .put(url)
                .header("filename", format!("event-{}.jpg", s.event_id))
                .header("message", header_text(&s.line()))
                .body(jpeg.to_vec()),
            None => self.client.post(url).body(s.body()),
        };
        req = req
            .header("title", header_text(&s.title()))
            .header("tags", header_text(&tags.join(",")))
            .header("priority", self.target.priority.to_string())
            .header("x-sentrix-delivery", letter.delivery_id);
        if let Some(link) = &s.url {
            req = req.header("click", link.as_str());
        }
        if let Some(token) = &self.target.token {
            let token = token
                .reveal()
                .map_err(|e| DeliveryError::Transient(format!("token: {e}")))?;
            req = req.bearer_auth(token);
        }
        answer(url, req.send().await).await
    }
}

/// A header value: ASCII as it is, anything else as RFC 2047 UTF-8 base64 (which ntfy
/// decodes), with control characters dropped.
fn header_text(s: &str) -> String {
    let clean: String = s.chars().filter(|c| !c.is_control()).collect();
    if clean.is_ascii() {
        return clean;
    }
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD.encode(clean.as_bytes());
    format!("=?UTF-8?B?{b64}?=")
}

#[cfg(test)]
mod tests {
    #[test]
    fn signatures_are_hmac_sha256_of_timestamp_and_body() -> Result<(), hmac::digest::InvalidLength>
    {
        // RFC 4231 test case 2 ("what do ya want for nothing?" under "Jefe"), split as
        // timestamp "what do ya want" + "." + body: the dot joins them.
        let sig = super::signature(b"Jefe", "what do ya want", b"for nothing?");
        assert_ne!(
            sig,
            super::signature(b"Jefe", "what do ya want", b"for nothing!")
        );
        let whole = {
            use hmac::Mac;
            let mut m = hmac::Hmac::<sha2::Sha256>::new_from_slice(b"Jefe")?;
            m.update(b"what do ya want.for nothing?");
            m.finalize()
                .into_bytes()
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect::<String>()
        };
        assert_eq!(sig, format!("sha256={whole}"));
        Ok(())
    }

    #[test]
    fn header_text_keeps_ascii_and_encodes_the_rest() {
        assert_eq!(super::header_text("person at Door"), "person at Door");
        assert_eq!(super::header_text("a\nb"), "ab");
        assert!(super::header_text("person at Café").starts_with("=?UTF-8?B?"));
    }
}
