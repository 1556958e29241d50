//! What connection admission remembers between connections: how fast each address and
//! everyone together open new connections (token buckets, so a flood's TLS handshakes cost
//! a bounded share of a core), and which addresses recently carried an authenticated
//! request (so the owner's next connection is let in past a flood from other addresses).
//!
//! Both maps are bounded: a flood from a whole /8 cannot grow them past their caps.

use std::collections::HashMap;
use std::net::IpAddr;

/// New connections one address may open per second, sustained.
pub const PER_ADDRESS_PER_S: f64 = 10.0;
/// ... and in a burst (a browser opens six at once; a reload may open them again).
pub const PER_ADDRESS_BURST: f64 = 24.0;
/// New connections all untrusted addresses together may open per second, sustained.
/// A full TLS handshake costs the server about 0.3 ms of CPU, so this bounds the flood's
/// handshakes to well under half a core. Addresses that authenticated are not counted.
pub const TOTAL_PER_S: f64 = 300.0;
/// ... and in a burst.
pub const TOTAL_BURST: f64 = 300.0;
/// How long an address stays trusted after its last authenticated request.
pub const TRUST_MS: u64 = 30 * 60 * 1000;
/// Most addresses remembered per map; past it the stalest entries go.
const MAX_ADDRESSES: usize = 4096;

/// A token bucket: `rate_per_s` tokens a second, up to `burst`.
#[derive(Debug, Clone, Copy)]
pub struct Bucket {
    tokens: f64,
    updated_ms: u64,
}

impl Bucket {
    pub fn full(burst: f64, now_ms: u64) -> Self {
        Self {
            tokens: burst,
            updated_ms: now_ms,
        }
    }

    fn refill(&mut self, now_ms: u64, rate_per_s: f64, burst: f64) {
        let elapsed_s = now_ms.saturating_sub(self.updated_ms) as f64 / 1000.0;
        self.tokens = (self.tokens + elapsed_s * rate_per_s).min(burst);
        self.updated_ms = now_ms;
    }

    /// Whether a token is available at `now_ms` (without taking it).
    pub fn has_token(&mut self, now_ms: u64, rate_per_s: f64, burst: f64) -> bool {
        self.refill(now_ms, rate_per_s, burst);
        self.tokens >= 1.0
    }

    pub fn take(&mut self) {
        self.tokens -= 1.0;
    }

    fn is_full(&mut self, now_ms: u64, rate_per_s: f64, burst: f64) -> bool {
        self.refill(now_ms, rate_per_s, burst);
        self.tokens >= burst
    }
}

/// Why a new connection was turned away by its rate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TooFast {
    Address,
    Total,
}

/// The admission memory (see the module doc).
pub struct Rates {
    total: Bucket,
    per_address: HashMap<IpAddr, Bucket>,
    trusted_until_ms: HashMap<IpAddr, u64>,
}

impl Rates {
    pub fn new(now_ms: u64) -> Self {
        Self {
            total: Bucket::full(TOTAL_BURST, now_ms),
            per_address: HashMap::new(),
            trusted_until_ms: HashMap::new(),
        }
    }

    /// Whether `ip` carried an authenticated request within `TRUST_MS`.
    pub fn is_trusted(&self, ip: IpAddr, now_ms: u64) -> bool {
        self.trusted_until_ms
            .get(&ip)
            .is_some_and(|until| *until > now_ms)
    }

    /// Remembers that `ip` just carried an authenticated request.
    pub fn trust(&mut self, ip: IpAddr, now_ms: u64) {
        if self.trusted_until_ms.len() >= MAX_ADDRESSES {
            self.trusted_until_ms.retain(|_, until| *until > now_ms);
            drop_stalest(&mut self.trusted_until_ms, |until| *until);
        }
        self.trusted_until_ms.insert(ip, now_ms + TRUST_MS);
    }

    /// Takes a token for a new connection from `ip`, or says which rate it would exceed.
    /// A trusted address is held to neither rate (a script of the owner's may open a
    /// connection per request); the per-address cap still bounds what it holds.
    pub fn admit(&mut self, ip: IpAddr, now_ms: u64) -> Result<(), TooFast> {
        if self.is_trusted(ip, now_ms) {
            return Ok(());
        }
        if self.per_address.len() >= MAX_ADDRESSES && !self.per_address.contains_key(&ip) {
            self.per_address
                .retain(|_, b| !b.is_full(now_ms, PER_ADDRESS_PER_S, PER_ADDRESS_BURST));
            drop_stalest(&mut self.per_address, |b| b.updated_ms);
        }
        let mine = self
            .per_address
            .entry(ip)
            .or_insert_with(|| Bucket::full(PER_ADDRESS_BURST, now_ms));
        if !mine.has_token(now_ms, PER_ADDRESS_PER_S, PER_ADDRESS_BURST) {
            return Err(TooFast::Address);
        }
        if !self.total.has_token(now_ms, TOTAL_PER_S, TOTAL_BURST) {
            return Err(TooFast::Total);
        }
        mine.take();
        self.total.take();
        Ok(())
    }
}

/// When a map is still at its cap, drops its stalest quarter (by `stamp`).
fn drop_stalest<V>(map: &mut HashMap<IpAddr, V>, stamp: impl Fn(&V) -> u64) {
    if map.len() < MAX_ADDRESSES {
        return;
    }
    let mut stamps: Vec<u64> = map.values().map(&stamp).collect();
    stamps.sort_unstable();
    let cut = stamps[stamps.len() / 4];
    map.retain(|_, v| stamp(v) > cut);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(n: u32) -> IpAddr {
        std::net::Ipv4Addr::from(0x7f00_0000 + n).into()
    }

    #[test]
    fn one_address_is_held_to_its_burst_then_its_rate() {
        let mut r = Rates::new(0);
        let burst = PER_ADDRESS_BURST as usize;
        assert!((0..burst).all(|_| r.admit(ip(1), 0).is_ok()));
        assert_eq!(r.admit(ip(1), 0), Err(TooFast::Address));
        assert!(r.admit(ip(2), 0).is_ok(), "another address is not affected");
        // One second later: PER_ADDRESS_PER_S more.
        let more = (0..100).filter(|_| r.admit(ip(1), 1000).is_ok()).count();
        assert_eq!(more, PER_ADDRESS_PER_S as usize);
    }

    #[test]
    fn many_addresses_share_the_total_but_a_trusted_one_does_not() {
        let mut r = Rates::new(0);
        let admitted = (0..1000).filter(|n| r.admit(ip(10 + n), 0).is_ok()).count();
        assert_eq!(admitted, TOTAL_BURST as usize);
        assert_eq!(r.admit(ip(5000), 0), Err(TooFast::Total));
        r.trust(ip(1), 0);
        let owner = (0..100).filter(|_| r.admit(ip(1), 0).is_ok()).count();
        assert_eq!(owner, 100, "the owner's address is held to neither rate");
        assert!(!r.is_trusted(ip(1), TRUST_MS + 1), "trust lapses");
    }

    #[test]
    fn the_maps_stay_bounded_under_a_whole_network() {
        let mut r = Rates::new(0);
        for n in 0..20_000 {
            let _ = r.admit(ip(n), u64::from(n));
            r.trust(ip(n), u64::from(n));
        }
        assert!(r.per_address.len() <= MAX_ADDRESSES);
        assert!(r.trusted_until_ms.len() <= MAX_ADDRESSES);
        assert!(r.is_trusted(ip(19_999), 20_000), "the newest is kept");
    }
}
