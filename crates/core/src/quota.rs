//! Per-application token quotas (`Application::quota`), counted in memory like usage
//! (`usage.rs`): a grant checks and counts in one short critical section of a shard,
//! with no write per token.
//!
//! **Several nodes.** Counts are per node, and the two limits are shared differently:
//!
//! - *per day*: a node adds to its own count the tokens the other nodes issued to the
//!   application today, as the store's usage table says. Once a minute, right after
//!   its usage flush, each node reads the application's hourly totals of the current
//!   UTC day (one query per application that has a day quota) and subtracts what it
//!   flushed itself. Other nodes' tokens are therefore seen at most about two minutes
//!   late (their flush, then this node's read): across N nodes the day quota can be
//!   exceeded by at most what the other N-1 nodes issue in those two minutes, itself
//!   capped by the minute quota when there is one. The same read makes a restarted
//!   node remember the tokens it issued today before the restart. The store's totals
//!   include tokens administrators issued on other nodes, so those count against the
//!   day quota; on this node they do not.
//! - *per minute*: enforced by each node alone; with N nodes behind a load balancer an
//!   application may get up to N times its minute quota in the worst case. A minute is
//!   shorter than the flush period, so no cheap share of the store would help.

use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::sync::Mutex;

use crate::domain::Quota;
use crate::store::UsageKey;

const SHARDS: usize = 16;
const DAY_S: i64 = 86_400;

/// Where one application stands in the current minute and UTC day on this node.
#[derive(Debug, Default)]
struct Standing {
    minute: i64,
    in_minute: u64,
    day: i64,
    /// Tokens this node granted today (grants only).
    granted_today: u64,
    /// Tokens of today this node added to the store's usage (any kind).
    flushed_today: u64,
    /// The store's total of today at the last read, this node's flushed tokens included.
    stored_today: u64,
}

impl Standing {
    fn roll(&mut self, now_s: i64) {
        let minute = now_s.div_euclid(60);
        if self.minute != minute {
            self.minute = minute;
            self.in_minute = 0;
        }
        let day = now_s.div_euclid(DAY_S);
        if self.day != day {
            *self = Self {
                minute,
                in_minute: self.in_minute,
                day,
                ..Self::default()
            };
        }
    }

    /// Tokens the other nodes issued today, as far as the store knows.
    fn others_today(&self) -> u64 {
        self.stored_today.saturating_sub(self.flushed_today)
    }
}

/// realm id → client id → standing
type Standings = HashMap<String, HashMap<String, Standing>>;

/// Which limit a refused grant ran into, and when to come back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Exceeded {
    pub per: Per,
    pub limit: u32,
    pub retry_after_s: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Per {
    Minute,
    Day,
}

pub struct QuotaCounter {
    shards: Vec<Mutex<Standings>>,
}

impl Default for QuotaCounter {
    fn default() -> Self {
        Self {
            shards: (0..SHARDS).map(|_| Mutex::new(Standings::new())).collect(),
        }
    }
}

impl QuotaCounter {
    /// Counts one token against `quota` at `now_s`, or says which limit is reached and
    /// in how many seconds it rolls over (the next minute, or the next UTC midnight).
    /// An application without a quota costs nothing here.
    pub fn take(
        &self,
        realm_id: &str,
        client_id: &str,
        quota: Quota,
        now_s: i64,
    ) -> Result<(), Exceeded> {
        if quota.is_unlimited() {
            return Ok(());
        }
        let Some(mut shard) = self.shard(client_id) else {
            return Ok(());
        };
        with_standing(&mut shard, realm_id, client_id, |standing| {
            standing.roll(now_s);
            // The day first: when both are reached, the minute rolling over does not help.
            if let Some(limit) = quota.per_day
                && standing
                    .granted_today
                    .saturating_add(standing.others_today())
                    >= u64::from(limit)
            {
                let left = DAY_S - now_s.rem_euclid(DAY_S);
                return Err(Exceeded {
                    per: Per::Day,
                    limit,
                    retry_after_s: u64::try_from(left).unwrap_or(1),
                });
            }
            if let Some(limit) = quota.per_minute
                && standing.in_minute >= u64::from(limit)
            {
                let left = 60 - now_s.rem_euclid(60);
                return Err(Exceeded {
                    per: Per::Minute,
                    limit,
                    retry_after_s: u64::try_from(left).unwrap_or(1),
                });
            }
            standing.in_minute += 1;
            standing.granted_today += 1;
            Ok(())
        })
    }

    /// Gives back a token counted by [`Self::take`] at `at_s` whose grant then failed.
    pub fn give_back(&self, realm_id: &str, client_id: &str, quota: Quota, at_s: i64) {
        if quota.is_unlimited() {
            return;
        }
        let Some(mut shard) = self.shard(client_id) else {
            return;
        };
        let Some(standing) = shard
            .get_mut(realm_id)
            .and_then(|apps| apps.get_mut(client_id))
        else {
            return;
        };
        if standing.minute == at_s.div_euclid(60) {
            standing.in_minute = standing.in_minute.saturating_sub(1);
        }
        if standing.day == at_s.div_euclid(DAY_S) {
            standing.granted_today = standing.granted_today.saturating_sub(1);
        }
    }

    /// Notes usage this node just added to the store, so that reading the store's
    /// totals afterwards tells this node's tokens from the other nodes'.
    pub fn flushed(&self, counts: &[(UsageKey, u64)], now_s: i64) {
        let today = now_s.div_euclid(DAY_S);
        for (key, tokens) in counts {
            if key.hour.div_euclid(24) != today {
                continue;
            }
            let Some(mut shard) = self.shard(&key.client_id) else {
                continue;
            };
            with_standing(&mut shard, &key.realm_id, &key.client_id, |standing| {
                standing.roll(now_s);
                standing.flushed_today = standing.flushed_today.saturating_add(*tokens);
            });
        }
    }

    /// Records the store's total of today for one application (all nodes' flushed
    /// usage, this node's included).
    pub fn stored_today(&self, realm_id: &str, client_id: &str, total: u64, now_s: i64) {
        let Some(mut shard) = self.shard(client_id) else {
            return;
        };
        with_standing(&mut shard, realm_id, client_id, |standing| {
            standing.roll(now_s);
            standing.stored_today = total;
        });
    }

    /// Forgets applications whose counts are all from an earlier day.
    pub fn forget_before(&self, now_s: i64) {
        let today = now_s.div_euclid(DAY_S);
        for shard in &self.shards {
            let mut shard = lock(shard);
            shard.retain(|_, apps| {
                apps.retain(|_, s| s.day >= today);
                !apps.is_empty()
            });
        }
    }

    fn shard(&self, client_id: &str) -> Option<std::sync::MutexGuard<'_, Standings>> {
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        client_id.hash(&mut hasher);
        let index = usize::try_from(hasher.finish() % SHARDS as u64).unwrap_or(0);
        self.shards.get(index).map(lock)
    }
}

/// The first hour (unix seconds / 3600) of the UTC day of `now_s`.
pub fn first_hour_of_day(now_s: i64) -> i64 {
    now_s.div_euclid(DAY_S) * 24
}

/// Runs `f` on the standing of one application, made if it is new.
fn with_standing<R>(
    shard: &mut Standings,
    realm_id: &str,
    client_id: &str,
    f: impl FnOnce(&mut Standing) -> R,
) -> R {
    let apps = match shard.get_mut(realm_id) {
        Some(apps) => apps,
        None => shard.entry(realm_id.to_owned()).or_default(),
    };
    let standing = match apps.get_mut(client_id) {
        Some(standing) => standing,
        None => apps.entry(client_id.to_owned()).or_default(),
    };
    f(standing)
}

fn lock(shard: &Mutex<Standings>) -> std::sync::MutexGuard<'_, Standings> {
    // A poisoned shard still holds consistent counts.
    shard.lock().unwrap_or_else(|e| e.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOON: i64 = 20_000 * DAY_S + 12 * 3600;

    fn quota(per_minute: Option<u32>, per_day: Option<u32>) -> Quota {
        Quota {
            per_minute,
            per_day,
        }
    }

    #[test]
    fn minute_and_day_limits_roll_over() {
        let counter = QuotaCounter::default();
        let q = quota(Some(2), Some(3));
        assert!(counter.take("r", "a", q, NOON + 10).is_ok());
        assert!(counter.take("r", "a", q, NOON + 20).is_ok());
        let err = counter.take("r", "a", q, NOON + 30).unwrap_err();
        assert_eq!((err.per, err.retry_after_s), (Per::Minute, 30));
        // Another application is counted apart.
        assert!(counter.take("r", "b", q, NOON + 30).is_ok());
        assert!(counter.take("r", "a", q, NOON + 60).is_ok());
        let err = counter.take("r", "a", q, NOON + 61).unwrap_err();
        assert_eq!((err.per, err.retry_after_s), (Per::Day, 12 * 3600 - 61));
        assert!(counter.take("r", "a", q, NOON + 12 * 3600).is_ok());
    }

    #[test]
    fn given_back_and_other_nodes_counted() {
        let counter = QuotaCounter::default();
        let q = quota(None, Some(10));
        assert!(counter.take("r", "a", q, NOON).is_ok());
        counter.give_back("r", "a", q, NOON);
        // This node flushed 3 (of which 1 by an administrator); the store holds 9.
        let key = UsageKey {
            realm_id: "r".into(),
            client_id: "a".into(),
            hour: NOON / 3600,
        };
        counter.flushed(&[(key, 3)], NOON);
        counter.stored_today("r", "a", 9, NOON);
        for _ in 0..4 {
            assert!(counter.take("r", "a", q, NOON + 1).is_ok());
        }
        assert_eq!(
            counter.take("r", "a", q, NOON + 1).unwrap_err().per,
            Per::Day
        );
        counter.forget_before(NOON + DAY_S);
        assert!(counter.take("r", "a", q, NOON + DAY_S).is_ok());
    }
}
