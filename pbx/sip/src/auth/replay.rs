//! Nonce-count replay protection (RFC 7616 §3.4: the server checks nc increases per nonce).
//!
//! Bounded: entries leave when their nonce expires, and past `capacity` the oldest is evicted.
//! An evicted nonce must not become replayable, so eviction raises a floor: every nonce at or
//! below it is treated as stale (the client is re-challenged with `stale=true`, not failed).

use super::nonce::NonceKey;
use std::collections::BTreeMap;

/// Default bound on tracked nonces; about 2 MB at most.
pub const DEFAULT_REPLAY_CAPACITY: usize = 100_000;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum NcCheck {
    Accepted,
    Replayed,
    /// Forgotten under memory pressure: the nonce must be renewed.
    Evicted,
}

pub(crate) struct ReplayGuard {
    highest: BTreeMap<NonceKey, u32>,
    floor: Option<NonceKey>,
    capacity: usize,
    lifetime_secs: u64,
}

impl ReplayGuard {
    pub(crate) fn new(capacity: usize, lifetime_secs: u64) -> ReplayGuard {
        ReplayGuard {
            highest: BTreeMap::new(),
            floor: None,
            capacity: capacity.max(1),
            lifetime_secs,
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.highest.len()
    }

    fn prune(&mut self, now_unix: u64) {
        while let Some((key, _)) = self.highest.first_key_value() {
            if now_unix.saturating_sub(key.issued) <= self.lifetime_secs {
                break;
            }
            self.highest.pop_first();
        }
    }

    /// Records `nc` for the nonce if it is higher than any seen; call only once the digest is
    /// proven right, so a forger cannot burn a real client's counts.
    pub(crate) fn check_and_record(&mut self, key: NonceKey, nc: u32, now_unix: u64) -> NcCheck {
        self.prune(now_unix);
        if self.floor.is_some_and(|floor| key <= floor) {
            return NcCheck::Evicted;
        }
        let seen = self.highest.entry(key).or_insert(0);
        if nc <= *seen {
            return NcCheck::Replayed;
        }
        *seen = nc;
        while self.highest.len() > self.capacity {
            if let Some((oldest, _)) = self.highest.pop_first() {
                self.floor = Some(self.floor.map_or(oldest, |f| f.max(oldest)));
            }
        }
        NcCheck::Accepted
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(issued: u64, serial: u32) -> NonceKey {
        NonceKey { issued, serial }
    }

    #[test]
    fn counts_must_increase_per_nonce() {
        let mut g = ReplayGuard::new(10, 60);
        assert_eq!(g.check_and_record(key(100, 0), 1, 100), NcCheck::Accepted);
        assert_eq!(g.check_and_record(key(100, 0), 1, 100), NcCheck::Replayed);
        assert_eq!(g.check_and_record(key(100, 1), 1, 100), NcCheck::Accepted);
        assert_eq!(g.check_and_record(key(100, 0), 3, 101), NcCheck::Accepted);
        assert_eq!(g.check_and_record(key(100, 0), 2, 101), NcCheck::Replayed);
        assert_eq!(g.check_and_record(key(100, 0), 0, 101), NcCheck::Replayed);
    }

    #[test]
    fn expired_entries_are_dropped() {
        let mut g = ReplayGuard::new(10, 60);
        g.check_and_record(key(100, 0), 1, 100);
        g.check_and_record(key(150, 0), 1, 150);
        assert_eq!(g.len(), 2);
        g.check_and_record(key(200, 0), 1, 200);
        assert_eq!(g.len(), 2, "the nonce issued at 100 expired at 160");
    }

    #[test]
    fn capacity_evicts_oldest_and_evicted_nonces_are_not_replayable() {
        let mut g = ReplayGuard::new(3, 1_000);
        for serial in 0..5 {
            assert_eq!(
                g.check_and_record(key(100, serial), 1, 100),
                NcCheck::Accepted
            );
        }
        assert_eq!(g.len(), 3);
        assert_eq!(g.check_and_record(key(100, 0), 1, 100), NcCheck::Evicted);
        assert_eq!(g.check_and_record(key(100, 1), 2, 100), NcCheck::Evicted);
        assert_eq!(g.check_and_record(key(100, 4), 1, 100), NcCheck::Replayed);
        assert_eq!(g.check_and_record(key(101, 0), 1, 101), NcCheck::Accepted);
    }
}
