//! The layer's deadline heap, with lazy deletion: when a transaction's next deadline moves, a
//! new entry is pushed and the old one is skipped when it surfaces. The caller says which
//! entries are still live.

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

/// A min-heap of deadlines.
#[derive(Debug, Default)]
pub(super) struct DeadlineHeap {
    heap: BinaryHeap<Reverse<Deadline>>,
}

impl DeadlineHeap {
    pub(super) fn push(&mut self, deadline: Deadline) {
        self.heap.push(Reverse(deadline));
    }

    /// The earliest live deadline; stale ones on top are dropped on the way.
    pub(super) fn peek_live(&mut self, is_live: impl Fn(&Deadline) -> bool) -> Option<Instant> {
        while let Some(Reverse(top)) = self.heap.peek() {
            if is_live(top) {
                return Some(top.at);
            }
            self.heap.pop();
        }
        None
    }

    /// Removes and returns the earliest live deadline if it is due at `now`.
    pub(super) fn pop_due(
        &mut self,
        now: Instant,
        is_live: impl Fn(&Deadline) -> bool,
    ) -> Option<Deadline> {
        let at = self.peek_live(is_live)?;
        if at > now {
            return None;
        }
        self.heap.pop().map(|Reverse(due)| due)
    }

    /// Drops the stale entries once they outnumber the `live` ones, so the heap stays
    /// O(live) and each rebuild is paid for by as many pushes.
    pub(super) fn compact(&mut self, live: usize, is_live: impl Fn(&Deadline) -> bool) {
        if self.heap.len() > 2 * live + 64 {
            self.heap.retain(|Reverse(d)| is_live(d));
        }
    }

    #[cfg(test)]
    pub(super) fn len(&self) -> usize {
        self.heap.len()
    }
}
