//! Requests inside the bridged dialogs (RFC 3261 §12.2): BYE ends both sides, re-INVITE and
//! UPDATE (RFC 3311) carry a new offer through the PBX's media anchor, everything else
//! (INFO with `application/dtmf-relay`, OPTIONS, MESSAGE, NOTIFY...) is relayed as it is.

use super::{Call, Phase};
use crate::record::HangupSide;
use bytes::Bytes;
use pbx_media::Side;
use pbx_sip::message::{HeaderName, Message, Request, Response};
use pbx_sip::method::Method;
use pbx_sip::status::StatusCode;
use pbx_sip::transaction::{TransactionKey, TransactionLayer};
use std::time::Instant;

/// A request the PBX passed from one side to the other, waiting for the answer.
#[derive(Debug)]
pub(super) struct Relayed {
    /// The side that sent the original request.
    origin: Side,
    /// The original request's server transaction.
    server_key: TransactionKey,
    request: Request,
    /// The request carried an SDP offer (re-INVITE or UPDATE).
    offer: bool,
    /// The CSeq of the request the PBX sent (for the ACK of a 2xx to a re-INVITE).
    sent_cseq: u32,
    /// A 2xx to the relayed INVITE arrived and was ACKed.
    pub(super) answered: bool,
    ack: Option<Request>,
}

/// Headers that mean something end to end and are copied onto a relayed request.
const END_TO_END: [HeaderName; 4] = [
    HeaderName::CONTENT_TYPE,
    HeaderName::EVENT,
    HeaderName::SUBJECT,
    HeaderName::from_static("Info-Package"),
];

impl<D: Clone + std::fmt::Debug> Call<D> {
    /// A new request inside one of the call's dialogs (not ACK, not CANCEL).
    pub fn handle_request(
        &mut self,
        now: Instant,
        layer: &mut TransactionLayer<D>,
        key: TransactionKey,
        request: Request,
    ) {
        let Some(side) = self.side_of(&request) else {
            return self.reply(now, layer, &key, &request, StatusCode::CALL_DOES_NOT_EXIST);
        };
        let dialog_ok = match side {
            Side::Caller => self.caller_dialog_matches(&request),
            Side::Callee => self.callee_dialog_matches(&request),
        };
        if !dialog_ok || self.phase == Phase::Done {
            // RFC 3261 §12.2.2: a request that matches no dialog gets 481.
            return self.reply(now, layer, &key, &request, StatusCode::CALL_DOES_NOT_EXIST);
        }
        let cseq = request.headers.cseq().map(|c| c.seq).unwrap_or(0);
        let in_order = match side {
            Side::Caller => self.caller.dialog.accept_remote_cseq(cseq, &request.method),
            Side::Callee => self
                .callee
                .as_mut()
                .is_some_and(|c| c.dialog.accept_remote_cseq(cseq, &request.method)),
        };
        if !in_order {
            // RFC 3261 §12.2.2: a lower CSeq than the last one MUST be rejected with 500.
            return self.reply(
                now,
                layer,
                &key,
                &request,
                StatusCode::SERVER_INTERNAL_ERROR,
            );
        }
        if request.method == Method::BYE {
            self.reply(now, layer, &key, &request, StatusCode::OK);
            let by = match side {
                Side::Caller => HangupSide::Caller,
                Side::Callee => HangupSide::Callee,
            };
            return self.end(now, layer, by, "BYE");
        }
        if self.phase != Phase::Answered {
            // Requests in the early dialog (UPDATE before answer, PRACK) are not relayed yet.
            return self.reply(now, layer, &key, &request, StatusCode::CALL_DOES_NOT_EXIST);
        }
        if self.callee.is_none() && self.application.is_some() {
            return self.application_request(now, layer, key, request);
        }
        if self.info_to_events(now, layer, &key, side, &request) {
            return;
        }
        let offer = (request.method == Method::INVITE || request.method == Method::UPDATE)
            && !request.body.is_empty();
        // RFC 3261 §14.2, RFC 3311 §5.2: one offer at a time; a second one gets 491.
        if offer && self.relayed.values().any(|r| r.offer) {
            return self.reply(now, layer, &key, &request, StatusCode::REQUEST_PENDING);
        }
        if request.method == Method::INVITE && request.body.is_empty() {
            // A re-INVITE without an offer wants one in our 2xx (RFC 3261 §14.1); the PBX does
            // not make offers of its own yet. 488 leaves the session as it was.
            let mut answer = Response::for_request(&request, StatusCode::NOT_ACCEPTABLE_HERE, None);
            answer.reason = Bytes::from_static(b"Not Acceptable Here (re-INVITE without SDP)");
            return self.respond_to(now, layer, &key, answer);
        }
        // An UPDATE without SDP (a session-timer refresh, RFC 4028) is relayed as it is.
        self.relay(now, layer, side, key, request, offer);
    }

    fn caller_dialog_matches(&self, request: &Request) -> bool {
        let to_tag = request
            .headers
            .to()
            .ok()
            .and_then(|t| t.tag().map(str::to_owned));
        to_tag.as_deref() == Some(self.caller.dialog.local_tag.as_str())
    }

    fn callee_dialog_matches(&self, request: &Request) -> bool {
        let Some(callee) = &self.callee else {
            return false;
        };
        let to_tag = request
            .headers
            .to()
            .ok()
            .and_then(|t| t.tag().map(str::to_owned));
        let from_tag = request
            .headers
            .from()
            .ok()
            .and_then(|f| f.tag().map(str::to_owned));
        to_tag.as_deref() == Some(callee.dialog.local_tag.as_str())
            && from_tag.as_deref() == Some(callee.dialog.remote_tag.as_str())
    }

    /// Passes a request to the other side in that side's dialog.
    fn relay(
        &mut self,
        now: Instant,
        layer: &mut TransactionLayer<D>,
        from: Side,
        server_key: TransactionKey,
        request: Request,
        offer: bool,
    ) {
        let body = if offer {
            let result = match self.negotiator.as_mut() {
                Some(n) => n.offer(from, &request.body, &mut self.rng).map(Bytes::from),
                None => Ok(request.body.clone()),
            };
            match result {
                Ok(body) => body,
                Err(error) => {
                    self.rollback_offer();
                    let status = StatusCode(error.status());
                    let mut answer = Response::for_request(&request, status, None);
                    answer.reason = Bytes::from(format!("{} ({error})", status.canonical_reason()));
                    return self.respond_to(now, layer, &server_key, answer);
                }
            }
        } else {
            request.body.clone()
        };
        let ua = self.config.user_agent.clone();
        let target = match from {
            Side::Caller => self.callee.as_mut().map(|c| {
                (
                    c.dialog
                        .request(request.method.clone(), &c.endpoint, &ua, &mut self.rng),
                    c.endpoint.clone(),
                )
            }),
            Side::Callee => {
                let endpoint = self.caller.endpoint.clone();
                Some((
                    self.caller.dialog.request(
                        request.method.clone(),
                        &endpoint,
                        &ua,
                        &mut self.rng,
                    ),
                    endpoint,
                ))
            }
        };
        let Some((mut outgoing, endpoint)) = target else {
            return self.reply(
                now,
                layer,
                &server_key,
                &request,
                StatusCode::CALL_DOES_NOT_EXIST,
            );
        };
        for name in END_TO_END {
            for value in request.headers.get_all(&name) {
                outgoing.headers.push(name.clone(), value.clone());
            }
        }
        if offer && !outgoing.headers.contains(&HeaderName::CONTENT_TYPE) {
            outgoing
                .headers
                .push(HeaderName::CONTENT_TYPE, "application/sdp");
        }
        outgoing.body = body;
        let sent_cseq = outgoing.headers.cseq().map(|c| c.seq).unwrap_or(0);
        match self.send(now, layer, outgoing, &endpoint) {
            Some(client_key) => {
                self.relayed.insert(
                    client_key,
                    Relayed {
                        origin: from,
                        server_key,
                        request,
                        offer,
                        sent_cseq,
                        answered: false,
                        ack: None,
                    },
                );
            }
            None => {
                if offer {
                    self.rollback_offer();
                }
                self.reply(
                    now,
                    layer,
                    &server_key,
                    &request,
                    StatusCode::SERVER_INTERNAL_ERROR,
                );
            }
        }
    }

    /// The other side's final answer to a relayed request.
    pub(super) fn relay_response(
        &mut self,
        now: Instant,
        layer: &mut TransactionLayer<D>,
        key: &TransactionKey,
        response: Response,
    ) {
        let Some(relayed) = self.relayed.get(key) else {
            return;
        };
        let origin = relayed.origin;
        let is_invite = relayed.request.method == Method::INVITE;
        let mut answer = Response::for_request(&relayed.request, response.status, None);
        answer.reason = response.reason.clone();
        answer
            .headers
            .push(HeaderName::SERVER, self.config.user_agent.clone());
        let success = response.status.is_success();
        if success && (is_invite || relayed.request.method == Method::UPDATE) {
            // RFC 3261 §12.1.1: a 2xx to a target-refresh request carries a Contact.
            let endpoint = match origin {
                Side::Caller => &self.caller.endpoint,
                Side::Callee => match &self.callee {
                    Some(c) => &c.endpoint,
                    None => &self.caller.endpoint,
                },
            };
            answer
                .headers
                .push(HeaderName::CONTACT, format!("<{}>", endpoint.contact()));
        }
        if success && is_invite {
            self.ack_relayed(layer, key);
        }
        let offer = self.relayed.get(key).is_some_and(|r| r.offer);
        if offer && success && !response.body.is_empty() {
            let answered = self
                .negotiator
                .as_mut()
                .map(|n| n.answer(origin.other(), &response.body, &mut self.rng));
            match answered {
                Some(Ok((sdp, plan))) => {
                    answer
                        .headers
                        .push(HeaderName::CONTENT_TYPE, "application/sdp");
                    answer.body = Bytes::from(sdp);
                    self.apply_plan(plan);
                }
                Some(Err(error)) => {
                    tracing::info!(%error, "unusable SDP answer to a re-offer");
                    self.rollback_offer();
                }
                // No media anchoring on this call: the answer passes as it is.
                None => {
                    answer
                        .headers
                        .push(HeaderName::CONTENT_TYPE, "application/sdp");
                    answer.body = response.body.clone();
                }
            }
        } else if offer && !success {
            // RFC 3264 §8: the failed re-offer changes nothing.
            self.rollback_offer();
        } else if !offer {
            for name in END_TO_END {
                for value in response.headers.get_all(&name) {
                    answer.headers.push(name.clone(), value.clone());
                }
            }
            answer.body = response.body.clone();
        }
        let Some(relayed) = self.relayed.get_mut(key) else {
            return;
        };
        let server_key = relayed.server_key.clone();
        if success && is_invite {
            relayed.answered = true;
            let cseq = relayed.request.headers.cseq().map(|c| c.seq).unwrap_or(0);
            let reliable = match origin {
                Side::Caller => self.caller.endpoint.reliable,
                Side::Callee => self.callee.as_ref().is_some_and(|c| c.endpoint.reliable),
            };
            self.respond_to(now, layer, &server_key, answer.clone());
            self.expect_ack(now, origin, server_key, answer, cseq, reliable);
        } else {
            self.relayed.remove(key);
            self.respond_to(now, layer, &server_key, answer);
        }
    }

    /// ACKs the other side's 2xx to a relayed re-INVITE (RFC 3261 §13.2.2.4).
    fn ack_relayed(&mut self, layer: &mut TransactionLayer<D>, key: &TransactionKey) {
        let Some(relayed) = self.relayed.get(key) else {
            return;
        };
        let ua = self.config.user_agent.clone();
        let (ack, peer) = match relayed.origin {
            Side::Caller => match &self.callee {
                Some(c) => (
                    c.dialog
                        .ack(relayed.sent_cseq, &c.endpoint, &ua, &mut self.rng),
                    c.endpoint.peer.clone(),
                ),
                None => return,
            },
            Side::Callee => (
                self.caller.dialog.ack(
                    relayed.sent_cseq,
                    &self.caller.endpoint,
                    &ua,
                    &mut self.rng,
                ),
                self.caller.endpoint.peer.clone(),
            ),
        };
        layer.send_stateless(peer, Message::Request(ack.clone()));
        if let Some(relayed) = self.relayed.get_mut(key) {
            relayed.ack = Some(ack);
        }
    }

    /// A retransmitted 2xx to a relayed re-INVITE: the same ACK again.
    pub(super) fn reack_relayed(&mut self, layer: &mut TransactionLayer<D>, key: &TransactionKey) {
        let Some(ack) = self.relayed.get(key).and_then(|r| r.ack.clone()) else {
            return;
        };
        let peer = match self.relayed.get(key).map(|r| r.origin) {
            Some(Side::Caller) => self.callee.as_ref().map(|c| c.endpoint.peer.clone()),
            Some(Side::Callee) => Some(self.caller.endpoint.peer.clone()),
            None => None,
        };
        if let Some(peer) = peer {
            layer.send_stateless(peer, Message::Request(ack));
        }
    }

    /// The relayed request got no answer in time.
    pub(super) fn relay_failed(
        &mut self,
        now: Instant,
        layer: &mut TransactionLayer<D>,
        relayed: Relayed,
        status: StatusCode,
    ) {
        if relayed.offer {
            self.rollback_offer();
        }
        if !relayed.answered {
            self.reply(now, layer, &relayed.server_key, &relayed.request, status);
        }
    }

    /// An ACK in one of the call's dialogs: the ACK of a 2xx the PBX sent.
    pub fn handle_ack(&mut self, now: Instant, layer: &mut TransactionLayer<D>, request: &Request) {
        let Some(side) = self.side_of(request) else {
            return;
        };
        let Ok(cseq) = request.headers.cseq() else {
            return;
        };
        let waited = self.pending_2xx.len();
        self.ack_received(side, cseq.seq);
        if side == Side::Caller && self.pending_2xx.len() < waited {
            self.forward_late_answer(now, layer, request);
        }
        // The 2xx was ACKed: the relayed re-INVITE behind it is complete.
        let origin_done: Vec<TransactionKey> = self
            .relayed
            .iter()
            .filter(|(_, r)| r.origin == side && r.answered)
            .filter(|(_, r)| r.request.headers.cseq().map(|c| c.seq) == Ok(cseq.seq))
            .map(|(k, _)| k.clone())
            .collect();
        for key in origin_done {
            self.relayed.remove(&key);
        }
    }

    /// Late offer: the caller's ACK carries its answer; the device's ACK carries ours.
    fn forward_late_answer(
        &mut self,
        now: Instant,
        layer: &mut TransactionLayer<D>,
        ack: &Request,
    ) {
        let Some(callee) = self.callee.as_mut().filter(|c| c.ack_pending) else {
            return;
        };
        callee.ack_pending = false;
        let answered = match self.negotiator.as_mut() {
            Some(n) if !ack.body.is_empty() => {
                Some(n.answer(Side::Caller, &ack.body, &mut self.rng))
            }
            _ => None,
        };
        let mut failed = false;
        if let Some(callee) = self.callee.as_mut() {
            match answered {
                Some(Ok((sdp, plan))) => {
                    callee
                        .ack
                        .headers
                        .push(HeaderName::CONTENT_TYPE, "application/sdp");
                    callee.ack.body = Bytes::from(sdp);
                    self.outputs
                        .push_back(super::CallOutput::Media(plan.clone()));
                    self.record.codec = Some(plan.codec.clone());
                    self.record.caller_encrypted = plan.caller.encrypted();
                    self.record.callee_encrypted = plan.callee.encrypted();
                }
                // RFC 3264 §4: an offer must be answered; a useless ACK ends the call.
                Some(Err(_)) | None => failed = true,
            }
            layer.send_stateless(
                callee.endpoint.peer.clone(),
                Message::Request(callee.ack.clone()),
            );
        }
        if failed {
            self.end(
                now,
                layer,
                HangupSide::Pbx,
                "no usable SDP answer in the ACK",
            );
        }
    }

    /// A CANCEL for the caller's INVITE (RFC 3261 §9.2).
    pub fn handle_cancel(
        &mut self,
        now: Instant,
        layer: &mut TransactionLayer<D>,
        cancel_key: TransactionKey,
        cancel: Request,
    ) {
        self.reply(now, layer, &cancel_key, &cancel, StatusCode::OK);
        if self.phase != Phase::Ringing {
            return;
        }
        self.cancel_forks(now, layer, None);
        self.fail(
            now,
            layer,
            StatusCode::REQUEST_TERMINATED,
            "Request Terminated",
            crate::record::Disposition::Cancelled,
            HangupSide::Caller,
        );
    }

    /// RFC 3264 §8: a re-offer that failed leaves the session as it was.
    fn rollback_offer(&mut self) {
        if let Some(negotiator) = self.negotiator.as_mut() {
            negotiator.cancel_offer();
        }
    }

    /// Answers a request with a bare status.
    pub(super) fn reply(
        &mut self,
        now: Instant,
        layer: &mut TransactionLayer<D>,
        key: &TransactionKey,
        request: &Request,
        status: StatusCode,
    ) {
        let mut response = Response::for_request(request, status, None);
        response
            .headers
            .push(HeaderName::SERVER, self.config.user_agent.clone());
        self.respond_to(now, layer, key, response);
    }

    pub(super) fn respond_to(
        &mut self,
        now: Instant,
        layer: &mut TransactionLayer<D>,
        key: &TransactionKey,
        response: Response,
    ) {
        if let Err(error) = layer.respond(now, key, response) {
            super::log_misuse(&error);
        }
    }
}
