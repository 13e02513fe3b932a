//! The 2xx to an INVITE is the UAS core's to deliver (RFC 3261 §13.3.1.4): re-sent at T1,
//! doubling up to T2, until the ACK arrives; after 64*T1 without one the dialog is ended.

use super::{Call, Phase};
use crate::record::HangupSide;
use pbx_media::Side;
use pbx_sip::message::{Message, Response};
use pbx_sip::transaction::{TransactionKey, TransactionLayer};
use std::time::{Duration, Instant};

/// A 2xx waiting for its ACK.
#[derive(Debug)]
pub(super) struct TwoXx {
    side: Side,
    key: TransactionKey,
    response: Response,
    /// The CSeq number of the INVITE it answers: the ACK carries the same (§17.1.1.3).
    cseq: u32,
    /// `None` on reliable transports: the transport delivers it, only the give-up applies.
    next_send: Option<Instant>,
    interval: Duration,
    give_up: Instant,
}

impl TwoXx {
    pub(super) fn next_deadline(&self) -> Instant {
        self.next_send
            .map_or(self.give_up, |at| at.min(self.give_up))
    }
}

impl<D: Clone + std::fmt::Debug> Call<D> {
    /// Starts re-sending `response` (already sent once) until an ACK with `cseq` comes.
    pub(super) fn expect_ack(
        &mut self,
        now: Instant,
        side: Side,
        key: TransactionKey,
        response: Response,
        cseq: u32,
        reliable: bool,
    ) {
        let t1 = self.config.t1;
        self.pending_2xx.push(TwoXx {
            side,
            key,
            response,
            cseq,
            next_send: (!reliable).then_some(now + t1),
            interval: t1,
            give_up: now + t1.saturating_mul(64),
        });
    }

    /// An ACK arrived from `side` for the INVITE with CSeq `cseq`.
    pub(super) fn ack_received(&mut self, side: Side, cseq: u32) {
        self.pending_2xx
            .retain(|p| !(p.side == side && p.cseq == cseq));
    }

    pub(super) fn retransmit_2xx(&mut self, now: Instant, layer: &mut TransactionLayer<D>) {
        let mut gave_up = false;
        let t2 = self.config.t2;
        let mut resend = Vec::new();
        for pending in &mut self.pending_2xx {
            if pending.give_up <= now {
                gave_up = true;
                continue;
            }
            if let Some(at) = pending.next_send
                && at <= now
            {
                pending.interval = (pending.interval * 2).min(t2);
                pending.next_send = Some(now + pending.interval);
                resend.push((pending.side, pending.key.clone(), pending.response.clone()));
            }
        }
        for (side, key, response) in resend {
            // Within Timer L the INVITE transaction passes it on (RFC 6026 §8.7); after
            // that it goes straight to the transport.
            if layer.respond(now, &key, response.clone()).is_err() {
                let peer = match side {
                    Side::Caller => Some(self.caller.endpoint.peer.clone()),
                    Side::Callee => self.callee.as_ref().map(|c| c.endpoint.peer.clone()),
                };
                if let Some(peer) = peer {
                    layer.send_stateless(peer, Message::Response(response));
                }
            }
        }
        if gave_up {
            self.pending_2xx.retain(|p| p.give_up > now);
            // RFC 3261 §13.3.1.4: no ACK in 64*T1: the UAS SHOULD end the session with BYE.
            if self.phase == Phase::Answered {
                self.end(now, layer, HangupSide::Pbx, "no ACK for 200 OK");
            }
        }
    }
}
