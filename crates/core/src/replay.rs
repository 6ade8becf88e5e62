//! Memory of one-time values (signed credentials, assertion `jti`s) until they expire.
//!
//! Sharded so that concurrent requests almost never wait on each other: each claim
//! locks one of 64 small maps for a hash-map insert. This cache is asked first; when
//! the store is shared by several nodes, a value it accepts is then claimed in the
//! store too (`Store::claim_once`), so that no other node accepts it again.

use std::collections::HashMap;
use std::sync::Mutex;

const SHARDS: usize = 64;
/// Expired entries are swept from a shard once it holds this many.
const SWEEP_AT: usize = 4096;

pub struct ReplayCache {
    shards: Vec<Mutex<Shard>>,
}

#[derive(Default)]
struct Shard {
    /// SHA-256 of the value → expiry (unix seconds)
    seen: HashMap<[u8; 32], i64>,
    sweep_at: usize,
}

impl Default for ReplayCache {
    fn default() -> Self {
        Self {
            shards: (0..SHARDS).map(|_| Mutex::new(Shard::default())).collect(),
        }
    }
}

impl ReplayCache {
    /// Records `value` as used until `expires_at`. Returns `false` if it was already
    /// recorded and has not expired: a replay.
    pub fn claim(&self, value: &[u8], expires_at: i64, now_s: i64) -> bool {
        self.claim_key(Self::key_of(value), expires_at, now_s)
    }

    /// The key a value is remembered under: its SHA-256, also what a shared store keeps.
    pub fn key_of(value: &[u8]) -> [u8; 32] {
        let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, value);
        let mut key = [0u8; 32];
        key.copy_from_slice(digest.as_ref());
        key
    }

    /// [`ReplayCache::claim`] for a value already reduced to its key.
    pub fn claim_key(&self, key: [u8; 32], expires_at: i64, now_s: i64) -> bool {
        let index = usize::from(key[0]) % SHARDS;
        let Some(shard) = self.shards.get(index) else {
            return false;
        };
        // A poisoned shard still holds a consistent map.
        let mut shard = shard.lock().unwrap_or_else(|e| e.into_inner());
        if shard.seen.get(&key).is_some_and(|exp| *exp > now_s) {
            return false;
        }
        shard.seen.insert(key, expires_at);
        if shard.seen.len() >= shard.sweep_at.max(SWEEP_AT) {
            shard.seen.retain(|_, exp| *exp > now_s);
            shard.sweep_at = shard.seen.len() * 2;
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_value_is_accepted_once_until_it_expires() {
        let cache = ReplayCache::default();
        assert!(cache.claim(b"a", 100, 0));
        assert!(!cache.claim(b"a", 100, 50));
        assert!(cache.claim(b"b", 100, 50));
        assert!(
            cache.claim(b"a", 200, 100),
            "expired entries may be used again"
        );
    }

    #[test]
    fn sweeping_keeps_live_entries() {
        let cache = ReplayCache::default();
        for i in 0..20_000u32 {
            assert!(cache.claim(&i.to_le_bytes(), if i % 2 == 0 { 10 } else { 1000 }, 0));
        }
        for i in (1..20_000u32).step_by(2) {
            assert!(!cache.claim(&i.to_le_bytes(), 1000, 20));
        }
    }
}
