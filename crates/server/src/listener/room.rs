//! Making room when a listener is full (the newcomers that may be evicted) and the
//! count of open connections per source address.

use std::collections::HashMap;
use std::future::Future;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex};

// ----- making room when full ----------------------------------------------------------

pub(super) const WAITING: u8 = 0;
pub(super) const SETTLED: u8 = 1;
pub(super) const EVICTED: u8 = 2;

/// A connection that has not begun a request yet: the first to go when the listener
/// is full.
#[derive(Default)]
pub(super) struct Newcomer {
    state: AtomicU8,
    kick: tokio::sync::Notify,
}

impl Newcomer {
    /// Whether it was closed to make room.
    pub(super) fn is_evicted(&self) -> bool {
        self.state.load(Ordering::Acquire) == EVICTED
    }

    /// It has begun a request (or ended): never evicted from now on.
    pub(super) fn settle(&self) {
        let _ = self
            .state
            .compare_exchange(WAITING, SETTLED, Ordering::AcqRel, Ordering::Acquire);
    }

    /// Runs what comes before the connection's first request (its first byte, TLS
    /// handshake and head), `None` if it is evicted first; settled either way.
    pub(super) async fn until_evicted<T>(
        self: Arc<Self>,
        first: impl Future<Output = T>,
    ) -> Option<T> {
        tokio::pin!(first);
        let outcome = loop {
            tokio::select! {
                done = first.as_mut() => break Some(done),
                () = self.kick.notified() => {
                    if self.state.load(Ordering::Acquire) == EVICTED {
                        break None;
                    }
                }
            }
        };
        self.settle();
        outcome
    }
}

/// The connections in order of arrival, for [`Newcomers::evict_oldest`]. Settled ones
/// (serving, or closed) are skipped there and pruned whenever the queue reaches twice
/// the cap, so it holds at most that many entries of a few words, and pruning costs
/// each admission O(1) on average.
#[derive(Default)]
pub(super) struct Newcomers(Mutex<std::collections::VecDeque<Arc<Newcomer>>>);

impl Newcomers {
    pub(super) fn admit(&self, cap: usize) -> Arc<Newcomer> {
        let newcomer = Arc::new(Newcomer::default());
        let mut queue = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if queue.len() >= cap.saturating_mul(2) {
            queue.retain(|n| n.state.load(Ordering::Acquire) == WAITING);
        }
        queue.push_back(newcomer.clone());
        newcomer
    }

    /// Forgets the connections that settled or closed, and gives back the room a flood
    /// made the queue take: run when the listener is quiet, so that what a flood left
    /// behind does not stay until the next one.
    pub(super) fn prune(&self) {
        let mut queue = self.0.lock().unwrap_or_else(|e| e.into_inner());
        queue.retain(|n| n.state.load(Ordering::Acquire) == WAITING);
        let waiting = queue.len();
        if queue.capacity() > 4 * waiting + 1024 {
            queue.shrink_to(2 * waiting);
        }
    }

    /// Closes the connection that has waited longest without beginning a request.
    /// `false` when every open connection is serving: then the newcomer is refused.
    pub(super) fn evict_oldest(&self) -> bool {
        let mut queue = self.0.lock().unwrap_or_else(|e| e.into_inner());
        while let Some(oldest) = queue.pop_front() {
            if oldest
                .state
                .compare_exchange(WAITING, EVICTED, Ordering::AcqRel, Ordering::Acquire)
                .is_ok()
            {
                oldest.kick.notify_one();
                return true;
            }
        }
        false
    }
}

// ----- connections per address -------------------------------------------------------

/// Open connections per source address. Its size is bounded by the listener's cap:
/// an address leaves the map with its last connection.
#[derive(Default)]
pub(super) struct AddressCounts(Mutex<HashMap<IpAddr, usize>>);

/// One connection's place in [`AddressCounts`], given back when dropped.
pub(super) struct AddressSlot {
    counts: Arc<AddressCounts>,
    address: IpAddr,
}

impl AddressCounts {
    pub(super) fn enter(self: &Arc<Self>, address: IpAddr, cap: usize) -> Option<AddressSlot> {
        let mut counts = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let count = counts.entry(address).or_insert(0);
        if *count >= cap {
            return None;
        }
        *count += 1;
        Some(AddressSlot {
            counts: self.clone(),
            address,
        })
    }
}

impl Drop for AddressSlot {
    fn drop(&mut self) {
        let mut counts = self.counts.0.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(count) = counts.get_mut(&self.address) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                counts.remove(&self.address);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_address_leaves_the_map_with_its_last_connection() {
        let counts = Arc::new(AddressCounts::default());
        let ip: IpAddr = [10, 0, 0, 1].into();
        let a = counts.enter(ip, 2).unwrap();
        let b = counts.enter(ip, 2).unwrap();
        assert!(counts.enter(ip, 2).is_none());
        assert!(counts.enter([10, 0, 0, 2].into(), 2).is_some());
        drop(a);
        let c = counts.enter(ip, 2).unwrap();
        drop((b, c));
        assert!(counts.0.lock().unwrap().is_empty());
    }
}
