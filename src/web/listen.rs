//! The dashboard's accept loop: our own, on tokio-rustls and hyper, so that every limit a
//! hostile LAN can push against is ours to set (axum-server 0.7 builds hyper without a
//! timer, so it had no header-read timeout).
//!
//! - Each accepted socket is admitted by `ConnTable` (web/conn.rs) before anything else:
//!   per-address and total caps, eviction of abandoned connections at the cap.
//! - The TLS handshake must finish within `handshake_timeout`.
//! - HTTP/1.1 only, served by hyper with a timer: the request head (and keep-alive
//!   idleness) must complete within `header_timeout`, and may be at most
//!   `max_header_bytes` (431 beyond). HTTP/2 is not served, with or without prior
//!   knowledge: ALPN offers only http/1.1, and one connection is then one request at a
//!   time, which is what the caps count.
//! - accept() failing (EMFILE, ENFILE) is logged at most once every 10 s and retried after
//!   100 ms: the pending clients wait in the backlog, nothing else is affected.
//! - When hyper is done with a connection, it closes lingering (web/linger.rs), so that a
//!   431, 413 or 408 reaches a client that was still sending.
//! - On shutdown the listener closes, open connections finish their current response
//!   (streams end), and anything left after `DRAIN` is dropped.

use super::conn::{Admission, ConnTable, Guarded, Limits, Refusal};
use super::linger::{self, Returned};
use axum::Router;
use axum::extract::ConnectInfo;
use hyper_util::rt::{TokioIo, TokioTimer};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// How long open connections get to finish at shutdown.
const DRAIN: Duration = Duration::from_secs(3);

/// Serves `app` on `listener` (TLS unless `tls` is None) within `limits` until `stop` is
/// cancelled. Returns the connection table (for /metrics) through `table` before serving.
pub async fn serve(
    app: Router,
    listener: std::net::TcpListener,
    tls: Option<Arc<rustls::ServerConfig>>,
    table: Arc<ConnTable>,
    stop: CancellationToken,
) -> std::io::Result<()> {
    let listener = tokio::net::TcpListener::from_std(listener)?;
    let tls = tls.map(tokio_rustls::TlsAcceptor::from);
    let tasks = TaskTracker::new();
    let mut warn = crate::base::logging::Throttle::new(Duration::from_secs(10));
    loop {
        let (socket, peer) = tokio::select! {
            _ = stop.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(e) => {
                    warn.warn(|more| format!("dashboard cannot accept a connection: {e}{more}"));
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        let admission = match table.admit(peer.ip()) {
            Ok(a) => a,
            Err(why) => {
                drop(socket);
                warn.warn(|more| refused_message(peer, why, table.limits(), &more));
                continue;
            }
        };
        let _ = socket.set_nodelay(true);
        let conn = Connection {
            app: app.clone(),
            peer,
            limits: table.limits(),
            stop: stop.clone(),
        };
        tasks.spawn(conn.run(socket, tls.clone(), admission));
    }
    drop(listener);
    tasks.close();
    let _ = tokio::time::timeout(DRAIN, tasks.wait()).await;
    Ok(())
}

fn refused_message(peer: SocketAddr, why: Refusal, limits: Limits, more: &str) -> String {
    match why {
        Refusal::PerAddress => format!(
            "refused a dashboard connection from {}: it already has {} open \
             (network.max_connections_per_address){more}",
            peer.ip(),
            limits.max_per_address
        ),
        Refusal::Total => format!(
            "refused a dashboard connection from {}: {} are open and none is idle \
             (network.max_connections){more}",
            peer.ip(),
            limits.max_total
        ),
        Refusal::AddressRate => format!(
            "refused a dashboard connection from {}: it opens more than {} a second{more}",
            peer.ip(),
            super::conn_rate::PER_ADDRESS_PER_S
        ),
        Refusal::TotalRate => format!(
            "refused a dashboard connection from {}: new connections from addresses that \
             have not signed in arrive faster than {} a second{more}",
            peer.ip(),
            super::conn_rate::TOTAL_PER_S
        ),
    }
}

/// One admitted connection's task.
struct Connection {
    app: Router,
    peer: SocketAddr,
    limits: Limits,
    stop: CancellationToken,
}

impl Connection {
    async fn run(
        self,
        socket: tokio::net::TcpStream,
        tls: Option<tokio_rustls::TlsAcceptor>,
        admission: Admission,
    ) {
        let admission = Arc::new(admission);
        let Some(tls) = tls else {
            return self.http(socket, admission).await;
        };
        let evicted = admission.shared.closed();
        let handshake = tokio::time::timeout(self.limits.handshake_timeout, tls.accept(socket));
        let stream = tokio::select! {
            _ = evicted.cancelled() => return,
            _ = self.stop.cancelled() => return,
            done = handshake => match done {
                Ok(Ok(stream)) => stream,
                // A failed or slow handshake is the client's problem; nothing to log.
                _ => return,
            },
        };
        self.http(stream, admission).await
    }

    /// Serves HTTP/1.1 on `stream` until either side ends it, then closes it lingering
    /// (web/linger.rs) unless it was evicted, upgraded or the server is stopping.
    async fn http<S>(self, stream: S, admission: Arc<Admission>)
    where
        S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let (returned, back) = Returned::new(stream);
        let stream = Guarded::new(returned, admission.clone());
        let peer = self.peer;
        let app = self.app;
        let mark = stream.mark();
        let service = hyper::service::service_fn(move |mut req: hyper::Request<_>| {
            req.extensions_mut().insert(ConnectInfo(peer));
            req.extensions_mut().insert(mark.clone());
            let app = app.clone();
            async move { tower::ServiceExt::oneshot(app, req).await }
        });
        let mut http = hyper::server::conn::http1::Builder::new();
        http.timer(TokioTimer::new())
            .header_read_timeout(self.limits.header_timeout)
            .max_buf_size(self.limits.max_header_bytes.max(8192));
        // Upgrades: the live view's WebSocket takes the connection over (and keeps its slot).
        let mut conn = Box::pin(
            http.serve_connection(TokioIo::new(stream), service)
                .with_upgrades(),
        );
        tokio::select! {
            _ = conn.as_mut() => {}
            _ = self.stop.cancelled() => {
                conn.as_mut().graceful_shutdown();
                let _ = tokio::time::timeout(DRAIN, conn).await;
                return;
            }
        }
        drop(conn);
        if let Ok(stream) = back.await
            && !admission.shared.closed().is_cancelled()
        {
            let max_bytes = match admission.shared.is_trusted() {
                true => linger::TRUSTED_LINGER_BYTES,
                false => linger::LINGER_BYTES,
            };
            linger::close(stream, max_bytes).await;
        }
    }
}
