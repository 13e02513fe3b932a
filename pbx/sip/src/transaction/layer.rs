//! The transaction layer: many transactions keyed by [`TransactionKey`], one deadline heap.
//!
//! The layer matches what arrives to a transaction (§17.1.3, §17.2.3), creates server
//! transactions for new requests and client transactions for the TU's requests, and merges
//! their outputs. Terminated transactions are dropped at once (§17.1.1.2: "MUST be destroyed
//! the instant it enters the Terminated state").
//!
//! Deadlines live in a binary heap with lazy deletion ([`DeadlineHeap`]), so `poll_timeout`
//! and `handle_timeout` cost O(log n) per deadline.

use super::deadlines::{Deadline, DeadlineHeap};
use super::table::Table;
use super::{
    ClientInvite, ClientNonInvite, KeyError, ServerInvite, ServerNonInvite, TimerConfig,
    TransactionEvent, TransactionKey, TxnError,
};
use crate::message::{Message, Request, Response};
use crate::method::Method;
use std::collections::VecDeque;
use std::time::Instant;

/// A message to send, and where. `key` names the transaction that sent it, so a send failure
/// can be reported with [`TransactionLayer::handle_transport_error`]; it is `None` for messages
/// sent outside any transaction ([`TransactionLayer::send_stateless`]).
#[derive(Clone, Debug)]
pub struct Transmit<D> {
    pub to: D,
    pub message: Message,
    pub key: Option<TransactionKey>,
}

/// What became of a received request.
#[derive(Debug)]
#[allow(clippy::large_enum_variant)] // returned once and taken apart at once
pub enum RequestDisposition {
    /// A new server transaction: the TU answers `request` through
    /// [`TransactionLayer::respond`] with `key`. An unmatched CANCEL arrives here too; the TU
    /// answers it 481 (§9.2).
    New {
        key: TransactionKey,
        request: Request,
    },
    /// A CANCEL for the live INVITE server transaction `invite`. `key` is the CANCEL's own
    /// transaction: the TU answers it 200, and the INVITE 487 if it has no final response yet
    /// (§9.2).
    CancelFor {
        key: TransactionKey,
        invite: TransactionKey,
        request: Request,
    },
    /// A retransmission, absorbed by its transaction; the response it warrants, if any, is
    /// queued for sending.
    Retransmission,
    /// The ACK of a non-2xx final response, absorbed by its INVITE server transaction.
    AckAbsorbed,
    /// An ACK for the TU: the ACK of a 2xx (its own transaction, §17.1.1.3) or one matching no
    /// transaction. The dialog layer decides.
    Ack(Request),
}

/// What became of a received response.
#[derive(Debug)]
pub enum ResponseDisposition {
    /// Matched and queued as a [`TransactionEvent::Response`] for the TU.
    Delivered(TransactionKey),
    /// Matched and absorbed: a retransmitted final (the ACK re-sent if it was a non-2xx to an
    /// INVITE), or a response the transaction's state ignores.
    Absorbed(TransactionKey),
    /// No client transaction matches: RFC 6026 §8.9 (updating RFC 3261 §18.1.2) says to
    /// discard it silently. 2xx retransmissions are matched for 64*T1 after the first 2xx
    /// (the "Accepted" state, Timer M), so this is a stray.
    Unmatched(Response),
}

/// The four kinds, by their usual initials (INVITE/non-INVITE, client/server transaction).
/// Boxed: an INVITE client transaction holds two requests, the others far less.
#[derive(Debug)]
enum Machine {
    Ict(Box<ClientInvite>),
    Nict(Box<ClientNonInvite>),
    Ist(Box<ServerInvite>),
    Nist(Box<ServerNonInvite>),
}

macro_rules! each {
    ($machine:expr, $m:ident => $body:expr) => {
        match $machine {
            Machine::Ict($m) => $body,
            Machine::Nict($m) => $body,
            Machine::Ist($m) => $body,
            Machine::Nist($m) => $body,
        }
    };
}

#[derive(Debug)]
struct Entry<D> {
    machine: Machine,
    /// Where this transaction's messages go: the request's destination (client) or the
    /// request's source (server).
    peer: D,
    /// Tells this entry from an earlier one under the same key in the heap.
    id: u64,
    /// The deadline this entry has in the heap.
    scheduled: Option<Instant>,
}

/// Many transactions, each with its peer `D` (transport and address, opaque to the layer).
#[derive(Debug)]
pub struct TransactionLayer<D> {
    config: TimerConfig,
    entries: Table<TransactionKey, Entry<D>>,
    deadlines: DeadlineHeap,
    next_id: u64,
    transmits: VecDeque<Transmit<D>>,
    events: VecDeque<(TransactionKey, TransactionEvent)>,
}

impl<D: Clone> TransactionLayer<D> {
    pub fn new(config: TimerConfig) -> TransactionLayer<D> {
        TransactionLayer {
            config,
            entries: Table::default(),
            deadlines: DeadlineHeap::default(),
            next_id: 0,
            transmits: VecDeque::new(),
            events: VecDeque::new(),
        }
    }

    pub fn config(&self) -> &TimerConfig {
        &self.config
    }

    /// Live transactions.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn contains(&self, key: &TransactionKey) -> bool {
        self.entries.contains_key(key)
    }

    /// A request arrived from `from` over a reliable (TCP, TLS, WS) or unreliable (UDP)
    /// transport. An error means it cannot be matched (no Via, CSeq or Call-ID): answer 400
    /// statelessly ([`KeyError::status`]) if it can be answered at all.
    pub fn handle_request(
        &mut self,
        now: Instant,
        request: Request,
        from: D,
        reliable: bool,
    ) -> Result<RequestDisposition, KeyError> {
        let key = TransactionKey::server(&request)?;
        Ok(self.handle_keyed_request(now, key, request, from, reliable))
    }

    /// The same, for a caller that has already keyed the request (with
    /// [`TransactionKey::server`]) and kept the request to answer a keying error.
    pub fn handle_keyed_request(
        &mut self,
        now: Instant,
        key: TransactionKey,
        request: Request,
        from: D,
        reliable: bool,
    ) -> RequestDisposition {
        if request.method == Method::ACK {
            let Some(Entry {
                machine: Machine::Ist(txn),
                ..
            }) = self.entries.get_mut(&key)
            else {
                return RequestDisposition::Ack(request);
            };
            let disposition = match txn.handle_request(now, request) {
                Some(ack) => RequestDisposition::Ack(ack),
                None => RequestDisposition::AckAbsorbed,
            };
            self.settle(&key);
            return disposition;
        }
        if let Some(entry) = self.entries.get_mut(&key) {
            match &mut entry.machine {
                Machine::Ist(txn) => {
                    let _absorbed = txn.handle_request(now, request);
                }
                Machine::Nist(txn) => txn.handle_request(now),
                Machine::Ict(_) | Machine::Nict(_) => {}
            }
            self.settle(&key);
            return RequestDisposition::Retransmission;
        }
        let machine = if request.method == Method::INVITE {
            Machine::Ist(Box::new(ServerInvite::new(
                now,
                &request,
                reliable,
                self.config,
            )))
        } else {
            Machine::Nist(Box::new(ServerNonInvite::new(reliable, self.config)))
        };
        self.insert(key.clone(), machine, from);
        let invite = key.cancelled_invite().filter(|invite| {
            matches!(
                self.entries.get(invite),
                Some(Entry {
                    machine: Machine::Ist(_),
                    ..
                })
            )
        });
        match invite {
            Some(invite) => RequestDisposition::CancelFor {
                key,
                invite,
                request,
            },
            None => RequestDisposition::New { key, request },
        }
    }

    /// The TU's response in server transaction `key`.
    pub fn respond(
        &mut self,
        now: Instant,
        key: &TransactionKey,
        response: Response,
    ) -> Result<(), TxnError> {
        let entry = self
            .entries
            .get_mut(key)
            .ok_or(TxnError::NoSuchTransaction)?;
        let result = match &mut entry.machine {
            Machine::Ist(txn) => txn.respond(now, response),
            Machine::Nist(txn) => txn.respond(now, response),
            Machine::Ict(_) | Machine::Nict(_) => Err(TxnError::NotAServerTransaction),
        };
        self.settle(key);
        result
    }

    /// Sends `request` to `to` in a new client transaction. The TU has put a top Via with a
    /// unique branch on it (§8.1.1.7). ACK has no transaction: use
    /// [`send_stateless`](Self::send_stateless).
    pub fn send_request(
        &mut self,
        now: Instant,
        request: Request,
        to: D,
        reliable: bool,
    ) -> Result<TransactionKey, TxnError> {
        if request.method == Method::ACK {
            return Err(TxnError::AckHasNoTransaction);
        }
        let key = TransactionKey::client(&request)?;
        if self.entries.contains_key(&key) {
            return Err(TxnError::DuplicateKey);
        }
        let machine = if request.method == Method::INVITE {
            Machine::Ict(Box::new(ClientInvite::new(
                now,
                request,
                reliable,
                self.config,
            )))
        } else {
            Machine::Nict(Box::new(ClientNonInvite::new(
                now,
                request,
                reliable,
                self.config,
            )))
        };
        self.insert(key.clone(), machine, to);
        Ok(key)
    }

    /// Queues a message outside any transaction: the ACK of a 2xx, a stateless answer.
    pub fn send_stateless(&mut self, to: D, message: Message) {
        self.transmits.push_back(Transmit {
            to,
            message,
            key: None,
        });
    }

    /// A response arrived.
    pub fn handle_response(&mut self, now: Instant, response: Response) -> ResponseDisposition {
        let Some(key) = TransactionKey::client_for_response(&response) else {
            return ResponseDisposition::Unmatched(response);
        };
        let Some(entry) = self.entries.get_mut(&key) else {
            return ResponseDisposition::Unmatched(response);
        };
        match &mut entry.machine {
            Machine::Ict(txn) => txn.handle_response(now, response),
            Machine::Nict(txn) => txn.handle_response(now, response),
            Machine::Ist(_) | Machine::Nist(_) => {
                return ResponseDisposition::Unmatched(response);
            }
        }
        let before = self.events.len();
        self.settle(&key);
        let delivered = self
            .events
            .range(before..)
            .any(|(_, event)| matches!(event, TransactionEvent::Response(_)));
        if delivered {
            ResponseDisposition::Delivered(key)
        } else {
            ResponseDisposition::Absorbed(key)
        }
    }

    /// The transport failed to send a message of transaction `key` (§17.1.4, §17.2.4).
    pub fn handle_transport_error(&mut self, now: Instant, key: &TransactionKey) {
        if let Some(entry) = self.entries.get_mut(key) {
            each!(&mut entry.machine, m => m.handle_transport_error(now));
            self.settle(key);
        }
    }

    /// Destroys a transaction the TU gives up on (an INVITE client transaction whose CANCEL
    /// got no final response within 64*T1, §9.1). Queues its `Terminated` event.
    pub fn abandon(&mut self, key: &TransactionKey) -> bool {
        let found = self.entries.remove(key).is_some();
        if found {
            self.events
                .push_back((key.clone(), TransactionEvent::Terminated));
        }
        found
    }

    /// Runs every timer due at `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        loop {
            let entries = &self.entries;
            let Some(due) = self.deadlines.pop_due(now, |d| is_live(entries, d)) else {
                return;
            };
            if let Some(entry) = self.entries.get_mut(&due.key) {
                entry.scheduled = None;
                each!(&mut entry.machine, m => m.handle_timeout(now));
                self.settle(&due.key);
            }
        }
    }

    /// The earliest deadline of all transactions.
    #[must_use]
    pub fn poll_timeout(&mut self) -> Option<Instant> {
        let entries = &self.entries;
        self.deadlines.peek_live(|d| is_live(entries, d))
    }

    /// The next message to send.
    #[must_use]
    pub fn poll_transmit(&mut self) -> Option<Transmit<D>> {
        self.transmits.pop_front()
    }

    /// The next event for the TU, with its transaction.
    #[must_use]
    pub fn poll_event(&mut self) -> Option<(TransactionKey, TransactionEvent)> {
        self.events.pop_front()
    }

    fn insert(&mut self, key: TransactionKey, machine: Machine, peer: D) {
        let id = self.next_id;
        self.next_id += 1;
        self.entries.insert(
            key.clone(),
            Entry {
                machine,
                peer,
                id,
                scheduled: None,
            },
        );
        self.settle(&key);
    }

    /// Collects a transaction's outputs after an input, then reschedules or removes it.
    fn settle(&mut self, key: &TransactionKey) {
        let Some(entry) = self.entries.get_mut(key) else {
            return;
        };
        while let Some(message) = each!(&mut entry.machine, m => m.poll_transmit()) {
            self.transmits.push_back(Transmit {
                to: entry.peer.clone(),
                message,
                key: Some(key.clone()),
            });
        }
        while let Some(event) = each!(&mut entry.machine, m => m.poll_event()) {
            self.events.push_back((key.clone(), event));
        }
        if each!(&entry.machine, m => m.is_terminated()) {
            self.entries.remove(key);
        } else {
            let next = each!(&entry.machine, m => m.poll_timeout());
            if next == entry.scheduled {
                return;
            }
            entry.scheduled = next;
            let Some(at) = next else { return };
            let id = entry.id;
            self.deadlines.push(Deadline {
                at,
                id,
                key: key.clone(),
            });
        }
        let entries = &self.entries;
        self.deadlines
            .compact(entries.len(), |d| is_live(entries, d));
    }
}

/// Whether `deadline` is the one its transaction is waiting for.
fn is_live<D>(entries: &Table<TransactionKey, Entry<D>>, deadline: &Deadline) -> bool {
    entries
        .get(&deadline.key)
        .is_some_and(|e| e.id == deadline.id && e.scheduled == Some(deadline.at))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse::parse_message;
    use std::time::Duration;

    fn options(i: usize) -> Request {
        let text = format!(
            "OPTIONS sip:b@example.com SIP/2.0\r\nVia: SIP/2.0/UDP 10.0.0.1;branch=z9hG4bK{i}\r\n\
             From: <sip:a@example.com>;tag=1\r\nTo: <sip:b@example.com>\r\nCall-ID: {i}\r\n\
             CSeq: 1 OPTIONS\r\n\r\n"
        );
        match parse_message(text.into()) {
            Ok(Message::Request(r)) => r,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn stale_deadlines_do_not_pile_up() {
        #[allow(clippy::disallowed_methods)] // one fixed base for virtual time
        let now = Instant::now();
        let mut layer: TransactionLayer<()> = TransactionLayer::new(TimerConfig::default());
        let mut keys = Vec::new();
        for i in 0..1000 {
            keys.push(
                layer
                    .send_request(now, options(i), (), false)
                    .unwrap_or_else(|e| panic!("{e}")),
            );
        }
        // Each has Timer E (500 ms) in the heap; a 100 Trying leaves E, and a 200 replaces it
        // with Timer K: the old entries go stale.
        let later = now + Duration::from_millis(100);
        for (i, key) in keys.iter().enumerate() {
            let mut trying =
                Response::for_request(&options(i), crate::status::StatusCode::TRYING, None);
            let _ = layer.handle_response(later, trying.clone());
            trying.status = crate::status::StatusCode::OK;
            assert!(
                matches!(layer.handle_response(later, trying), ResponseDisposition::Delivered(k) if k == *key)
            );
            assert!(layer.deadlines.len() <= 2 * layer.len() + 64 + 1);
        }
        assert_eq!(layer.len(), 1000);
        assert_eq!(layer.poll_timeout(), Some(later + Duration::from_secs(5)));
        layer.handle_timeout(later + Duration::from_secs(5));
        assert!(layer.is_empty());
        assert_eq!(layer.poll_timeout(), None);
        assert_eq!(layer.deadlines.len(), 0);
    }
}
