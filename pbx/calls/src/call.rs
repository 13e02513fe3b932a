//! One call: the caller's leg (the PBX is its UAS), the forks to the called extension's
//! devices (the PBX is their UAC) and, once one answers, the bridge between the two dialogs
//! (RFC 3261 §6 "back-to-back user agent").
//!
//! The machine sits above the transaction layer: the shell hands it the requests, responses
//! and transaction events that belong to it, with the layer, and the machine answers through
//! the layer. Everything else it wants done comes out of [`Call::poll_output`].
//!
//! ```text
//!  Ringing ──first 2xx──► Answered ──BYE / media timeout / no ACK──► Done
//!     └──all fail / ring timeout / caller CANCEL──────────────────────►┘
//! ```

mod application;
mod dtmf;
mod forks;
mod in_dialog;
mod out_leg;
mod plain_retry;
mod retransmit;
mod trunk_leg;

use crate::dialog::{Dialog, without_tag};
use crate::endpoint::{Device, Endpoint};
use crate::ids;
use crate::originator::Originator;
use crate::record::{CallRecord, Disposition, HangupSide};
pub use application::AnswerError;
use bytes::Bytes;
pub use dtmf::{DtmfMedia, DtmfMode};
use forks::Fork;
use in_dialog::Relayed;
pub use out_leg::TrunkCredentials;
use pbx_media::sdp::{Encryption, LegPolicy, LocalEndpoint, Negotiator};
use pbx_media::{MediaPlan, Side};
use pbx_sip::message::{HeaderName, Request, Response};
use pbx_sip::status::StatusCode;
use pbx_sip::transaction::{TransactionEvent, TransactionKey, TransactionLayer};
use rand::rngs::StdRng;
use retransmit::TwoXx;
use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};
pub use trunk_leg::TrunkLeg;

/// Methods the PBX accepts in a call (RFC 3261 §20.5).
pub const ALLOW: &str = "INVITE, ACK, CANCEL, BYE, OPTIONS, INFO, UPDATE, MESSAGE, NOTIFY";

/// Settings shared by every call.
#[derive(Clone, Debug)]
pub struct CallConfig {
    pub user_agent: String,
    /// RFC 3261 T1 and T2: the 2xx retransmission schedule (§13.3.1.4).
    pub t1: Duration,
    pub t2: Duration,
}

impl Default for CallConfig {
    fn default() -> Self {
        CallConfig {
            user_agent: "pbx".into(),
            t1: Duration::from_millis(500),
            t2: Duration::from_secs(4),
        }
    }
}

/// The relay ports the shell allocated for this call, and each leg's encryption policy.
#[derive(Clone, Debug)]
pub struct MediaSetup {
    pub caller: LocalEndpoint,
    pub callee: LocalEndpoint,
    pub caller_encryption: Encryption,
    pub callee_encryption: Encryption,
    /// Let SDES keys travel over UDP/TCP (RFC 4568 §8.3 says they should not).
    pub allow_keys_in_clear: bool,
    /// The `o=` session id the PBX uses towards both legs.
    pub session_id: u64,
    /// The PBX's DTLS certificate fingerprint: WebRTC offers are answered, and devices that
    /// registered over WebSocket are offered WebRTC.
    pub dtls_fingerprint: Option<pbx_media::Fingerprint>,
}

impl MediaSetup {
    /// The negotiator of this call's media, WebRTC-capable when the PBX has a certificate.
    fn negotiator(&self, caller: LegPolicy, callee: LegPolicy) -> Negotiator {
        let n = Negotiator::new(self.caller, caller, self.callee, callee, self.session_id);
        match &self.dtls_fingerprint {
            Some(fp) => n.with_webrtc(fp.clone()),
            None => n,
        }
    }
}

/// Where the call goes, as the shell resolved it (extension lookup, registrations, dialplan).
#[derive(Clone, Debug)]
pub enum Route<D> {
    /// Ring these devices in parallel for at most `timeout`. No device: 480.
    Ring {
        devices: Vec<Device<D>>,
        timeout: Duration,
    },
    /// Ring nothing yet: the shell is routing (a dialplan waiting for an HTTP lookup) and
    /// will call [`Call::ring`] or [`Call::finish`]. The caller has 100 Trying meanwhile and
    /// may CANCEL.
    Wait,
    /// Refuse the call with this status (404 unknown number, 403 not permitted...).
    Reject {
        status: StatusCode,
        reason: String,
        disposition: Disposition,
    },
}

/// Everything a new call needs.
#[derive(Clone, Debug)]
pub struct CallSetup<D> {
    pub invite_key: TransactionKey,
    pub invite: Request,
    pub caller: Endpoint<D>,
    /// Who calls: an extension, or a caller from outside over a trunk.
    pub originator: Originator,
    pub called_number: String,
    /// The PBX's SIP domain, for the From and To of the callee leg.
    pub domain: String,
    /// The Call-ID of the callee leg (the shell routes it back to this call).
    pub callee_call_id: String,
    pub route: Route<D>,
    pub media: Option<MediaSetup>,
    /// A dialplan decides what follows a failed dial (its `on_busy`, `on_no_answer`,
    /// `on_unavailable`): the call reports [`CallOutput::DialEnded`] instead of answering
    /// the caller, and waits for [`Call::ring`] or [`Call::finish`].
    pub plan_continues: bool,
    /// The call's own random source (tags, branches, SRTP keys), seeded by the shell.
    pub rng: StdRng,
}

/// What the call wants the shell to do.
#[derive(Debug)]
pub enum CallOutput {
    /// Apply this plan to the call's media relay.
    Media(MediaPlan),
    /// A device rung for a call the PBX had answered itself answered: the PBX is no longer
    /// the caller's partner, the relay carries the call between the caller and the device
    /// (its plan comes as [`CallOutput::Media`] just before).
    Connected,
    /// The call sent a request in a new client transaction: route its events here.
    Track(TransactionKey),
    /// The call is over for the caller: write the CDR.
    Record(CallRecord),
    /// No device answered this round of ringing (only with `plan_continues`): the shell
    /// continues the dialplan, then calls [`Call::ring`] or [`Call::finish`].
    DialEnded(DialEnd),
    /// The caller pressed a key, sent as SIP INFO, in a call the PBX answered itself.
    Dtmf(char),
    /// Convert DTMF between the legs' media and SIP INFO (see [`DtmfMedia`]).
    DtmfMedia(DtmfMedia),
}

/// How a round of ringing ended without an answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DialEnd {
    pub outcome: DialOutcome,
    /// What the caller would get if nothing else is tried.
    pub status: StatusCode,
    pub reason: String,
    pub disposition: Disposition,
    /// Who ended the round: the devices (busy, refused, unreachable) or the PBX (ring timeout).
    pub side: HangupSide,
}

/// Why nobody answered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DialOutcome {
    Busy,
    NoAnswer,
    /// Not registered, unreachable, or every device failed.
    Unavailable,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    Ringing,
    Answered,
    Done,
}

/// The caller's side: the INVITE server transaction and the dialog the PBX forms with it.
#[derive(Debug)]
struct CallerLeg<D> {
    endpoint: Endpoint<D>,
    invite_key: TransactionKey,
    invite: Request,
    dialog: Dialog,
}

/// The callee's side once a device answered.
#[derive(Debug)]
struct CalleeLeg<D> {
    endpoint: Endpoint<D>,
    dialog: Dialog,
    /// The ACK sent for the answering 2xx, re-sent for each retransmission of it (§13.2.2.4).
    ack: Request,
    /// Late offer: the ACK waits for the caller's ACK, which carries the SDP answer.
    ack_pending: bool,
}

/// A call. `D` is the shell's destination type (address and connection).
#[derive(Debug)]
pub struct Call<D> {
    config: CallConfig,
    phase: Phase,
    caller: CallerLeg<D>,
    callee: Option<CalleeLeg<D>>,
    forks: Vec<Fork<D>>,
    /// The From of the callee leg (the same for every fork, as a forking proxy's would be).
    callee_from: pbx_sip::header::NameAddr,
    callee_call_id: String,
    called_uri: pbx_sip::header::NameAddr,
    /// The offer/answer state of the bridged call, once a device answered.
    negotiator: Option<Negotiator>,
    ring_deadline: Option<Instant>,
    /// The round of ringing in progress (each `ring` starts one; a dialplan may ring again).
    round: u32,
    /// The relay ports and policies, kept for later rounds.
    media: Option<MediaSetup>,
    plan_continues: bool,
    /// The PBX answered the caller itself: what its endpoints use (see `application.rs`).
    application: Option<pbx_media::sdp::LocalMedia>,
    /// After the call is over for the caller, forks still being cancelled are waited for
    /// until this deadline (a 2xx crossing our CANCEL must still be ACKed and ended).
    linger_until: Option<Instant>,
    relayed: HashMap<TransactionKey, Relayed>,
    /// 2xx responses the PBX retransmits until their ACK arrives.
    pending_2xx: Vec<TwoXx>,
    record: RecordDraft,
    outputs: VecDeque<CallOutput>,
    rng: StdRng,
    /// How each leg carries DTMF (see `dtmf.rs`).
    dtmf: [DtmfMode; 2],
}

/// The CDR as it is filled in.
#[derive(Debug)]
struct RecordDraft {
    caller: String,
    called: String,
    started: Instant,
    answered: Option<Instant>,
    codec: Option<String>,
    caller_encrypted: bool,
    callee_encrypted: bool,
    trunk: Option<String>,
    written: bool,
}

impl<D: Clone + std::fmt::Debug> Call<D> {
    /// Starts a call for a new INVITE: rings the devices of the route, or refuses at once.
    pub fn start(
        now: Instant,
        layer: &mut TransactionLayer<D>,
        setup: CallSetup<D>,
        config: CallConfig,
    ) -> Call<D> {
        let CallSetup {
            invite_key,
            invite,
            caller,
            originator,
            called_number,
            domain,
            callee_call_id,
            route,
            media,
            plan_continues,
            mut rng,
        } = setup;
        let dialog = caller_dialog(&invite, &mut rng);
        let host = pbx_sip::uri::Host::parse(&domain)
            .unwrap_or_else(|_| pbx_sip::uri::Host::from(caller.local.ip()));
        let mut callee_from = pbx_sip::header::NameAddr::new(pbx_sip::uri::Uri::sip(
            Some(originator.number()),
            host.clone(),
            None,
        ));
        callee_from.display_name = originator.name().map(str::to_owned);
        callee_from.params.set("tag", Some(&ids::tag(&mut rng)));
        let called_uri = pbx_sip::header::NameAddr::new(pbx_sip::uri::Uri::sip(
            Some(&called_number),
            host,
            None,
        ));
        let mut call = Call {
            config,
            phase: Phase::Ringing,
            caller: CallerLeg {
                endpoint: caller,
                invite_key,
                invite,
                dialog,
            },
            callee: None,
            forks: Vec::new(),
            callee_from,
            callee_call_id,
            called_uri,
            negotiator: None,
            ring_deadline: None,
            round: 0,
            media,
            plan_continues,
            application: None,
            linger_until: None,
            relayed: HashMap::new(),
            pending_2xx: Vec::new(),
            record: RecordDraft {
                caller: originator.number().to_owned(),
                called: called_number,
                started: now,
                answered: None,
                codec: None,
                caller_encrypted: false,
                callee_encrypted: false,
                trunk: match &originator {
                    Originator::Trunk { trunk, .. } => Some(trunk.clone()),
                    Originator::Extension { .. } => None,
                },
                written: false,
            },
            outputs: VecDeque::new(),
            rng,
            dtmf: [DtmfMode::Rfc4733; 2],
        };
        if let Some((status, reason)) = call.refusal_by_rfc() {
            call.fail(
                now,
                layer,
                status,
                &reason,
                Disposition::Failed,
                HangupSide::Pbx,
            );
            return call;
        }
        match route {
            Route::Reject {
                status,
                reason,
                disposition,
            } => call.fail(now, layer, status, &reason, disposition, HangupSide::Pbx),
            Route::Ring { devices, timeout } => call.ring(now, layer, devices, timeout, None),
            Route::Wait => {}
        }
        call
    }

    /// Rings `devices` for at most `timeout` (a first round, or the next one a dialplan
    /// chose after a failed dial). `caller_name` replaces the caller's display name shown to
    /// the devices. No device: the round ends at once as unavailable.
    pub fn ring(
        &mut self,
        now: Instant,
        layer: &mut TransactionLayer<D>,
        devices: Vec<Device<D>>,
        timeout: Duration,
        caller_name: Option<String>,
    ) {
        if self.phase != Phase::Ringing && !self.connecting() {
            return;
        }
        self.round += 1;
        if let Some(name) = caller_name.filter(|n| !n.is_empty()) {
            self.callee_from.display_name = Some(name);
        }
        if self.round > 1 {
            // A new From tag per round: a device rung again sees a new request, not a merged
            // copy of the first (RFC 3261 §8.2.2.2).
            self.callee_from
                .params
                .set("tag", Some(&ids::tag(&mut self.rng)));
        }
        if devices.is_empty() {
            return self.round_failed(
                now,
                layer,
                DialOutcome::Unavailable,
                StatusCode::TEMPORARILY_UNAVAILABLE,
                "Temporarily Unavailable (no device registered)",
            );
        }
        self.ring_deadline = Some(now + timeout);
        let media = self.media.clone();
        self.start_forks(now, layer, devices, media);
    }

    /// The relay ports for the rounds to come (a dialplan call gets them when it first rings).
    pub fn set_media(&mut self, media: MediaSetup) {
        self.media = Some(media);
    }

    /// Whether media ports are set.
    pub fn has_media(&self) -> bool {
        self.media.is_some()
    }

    /// Whether the caller still waits for the call to be decided (ringing or routing).
    pub fn is_pending(&self) -> bool {
        self.phase == Phase::Ringing
    }

    /// Ends the call for the caller with a final failure (the dialplan's last word).
    pub fn finish(
        &mut self,
        now: Instant,
        layer: &mut TransactionLayer<D>,
        status: StatusCode,
        reason: &str,
        disposition: Disposition,
    ) {
        self.ring_deadline = None;
        self.fail(now, layer, status, reason, disposition, HangupSide::Pbx);
    }

    /// Ends the call for the caller with a failed dial's answer, when the dialplan has nothing
    /// more to try: the CDR names whoever ended that dial (a device's 486 or 488 is the
    /// callee's word, not the PBX's).
    pub fn finish_dial(&mut self, now: Instant, layer: &mut TransactionLayer<D>, end: &DialEnd) {
        self.ring_deadline = None;
        self.fail(
            now,
            layer,
            end.status,
            &end.reason,
            end.disposition,
            end.side,
        );
    }

    /// Ends the call like [`Call::finish`], but the caller gets only the status's plain
    /// reason phrase: `detail` (a context or rule name, an internal error) goes to the CDR.
    pub fn refuse(
        &mut self,
        now: Instant,
        layer: &mut TransactionLayer<D>,
        status: StatusCode,
        detail: &str,
        disposition: Disposition,
    ) {
        self.ring_deadline = None;
        let phrase = status.canonical_reason();
        let cause = format!("{phrase} ({detail})");
        self.fail_as(
            now,
            layer,
            status,
            phrase,
            &cause,
            disposition,
            HangupSide::Pbx,
        );
    }

    /// A round of ringing ended without an answer: tell the dialplan, or the caller.
    fn round_failed(
        &mut self,
        now: Instant,
        layer: &mut TransactionLayer<D>,
        outcome: DialOutcome,
        status: StatusCode,
        reason: &str,
    ) {
        self.ring_deadline = None;
        let disposition = match outcome {
            DialOutcome::Busy => Disposition::Busy,
            DialOutcome::NoAnswer => Disposition::NoAnswer,
            DialOutcome::Unavailable => Disposition::Failed,
        };
        let side = match outcome {
            DialOutcome::NoAnswer => HangupSide::Pbx,
            _ => HangupSide::Callee,
        };
        if self.plan_continues {
            self.outputs.push_back(CallOutput::DialEnded(DialEnd {
                outcome,
                status,
                reason: reason.to_string(),
                disposition,
                side,
            }));
        } else {
            self.fail(now, layer, status, reason, disposition, side);
        }
    }

    /// RFC 3261 §8.2.2 / §16.3 checks on the caller's INVITE before anything is rung.
    fn refusal_by_rfc(&self) -> Option<(StatusCode, String)> {
        let invite = &self.caller.invite;
        // RFC 3261 §16.3 item 3: Max-Forwards of zero gets 483.
        if invite.headers.max_forwards() == Some(0) {
            return Some((StatusCode::TOO_MANY_HOPS, "Too Many Hops".into()));
        }
        // RFC 3261 §16.3 item 4: our own Via in the list means the INVITE went round. Ours is
        // our branch prefix *at our sent-by*: another PBX of this kind (a second site behind
        // a trunk) writes the same prefix at its own address, and its calls are no loop.
        let local = self.caller.endpoint.local;
        let ours = pbx_sip::uri::Host::from(local.ip());
        let looped = invite.headers.vias().map(|vias| {
            vias.iter().any(|via| {
                via.branch()
                    .is_some_and(|b| b.starts_with(ids::OWN_BRANCH_PREFIX))
                    && via.port == Some(local.port())
                    && via.host == ours
            })
        });
        if looped == Ok(true) {
            return Some((StatusCode::LOOP_DETECTED, "Loop Detected".into()));
        }
        // RFC 3261 §8.1.1.8: an INVITE MUST carry a Contact (the dialog's remote target).
        if !invite.headers.contains(&HeaderName::CONTACT) {
            return Some((StatusCode::BAD_REQUEST, "Bad Request (no Contact)".into()));
        }
        None
    }

    /// Whether this call owns `call_id` (either leg).
    pub fn owns_call_id(&self, call_id: &str) -> bool {
        call_id == self.caller.dialog.call_id || call_id == self.callee_call_id
    }

    /// The Call-ID of the callee leg.
    pub fn callee_call_id(&self) -> &str {
        &self.callee_call_id
    }

    /// The caller's Call-ID.
    pub fn caller_call_id(&self) -> &str {
        &self.caller.dialog.call_id
    }

    /// The INVITE server transaction of the caller.
    pub fn invite_key(&self) -> &TransactionKey {
        &self.caller.invite_key
    }

    /// Nothing left to do: the shell may forget the call (and free its media).
    pub fn is_finished(&self) -> bool {
        self.phase == Phase::Done
            && self.pending_2xx.is_empty()
            && (self.linger_until.is_none() || self.forks.iter().all(Fork::is_settled))
    }

    /// Whether the call is answered and not over.
    pub fn is_established(&self) -> bool {
        self.phase == Phase::Answered
    }

    #[must_use]
    pub fn poll_output(&mut self) -> Option<CallOutput> {
        self.outputs.pop_front()
    }

    /// The earliest instant at which [`handle_timeout`](Self::handle_timeout) has work.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        let ring = self
            .ring_deadline
            .filter(|_| self.phase == Phase::Ringing || self.connecting());
        let retransmit = self.pending_2xx.iter().map(TwoXx::next_deadline).min();
        let linger = self.linger_until.filter(|_| self.phase == Phase::Done);
        let setup = self.setup_deadline();
        [ring, retransmit, linger, setup]
            .into_iter()
            .flatten()
            .min()
    }

    /// Runs the timers that are due.
    pub fn handle_timeout(&mut self, now: Instant, layer: &mut TransactionLayer<D>) {
        self.setup_timeouts(now, layer);
        let rings = self.phase == Phase::Ringing || self.connecting();
        if rings && self.ring_deadline.is_some_and(|at| at <= now) {
            // Issue 5: a ring timeout is answered 480, like an unreachable extension.
            self.cancel_forks(now, layer, None);
            self.round_failed(
                now,
                layer,
                DialOutcome::NoAnswer,
                StatusCode::TEMPORARILY_UNAVAILABLE,
                "Temporarily Unavailable (no answer)",
            );
        }
        self.retransmit_2xx(now, layer);
        if self.phase == Phase::Done && self.linger_until.is_some_and(|at| at <= now) {
            self.linger_until = None;
            for fork in &mut self.forks {
                fork.settle();
            }
        }
    }

    /// A transaction event for a transaction this call tracks.
    pub fn handle_event(
        &mut self,
        now: Instant,
        layer: &mut TransactionLayer<D>,
        key: &TransactionKey,
        event: TransactionEvent,
    ) {
        match event {
            TransactionEvent::Response(response) => self.on_response(now, layer, key, response),
            TransactionEvent::Timeout | TransactionEvent::TransportError => {
                if self.fork_index(key).is_some() {
                    let failed = Response::new(StatusCode::REQUEST_TIMEOUT);
                    self.on_fork_final(now, layer, key, failed);
                } else if let Some(relayed) = self.relayed.remove(key) {
                    self.relay_failed(now, layer, relayed, StatusCode::REQUEST_TIMEOUT);
                }
            }
            TransactionEvent::Terminated => {
                if let Some(index) = self.fork_index(key)
                    && let Some(fork) = self.forks.get_mut(index)
                {
                    fork.transaction_ended();
                }
                self.relayed.remove(key);
            }
        }
    }

    fn on_response(
        &mut self,
        now: Instant,
        layer: &mut TransactionLayer<D>,
        key: &TransactionKey,
        response: Response,
    ) {
        if self.fork_index(key).is_some() {
            if response.status.is_provisional() {
                self.on_fork_provisional(now, layer, key, response);
            } else if response.status.is_success() {
                self.on_fork_success(now, layer, key, response);
            } else if !self.retry_with_credentials(now, layer, key, &response)
                && !self.retry_plain(now, layer, key, &response)
            {
                self.on_fork_final(now, layer, key, response);
            }
        } else if let Some(relayed) = self.relayed.get(key)
            && response.status.is_final()
        {
            // A 2xx again after the first: our ACK was lost (RFC 3261 §13.2.2.4).
            if relayed.answered && response.status.is_success() {
                self.reack_relayed(layer, key);
            } else {
                self.relay_response(now, layer, key, response);
            }
        }
    }

    /// A final failure towards the caller before any answer; the call is over.
    fn fail(
        &mut self,
        now: Instant,
        layer: &mut TransactionLayer<D>,
        status: StatusCode,
        reason: &str,
        disposition: Disposition,
        side: HangupSide,
    ) {
        self.fail_as(now, layer, status, reason, reason, disposition, side);
    }

    /// [`Call::fail`] with one phrase for the caller and another (`cause`) for the CDR.
    #[allow(clippy::too_many_arguments)] // fail's, plus the CDR's cause
    fn fail_as(
        &mut self,
        now: Instant,
        layer: &mut TransactionLayer<D>,
        status: StatusCode,
        phrase: &str,
        cause: &str,
        disposition: Disposition,
        side: HangupSide,
    ) {
        if self.phase != Phase::Ringing {
            return;
        }
        let mut response = self.caller_response(status);
        response.reason = Bytes::copy_from_slice(phrase.as_bytes());
        self.respond_caller_invite(now, layer, response);
        self.phase = Phase::Done;
        let cause = format!("{} {}", status.code(), cause);
        self.write_record(now, disposition, &cause, side);
    }

    /// Ends an answered call: BYE to every side that did not end it (RFC 3261 §15.1.1).
    fn end(&mut self, now: Instant, layer: &mut TransactionLayer<D>, by: HangupSide, cause: &str) {
        if self.phase != Phase::Answered {
            return;
        }
        // Devices still ringing for a call the PBX answered itself stop.
        self.cancel_forks(now, layer, None);
        if by != HangupSide::Caller {
            let endpoint = self.caller.endpoint.clone();
            let bye = self.caller.dialog.request(
                pbx_sip::method::Method::BYE,
                &endpoint,
                &self.config.user_agent,
                &mut self.rng,
            );
            self.send(now, layer, bye, &endpoint);
        }
        if by != HangupSide::Callee
            && let Some(mut callee) = self.callee.take()
        {
            let bye = callee.dialog.request(
                pbx_sip::method::Method::BYE,
                &callee.endpoint,
                &self.config.user_agent,
                &mut self.rng,
            );
            self.send(now, layer, bye, &callee.endpoint);
            self.callee = Some(callee);
        }
        // Nothing waits for an ACK any more once the dialog is gone.
        self.pending_2xx.clear();
        self.phase = Phase::Done;
        self.write_record(now, Disposition::Answered, cause, by);
    }

    /// The relay reported no media for the configured time (not while on hold).
    pub fn media_timeout(&mut self, now: Instant, layer: &mut TransactionLayer<D>) {
        self.end(now, layer, HangupSide::Pbx, "media timeout");
    }

    /// The PBX is shutting down, or an admin ended the call.
    pub fn hang_up(&mut self, now: Instant, layer: &mut TransactionLayer<D>) {
        match self.phase {
            Phase::Ringing => {
                self.cancel_forks(now, layer, None);
                self.fail(
                    now,
                    layer,
                    StatusCode::SERVICE_UNAVAILABLE,
                    "Service Unavailable",
                    Disposition::Failed,
                    HangupSide::Pbx,
                );
            }
            Phase::Answered => self.end(now, layer, HangupSide::Pbx, "hung up by the PBX"),
            Phase::Done => {}
        }
    }

    /// The PBX gives up on the call (its shard failed): as [`Call::hang_up`], with `cause`
    /// in the record of an answered call.
    pub fn abort(&mut self, now: Instant, layer: &mut TransactionLayer<D>, cause: &str) {
        match self.phase {
            Phase::Answered => self.end(now, layer, HangupSide::Pbx, cause),
            _ => self.hang_up(now, layer),
        }
    }

    /// A response to the caller's INVITE with the PBX's To tag, Contact and Server.
    fn caller_response(&self, status: StatusCode) -> Response {
        let mut response = Response::for_request(
            &self.caller.invite,
            status,
            Some(&self.caller.dialog.local_tag),
        );
        if status.code() > 100 && status.code() < 300 {
            // RFC 3261 §12.1.1: a dialog-creating response carries the UAS's Contact, and
            // MUST copy the request's Record-Route values in order (the caller's in-dialog
            // requests then pass the proxies that asked to stay on the path, a provider's).
            response.headers.push(
                HeaderName::CONTACT,
                format!("<{}>", self.caller.endpoint.contact()),
            );
            for route in self
                .caller
                .invite
                .headers
                .get_all(&HeaderName::RECORD_ROUTE)
            {
                response
                    .headers
                    .push(HeaderName::RECORD_ROUTE, route.clone());
            }
        }
        response
            .headers
            .push(HeaderName::SERVER, self.config.user_agent.clone());
        response
    }

    fn respond_caller_invite(
        &mut self,
        now: Instant,
        layer: &mut TransactionLayer<D>,
        response: Response,
    ) {
        if let Err(error) = layer.respond(now, &self.caller.invite_key, response) {
            log_misuse(&error);
        }
    }

    /// Sends a request in a new client transaction and tracks it.
    fn send(
        &mut self,
        now: Instant,
        layer: &mut TransactionLayer<D>,
        request: Request,
        to: &Endpoint<D>,
    ) -> Option<TransactionKey> {
        match layer.send_request(now, request, to.peer.clone(), to.reliable) {
            Ok(key) => {
                self.outputs.push_back(CallOutput::Track(key.clone()));
                Some(key)
            }
            Err(error) => {
                log_misuse(&error);
                None
            }
        }
    }

    fn apply_plan(&mut self, plan: MediaPlan) {
        self.record.codec = Some(plan.codec.clone()).filter(|c| !c.is_empty());
        self.record.caller_encrypted = plan.caller.encrypted();
        self.record.callee_encrypted = plan.callee.encrypted();
        self.outputs.push_back(CallOutput::Media(plan));
        self.dtmf_after_plan();
    }

    fn write_record(
        &mut self,
        now: Instant,
        disposition: Disposition,
        cause: &str,
        side: HangupSide,
    ) {
        if self.record.written {
            return;
        }
        self.record.written = true;
        let record = CallRecord {
            call_id: self.caller.dialog.call_id.clone(),
            caller: self.record.caller.clone(),
            called: self.record.called.clone(),
            started: self.record.started,
            answered: self.record.answered,
            ended: now,
            disposition,
            hangup_cause: cause.to_string(),
            hangup_side: side,
            codec: self.record.codec.clone(),
            caller_encrypted: self.record.caller_encrypted,
            callee_encrypted: self.record.callee_encrypted,
            trunk: self.record.trunk.clone(),
        };
        self.outputs.push_back(CallOutput::Record(record));
    }

    /// The side a request belongs to, by its Call-ID.
    fn side_of(&self, request: &Request) -> Option<Side> {
        let call_id = request.headers.call_id()?;
        if call_id == self.caller.dialog.call_id {
            Some(Side::Caller)
        } else if call_id == self.callee_call_id {
            Some(Side::Callee)
        } else {
            None
        }
    }

    fn policy(endpoint: &Endpoint<D>, encryption: Encryption, allow_clear: bool) -> LegPolicy {
        LegPolicy {
            encryption,
            secure_signaling: endpoint.secure,
            allow_keys_in_clear: allow_clear,
        }
    }
}

/// The dialog the PBX forms with the caller as its UAS (RFC 3261 §12.1.1).
fn caller_dialog(invite: &Request, rng: &mut impl rand::RngCore) -> Dialog {
    let from = invite.headers.from().ok();
    let to = invite.headers.to().ok();
    let remote_tag = from
        .as_ref()
        .and_then(|f| f.tag().map(str::to_owned))
        .unwrap_or_default();
    let remote_target = invite
        .headers
        .contacts()
        .ok()
        .and_then(|c| c.addresses().first().map(|a| a.uri.clone()))
        .unwrap_or_else(|| invite.uri.clone());
    Dialog {
        call_id: invite.headers.call_id().unwrap_or_default().to_string(),
        local_tag: ids::tag(rng),
        remote_tag,
        local_uri: to
            .map(without_tag)
            .unwrap_or_else(|| pbx_sip::header::NameAddr::new(invite.uri.clone())),
        remote_uri: from
            .map(without_tag)
            .unwrap_or_else(|| pbx_sip::header::NameAddr::new(invite.uri.clone())),
        remote_target,
        // RFC 3261 §12.1.1: the route set is the Record-Route list, in order.
        route_set: invite
            .headers
            .get_all(&HeaderName::RECORD_ROUTE)
            .cloned()
            .collect(),
        local_cseq: 0,
        remote_cseq: invite.headers.cseq().ok().map(|c| c.seq),
    }
}

/// Misuse of the layer never reaches the wire; it is worth a debug line.
fn log_misuse<E: std::fmt::Display>(error: &E) {
    tracing::debug!(%error, "transaction layer refused");
}
