//! The non-INVITE client transaction (RFC 3261 §17.1.2).
//!
//! ```text
//!  Trying ──1xx──► Proceeding ──200-699──► Completed ──Timer K──► Terminated
//!    └───────────200-699──────────────────►┘                        ▲
//!  Trying/Proceeding ──Timer F / transport error────────────────────┘
//! ```

use super::timer::{Timer, TimerConfig, TimerTable};
use super::{Outbox, TransactionEvent};
use crate::message::{Message, Request, Response};
use std::time::{Duration, Instant};

/// The states of figure 6 of RFC 3261.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClientNonInviteState {
    Trying,
    Proceeding,
    Completed,
    Terminated,
}

/// A non-INVITE client transaction (REGISTER, OPTIONS, BYE, CANCEL, ...). Created with the
/// request, which it sends at once. ACK never has one (§17.1.1.3).
#[derive(Debug)]
pub struct ClientNonInvite {
    state: ClientNonInviteState,
    request: Request,
    reliable: bool,
    config: TimerConfig,
    timers: TimerTable,
    /// The current Timer E interval.
    interval_e: Duration,
    out: Outbox,
}

impl ClientNonInvite {
    /// Starts the transaction: the request is queued for sending, Timer E (unreliable
    /// transports only) and Timer F are started.
    pub fn new(
        now: Instant,
        request: Request,
        reliable: bool,
        config: TimerConfig,
    ) -> ClientNonInvite {
        let mut txn = ClientNonInvite {
            state: ClientNonInviteState::Trying,
            request,
            reliable,
            config,
            timers: TimerTable::default(),
            interval_e: config.t1,
            out: Outbox::default(),
        };
        txn.out
            .transmits
            .push_back(Message::Request(txn.request.clone()));
        // RFC 3261 §17.1.2.2: for an unreliable transport, Timer E MUST be set to T1.
        if !reliable {
            txn.timers.set(Timer::E, now + txn.interval_e);
        }
        // RFC 3261 §17.1.2.2: Timer F MUST be set to 64*T1 for all transports.
        txn.timers.set(Timer::F, now + config.t1_x64());
        txn
    }

    pub fn state(&self) -> ClientNonInviteState {
        self.state
    }

    /// The request this transaction sends.
    pub fn request(&self) -> &Request {
        &self.request
    }

    pub fn is_terminated(&self) -> bool {
        self.state == ClientNonInviteState::Terminated
    }

    /// A response matched to this transaction (§17.1.3).
    pub fn handle_response(&mut self, now: Instant, response: Response) {
        use ClientNonInviteState::*;
        match self.state {
            Trying | Proceeding if response.status.is_provisional() => {
                // RFC 3261 §17.1.2.2: a provisional response moves to Proceeding and MUST be
                // passed to the TU.
                self.state = Proceeding;
                self.out
                    .events
                    .push_back(TransactionEvent::Response(response));
            }
            Trying | Proceeding => {
                // RFC 3261 §17.1.2.2: a final response moves to Completed and MUST be passed
                // to the TU; Timer K is T4 unreliable, zero reliable.
                self.timers.stop_all();
                self.state = Completed;
                self.out
                    .events
                    .push_back(TransactionEvent::Response(response));
                let wait = self.config.t4_unless_reliable(self.reliable);
                if wait.is_zero() {
                    self.terminate();
                } else {
                    self.timers.set(Timer::K, now + wait);
                }
            }
            // RFC 3261 §17.1.2.2: Completed buffers response retransmissions (absorbed).
            Completed | Terminated => {}
        }
    }

    /// Advances the timers that are due.
    pub fn handle_timeout(&mut self, now: Instant) {
        use ClientNonInviteState::*;
        while let Some(timer) = self.timers.pop_expired(now) {
            match (timer, self.state) {
                (Timer::E, Trying) => {
                    // RFC 3261 §17.1.2.2: retransmit, and reset E to MIN(2*E, T2).
                    self.out
                        .transmits
                        .push_back(Message::Request(self.request.clone()));
                    self.interval_e = self.config.backoff_capped(self.interval_e);
                    self.timers.set(Timer::E, now + self.interval_e);
                }
                (Timer::E, Proceeding) => {
                    // RFC 3261 §17.1.2.2: in Proceeding, retransmit and reset E to T2.
                    self.out
                        .transmits
                        .push_back(Message::Request(self.request.clone()));
                    self.interval_e = self.config.t2;
                    self.timers.set(Timer::E, now + self.interval_e);
                }
                (Timer::F, Trying | Proceeding) => {
                    // RFC 3261 §17.1.2.2: Timer F fires: inform the TU of the timeout.
                    self.out.events.push_back(TransactionEvent::Timeout);
                    self.terminate();
                }
                (Timer::K, Completed) => self.terminate(),
                _ => {}
            }
        }
    }

    /// The transport could not send the request (§17.1.2.2, §17.1.4).
    pub fn handle_transport_error(&mut self, _now: Instant) {
        if self.state != ClientNonInviteState::Terminated {
            self.out.events.push_back(TransactionEvent::TransportError);
            self.terminate();
        }
    }

    outputs!();

    fn terminate(&mut self) {
        self.timers.stop_all();
        self.state = ClientNonInviteState::Terminated;
        self.out.events.push_back(TransactionEvent::Terminated);
    }
}
