//! `sentrix-bench live`: what live viewers cost the box. This process serves a synthetic
//! 1080p15 H.264 camera over RTSP (its encoding is not counted) and runs `sentrix run` on
//! it as a child, with the dashboard and motion detection on, as a box runs. Then, for
//! `seconds` each, with the same camera: no viewer, 1 and 4 viewers of the fMP4 WebSocket
//! (what the dashboard's tiles use), and 1 and 4 viewers of the MJPEG fallback. The
//! child's CPU comes from /proc/PID/stat; the server-side latency (a picture's arrival to
//! its fragment written to a socket) from the child's /metrics.

use super::hostile::{basic, connector, cpu_seconds};
use super::{IngestBench, serve, tempfile_dir};
use anyhow::bail;
use futures_util::StreamExt;
use std::process::{Command, Stdio};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

const USER: &str = "bench";
const PASSWORD: &str = "bench live password";
/// Seconds a phase settles before its CPU is counted.
const WARM_UP: Duration = Duration::from_secs(3);

#[derive(Clone, Copy, PartialEq)]
enum Viewer {
    Mse,
    Mjpeg,
}

struct Box {
    pid: u32,
    port: u16,
    tls: tokio_rustls::TlsConnector,
    child: std::process::Child,
    dir: std::path::PathBuf,
}

impl Drop for Box {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

pub fn live(camera: &IngestBench, seconds: u64) -> anyhow::Result<()> {
    let (_server, _mount, url) = serve(camera)?;
    println!(
        "bench live: sentrix run on one {}x{} {} fps H.264 {} kbit/s camera (RTSP, loopback), {seconds} s per phase",
        camera.width, camera.height, camera.fps, camera.bitrate_kbps
    );
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let b = start_box(&url)?;
    rt.block_on(async {
        wait_ready(&b).await?;
        phases(&b, seconds).await
    })
}

fn start_box(camera_url: &str) -> anyhow::Result<Box> {
    let dir = tempfile_dir()?;
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let config = dir.join("surveillance.yml");
    std::fs::write(
        &config,
        format!(
            "network:\n  api_port: {port}\nstorage:\n  recordings_dir: rec\n  database: db/sentrix.db\n  encryption:\n    key_file: clip.key\ncameras:\n  - id: cam\n    url: {camera_url}\n"
        ),
    )?;
    let exe = crate::sentrix_exe();
    let mut add = Command::new(&exe)
        .args([
            "user",
            "add",
            USER,
            "--role",
            "admin",
            "--password-stdin",
            "--config",
        ])
        .arg(&config)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()?;
    if let Some(mut stdin) = add.stdin.take() {
        use std::io::Write;
        writeln!(stdin, "{PASSWORD}")?;
    }
    if !add.wait()?.success() {
        bail!("sentrix user add failed");
    }
    let child = Command::new(&exe)
        .args(["run", "--config"])
        .arg(&config)
        .stderr(std::fs::File::create(dir.join("log"))?)
        .spawn()?;
    let pid = child.id();
    // run writes its certificate as it starts.
    let cert = dir.join("certs/server.crt");
    for _ in 0..200 {
        if cert.exists() {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let tls = connector(&cert)?;
    Ok(Box {
        pid,
        port,
        tls,
        child,
        dir,
    })
}

impl Box {
    async fn connect(
        &self,
    ) -> anyhow::Result<tokio_rustls::client::TlsStream<tokio::net::TcpStream>> {
        let tcp = tokio::net::TcpStream::connect(("127.0.0.1", self.port)).await?;
        let name = rustls::pki_types::ServerName::try_from("localhost")?;
        Ok(self.tls.connect(name, tcp).await?)
    }

    /// The body of GET `path` as the bench user (Connection: close).
    async fn get(&self, path: &str) -> anyhow::Result<String> {
        let mut s = self.connect().await?;
        let head = format!(
            "GET {path} HTTP/1.1\r\nHost: localhost\r\nAuthorization: Basic {}\r\nConnection: close\r\n\r\n",
            basic(USER, PASSWORD)
        );
        s.write_all(head.as_bytes()).await?;
        let mut answer = Vec::new();
        let _ = s.read_to_end(&mut answer).await;
        Ok(String::from_utf8_lossy(&answer).into_owned())
    }
}

/// Waits until the camera streams and a first picture was decoded.
async fn wait_ready(b: &Box) -> anyhow::Result<()> {
    let mut last = String::new();
    for _ in 0..60 {
        match b.get("/api/cameras/cam/snapshot.jpg").await {
            Ok(answer) if answer.starts_with("HTTP/1.1 200") => return Ok(()),
            Ok(answer) => last = answer.lines().next().unwrap_or_default().to_string(),
            Err(e) => last = e.to_string(),
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let log = std::fs::read_to_string(b.dir.join("log")).unwrap_or_default();
    let tail: Vec<&str> = log.lines().rev().take(5).collect();
    bail!("the camera never streamed: {last}; the log ends with {tail:?}")
}

async fn phases(b: &Box, seconds: u64) -> anyhow::Result<()> {
    println!(
        "{:<10} {:>14} {:>18}",
        "viewers", "CPU % of a core", "per added viewer"
    );
    let idle = phase(b, None, 0, seconds).await?;
    println!("{:<10} {:>13.1}% {:>18}", "none", idle, "");
    for kind in [Viewer::Mse, Viewer::Mjpeg] {
        for n in [1, 4] {
            let cpu = phase(b, Some(kind), n, seconds).await?;
            let name = match kind {
                Viewer::Mse => "MSE",
                Viewer::Mjpeg => "MJPEG",
            };
            println!(
                "{:<10} {:>13.1}% {:>+17.2}%",
                format!("{n} {name}"),
                cpu,
                (cpu - idle) / n as f64
            );
            if n == 4 {
                super::table::add(super::table::Figure::alone(
                    &format!("live view, CPU per added {name} viewer (1080p15)"),
                    format!("{:+.2} % of a core", (cpu - idle) / n as f64),
                ));
            }
        }
    }
    let metrics = b.get("/metrics").await?;
    if !metrics.contains("sentrix_live_latency_seconds{") {
        println!(
            "server latency: not in /metrics ({})",
            metrics.lines().next().unwrap_or_default()
        );
    }
    for line in metrics
        .lines()
        .filter(|l| l.starts_with("sentrix_live_latency_seconds{"))
    {
        let (labels, value) = line.rsplit_once(' ').unwrap_or((line, ""));
        let ms = value.parse::<f64>().unwrap_or(f64::NAN) * 1000.0;
        println!("server latency, arrival to socket {labels}: {ms:.1} ms");
    }
    Ok(())
}

/// CPU % of one core of the box over `seconds` with `n` viewers of `kind` watching.
async fn phase(b: &Box, kind: Option<Viewer>, n: usize, seconds: u64) -> anyhow::Result<f64> {
    let mut viewers = Vec::new();
    for _ in 0..n {
        let stream = b.connect().await?;
        viewers.push(match kind {
            Some(Viewer::Mse) => tokio::spawn(watch_mse(stream, b.port)),
            _ => tokio::spawn(watch_mjpeg(stream)),
        });
    }
    tokio::time::sleep(WARM_UP).await;
    let before = cpu_seconds(b.pid)?;
    tokio::time::sleep(Duration::from_secs(seconds)).await;
    let used = cpu_seconds(b.pid)? - before;
    for v in viewers {
        if v.is_finished() {
            // A viewer that ended early was not watching: the figure would be wrong.
            match v.await {
                Ok(Err(e)) => bail!("a viewer failed: {e}"),
                _ => bail!("a viewer's stream ended early"),
            }
        }
        v.abort();
    }
    Ok(100.0 * used / seconds as f64)
}

type Tls = tokio_rustls::client::TlsStream<tokio::net::TcpStream>;

/// A dashboard tile: the WebSocket, every message read and dropped.
async fn watch_mse(stream: Tls, port: u16) -> anyhow::Result<()> {
    let mut req =
        format!("wss://localhost:{port}/api/cameras/cam/live.mp4").into_client_request()?;
    let h = req.headers_mut();
    h.insert("origin", format!("https://localhost:{port}").parse()?);
    h.insert(
        "authorization",
        format!("Basic {}", basic(USER, PASSWORD)).parse()?,
    );
    let (mut ws, _) = tokio_tungstenite::client_async(req, stream).await?;
    while let Some(msg) = ws.next().await {
        msg?;
    }
    Ok(())
}

/// An MJPEG fallback viewer: the multipart response, read and dropped.
async fn watch_mjpeg(mut stream: Tls) -> anyhow::Result<()> {
    let head = format!(
        "GET /api/cameras/cam/live.mjpeg HTTP/1.1\r\nHost: localhost\r\nAuthorization: Basic {}\r\n\r\n",
        basic(USER, PASSWORD)
    );
    stream.write_all(head.as_bytes()).await?;
    let mut buf = vec![0u8; 64 * 1024];
    while stream.read(&mut buf).await? > 0 {}
    Ok(())
}
