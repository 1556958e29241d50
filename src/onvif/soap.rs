//! SOAP 1.2 for ONVIF: the envelope, the WS-Security UsernameToken with a password digest
//! (Base64(SHA-1(nonce + created + password)), as ONVIF's core specification requires),
//! one request over HTTP, and the faults that mean a refused login. Responses are read
//! with `roxmltree` by local element name, so any namespace prefix a camera picks works.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use sha1::{Digest, Sha1};
use std::time::Duration;

/// How long one request may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);
/// The most of an answer read (a profile list of a many-channel recorder fits easily).
pub const MAX_ANSWER_BYTES: usize = 1 << 20;

const ENVELOPE_OPEN: &str = r#"<?xml version="1.0" encoding="UTF-8"?><s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope" xmlns:tds="http://www.onvif.org/ver10/device/wsdl" xmlns:trt="http://www.onvif.org/ver10/media/wsdl" xmlns:tt="http://www.onvif.org/ver10/schema">"#;

/// A login for the camera, and the camera's clock offset to stamp tokens with.
pub struct Login<'a> {
    pub user: &'a str,
    pub password: &'a str,
    /// Camera clock minus ours, ms: the token's Created time is the camera's.
    pub offset_ms: i64,
}

/// Why a request failed.
#[derive(Debug)]
pub enum SoapError {
    /// The camera refused the login (a NotAuthorized fault, or 401).
    Refused(String),
    /// No connection, a timeout, or an answer too large.
    Transport(String),
    /// A fault, or an answer without what was asked.
    Answer(String),
}

impl std::fmt::Display for SoapError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Refused(m) | Self::Transport(m) | Self::Answer(m) => f.write_str(m),
        }
    }
}

/// Text safe inside an XML element.
pub fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// The password digest of ONVIF's UsernameToken.
pub fn password_digest(nonce: &[u8], created: &str, password: &str) -> String {
    let digest = Sha1::new()
        .chain_update(nonce)
        .chain_update(created.as_bytes())
        .chain_update(password.as_bytes())
        .finalize();
    B64.encode(digest)
}

fn security_header(login: &Login<'_>) -> Result<String, SoapError> {
    let mut nonce = [0u8; 16];
    getrandom::getrandom(&mut nonce).map_err(|e| SoapError::Transport(e.to_string()))?;
    let created_ms = crate::base::clock::wall_ms() + login.offset_ms;
    let created = chrono::DateTime::from_timestamp_millis(created_ms)
        .unwrap_or_default()
        .format("%Y-%m-%dT%H:%M:%S%.3fZ")
        .to_string();
    Ok(format!(
        r#"<s:Header><wsse:Security s:mustUnderstand="1" xmlns:wsse="http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd" xmlns:wsu="http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd"><wsse:UsernameToken><wsse:Username>{}</wsse:Username><wsse:Password Type="http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-username-token-profile-1.0#PasswordDigest">{}</wsse:Password><wsse:Nonce EncodingType="http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-soap-message-security-1.0#Base64Binary">{}</wsse:Nonce><wsu:Created>{created}</wsu:Created></wsse:UsernameToken></wsse:Security></s:Header>"#,
        escape(login.user),
        password_digest(&nonce, &created, login.password),
        B64.encode(nonce),
    ))
}

/// Sends `body` (the request element) to `url`, with `login` when given; returns the
/// answer's text.
pub async fn call(
    client: &reqwest::Client,
    url: &str,
    body: &str,
    login: Option<&Login<'_>>,
) -> Result<String, SoapError> {
    let header = login.map(security_header).transpose()?.unwrap_or_default();
    let envelope = format!("{ENVELOPE_OPEN}{header}<s:Body>{body}</s:Body></s:Envelope>");
    let answer = client
        .post(url)
        .timeout(REQUEST_TIMEOUT)
        .header("content-type", "application/soap+xml; charset=utf-8")
        .body(envelope)
        .send()
        .await
        .map_err(|e| SoapError::Transport(format!("{url}: {}", without_url(&e))))?;
    let status = answer.status();
    if answer.content_length().unwrap_or(0) as usize > MAX_ANSWER_BYTES {
        return Err(SoapError::Transport(format!(
            "{url}: the answer is too large"
        )));
    }
    let text = answer
        .text()
        .await
        .map_err(|e| SoapError::Transport(format!("{url}: {}", without_url(&e))))?;
    if text.len() > MAX_ANSWER_BYTES {
        return Err(SoapError::Transport(format!(
            "{url}: the answer is too large"
        )));
    }
    match fault(&text) {
        Some(reason) if is_refusal(&reason) || status.as_u16() == 401 => {
            Err(SoapError::Refused(reason))
        }
        Some(reason) => Err(SoapError::Answer(reason)),
        None if status.as_u16() == 401 => Err(SoapError::Refused("401 Unauthorized".into())),
        None if !status.is_success() => Err(SoapError::Answer(format!("HTTP {status}"))),
        None => Ok(text),
    }
}

fn without_url(e: &reqwest::Error) -> String {
    let text = e.to_string();
    match e.url() {
        Some(u) => text.replace(u.as_str(), "").trim().to_string(),
        None => text,
    }
}

/// A SOAP fault's reason (and subcode), if the answer is one.
fn fault(text: &str) -> Option<String> {
    let doc = roxmltree::Document::parse(text).ok()?;
    let f = doc.descendants().find(|n| n.tag_name().name() == "Fault")?;
    let words: Vec<&str> = f
        .descendants()
        .filter(|n| matches!(n.tag_name().name(), "Text" | "Value"))
        .filter_map(|n| n.text())
        .map(str::trim)
        .collect();
    Some(words.join(" "))
}

fn is_refusal(reason: &str) -> bool {
    let lower = reason.to_ascii_lowercase();
    [
        "notauthorized",
        "not authorized",
        "authority failure",
        "failedauthentication",
    ]
    .iter()
    .any(|w| lower.contains(w))
}

/// The text of the first element named `local` under `node`.
pub fn text_of<'a, 'i: 'a>(node: roxmltree::Node<'a, 'i>, local: &str) -> Option<&'a str> {
    node.descendants()
        .find(|n| n.tag_name().name() == local)
        .and_then(|n| n.text())
        .map(str::trim)
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_digest_is_onvifs() {
        // The worked example of the ONVIF Application Programmer's Guide (5.12.2):
        // nonce LKqI6G/AikKCQrN0zqZFlg==, created 2010-09-16T07:50:45Z, password userpassword.
        use base64::Engine;
        let nonce = base64::engine::general_purpose::STANDARD
            .decode("LKqI6G/AikKCQrN0zqZFlg==")
            .unwrap();
        assert_eq!(
            super::password_digest(&nonce, "2010-09-16T07:50:45Z", "userpassword"),
            "tuOSpGlFlIXsozq4HFNeeGeFLEI="
        );
    }

    #[test]
    fn a_refusal_is_told_from_other_faults() {
        let refused = r#"<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope" xmlns:ter="http://www.onvif.org/ver10/error"><s:Body><s:Fault><s:Code><s:Value>s:Sender</s:Value><s:Subcode><s:Value>ter:NotAuthorized</s:Value></s:Subcode></s:Code><s:Reason><s:Text xml:lang="en">Sender not authorized</s:Text></s:Reason></s:Fault></s:Body></s:Envelope>"#;
        let reason = super::fault(refused).unwrap();
        assert!(super::is_refusal(&reason), "{reason}");
        assert!(!super::is_refusal("Action not supported: GetFoo"));
        assert!(super::fault("<a><b/></a>").is_none());
    }
}
