//! A lingering close, so that a client still sending when the server gives up on it reads
//! the answer (431 for an oversized head, 413 for an oversized body, 408 for a slow one)
//! instead of a reset.
//!
//! Closing a socket whose receive buffer holds unread bytes makes the kernel send RST,
//! and a client that gets RST drops whatever it had not read yet, our response included.
//! So hyper serves a `Returned` stream: when hyper is done with it, the stream comes back
//! to the connection's task, which shuts down its sending side (TLS close_notify, then
//! FIN) and reads and discards what the client still sends, for at most `LINGER` and
//! `LINGER_BYTES` (more for a trusted connection), before closing. The connection keeps
//! its place in the admission table meanwhile, so lingering costs no descriptor beyond
//! the caps.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::sync::oneshot;

/// Longest a closing connection waits for the client to stop sending.
pub const LINGER: Duration = Duration::from_secs(2);
/// Most bytes read and discarded while lingering, for a connection nobody signed in on:
/// enough for an oversized head, and little work for a stranger's flood to cause.
pub const LINGER_BYTES: usize = 1 << 20;
/// ... and for a trusted one (conn.rs), whose oversized upload (a few MB) should still
/// get its 413 rather than a reset.
pub const TRUSTED_LINGER_BYTES: usize = 32 << 20;

/// A stream that goes back through `back` when dropped (unless upgraded and still in use).
pub struct Returned<S> {
    inner: Option<S>,
    back: Option<oneshot::Sender<S>>,
}

impl<S> Returned<S> {
    pub fn new(inner: S) -> (Self, oneshot::Receiver<S>) {
        let (back, rx) = oneshot::channel();
        let me = Self {
            inner: Some(inner),
            back: Some(back),
        };
        (me, rx)
    }

    fn stream(&mut self) -> io::Result<&mut S> {
        self.inner
            .as_mut()
            .ok_or_else(|| io::Error::from(io::ErrorKind::NotConnected))
    }
}

impl<S> Drop for Returned<S> {
    fn drop(&mut self) {
        if let (Some(inner), Some(back)) = (self.inner.take(), self.back.take()) {
            // The task may have gone (an upgraded stream outliving it): then just close.
            let _ = back.send(inner);
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Returned<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.stream() {
            Ok(s) => Pin::new(s).poll_read(cx, buf),
            Err(e) => Poll::Ready(Err(e)),
        }
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Returned<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.stream() {
            Ok(s) => Pin::new(s).poll_write(cx, data),
            Err(e) => Poll::Ready(Err(e)),
        }
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.stream() {
            Ok(s) => Pin::new(s).poll_flush(cx),
            Err(e) => Poll::Ready(Err(e)),
        }
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.stream() {
            Ok(s) => Pin::new(s).poll_shutdown(cx),
            Err(e) => Poll::Ready(Err(e)),
        }
    }
}

/// Shuts down `stream`'s sending side and discards what the peer still sends, within
/// `LINGER` and `max_bytes` (see the module doc).
pub async fn close<S: AsyncRead + AsyncWrite + Unpin>(mut stream: S, max_bytes: usize) {
    let drain = async {
        // Already shut down by hyper: this then fails or returns at once, which is fine.
        let _ = stream.shutdown().await;
        let mut discarded_bytes = 0usize;
        let mut buf = vec![0u8; 16 * 1024];
        while discarded_bytes < max_bytes {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => discarded_bytes += n,
            }
        }
    };
    let _ = tokio::time::timeout(LINGER, drain).await;
}
