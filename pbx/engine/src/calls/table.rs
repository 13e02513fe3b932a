//! The shard's call table: each live call with what the engine keeps beside its machine
//! (media, plan, application), and the indexes that find a call by Call-ID, transaction or
//! INVITE. Data only: the handlers above it (`calls.rs`, `dialing.rs`, `application.rs`) act
//! on it.

use super::follow_up::FollowUp;
use super::ring::PendingRing;
use crate::application::app::App;
use crate::caller::Caller;
use crate::dialing::plan::PlanState;
use crate::io::MediaPorts;
use crate::peer::Peer;
use pbx_calls::Call;
use pbx_dialplan::Action;
use pbx_sip::message::Request;
use pbx_sip::transaction::TransactionKey;
use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, VecDeque};
use std::time::Instant;

/// The live calls of one shard and the indexes that find them.
#[derive(Default)]
pub(crate) struct Calls {
    pub(crate) next: u64,
    pub(crate) active: HashMap<u64, Active>,
    pub(crate) by_call_id: HashMap<String, u64>,
    pub(crate) by_txn: HashMap<TransactionKey, u64>,
    pub(crate) by_invite: HashMap<TransactionKey, u64>,
    pub(crate) deadlines: BinaryHeap<Reverse<(Instant, u64)>>,
    /// INVITEs waiting for the local address toward their caller (a wildcard listener).
    pub(crate) parked: Vec<Incoming>,
    /// The timers of the calls the PBX answered (menus waiting for keys).
    pub(crate) app_deadlines: BinaryHeap<Reverse<(Instant, u64)>>,
    /// What the handlers left for the dispatcher to carry out next.
    pub(crate) follow_ups: VecDeque<FollowUp>,
}

pub(crate) struct Active {
    pub(crate) call: Call<Peer>,
    pub(crate) media: Media,
    /// The PBX answered the call itself (`application.rs`).
    pub(crate) app: Option<App>,
    /// The plan asked the PBX to answer (for this step): waiting for relay ports.
    pub(crate) answer_then: Option<Action>,
    /// The plan routing the call: the dialplan's, or the built-in one.
    pub(crate) plan: PlanState,
    pub(crate) caller_peer: Peer,
    /// Who calls (for a voicemail message's envelope).
    pub(crate) originator: pbx_calls::Originator,
    /// The calling extension's DID, its caller ID on trunks (`trunk::outbound`).
    pub(crate) caller_did: Option<String>,
    pub(crate) caller_policy: String,
    /// A round of ringing waiting for relay ports or local addresses.
    pub(crate) ring: Option<PendingRing>,
    /// [`CallState::Answered`] was said.
    pub(crate) answer_shown: bool,
    /// The trunk channel a trunk's call holds; given back when the call is dropped.
    pub(crate) _channel: Option<crate::trunk::Channel>,
    /// The channel of the trunk the call goes out by (while that leg rings or talks).
    pub(crate) out_channel: Option<crate::trunk::Channel>,
}

/// The call's relay, as the shell reported it.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Media {
    None,
    Requested,
    Ready(MediaPorts),
}

impl Calls {
    /// The earliest timer of any call.
    pub fn next_deadline(&mut self) -> Option<Instant> {
        // Lazy deletion: entries of finished calls or of moved deadlines are skipped.
        let mut call = None;
        while let Some(Reverse((at, no))) = self.deadlines.peek().copied() {
            match self.active.get(&no).and_then(|a| a.call.poll_timeout()) {
                Some(current) if current == at => {
                    call = Some(at);
                    break;
                }
                _ => {
                    self.deadlines.pop();
                }
            }
        }
        let mut app = None;
        while let Some(Reverse((at, no))) = self.app_deadlines.peek().copied() {
            let current = self
                .active
                .get(&no)
                .and_then(|a| a.app.as_ref())
                .and_then(App::deadline);
            if current == Some(at) {
                app = Some(at);
                break;
            }
            self.app_deadlines.pop();
        }
        [call, app].into_iter().flatten().min()
    }

    /// Numbers new calls after `old`'s.
    pub fn continue_from(&mut self, old: &Calls) {
        self.next = old.next;
    }

    pub fn owner_of_call_id(&self, call_id: &str) -> Option<u64> {
        self.by_call_id.get(call_id).copied()
    }

    pub fn owner_of_invite(&self, key: &TransactionKey) -> Option<u64> {
        self.by_invite.get(key).copied()
    }

    pub fn owner_of_transaction(&self, key: &TransactionKey) -> Option<u64> {
        self.by_txn.get(key).copied()
    }

    /// Queues what a handler above the calls must do next ([`FollowUp`]).
    pub(crate) fn follow(&mut self, next: FollowUp) {
        self.follow_ups.push_back(next);
    }

    /// The next call whose application timer is due at `now`, taken off its heap.
    pub(crate) fn pop_due_app(&mut self, now: Instant) -> Option<u64> {
        pop_due(&mut self.app_deadlines, now)
    }

    /// The next call whose machine's timer may be due at `now`, taken off its heap.
    pub(crate) fn pop_due_call(&mut self, now: Instant) -> Option<u64> {
        pop_due(&mut self.deadlines, now)
    }
}

/// An authenticated INVITE on its way to a call.
pub(crate) struct Incoming {
    pub(crate) key: TransactionKey,
    pub(crate) request: Request,
    pub(crate) peer: Peer,
    pub(crate) caller: Caller,
    pub(crate) plan: PlanState,
}

fn pop_due(heap: &mut BinaryHeap<Reverse<(Instant, u64)>>, now: Instant) -> Option<u64> {
    let Reverse((at, no)) = heap.peek().copied()?;
    if at > now {
        return None;
    }
    heap.pop();
    Some(no)
}
