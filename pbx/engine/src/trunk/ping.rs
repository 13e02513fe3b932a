//! Is a trunk there? OPTIONS pings (RFC 3261 §11) to a trunk the PBX does not register to (a
//! legacy PBX, a gateway), as qualify does for phones: any final answer but 408 and 503 says
//! the peer is up (a 404 or 405 to OPTIONS still comes from a live SIP server); no answer
//! within the transaction's time, 408 or 503 says down. Sans-IO: the shell sends the
//! OPTIONS when [`Pinger::handle_timeout`] says so and feeds back how it ended.
//!
//! A trunk whose host resolved to several targets (RFC 3263) is pinged at
//! [`Pinger::target`]: a failed ping moves to the next target at once (§4.3), and only when
//! the last one fails too is the trunk down. A target that answers is kept for the next pings.

use pbx_sip::status::StatusCode;
use std::time::{Duration, Instant};

/// What the last ping found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reachability {
    /// No ping has ended yet.
    Unknown,
    Up,
    Down,
}

impl Reachability {
    /// As `pbx trunk list` shows it.
    pub fn name(self) -> &'static str {
        match self {
            Reachability::Unknown => "unknown",
            Reachability::Up => "up",
            Reachability::Down => "down",
        }
    }
}

pub struct Pinger {
    interval: Duration,
    state: Reachability,
    /// When the next ping is due; `None` while one is out.
    next: Option<Instant>,
    /// How many targets the trunk has, and the one pinged.
    targets: usize,
    target: usize,
}

impl Pinger {
    /// Pings every `interval`, the first one at `now`.
    pub fn new(interval: Duration, now: Instant) -> Pinger {
        Pinger {
            interval,
            state: Reachability::Unknown,
            next: Some(now),
            targets: 1,
            target: 0,
        }
    }

    /// The trunk now has `count` targets (a new DNS answer): the pings start at the first.
    pub fn set_targets(&mut self, count: usize) {
        self.targets = count.max(1);
        self.target = 0;
    }

    /// The index of the target the next ping goes to.
    pub fn target(&self) -> usize {
        self.target
    }

    pub fn state(&self) -> Reachability {
        self.state
    }

    /// When to call [`Pinger::handle_timeout`] next (`None` while a ping is out).
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.next
    }

    /// Whether an OPTIONS is to be sent now.
    #[must_use]
    pub fn handle_timeout(&mut self, now: Instant) -> bool {
        match self.next {
            Some(at) if at <= now => {
                self.next = None;
                true
            }
            _ => false,
        }
    }

    /// The final answer to the ping out; returns the state it leads to.
    pub fn handle_response(&mut self, now: Instant, status: StatusCode) -> Reachability {
        if !status.is_final() {
            return self.state;
        }
        let up = status != StatusCode::REQUEST_TIMEOUT && status != StatusCode::SERVICE_UNAVAILABLE;
        if up {
            self.settle(now, Reachability::Up)
        } else {
            self.failed(now)
        }
    }

    /// The ping's transaction ended without a final answer (Timer F, or the send failed).
    pub fn handle_no_answer(&mut self, now: Instant) -> Reachability {
        self.failed(now)
    }

    /// RFC 3263 §4.3: no answer, 408 or 503: the next target at once; down after the last.
    fn failed(&mut self, now: Instant) -> Reachability {
        if self.target + 1 < self.targets {
            self.target += 1;
            self.next = Some(now);
            return self.state;
        }
        self.target = 0;
        self.settle(now, Reachability::Down)
    }

    fn settle(&mut self, now: Instant, state: Reachability) -> Reachability {
        self.state = state;
        self.next = Some(now + self.interval);
        state
    }
}

#[cfg(test)]
#[allow(clippy::disallowed_methods)] // `Instant::now()`: one fixed base for virtual time
mod tests {
    use super::*;

    #[test]
    fn up_down_and_the_schedule() {
        let t0 = Instant::now();
        let every = Duration::from_secs(30);
        let mut p = Pinger::new(every, t0);
        assert_eq!(p.state(), Reachability::Unknown);
        assert!(p.handle_timeout(t0));
        // While the ping is out nothing else is due.
        assert_eq!(p.poll_timeout(), None);
        assert!(!p.handle_timeout(t0 + every));
        let t1 = t0 + Duration::from_millis(20);
        assert_eq!(
            p.handle_response(t1, StatusCode::TRYING),
            Reachability::Unknown
        );
        // A 405 still comes from a live server.
        assert_eq!(
            p.handle_response(t1, StatusCode::METHOD_NOT_ALLOWED),
            Reachability::Up
        );
        assert_eq!(p.poll_timeout(), Some(t1 + every));
        assert!(!p.handle_timeout(t1 + Duration::from_secs(29)));
        assert!(p.handle_timeout(t1 + every));
        // Timer F: 32 s without an answer.
        let t2 = t1 + every + Duration::from_secs(32);
        assert_eq!(p.handle_no_answer(t2), Reachability::Down);
        assert_eq!(p.state().name(), "down");
        assert!(p.handle_timeout(t2 + every));
        assert_eq!(
            p.handle_response(t2 + every, StatusCode::SERVICE_UNAVAILABLE),
            Reachability::Down
        );
        assert!(p.handle_timeout(t2 + every * 2));
        assert_eq!(
            p.handle_response(t2 + every * 2, StatusCode::OK),
            Reachability::Up
        );
    }

    #[test]
    fn a_failed_ping_tries_the_next_target_before_down() {
        let t0 = Instant::now();
        let every = Duration::from_secs(30);
        let mut p = Pinger::new(every, t0);
        p.set_targets(3);
        assert!(p.handle_timeout(t0));
        assert_eq!(p.target(), 0);
        // 503 from the first: the second is pinged at once, the state unchanged.
        let t1 = t0 + Duration::from_millis(10);
        assert_eq!(
            p.handle_response(t1, StatusCode::SERVICE_UNAVAILABLE),
            Reachability::Unknown
        );
        assert_eq!((p.target(), p.poll_timeout()), (1, Some(t1)));
        assert!(p.handle_timeout(t1));
        // The second answers: up, and it stays the one pinged.
        assert_eq!(p.handle_response(t1, StatusCode::OK), Reachability::Up);
        assert_eq!((p.target(), p.poll_timeout()), (1, Some(t1 + every)));
        assert!(p.handle_timeout(t1 + every));
        // It stops answering: the third; no answer there either: down, back to the first.
        let t2 = t1 + every + Duration::from_secs(32);
        assert_eq!(p.handle_no_answer(t2), Reachability::Up);
        assert_eq!(p.target(), 2);
        assert!(p.handle_timeout(t2));
        assert_eq!(p.handle_no_answer(t2), Reachability::Down);
        assert_eq!((p.target(), p.poll_timeout()), (0, Some(t2 + every)));
    }
}
