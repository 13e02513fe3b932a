//! The non-INVITE server transaction (RFC 3261 §17.2.2).
//!
//! ```text
//!  Trying ──1xx from TU──► Proceeding ──200-699 from TU──► Completed ──Timer J──► Terminated
//!    └────────────200-699 from TU─────────────────────────►┘                        ▲
//!  Trying/Proceeding ──transport error──────────────────────────────────────────────┘
//! ```

use super::kept::KeptResponse;
use super::timer::{Timer, TimerConfig, TimerTable};
use super::{Outbox, TransactionEvent, TxnError};
use crate::message::{Message, Response};
use std::time::Instant;

/// The states of figure 8 of RFC 3261.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ServerNonInviteState {
    Trying,
    Proceeding,
    Completed,
    Terminated,
}

/// A non-INVITE server transaction. Created when a new non-INVITE request (other than ACK)
/// arrives; the TU answers it with [`respond`](Self::respond).
#[derive(Debug)]
pub struct ServerNonInvite {
    state: ServerNonInviteState,
    reliable: bool,
    config: TimerConfig,
    timers: TimerTable,
    /// The latest response sent, re-sent for a retransmitted request.
    last: Option<KeptResponse>,
    out: Outbox,
}

impl ServerNonInvite {
    /// Starts the transaction in Trying.
    pub fn new(reliable: bool, config: TimerConfig) -> ServerNonInvite {
        ServerNonInvite {
            state: ServerNonInviteState::Trying,
            reliable,
            config,
            timers: TimerTable::default(),
            last: None,
            out: Outbox::default(),
        }
    }

    pub fn state(&self) -> ServerNonInviteState {
        self.state
    }

    pub fn is_terminated(&self) -> bool {
        self.state == ServerNonInviteState::Terminated
    }

    /// A retransmission of the request arrived.
    pub fn handle_request(&mut self, _now: Instant) {
        match self.state {
            // RFC 3261 §17.2.2: in Trying, request retransmissions are discarded.
            ServerNonInviteState::Trying | ServerNonInviteState::Terminated => {}
            // RFC 3261 §17.2.2: in Proceeding the most recent provisional response, in
            // Completed the final response, MUST be passed to the transport again.
            ServerNonInviteState::Proceeding | ServerNonInviteState::Completed => {
                if let Some(again) = self.last.as_ref().and_then(KeptResponse::message) {
                    self.out.transmits.push_back(again);
                }
            }
        }
    }

    /// A response from the TU.
    pub fn respond(&mut self, now: Instant, response: Response) -> Result<(), TxnError> {
        use ServerNonInviteState::*;
        match self.state {
            Trying | Proceeding if response.status.is_provisional() => {
                // RFC 3261 §17.2.2: a provisional response moves to Proceeding and is sent.
                self.send(response);
                self.state = Proceeding;
            }
            Trying | Proceeding => {
                // RFC 3261 §17.2.2: a final response moves to Completed; Timer J is 64*T1
                // unreliable, zero reliable.
                self.send(response);
                self.state = Completed;
                let wait = self.config.timer_j(self.reliable);
                if wait.is_zero() {
                    self.terminate();
                } else {
                    self.timers.set(Timer::J, now + wait);
                }
            }
            // RFC 3261 §17.2.2: further final responses from the TU MUST be discarded.
            Completed => return Err(TxnError::FinalResponseSent),
            Terminated => return Err(TxnError::Terminated),
        }
        Ok(())
    }

    /// Advances the timers that are due.
    pub fn handle_timeout(&mut self, now: Instant) {
        while let Some(timer) = self.timers.pop_expired(now) {
            if timer == Timer::J && self.state == ServerNonInviteState::Completed {
                self.terminate();
            }
        }
    }

    /// The transport could not send a response (§17.2.4).
    pub fn handle_transport_error(&mut self, _now: Instant) {
        if self.state != ServerNonInviteState::Terminated {
            self.out.events.push_back(TransactionEvent::TransportError);
            self.terminate();
        }
    }

    outputs!();

    fn send(&mut self, response: Response) {
        self.last = Some(KeptResponse::new(&response));
        self.out.transmits.push_back(Message::Response(response));
    }

    fn terminate(&mut self) {
        self.timers.stop_all();
        self.last = None;
        self.state = ServerNonInviteState::Terminated;
        self.out.events.push_back(TransactionEvent::Terminated);
    }
}
