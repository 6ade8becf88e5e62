//! Tokens issued per application per hour, counted in memory on the hot path and
//! added to the store's hourly totals by a periodic flush: no write per token.
//!
//! Sharded like the replay cache, so that concurrent grants rarely wait on one lock;
//! a count is two map lookups by `&str` and an add, with no allocation once the
//! application has been counted in that hour.

use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::sync::Mutex;

use crate::store::UsageKey;

const SHARDS: usize = 16;

/// realm id → client id → hour → tokens
type Counts = HashMap<String, HashMap<String, HashMap<i64, u64>>>;

pub struct UsageCounter {
    shards: Vec<Mutex<Counts>>,
}

impl Default for UsageCounter {
    fn default() -> Self {
        Self {
            shards: (0..SHARDS).map(|_| Mutex::new(Counts::new())).collect(),
        }
    }
}

impl UsageCounter {
    /// Counts `n` tokens issued to the application in the hour of `at_s`.
    pub fn add(&self, realm_id: &str, client_id: &str, at_s: i64, n: u64) {
        let hour = at_s.div_euclid(3600);
        let Some(mut shard) = self.shard(client_id) else {
            return;
        };
        let counts = match shard.get_mut(realm_id) {
            Some(apps) => apps,
            None => shard.entry(realm_id.to_owned()).or_default(),
        };
        let hours = match counts.get_mut(client_id) {
            Some(hours) => hours,
            None => counts.entry(client_id.to_owned()).or_default(),
        };
        *hours.entry(hour).or_default() += n;
    }

    /// Everything counted since the last call, leaving the counter empty.
    pub fn take(&self) -> Vec<(UsageKey, u64)> {
        let mut out = Vec::new();
        for shard in &self.shards {
            let counts = std::mem::take(&mut *lock(shard));
            for (realm_id, apps) in counts {
                for (client_id, hours) in apps {
                    for (hour, tokens) in hours {
                        out.push((
                            UsageKey {
                                realm_id: realm_id.clone(),
                                client_id: client_id.clone(),
                                hour,
                            },
                            tokens,
                        ));
                    }
                }
            }
        }
        out
    }

    /// Puts counts back after a flush that failed, so that none are lost.
    pub fn restore(&self, counts: Vec<(UsageKey, u64)>) {
        for (key, tokens) in counts {
            self.add(&key.realm_id, &key.client_id, key.hour * 3600, tokens);
        }
    }

    /// What this process counted for one application and has not flushed yet.
    pub fn pending(&self, realm_id: &str, client_id: &str) -> Vec<(i64, u64)> {
        let Some(shard) = self.shard(client_id) else {
            return Vec::new();
        };
        shard
            .get(realm_id)
            .and_then(|apps| apps.get(client_id))
            .map(|hours| hours.iter().map(|(h, n)| (*h, *n)).collect())
            .unwrap_or_default()
    }

    /// The shard of `client_id`; always `Some`, as the index is taken modulo the count.
    fn shard(&self, client_id: &str) -> Option<std::sync::MutexGuard<'_, Counts>> {
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        client_id.hash(&mut hasher);
        let index = usize::try_from(hasher.finish() % SHARDS as u64).unwrap_or(0);
        self.shards.get(index).map(lock)
    }
}

fn lock(shard: &Mutex<Counts>) -> std::sync::MutexGuard<'_, Counts> {
    // A poisoned shard still holds consistent counts.
    shard.lock().unwrap_or_else(|e| e.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_per_application_and_hour_and_drains() {
        let counter = UsageCounter::default();
        counter.add("r", "a", 3600 * 10 + 5, 1);
        counter.add("r", "a", 3600 * 10 + 3599, 1);
        counter.add("r", "a", 3600 * 11, 1);
        counter.add("r", "b", 3600 * 10, 1);
        counter.add("s", "a", 3600 * 10, 1);
        let mut pending = counter.pending("r", "a");
        pending.sort_unstable();
        assert_eq!(pending, vec![(10, 2), (11, 1)]);
        let mut taken = counter.take();
        taken.sort_by(|x, y| {
            (&x.0.realm_id, &x.0.client_id, x.0.hour).cmp(&(
                &y.0.realm_id,
                &y.0.client_id,
                y.0.hour,
            ))
        });
        let flat: Vec<_> = taken
            .iter()
            .map(|(k, n)| (k.realm_id.as_str(), k.client_id.as_str(), k.hour, *n))
            .collect();
        assert_eq!(
            flat,
            vec![
                ("r", "a", 10, 2),
                ("r", "a", 11, 1),
                ("r", "b", 10, 1),
                ("s", "a", 10, 1)
            ]
        );
        assert!(counter.take().is_empty());
        counter.restore(taken);
        assert_eq!(counter.take().len(), 4, "a failed flush loses nothing");
    }
}
