//! The credential gate's bookkeeping: failed checks per source address and the checks of it
//! that are still on their way, so that no burst can have more than the limit checked.
//!
//! Sans-IO: the caller passes the time. [`super::Guard`] holds one `Gate` behind a lock and is
//! what the engine talks to.

use super::bans::FailureTracker;
use std::collections::HashMap;
use std::net::IpAddr;
use std::time::{Duration, Instant};

#[derive(Debug)]
pub struct Gate {
    failures: FailureTracker,
    /// Credentials admitted but not checked yet, per source.
    in_flight: HashMap<IpAddr, u32>,
}

impl Gate {
    pub fn new(max_failures: u32, window: Duration) -> Gate {
        Gate {
            failures: FailureTracker::new(max_failures, window),
            in_flight: HashMap::new(),
        }
    }

    /// A credential from `ip` arrived: it may go on to be checked only while the failures in
    /// the window plus the credentials already on their way stay under the limit. Admitting
    /// in arrival order (the transports deliver in order) means that a guess sent after the
    /// limit's worth of wrong ones is never checked, however the engine's threads reorder
    /// the work later.
    pub fn admit(&mut self, ip: IpAddr, now: Instant) -> bool {
        let on_the_way = self.in_flight.get(&ip).copied().unwrap_or(0) as usize;
        if self.failures.recent(ip, now) + on_the_way >= self.failures.max_failures() {
            return false;
        }
        *self.in_flight.entry(ip).or_default() += 1;
        true
    }

    /// An admitted credential was checked, or given up.
    pub fn release(&mut self, ip: IpAddr) {
        if let Some(count) = self.in_flight.get_mut(&ip) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                self.in_flight.remove(&ip);
            }
        }
    }

    /// Records a failed check; true when it reached the limit (the address is to be banned).
    pub fn record_failure(&mut self, ip: IpAddr, now: Instant) -> bool {
        self.failures.record_failure(ip, now)
    }

    pub fn prune(&mut self, now: Instant) {
        self.failures.prune(now);
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
    fn no_more_than_the_limit_is_on_its_way_or_failed() {
        let t0 = Instant::now();
        let mut gate = Gate::new(3, Duration::from_secs(60));
        let a = ip("127.0.0.2");
        assert!(gate.admit(a, t0));
        assert!(gate.admit(a, t0));
        assert!(gate.admit(a, t0));
        assert!(
            !gate.admit(a, t0),
            "a fourth guess while three are on their way"
        );
        assert!(gate.admit(ip("127.0.0.3"), t0), "other sources are apart");
        // The first one turns out right: its slot is free again.
        gate.release(a);
        assert!(gate.admit(a, t0));
    }

    #[test]
    fn failures_keep_their_slots_for_the_window() {
        let t0 = Instant::now();
        let mut gate = Gate::new(3, Duration::from_secs(60));
        let a = ip("127.0.0.2");
        for _ in 0..2 {
            assert!(gate.admit(a, t0));
            gate.release(a);
            assert!(!gate.record_failure(a, t0));
        }
        assert!(gate.admit(a, t0));
        assert!(
            !gate.admit(a, t0),
            "two failures and one on its way fill the limit"
        );
        gate.release(a);
        // Once the failures have left the window, the slots are back.
        let later = t0 + Duration::from_secs(61);
        assert!(gate.admit(a, later));
        assert!(gate.admit(a, later));
    }
}
