//! The real servers the notification tests deliver to, all on loopback: an HTTPS receiver
//! (hyper over rustls with a generated certificate) that keeps every request, Mosquitto
//! with TLS and a password file, and aiosmtpd with STARTTLS keeping mail in a maildir; and
//! an MQTT subscriber (rumqttc) that keeps every message it sees.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// A certificate for `localhost`/127.0.0.1 and its key, made for one test.
pub struct TestCert {
    pub cert: PathBuf,
    pub key: PathBuf,
}

impl TestCert {
    pub fn make(dir: &Path) -> Self {
        let (cert, key) = (dir.join("servers.crt"), dir.join("servers.key"));
        sentrix::tls::generate(&cert, &key, &sentrix::tls::default_names(&[])).unwrap();
        Self { cert, key }
    }
}

/// A free loopback port (free a moment ago).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// One request the HTTPS receiver got.
#[derive(Debug, Clone)]
pub struct Received {
    pub method: String,
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Received {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// An HTTPS server on 127.0.0.1:`port` that answers 200 to everything and keeps what it
/// got; dropping it (or `stop`) closes the port.
pub struct Receiver {
    pub port: u16,
    pub got: Arc<Mutex<Vec<Received>>>,
    stop: CancellationToken,
}

impl Receiver {
    pub async fn start(cert: &TestCert, port: u16) -> Self {
        let tls = sentrix::tls::server_config(&cert.cert, &cert.key).unwrap();
        let listener = tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], port)))
            .await
            .unwrap();
        let port = listener.local_addr().unwrap().port();
        let got = Arc::new(Mutex::new(Vec::new()));
        let stop = CancellationToken::new();
        tokio::spawn(serve(listener, tls, got.clone(), stop.clone()));
        Self { port, got, stop }
    }

    pub fn requests(&self, path_prefix: &str) -> Vec<Received> {
        let got = self.got.lock().unwrap();
        got.iter()
            .filter(|r| r.path.starts_with(path_prefix))
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
        let (tcp, _) = tokio::select! {
            _ = stop.cancelled() => return,
            a = listener.accept() => match a { Ok(a) => a, Err(_) => continue },
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
    got.lock().unwrap().push(Received {
        method: parts.method.to_string(),
        path: parts.uri.path().to_string(),
        headers: parts
            .headers
            .iter()
            .map(|(k, v)| {
                (
                    k.to_string(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect(),
        body: body.to_vec(),
    });
    Ok(hyper::Response::new(axum::body::Body::from(
        "{\"ok\":true}",
    )))
}

/// A child process killed when dropped.
pub struct Daemon(pub Child);

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn wait_for_port(port: u16, what: &str, child: &mut Child) {
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        if let Ok(Some(status)) = child.try_wait() {
            panic!("{what} exited at start: {status}");
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{what} does not listen on {port}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Mosquitto on `port` with TLS (`cert`) and one user.
pub fn mosquitto(dir: &Path, cert: &TestCert, port: u16, user: &str, password: &str) -> Daemon {
    let passwd = dir.join("mosquitto.passwd");
    let made = Command::new("mosquitto_passwd")
        .args(["-c", "-b"])
        .arg(&passwd)
        .args([user, password])
        .output()
        .expect("mosquitto_passwd runs (apt-get install mosquitto)");
    assert!(
        made.status.success(),
        "{}",
        String::from_utf8_lossy(&made.stderr)
    );
    let conf = dir.join("mosquitto.conf");
    std::fs::write(
        &conf,
        format!(
            "user root\npersistence false\nlog_dest stderr\nlistener {port} 127.0.0.1\n\
             certfile {}\nkeyfile {}\npassword_file {}\nallow_anonymous false\n",
            cert.cert.display(),
            cert.key.display(),
            passwd.display()
        ),
    )
    .unwrap();
    let mut child = Command::new("mosquitto")
        .arg("-c")
        .arg(&conf)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("mosquitto runs (apt-get install mosquitto)");
    wait_for_port(port, "mosquitto", &mut child);
    Daemon(child)
}

/// aiosmtpd on `port` requiring STARTTLS (`cert`), keeping mail in `maildir`.
pub fn smtp_server(maildir: &Path, cert: &TestCert, port: u16) -> Daemon {
    let python = if Path::new("/usr/bin/python3").exists() {
        "/usr/bin/python3"
    } else {
        "python3"
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
        .expect("aiosmtpd runs (apt-get install python3-aiosmtpd)");
    wait_for_port(port, "aiosmtpd", &mut child);
    Daemon(child)
}

/// The mails in a maildir, as raw text.
pub fn mails(maildir: &Path) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(maildir.join("new")) else {
        return Vec::new();
    };
    entries
        .filter_map(|e| std::fs::read_to_string(e.ok()?.path()).ok())
        .collect()
}

/// One MQTT message seen by the subscriber.
#[derive(Debug, Clone)]
pub struct Seen {
    pub topic: String,
    pub payload: Vec<u8>,
    pub retain: bool,
}

/// A subscriber to `#` on the broker, over TLS, keeping every message.
pub struct Subscriber {
    pub seen: Arc<Mutex<Vec<Seen>>>,
    stop: CancellationToken,
}

impl Subscriber {
    pub async fn start(cert: &TestCert, port: u16, user: &str, password: &str) -> Self {
        use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS, TlsConfiguration, Transport};
        let mut o = MqttOptions::new(
            format!("test-sub-{}", std::process::id()),
            "localhost",
            port,
        );
        o.set_credentials(user, password);
        o.set_max_packet_size(16 << 20, 16 << 20);
        let pem = std::fs::read(&cert.cert).unwrap();
        let tls = crate::common::tls::client_config(&pem);
        o.set_transport(Transport::tls_with_config(TlsConfiguration::Rustls(tls)));
        let (client, mut events) = AsyncClient::new(o, 64);
        client.subscribe("#", QoS::AtLeastOnce).await.unwrap();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let stop = CancellationToken::new();
        let (keep, stopping) = (seen.clone(), stop.clone());
        tokio::spawn(async move {
            let _client = client;
            loop {
                let ev = tokio::select! {
                    _ = stopping.cancelled() => return,
                    ev = events.poll() => ev,
                };
                match ev {
                    Ok(Event::Incoming(Packet::Publish(p))) => keep.lock().unwrap().push(Seen {
                        topic: p.topic.clone(),
                        payload: p.payload.to_vec(),
                        retain: p.retain,
                    }),
                    Ok(_) => {}
                    Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
                }
            }
        });
        Self { seen, stop }
    }

    pub fn on(&self, topic: &str) -> Vec<Seen> {
        let seen = self.seen.lock().unwrap();
        seen.iter().filter(|s| s.topic == topic).cloned().collect()
    }

    pub fn topics_starting(&self, prefix: &str) -> Vec<Seen> {
        let seen = self.seen.lock().unwrap();
        seen.iter()
            .filter(|s| s.topic.starts_with(prefix))
            .cloned()
            .collect()
    }
}

impl Drop for Subscriber {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}
