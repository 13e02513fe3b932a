//! Two transaction layers, a UAC and a UAS, joined by a zero-latency virtual network that may
//! lose messages. `step` advances virtual time to the earlier deadline of the two, like
//! quinn's `Pair::step`. Every message crosses the wire as bytes (serialized and parsed).

use pbx_sip::message::{Message, Request};
use pbx_sip::parse::parse_message;
use pbx_sip::status::StatusCode;
use pbx_sip::transaction::{
    RequestDisposition, ResponseDisposition, TimerConfig, TransactionEvent, TransactionKey,
    TransactionLayer,
};
use std::time::Instant;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Side {
    Uac,
    Uas,
}

/// Decides the fate of each message: `true` loses it.
pub type Loss = Box<dyn FnMut(Side, &Message) -> bool>;

pub struct Pair {
    pub base: Instant,
    pub now: Instant,
    pub uac: TransactionLayer<Side>,
    pub uas: TransactionLayer<Side>,
    pub reliable: bool,
    pub loss: Loss,
    /// The UAS TU's answer to each new request (`None`: the test answers itself).
    pub answer: fn(&Request) -> Option<u16>,
    /// Whether the UAC TU sends an ACK for each 2xx it is given (§13.2.2.4).
    pub ack_2xx: bool,
    /// Every message sent, lost or not: (ms, sender, message).
    pub wire: Vec<(u64, Side, Message)>,
    pub uas_requests: Vec<(u64, RequestDisposition)>,
    pub uac_responses: Vec<(u64, ResponseDisposition)>,
    pub uac_events: Vec<(u64, TransactionKey, TransactionEvent)>,
    pub uas_events: Vec<(u64, TransactionKey, TransactionEvent)>,
}

impl Pair {
    pub fn new(reliable: bool) -> Pair {
        let base = super::base();
        Pair {
            base,
            now: base,
            uac: TransactionLayer::new(TimerConfig::default()),
            uas: TransactionLayer::new(TimerConfig::default()),
            reliable,
            loss: Box::new(|_, _| false),
            answer: |_| None,
            ack_2xx: true,
            wire: Vec::new(),
            uas_requests: Vec::new(),
            uac_responses: Vec::new(),
            uac_events: Vec::new(),
            uas_events: Vec::new(),
        }
    }

    pub fn elapsed_ms(&self) -> u64 {
        u64::try_from(self.now.duration_since(self.base).as_millis()).unwrap_or(u64::MAX)
    }

    /// Moves messages between the two until nothing is in flight, letting both TUs react.
    pub fn deliver(&mut self) {
        loop {
            let mut moved = false;
            while let Some(t) = self.uac.poll_transmit() {
                moved = true;
                assert_eq!(t.to, Side::Uas);
                self.carry(Side::Uac, t.message);
            }
            while let Some(t) = self.uas.poll_transmit() {
                moved = true;
                assert_eq!(t.to, Side::Uac);
                self.carry(Side::Uas, t.message);
            }
            while let Some((key, event)) = self.uac.poll_event() {
                moved = true;
                self.uac_tu(&key, &event);
                self.uac_events.push((self.elapsed_ms(), key, event));
            }
            while let Some((key, event)) = self.uas.poll_event() {
                self.uas_events.push((self.elapsed_ms(), key, event));
            }
            if !moved {
                return;
            }
        }
    }

    fn carry(&mut self, from: Side, message: Message) {
        let at = self.elapsed_ms();
        self.wire.push((at, from, message.clone()));
        if (self.loss)(from, &message) {
            return;
        }
        let received = parse_message(message.to_bytes()).expect("what we send parses");
        match (from, received) {
            (Side::Uac, Message::Request(request)) => {
                let disposition = self
                    .uas
                    .handle_request(self.now, request, Side::Uac, self.reliable)
                    .expect("keyable request");
                self.uas_tu(&disposition);
                self.uas_requests.push((at, disposition));
            }
            (Side::Uas, Message::Response(response)) => {
                let disposition = self.uac.handle_response(self.now, response);
                self.uac_responses.push((at, disposition));
            }
            (side, message) => panic!("{side:?} sent an unexpected {message:?}"),
        }
    }

    fn uas_tu(&mut self, disposition: &RequestDisposition) {
        let (key, request) = match disposition {
            RequestDisposition::New { key, request } => (key, request),
            RequestDisposition::CancelFor { key, request, .. } => (key, request),
            _ => return,
        };
        if let Some(status) = (self.answer)(request) {
            let response = super::response(request, status, Some("uas-tag"));
            self.uas.respond(self.now, key, response).expect("respond");
        }
    }

    fn uac_tu(&mut self, key: &TransactionKey, event: &TransactionEvent) {
        if let TransactionEvent::Response(response) = event
            && self.ack_2xx
            && response.status.is_success()
            && key.method().as_str() == "INVITE"
        {
            let Some(Message::Request(invite)) =
                self.wire.iter().find_map(|(_, side, m)| match m {
                    Message::Request(r) if *side == Side::Uac && r.method.as_str() == "INVITE" => {
                        Some(Message::Request(r.clone()))
                    }
                    _ => None,
                })
            else {
                return;
            };
            // §13.2.2.4: the ACK of a 2xx is a new transaction of its own (new branch).
            let mut ack = super::ack_for(&invite, "uas-tag");
            let via = format!(
                "SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bKack-{}",
                key.branch().unwrap_or("")
            );
            ack.headers.set(pbx_sip::message::HeaderName::VIA, via);
            self.uac.send_stateless(Side::Uas, Message::Request(ack));
        }
    }

    /// Runs the earlier deadline of the two layers if it is not after `until_ms`; `false`
    /// when there is none.
    pub fn step(&mut self, until_ms: u64) -> bool {
        self.deliver();
        let next = match (self.uac.poll_timeout(), self.uas.poll_timeout()) {
            (Some(a), Some(b)) => a.min(b),
            (Some(a), None) | (None, Some(a)) => a,
            (None, None) => return false,
        };
        if next > self.base + super::ms(until_ms) {
            return false;
        }
        assert!(next >= self.now, "deadline in the past");
        self.now = next;
        self.uac.handle_timeout(next);
        self.uas.handle_timeout(next);
        self.deliver();
        true
    }

    pub fn run_until(&mut self, until_ms: u64) {
        while self.step(until_ms) {}
        self.now = self.now.max(self.base + super::ms(until_ms));
    }

    pub fn run_to_end(&mut self) {
        while self.step(u64::MAX / 4) {}
    }

    /// Times and what the UAC sent (method) or the UAS sent (status), in order.
    pub fn wire_summary(&self) -> Vec<(u64, String)> {
        self.wire
            .iter()
            .map(|(at, _, m)| {
                let what = match m {
                    Message::Request(r) => r.method.as_str().to_owned(),
                    Message::Response(r) => r.status.code().to_string(),
                };
                (*at, what)
            })
            .collect()
    }

    /// The final responses the UAC's TU got, by status.
    pub fn uac_statuses(&self) -> Vec<StatusCode> {
        self.uac_events
            .iter()
            .filter_map(|(_, _, e)| match e {
                TransactionEvent::Response(r) => Some(r.status),
                _ => None,
            })
            .collect()
    }
}
