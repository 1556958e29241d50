//! Connection admission for the dashboard: a cap on open connections in all and per client
//! address, and a stream wrapper that ends a connection which makes no progress.
//!
//! `ConnTable::admit` runs in the accept loop before the TLS handshake. Past the per-address
//! cap, or faster than its address's or everyone's rate of new connections (conn_rate.rs),
//! the new connection is refused (closed at once, so it holds no descriptor and costs no
//! handshake). At the total cap an existing connection is evicted instead, if one looks
//! abandoned (`evictable`). A connection is *trusted* once it has carried an authenticated
//! request, or when it comes from an address that did so lately (the owner's browser or
//! script): a trusted connection is never evicted while a silent untrusted one exists,
//! whatever their ages, and a trusted address is let in past a flood by evicting the
//! flood's youngest connections too. A live MJPEG or SSE stream writes all the time and is
//! never chosen. Only when nothing can be evicted is the newcomer refused. So many hosts on
//! the LAN cannot keep the owner out, and the web side never holds more descriptors than
//! its budget.
//!
//! `Guarded` wraps the (decrypted) stream of an admitted connection: it counts progress,
//! notices the response's first byte, closes when evicted, and fails a read or write that
//! has waited `idle_timeout` with no progress either way (a client that stops reading a
//! stream, or trickles a body). Header-read timeouts are hyper's (web/listen.rs).

use std::collections::HashMap;
use std::io;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio_util::sync::{CancellationToken, WaitForCancellationFutureOwned};

use super::conn_rate::{Rates, TooFast};

/// A connection that never got a response byte may be evicted once this old.
const EVICT_SILENT_MS: u64 = 1_000;
/// A connection with no traffic for this long may be evicted (keep-alive idle).
const EVICT_IDLE_MS: u64 = 2_000;

/// The dashboard's connection limits (from `network` and the descriptor budget).
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_total: usize,
    pub max_per_address: usize,
    /// From accept to the end of the TLS handshake.
    pub handshake_timeout: Duration,
    /// From the start of reading a request head (or of keep-alive idleness) to its end.
    pub header_timeout: Duration,
    /// A read or write waiting this long with no progress either way ends the connection.
    pub idle_timeout: Duration,
    /// Largest request head in bytes (431 beyond).
    pub max_header_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_total: 128,
            max_per_address: 32,
            handshake_timeout: Duration::from_secs(5),
            header_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
            max_header_bytes: 16 * 1024,
        }
    }
}

/// Why a connection was not admitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    PerAddress,
    Total,
    /// Its address opens connections faster than `conn_rate::PER_ADDRESS_PER_S`.
    AddressRate,
    /// Untrusted addresses together open them faster than `conn_rate::TOTAL_PER_S`.
    TotalRate,
}

/// What the table and a connection's stream share about one connection.
pub struct ConnShared {
    ip: IpAddr,
    opened_ms: u64,
    last_active_ms: AtomicU64,
    responded: AtomicBool,
    /// Carried an authenticated request, or came from an address that lately did.
    trusted: AtomicBool,
    close: CancellationToken,
}

impl ConnShared {
    /// Cancelled when the connection is evicted.
    pub fn closed(&self) -> CancellationToken {
        self.close.clone()
    }

    /// Whether it carried an authenticated request or came from an address that did.
    pub fn is_trusted(&self) -> bool {
        self.trusted.load(Ordering::Relaxed)
    }
}

struct Inner {
    next_id: u64,
    per_address: HashMap<IpAddr, usize>,
    open: HashMap<u64, Arc<ConnShared>>,
    rates: Rates,
}

/// Counters for /metrics and the tests.
#[derive(Debug, Default, Clone, Copy, serde::Serialize)]
pub struct ConnStats {
    pub open: usize,
    pub refused: u64,
    pub evicted: u64,
}

pub struct ConnTable {
    limits: Limits,
    epoch: Instant,
    inner: Mutex<Inner>,
    refused: AtomicU64,
    evicted: AtomicU64,
}

/// An admitted connection's place in the table; dropping it frees the place.
pub struct Admission {
    table: Arc<ConnTable>,
    id: u64,
    pub shared: Arc<ConnShared>,
}

impl ConnTable {
    pub fn new(limits: Limits) -> Arc<Self> {
        Arc::new(Self {
            limits,
            epoch: Instant::now(),
            inner: Mutex::new(Inner {
                next_id: 0,
                per_address: HashMap::new(),
                open: HashMap::new(),
                rates: Rates::new(0),
            }),
            refused: AtomicU64::new(0),
            evicted: AtomicU64::new(0),
        })
    }

    pub fn limits(&self) -> Limits {
        self.limits
    }

    fn now_ms(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64
    }

    pub fn stats(&self) -> ConnStats {
        ConnStats {
            open: self.lock().open.len(),
            refused: self.refused.load(Ordering::Relaxed),
            evicted: self.evicted.load(Ordering::Relaxed),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Admits a connection from `ip`, evicting an abandoned one at the total cap.
    pub fn admit(self: &Arc<Self>, ip: IpAddr) -> Result<Admission, Refusal> {
        let now = self.now_ms();
        let mut inner = self.lock();
        let refuse = |why| {
            self.refused.fetch_add(1, Ordering::Relaxed);
            Err(why)
        };
        if inner.per_address.get(&ip).copied().unwrap_or(0) >= self.limits.max_per_address {
            return refuse(Refusal::PerAddress);
        }
        let trusted = inner.rates.is_trusted(ip, now);
        if let Err(fast) = inner.rates.admit(ip, now) {
            return refuse(match fast {
                TooFast::Address => Refusal::AddressRate,
                TooFast::Total => Refusal::TotalRate,
            });
        }
        if inner.open.len() >= self.limits.max_total {
            match evictable(&inner, now, ip, trusted) {
                Some(victim) => {
                    forget(&mut inner, victim);
                    self.evicted.fetch_add(1, Ordering::Relaxed);
                }
                None => return refuse(Refusal::Total),
            }
        }
        inner.next_id += 1;
        let id = inner.next_id;
        let shared = Arc::new(ConnShared {
            ip,
            opened_ms: now,
            last_active_ms: AtomicU64::new(now),
            responded: AtomicBool::new(false),
            trusted: AtomicBool::new(trusted),
            close: CancellationToken::new(),
        });
        inner.open.insert(id, shared.clone());
        *inner.per_address.entry(ip).or_default() += 1;
        Ok(Admission {
            table: self.clone(),
            id,
            shared,
        })
    }
}

/// The connection to evict at `now_ms` for a newcomer from `for_ip`, if any. Only
/// untrusted connections are candidates while any is silent (never answered):
/// 1. a silent one older than `EVICT_SILENT_MS`, oldest first;
/// 2. else the untrusted one idle longest past `EVICT_IDLE_MS`;
/// 3. else, for fairness, a silent one of the address holding the most connections, when
///    it holds at least two more than the newcomer's (a flood from a few addresses
///    cannot keep out a browser, however fast it churns);
/// 4. else, for a newcomer from a trusted address, the oldest silent one, however young
///    (a flood from many addresses that keeps reconnecting cannot keep out the owner), or
///    failing that the untrusted one idle longest, however briefly (a flood of idle mail
///    connections, which are greeted at once and so never silent);
/// 5. else, when nothing is silent, the trusted one idle longest past `EVICT_IDLE_MS`.
fn evictable(inner: &Inner, now_ms: u64, for_ip: IpAddr, for_trusted: bool) -> Option<u64> {
    let open = &inner.open;
    let untrusted = |c: &ConnShared| !c.trusted.load(Ordering::Relaxed);
    let silent = |c: &ConnShared| untrusted(c) && !c.responded.load(Ordering::Relaxed);
    let oldest_silent = |min_age_ms: u64| {
        open.iter()
            .filter(|(_, c)| silent(c) && now_ms.saturating_sub(c.opened_ms) >= min_age_ms)
            .min_by_key(|(_, c)| c.opened_ms)
            .map(|(id, _)| *id)
    };
    let idlest_for = |trusted: bool, min_idle_ms: u64| {
        open.iter()
            .filter(|(_, c)| untrusted(c) != trusted)
            .map(|(id, c)| (id, c.last_active_ms.load(Ordering::Relaxed)))
            .filter(|(_, last)| now_ms.saturating_sub(*last) >= min_idle_ms)
            .min_by_key(|(_, last)| *last)
            .map(|(id, _)| *id)
    };
    let idlest = |trusted: bool| idlest_for(trusted, EVICT_IDLE_MS);
    let fair_share = || {
        let mine = inner.per_address.get(&for_ip).copied().unwrap_or(0);
        let (heavy, n) = inner.per_address.iter().max_by_key(|(_, n)| **n)?;
        if *n < mine + 2 {
            return None;
        }
        open.iter()
            .filter(|(_, c)| c.ip == *heavy && silent(c))
            .min_by_key(|(_, c)| c.opened_ms)
            .map(|(id, _)| *id)
    };
    let any_silent = || oldest_silent(0);
    oldest_silent(EVICT_SILENT_MS)
        .or_else(|| idlest(false))
        .or_else(fair_share)
        .or_else(|| for_trusted.then(any_silent).flatten())
        .or_else(|| for_trusted.then(|| idlest_for(false, 0)).flatten())
        .or_else(|| any_silent().is_none().then(|| idlest(true)).flatten())
}

/// Removes connection `id` from the table and tells its task to close.
fn forget(inner: &mut Inner, id: u64) {
    let Some(conn) = inner.open.remove(&id) else {
        return;
    };
    conn.close.cancel();
    if let Some(n) = inner.per_address.get_mut(&conn.ip) {
        *n -= 1;
        if *n == 0 {
            inner.per_address.remove(&conn.ip);
        }
    }
}

/// Put in each request's extensions by the accept loop, so that the auth guard can mark
/// the connection (and its address) trusted once the request is authenticated.
#[derive(Clone)]
pub struct ConnMark {
    table: Arc<ConnTable>,
    shared: Arc<ConnShared>,
}

impl ConnMark {
    pub fn trust(&self) {
        self.shared.trusted.store(true, Ordering::Relaxed);
        let now = self.table.now_ms();
        self.table.lock().rates.trust(self.shared.ip, now);
    }
}

impl Admission {
    pub fn mark(&self) -> ConnMark {
        ConnMark {
            table: self.table.clone(),
            shared: self.shared.clone(),
        }
    }
}

impl Drop for Admission {
    fn drop(&mut self) {
        forget(&mut self.table.lock(), self.id);
    }
}

/// An admitted connection's stream (see the module doc).
pub struct Guarded<S> {
    inner: S,
    admission: Arc<Admission>,
    evicted: Pin<Box<WaitForCancellationFutureOwned>>,
    idle: Pin<Box<tokio::time::Sleep>>,
}

impl<S> Guarded<S> {
    pub fn new(inner: S, admission: Arc<Admission>) -> Self {
        let timeout = admission.table.limits.idle_timeout;
        let evicted = Box::pin(admission.shared.close.clone().cancelled_owned());
        Self {
            inner,
            admission,
            evicted,
            idle: Box::pin(tokio::time::sleep(timeout)),
        }
    }

    /// The handle the auth guard uses to mark this connection trusted.
    pub fn mark(&self) -> ConnMark {
        self.admission.mark()
    }

    fn progressed(&self, wrote: bool) {
        let shared = &self.admission.shared;
        shared
            .last_active_ms
            .store(self.admission.table.now_ms(), Ordering::Relaxed);
        if wrote {
            shared.responded.store(true, Ordering::Relaxed);
        }
    }

    /// Ready(error) when the connection was evicted or has made no progress for the idle
    /// timeout; Pending otherwise (with wakers registered on both).
    fn poll_stop(&mut self, cx: &mut Context<'_>) -> Poll<io::Error> {
        if self.evicted.as_mut().poll(cx).is_ready() {
            return Poll::Ready(io::Error::new(
                io::ErrorKind::ConnectionAborted,
                "evicted to admit another connection",
            ));
        }
        let table = &self.admission.table;
        loop {
            if self.idle.as_mut().poll(cx).is_pending() {
                return Poll::Pending;
            }
            let last_ms = self.admission.shared.last_active_ms.load(Ordering::Relaxed);
            let deadline = table.epoch + Duration::from_millis(last_ms) + table.limits.idle_timeout;
            if deadline <= Instant::now() {
                return Poll::Ready(io::Error::new(io::ErrorKind::TimedOut, "idle timeout"));
            }
            self.idle.as_mut().reset(deadline.into());
        }
    }
}

use std::future::Future;

impl<S: AsyncRead + Unpin> AsyncRead for Guarded<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        match Pin::new(&mut self.inner).poll_read(cx, buf) {
            Poll::Ready(Ok(())) => {
                if buf.filled().len() > before {
                    self.progressed(false);
                }
                Poll::Ready(Ok(()))
            }
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Pending => self.poll_stop(cx).map(Err),
        }
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Guarded<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        if let Poll::Ready(e) = self.evicted_now(cx) {
            return Poll::Ready(Err(e));
        }
        match Pin::new(&mut self.inner).poll_write(cx, data) {
            Poll::Ready(Ok(n)) => {
                if n > 0 {
                    self.progressed(true);
                }
                Poll::Ready(Ok(n))
            }
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Pending => self.poll_stop(cx).map(Err),
        }
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match Pin::new(&mut self.inner).poll_flush(cx) {
            Poll::Pending => self.poll_stop(cx).map(Err),
            done => done,
        }
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

impl<S> Guarded<S> {
    /// An evicted connection stops writing at once, even to a client that keeps reading.
    fn evicted_now(&mut self, cx: &mut Context<'_>) -> Poll<io::Error> {
        match self.evicted.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(io::Error::new(
                io::ErrorKind::ConnectionAborted,
                "evicted to admit another connection",
            )),
            Poll::Pending => Poll::Pending,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(total: usize, per_address: usize) -> Arc<ConnTable> {
        ConnTable::new(Limits {
            max_total: total,
            max_per_address: per_address,
            ..Limits::default()
        })
    }

    #[test]
    fn per_address_cap_refuses_and_frees_on_drop() {
        let t = table(10, 2);
        let ip: IpAddr = [10, 0, 0, 1].into();
        let a = t.admit(ip).unwrap();
        let _b = t.admit(ip).unwrap();
        assert_eq!(t.admit(ip).err(), Some(Refusal::PerAddress));
        assert!(t.admit([10, 0, 0, 2].into()).is_ok());
        drop(a);
        assert!(t.admit(ip).is_ok());
        assert_eq!(t.stats().refused, 1);
    }

    #[test]
    fn at_the_total_cap_an_old_silent_connection_is_evicted() {
        let t = table(2, 10);
        let old = t.admit([10, 0, 0, 1].into()).unwrap();
        let busy = t.admit([10, 0, 0, 2].into()).unwrap();
        // Both young: nothing looks abandoned yet, so the newcomer is refused.
        assert_eq!(t.admit([10, 0, 0, 3].into()).err(), Some(Refusal::Total));
        // Later: `busy` has answered and was active just now, `old` never answered.
        let later_ms = old.shared.opened_ms + EVICT_IDLE_MS + 10;
        busy.shared.responded.store(true, Ordering::Relaxed);
        busy.shared
            .last_active_ms
            .store(later_ms, Ordering::Relaxed);
        let newcomer: IpAddr = [10, 0, 0, 3].into();
        assert_eq!(
            evictable(&t.lock(), later_ms, newcomer, false),
            Some(old.id)
        );
        // Nothing silent: the one idle longest goes.
        old.shared.responded.store(true, Ordering::Relaxed);
        assert_eq!(
            evictable(&t.lock(), later_ms, newcomer, false),
            Some(old.id)
        );
        old.shared.last_active_ms.store(later_ms, Ordering::Relaxed);
        assert_eq!(evictable(&t.lock(), later_ms, newcomer, false), None);
    }

    #[test]
    fn a_young_flood_from_one_address_yields_to_a_newcomer() {
        let t = table(4, 10);
        let flood: Vec<_> = (0..4)
            .map(|_| t.admit([10, 0, 0, 7].into()).unwrap())
            .collect();
        // All young and silent: the heaviest address gives one up to a new address.
        let browser = t.admit([10, 0, 0, 1].into()).unwrap();
        assert_eq!(t.stats().evicted, 1);
        let closed = flood
            .iter()
            .filter(|a| a.shared.close.is_cancelled())
            .count();
        assert_eq!(closed, 1);
        // The flooder itself gets nothing by churning.
        assert_eq!(t.admit([10, 0, 0, 7].into()).err(), Some(Refusal::Total));
        drop(browser);
    }

    #[test]
    fn a_trusted_connection_outlives_any_silent_one() {
        let t = table(2, 10);
        let owner = t.admit([10, 0, 0, 1].into()).unwrap();
        owner.mark().trust();
        let silent = t.admit([10, 0, 0, 2].into()).unwrap();
        // Much later the owner's keep-alive is idle and the silent one still young-ish;
        // the silent one goes, not the owner's.
        let later_ms = owner.shared.opened_ms + 60_000;
        let newcomer: IpAddr = [10, 0, 0, 3].into();
        assert_eq!(
            evictable(&t.lock(), later_ms, newcomer, false),
            Some(silent.id)
        );
        // With nothing silent left, the idle trusted one may go.
        silent.shared.responded.store(true, Ordering::Relaxed);
        silent
            .shared
            .last_active_ms
            .store(later_ms, Ordering::Relaxed);
        assert_eq!(
            evictable(&t.lock(), later_ms, newcomer, false),
            Some(owner.id)
        );
    }

    #[test]
    fn the_owner_gets_past_a_young_flood_from_many_addresses() {
        let t = table(8, 10);
        let owner = t.admit([10, 0, 0, 1].into()).unwrap();
        owner.mark().trust();
        let flood: Vec<_> = (0..7u8)
            .map(|n| t.admit([10, 0, 1, n].into()).unwrap())
            .collect();
        // Every flood connection is young and its address holds one: a stranger is refused.
        assert_eq!(t.admit([10, 0, 2, 1].into()).err(), Some(Refusal::Total));
        // The owner's address (already holding one) gets a second connection.
        let again = t.admit([10, 0, 0, 1].into()).unwrap();
        assert!(again.shared.trusted.load(Ordering::Relaxed));
        assert_eq!(
            flood
                .iter()
                .filter(|a| a.shared.close.is_cancelled())
                .count(),
            1
        );
    }
}
