//! The transaction table: a hash map split into many small ones.
//!
//! Why: a server keeps every completed non-INVITE transaction for Timer J (64·T1, 32 s) to
//! absorb retransmissions (RFC 3261 §17.2.2), so at thousands of requests per second the table
//! holds hundreds of thousands of entries. One `HashMap` doubles all at once: measured at
//! 6000 REGISTER/s, the resize at 57,000 entries stopped the engine for 50–70 ms (fresh pages
//! faulted in, every entry moved), long enough for the client's receive buffer to overflow with
//! the backlog's answers and for it to retransmit. Split in [`SHARDS`] maps, each resize moves
//! 1/[`SHARDS`] of the entries, and the pauses shrink below a millisecond.

use std::collections::HashMap;
use std::hash::{BuildHasher, Hash, RandomState};

/// Number of sub-maps; a power of two so the choice is a shift.
const SHARDS: usize = 256;

#[derive(Debug)]
pub(super) struct Table<K, V> {
    shards: Vec<HashMap<K, V>>,
    pick: RandomState,
    len: usize,
}

impl<K: Hash + Eq, V> Default for Table<K, V> {
    fn default() -> Self {
        Table {
            shards: (0..SHARDS).map(|_| HashMap::new()).collect(),
            pick: RandomState::new(),
            len: 0,
        }
    }
}

impl<K: Hash + Eq, V> Table<K, V> {
    fn shard(&self, key: &K) -> usize {
        // The top bits: the sub-maps use their own hashers, so these carry no bias into them.
        (self.pick.hash_one(key) >> (64 - SHARDS.trailing_zeros())) as usize
    }

    pub(super) fn len(&self) -> usize {
        self.len
    }

    pub(super) fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub(super) fn contains_key(&self, key: &K) -> bool {
        self.shards[self.shard(key)].contains_key(key)
    }

    pub(super) fn get(&self, key: &K) -> Option<&V> {
        self.shards[self.shard(key)].get(key)
    }

    pub(super) fn get_mut(&mut self, key: &K) -> Option<&mut V> {
        let i = self.shard(key);
        self.shards[i].get_mut(key)
    }

    pub(super) fn insert(&mut self, key: K, value: V) -> Option<V> {
        let i = self.shard(&key);
        let old = self.shards[i].insert(key, value);
        if old.is_none() {
            self.len += 1;
        }
        old
    }

    pub(super) fn remove(&mut self, key: &K) -> Option<V> {
        let i = self.shard(key);
        let old = self.shards[i].remove(key);
        if old.is_some() {
            self.len -= 1;
        }
        old
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn behaves_as_one_map() {
        let mut t: Table<u32, u32> = Table::default();
        assert!(t.is_empty());
        for i in 0..10_000 {
            assert_eq!(t.insert(i, i * 2), None);
        }
        assert_eq!(t.insert(7, 70), Some(14), "replacing keeps the count");
        assert_eq!(t.len(), 10_000);
        assert_eq!(t.get(&7), Some(&70));
        if let Some(v) = t.get_mut(&8) {
            *v = 80;
        }
        assert_eq!(t.get(&8), Some(&80));
        assert!(t.contains_key(&9_999));
        assert!(!t.contains_key(&10_000));
        assert_eq!(t.remove(&9_999), Some(19_998));
        assert_eq!(t.remove(&9_999), None, "removing twice counts once");
        assert_eq!(t.len(), 9_999);
        let used = t.shards.iter().filter(|s| !s.is_empty()).count();
        assert!(
            used > SHARDS / 2,
            "keys spread over the sub-maps ({used} used)"
        );
    }
}
