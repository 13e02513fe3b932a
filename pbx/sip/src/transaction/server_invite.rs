//! The INVITE server transaction (RFC 3261 §17.2.1, with the RFC 6026 "Accepted" state).
//!
//! ```text
//!  Proceeding ──300-699 from TU──► Completed ──ACK──► Confirmed ──Timer I──► Terminated
//!     │                               └──Timer H (inform TU)─────────────────►┘  ▲
//!     └──2xx from TU──► Accepted ──Timer L──────────────────────────────────────┘
//! ```
//!
//! 100 Trying: the transaction sends it itself when the TU has not sent a provisional or final
//! response within [`TimerConfig::trying`] (200 ms by default, §17.2.1), so a TU that answers at
//! once (a 401 challenge, a 200 to a re-INVITE) costs no extra datagram. A retransmitted INVITE
//! arriving before then is answered with the 100 at once: the client is evidently waiting.

use super::build::trying_for;
use super::kept::KeptResponse;
use super::timer::{Timer, TimerConfig, TimerTable};
use super::{Outbox, TransactionEvent, TxnError};
use crate::message::{Message, Request, Response};
use crate::method::Method;
use std::time::{Duration, Instant};

/// The states of figure 7 of RFC 3261 plus "Accepted" from RFC 6026 §8.7.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ServerInviteState {
    Proceeding,
    Completed,
    Confirmed,
    Accepted,
    Terminated,
}

/// An INVITE server transaction. Created when a new INVITE arrives; the TU answers it with
/// [`respond`](Self::respond).
#[derive(Debug)]
pub struct ServerInvite {
    state: ServerInviteState,
    reliable: bool,
    config: TimerConfig,
    timers: TimerTable,
    /// The current Timer G interval.
    interval_g: Duration,
    /// The 100 Trying to send if the TU is slow.
    trying: Option<Response>,
    /// The latest response sent: re-sent for a retransmitted INVITE and by Timer G. Not
    /// kept for a 2xx, which only the TU re-sends (RFC 6026 §8.7).
    last: Option<KeptResponse>,
    out: Outbox,
}

impl ServerInvite {
    /// Starts the transaction for `request` (an INVITE), in Proceeding.
    pub fn new(
        now: Instant,
        request: &Request,
        reliable: bool,
        config: TimerConfig,
    ) -> ServerInvite {
        let mut txn = ServerInvite {
            state: ServerInviteState::Proceeding,
            reliable,
            config,
            timers: TimerTable::default(),
            interval_g: config.t1,
            trying: Some(trying_for(request)),
            last: None,
            out: Outbox::default(),
        };
        // RFC 3261 §17.2.1: the server transaction MUST generate a 100 (Trying) unless it
        // knows the TU will generate a provisional or final response within 200 ms.
        if config.trying.is_zero() {
            txn.send_trying();
        } else {
            txn.timers.set(Timer::Trying, now + config.trying);
        }
        txn
    }

    pub fn state(&self) -> ServerInviteState {
        self.state
    }

    pub fn is_terminated(&self) -> bool {
        self.state == ServerInviteState::Terminated
    }

    /// A request matched to this transaction: a retransmitted INVITE or an ACK. Returns the
    /// request when the TU must see it (an ACK in Accepted, RFC 6026 §8.7), `None` when the
    /// transaction absorbed it.
    pub fn handle_request(&mut self, now: Instant, request: Request) -> Option<Request> {
        use ServerInviteState::*;
        if request.method == Method::ACK {
            match self.state {
                Completed => {
                    // RFC 3261 §17.2.1: an ACK in Completed MUST move to Confirmed; Timer G is
                    // ignored there, Timer I is T4 unreliable, zero reliable.
                    self.timers.stop_all();
                    self.state = Confirmed;
                    let wait = self.config.t4_unless_reliable(self.reliable);
                    if wait.is_zero() {
                        self.terminate();
                    } else {
                        self.timers.set(Timer::I, now + wait);
                    }
                    None
                }
                // RFC 6026 §8.7: an ACK received in Accepted is passed up to the TU.
                Accepted => Some(request),
                // RFC 3261 §17.2.1: Confirmed absorbs further ACKs.
                Proceeding | Confirmed | Terminated => None,
            }
        } else {
            match self.state {
                Proceeding => {
                    // RFC 3261 §17.2.1: a retransmitted INVITE in Proceeding: the most recent
                    // provisional response MUST be passed to the transport again.
                    match self.last.as_ref().map(KeptResponse::message) {
                        Some(Some(again)) => self.out.transmits.push_back(again),
                        Some(None) => {}
                        None => self.send_trying(),
                    }
                }
                Completed => {
                    // RFC 3261 §17.2.1: in Completed the server SHOULD re-send the final
                    // response for a request retransmission.
                    if let Some(again) = self.last.as_ref().and_then(KeptResponse::message) {
                        self.out.transmits.push_back(again);
                    }
                }
                // RFC 6026 §8.7: retransmitted INVITEs in Accepted are absorbed, not passed up;
                // 2xx retransmission is the TU's job (RFC 3261 §13.3.1.4).
                Confirmed | Accepted | Terminated => {}
            }
            None
        }
    }

    /// A response from the TU.
    pub fn respond(&mut self, now: Instant, response: Response) -> Result<(), TxnError> {
        use ServerInviteState::*;
        let status = response.status;
        match self.state {
            Proceeding if status.is_provisional() => {
                // RFC 3261 §17.2.1: provisional responses from the TU are passed to the
                // transport; the transaction stays in Proceeding.
                self.timers.stop(Timer::Trying);
                self.send(response);
            }
            Proceeding if status.is_success() => {
                // RFC 6026 §8.7: a 2xx from the TU is sent and the transaction moves to
                // Accepted with Timer L = 64*T1.
                self.timers.stop_all();
                self.send(response);
                self.state = Accepted;
                self.timers.set(Timer::L, now + self.config.t1_x64());
            }
            Proceeding => {
                // RFC 3261 §17.2.1: a 300-699 response moves to Completed; Timer G is set to
                // T1 for unreliable transports, Timer H to 64*T1 for all.
                self.timers.stop_all();
                self.send(response);
                self.state = Completed;
                if !self.reliable {
                    self.timers.set(Timer::G, now + self.interval_g);
                }
                self.timers.set(Timer::H, now + self.config.t1_x64());
            }
            // RFC 6026 §8.7: 2xx retransmissions from the TU in Accepted go to the transport.
            Accepted if status.is_success() => self.send(response),
            // RFC 3261 §17.2.1: other final responses in Completed MUST be discarded.
            Completed | Confirmed | Accepted => return Err(TxnError::FinalResponseSent),
            Terminated => return Err(TxnError::Terminated),
        }
        Ok(())
    }

    /// Advances the timers that are due.
    pub fn handle_timeout(&mut self, now: Instant) {
        use ServerInviteState::*;
        while let Some(timer) = self.timers.pop_expired(now) {
            match (timer, self.state) {
                (Timer::Trying, Proceeding) if self.last.is_none() => self.send_trying(),
                (Timer::G, Completed) => {
                    // RFC 3261 §17.2.1: Timer G fires: re-send the response and reset G to
                    // MIN(2*G, T2).
                    if let Some(again) = self.last.as_ref().and_then(KeptResponse::message) {
                        self.out.transmits.push_back(again);
                    }
                    self.interval_g = self.config.backoff_capped(self.interval_g);
                    self.timers.set(Timer::G, now + self.interval_g);
                }
                (Timer::H, Completed) => {
                    // RFC 3261 §17.2.1: Timer H fires in Completed: no ACK came; the
                    // transaction MUST terminate and MUST tell the TU of the failure.
                    self.out.events.push_back(TransactionEvent::Timeout);
                    self.terminate();
                }
                (Timer::I, Confirmed) | (Timer::L, Accepted) => self.terminate(),
                _ => {}
            }
        }
    }

    /// The transport could not send a response (§17.2.4). The TU is told; the transaction
    /// terminates, except in Accepted, where the 2xx and its retransmissions belong to the TU
    /// and the transaction must go on absorbing INVITE retransmissions (RFC 6026 §8.7).
    pub fn handle_transport_error(&mut self, _now: Instant) {
        match self.state {
            ServerInviteState::Terminated => {}
            ServerInviteState::Accepted => {
                self.out.events.push_back(TransactionEvent::TransportError);
            }
            _ => {
                self.out.events.push_back(TransactionEvent::TransportError);
                self.terminate();
            }
        }
    }

    outputs!();

    fn send_trying(&mut self) {
        self.timers.stop(Timer::Trying);
        if let Some(trying) = self.trying.take() {
            self.send(trying);
        }
    }

    fn send(&mut self, response: Response) {
        // Once anything is sent, the 100 Trying is never needed (it holds the INVITE's
        // datagram through its copied headers).
        self.trying = None;
        self.last = (!response.status.is_success()).then(|| KeptResponse::new(&response));
        self.out.transmits.push_back(Message::Response(response));
    }

    fn terminate(&mut self) {
        self.timers.stop_all();
        self.trying = None;
        self.last = None;
        self.state = ServerInviteState::Terminated;
        self.out.events.push_back(TransactionEvent::Terminated);
    }
}
