//! How late the relay workers act on their sessions' deadlines (a player's next frame, a
//! recorder's silence check): the gap between a deadline and the moment the worker, woken
//! by `epoll_wait`, handles it.
//!
//! It tells the worker's share of a player's timing error from everything after the send
//! (the kernel, the network, the listener). Each worker counts into a plain array on its
//! own thread, with no atomics per frame, and adds it to the shared [`Lateness`] at its
//! housekeeping tick; `/metrics` shows it as a cumulative histogram.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Upper bounds of the buckets, in microseconds; the last bucket is everything above.
pub const BOUNDS_US: [u64; 9] = [100, 250, 500, 1_000, 2_000, 5_000, 10_000, 20_000, 50_000];
const BUCKETS: usize = BOUNDS_US.len() + 1;
/// The buckets' `le` labels in seconds, as Prometheus writes them.
const LABELS: [&str; BUCKETS] = [
    "0.0001", "0.00025", "0.0005", "0.001", "0.002", "0.005", "0.01", "0.02", "0.05", "+Inf",
];

fn bucket(late: Duration) -> usize {
    let us = u64::try_from(late.as_micros()).unwrap_or(u64::MAX);
    BOUNDS_US
        .iter()
        .position(|&bound| us <= bound)
        .unwrap_or(BOUNDS_US.len())
}

/// One worker's counts since its last flush.
#[derive(Default)]
pub(crate) struct LocalLateness {
    counts: [u64; BUCKETS],
    max: Duration,
}

impl LocalLateness {
    pub(crate) fn record(&mut self, late: Duration) {
        self.counts[bucket(late)] += 1;
        self.max = self.max.max(late);
    }

    /// Adds the counts to `shared` and to the metrics, and starts again from zero.
    pub(crate) fn flush(&mut self, shared: &Lateness) {
        let mut cumulative = 0;
        for ((&n, total), le) in self.counts.iter().zip(&shared.counts).zip(LABELS) {
            total.fetch_add(n, Ordering::Relaxed);
            cumulative += n;
            if cumulative > 0 {
                metrics::counter!("pbx_media_timer_lateness_seconds_bucket", "le" => le)
                    .increment(cumulative);
            }
        }
        shared.max_us.fetch_max(
            u64::try_from(self.max.as_micros()).unwrap_or(u64::MAX),
            Ordering::Relaxed,
        );
        *self = LocalLateness::default();
    }
}

/// The counts of every worker of a media service since it started.
#[derive(Default)]
pub struct Lateness {
    counts: [AtomicU64; BUCKETS],
    max_us: AtomicU64,
}

/// A copy of [`Lateness`] at one moment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LatenessSnapshot {
    /// Deadlines handled per bucket of [`BOUNDS_US`], the last one above them all.
    pub counts: Vec<u64>,
    pub max: Duration,
}

impl LatenessSnapshot {
    pub fn total(&self) -> u64 {
        self.counts.iter().sum()
    }

    /// The share of deadlines handled more than `bound_us` late (`bound_us` one of
    /// [`BOUNDS_US`]).
    pub fn share_over(&self, bound_us: u64) -> f64 {
        let over: u64 = BOUNDS_US
            .iter()
            .zip(&self.counts)
            .filter(|(b, _)| **b > bound_us)
            .map(|(_, n)| n)
            .sum::<u64>()
            + self.counts.last().copied().unwrap_or(0);
        over as f64 / self.total().max(1) as f64
    }
}

impl Lateness {
    pub fn snapshot(&self) -> LatenessSnapshot {
        LatenessSnapshot {
            counts: self
                .counts
                .iter()
                .map(|c| c.load(Ordering::Relaxed))
                .collect(),
            max: Duration::from_micros(self.max_us.load(Ordering::Relaxed)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_land_in_their_buckets_and_survive_a_flush() {
        let shared = Lateness::default();
        let mut local = LocalLateness::default();
        local.record(Duration::from_micros(40));
        local.record(Duration::from_micros(100));
        local.record(Duration::from_micros(1_500));
        local.record(Duration::from_millis(80));
        local.flush(&shared);
        local.record(Duration::from_micros(300));
        local.flush(&shared);

        let got = shared.snapshot();
        assert_eq!(got.counts, vec![2, 0, 1, 0, 1, 0, 0, 0, 0, 1]);
        assert_eq!(got.max, Duration::from_millis(80));
        assert_eq!(got.total(), 5);
        // 1.5 ms and 80 ms are over 1 ms; only 80 ms is over 50 ms.
        assert!((got.share_over(1_000) - 0.4).abs() < 1e-9);
        assert!((got.share_over(50_000) - 0.2).abs() < 1e-9);
    }
}
