//! The four RFC 3261 §17 transaction machines, sans-IO, and the layer that owns them.
//!
//! Each machine takes inputs with the current time (`handle_*(now, ..)`) and is then polled:
//! [`poll_transmit`](ClientInvite::poll_transmit) for what to send now,
//! [`poll_event`](ClientInvite::poll_event) for what the transaction user (TU) must learn, and
//! [`poll_timeout`](ClientInvite::poll_timeout) for when to call `handle_timeout` next. Nothing
//! here reads a clock: tests run the RFC schedules in virtual time.
//!
//! RFC 6026 is implemented: a 2xx moves an INVITE transaction to "Accepted" (Timers L and M)
//! instead of ending it, so retransmitted INVITEs and 2xx responses are recognised as such.
//!
//! [`TransactionLayer`] matches messages to transactions by [`TransactionKey`] (§17.1.3,
//! §17.2.3) and runs many of them with one deadline heap.

/// The three polls every machine exposes, over its `out: Outbox` and `timers: TimerTable`.
macro_rules! outputs {
    () => {
        /// The next message to send.
        #[must_use]
        pub fn poll_transmit(&mut self) -> Option<Message> {
            self.out.pop_transmit()
        }

        /// The next event for the TU.
        #[must_use]
        pub fn poll_event(&mut self) -> Option<TransactionEvent> {
            self.out.pop_event()
        }

        /// When to call [`handle_timeout`](Self::handle_timeout) next.
        #[must_use]
        pub fn poll_timeout(&self) -> Option<Instant> {
            self.timers.next()
        }
    };
}

mod build;
mod client_invite;
mod client_non_invite;
mod deadlines;
mod kept;
mod key;
mod layer;
mod server_invite;
mod server_non_invite;
mod table;
mod timer;

pub use client_invite::{ClientInvite, ClientInviteState};
pub use client_non_invite::{ClientNonInvite, ClientNonInviteState};
pub use key::{KeyError, Role, TransactionKey};
pub use layer::{RequestDisposition, ResponseDisposition, TransactionLayer, Transmit};
pub use server_invite::{ServerInvite, ServerInviteState};
pub use server_non_invite::{ServerNonInvite, ServerNonInviteState};
pub use timer::{Timer, TimerConfig};

use crate::message::Response;

/// What a transaction tells its TU.
#[derive(Clone, Debug)]
pub enum TransactionEvent {
    /// Client transactions: a response for the TU (provisional, final, and in the INVITE
    /// "Accepted" state every further 2xx, since each may come from another fork).
    Response(Response),
    /// No final response in time (Timer B or F, §17.1.1.2, §17.1.2.2), or no ACK for a non-2xx
    /// final response (Timer H, §17.2.1). The transaction terminates.
    Timeout,
    /// The transport reported a failure to send (§17.1.4, §17.2.4). The transaction terminates.
    TransportError,
    /// The transaction reached "Terminated" and is gone; always the last event.
    Terminated,
}

/// Misuse of a transaction by its TU. These never reach the wire.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TxnError {
    #[error("no transaction with this key")]
    NoSuchTransaction,
    #[error("the transaction has already sent a final response")]
    FinalResponseSent,
    #[error("the transaction has terminated")]
    Terminated,
    #[error("a transaction with this key already exists")]
    DuplicateKey,
    #[error("this key names a client transaction")]
    NotAServerTransaction,
    #[error("ACK is not sent in a client transaction (RFC 3261 §17.1.1.3, §13.2.2.4)")]
    AckHasNoTransaction,
    #[error("cannot key the request: {0}")]
    Key(#[from] KeyError),
}

/// The outputs a machine has queued and not yet handed out.
#[derive(Debug, Default)]
struct Outbox {
    transmits: std::collections::VecDeque<crate::message::Message>,
    events: std::collections::VecDeque<TransactionEvent>,
}

impl Outbox {
    /// The next message; once the queue is empty its buffer is released, because a completed
    /// transaction waits 32 s (Timer J, K) with nothing to send, and thousands of them wait
    /// at once under load.
    fn pop_transmit(&mut self) -> Option<crate::message::Message> {
        let next = self.transmits.pop_front();
        if self.transmits.is_empty() {
            self.transmits = std::collections::VecDeque::new();
        }
        next
    }

    /// The next event, releasing the buffer likewise.
    fn pop_event(&mut self) -> Option<TransactionEvent> {
        let next = self.events.pop_front();
        if self.events.is_empty() {
            self.events = std::collections::VecDeque::new();
        }
        next
    }
}
