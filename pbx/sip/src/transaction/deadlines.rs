//! The layer's deadline heap, with lazy deletion: when a transaction's next deadline moves, a
//! new entry is pushed and the old one is skipped when it surfaces. The caller says which
//! entries are still live.
//!
//! Stale entries are compacted away incrementally: once they outnumber the live ones, the
//! heap is set aside as `old` and its entries move into a fresh heap a few at a time, the live
//! ones kept, on every later push. A full `retain` over tens of thousands of entries would
//! stall the shard for milliseconds at once (the kind of pause that made SIPp retransmit,
//! docs/performance.md); this way each push pays for at most [`MOVES_PER_PUSH`] moves.

use super::TransactionKey;
use std::cmp::{Ordering, Reverse};
use std::collections::BinaryHeap;
use std::time::Instant;

/// One scheduled wake-up of the transaction `key` (its `id` tells it from an earlier
/// transaction under the same key).
#[derive(Debug)]
pub(super) struct Deadline {
    pub(super) at: Instant,
    pub(super) id: u64,
    pub(super) key: TransactionKey,
}

impl PartialEq for Deadline {
    fn eq(&self, other: &Deadline) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for Deadline {}

impl PartialOrd for Deadline {
    fn partial_cmp(&self, other: &Deadline) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Deadline {
    fn cmp(&self, other: &Deadline) -> Ordering {
        (self.at, self.id).cmp(&(other.at, other.id))
    }
}

/// Entries moved from the old heap into the new one per push while compacting. With the
/// trigger at `2 * live + 64`, moving 4 per push empties the old heap before the new one has
/// grown by more than half of it: memory stays O(live).
const MOVES_PER_PUSH: usize = 4;

/// A min-heap of deadlines.
#[derive(Debug, Default)]
pub(super) struct DeadlineHeap {
    heap: BinaryHeap<Reverse<Deadline>>,
    /// The heap being compacted: still consulted for the earliest deadline until empty.
    old: BinaryHeap<Reverse<Deadline>>,
}

impl DeadlineHeap {
    pub(super) fn push(&mut self, deadline: Deadline) {
        self.heap.push(Reverse(deadline));
    }

    /// The earliest live deadline of both heaps; stale ones on top are dropped on the way.
    pub(super) fn peek_live(&mut self, is_live: impl Fn(&Deadline) -> bool) -> Option<Instant> {
        let new = top_live(&mut self.heap, &is_live);
        let old = top_live(&mut self.old, &is_live);
        match (new, old) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Removes and returns the earliest live deadline if it is due at `now`.
    pub(super) fn pop_due(
        &mut self,
        now: Instant,
        is_live: impl Fn(&Deadline) -> bool,
    ) -> Option<Deadline> {
        let new = top_live(&mut self.heap, &is_live);
        let old = top_live(&mut self.old, &is_live);
        let from_old = match (new, old) {
            (Some(a), Some(b)) => b < a,
            (None, Some(_)) => true,
            _ => false,
        };
        let at = if from_old { old } else { new }?;
        if at > now {
            return None;
        }
        let heap = if from_old {
            &mut self.old
        } else {
            &mut self.heap
        };
        heap.pop().map(|Reverse(due)| due)
    }

    /// Called after each push with the number of `live` transactions: moves a few entries of
    /// a compaction under way, or starts one once the stale entries outnumber the live.
    pub(super) fn compact(&mut self, live: usize, is_live: impl Fn(&Deadline) -> bool) {
        if self.old.is_empty() {
            if self.heap.len() <= 2 * live + 64 {
                return;
            }
            self.old = std::mem::take(&mut self.heap);
        }
        for _ in 0..MOVES_PER_PUSH {
            let Some(Reverse(entry)) = self.old.pop() else {
                break;
            };
            if is_live(&entry) {
                self.heap.push(Reverse(entry));
            }
        }
        if self.old.is_empty() {
            // Give the emptied heap's memory back rather than keeping its peak capacity.
            self.old = BinaryHeap::new();
        }
    }

    #[cfg(test)]
    pub(super) fn len(&self) -> usize {
        self.heap.len() + self.old.len()
    }
}

/// The `at` of the earliest live entry of `heap`, dropping stale ones above it.
fn top_live(
    heap: &mut BinaryHeap<Reverse<Deadline>>,
    is_live: &impl Fn(&Deadline) -> bool,
) -> Option<Instant> {
    while let Some(Reverse(top)) = heap.peek() {
        if is_live(top) {
            return Some(top.at);
        }
        heap.pop();
    }
    None
}
