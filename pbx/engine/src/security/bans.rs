//! Counting failed authentications per source address and deciding when to ban it.
//!
//! Sans-IO: the caller passes the time. The tracker keeps, per address, only the instants of the
//! failures inside the window (at most `max_failures` of them), so its memory is bounded by the
//! number of addresses that failed recently; [`FailureTracker::prune`] drops stale ones.

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::time::{Duration, Instant};

/// The most addresses tracked at once; past it the oldest entries are dropped first, so a
/// spoofing flood cannot grow memory without bound.
const MAX_TRACKED: usize = 100_000;

#[derive(Debug)]
pub struct FailureTracker {
    max_failures: u32,
    window: Duration,
    failures: HashMap<IpAddr, VecDeque<Instant>>,
}

impl FailureTracker {
    pub fn new(max_failures: u32, window: Duration) -> FailureTracker {
        FailureTracker {
            max_failures: max_failures.max(1),
            window,
            failures: HashMap::new(),
        }
    }

    /// Records one failure; true when the address has now reached the threshold within the
    /// window and must be banned (its history is then forgotten).
    pub fn record_failure(&mut self, ip: IpAddr, now: Instant) -> bool {
        if self.failures.len() >= MAX_TRACKED && !self.failures.contains_key(&ip) {
            self.prune(now);
            if self.failures.len() >= MAX_TRACKED {
                return false;
            }
        }
        let window = self.window;
        let list = self.failures.entry(ip).or_default();
        while list
            .front()
            .is_some_and(|t| now.saturating_duration_since(*t) >= window)
        {
            list.pop_front();
        }
        list.push_back(now);
        if list.len() >= self.max_failures as usize {
            self.failures.remove(&ip);
            return true;
        }
        false
    }

    /// A successful authentication does not clear earlier failures: an attacker that also
    /// knows one password must not be able to reset its counter with it.
    pub fn failures(&self, ip: IpAddr) -> usize {
        self.failures.get(&ip).map_or(0, VecDeque::len)
    }

    /// The failures of `ip` still inside the window at `now`.
    pub fn recent(&self, ip: IpAddr, now: Instant) -> usize {
        self.failures.get(&ip).map_or(0, |list| {
            list.iter()
                .filter(|t| now.saturating_duration_since(**t) < self.window)
                .count()
        })
    }

    /// The threshold: this many failures in the window ban the address.
    pub fn max_failures(&self) -> usize {
        self.max_failures as usize
    }

    /// Forgets addresses whose last failure is older than the window.
    pub fn prune(&mut self, now: Instant) {
        let window = self.window;
        self.failures.retain(|_, list| {
            list.back()
                .is_some_and(|t| now.saturating_duration_since(*t) < window)
        });
    }

    pub fn tracked(&self) -> usize {
        self.failures.len()
    }
}

#[cfg(test)]
#[allow(clippy::disallowed_methods)] // `Instant::now()`: one fixed base for virtual time
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn bans_at_threshold_within_window() {
        let t0 = Instant::now();
        let mut t = FailureTracker::new(3, Duration::from_secs(60));
        assert!(!t.record_failure(ip("127.0.0.2"), t0));
        assert!(!t.record_failure(ip("127.0.0.2"), t0 + Duration::from_secs(10)));
        assert!(!t.record_failure(ip("127.0.0.3"), t0 + Duration::from_secs(11)));
        assert!(t.record_failure(ip("127.0.0.2"), t0 + Duration::from_secs(20)));
        assert_eq!(
            t.failures(ip("127.0.0.2")),
            0,
            "history forgotten once banned"
        );
        assert_eq!(t.failures(ip("127.0.0.3")), 1);
    }

    #[test]
    fn failures_outside_the_window_do_not_count() {
        let t0 = Instant::now();
        let mut t = FailureTracker::new(3, Duration::from_secs(60));
        assert!(!t.record_failure(ip("10.0.0.1"), t0));
        assert!(!t.record_failure(ip("10.0.0.1"), t0 + Duration::from_secs(30)));
        // The first failure has left the window: only two count.
        assert!(!t.record_failure(ip("10.0.0.1"), t0 + Duration::from_secs(61)));
        assert!(t.record_failure(ip("10.0.0.1"), t0 + Duration::from_secs(62)));
    }

    #[test]
    fn prune_forgets_quiet_addresses() {
        let t0 = Instant::now();
        let mut t = FailureTracker::new(5, Duration::from_secs(60));
        t.record_failure(ip("10.0.0.1"), t0);
        t.record_failure(ip("10.0.0.2"), t0 + Duration::from_secs(50));
        t.prune(t0 + Duration::from_secs(70));
        assert_eq!(t.tracked(), 1);
        assert_eq!(t.failures(ip("10.0.0.2")), 1);
    }
}
