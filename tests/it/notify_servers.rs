//! The real servers the notification tests deliver to (sentrix_testkit::servers, shared
//! with `sentrix-bench notify`), started here with a panic on failure: an HTTPS receiver
//! that keeps every request, Mosquitto with TLS and a password, aiosmtpd with STARTTLS,
//! and an MQTT subscriber that keeps every message.

pub use sentrix_testkit::servers::{Daemon, Received, Receiver, Subscriber, TestCert, mails};
use std::path::Path;

pub fn test_cert(dir: &Path) -> TestCert {
    TestCert::make(dir).unwrap()
}

pub fn free_port() -> u16 {
    sentrix_testkit::servers::free_port().unwrap()
}

pub async fn receiver(cert: &TestCert, port: u16) -> Receiver {
    Receiver::start(cert, port).await.unwrap()
}

pub fn mosquitto(dir: &Path, cert: &TestCert, port: u16, user: &str, password: &str) -> Daemon {
    sentrix_testkit::servers::mosquitto(dir, cert, port, user, password).unwrap()
}

pub fn smtp_server(maildir: &Path, cert: &TestCert, port: u16) -> Daemon {
    sentrix_testkit::servers::smtp_server(maildir, cert, port).unwrap()
}

pub async fn subscriber(cert: &TestCert, port: u16, user: &str, password: &str) -> Subscriber {
    Subscriber::start(cert, port, user, password).await.unwrap()
}
