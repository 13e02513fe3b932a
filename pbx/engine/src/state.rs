//! The state of one engine shard and the helpers every handler uses (queue an output,
//! build and send a response). It imports none of the handlers: they sit above it, and the
//! dispatcher (`shard.rs`) above them.

use crate::calls::table::Calls;
use crate::io::{Now, Output};
use crate::peer::Peer;
use crate::{Core, respond};
use pbx_sip::message::{Message, Request, Response};
use pbx_sip::status::StatusCode;
use pbx_sip::transaction::{TransactionKey, TransactionLayer};
use rand::SeedableRng;
use rand::rngs::StdRng;
use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::Arc;

/// A request of the engine waiting for the store's answer.
pub(crate) enum Waiting {
    /// A request to authenticate: the user's credentials.
    Auth(Box<crate::auth::pending::Pending>),
    /// A call routed by the built-in plan: the called extension's record.
    Callee(u64),
    /// Message-waiting: a mailbox's counts.
    Mwi(Box<crate::mwi::pending::Pending>),
}

/// One shard's state: its transaction layer, calls, subscriptions and what it waits for.
pub struct Engine {
    pub(crate) ctx: Arc<Core>,
    /// This shard's number: Call-IDs the PBX makes carry it, so their messages come back here.
    pub(crate) index: usize,
    pub(crate) layer: TransactionLayer<Peer>,
    pub(crate) calls: Calls,
    /// OPTIONS qualify transactions in flight: (aor, contact) by transaction.
    pub(crate) qualifying: HashMap<TransactionKey, (String, String)>,
    /// Tags, branches, Call-IDs and the seeds of each call's own source.
    pub(crate) rng: StdRng,
    pub(crate) outputs: VecDeque<Output>,
    /// Store requests out, by id.
    pub(crate) waiting: HashMap<u64, Waiting>,
    pub(crate) next_request: u64,
    /// The address of this host toward each destination, for a wildcard listener; `None`
    /// while the answer to [`Output::ResolveLocalAddress`] is awaited.
    pub(crate) local_toward: HashMap<IpAddr, Option<IpAddr>>,
    /// Message-waiting subscriptions (RFC 3842) whose Call-IDs route here.
    pub(crate) mwi: crate::mwi::table::Mwi,
}

impl Engine {
    pub(crate) fn push(&mut self, output: Output) {
        self.outputs.push_back(output);
    }

    /// A fresh id for a request to the shell.
    pub(crate) fn request_id(&mut self) -> u64 {
        self.next_request += 1;
        self.next_request
    }

    /// A response with a fresh To tag and the Server header.
    pub(crate) fn response(&mut self, request: &Request, status: StatusCode) -> Response {
        respond::response(request, status, &self.ctx.user_agent, &mut self.rng)
    }

    /// The same with a reason phrase that says what was wrong.
    pub(crate) fn response_with_reason(
        &mut self,
        request: &Request,
        status: StatusCode,
        reason: &str,
    ) -> Response {
        respond::response_with_reason(request, status, reason, &self.ctx.user_agent, &mut self.rng)
    }

    /// A seed for a new call's own random source.
    pub(crate) fn call_rng(&mut self) -> StdRng {
        StdRng::from_rng(&mut self.rng)
    }

    /// Hands a final or provisional response to its server transaction.
    pub(crate) fn respond(&mut self, now: Now, key: &TransactionKey, response: Response) {
        if let Err(error) = self.layer.respond(now.at, key, response) {
            tracing::debug!(%error, "response not sent");
        }
    }

    /// Answers a request statelessly (RFC 3261 §8.2.7) and drops its transaction: a
    /// retransmission is simply answered again. Used for digest challenges, so the first
    /// REGISTER of every refresh leaves no state behind (as Kamailio's `www_challenge`).
    pub(crate) fn respond_statelessly(
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
    pub(crate) fn abandon(&mut self, key: &TransactionKey) {
        self.layer.abandon(key);
    }

    /// The prefix of the Call-IDs this shard makes (the shell's dispatcher routes by it).
    pub(crate) fn call_id_prefix(&self) -> String {
        format!("{}{}-", crate::OWN_CALL_ID_PREFIX, self.index)
    }
}
