//! Giving memory back to the system after a flood of connections.
//!
//! The allocator keeps pages a flood freed until later allocations ask for them, so a
//! server that goes quiet right after an attack would keep its peak memory. The binary,
//! which chooses the allocator, registers how to release them; the listener calls it
//! once after many connections closed.

use std::sync::OnceLock;

static RELEASE: OnceLock<fn()> = OnceLock::new();

/// Registers how to give freed memory back to the system (once; later calls are
/// ignored).
pub fn on_release(release: fn()) {
    let _ = RELEASE.set(release);
}

/// Gives freed memory back, if the binary said how.
pub(crate) fn release() {
    if let Some(release) = RELEASE.get() {
        release();
    }
}

/// How many connections must have closed since the most open before memory is given
/// back.
const FLOOD: usize = 1024;

/// Follows a listener's open connections (at each of its one-second ticks) and gives
/// memory back when a flood of them is over: at the first tick that finds most of them
/// gone, and at each tick after while the rest keep closing (a flood's last connections
/// end over several seconds: stalled bodies at their timeout, idle ones at theirs).
#[derive(Debug, Default)]
pub(crate) struct FloodWatch {
    peak: usize,
    /// Open connections at the last release while a flood is still ending.
    settling: Option<usize>,
}

impl FloodWatch {
    /// `open` connections now; `true` when this tick released memory.
    pub(crate) fn tick(&mut self, open: usize) -> bool {
        self.peak = self.peak.max(open);
        let over = self.peak - open >= FLOOD && open <= self.peak / 2;
        if !over && self.settling.is_none() {
            return false;
        }
        let closing = self.settling.is_some_and(|last| open < last);
        // One more release once it is steady, then nothing until the next flood.
        self.settling = (over || closing).then_some(open);
        self.peak = open;
        release();
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_is_released_when_a_flood_is_over_until_it_is_steady() {
        let mut watch = FloodWatch::default();
        assert!(!watch.tick(64));
        assert!(!watch.tick(10_000), "rising");
        assert!(!watch.tick(9_500), "still held");
        assert!(watch.tick(2_000), "over");
        assert!(watch.tick(64), "the rest still closing");
        assert!(watch.tick(64), "steady: a last release");
        assert!(!watch.tick(64), "then quiet");
        assert!(!watch.tick(900), "a small wave is no flood");
        assert!(!watch.tick(10));
    }
}
