//! Raw TLS connections to a dashboard from a chosen loopback address (127.0.0.x), for the
//! tests that play a hostile LAN: connection caps per address, floods, slow headers.

use std::net::SocketAddr;
use std::sync::Arc;

pub type Stream = tokio_rustls::client::TlsStream<tokio::net::TcpStream>;

/// A TLS client trusting `cert_pem` (the dashboard's certificate) for `localhost`.
pub fn connector(cert_pem: &[u8]) -> tokio_rustls::TlsConnector {
    tokio_rustls::TlsConnector::from(client_config(cert_pem))
}

/// rustls (ring) trusting only `cert_pem`.
pub fn client_config(cert_pem: &[u8]) -> Arc<rustls::ClientConfig> {
    use rustls::pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(rustls::pki_types::CertificateDer::from_pem_slice(cert_pem).unwrap())
        .unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    Arc::new(config)
}

/// A TLS connection from `local` to 127.0.0.1:`port`; the error when the server closes it
/// before the handshake ends (a refusal).
pub async fn connect_from(
    tls: &tokio_rustls::TlsConnector,
    port: u16,
    local: [u8; 4],
) -> std::io::Result<Stream> {
    let socket = tokio::net::TcpSocket::new_v4()?;
    socket.bind(SocketAddr::from((local, 0)))?;
    let tcp = socket
        .connect(SocketAddr::from(([127, 0, 0, 1], port)))
        .await?;
    let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
    tls.connect(name, tcp).await
}
