//! The e-mail target, through lettre's SMTP client over rustls: STARTTLS (default) or TLS
//! from the first byte, verified against the system's roots and an optional `ca_file`;
//! plain SMTP only to a server on loopback (the config check enforces it). The message:
//! a subject with the label, the camera and the time, a text body with the dashboard link,
//! the snapshot attached, and `Message-ID: <DELIVERY@sentrix>` so a resend after a crash
//! is recognisably the same message.

use super::error::DeliveryError;
use super::message::{Letter, Summary};
use crate::config::notify::{EmailTarget, SmtpSecurity};
use lettre::message::{Attachment, Mailbox, MultiPart, SinglePart, header::ContentType};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use std::time::Duration;

pub struct Email {
    target: EmailTarget,
    transport: AsyncSmtpTransport<Tokio1Executor>,
}

impl Email {
    /// The SMTP transport (connections are made per message).
    pub fn new(target: &EmailTarget) -> Result<Self, String> {
        let port = target.port.unwrap_or(match target.security {
            SmtpSecurity::Starttls => 587,
            SmtpSecurity::Tls => 465,
            SmtpSecurity::None => 25,
        });
        let tls = match target.security {
            SmtpSecurity::None => Tls::None,
            SmtpSecurity::Starttls => Tls::Required(tls_parameters(target)?),
            SmtpSecurity::Tls => Tls::Wrapper(tls_parameters(target)?),
        };
        let mut b = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&target.host)
            .port(port)
            .tls(tls)
            .timeout(Some(Duration::from_secs(15)));
        if let Some(user) = &target.username {
            let password = match &target.password {
                Some(p) => p.reveal().map_err(|e| format!("password: {e}"))?,
                None => String::new(),
            };
            b = b.credentials(Credentials::new(user.clone(), password));
        }
        Ok(Self {
            target: target.clone(),
            transport: b.build(),
        })
    }

    /// Sends one message. An address that does not parse and a 5xx from the server are
    /// permanent; a server that is down or answers 4xx is tried again (error.rs).
    pub async fn send(&self, letter: &Letter<'_>) -> Result<(), DeliveryError> {
        let message = self.message(letter).map_err(DeliveryError::Permanent)?;
        self.transport
            .send(message)
            .await
            .map(|_| ())
            .map_err(|e| DeliveryError::from_smtp(&self.target.host, e))
    }

    fn message(&self, letter: &Letter<'_>) -> Result<Message, String> {
        let s = Summary::of(letter.payload);
        let delivery_id = letter.delivery_id;
        let mailbox = |a: &str| {
            a.parse::<Mailbox>()
                .map_err(|e| format!("address {a:?}: {e}"))
        };
        let mut b = Message::builder()
            .from(mailbox(&self.target.from)?)
            .subject(format!(
                "[sentrix] {} at {}",
                s.title(),
                crate::base::localtime::LocalTime::of_ms(s.start_ms).text()
            ))
            .message_id(Some(format!("<{delivery_id}@sentrix>")));
        for to in &self.target.to {
            b = b.to(mailbox(to)?);
        }
        let text = SinglePart::plain(s.body());
        let body = match letter.snapshot {
            Some(jpeg) => {
                let jpeg_type = ContentType::parse("image/jpeg").map_err(|e| e.to_string())?;
                let file = Attachment::new(format!("event-{}.jpg", s.event_id))
                    .body(jpeg.to_vec(), jpeg_type);
                MultiPart::mixed().singlepart(text).singlepart(file)
            }
            None => MultiPart::mixed().singlepart(text),
        };
        b.multipart(body)
            .map_err(|e| format!("building the message: {e}"))
    }
}

fn tls_parameters(target: &EmailTarget) -> Result<TlsParameters, String> {
    let mut b = TlsParameters::builder(target.host.clone());
    if let Some(ca) = &target.ca_file {
        let pem = std::fs::read(ca).map_err(|e| format!("cannot read {}: {e}", ca.display()))?;
        let cert = Certificate::from_pem(&pem).map_err(|e| format!("{}: {e}", ca.display()))?;
        b = b.add_root_certificate(cert);
    }
    b.build_rustls()
        .map_err(|e| format!("TLS for {}: {e}", target.host))
}
