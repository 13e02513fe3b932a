//! Datagrams that reach a leg's socket before the session's first plan.
//!
//! The ports are in the SDP before the offer/answer completes, and a peer may send at once:
//! RFC 3264 §6 lets the answerer send media as soon as it has sent its answer, and the
//! offerer "MUST be prepared to receive media" from the moment it sent its offer (§5.1). So
//! the callee's first packets can race its 200 (or 183) through the PBX's SIP engine, and
//! the relay would have nowhere to send them. Instead of dropping them, the session keeps a
//! few per leg and handles them, in order, when the plan comes.
//!
//! Bounded in count and in age: at most [`PER_SIDE`] per leg (the oldest goes first), none
//! older than [`MAX_AGE`] when the plan comes (late audio is worse than none). Both losses
//! are counted as [`crate::relay::DropReason::NoPlan`] by the session.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use super::Transmit;
use crate::Side;
use crate::relay::Component;

/// Datagrams kept per leg: 160 ms of 20 ms audio, plus room for an ICE check or RTCP.
pub(crate) const PER_SIDE: usize = 8;
/// How old a kept datagram may be when the plan comes; older ones are dropped.
pub(crate) const MAX_AGE: Duration = Duration::from_millis(200);

/// One datagram as it arrived (still encrypted on an SRTP leg).
pub(crate) struct Held {
    pub(crate) at: Instant,
    pub(crate) side: Side,
    pub(crate) component: Component,
    pub(crate) source: SocketAddr,
    pub(crate) bytes: Vec<u8>,
}

/// The datagrams of both legs, in arrival order per leg, and once the plan came, what
/// handling them made the session send (until `poll_transmit` takes it).
#[derive(Default)]
pub(crate) struct EarlyPackets {
    legs: [VecDeque<Held>; 2],
    out: VecDeque<(Transmit, Vec<u8>)>,
}

impl EarlyPackets {
    /// Keeps a datagram; returns how many older ones were dropped to make room or for age.
    pub(crate) fn hold(&mut self, held: Held) -> u64 {
        let now = held.at;
        let mut dropped = self.expire(now);
        let queue = &mut self.legs[held.side.index()];
        if queue.len() >= PER_SIDE {
            queue.pop_front();
            dropped += 1;
        }
        queue.push_back(held);
        dropped
    }

    /// Drops what is older than [`MAX_AGE`] at `now`; returns how many.
    pub(crate) fn expire(&mut self, now: Instant) -> u64 {
        let mut dropped = 0;
        for queue in &mut self.legs {
            while queue
                .front()
                .is_some_and(|h| now.saturating_duration_since(h.at) > MAX_AGE)
            {
                queue.pop_front();
                dropped += 1;
            }
        }
        dropped
    }

    /// Everything kept, in arrival order across both legs (what was received first is
    /// handled first).
    pub(crate) fn take_all(&mut self) -> Vec<Held> {
        let [a, b] = &mut self.legs;
        let mut all: Vec<Held> = a.drain(..).chain(b.drain(..)).collect();
        all.sort_by_key(|h| h.at);
        all
    }

    /// A datagram to send that a kept one made.
    pub(crate) fn push_out(&mut self, transmit: Transmit, bytes: Vec<u8>) {
        self.out.push_back((transmit, bytes));
    }

    pub(crate) fn pop_out(&mut self) -> Option<(Transmit, Vec<u8>)> {
        self.out.pop_front()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn held(at: Instant, side: Side, tag: u8) -> Held {
        Held {
            at,
            side,
            component: Component::Rtp,
            source: "192.0.2.1:4000".parse().expect("address"),
            bytes: vec![tag],
        }
    }

    #[test]
    fn keeps_at_most_per_side_and_drops_the_oldest() {
        #[allow(clippy::disallowed_methods)]
        let t0 = Instant::now();
        let mut early = EarlyPackets::default();
        let mut dropped = 0;
        for i in 0..10u8 {
            let at = t0 + Duration::from_millis(u64::from(i));
            dropped += early.hold(held(at, Side::Callee, i));
        }
        dropped += early.hold(held(t0 + Duration::from_millis(10), Side::Caller, 99));
        assert_eq!(dropped, 2);
        let tags: Vec<u8> = early.take_all().iter().map(|h| h.bytes[0]).collect();
        // The caller's packet came last; the callee's two oldest made room.
        assert_eq!(tags, [2, 3, 4, 5, 6, 7, 8, 9, 99]);
        assert!(early.take_all().is_empty());
    }

    #[test]
    fn drops_what_is_older_than_max_age() {
        #[allow(clippy::disallowed_methods)]
        let t0 = Instant::now();
        let mut early = EarlyPackets::default();
        assert_eq!(early.hold(held(t0, Side::Caller, 1)), 0);
        assert_eq!(early.hold(held(t0 + MAX_AGE, Side::Callee, 2)), 0);
        // Exactly MAX_AGE old is still kept; a moment later it is not.
        assert_eq!(early.expire(t0 + MAX_AGE), 0);
        assert_eq!(early.expire(t0 + MAX_AGE + Duration::from_millis(1)), 1);
        let tags: Vec<u8> = early.take_all().iter().map(|h| h.bytes[0]).collect();
        assert_eq!(tags, [2]);
    }
}
