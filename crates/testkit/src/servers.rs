//! Real servers on loopback for the notification bench and tests: an HTTPS receiver
//! (hyper over rustls) that keeps every request with its arrival time, Mosquitto with TLS
//! and a password file, aiosmtpd requiring STARTTLS and keeping mail in a maildir (both
//! Debian packages, started as child processes), and an MQTT subscriber (rumqttc) that
//! keeps every message it sees; and s3s-fs, a real S3-compatible server (the off-site
//! bench and tests).

use anyhow::{Context, bail};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

/// A certificate for `localhost`/127.0.0.1 and its key.
pub struct TestCert {
    pub cert: PathBuf,
    pub key: PathBuf,
}

impl TestCert {
    pub fn make(dir: &Path) -> anyhow::Result<Self> {
        let (cert, key) = (dir.join("servers.crt"), dir.join("servers.key"));
        sentrix::tls::generate(&cert, &key, &sentrix::tls::default_names(&[]))?;
        Ok(Self { cert, key })
    }
}

/// A loopback port that was free a moment ago.
pub fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// One request the receiver got.
#[derive(Debug, Clone)]
pub struct Received {
    pub method: String,
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    pub at: Instant,
}

impl Received {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// An HTTPS server on 127.0.0.1 answering 200 to everything but `/status/NNN…` (NNN);
/// closed when dropped.
pub struct Receiver {
    pub port: u16,
    got: Arc<Mutex<Vec<Received>>>,
    stop: CancellationToken,
}

impl Receiver {
    /// On `port` (0: any free one).
    pub async fn start(cert: &TestCert, port: u16) -> anyhow::Result<Self> {
        let tls = sentrix::tls::server_config(&cert.cert, &cert.key)?;
        let listener =
            tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], port))).await?;
        let port = listener.local_addr()?.port();
        let got = Arc::new(Mutex::new(Vec::new()));
        let stop = CancellationToken::new();
        tokio::spawn(serve(listener, tls, got.clone(), stop.clone()));
        Ok(Self { port, got, stop })
    }

    /// The requests whose path starts with `prefix`, in arrival order.
    pub fn requests(&self, prefix: &str) -> Vec<Received> {
        let got = self.got.lock().unwrap_or_else(|p| p.into_inner());
        got.iter()
            .filter(|r| r.path.starts_with(prefix))
            .cloned()
            .collect()
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

async fn serve(
    listener: tokio::net::TcpListener,
    tls: Arc<rustls::ServerConfig>,
    got: Arc<Mutex<Vec<Received>>>,
    stop: CancellationToken,
) {
    let acceptor = tokio_rustls::TlsAcceptor::from(tls);
    loop {
        let tcp = tokio::select! {
            _ = stop.cancelled() => return,
            a = listener.accept() => match a { Ok((tcp, _)) => tcp, Err(_) => continue },
        };
        let (acceptor, got, stop) = (acceptor.clone(), got.clone(), stop.clone());
        tokio::spawn(async move {
            let Ok(stream) = acceptor.accept(tcp).await else {
                return;
            };
            let service = hyper::service::service_fn(move |req| keep(req, got.clone()));
            let conn = hyper::server::conn::http1::Builder::new()
                .serve_connection(hyper_util::rt::TokioIo::new(stream), service);
            tokio::select! {
                _ = conn => {}
                _ = stop.cancelled() => {}
            }
        });
    }
}

async fn keep(
    req: hyper::Request<hyper::body::Incoming>,
    got: Arc<Mutex<Vec<Received>>>,
) -> Result<hyper::Response<axum::body::Body>, std::convert::Infallible> {
    let (parts, body) = req.into_parts();
    let body = axum::body::to_bytes(axum::body::Body::new(body), 64 << 20)
        .await
        .unwrap_or_default();
    let headers = parts.headers.iter().map(|(k, v)| {
        let value = String::from_utf8_lossy(v.as_bytes()).into_owned();
        (k.to_string(), value)
    });
    let path = parts.uri.path().to_string();
    let status = answer_for(&path);
    got.lock()
        .unwrap_or_else(|p| p.into_inner())
        .push(Received {
            method: parts.method.to_string(),
            path,
            headers: headers.collect(),
            body: body.to_vec(),
            at: Instant::now(),
        });
    let mut response = hyper::Response::new(axum::body::Body::from("{\"ok\":true}"));
    *response.status_mut() = status;
    Ok(response)
}

/// 200, or NNN for a path under `/status/NNN` (a target that refuses: 401 for a revoked
/// token, 503 for one that is overloaded).
fn answer_for(path: &str) -> hyper::StatusCode {
    path.strip_prefix("/status/")
        .and_then(|rest| rest.get(..3)?.parse::<u16>().ok())
        .and_then(|code| hyper::StatusCode::from_u16(code).ok())
        .unwrap_or(hyper::StatusCode::OK)
}

/// A child process, killed when dropped.
pub struct Daemon(pub Child);

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn wait_for_port(port: u16, what: &str, child: &mut Child) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(15);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        if let Some(status) = child.try_wait()? {
            bail!("{what} exited at start: {status}");
        }
        if Instant::now() > deadline {
            bail!("{what} does not listen on {port}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Ok(())
}

/// Mosquitto on `port` with TLS (`cert`) and one user.
pub fn mosquitto(
    dir: &Path,
    cert: &TestCert,
    port: u16,
    user: &str,
    password: &str,
) -> anyhow::Result<Daemon> {
    let passwd = dir.join("mosquitto.passwd");
    let made = Command::new("mosquitto_passwd")
        .args(["-c", "-b"])
        .arg(&passwd)
        .args([user, password])
        .output()
        .context("mosquitto_passwd (apt-get install mosquitto)")?;
    if !made.status.success() {
        bail!(
            "mosquitto_passwd: {}",
            String::from_utf8_lossy(&made.stderr)
        );
    }
    let conf = dir.join("mosquitto.conf");
    let text = format!(
        "user root\npersistence false\nlog_dest stderr\nlistener {port} 127.0.0.1\n\
         certfile {}\nkeyfile {}\npassword_file {}\nallow_anonymous false\n",
        cert.cert.display(),
        cert.key.display(),
        passwd.display()
    );
    std::fs::write(&conf, text)?;
    let mut child = Command::new("mosquitto")
        .arg("-c")
        .arg(&conf)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .context("mosquitto (apt-get install mosquitto)")?;
    wait_for_port(port, "mosquitto", &mut child)?;
    Ok(Daemon(child))
}

/// aiosmtpd on `port` requiring STARTTLS (`cert`), keeping mail in `maildir`.
pub fn smtp_server(maildir: &Path, cert: &TestCert, port: u16) -> anyhow::Result<Daemon> {
    let python = match Path::new("/usr/bin/python3").exists() {
        true => "/usr/bin/python3",
        false => "python3",
    };
    let mut child = Command::new(python)
        .args(["-m", "aiosmtpd", "-n", "-l", &format!("127.0.0.1:{port}")])
        .arg("--tlscert")
        .arg(&cert.cert)
        .arg("--tlskey")
        .arg(&cert.key)
        .args(["-c", "aiosmtpd.handlers.Mailbox"])
        .arg(maildir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .context("aiosmtpd (apt-get install python3-aiosmtpd)")?;
    wait_for_port(port, "aiosmtpd", &mut child)?;
    Ok(Daemon(child))
}

/// The mails delivered to a maildir, as text.
pub fn mails(maildir: &Path) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(maildir.join("new")) else {
        return Vec::new();
    };
    entries
        .filter_map(|e| std::fs::read_to_string(e.ok()?.path()).ok())
        .collect()
}

/// One MQTT message the subscriber saw.
#[derive(Debug, Clone)]
pub struct Seen {
    pub topic: String,
    pub payload: Vec<u8>,
    pub retain: bool,
    pub at: Instant,
}

/// A subscriber to `#` over TLS (trusting `cert`), keeping every message.
pub struct Subscriber {
    seen: Arc<Mutex<Vec<Seen>>>,
    stop: CancellationToken,
}

impl Subscriber {
    pub async fn start(
        cert: &TestCert,
        port: u16,
        user: &str,
        password: &str,
    ) -> anyhow::Result<Self> {
        use rumqttc::{AsyncClient, MqttOptions, QoS, TlsConfiguration, Transport};
        let id = format!("sentrix-sub-{}-{port}", std::process::id());
        let mut o = MqttOptions::new(id, "localhost", port);
        o.set_credentials(user, password);
        o.set_max_packet_size(16 << 20, 16 << 20);
        let tls = trust_only(&std::fs::read(&cert.cert)?)?;
        o.set_transport(Transport::tls_with_config(TlsConfiguration::Rustls(tls)));
        let (client, events) = AsyncClient::new(o, 64);
        client.subscribe("#", QoS::AtLeastOnce).await?;
        let seen = Arc::new(Mutex::new(Vec::new()));
        let stop = CancellationToken::new();
        tokio::spawn(subscribe(client, events, seen.clone(), stop.clone()));
        Ok(Self { seen, stop })
    }

    fn filtered(&self, keep: impl Fn(&str) -> bool) -> Vec<Seen> {
        let seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
        seen.iter().filter(|s| keep(&s.topic)).cloned().collect()
    }

    /// The messages on `topic`, in order.
    pub fn on(&self, topic: &str) -> Vec<Seen> {
        self.filtered(|t| t == topic)
    }

    pub fn topics_starting(&self, prefix: &str) -> Vec<Seen> {
        self.filtered(|t| t.starts_with(prefix))
    }
}

impl Drop for Subscriber {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

async fn subscribe(
    _client: rumqttc::AsyncClient,
    mut events: rumqttc::EventLoop,
    seen: Arc<Mutex<Vec<Seen>>>,
    stop: CancellationToken,
) {
    use rumqttc::{Event, Packet};
    loop {
        let ev = tokio::select! {
            _ = stop.cancelled() => return,
            ev = events.poll() => ev,
        };
        match ev {
            Ok(Event::Incoming(Packet::Publish(p))) => {
                let mut seen = seen.lock().unwrap_or_else(|p| p.into_inner());
                seen.push(Seen {
                    topic: p.topic.clone(),
                    payload: p.payload.to_vec(),
                    retain: p.retain,
                    at: Instant::now(),
                });
            }
            Ok(_) => {}
            Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
        }
    }
}

/// rustls (ring) trusting only the certificates of `pem`.
pub fn trust_only(pem: &[u8]) -> anyhow::Result<Arc<rustls::ClientConfig>> {
    use rustls::pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls::pki_types::CertificateDer::pem_slice_iter(pem) {
        roots.add(cert?)?;
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

/// The s3s-fs binary `scripts/deps.sh test` builds: `$SENTRIX_S3S_FS`, else its cache,
/// else one on PATH.
fn s3s_fs_binary() -> PathBuf {
    if let Some(p) = std::env::var_os("SENTRIX_S3S_FS") {
        return PathBuf::from(p);
    }
    let cached =
        std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache/sentrix/s3s-fs/bin/s3s-fs"));
    match cached {
        Some(p) if p.exists() => p,
        _ => PathBuf::from("s3s-fs"),
    }
}

/// A real S3-compatible server (s3s-fs) on loopback `port`, keeping bucket `bucket`'s
/// objects as files under `root/bucket/`, requiring SigV4 with `access`/`secret`.
pub fn s3_server(
    root: &Path,
    port: u16,
    bucket: &str,
    access: &str,
    secret: &str,
) -> anyhow::Result<Daemon> {
    std::fs::create_dir_all(root.join(bucket))?;
    let mut child = Command::new(s3s_fs_binary())
        .args(["--host", "127.0.0.1", "--port", &port.to_string()])
        .args(["--access-key", access, "--secret-key", secret])
        .arg(root)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .context("s3s-fs (scripts/deps.sh test builds it)")?;
    wait_for_port(port, "s3s-fs", &mut child)?;
    Ok(Daemon(child))
}
