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
/// memory back when a flood of them is over.
#[derive(Debug, Default)]
pub(crate) struct FloodWatch {
    peak: usize,
}

impl FloodWatch {
    /// `open` connections now; `true` when this tick released memory.
    pub(crate) fn tick(&mut self, open: usize) -> bool {
        self.peak = self.peak.max(open);
        if self.peak - open >= FLOOD && open <= self.peak / 2 {
            self.peak = open;
            release();
            return true;
        }
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_is_released_once_when_a_flood_is_over() {
        let mut watch = FloodWatch::default();
        assert!(!watch.tick(64));
        assert!(!watch.tick(10_000), "rising");
        assert!(!watch.tick(9_500), "still held");
        assert!(watch.tick(64), "over");
        assert!(!watch.tick(64), "once");
        assert!(!watch.tick(900), "a small wave is no flood");
        assert!(!watch.tick(10));
    }
}
