//! The relay endpoint: the two legs of a session connected to each other. It is the
//! [`Bridge`] of a two-party call, which owns what belongs to a leg on the wire (latched
//! addresses, SRTP contexts, payload type tables, direction), so the session also uses it to
//! receive for its other endpoints and to send what they make.

use std::net::SocketAddr;
use std::time::Instant;

use crate::Side;
use crate::relay::{Bridge, Component, DropReason, Received, Verdict};

pub(crate) struct Relay {
    pub(crate) bridge: Bridge,
    /// Whether what one leg sends goes to the other (a two-party call); off while the PBX
    /// itself answers a leg (a prompt, a recording).
    pub(crate) connected: bool,
}

impl Relay {
    pub(crate) fn new(now: Instant) -> Relay {
        Relay {
            bridge: Bridge::new(now),
            connected: false,
        }
    }

    /// Checks, decrypts and latches a datagram (see [`Bridge::receive`]); drops are counted.
    #[inline]
    pub(crate) fn receive(
        &mut self,
        now: Instant,
        side: Side,
        component: Component,
        source: SocketAddr,
        buf: &mut [u8],
        len: usize,
    ) -> Result<Received, DropReason> {
        self.bridge
            .receive(now, side, component, source, buf, len)
            .inspect_err(|&reason| self.bridge.note_drop(reason))
    }

    /// Forwards an accepted packet to the other leg when connected. `consumed` says whether
    /// another endpoint took it, which makes "not connected" a use and not a drop.
    #[inline]
    pub(crate) fn forward(
        &mut self,
        now: Instant,
        side: Side,
        got: Received,
        buf: &mut [u8],
        consumed: bool,
    ) -> Verdict {
        let verdict = if self.connected {
            self.bridge.forward(now, side, got, buf)
        } else if consumed {
            Ok(Verdict::Consumed)
        } else {
            Err(DropReason::NotConnected)
        };
        verdict.unwrap_or_else(|reason| {
            self.bridge.note_drop(reason);
            Verdict::Drop(reason)
        })
    }
}
