//! Shared by the tests/transaction_*.rs files: message builders and a virtual-time driver
//! that steps one machine to its next deadline and records what it sends, like quinn's
//! `Pair::step`.
#![allow(dead_code)]

pub mod pair;

use bytes::Bytes;
use pbx_sip::message::{HeaderName, Message, Request, Response};
use pbx_sip::parse::parse_message;
use pbx_sip::status::StatusCode;
use pbx_sip::transaction::{
    ClientInvite, ClientNonInvite, ServerInvite, ServerNonInvite, TransactionEvent,
};
use std::time::{Duration, Instant};

/// The one real instant the tests read; everything after is virtual.
pub fn base() -> Instant {
    #[allow(clippy::disallowed_methods)]
    Instant::now()
}

pub fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// Parses `text` (lines ending in `\n`) as the wire would carry it.
pub fn parse(text: &str) -> Message {
    let wire = text.replace('\n', "\r\n");
    match parse_message(Bytes::from(wire)) {
        Ok(message) => message,
        Err(e) => panic!("test message does not parse: {e}\n{text}"),
    }
}

pub fn parse_request(text: &str) -> Request {
    match parse(text) {
        Message::Request(r) => r,
        Message::Response(_) => panic!("not a request"),
    }
}

pub fn parse_response(text: &str) -> Response {
    match parse(text) {
        Message::Response(r) => r,
        Message::Request(_) => panic!("not a response"),
    }
}

/// A request from alice at 10.0.0.1 to bob, through a proxy.
pub fn request(method: &str, branch: &str, cseq: u32) -> Request {
    parse_request(&format!(
        "{method} sip:bob@example.com SIP/2.0
Via: SIP/2.0/UDP 10.0.0.1:5060;branch={branch};rport
Max-Forwards: 70
Route: <sip:proxy.example.com;lr>
From: \"Alice\" <sip:alice@example.com>;tag=from1
To: <sip:bob@example.com>
Call-ID: call-1@10.0.0.1
CSeq: {cseq} {method}
Content-Length: 0

"
    ))
}

pub fn invite(branch: &str) -> Request {
    request("INVITE", branch, 1)
}

/// The ACK a UAC sends for a non-2xx final response to `invite` (same branch, §17.1.1.3).
pub fn ack_for(invite: &Request, to_tag: &str) -> Request {
    let via = invite.headers.get_str(&HeaderName::VIA).unwrap_or_default();
    let cseq = invite.headers.cseq().map(|c| c.seq).unwrap_or_default();
    parse_request(&format!(
        "ACK {uri} SIP/2.0
Via: {via}
Max-Forwards: 70
From: \"Alice\" <sip:alice@example.com>;tag=from1
To: <sip:bob@example.com>;tag={to_tag}
Call-ID: call-1@10.0.0.1
CSeq: {cseq} ACK

",
        uri = invite.uri
    ))
}

/// A response to `request` (§8.2.6.2), built as the TU would.
pub fn response(request: &Request, status: u16, to_tag: Option<&str>) -> Response {
    Response::for_request(request, StatusCode(status), to_tag)
}

/// The four machines behind one face, for the driver.
pub trait Machine {
    fn poll_transmit(&mut self) -> Option<Message>;
    fn poll_event(&mut self) -> Option<TransactionEvent>;
    fn poll_timeout(&self) -> Option<Instant>;
    fn handle_timeout(&mut self, now: Instant);
    fn is_terminated(&self) -> bool;
}

macro_rules! machine {
    ($($t:ty),*) => {$(
        impl Machine for $t {
            fn poll_transmit(&mut self) -> Option<Message> { <$t>::poll_transmit(self) }
            fn poll_event(&mut self) -> Option<TransactionEvent> { <$t>::poll_event(self) }
            fn poll_timeout(&self) -> Option<Instant> { <$t>::poll_timeout(self) }
            fn handle_timeout(&mut self, now: Instant) { <$t>::handle_timeout(self, now) }
            fn is_terminated(&self) -> bool { <$t>::is_terminated(self) }
        }
    )*};
}
machine!(ClientInvite, ClientNonInvite, ServerInvite, ServerNonInvite);

/// Drives one machine in virtual time, recording each transmit and event with the virtual
/// millisecond at which it came out.
pub struct Driver<M> {
    pub machine: M,
    pub base: Instant,
    pub now: Instant,
    pub sent: Vec<(u64, Message)>,
    pub events: Vec<(u64, TransactionEvent)>,
}

impl<M: Machine> Driver<M> {
    pub fn new(base: Instant, machine: M) -> Driver<M> {
        let mut driver = Driver {
            machine,
            base,
            now: base,
            sent: Vec::new(),
            events: Vec::new(),
        };
        driver.collect();
        driver
    }

    pub fn elapsed_ms(&self) -> u64 {
        u64::try_from(self.now.duration_since(self.base).as_millis()).unwrap_or(u64::MAX)
    }

    fn collect(&mut self) {
        let at = self.elapsed_ms();
        while let Some(message) = self.machine.poll_transmit() {
            self.sent.push((at, message));
        }
        while let Some(event) = self.machine.poll_event() {
            self.events.push((at, event));
        }
    }

    /// Steps from deadline to deadline up to `until_ms`, then sets the clock there.
    pub fn run_until(&mut self, until_ms: u64) {
        let until = self.base + ms(until_ms);
        while let Some(deadline) = self.machine.poll_timeout() {
            if deadline > until {
                break;
            }
            assert!(deadline >= self.now, "a deadline in the past");
            self.now = deadline;
            self.machine.handle_timeout(deadline);
            self.collect();
        }
        self.now = self.now.max(until);
    }

    /// Runs until the machine has no deadline left; the clock stays at the last one.
    pub fn run_to_end(&mut self) {
        while let Some(deadline) = self.machine.poll_timeout() {
            assert!(deadline >= self.now, "a deadline in the past");
            self.now = deadline;
            self.machine.handle_timeout(deadline);
            self.collect();
        }
    }

    /// Applies an input at the current virtual time.
    pub fn input<R>(&mut self, f: impl FnOnce(&mut M, Instant) -> R) -> R {
        let result = f(&mut self.machine, self.now);
        self.collect();
        result
    }

    /// The virtual times at which messages went out.
    pub fn send_times(&self) -> Vec<u64> {
        self.sent.iter().map(|(at, _)| *at).collect()
    }

    /// Forgets what was recorded so far.
    pub fn clear(&mut self) {
        self.sent.clear();
        self.events.clear();
    }

    pub fn response_events(&self) -> Vec<u16> {
        self.events
            .iter()
            .filter_map(|(_, e)| match e {
                TransactionEvent::Response(r) => Some(r.status.code()),
                _ => None,
            })
            .collect()
    }

    pub fn has_event(&self, f: impl Fn(&TransactionEvent) -> bool) -> bool {
        self.events.iter().any(|(_, e)| f(e))
    }
}

pub fn is_timeout(e: &TransactionEvent) -> bool {
    matches!(e, TransactionEvent::Timeout)
}

pub fn is_terminated(e: &TransactionEvent) -> bool {
    matches!(e, TransactionEvent::Terminated)
}

pub fn method_of(message: &Message) -> Option<&str> {
    match message {
        Message::Request(r) => Some(r.method.as_str()),
        Message::Response(_) => None,
    }
}

pub fn status_of(message: &Message) -> Option<u16> {
    match message {
        Message::Response(r) => Some(r.status.code()),
        Message::Request(_) => None,
    }
}
