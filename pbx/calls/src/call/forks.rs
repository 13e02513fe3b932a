//! Ringing the devices: one INVITE client transaction per device, in parallel (the PBX forks
//! like a proxy would, RFC 3261 §16.6), provisional responses passed back, the first 2xx
//! wins and the others are cancelled (RFC 3326 Reason "Call completed elsewhere").

use super::out_leg::{OutLeg, mark_heard};
use super::{Call, CallOutput, CalleeLeg, MediaSetup, Phase, log_misuse};
use crate::dialog::{Dialog, without_tag};
use crate::endpoint::Device;
use crate::ids;
use crate::outcome::best_failure;
use crate::record::HangupSide;
use bytes::Bytes;
use pbx_media::Side;
use pbx_media::sdp::{FirstOffer, NegotiationError, Negotiator};
use pbx_sip::header::CSeq;
use pbx_sip::message::{HeaderName, Message, Request, Response};
use pbx_sip::method::Method;
use pbx_sip::status::StatusCode;
use pbx_sip::transaction::{TransactionKey, TransactionLayer};
use std::time::Instant;

/// Where one device's INVITE stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum ForkState {
    /// Sent, nothing heard yet (a CANCEL must wait for a provisional, RFC 3261 §9.1).
    Calling,
    /// A provisional response arrived: the device rings.
    Early,
    /// This device answered.
    Answered,
    /// A final failure, or cancelled and done.
    Finished,
}

/// One device's branch of the call.
#[derive(Debug)]
pub(super) struct Fork<D> {
    pub(super) device: Device<D>,
    pub(super) key: TransactionKey,
    pub(super) invite: Request,
    /// The offer/answer state for this branch: the device's policy and its own SRTP keys.
    pub(super) negotiator: Option<Negotiator>,
    pub(super) state: ForkState,
    /// A CANCEL is owed as soon as the device sends a provisional response.
    pub(super) cancel_owed: Option<&'static str>,
    /// The INVITE transaction is gone from the layer.
    pub(super) transaction_done: bool,
    /// The round of ringing this branch belongs to.
    pub(super) round: u32,
    /// The caller's SDP answer and the plan made from this device's early (183) answer: its
    /// 2xx repeats that answer (RFC 3261 §13.2.1), and the negotiator has no offer left.
    pub(super) early_answer: Option<(Vec<u8>, pbx_media::MediaPlan)>,
    pub(super) final_status: Option<StatusCode>,
    /// The INVITE's CSeq number: 1, or 2 for the plain offer after a refused SRTP one.
    pub(super) cseq: u32,
    /// This branch is the plain second offer to a device that refused SRTP (never retried).
    pub(super) plain_retry: bool,
    /// A trunk's branch: its From, To and headers, credentials and setup time.
    pub(super) out: Option<Box<OutLeg>>,
}

impl<D> Fork<D> {
    /// Nothing more can come from this branch that needs the call.
    pub(super) fn is_settled(&self) -> bool {
        self.transaction_done || matches!(self.state, ForkState::Finished | ForkState::Answered)
    }

    pub(super) fn settle(&mut self) {
        self.transaction_done = true;
    }

    pub(super) fn transaction_ended(&mut self) {
        self.transaction_done = true;
        if self.state != ForkState::Answered {
            self.state = ForkState::Finished;
        }
    }
}

/// RFC 3326: why the other devices stop ringing when one answered.
const COMPLETED_ELSEWHERE: &str = "SIP;cause=200;text=\"Call completed elsewhere\"";

impl<D: Clone + std::fmt::Debug> Call<D> {
    pub(super) fn fork_index(&self, key: &TransactionKey) -> Option<usize> {
        self.forks.iter().position(|fork| fork.key == *key)
    }

    /// Sends an INVITE to every device.
    pub(super) fn start_forks(
        &mut self,
        now: Instant,
        layer: &mut TransactionLayer<D>,
        devices: Vec<Device<D>>,
        media: Option<MediaSetup>,
    ) {
        // A device that cannot be offered what its policy needs (SRTP under `required`, on
        // UDP) is left out; the others still ring.
        let mut left_out = None;
        for device in devices {
            // Under `optional`, a device on TLS is offered SRTP; if it refuses, it gets a
            // plain offer next (`plain_retry.rs`).
            let negotiator = self.fork_negotiator(&device, media.as_ref(), FirstOffer::Srtp);
            let error = match self.send_fork(now, layer, device, negotiator, 1, None) {
                Ok(_) => continue,
                Err(error @ NegotiationError::KeysInClear(Side::Callee)) => {
                    left_out = Some(error);
                    continue;
                }
                Err(error) => error,
            };
            // The caller's offer itself is unacceptable: nothing to ring.
            return self.fail_offer(now, layer, &error);
        }
        let rung = self.forks.iter().any(|f| f.round == self.round);
        if let Some(error) = left_out.filter(|_| !rung) {
            return self.fail_offer(now, layer, &error);
        }
        if !rung {
            self.round_failed(
                now,
                layer,
                super::DialOutcome::Unavailable,
                StatusCode::TEMPORARILY_UNAVAILABLE,
                "Temporarily Unavailable (no device reachable)",
            );
        }
    }

    /// No branch can be offered the call: the caller gets the negotiation's status (488).
    fn fail_offer(
        &mut self,
        now: Instant,
        layer: &mut TransactionLayer<D>,
        error: &NegotiationError,
    ) {
        let status = StatusCode(error.status());
        let reason = format!("{} ({error})", status.canonical_reason());
        if self.connecting() {
            // The caller is answered already: the plan hears that nobody could be rung.
            return self.round_failed(now, layer, super::DialOutcome::Unavailable, status, &reason);
        }
        self.fail(
            now,
            layer,
            status,
            &reason,
            crate::record::Disposition::Failed,
            HangupSide::Pbx,
        );
    }

    /// The offer/answer state of a new branch to `device` (each branch has its own keys).
    pub(super) fn fork_negotiator(
        &self,
        device: &Device<D>,
        media: Option<&MediaSetup>,
        first: FirstOffer,
    ) -> Option<Negotiator> {
        let callee_policy = Self::policy(
            &device.endpoint,
            media?.callee_encryption,
            media?.allow_keys_in_clear,
        );
        if let Some(answered) = self.negotiator.as_ref().filter(|_| self.connecting()) {
            let callee = media?.callee;
            let branch = answered
                .branch(Side::Callee, callee, callee_policy)
                .with_first_offer(Side::Callee, first);
            return Some(webrtc_device(branch, device));
        }
        media.map(|m| {
            let n = m
                .negotiator(
                    Self::policy(
                        &self.caller.endpoint,
                        m.caller_encryption,
                        m.allow_keys_in_clear,
                    ),
                    Self::policy(&device.endpoint, m.callee_encryption, m.allow_keys_in_clear),
                )
                .with_first_offer(Side::Callee, first);
            let n = match self.dtmf_may_convert() {
                true => n.with_dtmf_interworking(),
                false => n,
            };
            webrtc_device(n, device)
        })
    }

    /// Makes the PBX's offer to `device` from the caller's and sends the branch's INVITE with
    /// CSeq `cseq` (above 1 only for the plain offer after a refused SRTP one). `Ok(false)`:
    /// the layer could not send it.
    pub(super) fn send_fork(
        &mut self,
        now: Instant,
        layer: &mut TransactionLayer<D>,
        device: Device<D>,
        negotiator: Option<Negotiator>,
        cseq: u32,
        out: Option<Box<OutLeg>>,
    ) -> Result<bool, NegotiationError> {
        let only = self.agreed_formats();
        self.send_fork_only(now, layer, device, negotiator, cseq, out, only)
    }

    /// As [`Call::send_fork`], offering only the payload types `only` (all when `None`).
    #[allow(clippy::too_many_arguments)] // send_fork's, plus the formats
    pub(super) fn send_fork_only(
        &mut self,
        now: Instant,
        layer: &mut TransactionLayer<D>,
        device: Device<D>,
        mut negotiator: Option<Negotiator>,
        cseq: u32,
        out: Option<Box<OutLeg>>,
        only: Option<Vec<u8>>,
    ) -> Result<bool, NegotiationError> {
        let offer = self.caller.invite.body.clone();
        let max_forwards = self
            .caller
            .invite
            .headers
            .max_forwards()
            .map_or(70, |m| m.saturating_sub(1));
        let body = match (&mut negotiator, offer.is_empty()) {
            (Some(negotiator), false) => Bytes::from(negotiator.offer_only(
                Side::Caller,
                &offer,
                only.as_deref(),
                &mut self.rng,
            )?),
            // RFC 3261 §13.2.1: an INVITE without an offer; the 2xx will carry one.
            _ => Bytes::new(),
        };
        let branch = ids::branch(&mut self.rng);
        let invite = self.fork_invite(&device, max_forwards, body, cseq, &branch, out.as_deref());
        let Some(key) = self.send(now, layer, invite.clone(), &device.endpoint) else {
            return Ok(false);
        };
        self.push_fork(Fork {
            device,
            key,
            invite,
            negotiator,
            state: ForkState::Calling,
            cancel_owed: None,
            transaction_done: false,
            round: self.round,
            final_status: None,
            early_answer: None,
            cseq,
            plain_retry: cseq > 1,
            out,
        });
        Ok(true)
    }

    pub(super) fn push_fork(&mut self, fork: Fork<D>) {
        self.forks.push(fork);
    }

    /// The INVITE for one device (RFC 3261 §8.1.1).
    fn fork_invite(
        &self,
        device: &Device<D>,
        max_forwards: u32,
        body: Bytes,
        cseq: u32,
        branch: &str,
        out: Option<&OutLeg>,
    ) -> Request {
        let mut invite = Request::new(Method::INVITE, device.contact.clone());
        let h = &mut invite.headers;
        h.push(HeaderName::VIA, device.endpoint.via(branch).to_string());
        // An outbound proxy's Route goes before everything a proxy reads (RFC 3261 §8.1.2).
        for (name, value) in out.iter().flat_map(|o| o.headers.iter()) {
            if *name == HeaderName::ROUTE {
                h.push(name.clone(), value.clone());
            }
        }
        h.push(HeaderName::MAX_FORWARDS, max_forwards.to_string());
        let (from, to) = match out {
            Some(out) => (&out.from, &out.to),
            None => (&self.callee_from, &self.called_uri),
        };
        h.push(HeaderName::FROM, from.to_string());
        h.push(HeaderName::TO, to.to_string());
        for (name, value) in out.iter().flat_map(|o| o.headers.iter()) {
            if *name != HeaderName::ROUTE {
                h.push(name.clone(), value.clone());
            }
        }
        h.push(HeaderName::CALL_ID, self.callee_call_id.clone());
        h.push(
            HeaderName::CSEQ,
            CSeq::new(cseq, Method::INVITE).to_string(),
        );
        h.push(
            HeaderName::CONTACT,
            format!("<{}>", device.endpoint.contact()),
        );
        h.push(HeaderName::ALLOW, super::ALLOW);
        h.push(HeaderName::USER_AGENT, self.config.user_agent.clone());
        if !body.is_empty() {
            h.push(HeaderName::CONTENT_TYPE, "application/sdp");
        }
        invite.body = body;
        invite
    }

    pub(super) fn on_fork_provisional(
        &mut self,
        now: Instant,
        layer: &mut TransactionLayer<D>,
        key: &TransactionKey,
        response: Response,
    ) {
        let Some(index) = self.fork_index(key) else {
            return;
        };
        // Any provisional, 100 included, shows a trunk is alive (its setup time).
        mark_heard(self.forks.get_mut(index).and_then(|f| f.out.as_mut()));
        if response.status == StatusCode::TRYING {
            return;
        }
        let owed = match self.forks.get_mut(index) {
            Some(fork) if fork.state == ForkState::Calling || fork.state == ForkState::Early => {
                fork.state = ForkState::Early;
                fork.cancel_owed.take()
            }
            _ => return,
        };
        if let Some(reason) = owed {
            self.send_cancel(now, layer, index, Some(reason));
            return;
        }
        if self.phase != Phase::Ringing {
            return;
        }
        // 180 and 183 are passed back; early media (SDP in a provisional) is relayed.
        let mut answer = self.caller_response(response.status);
        answer.reason = response.reason.clone();
        if !response.body.is_empty()
            && let Some((sdp, plan)) = self.fork_answer(index, &response.body).ok().flatten()
        {
            answer
                .headers
                .push(HeaderName::CONTENT_TYPE, "application/sdp");
            answer.body = Bytes::from(sdp);
            self.outputs.push_back(CallOutput::Media(plan));
        }
        self.respond_caller_invite(now, layer, answer);
    }

    /// The answer for the caller from a device's SDP, with that branch's negotiator (each
    /// branch has its own: several devices may answer the same offer). A branch answers once;
    /// later SDP from it (the 2xx after a 183) gets the same answer again.
    fn fork_answer(
        &mut self,
        index: usize,
        sdp: &[u8],
    ) -> Result<Option<(Vec<u8>, pbx_media::MediaPlan)>, pbx_media::sdp::NegotiationError> {
        let Some(fork) = self.forks.get_mut(index) else {
            return Ok(None);
        };
        if let Some(early) = &fork.early_answer {
            return Ok(Some(early.clone()));
        }
        let Some(negotiator) = fork.negotiator.as_mut() else {
            return Ok(None);
        };
        if negotiator.pending_offer_from().is_none() {
            return Ok(None);
        }
        let answered = negotiator.answer(Side::Callee, sdp, &mut self.rng)?;
        fork.early_answer = Some(answered.clone());
        Ok(Some(answered))
    }

    pub(super) fn on_fork_success(
        &mut self,
        now: Instant,
        layer: &mut TransactionLayer<D>,
        key: &TransactionKey,
        response: Response,
    ) {
        let Some(index) = self.fork_index(key) else {
            return;
        };
        let Some(fork) = self.forks.get(index) else {
            return;
        };
        let cseq = fork.cseq;
        let dialog = self.callee_dialog(&fork.invite, cseq, &response);
        let endpoint = fork.device.endpoint.clone();
        // A retransmission of the winner's 2xx: ACK again (RFC 3261 §13.2.2.4), unless the
        // ACK waits for the caller's answer (late offer).
        if let Some(callee) = &self.callee
            && callee.dialog.remote_tag == dialog.remote_tag
            && fork.state == ForkState::Answered
        {
            if !callee.ack_pending {
                layer.send_stateless(endpoint.peer.clone(), Message::Request(callee.ack.clone()));
            }
            return;
        }
        let ack = dialog.ack(cseq, &endpoint, &self.config.user_agent, &mut self.rng);
        let connecting = self.connecting();
        // A branch given up already (a trunk silent past its setup time, an earlier round)
        // that answers after all is ended like one answering after the call was decided.
        let given_up = fork.state == ForkState::Finished || fork.round != self.round;
        if (self.phase != Phase::Ringing && !connecting) || given_up {
            // RFC 3261 §15: a 2xx after the call was decided (CANCEL crossed it, or another
            // device won): ACK it, then end that dialog at once.
            layer.send_stateless(endpoint.peer.clone(), Message::Request(ack));
            let mut dialog = dialog;
            let bye = dialog.request(
                Method::BYE,
                &endpoint,
                &self.config.user_agent,
                &mut self.rng,
            );
            self.send(now, layer, bye, &endpoint);
            return;
        }
        // RFC 3261 §13.2.1: the caller sent no offer, so the 2xx carries one; it goes to the
        // caller in our 200, and the caller's answer comes in its ACK, which we then pass on
        // in our ACK to the device.
        let late_offer = self.caller.invite.body.is_empty() && !response.body.is_empty();
        let answered = if late_offer {
            self.late_offer(index, &response.body)
        } else if response.body.is_empty() {
            Ok(self.forks.get(index).and_then(|f| f.early_answer.clone()))
                .map(|a| a.map(|(sdp, plan)| (sdp, Some(plan))))
        } else {
            self.fork_answer(index, &response.body)
                .map(|a| a.map(|(sdp, plan)| (sdp, Some(plan))))
        };
        let answered = match answered {
            Ok(answered) => answered,
            Err(error) => {
                // The device answered with SDP the caller cannot use: end that branch.
                tracing::info!(%error, "a device answered with unusable SDP");
                layer.send_stateless(endpoint.peer.clone(), Message::Request(ack));
                let mut dialog = dialog;
                let bye = dialog.request(
                    Method::BYE,
                    &endpoint,
                    &self.config.user_agent,
                    &mut self.rng,
                );
                self.send(now, layer, bye, &endpoint);
                let failed = Response::new(StatusCode::NOT_ACCEPTABLE_HERE);
                self.on_fork_final(now, layer, key, failed);
                return;
            }
        };
        let ack_pending = late_offer && answered.is_some();
        if !ack_pending {
            layer.send_stateless(endpoint.peer.clone(), Message::Request(ack.clone()));
        }
        if let Some(fork) = self.forks.get_mut(index) {
            fork.state = ForkState::Answered;
        }
        self.callee = Some(CalleeLeg {
            endpoint,
            dialog,
            ack,
            ack_pending,
        });
        self.negotiator = self.forks.get_mut(index).and_then(|f| f.negotiator.take());
        self.cancel_forks(now, layer, Some(COMPLETED_ELSEWHERE));
        if connecting {
            // The caller was answered by the PBX: its session stands (the branch was offered
            // only the codec agreed with it, under the same keys), the relay takes over.
            self.application = None;
            self.ring_deadline = None;
            if let Some((_, Some(plan))) = answered {
                self.apply_plan(plan);
            }
            self.outputs.push_back(CallOutput::Connected);
            return;
        }
        let mut ok = self.caller_response(StatusCode::OK);
        ok.headers.push(HeaderName::ALLOW, super::ALLOW);
        if let Some((sdp, plan)) = answered {
            ok.headers.push(HeaderName::CONTENT_TYPE, "application/sdp");
            ok.body = Bytes::from(sdp);
            if let Some(plan) = plan {
                self.apply_plan(plan);
            }
        }
        let cseq = self.caller.dialog.remote_cseq.unwrap_or(1);
        self.respond_caller_invite(now, layer, ok.clone());
        let (key, reliable) = (
            self.caller.invite_key.clone(),
            self.caller.endpoint.reliable,
        );
        self.expect_ack(now, Side::Caller, key, ok, cseq, reliable);
        self.phase = Phase::Answered;
        self.record.answered = Some(now);
    }

    /// The device's 2xx offer (late offer) turned into the PBX's offer to the caller.
    #[allow(clippy::type_complexity)]
    fn late_offer(
        &mut self,
        index: usize,
        sdp: &[u8],
    ) -> Result<Option<(Vec<u8>, Option<pbx_media::MediaPlan>)>, pbx_media::sdp::NegotiationError>
    {
        let Some(negotiator) = self
            .forks
            .get_mut(index)
            .and_then(|f| f.negotiator.as_mut())
        else {
            return Ok(None);
        };
        let offer = negotiator.offer(Side::Callee, sdp, &mut self.rng)?;
        Ok(Some((offer, None)))
    }

    /// The dialog with the device that answered (RFC 3261 §12.1.2).
    fn callee_dialog(&self, invite: &Request, cseq: u32, response: &Response) -> Dialog {
        let to = response.headers.to().ok();
        let remote_tag = to
            .as_ref()
            .and_then(|t| t.tag().map(str::to_owned))
            .unwrap_or_default();
        let remote_target = response
            .headers
            .contacts()
            .ok()
            .and_then(|c| c.addresses().first().map(|a| a.uri.clone()))
            .unwrap_or_else(|| invite.uri.clone());
        // RFC 3261 §12.1.2: the UAC's route set is the Record-Route list reversed.
        let mut route_set: Vec<Bytes> = response
            .headers
            .get_all(&HeaderName::RECORD_ROUTE)
            .cloned()
            .collect();
        route_set.reverse();
        // The branch's own From (a trunk's caller ID, a round's tag).
        let from = invite
            .headers
            .from()
            .ok()
            .unwrap_or_else(|| self.callee_from.clone());
        Dialog {
            call_id: self.callee_call_id.clone(),
            local_tag: from.tag().map(str::to_owned).unwrap_or_default(),
            remote_tag,
            local_uri: without_tag(from),
            remote_uri: to
                .map(without_tag)
                .unwrap_or_else(|| self.called_uri.clone()),
            remote_target,
            route_set,
            local_cseq: cseq,
            remote_cseq: None,
        }
    }

    pub(super) fn on_fork_final(
        &mut self,
        now: Instant,
        layer: &mut TransactionLayer<D>,
        key: &TransactionKey,
        response: Response,
    ) {
        let Some(index) = self.fork_index(key) else {
            return;
        };
        let mut round = 0;
        if let Some(fork) = self.forks.get_mut(index) {
            if fork.state == ForkState::Answered {
                return;
            }
            fork.state = ForkState::Finished;
            fork.cancel_owed = None;
            fork.final_status = Some(response.status);
            round = fork.round;
        }
        // A branch of an earlier round (cancelled when it timed out) decides nothing now;
        // nor does one that ends while no round rings (the dialplan is deciding).
        let rings = self.phase == Phase::Ringing || self.connecting();
        if !rings || round != self.round || self.ring_deadline.is_none() {
            return;
        }
        let this_round = || self.forks.iter().filter(|f| f.round == self.round);
        if this_round().any(|f| matches!(f.state, ForkState::Calling | ForkState::Early)) {
            return;
        }
        let statuses: Vec<StatusCode> = this_round().filter_map(|f| f.final_status).collect();
        let (mut status, mut disposition) = best_failure(&statuses);
        if this_round().all(|f| f.out.is_some()) {
            // A trunk's answer is the network's word on the number: passed on as it is
            // (404 stays 404), not merged like a device's.
            status = response.status;
            disposition = match status.code() {
                486 | 600 | 603 => crate::record::Disposition::Busy,
                _ => crate::record::Disposition::Failed,
            };
        }
        if self.plan_continues {
            let outcome = match disposition {
                crate::record::Disposition::Busy => super::DialOutcome::Busy,
                _ => super::DialOutcome::Unavailable,
            };
            let reason = String::from_utf8_lossy(&response.reason).into_owned();
            let reason = if status == response.status {
                reason
            } else {
                status.canonical_reason().to_string()
            };
            return self.round_failed(now, layer, outcome, status, &reason);
        }
        let mut answer = self.caller_response(status);
        if status == response.status {
            answer.reason = response.reason.clone();
            // A redirect is passed back with its targets (the dialplan will decide later).
            if status.class() == 3 {
                for contact in response.headers.get_all(&HeaderName::CONTACT) {
                    answer.headers.push(HeaderName::CONTACT, contact.clone());
                }
            }
        }
        let reason = String::from_utf8_lossy(&answer.reason).into_owned();
        self.respond_caller_invite(now, layer, answer);
        self.phase = Phase::Done;
        self.write_record(
            now,
            disposition,
            &format!("{} {reason}", status.code()),
            HangupSide::Callee,
        );
    }

    /// Stops every branch still ringing (after an answer, a CANCEL or the ring timeout).
    pub(super) fn cancel_forks(
        &mut self,
        now: Instant,
        layer: &mut TransactionLayer<D>,
        reason: Option<&'static str>,
    ) {
        let mut any = false;
        for index in 0..self.forks.len() {
            let state = self.forks.get(index).map(|f| f.state);
            match state {
                Some(ForkState::Early) => {
                    self.send_cancel(now, layer, index, reason);
                    any = true;
                }
                Some(ForkState::Calling) => {
                    // RFC 3261 §9.1: no CANCEL before a provisional response; it is sent
                    // when one arrives (or the INVITE times out).
                    if let Some(fork) = self.forks.get_mut(index) {
                        fork.cancel_owed = Some(reason.unwrap_or(""));
                    }
                    any = true;
                }
                _ => {}
            }
        }
        if any {
            // Wait for the branches' final responses: a 2xx crossing the CANCEL must be
            // ACKed and ended (RFC 3261 §9.1, 64*T1 is the INVITE transaction's lifetime).
            self.linger_until = Some(now + self.config.t1.saturating_mul(64));
        }
    }

    /// RFC 3261 §9.1: the CANCEL copies the INVITE's Request-URI, Call-ID, To, From, CSeq
    /// number and top Via (same branch).
    fn send_cancel(
        &mut self,
        now: Instant,
        layer: &mut TransactionLayer<D>,
        index: usize,
        reason: Option<&str>,
    ) {
        let Some(fork) = self.forks.get(index) else {
            return;
        };
        let invite = &fork.invite;
        let mut cancel = Request::new(Method::CANCEL, invite.uri.clone());
        for name in [
            HeaderName::VIA,
            HeaderName::FROM,
            HeaderName::TO,
            HeaderName::CALL_ID,
        ] {
            if let Some(value) = invite.headers.get(&name) {
                cancel.headers.push(name, value.clone());
            }
        }
        cancel.headers.push(HeaderName::MAX_FORWARDS, "70");
        cancel.headers.push(
            HeaderName::CSEQ,
            CSeq::new(fork.cseq, Method::CANCEL).to_string(),
        );
        if let Some(reason) = reason.filter(|r| !r.is_empty()) {
            cancel.headers.push(HeaderName::REASON, reason.to_string());
        }
        let endpoint = fork.device.endpoint.clone();
        if let Err(error) =
            layer.send_request(now, cancel, endpoint.peer.clone(), endpoint.reliable)
        {
            log_misuse(&error);
        }
    }
}

/// A device reached over WebSocket (RFC 7118) is a browser: it is offered WebRTC media.
fn webrtc_device<D>(n: Negotiator, device: &Device<D>) -> Negotiator {
    match device.endpoint.transport.eq_ignore_ascii_case("WS")
        || device.endpoint.transport.eq_ignore_ascii_case("WSS")
    {
        true => n.with_webrtc_leg(Side::Callee),
        false => n,
    }
}
