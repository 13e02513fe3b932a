//! The RFC 3261 §17 timers as data: which timer, its default value, and a small table holding
//! each running timer's deadline (the shape of quinn-proto's `TimerTable`).

use std::time::{Duration, Instant};

/// One transaction timer. The values are those of RFC 3261 Table 4 (§A) with the defaults of
/// [`TimerConfig`]; T1 is the round-trip estimate, T2 the cap on non-INVITE retransmission
/// intervals, T4 how long a message may live in the network.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Timer {
    /// §17.1.1.2: INVITE request retransmit interval, unreliable transports only. Starts at T1
    /// (500 ms) and doubles on every firing, without a cap.
    A,
    /// §17.1.1.2: INVITE client transaction timeout, 64*T1 (32 s).
    B,
    /// §17.1.1.2: wait time for response retransmits in Completed: 32 s on unreliable
    /// transports, 0 on reliable ones.
    D,
    /// §17.1.2.2: non-INVITE request retransmit interval, unreliable transports only. Starts at
    /// T1 (500 ms), doubles up to T2 (4 s); in Proceeding it is always T2.
    E,
    /// §17.1.2.2: non-INVITE client transaction timeout, 64*T1 (32 s).
    F,
    /// §17.2.1: INVITE final response retransmit interval, unreliable transports only. Starts at
    /// T1 (500 ms), doubles up to T2 (4 s).
    G,
    /// §17.2.1: wait time for the ACK to a non-2xx final response, 64*T1 (32 s).
    H,
    /// §17.2.1: wait time for ACK retransmits in Confirmed: T4 (5 s) on unreliable transports,
    /// 0 on reliable ones.
    I,
    /// §17.2.2: wait time for non-INVITE request retransmits in Completed: 64*T1 (32 s) on
    /// unreliable transports, 0 on reliable ones.
    J,
    /// §17.1.2.2: wait time for non-INVITE response retransmits in Completed: T4 (5 s) on
    /// unreliable transports, 0 on reliable ones.
    K,
    /// RFC 6026 §8.7: how long an INVITE server transaction stays Accepted after a 2xx, to
    /// absorb retransmitted INVITEs: 64*T1 (32 s) on every transport.
    L,
    /// RFC 6026 §8.4: how long an INVITE client transaction stays Accepted after a 2xx, to pass
    /// retransmitted and forked 2xx responses to the TU: 64*T1 (32 s) on every transport.
    M,
    /// §17.2.1: an INVITE server transaction sends 100 Trying itself when the TU has not sent a
    /// provisional or final response within 200 ms ([`TimerConfig::trying`]).
    Trying,
}

impl Timer {
    const ALL: [Timer; 13] = [
        Timer::A,
        Timer::B,
        Timer::D,
        Timer::E,
        Timer::F,
        Timer::G,
        Timer::H,
        Timer::I,
        Timer::J,
        Timer::K,
        Timer::L,
        Timer::M,
        Timer::Trying,
    ];

    fn index(self) -> usize {
        self as usize
    }
}

/// The timer base values. The defaults are those RFC 3261 §17.1.1.1 recommends; a deployment
/// on a known network may lower T1 (never below what its round trips take).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TimerConfig {
    /// RTT estimate (default 500 ms).
    pub t1: Duration,
    /// Maximum retransmit interval for non-INVITE requests and INVITE responses (default 4 s).
    pub t2: Duration,
    /// Maximum duration a message remains in the network (default 5 s).
    pub t4: Duration,
    /// How long an INVITE server transaction waits for the TU's first response before sending
    /// 100 Trying itself (default 200 ms, §17.2.1). Zero sends it as soon as the INVITE arrives.
    pub trying: Duration,
}

impl Default for TimerConfig {
    fn default() -> TimerConfig {
        TimerConfig {
            t1: Duration::from_millis(500),
            t2: Duration::from_secs(4),
            t4: Duration::from_secs(5),
            trying: Duration::from_millis(200),
        }
    }
}

impl TimerConfig {
    /// 64*T1: Timers B, F, H, J (unreliable), L and M.
    pub fn t1_x64(&self) -> Duration {
        self.t1.saturating_mul(64)
    }

    /// Timer D: "at least 32 seconds for unreliable transports, and a value of zero seconds for
    /// reliable transports" (§17.1.1.2). 32 s, or 64*T1 when T1 was raised above its default.
    pub fn timer_d(&self, reliable: bool) -> Duration {
        if reliable {
            Duration::ZERO
        } else {
            self.t1_x64().max(Duration::from_secs(32))
        }
    }

    /// Timers I and K: T4 on unreliable transports, zero on reliable ones (§17.2.1, §17.1.2.2).
    pub fn t4_unless_reliable(&self, reliable: bool) -> Duration {
        if reliable { Duration::ZERO } else { self.t4 }
    }

    /// Timer J: 64*T1 on unreliable transports, zero on reliable ones (§17.2.2).
    pub fn timer_j(&self, reliable: bool) -> Duration {
        if reliable {
            Duration::ZERO
        } else {
            self.t1_x64()
        }
    }

    /// The next retransmit interval after `current` for Timers E and G: doubled, capped at T2.
    pub fn backoff_capped(&self, current: Duration) -> Duration {
        current.saturating_mul(2).min(self.t2)
    }
}

/// The deadline of each running timer of one transaction.
#[derive(Clone, Debug, Default)]
pub(crate) struct TimerTable {
    deadlines: [Option<Instant>; Timer::ALL.len()],
}

impl TimerTable {
    pub(crate) fn set(&mut self, timer: Timer, at: Instant) {
        self.deadlines[timer.index()] = Some(at);
    }

    pub(crate) fn stop(&mut self, timer: Timer) {
        self.deadlines[timer.index()] = None;
    }

    pub(crate) fn stop_all(&mut self) {
        self.deadlines = Default::default();
    }

    /// The earliest deadline of all running timers.
    pub(crate) fn next(&self) -> Option<Instant> {
        self.deadlines.iter().flatten().min().copied()
    }

    /// Stops and returns a timer whose deadline is at or before `now`, earliest first.
    pub(crate) fn pop_expired(&mut self, now: Instant) -> Option<Timer> {
        let (timer, _) = Timer::ALL
            .iter()
            .filter_map(|t| self.deadlines[t.index()].map(|at| (*t, at)))
            .filter(|(_, at)| *at <= now)
            .min_by_key(|(_, at)| *at)?;
        self.stop(timer);
        Some(timer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_the_rfc_values() {
        let c = TimerConfig::default();
        assert_eq!(c.t1, Duration::from_millis(500));
        assert_eq!(c.t2, Duration::from_secs(4));
        assert_eq!(c.t4, Duration::from_secs(5));
        assert_eq!(c.t1_x64(), Duration::from_secs(32));
        assert_eq!(c.timer_d(false), Duration::from_secs(32));
        assert_eq!(c.timer_d(true), Duration::ZERO);
        assert_eq!(c.t4_unless_reliable(false), Duration::from_secs(5));
        assert_eq!(c.timer_j(true), Duration::ZERO);
        assert_eq!(
            c.backoff_capped(Duration::from_secs(2)),
            Duration::from_secs(4)
        );
        assert_eq!(
            c.backoff_capped(Duration::from_secs(4)),
            Duration::from_secs(4)
        );
    }

    #[test]
    fn table_pops_earliest_expired_first() {
        #[allow(clippy::disallowed_methods)] // one fixed base for virtual time
        let base = Instant::now();
        let mut table = TimerTable::default();
        table.set(Timer::B, base + Duration::from_secs(32));
        table.set(Timer::A, base + Duration::from_millis(500));
        assert_eq!(table.next(), Some(base + Duration::from_millis(500)));
        assert_eq!(table.pop_expired(base), None);
        let late = base + Duration::from_secs(40);
        assert_eq!(table.pop_expired(late), Some(Timer::A));
        assert_eq!(table.pop_expired(late), Some(Timer::B));
        assert_eq!(table.pop_expired(late), None);
        assert_eq!(table.next(), None);
    }
}
