//! The application seam: the PBX answers the caller itself and is the other end of its
//! dialog (voicemail, IVR menus, the echo test, music on hold). The caller's requests in
//! that dialog are answered here rather than relayed: a re-INVITE (hold, a new address) is
//! answered with the PBX's own SDP, DTMF sent as SIP INFO becomes a digit for the
//! application, and BYE ends the call as in a bridged one.
//!
//! What the PBX plays, records and hears is the shell's media session: [`Call::answer`]
//! returns the [`LocalMedia`] its endpoints use, and every completed offer/answer comes out
//! as [`CallOutput::Media`] as for a bridged call.

use super::{Call, CallOutput, Phase};
use crate::record::{Disposition, HangupSide};
use bytes::Bytes;
use pbx_media::Side;
use pbx_media::sdp::{LocalMedia, NegotiationError};
use pbx_sip::message::{HeaderName, Request, Response};
use pbx_sip::method::Method;
use pbx_sip::status::StatusCode;
use pbx_sip::transaction::{TransactionKey, TransactionLayer};
use std::time::Instant;

/// Why the PBX could not answer the caller itself. The caller has its final answer already
/// when the call could not go on.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum AnswerError {
    /// Answered, refused or cancelled already.
    #[error("the call is no longer waiting for an answer")]
    NotPending,
    /// The shell has not set the call's media ports.
    #[error("no media ports for the call")]
    NoMedia,
    /// The INVITE has no SDP offer (RFC 3261 §13.2.1 late offer): the PBX does not offer
    /// first yet. The caller got 488.
    #[error("the INVITE carries no SDP offer")]
    NoOffer,
    /// The caller's offer has nothing the PBX's endpoints speak (G.711), or breaks its
    /// encryption policy. The caller got the matching 4xx.
    #[error("{0}")]
    Negotiation(String),
}

impl<D: Clone + std::fmt::Debug> Call<D> {
    /// Answers the caller with the PBX's own media, on the caller's relay port. Devices still
    /// ringing for the call are cancelled. From now on the caller's dialog ends only by BYE
    /// (either side), a media timeout or [`Call::hang_up`].
    pub fn answer(
        &mut self,
        now: Instant,
        layer: &mut TransactionLayer<D>,
    ) -> Result<LocalMedia, AnswerError> {
        if self.phase != Phase::Ringing {
            return Err(AnswerError::NotPending);
        }
        let media = self.media.clone().ok_or(AnswerError::NoMedia)?;
        if self.caller.invite.body.is_empty() {
            self.refuse_offer(now, layer, StatusCode::NOT_ACCEPTABLE_HERE, "no SDP offer");
            return Err(AnswerError::NoOffer);
        }
        let caller_policy = Self::policy(
            &self.caller.endpoint,
            media.caller_encryption,
            media.allow_keys_in_clear,
        );
        let mut negotiator = media.negotiator(caller_policy, caller_policy);
        let offer = self.caller.invite.body.clone();
        let (sdp, plan, local) =
            match negotiator.answer_locally(Side::Caller, &offer, &mut self.rng) {
                Ok(answered) => answered,
                Err(error) => {
                    let status = StatusCode(error.status());
                    self.refuse_offer(now, layer, status, &error.to_string());
                    return Err(AnswerError::Negotiation(error.to_string()));
                }
            };
        self.cancel_forks(now, layer, None);
        self.ring_deadline = None;
        self.negotiator = Some(negotiator);
        self.application = Some(local);
        let mut ok = self.caller_response(StatusCode::OK);
        ok.headers.push(HeaderName::ALLOW, super::ALLOW);
        ok.headers.push(HeaderName::CONTENT_TYPE, "application/sdp");
        ok.body = Bytes::from(sdp);
        self.apply_plan(plan);
        let cseq = self.caller.dialog.remote_cseq.unwrap_or(1);
        self.respond_caller_invite(now, layer, ok.clone());
        let (key, reliable) = (
            self.caller.invite_key.clone(),
            self.caller.endpoint.reliable,
        );
        self.expect_ack(now, Side::Caller, key, ok, cseq, reliable);
        self.phase = Phase::Answered;
        self.record.answered = Some(now);
        Ok(local)
    }

    /// The PBX answered the caller itself and is still its partner: devices may be rung for
    /// the call ([`Call::ring`]); the first to answer takes the caller over.
    pub(super) fn connecting(&self) -> bool {
        self.phase == Phase::Answered && self.application.is_some() && self.callee.is_none()
    }

    /// The payload types a branch may be offered while the PBX is the caller's partner: the
    /// codec (and telephone-event) it agreed with the caller, so that the caller's session
    /// needs no new offer when a device answers.
    pub(super) fn agreed_formats(&self) -> Option<Vec<u8>> {
        let local = self.application?;
        Some(
            std::iter::once(local.payload_type)
                .chain(local.telephone_event)
                .collect(),
        )
    }

    /// The media the PBX's endpoints use, while the PBX itself is the caller's partner.
    pub fn local_media(&self) -> Option<LocalMedia> {
        self.application.filter(|_| self.phase == Phase::Answered)
    }

    /// The caller's offer cannot be answered: the call fails with `status`, the caller told
    /// the plain phrase.
    fn refuse_offer(
        &mut self,
        now: Instant,
        layer: &mut TransactionLayer<D>,
        status: StatusCode,
        detail: &str,
    ) {
        self.cancel_forks(now, layer, None);
        self.ring_deadline = None;
        let cause = format!("{} ({detail})", status.canonical_reason());
        self.fail_as(
            now,
            layer,
            status,
            status.canonical_reason(),
            &cause,
            Disposition::Failed,
            HangupSide::Pbx,
        );
    }

    /// A request from the caller in the dialog the PBX answered itself (not BYE, ACK or
    /// CANCEL, which the call handles as for a bridged call).
    pub(super) fn application_request(
        &mut self,
        now: Instant,
        layer: &mut TransactionLayer<D>,
        key: TransactionKey,
        request: Request,
    ) {
        let offer = !request.body.is_empty()
            && (request.method == Method::INVITE || request.method == Method::UPDATE);
        if offer {
            return self.answer_reoffer(now, layer, key, request);
        }
        let method = &request.method;
        let status = if *method == Method::INVITE {
            // A re-INVITE without an offer wants one in our 2xx (RFC 3261 §14.1): as for a
            // bridged call, the PBX does not make offers of its own yet.
            StatusCode::NOT_ACCEPTABLE_HERE
        } else if *method == Method::INFO {
            match dtmf_of(&request) {
                Ok(digit) => {
                    if let Some(digit) = digit {
                        self.outputs.push_back(CallOutput::Dtmf(digit));
                    }
                    StatusCode::OK
                }
                Err(status) => status,
            }
        } else if [Method::UPDATE, Method::OPTIONS, Method::MESSAGE].contains(method) {
            // A session refresh (RFC 4028) or a keep-alive: nothing changes.
            StatusCode::OK
        } else if *method == Method::NOTIFY {
            // RFC 6665 §4.1.3: a NOTIFY that matches no subscription.
            StatusCode::CALL_DOES_NOT_EXIST
        } else {
            StatusCode::NOT_IMPLEMENTED
        };
        let mut response = Response::for_request(&request, status, None);
        response
            .headers
            .push(HeaderName::SERVER, self.config.user_agent.clone());
        if request.method == Method::OPTIONS {
            response.headers.push(HeaderName::ALLOW, super::ALLOW);
        }
        self.respond_to(now, layer, &key, response);
    }

    /// A re-INVITE or UPDATE with an offer (hold, resume, a new address): the PBX answers it
    /// with its own SDP (RFC 3264 §8) and the plan changes; a bad offer leaves the session as
    /// it was.
    fn answer_reoffer(
        &mut self,
        now: Instant,
        layer: &mut TransactionLayer<D>,
        key: TransactionKey,
        request: Request,
    ) {
        let answered = match self.negotiator.as_mut() {
            Some(n) => n.answer_locally(Side::Caller, &request.body, &mut self.rng),
            None => Err(NegotiationError::UnexpectedAnswer),
        };
        let (sdp, plan, local) = match answered {
            Ok(answered) => answered,
            Err(error) => {
                let status = StatusCode(error.status());
                let mut refusal = Response::for_request(&request, status, None);
                refusal.reason = Bytes::from(format!("{} ({error})", status.canonical_reason()));
                return self.respond_to(now, layer, &key, refusal);
            }
        };
        if request.method == Method::INVITE {
            // RFC 3261 §12.2.2: a re-INVITE's Contact is the dialog's new remote target.
            if let Some(target) = request
                .headers
                .contacts()
                .ok()
                .and_then(|c| c.addresses().first().map(|a| a.uri.clone()))
            {
                self.caller.dialog.remote_target = target;
            }
        }
        self.application = Some(local);
        let mut ok = Response::for_request(&request, StatusCode::OK, None);
        ok.headers.push(
            HeaderName::CONTACT,
            format!("<{}>", self.caller.endpoint.contact()),
        );
        ok.headers
            .push(HeaderName::SERVER, self.config.user_agent.clone());
        ok.headers.push(HeaderName::ALLOW, super::ALLOW);
        ok.headers.push(HeaderName::CONTENT_TYPE, "application/sdp");
        ok.body = Bytes::from(sdp);
        self.apply_plan(plan);
        self.respond_to(now, layer, &key, ok.clone());
        if request.method == Method::INVITE {
            let cseq = request.headers.cseq().map(|c| c.seq).unwrap_or(0);
            let reliable = self.caller.endpoint.reliable;
            self.expect_ack(now, Side::Caller, key, ok, cseq, reliable);
        }
    }
}

/// The digit of a DTMF INFO: `application/dtmf-relay` (`Signal=5`, the de facto format of
/// Cisco and most phones) or `application/dtmf` (the digit alone). `Ok(None)` for an INFO
/// without a body (a keep-alive); 415 for other content (RFC 6086 §4.2.2 says 469 for an
/// unknown Info-Package; these legacy INFOs carry none).
pub(super) fn dtmf_of(request: &Request) -> Result<Option<char>, StatusCode> {
    if request.body.is_empty() {
        return Ok(None);
    }
    let content_type = request
        .headers
        .get(&HeaderName::CONTENT_TYPE)
        .map(|v| String::from_utf8_lossy(v).to_ascii_lowercase())
        .unwrap_or_default();
    let media_type = content_type.split(';').next().unwrap_or("").trim();
    let body = String::from_utf8_lossy(&request.body);
    let value = match media_type {
        "application/dtmf-relay" => body
            .lines()
            .filter_map(|line| line.split_once('='))
            .find(|(name, _)| name.trim().eq_ignore_ascii_case("signal"))
            .map(|(_, value)| value.trim().to_string()),
        "application/dtmf" => Some(body.trim().to_string()),
        _ => return Err(StatusCode::UNSUPPORTED_MEDIA_TYPE),
    };
    match value.as_deref().map(digit_of) {
        Some(Some(digit)) => Ok(Some(digit)),
        _ => Err(StatusCode::BAD_REQUEST),
    }
}

/// `0`-`9`, `*`, `#`, `A`-`D`, or the RFC 4733 event numbers 10 (`*`) and 11 (`#`) some
/// phones send.
fn digit_of(value: &str) -> Option<char> {
    match value {
        "10" => return Some('*'),
        "11" => return Some('#'),
        _ => {}
    }
    let mut chars = value.chars();
    let c = chars.next()?.to_ascii_uppercase();
    (chars.next().is_none() && matches!(c, '0'..='9' | '*' | '#' | 'A'..='D')).then_some(c)
}

#[cfg(test)]
mod tests {
    use super::digit_of;

    #[test]
    fn digits_of_info_bodies() {
        assert_eq!(digit_of("5"), Some('5'));
        assert_eq!(digit_of("#"), Some('#'));
        assert_eq!(digit_of("10"), Some('*'));
        assert_eq!(digit_of("11"), Some('#'));
        assert_eq!(digit_of("d"), Some('D'));
        assert_eq!(digit_of("55"), None);
        assert_eq!(digit_of(""), None);
        assert_eq!(digit_of("x"), None);
    }
}
