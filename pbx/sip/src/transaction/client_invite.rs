//! The INVITE client transaction (RFC 3261 §17.1.1, with the RFC 6026 "Accepted" state).
//!
//! ```text
//!  Calling ──1xx──► Proceeding ──300-699 (send ACK)──► Completed ──Timer D──► Terminated
//!     │  └─────────────300-699 (send ACK)────────────────►┘                      ▲
//!     └──2xx──► Accepted ──Timer M────────────────────────────────────────────────┘
//!  Calling ──Timer B / transport error──► Terminated
//! ```

use super::build::ack_for;
use super::timer::{Timer, TimerConfig, TimerTable};
use super::{Outbox, TransactionEvent};
use crate::message::{Message, Request, Response};
use std::time::{Duration, Instant};

/// The states of figure 5 of RFC 3261 plus "Accepted" from RFC 6026 §8.4.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClientInviteState {
    Calling,
    Proceeding,
    Completed,
    Accepted,
    Terminated,
}

/// An INVITE client transaction. Created with the INVITE, which it sends at once.
#[derive(Debug)]
pub struct ClientInvite {
    state: ClientInviteState,
    /// The INVITE: retransmitted by Timer A, and the model of the ACK for a non-2xx response.
    request: Request,
    /// The ACK built for the first non-2xx final response, re-sent for each retransmission.
    ack: Option<Request>,
    reliable: bool,
    config: TimerConfig,
    timers: TimerTable,
    /// The current Timer A interval.
    interval_a: Duration,
    out: Outbox,
}

impl ClientInvite {
    /// Starts the transaction: the INVITE is queued for sending, Timer A (unreliable transports
    /// only) and Timer B are started.
    pub fn new(
        now: Instant,
        request: Request,
        reliable: bool,
        config: TimerConfig,
    ) -> ClientInvite {
        let mut txn = ClientInvite {
            state: ClientInviteState::Calling,
            request,
            ack: None,
            reliable,
            config,
            timers: TimerTable::default(),
            interval_a: config.t1,
            out: Outbox::default(),
        };
        txn.out
            .transmits
            .push_back(Message::Request(txn.request.clone()));
        // RFC 3261 §17.1.1.2: for an unreliable transport, Timer A MUST be set to T1.
        if !reliable {
            txn.timers.set(Timer::A, now + txn.interval_a);
        }
        // RFC 3261 §17.1.1.2: for any transport, Timer B MUST be set to 64*T1.
        txn.timers.set(Timer::B, now + config.t1_x64());
        txn
    }

    pub fn state(&self) -> ClientInviteState {
        self.state
    }

    /// The INVITE this transaction sends.
    pub fn request(&self) -> &Request {
        &self.request
    }

    pub fn is_terminated(&self) -> bool {
        self.state == ClientInviteState::Terminated
    }

    /// A response matched to this transaction (§17.1.3).
    pub fn handle_response(&mut self, now: Instant, response: Response) {
        use ClientInviteState::*;
        let status = response.status;
        match self.state {
            Calling | Proceeding if status.is_provisional() => {
                // RFC 3261 §17.1.1.2: a provisional response moves Calling to Proceeding,
                // where the request SHOULD NOT be retransmitted; it is passed to the TU.
                self.timers.stop(Timer::A);
                self.timers.stop(Timer::B);
                self.state = Proceeding;
                self.out
                    .events
                    .push_back(TransactionEvent::Response(response));
            }
            Calling | Proceeding if status.is_success() => {
                // RFC 6026 §8.4: a 2xx moves to Accepted (not Terminated), passed to the TU,
                // and Timer M is set to 64*T1.
                self.timers.stop_all();
                self.state = Accepted;
                self.timers.set(Timer::M, now + self.config.t1_x64());
                self.out
                    .events
                    .push_back(TransactionEvent::Response(response));
            }
            Calling | Proceeding => {
                // RFC 3261 §17.1.1.2: 300-699 MUST cause a transition to Completed; the
                // response MUST be passed up to the TU and an ACK generated.
                self.timers.stop_all();
                let ack = ack_for(&self.request, &response);
                self.out.transmits.push_back(Message::Request(ack.clone()));
                self.ack = Some(ack);
                self.out
                    .events
                    .push_back(TransactionEvent::Response(response));
                self.state = Completed;
                // RFC 3261 §17.1.1.2: Timer D, at least 32 s unreliable, zero reliable.
                self.wait_or_terminate(now, Timer::D, self.config.timer_d(self.reliable));
            }
            Completed => {
                // RFC 3261 §17.1.1.2: any retransmission of the final response received in
                // Completed MUST cause the ACK to be re-passed to the transport, and the
                // response MUST NOT be passed up to the TU.
                match &self.ack {
                    Some(ack) if status.is_final() && !status.is_success() => {
                        self.out.transmits.push_back(Message::Request(ack.clone()));
                    }
                    _ => {}
                }
            }
            Accepted => {
                // RFC 6026 §8.4: any 2xx received in Accepted MUST be passed up to the TU (a
                // retransmission, or another fork: the TU sends each its ACK).
                if status.is_success() {
                    self.out
                        .events
                        .push_back(TransactionEvent::Response(response));
                }
            }
            Terminated => {}
        }
    }

    /// Advances the timers that are due.
    pub fn handle_timeout(&mut self, now: Instant) {
        while let Some(timer) = self.timers.pop_expired(now) {
            match timer {
                Timer::A if self.state == ClientInviteState::Calling => {
                    // RFC 3261 §17.1.1.2: when Timer A fires the client transaction MUST
                    // retransmit the request and reset the timer with a value of 2*T1 (it
                    // doubles on every firing).
                    self.out
                        .transmits
                        .push_back(Message::Request(self.request.clone()));
                    self.interval_a = self.interval_a.saturating_mul(2);
                    self.timers.set(Timer::A, now + self.interval_a);
                }
                Timer::B if self.state == ClientInviteState::Calling => {
                    // RFC 3261 §17.1.1.2: Timer B fires in Calling: inform the TU of the
                    // timeout; the transaction MUST NOT generate an ACK.
                    self.out.events.push_back(TransactionEvent::Timeout);
                    self.terminate();
                }
                Timer::D | Timer::M => self.terminate(),
                _ => {}
            }
        }
    }

    /// The transport could not send the INVITE or the ACK (§17.1.1.2, §17.1.4).
    pub fn handle_transport_error(&mut self, _now: Instant) {
        if self.state != ClientInviteState::Terminated {
            self.out.events.push_back(TransactionEvent::TransportError);
            self.terminate();
        }
    }

    outputs!();

    /// Starts `timer`, or terminates now when its value is zero (reliable transports).
    fn wait_or_terminate(&mut self, now: Instant, timer: Timer, wait: Duration) {
        if wait.is_zero() {
            self.terminate();
        } else {
            self.timers.set(timer, now + wait);
        }
    }

    fn terminate(&mut self) {
        self.timers.stop_all();
        self.state = ClientInviteState::Terminated;
        self.out.events.push_back(TransactionEvent::Terminated);
    }
}
