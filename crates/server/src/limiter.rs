//! Limits on failed authentication: how many failures a source address, or a client
//! id, may have before it is answered 429.
//!
//! Each key has a token bucket of failures (kept as GCRA's "theoretical arrival time",
//! one number per key): a burst of `per_minute` failures, refilled at `per_minute` a
//! minute. Successes cost nothing and are never counted.
//!
//! The table has a fixed size: 32 shards of at most 2,048 keys (kept as 64-bit keyed
//! hashes, not the text), so a flood of random client ids or addresses cannot grow
//! memory. A full shard makes room by forgetting the key closest to being forgiven
//! anyway, so the keys being refused are the last to go.

use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

const SHARDS: usize = 32;
const PER_SHARD: usize = 2048;

/// The answer for a key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Allowed,
    /// Over the limit; the next failure is allowed again after this many seconds.
    Limited {
        retry_after_s: u64,
    },
}

pub struct FailureLimiter {
    shards: Vec<Mutex<HashMap<u64, u64>>>,
    /// The furthest debt any key ran up (0: none ever failed). While it is within the
    /// tolerance every key is allowed, so a success path pays one atomic load (and a
    /// clock read once something failed) instead of hashing and locking.
    max_debt: AtomicU64,
    hasher: RandomState,
    born: Instant,
    /// Milliseconds one failure adds to a key's debt.
    step_ms: u64,
    /// How far ahead of now a key's debt may run before it is limited.
    tolerance_ms: u64,
}

impl FailureLimiter {
    /// `None` when `per_minute` is 0: the limit is off.
    pub fn per_minute(per_minute: u32) -> Option<Self> {
        (per_minute > 0).then(|| {
            let step_ms = 60_000 / u64::from(per_minute).max(1);
            Self {
                shards: (0..SHARDS).map(|_| Mutex::new(HashMap::new())).collect(),
                max_debt: AtomicU64::new(0),
                hasher: RandomState::new(),
                born: Instant::now(),
                step_ms: step_ms.max(1),
                tolerance_ms: step_ms.max(1) * u64::from(per_minute),
            }
        })
    }

    fn now_ms(&self) -> u64 {
        u64::try_from(self.born.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    fn shard(&self, key: u64) -> &Mutex<HashMap<u64, u64>> {
        // SHARDS is a power of two and the index is masked into range.
        let index = usize::try_from(key >> 59).unwrap_or(0) % SHARDS;
        #[allow(clippy::indexing_slicing)]
        &self.shards[index]
    }

    fn verdict(&self, debt_until: u64, now: u64) -> Verdict {
        if debt_until > now + self.tolerance_ms {
            let wait = debt_until - now - self.tolerance_ms;
            Verdict::Limited {
                retry_after_s: wait.div_ceil(1000).max(1),
            }
        } else {
            Verdict::Allowed
        }
    }

    /// Whether `key` has used up its failures: one more would be over the limit.
    /// Counts nothing.
    pub fn check(&self, key: &[u8]) -> Verdict {
        let max_debt = self.max_debt.load(Ordering::Relaxed);
        if max_debt == 0 {
            return Verdict::Allowed;
        }
        let now = self.now_ms();
        if self.verdict(max_debt.max(now) + self.step_ms, now) == Verdict::Allowed {
            return Verdict::Allowed;
        }
        let hash = self.hasher.hash_one(key);
        let shard = self.shard(hash).lock().unwrap_or_else(|e| e.into_inner());
        match shard.get(&hash) {
            Some(&debt_until) => self.verdict(debt_until.max(now) + self.step_ms, now),
            None => Verdict::Allowed,
        }
    }

    /// Counts a failure of `key`. The verdict says whether it is over the limit now,
    /// and `true` beside it when this failure is the one that crossed it (to log once
    /// per window, not once per attempt).
    pub fn fail(&self, key: &[u8]) -> (Verdict, bool) {
        let hash = self.hasher.hash_one(key);
        let now = self.now_ms();
        let mut shard = self.shard(hash).lock().unwrap_or_else(|e| e.into_inner());
        if !shard.contains_key(&hash) && shard.len() >= PER_SHARD {
            make_room(&mut shard, now);
        }
        let debt_until = shard.entry(hash).or_insert(now);
        let was = self.verdict(*debt_until, now);
        if was == Verdict::Allowed {
            *debt_until = (*debt_until).max(now) + self.step_ms;
            self.max_debt.fetch_max(*debt_until, Ordering::Relaxed);
        }
        let is = self.verdict(*debt_until, now);
        (is, was == Verdict::Allowed && is != Verdict::Allowed)
    }

    /// How many keys are remembered (for tests and metrics).
    pub fn len(&self) -> usize {
        self.shards
            .iter()
            .map(|s| s.lock().unwrap_or_else(|e| e.into_inner()).len())
            .sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The most keys the table ever holds.
    pub const CAPACITY: usize = SHARDS * PER_SHARD;
}

/// Forgets what is forgiven already and, if that is not enough, the eighth of the
/// keys nearest to being forgiven: a full shard is sorted out once per `PER_SHARD / 8`
/// new keys, not at every one.
fn make_room(shard: &mut HashMap<u64, u64>, now: u64) {
    shard.retain(|_, debt_until| *debt_until > now);
    if shard.len() < PER_SHARD {
        return;
    }
    let mut debts: Vec<u64> = shard.values().copied().collect();
    let (_, threshold, _) = debts.select_nth_unstable(PER_SHARD / 8);
    let threshold = *threshold;
    shard.retain(|_, debt_until| *debt_until > threshold);
}

impl std::fmt::Debug for FailureLimiter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FailureLimiter")
            .field("step", &Duration::from_millis(self.step_ms))
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_is_allowed_then_limited_and_only_the_crossing_is_reported() {
        let limiter = FailureLimiter::per_minute(20).unwrap();
        let mut crossings = 0;
        for i in 0..20 {
            let (verdict, crossed) = limiter.fail(b"client-a");
            crossings += usize::from(crossed);
            assert_eq!(verdict, Verdict::Allowed, "failure {i}");
        }
        let (verdict, crossed) = limiter.fail(b"client-a");
        assert!(
            matches!(verdict, Verdict::Limited { retry_after_s } if (1..=3).contains(&retry_after_s))
        );
        assert!(crossed);
        for _ in 0..100 {
            let (verdict, crossed) = limiter.fail(b"client-a");
            assert!(matches!(verdict, Verdict::Limited { .. }));
            crossings += usize::from(crossed);
        }
        assert_eq!(crossings, 0, "crossed once only");
        assert!(matches!(
            limiter.check(b"client-a"),
            Verdict::Limited { .. }
        ));
        // Another key is not touched.
        assert_eq!(limiter.check(b"client-b"), Verdict::Allowed);
        assert!(FailureLimiter::per_minute(0).is_none());
    }

    #[test]
    fn a_key_within_its_burst_is_allowed_without_a_lookup_and_one_over_it_is_not() {
        let limiter = FailureLimiter::per_minute(3).unwrap();
        assert_eq!(limiter.check(b"a"), Verdict::Allowed, "nothing failed yet");
        limiter.fail(b"a");
        // The furthest debt is within the burst: every key passes on the shortcut.
        assert_eq!(limiter.check(b"a"), Verdict::Allowed);
        for _ in 0..3 {
            limiter.fail(b"b");
        }
        assert!(matches!(limiter.check(b"b"), Verdict::Limited { .. }));
        assert_eq!(limiter.check(b"a"), Verdict::Allowed);
    }

    #[test]
    fn a_flood_of_random_keys_stays_within_the_table_and_keeps_the_limited_ones() {
        let limiter = FailureLimiter::per_minute(5).unwrap();
        for _ in 0..10 {
            limiter.fail(b"guesser");
        }
        assert!(matches!(limiter.check(b"guesser"), Verdict::Limited { .. }));
        for i in 0..(FailureLimiter::CAPACITY * 3) as u64 {
            limiter.fail(&i.to_le_bytes());
        }
        assert!(limiter.len() <= FailureLimiter::CAPACITY);
        assert!(
            matches!(limiter.check(b"guesser"), Verdict::Limited { .. }),
            "the key in debt is the last to be forgotten"
        );
    }
}

// ----- who is asking, and the guard in front of every credential check -----------------

/// The peer of a request's connection, put in its extensions by the listener.
#[derive(Debug, Clone, Copy)]
pub struct PeerAddr(pub std::net::SocketAddr);

/// The peer address, or none (a request made in-process); never a rejection.
#[derive(Debug, Clone, Copy)]
pub struct Peer(pub Option<std::net::IpAddr>);

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for Peer {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        _state: &S,
    ) -> Result<Self, Self::Rejection> {
        Ok(Self(parts.extensions.get::<PeerAddr>().map(|p| p.0.ip())))
    }
}

/// An address or a network (`10.0.0.0/8`, `::1`) of proxies trusted to say who their
/// client is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IpNet {
    addr: std::net::IpAddr,
    prefix: u8,
}

impl IpNet {
    pub fn parse(text: &str) -> Option<Self> {
        let (addr, prefix) = match text.trim().split_once('/') {
            Some((addr, prefix)) => (addr.parse().ok()?, Some(prefix.parse::<u8>().ok()?)),
            None => (text.trim().parse().ok()?, None),
        };
        let max = match addr {
            std::net::IpAddr::V4(_) => 32,
            std::net::IpAddr::V6(_) => 128,
        };
        let prefix = prefix.unwrap_or(max);
        (prefix <= max).then_some(Self { addr, prefix })
    }

    pub fn contains(&self, ip: std::net::IpAddr) -> bool {
        let bits = |ip: std::net::IpAddr| match ip {
            std::net::IpAddr::V4(v4) => (u128::from(u32::from(v4)), 32u32),
            std::net::IpAddr::V6(v6) => (u128::from(v6), 128u32),
        };
        let ((net, width), (candidate, other)) = (bits(self.addr), bits(ip));
        if width != other {
            return false;
        }
        let shift = width - u32::from(self.prefix);
        shift >= width || (net >> shift) == (candidate >> shift)
    }
}

/// An address as the limiter's key: an IPv4 address and its IPv6-mapped form are one.
fn address_key(ip: std::net::IpAddr) -> [u8; 16] {
    match ip {
        std::net::IpAddr::V4(v4) => v4.to_ipv6_mapped().octets(),
        std::net::IpAddr::V6(v6) => v6.octets(),
    }
}

/// Refused for too many failed authentications: try again after this many seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TooManyFailures {
    pub retry_after_s: u64,
}

/// The failed-authentication limits of one listener, and whom it trusts to name the
/// client's address.
///
/// The rule: a source address that fails too often is refused before its credentials
/// are even read (it is the one guessing; behind a proxy, configure the proxy as
/// trusted so that addresses are the clients'). A client id that fails too often is
/// refused only when it fails again: its wrong attempts get 429 instead of 401, but a
/// correct credential is always served, so a flood of failures for client X from
/// elsewhere never locks X's real owner out. (Client secrets carry 256 random bits:
/// guessing one is hopeless at any rate; the limits keep guessers cheap to refuse and
/// visible.) Each node counts alone.
#[derive(Debug)]
pub struct AuthGuard {
    per_address: Option<FailureLimiter>,
    per_client: Option<FailureLimiter>,
    trusted: Vec<IpNet>,
    /// Counts the requests answered 429 (`tessera_auth_limited_total`).
    metrics: std::sync::Arc<crate::metrics::Metrics>,
    admin: bool,
}

impl AuthGuard {
    /// The limits of the admin listener (`admin`) or the public one.
    pub fn new(
        admin: bool,
        per_address: u32,
        per_client: u32,
        trusted: Vec<IpNet>,
        metrics: std::sync::Arc<crate::metrics::Metrics>,
    ) -> Self {
        Self {
            per_address: FailureLimiter::per_minute(per_address),
            per_client: FailureLimiter::per_minute(per_client),
            trusted,
            metrics,
            admin,
        }
    }

    fn listener(&self) -> &'static str {
        if self.admin { "admin" } else { "public" }
    }

    /// The client's address: the peer's, or, when the peer is a trusted proxy, the
    /// nearest untrusted address in `X-Forwarded-For` (else RFC 7239 `Forwarded`).
    pub fn source(&self, headers: &axum::http::HeaderMap, peer: Peer) -> Option<std::net::IpAddr> {
        let peer = peer.0?;
        if !self.is_trusted(peer) {
            return Some(peer);
        }
        let forwarded_for = headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .filter_map(|hop| hop.trim().parse::<std::net::IpAddr>().ok())
            .collect::<Vec<_>>();
        let from_forwarded = || {
            headers
                .get_all(axum::http::header::FORWARDED)
                .iter()
                .filter_map(|v| v.to_str().ok())
                .flat_map(|v| v.split([',', ';']))
                .filter_map(|pair| pair.trim().split_once('='))
                .filter(|(k, _)| k.trim().eq_ignore_ascii_case("for"))
                .filter_map(|(_, v)| {
                    let v = v.trim().trim_matches('"');
                    let v = v
                        .strip_prefix('[')
                        .map_or(v, |v6| v6.split(']').next().unwrap_or(v6));
                    v.parse::<std::net::IpAddr>()
                        .ok()
                        .or_else(|| v.rsplit_once(':').and_then(|(ip, _)| ip.parse().ok()))
                })
                .collect::<Vec<_>>()
        };
        let hops = if forwarded_for.is_empty() {
            from_forwarded()
        } else {
            forwarded_for
        };
        Some(
            hops.into_iter()
                .rev()
                .find(|hop| !self.is_trusted(*hop))
                .unwrap_or(peer),
        )
    }

    fn is_trusted(&self, ip: std::net::IpAddr) -> bool {
        self.trusted.iter().any(|net| net.contains(ip))
    }

    /// Before reading credentials: refused if this address failed too often.
    pub fn admit(&self, source: Option<std::net::IpAddr>) -> Result<(), TooManyFailures> {
        let (Some(limiter), Some(ip)) = (&self.per_address, source) else {
            return Ok(());
        };
        match limiter.check(&address_key(ip)) {
            Verdict::Allowed => Ok(()),
            Verdict::Limited { retry_after_s } => Err(self.refuse(retry_after_s)),
        }
    }

    /// After a failed authentication: counts it against the address and the client id,
    /// and says whether to answer 429 rather than 401.
    pub fn failed(
        &self,
        source: Option<std::net::IpAddr>,
        client_id: Option<&str>,
    ) -> Result<(), TooManyFailures> {
        let mut wait = 0;
        if let (Some(limiter), Some(ip)) = (&self.per_address, source) {
            let (verdict, crossed) = limiter.fail(&address_key(ip));
            if crossed {
                tracing::warn!(listener = self.listener(), address = %ip, "too many failed authentications from this address; refusing it for a while");
            }
            if let Verdict::Limited { retry_after_s } = verdict {
                wait = wait.max(retry_after_s);
            }
        }
        if let (Some(limiter), Some(id)) = (&self.per_client, client_id) {
            let (verdict, crossed) = limiter.fail(id.as_bytes());
            if crossed {
                tracing::warn!(listener = self.listener(), client_id = %id, "too many failed authentications for this client id; its wrong attempts get 429 for a while");
            }
            if let Verdict::Limited { retry_after_s } = verdict {
                wait = wait.max(retry_after_s);
            }
        }
        if wait > 0 {
            Err(self.refuse(wait))
        } else {
            Ok(())
        }
    }

    fn refuse(&self, retry_after_s: u64) -> TooManyFailures {
        self.metrics.auth_limited(self.admin);
        TooManyFailures { retry_after_s }
    }
}

#[cfg(test)]
mod guard_tests {
    use super::*;

    #[test]
    fn networks_contain_their_addresses() {
        let net = IpNet::parse("10.1.0.0/16").unwrap();
        assert!(net.contains("10.1.200.3".parse().unwrap()));
        assert!(!net.contains("10.2.0.1".parse().unwrap()));
        assert!(!net.contains("::1".parse().unwrap()));
        assert!(
            IpNet::parse("::1")
                .unwrap()
                .contains("::1".parse().unwrap())
        );
        assert!(
            IpNet::parse("0.0.0.0/0")
                .unwrap()
                .contains("8.8.8.8".parse().unwrap())
        );
        assert!(IpNet::parse("10.0.0.0/33").is_none());
        assert!(IpNet::parse("nope").is_none());
    }

    #[test]
    fn the_source_is_read_from_a_trusted_proxy_only() {
        let guard = AuthGuard::new(
            false,
            10,
            10,
            vec![IpNet::parse("10.0.0.0/8").unwrap()],
            std::sync::Arc::default(),
        );
        let mut headers = axum::http::HeaderMap::new();
        headers.insert("x-forwarded-for", "203.0.113.9, 10.0.0.7".parse().unwrap());
        let proxy = Peer(Some("10.0.0.1".parse().unwrap()));
        let stranger = Peer(Some("198.51.100.1".parse().unwrap()));
        assert_eq!(guard.source(&headers, proxy), "203.0.113.9".parse().ok());
        assert_eq!(
            guard.source(&headers, stranger),
            "198.51.100.1".parse().ok()
        );
        let mut headers = axum::http::HeaderMap::new();
        headers.insert(
            "forwarded",
            "for=\"[2001:db8::1]:4711\";proto=https".parse().unwrap(),
        );
        assert_eq!(guard.source(&headers, proxy), "2001:db8::1".parse().ok());
        assert_eq!(
            guard.source(&axum::http::HeaderMap::new(), proxy),
            "10.0.0.1".parse().ok()
        );
    }
}
