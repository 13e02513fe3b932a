//! One engine shard: a transaction layer and the transaction users it serves, sans-IO. The
//! driver (`driver.rs`) feeds it [`Input`]s with the time and carries out its [`Output`]s.

use crate::calls::follow_up::FollowUp;
use crate::calls::{self, table::Calls};
use crate::io::{Input, Now, Output};
use crate::peer::{Inbound, Peer, TransportKind};
use crate::security::Admission;
use crate::state::{Engine, Waiting};
use crate::{Core, auth, count_response, options, qualify, respond};
use crate::{application, dialing};
use pbx_sip::message::{Message, Request, Response};
use pbx_sip::method::Method;
use pbx_sip::status::StatusCode;
use pbx_sip::transaction::TransactionEvent;
use pbx_sip::transaction::{RequestDisposition, TransactionKey, TransactionLayer};
use rand::rngs::StdRng;
use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::Instant;

impl Engine {
    /// A fresh engine for shard `index`; `rng` is its only source of randomness (seed it
    /// from the OS in production, from a constant in tests).
    pub fn new(ctx: Arc<Core>, index: usize, rng: StdRng) -> Engine {
        Engine {
            ctx,
            index,
            layer: TransactionLayer::new(Default::default()),
            calls: Calls::default(),
            qualifying: HashMap::new(),
            rng,
            outputs: VecDeque::new(),
            waiting: HashMap::new(),
            next_request: 0,
            local_toward: HashMap::new(),
            mwi: Default::default(),
        }
    }

    /// A fresh engine for the same shard, replacing this one after a failure: its call and
    /// request numbers go on from this one's, so a late answer meant for the old engine
    /// finds nothing in the new one.
    pub fn successor(&self, rng: StdRng) -> Engine {
        let mut fresh = Engine::new(self.ctx.clone(), self.index, rng);
        fresh.calls.continue_from(&self.calls);
        fresh.next_request = self.next_request;
        fresh
    }

    /// Takes one input at `now`; what it leads to is queued for [`Engine::poll_output`].
    pub fn handle(&mut self, now: Now, input: Input) {
        match input {
            Input::Sip(
                Inbound {
                    peer,
                    message: Message::Request(request),
                },
                admission,
            ) => self.on_request(now, request, peer, admission),
            Input::Sip(
                Inbound {
                    message: Message::Response(response),
                    ..
                },
                _,
            ) => self.on_response(now, response),
            Input::Credentials { id, lookup } => match self.waiting.remove(&id) {
                Some(Waiting::Auth(pending)) => {
                    if let Some(authorized) = auth::resume(self, now, pending, lookup) {
                        self.authorized(now, authorized);
                    }
                }
                Some(Waiting::Callee(no)) => crate::dialing::callee_loaded(self, now, no, lookup),
                Some(Waiting::Mwi(_)) | None => {}
            },
            Input::MessageCounts { id, counts } => {
                if let Some(Waiting::Mwi(pending)) = self.waiting.remove(&id) {
                    crate::mwi::counts_loaded(self, now, *pending, counts);
                }
            }
            Input::MailboxChanged {
                mailbox,
                counts,
                unsolicited,
            } => crate::mwi::mailbox_changed(self, now, &mailbox, counts, unsolicited),
            Input::Http { call, outcome } => crate::dialing::drive(
                self,
                now,
                call,
                Some(pbx_dialplan::StepResult::Http(outcome)),
            ),
            Input::Db { call, outcome } => {
                crate::dialing::drive(self, now, call, Some(pbx_dialplan::StepResult::Db(outcome)))
            }
            Input::MediaAllocated { call, ports } => calls::media_allocated(self, now, call, ports),
            Input::LocalAddress { toward, local } => calls::local_address(self, now, toward, local),
            Input::Media(no, event) => calls::media(self, now, no, event),
            Input::Session { call, event } => {
                super::application::session_event(self, now, call, event)
            }
            Input::Recorded {
                call,
                duration,
                end,
            } => super::application::recorded(self, now, call, duration, end),
            Input::Voicemail { call, id, answer } => {
                super::application::voicemail_answer(self, now, call, id, answer)
            }
            Input::Qualify(target) => self.qualify(now, target),
            Input::SendFailed(key) => {
                // RFC 3261 §17.1.4, §17.2.4: the transaction learns of the failure.
                self.layer.handle_transport_error(now.at, &key);
            }
            Input::HangUp { call } => calls::hang_up(self, now, call),
            Input::Timeout => {
                self.layer.handle_timeout(now.at);
                // The applications' timers, then the call machines', each followed up at once.
                while let Some(no) = self.calls.pop_due_app(now.at) {
                    application::timeout(self, now, no);
                    self.follow_ups(now);
                }
                while let Some(no) = self.calls.pop_due_call(now.at) {
                    calls::timeout(self, now, no);
                    self.follow_ups(now);
                }
                crate::mwi::timeouts(self, now);
            }
            #[cfg(feature = "fault-injection")]
            Input::Panic => panic!("a deliberate failure (test)"),
            Input::Shutdown => {
                calls::hang_up_all(self, now);
                self.follow_ups(now);
                self.flush(now);
                self.outputs.push_back(Output::ShutdownComplete);
            }
        }
        self.follow_ups(now);
        self.flush(now);
    }

    /// Carries out what the handlers queued for the plan and the applications
    /// ([`FollowUp`]). What one follow-up queues runs before the follow-ups queued beside
    /// it, depth first, as if each handler had called the next directly.
    fn follow_ups(&mut self, now: Now) {
        while let Some(next) = self.calls.follow_ups.pop_front() {
            let later = std::mem::take(&mut self.calls.follow_ups);
            self.follow_up(now, next);
            self.calls.follow_ups.extend(later);
        }
    }

    fn follow_up(&mut self, now: Now, next: FollowUp) {
        match next {
            FollowUp::Drive(no, input) => dialing::drive(self, now, no, input),
            FollowUp::Refuse {
                call,
                status,
                detail,
            } => dialing::refuse(self, now, call, status, detail),
            FollowUp::Answered(no, local, then) => {
                application::answered(self, now, no, local, then)
            }
            FollowUp::DialEnded(no, end) => dialing::dial_ended(self, now, no, end),
            FollowUp::Connected(no) => application::connected(self, no),
            FollowUp::Key(no, digit) => application::key(self, now, no, digit),
            FollowUp::Run(no, action) => application::run(self, now, no, action),
            FollowUp::HangUp(no) => application::hang_up(self, now, no),
        }
    }

    /// The next thing to do for the shell.
    #[must_use]
    pub fn poll_output(&mut self) -> Option<Output> {
        self.outputs.pop_front()
    }

    /// When to call `handle(now, Input::Timeout)` next.
    #[must_use]
    pub fn poll_timeout(&mut self) -> Option<Instant> {
        let calls = earliest(self.layer.poll_timeout(), self.calls.next_deadline());
        earliest(calls, self.mwi.next_deadline())
    }

    /// Ends every call of a shard being replaced after a failure: BYE to answered calls,
    /// CANCEL and 503 to ringing ones, each CDR saying the PBX ended it on an internal error.
    pub fn abandon_all(&mut self, now: Now) {
        calls::abandon_all(self, now);
        crate::mwi::abandon_all(self);
        self.follow_ups(now);
        self.flush(now);
    }

    /// The number of live calls.
    pub fn calls(&self) -> usize {
        self.calls.active.len()
    }

    fn qualify(&mut self, now: Now, target: qualify::Target) {
        let busy = self
            .qualifying
            .values()
            .any(|(aor, contact)| *aor == target.aor && *contact == target.contact);
        if busy {
            return;
        }
        let Some(request) = qualify::options_request(
            &target,
            &self.ctx.domain,
            &self.ctx.user_agent,
            &mut self.rng,
        ) else {
            tracing::debug!(contact = %target.contact, "cannot build an OPTIONS for this contact");
            return;
        };
        let reliable = target.peer.kind.is_reliable();
        match self
            .layer
            .send_request(now.at, request, target.peer, reliable)
        {
            Ok(key) => {
                self.qualifying.insert(key, (target.aor, target.contact));
            }
            Err(error) => tracing::debug!(%error, "qualify not sent"),
        }
    }

    fn on_request(
        &mut self,
        now: Now,
        mut request: Request,
        mut peer: Peer,
        admission: Option<Admission>,
    ) {
        metrics::counter!("pbx_sip_requests_total", "method" => method_label(&request.method))
            .increment(1);
        // RFC 3261 §18.2.1 and RFC 3581 §4: record where the request really came from, and
        // answer there.
        if let Some(target) = pbx_sip::nat::stamp_received(&mut request, peer.remote)
            && peer.kind == TransportKind::Udp
        {
            peer.remote = target;
        }
        let key = match TransactionKey::server(&request) {
            Ok(key) => key,
            Err(error) => {
                // RFC 3261 §8.2: a request the transaction layer cannot match is malformed.
                tracing::debug!(%error, "request without a usable transaction key");
                if request.method != Method::ACK {
                    let reason = format!("Bad Request ({error})");
                    let bad = self.response_with_reason(&request, error.status(), &reason);
                    self.send_stateless(&peer, bad);
                }
                return;
            }
        };
        let reliable = peer.kind.is_reliable();
        match self
            .layer
            .handle_keyed_request(now.at, key, request, peer.clone(), reliable)
        {
            RequestDisposition::New { key, request } => {
                self.dispatch(now, key, request, peer, admission)
            }
            RequestDisposition::Retransmission => {
                metrics::counter!("pbx_sip_retransmissions_absorbed_total").increment(1);
            }
            RequestDisposition::AckAbsorbed => {}
            RequestDisposition::Ack(request) => {
                // The ACK of a 2xx belongs to the call's dialog (RFC 3261 §13.3.1.4).
                let owner = request
                    .headers
                    .call_id()
                    .and_then(|id| self.calls.owner_of_call_id(id));
                if let Some(no) = owner {
                    calls::ack(self, now, no, &request);
                }
            }
            RequestDisposition::CancelFor {
                key,
                invite,
                request,
            } => match self.calls.owner_of_invite(&invite) {
                Some(no) => calls::cancel(self, now, no, key, request),
                None => {
                    // RFC 3261 §9.2: a CANCEL for a transaction already answered still gets
                    // its 200.
                    let ok = self.response(&request, StatusCode::OK);
                    self.respond(now, &key, ok);
                }
            },
        }
    }

    fn dispatch(
        &mut self,
        now: Now,
        key: TransactionKey,
        request: Request,
        peer: Peer,
        admission: Option<Admission>,
    ) {
        let method = request.method.clone();
        let in_dialog = request.headers.to().is_ok_and(|to| to.tag().is_some());
        let owner = request
            .headers
            .call_id()
            .and_then(|id| self.calls.owner_of_call_id(id));
        if method == Method::SUBSCRIBE {
            if let Some(authorized) =
                crate::mwi::subscribe(self, now, key, request, peer, admission)
            {
                self.authorized(now, authorized);
            }
        } else if in_dialog && let Some(no) = owner {
            calls::request(self, now, no, key, request);
        } else if method == Method::INVITE && !in_dialog {
            // A trunk is recognised by its source before any digest step (trunk/mod.rs).
            if let Some(trunk) = self.ctx.trunks.identify(peer.remote.ip(), &request) {
                return crate::trunk::inbound::start(self, now, key, request, peer, trunk);
            }
            let purpose = auth::Purpose::Invite;
            if let Some(authorized) =
                auth::authenticate(self, now, key, request, peer, admission, purpose)
            {
                self.authorized(now, authorized);
            }
        } else if method == Method::REGISTER {
            let purpose = auth::Purpose::Register;
            if let Some(authorized) =
                auth::authenticate(self, now, key, request, peer, admission, purpose)
            {
                self.authorized(now, authorized);
            }
        } else if method == Method::OPTIONS {
            let ok = options::answer(&request, &self.ctx.user_agent, &mut self.rng);
            self.respond(now, &key, ok);
        } else if method == Method::CANCEL || in_dialog {
            // RFC 3261 §9.2, §15.1.2: no such transaction or dialog here.
            let answer = self.response(&request, StatusCode::CALL_DOES_NOT_EXIST);
            self.respond(now, &key, answer);
        } else {
            let mut answer = self.response(&request, StatusCode::NOT_IMPLEMENTED);
            answer
                .headers
                .push(pbx_sip::message::HeaderName::ALLOW, respond::ALLOW);
            self.respond(now, &key, answer);
        }
    }

    /// An authenticated request goes on to the registrar, a call or a subscription.
    fn authorized(&mut self, now: Now, authorized: auth::Authorized) {
        let auth::Authorized {
            key,
            request,
            peer,
            user,
            extension,
            purpose,
        } = authorized;
        match purpose {
            auth::Purpose::Register => crate::register::bind(self, now, key, request, peer, &user),
            auth::Purpose::Invite => {
                let caller = crate::caller::Caller::Extension(extension);
                calls::start(self, now, key, request, peer, caller)
            }
            auth::Purpose::Subscribe => {
                crate::mwi::authorized(self, now, key, request, peer, &user)
            }
        }
    }

    fn on_response(&mut self, now: Now, response: Response) {
        let _ = self.layer.handle_response(now.at, response);
    }

    /// Sends a response outside any transaction (the request could not be keyed).
    fn send_stateless(&mut self, peer: &Peer, response: Response) {
        count_response(response.status);
        self.outputs.push_back(Output::Transmit {
            peer: peer.clone(),
            bytes: response.to_bytes(),
            key: None,
        });
    }

    /// Queues what the layer wants sent and consumes its events; the calls that handle
    /// events may queue more, so this runs until both queues are empty.
    fn flush(&mut self, now: Now) {
        loop {
            while let Some(transmit) = self.layer.poll_transmit() {
                // Responses are counted here, as they leave (the transaction layer's own 100
                // Trying and retransmissions included).
                if let Message::Response(response) = &transmit.message {
                    count_response(response.status);
                }
                self.outputs.push_back(Output::Transmit {
                    bytes: transmit.message.to_bytes(),
                    peer: transmit.to,
                    key: transmit.key,
                });
            }
            if !self.handle_events(now) {
                break;
            }
        }
    }

    /// Hands the layer's events to their owners; `true` when there were any.
    fn handle_events(&mut self, now: Now) -> bool {
        let mut any = false;
        while let Some((key, event)) = self.layer.poll_event() {
            any = true;
            if let Some(no) = self.calls.owner_of_transaction(&key) {
                calls::event(self, now, no, &key, event);
                self.follow_ups(now);
                continue;
            }
            if crate::mwi::owns(self, &key) {
                crate::mwi::event(self, now, &key, event);
                continue;
            }
            let reachable = match &event {
                TransactionEvent::Response(response) if response.status.is_final() => Some(true),
                TransactionEvent::Timeout | TransactionEvent::TransportError => Some(false),
                _ => None,
            };
            if let Some((aor, contact)) = self.qualifying.get(&key) {
                let write = reachable
                    .and_then(|reachable| self.ctx.location.set_reachable(aor, contact, reachable));
                if let Some(write) = write {
                    self.outputs.push_back(Output::Location(write));
                }
                if matches!(event, TransactionEvent::Terminated) {
                    self.qualifying.remove(&key);
                }
            }
        }
        any
    }
}

fn earliest(a: Option<Instant>, b: Option<Instant>) -> Option<Instant> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// Known methods by name; anything else is "other", so a client cannot grow the label set.
fn method_label(method: &Method) -> &'static str {
    match method.as_bytes() {
        b"REGISTER" => "REGISTER",
        b"INVITE" => "INVITE",
        b"ACK" => "ACK",
        b"BYE" => "BYE",
        b"CANCEL" => "CANCEL",
        b"OPTIONS" => "OPTIONS",
        b"INFO" => "INFO",
        b"UPDATE" => "UPDATE",
        b"PRACK" => "PRACK",
        b"SUBSCRIBE" => "SUBSCRIBE",
        b"NOTIFY" => "NOTIFY",
        b"REFER" => "REFER",
        b"MESSAGE" => "MESSAGE",
        b"PUBLISH" => "PUBLISH",
        _ => "other",
    }
}
