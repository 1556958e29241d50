//! Why a notification was not delivered, and whether trying again can help. A target that
//! refuses the message for good (an HTTP 4xx other than 408 and 429, an SMTP 5xx, a TLS
//! certificate it presents that we refuse, an address that does not parse) gets a
//! `Permanent` error: the message is marked rejected and not retried, and the System page
//! shows it. Everything else (timeouts, refused connections, 5xx, 408, 429, SMTP 4xx) is
//! `Transient` and retried with backoff until the message expires.

use std::error::Error as StdError;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DeliveryError {
    #[error("{0} (refused for good: not retried)")]
    Permanent(String),
    #[error("{0}")]
    Transient(String),
}

impl DeliveryError {
    pub fn is_permanent(&self) -> bool {
        matches!(self, Self::Permanent(_))
    }

    /// An HTTP answer that is not a success, from `host`.
    pub fn from_status(host: &str, status: http::StatusCode) -> Self {
        let text = format!("{host} answered {status}");
        let retry_can_help = status.is_server_error()
            || status == http::StatusCode::REQUEST_TIMEOUT
            || status == http::StatusCode::TOO_MANY_REQUESTS
            || !status.is_client_error();
        match retry_can_help {
            true => Self::Transient(text),
            false => Self::Permanent(text),
        }
    }

    /// A request to `host` that got no HTTP answer.
    pub fn from_reqwest(host: &str, e: reqwest::Error) -> Self {
        let permanent = e.is_builder() || refuses_certificate(&e);
        let text = format!("{host}: {}", e.without_url());
        match permanent {
            true => Self::Permanent(text),
            false => Self::Transient(text),
        }
    }

    /// An SMTP exchange with `host` that failed.
    pub fn from_smtp(host: &str, e: lettre::transport::smtp::Error) -> Self {
        let permanent = e.is_permanent() || refuses_certificate(&e);
        let text = format!("SMTP {host}: {e}");
        match permanent {
            true => Self::Permanent(text),
            false => Self::Transient(text),
        }
    }
}

/// Whether anything in the error's chain is rustls refusing the peer's certificate. The
/// chain passes through `std::io::Error`, whose `source` skips the error it wraps, so that
/// one is opened with `get_ref`.
fn refuses_certificate(e: &(dyn StdError + 'static)) -> bool {
    let mut next: Option<&(dyn StdError + 'static)> = Some(e);
    while let Some(err) = next {
        if let Some(tls) = err.downcast_ref::<rustls::Error>() {
            return matches!(
                tls,
                rustls::Error::InvalidCertificate(_) | rustls::Error::NoCertificatesPresented
            );
        }
        if let Some(inner) = err
            .downcast_ref::<std::io::Error>()
            .and_then(|io| io.get_ref())
            && refuses_certificate(inner)
        {
            return true;
        }
        next = err.source();
    }
    false
}

#[cfg(test)]
mod tests {
    use super::DeliveryError;
    use http::StatusCode;

    #[test]
    fn client_errors_are_permanent_except_timeout_and_too_many_requests() {
        for (code, permanent) in [
            (400, true),
            (401, true),
            (403, true),
            (404, true),
            (410, true),
            (408, false),
            (429, false),
            (500, false),
            (502, false),
            (503, false),
        ] {
            let status = StatusCode::from_u16(code).expect("valid code");
            let e = DeliveryError::from_status("https://hooks.example", status);
            assert_eq!(e.is_permanent(), permanent, "{code}: {e}");
            assert!(e.to_string().contains(&code.to_string()), "{e}");
        }
    }

    #[test]
    fn a_wrapped_certificate_refusal_is_found_in_the_chain() {
        let tls = rustls::Error::InvalidCertificate(rustls::CertificateError::UnknownIssuer);
        let io = std::io::Error::other(tls);
        assert!(super::refuses_certificate(&io));
        let other = std::io::Error::other(rustls::Error::DecryptError);
        assert!(!super::refuses_certificate(&other));
        let refused = std::io::Error::from(std::io::ErrorKind::ConnectionRefused);
        assert!(!super::refuses_certificate(&refused));
    }
}
