//! A leg through a trunk (issue 15, part 4): the PBX calls a number at another SIP server
//! (the old PBX, a gateway, a provider) as its UAC. Unlike a device's branch, the trunk sets
//! the INVITE's Request-URI, From and To (the caller ID the trunk presents), extra headers
//! (an outbound proxy's `Route`, `Privacy` and `P-Asserted-Identity`), answers a digest
//! challenge once with the trunk's credentials (RFC 3261 §22.2), offers only the trunk's
//! codecs, and must show a sign of life (any provisional response, 100 included) within its
//! setup time, else the branch counts as a 408 and the plan may try the next trunk.

use super::forks::ForkState;
use super::out_leg::{OutLeg, TrunkCredentials};
use super::{Call, DialOutcome, Phase};
use crate::endpoint::Device;
use crate::ids;
use bytes::Bytes;
use pbx_sip::auth::Challenge;
use pbx_sip::header::{CSeq, NameAddr};
use pbx_sip::message::{HeaderName, Request, Response};
use pbx_sip::method::Method;
use pbx_sip::status::StatusCode;
use pbx_sip::transaction::{TransactionKey, TransactionLayer};
use std::time::{Duration, Instant};

/// What the shell decided about one call through a trunk.
#[derive(Clone, Debug)]
pub struct TrunkLeg<D> {
    /// `contact` is the Request-URI (`sip:NUMBER@host:port`); the endpoint the trunk's
    /// address (or its outbound proxy's).
    pub device: Device<D>,
    /// The trunk's name, for the CDR.
    pub trunk: String,
    /// The number called, for the CDR.
    pub number: String,
    /// The caller ID presented (without tag: the call adds its own).
    pub from: NameAddr,
    pub to: NameAddr,
    /// `Route` (an outbound proxy), `Privacy`, `P-Asserted-Identity`...
    pub headers: Vec<(HeaderName, String)>,
    pub credentials: Option<TrunkCredentials>,
    /// No response at all within this time: the branch fails as 408.
    pub setup_timeout: Duration,
    /// Codec names the trunk takes (`PCMA`, `G722`...), case-insensitive; empty: any.
    pub codecs: Vec<String>,
}

impl<D: Clone + std::fmt::Debug> Call<D> {
    /// Calls through a trunk (a round of its own, as [`Call::ring`] starts one) for at most
    /// `timeout`. The caller's offer goes to the trunk, restricted to its codecs.
    pub fn ring_trunk(
        &mut self,
        now: Instant,
        layer: &mut TransactionLayer<D>,
        leg: TrunkLeg<D>,
        timeout: Duration,
        caller_name: Option<String>,
    ) {
        if self.phase != Phase::Ringing && !self.connecting() {
            return;
        }
        self.round += 1;
        // A new From tag per round (RFC 3261 §8.2.2.2), as for devices.
        let tag = ids::tag(&mut self.rng);
        let mut from = leg.from;
        if from.display_name.is_none() {
            from.display_name = caller_name.filter(|n| !n.is_empty());
        }
        from.params.set("tag", Some(&tag));
        self.record.trunk = Some(leg.trunk.clone());
        self.record.called = leg.number.clone();
        let Some(only) = self.trunk_formats(&leg.codecs) else {
            return self.round_failed(
                now,
                layer,
                DialOutcome::Unavailable,
                StatusCode::NOT_ACCEPTABLE_HERE,
                "Not Acceptable Here (no codec in common with the trunk)",
            );
        };
        self.ring_deadline = Some(now + timeout);
        let out = OutLeg {
            from,
            to: leg.to,
            headers: leg.headers,
            credentials: leg.credentials,
            answered_challenge: false,
            setup_by: now + leg.setup_timeout,
            heard: false,
            setup_timeout: leg.setup_timeout,
            only: only.clone(),
        };
        let media = self.media.clone();
        let negotiator = self.fork_negotiator(
            &leg.device,
            media.as_ref(),
            pbx_media::sdp::FirstOffer::Srtp,
        );
        let sent = self.send_fork_only(
            now,
            layer,
            leg.device,
            negotiator,
            1,
            Some(Box::new(out)),
            only,
        );
        let reason = match sent {
            Ok(true) => return,
            Ok(false) => "Service Unavailable (the trunk cannot be reached)".to_string(),
            // The trunk's policy cannot take this offer (SRTP required over UDP...): the
            // trunk failed, not the number.
            Err(error) => format!("Service Unavailable (no offer for the trunk: {error})"),
        };
        self.round_failed(
            now,
            layer,
            DialOutcome::Unavailable,
            StatusCode::SERVICE_UNAVAILABLE,
            &reason,
        );
    }

    /// The payload types of the caller's offer the trunk may be offered: `Some(None)` any,
    /// `None` none at all.
    fn trunk_formats(&self, codecs: &[String]) -> Option<Option<Vec<u8>>> {
        let agreed = self.agreed_formats();
        if codecs.is_empty() {
            return Some(agreed);
        }
        let Ok(offer) = pbx_media::sdp::parse(&self.caller.invite.body) else {
            // No offer (or none the PBX reads): the trunk's 2xx will make one.
            return Some(agreed);
        };
        let Some(audio) = offer.media.iter().find(|m| m.is_audio()) else {
            return Some(agreed);
        };
        let wanted = |name: &str| {
            name.eq_ignore_ascii_case("telephone-event")
                || codecs.iter().any(|c| c.eq_ignore_ascii_case(name))
        };
        let mut only = Vec::new();
        let mut audible = false;
        for pt in audio.formats.iter().filter_map(|f| f.parse::<u8>().ok()) {
            let name = audio
                .rtpmaps
                .iter()
                .find(|m| m.pt == pt)
                .map(|m| m.name.as_str())
                .or_else(|| static_name(pt));
            if let Some(name) = name.filter(|n| wanted(n)) {
                audible |= !name.eq_ignore_ascii_case("telephone-event");
                only.push(pt);
            }
        }
        if let Some(agreed) = agreed {
            only.retain(|pt| agreed.contains(pt));
            audible =
                audio.rtpmaps.iter().any(|m| {
                    only.contains(&m.pt) && !m.name.eq_ignore_ascii_case("telephone-event")
                }) || only.iter().any(|pt| static_name(*pt).is_some());
        }
        audible.then_some(Some(only))
    }

    /// A 401 or 407 on a trunk's branch with credentials not yet sent: the INVITE again with
    /// them (RFC 3261 §22.2: same Call-ID, From and To, CSeq one higher, a new branch; the
    /// offer unchanged). `true` says the response is dealt with.
    pub(super) fn retry_with_credentials(
        &mut self,
        now: Instant,
        layer: &mut TransactionLayer<D>,
        key: &TransactionKey,
        response: &Response,
    ) -> bool {
        let header = match response.status.code() {
            401 => HeaderName::WWW_AUTHENTICATE,
            407 => HeaderName::PROXY_AUTHENTICATE,
            _ => return false,
        };
        let Some(index) = self.fork_index(key) else {
            return false;
        };
        let Some(fork) = self.forks.get(index) else {
            return false;
        };
        let Some(out) = fork.out.as_ref() else {
            return false;
        };
        let Some(credentials) = out.credentials.clone() else {
            return false;
        };
        let live = self.phase == Phase::Ringing || self.connecting();
        if !live
            || out.answered_challenge
            || fork.round != self.round
            || fork.cancel_owed.is_some()
            || !matches!(fork.state, ForkState::Calling | ForkState::Early)
        {
            // A second challenge after the credentials: they are wrong (a failure).
            return false;
        }
        let values: Vec<&str> = response
            .headers
            .get_all(&header)
            .filter_map(|v| std::str::from_utf8(v).ok())
            .collect();
        let Some(challenge) = Challenge::pick(values) else {
            return false;
        };
        let cnonce = format!("{:016x}", rand::RngCore::next_u64(&mut self.rng));
        let uri = fork.invite.uri.to_string();
        let value = challenge.answer(
            &credentials.username,
            &credentials.password,
            "INVITE",
            &uri,
            1,
            &cnonce,
        );
        // RFC 3261 §22.2/§22.3: Authorization answers 401, Proxy-Authorization 407.
        let name = if header == HeaderName::WWW_AUTHENTICATE {
            HeaderName::AUTHORIZATION
        } else {
            HeaderName::PROXY_AUTHORIZATION
        };
        let cseq = fork.cseq.saturating_add(1);
        let branch = ids::branch(&mut self.rng);
        let mut invite: Request = fork.invite.clone();
        invite.headers.set(
            HeaderName::VIA,
            fork.device.endpoint.via(&branch).to_string(),
        );
        invite.headers.set(
            HeaderName::CSEQ,
            CSeq::new(cseq, Method::INVITE).to_string(),
        );
        invite.headers.set(name, value);
        let device = fork.device.clone();
        let mut out = out.clone();
        out.answered_challenge = true;
        tracing::debug!(
            call = self.caller.dialog.call_id,
            status = response.status.code(),
            "the trunk asked for credentials: INVITE again with them"
        );
        let Some(new_key) = self.send(now, layer, invite.clone(), &device.endpoint) else {
            return false;
        };
        let negotiator = self.forks.get_mut(index).and_then(|f| {
            f.state = ForkState::Finished;
            f.negotiator.take()
        });
        self.push_fork(super::forks::Fork {
            device,
            key: new_key,
            invite,
            negotiator,
            state: ForkState::Calling,
            cancel_owed: None,
            transaction_done: false,
            round: self.round,
            early_answer: None,
            final_status: None,
            cseq,
            plain_retry: self.forks.get(index).is_some_and(|f| f.plain_retry),
            out: Some(out),
        });
        true
    }

    /// The earliest setup deadline of a trunk branch that has not been heard from.
    pub(super) fn setup_deadline(&self) -> Option<Instant> {
        if self.phase != Phase::Ringing && !self.connecting() {
            return None;
        }
        self.forks
            .iter()
            .filter(|f| f.round == self.round && f.state == ForkState::Calling)
            .filter_map(|f| f.out.as_ref().filter(|o| !o.heard).map(|o| o.setup_by))
            .min()
    }

    /// Trunk branches silent past their setup time fail as 408 (a CANCEL follows should one
    /// still send a provisional response; a late 2xx is ACKed and ended).
    pub(super) fn setup_timeouts(&mut self, now: Instant, layer: &mut TransactionLayer<D>) {
        while self.setup_deadline().is_some_and(|at| at <= now) {
            let Some(key) = self
                .forks
                .iter()
                .find(|f| {
                    f.round == self.round
                        && f.state == ForkState::Calling
                        && f.out
                            .as_ref()
                            .is_some_and(|o| !o.heard && o.setup_by <= now)
                })
                .map(|f| f.key.clone())
            else {
                return;
            };
            tracing::info!(
                call = self.caller.dialog.call_id,
                "no answer from the trunk within its setup time"
            );
            let mut silent = Response::new(StatusCode::REQUEST_TIMEOUT);
            silent.reason = Bytes::from_static(b"Request Timeout (no answer from the trunk)");
            self.on_fork_final(now, layer, &key, silent);
        }
    }
}

/// RFC 3551 §6: the static payload types a trunk's codec list may name.
fn static_name(pt: u8) -> Option<&'static str> {
    match pt {
        0 => Some("PCMU"),
        3 => Some("GSM"),
        8 => Some("PCMA"),
        9 => Some("G722"),
        18 => Some("G729"),
        _ => None,
    }
}
