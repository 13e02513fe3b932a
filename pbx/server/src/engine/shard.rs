//! One engine shard: a transaction layer and the transaction users it serves.

use super::calls::{self, Calls};
use super::{EngineContext, ShardInput, auth, options, qualify, respond};
use crate::security::Admission;
use crate::transport::{Inbound, Peer, TransportKind};
use pbx_sip::message::{Message, Request, Response};
use pbx_sip::method::Method;
use pbx_sip::status::StatusCode;
use pbx_sip::transaction::TransactionEvent;
use pbx_sip::transaction::{RequestDisposition, TransactionKey, TransactionLayer};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;
use tokio::sync::mpsc;

pub(crate) struct Shard {
    pub(super) ctx: Arc<EngineContext>,
    /// This shard's own queue, for async work (store lookups) to report back to it.
    pub(super) own: mpsc::Sender<ShardInput>,
    /// This shard's number: Call-IDs the PBX makes carry it, so their messages come back here.
    index: usize,
    pub(super) layer: TransactionLayer<Peer>,
    pub(super) calls: Calls,
    /// OPTIONS qualify transactions in flight: (aor, contact) by transaction.
    qualifying: HashMap<TransactionKey, (String, String)>,
}

impl Shard {
    pub fn new(ctx: Arc<EngineContext>, own: mpsc::Sender<ShardInput>, index: usize) -> Shard {
        Shard {
            ctx,
            own,
            index,
            layer: TransactionLayer::new(Default::default()),
            calls: Calls::default(),
            qualifying: HashMap::new(),
        }
    }

    pub async fn run(mut self, mut inputs: mpsc::Receiver<ShardInput>) {
        loop {
            let deadline = earliest(self.layer.poll_timeout(), self.calls.next_deadline());
            tokio::select! {
                // One input, then its answers go out: handling a batch before sending sent the
                // answers in bursts that overflowed a busy client's receive buffer (measured
                // with SIPp at 10,000 REGISTER/s: 507 retransmissions with batches of 64, 2
                // without, and less CPU; docs/performance.md).
                input = inputs.recv() => {
                    let Some(input) = input else { break };
                    self.handle(Instant::now(), input);
                }
                () = sleep_until(deadline) => {
                    let now = Instant::now();
                    self.layer.handle_timeout(now);
                    calls::timeouts(&mut self, now);
                }
            }
            self.flush();
        }
    }

    fn handle(&mut self, now: Instant, input: ShardInput) {
        match input {
            ShardInput::Sip(
                Inbound {
                    peer,
                    message: Message::Request(request),
                },
                admission,
            ) => self.on_request(now, request, peer, admission),
            ShardInput::Sip(
                Inbound {
                    message: Message::Response(response),
                    ..
                },
                _,
            ) => self.on_response(now, response),
            ShardInput::CredentialsLoaded(pending) => auth::resume(self, now, pending),
            ShardInput::CallRoute(pending) => calls::resume(self, now, pending),
            ShardInput::PlanStep(no, result) => super::dialing::drive(self, now, no, Some(result)),
            ShardInput::Shutdown(done) => {
                calls::hang_up_all(self, now);
                self.flush();
                let _ = done.send(());
            }
            ShardInput::Media(no, event) => calls::media(self, now, no, event),
            ShardInput::Qualify(target) => self.qualify(now, target),
        }
    }

    fn qualify(&mut self, now: Instant, target: qualify::Target) {
        let busy = self
            .qualifying
            .values()
            .any(|(aor, contact)| *aor == target.aor && *contact == target.contact);
        if busy {
            return;
        }
        let Some(request) =
            qualify::options_request(&target, &self.ctx.domain, &self.ctx.user_agent)
        else {
            tracing::debug!(contact = %target.contact, "cannot build an OPTIONS for this contact");
            return;
        };
        let reliable = target.peer.kind.is_reliable();
        match self.layer.send_request(now, request, target.peer, reliable) {
            Ok(key) => {
                self.qualifying.insert(key, (target.aor, target.contact));
            }
            Err(error) => tracing::debug!(%error, "qualify not sent"),
        }
    }

    fn on_request(
        &mut self,
        now: Instant,
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
                    let bad = respond::response_with_reason(
                        &request,
                        error.status(),
                        &reason,
                        &self.ctx.user_agent,
                    );
                    self.send_stateless(&peer, bad);
                }
                return;
            }
        };
        let reliable = peer.kind.is_reliable();
        match self
            .layer
            .handle_keyed_request(now, key, request, peer.clone(), reliable)
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
                    let ok = respond::response(&request, StatusCode::OK, &self.ctx.user_agent);
                    self.respond(now, &key, ok);
                }
            },
        }
    }

    fn dispatch(
        &mut self,
        now: Instant,
        key: TransactionKey,
        request: Request,
        peer: Peer,
        admission: Option<Admission>,
    ) {
        let ua = self.ctx.user_agent.clone();
        let method = request.method.clone();
        let in_dialog = request.headers.to().is_ok_and(|to| to.tag().is_some());
        let owner = request
            .headers
            .call_id()
            .and_then(|id| self.calls.owner_of_call_id(id));
        if in_dialog && let Some(no) = owner {
            calls::request(self, now, no, key, request);
        } else if method == Method::INVITE && !in_dialog {
            auth::authenticate(
                self,
                now,
                key,
                request,
                peer,
                admission,
                auth::Purpose::Invite,
            );
        } else if method == Method::REGISTER {
            let purpose = auth::Purpose::Register;
            auth::authenticate(self, now, key, request, peer, admission, purpose);
        } else if method == Method::OPTIONS {
            let ok = options::answer(&request, &ua);
            self.respond(now, &key, ok);
        } else if method == Method::CANCEL || in_dialog {
            // RFC 3261 §9.2, §15.1.2: no such transaction or dialog here.
            let answer = respond::response(&request, StatusCode::CALL_DOES_NOT_EXIST, &ua);
            self.respond(now, &key, answer);
        } else {
            let mut answer = respond::response(&request, StatusCode::NOT_IMPLEMENTED, &ua);
            answer
                .headers
                .push(pbx_sip::message::HeaderName::ALLOW, respond::ALLOW);
            self.respond(now, &key, answer);
        }
    }

    fn on_response(&mut self, now: Instant, response: Response) {
        let _ = self.layer.handle_response(now, response);
    }

    /// Hands a final or provisional response to its server transaction.
    pub(super) fn respond(&mut self, now: Instant, key: &TransactionKey, response: Response) {
        if let Err(error) = self.layer.respond(now, key, response) {
            tracing::debug!(%error, "response not sent");
        }
    }

    /// Answers a request statelessly (RFC 3261 §8.2.7) and drops its transaction: a
    /// retransmission is simply answered again. Used for digest challenges, so the first
    /// REGISTER of every refresh leaves no state behind (as Kamailio's `www_challenge`).
    pub(super) fn respond_statelessly(
        &mut self,
        key: &TransactionKey,
        to: &Peer,
        response: Response,
    ) {
        self.layer.abandon(key);
        self.layer
            .send_stateless(to.clone(), Message::Response(response));
    }

    /// Forgets a request's transaction without answering it (a source banned while its
    /// request waited in the queue).
    pub(super) fn abandon(&mut self, key: &TransactionKey) {
        self.layer.abandon(key);
    }

    /// Sends a response outside any transaction (the request could not be keyed).
    fn send_stateless(&self, peer: &Peer, response: Response) {
        let message = Message::Response(response);
        if let Err(error) = self.ctx.sender.send_message(peer, &message) {
            tracing::debug!(%error, "stateless response not sent");
        }
    }

    /// The prefix of the Call-IDs this shard makes (see [`super::Dispatcher`]).
    pub(super) fn call_id_prefix(&self) -> String {
        format!("{}{}-", super::OWN_CALL_ID_PREFIX, self.index)
    }

    /// Sends what the layer queued and consumes its events; the calls that handle events
    /// may queue more, so this runs until both queues are empty.
    fn flush(&mut self) {
        loop {
            self.send_transmits();
            if !self.handle_events() {
                break;
            }
        }
    }

    fn send_transmits(&mut self) {
        while let Some(transmit) = self.layer.poll_transmit() {
            // Responses are counted here, as they leave (the transaction layer's own 100
            // Trying and retransmissions included).
            if let Err(error) = self
                .ctx
                .sender
                .send_message(&transmit.to, &transmit.message)
            {
                metrics::counter!("pbx_sip_send_failures_total").increment(1);
                tracing::debug!(%error, "send failed");
                if let Some(key) = transmit.key {
                    // RFC 3261 §17.1.4, §17.2.4: the transaction learns of the failure.
                    self.layer.handle_transport_error(Instant::now(), &key);
                }
            }
        }
    }

    /// Hands the layer's events to their owners; `true` when there were any.
    fn handle_events(&mut self) -> bool {
        let mut any = false;
        while let Some((key, event)) = self.layer.poll_event() {
            any = true;
            if let Some(no) = self.calls.owner_of_transaction(&key) {
                calls::event(self, Instant::now(), no, &key, event);
                continue;
            }
            let reachable = match &event {
                TransactionEvent::Response(response) if response.status.is_final() => Some(true),
                TransactionEvent::Timeout | TransactionEvent::TransportError => Some(false),
                _ => None,
            };
            if let Some((aor, contact)) = self.qualifying.get(&key) {
                if let Some(reachable) = reachable {
                    self.ctx.location.set_reachable(aor, contact, reachable);
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

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(at) => tokio::time::sleep_until(at.into()).await,
        None => std::future::pending().await,
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
