//! A device that refuses the PBX's SRTP offer is offered plain RTP once (issue 10, part 6).
//!
//! Under `media_encryption = optional` a device registered over TLS is offered SRTP (RTP/SAVP
//! with SDES keys, RFC 4568 §8.3: keys only over TLS). One that cannot do SRTP refuses it with
//! 488 Not Acceptable Here (RFC 3261 §21.4.26) or 606 Not Acceptable (§21.6.4). It then gets one
//! more INVITE with an RTP/AVP offer: a new transaction of the same branch, with the same
//! Call-ID, From and To, the CSeq one higher and a new Via branch (RFC 3261 §8.1.3.5). 415 is
//! not retried: it refuses the body's type (`application/sdp`), which a plain offer keeps.
//! Under `required` the refusal stands, and a refusal of the plain offer is final.
//!
//! A trunk's branch under `optional` is offered SRTP too, and one that refuses it gets the same
//! plain re-offer (RFC 4568 §7.5: SDES is best effort there), restricted to the trunk's codecs,
//! with its own setup time and its own digest challenge to answer.

use super::forks::ForkState;
use super::{Call, Phase};
use pbx_media::sdp::{Encryption, FirstOffer, Negotiator};
use pbx_sip::message::Response;
use pbx_sip::transaction::{TransactionKey, TransactionLayer};
use std::time::Instant;

impl<D: Clone + std::fmt::Debug> Call<D> {
    /// A branch's final failure: when it refused an SRTP offer the policy lets the PBX take
    /// back, the plain offer goes out and `true` says the response is dealt with.
    pub(super) fn retry_plain(
        &mut self,
        now: Instant,
        layer: &mut TransactionLayer<D>,
        key: &TransactionKey,
        response: &Response,
    ) -> bool {
        if !matches!(response.status.code(), 488 | 606) {
            return false;
        }
        let Some(index) = self.fork_index(key) else {
            return false;
        };
        let Some(fork) = self.forks.get(index) else {
            return false;
        };
        let optional = self
            .media
            .as_ref()
            .is_some_and(|m| m.callee_encryption == Encryption::Optional);
        // A trunk may be dialled after the caller was answered (a menu's option).
        let live = self.phase == Phase::Ringing || (fork.out.is_some() && self.connecting());
        let retry = optional
            && live
            && self.ring_deadline.is_some()
            && fork.round == self.round
            && !fork.plain_retry
            && fork.cancel_owed.is_none()
            && fork.early_answer.is_none()
            && matches!(fork.state, ForkState::Calling | ForkState::Early)
            && fork
                .negotiator
                .as_ref()
                .is_some_and(Negotiator::pending_offer_is_srtp);
        if !retry {
            return false;
        }
        let (device, cseq) = (fork.device.clone(), fork.cseq.saturating_add(1));
        let out = fork.out.as_ref().map(|o| Box::new(o.renewed(now)));
        let negotiator = self.fork_negotiator(&device, self.media.as_ref(), FirstOffer::Plain);
        let (status, call) = (response.status.code(), &self.caller.dialog.call_id);
        if out.is_some() {
            tracing::info!(status, call, "a trunk refused SRTP: offering it plain RTP");
        } else {
            tracing::info!(status, call, "a device refused SRTP: offering it plain RTP");
        }
        // The refused branch ends here; its status says nothing about the extension (the
        // plain offer's answer will), so it is left out of the best failure.
        if let Some(fork) = self.forks.get_mut(index) {
            fork.state = ForkState::Finished;
        }
        let only = match &out {
            Some(o) => o.only.clone(),
            None => self.agreed_formats(),
        };
        match self.send_fork_only(now, layer, device, negotiator, cseq, out, only) {
            Ok(true) => true,
            // Not sent: the refusal counts as the branch's answer after all.
            Ok(false) | Err(_) => false,
        }
    }
}
