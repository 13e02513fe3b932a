//! A virtual-time world for one call: the PBX's transaction layer and [`Call`], a caller and
//! the devices of the called extension, each a name. Messages the PBX sends are collected
//! per destination; the test answers them as the phone would.
#![allow(dead_code)]

use bytes::Bytes;
use pbx_calls::{
    Call, CallConfig, CallOutput, CallRecord, CallSetup, Device, Disposition, Endpoint, MediaSetup,
    Route,
};
use pbx_sip::message::{HeaderName, Message, Request, Response};
use pbx_sip::method::Method;
use pbx_sip::parse::parse_message;
use pbx_sip::status::StatusCode;
use pbx_sip::transaction::{RequestDisposition, TransactionKey, TransactionLayer};
use std::collections::HashMap;
use std::time::{Duration, Instant};

pub type Party = &'static str;

pub fn base() -> Instant {
    #[allow(clippy::disallowed_methods)]
    Instant::now()
}

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

pub const OFFER: &str = "v=0
o=alice 1 1 IN IP4 10.0.0.1
s=-
c=IN IP4 10.0.0.1
t=0 0
m=audio 4000 RTP/AVP 0 8 101
a=rtpmap:0 PCMU/8000
a=rtpmap:8 PCMA/8000
a=rtpmap:101 telephone-event/8000
a=fmtp:101 0-16
a=sendrecv
";

/// The caller's INVITE (from extension 1001 at 10.0.0.1 to 1000).
pub fn caller_invite(sdp: Option<&str>, max_forwards: u32) -> Request {
    let body = sdp.unwrap_or("");
    let content_type = if body.is_empty() {
        ""
    } else {
        "Content-Type: application/sdp\n"
    };
    let mut request = parse_request(&format!(
        "INVITE sip:1000@pbx.test SIP/2.0
Via: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bKcaller1;rport
Max-Forwards: {max_forwards}
From: \"Alice\" <sip:1001@pbx.test>;tag=alice
To: <sip:1000@pbx.test>
Call-ID: caller-call@10.0.0.1
CSeq: 1 INVITE
Contact: <sip:1001@10.0.0.1:5060>
{content_type}Content-Length: 0

"
    ));
    request.body = Bytes::from(body.replace('\n', "\r\n"));
    request
}

pub fn endpoint(name: Party) -> Endpoint<Party> {
    Endpoint {
        peer: name,
        reliable: false,
        transport: "UDP",
        local: "192.0.2.1:5060".parse().unwrap_or_else(|_| unreachable!()),
        secure: false,
    }
}

pub fn device(name: Party) -> Device<Party> {
    Device {
        contact: format!("sip:1000@{name}.example:5060")
            .parse()
            .unwrap_or_else(|_| unreachable!()),
        endpoint: endpoint(name),
    }
}

/// A device registered over TLS (its SDP may carry SRTP keys, RFC 4568 §8.3).
pub fn device_tls(name: Party) -> Device<Party> {
    let mut device = device(name);
    device.contact = format!("sip:1000@{name}.example:5061;transport=tls")
        .parse()
        .unwrap_or_else(|_| unreachable!());
    device.endpoint.transport = "TLS";
    device.endpoint.reliable = true;
    device.endpoint.secure = true;
    device.endpoint.local = "192.0.2.1:5061".parse().unwrap_or_else(|_| unreachable!());
    device
}

/// Relay ports and the two legs' policies (SDES keys only over TLS).
pub fn media_setup(
    caller: pbx_media::sdp::Encryption,
    callee: pbx_media::sdp::Encryption,
) -> MediaSetup {
    let local = |rtp_port| pbx_media::sdp::LocalEndpoint {
        ip: "192.0.2.1".parse().unwrap_or_else(|_| unreachable!()),
        rtp_port,
    };
    MediaSetup {
        caller: local(10000),
        callee: local(10002),
        caller_encryption: caller,
        callee_encryption: callee,
        allow_keys_in_clear: false,
        session_id: 42,
        dtls_fingerprint: None,
    }
}

pub fn ring(devices: &[Party]) -> Route<Party> {
    Route::Ring {
        devices: devices.iter().map(|d| device(d)).collect(),
        timeout: Duration::from_secs(20),
    }
}

/// The world.
pub struct World {
    pub now: Instant,
    pub layer: TransactionLayer<Party>,
    pub call: Call<Party>,
    /// Everything the PBX sent, in order, with its destination.
    pub sent: Vec<(Party, Message)>,
    pub records: Vec<CallRecord>,
    pub plans: Vec<pbx_media::MediaPlan>,
    pub dial_ends: Vec<pbx_calls::DialEnd>,
    /// Keys the caller sent as SIP INFO to a call the PBX answered.
    pub digits: Vec<char>,
    /// How often a device took over a call the PBX had answered.
    pub connected: usize,
    /// What the call asked of the media to convert DTMF.
    pub dtmf_media: Vec<pbx_calls::DtmfMedia>,
    tracked: Vec<TransactionKey>,
    /// The INVITE each device received, to answer it.
    pub invites: HashMap<Party, Request>,
}

impl World {
    pub fn start(route: Route<Party>) -> World {
        World::start_with(caller_invite(None, 70), route, None)
    }

    /// A call whose failed rounds go back to a dialplan.
    pub fn start_planned(route: Route<Party>) -> World {
        World::start_full(caller_invite(None, 70), route, None, true)
    }

    /// A call with media whose failed rounds go back to a dialplan.
    pub fn start_planned_with(
        invite: Request,
        route: Route<Party>,
        media: Option<MediaSetup>,
    ) -> World {
        World::start_full(invite, route, media, true)
    }

    pub fn start_with(invite: Request, route: Route<Party>, media: Option<MediaSetup>) -> World {
        World::start_full(invite, route, media, false)
    }

    fn start_full(
        invite: Request,
        route: Route<Party>,
        media: Option<MediaSetup>,
        plan_continues: bool,
    ) -> World {
        let now = base();
        let mut layer = TransactionLayer::new(Default::default());
        let (key, invite) = match layer.handle_request(now, invite, "caller", false) {
            Ok(RequestDisposition::New { key, request }) => (key, request),
            other => panic!("INVITE not new: {other:?}"),
        };
        let setup = CallSetup {
            invite_key: key,
            invite,
            caller: endpoint("caller"),
            originator: pbx_calls::Originator::Extension {
                number: "1001".into(),
                name: Some("Alice".into()),
            },
            called_number: "1000".into(),
            domain: "pbx.test".into(),
            callee_call_id: "pbx0-callee".into(),
            route,
            media,
            plan_continues,
            rng: rand::SeedableRng::seed_from_u64(7),
        };
        let call = Call::start(now, &mut layer, setup, CallConfig::default());
        let mut world = World {
            now,
            layer,
            call,
            sent: Vec::new(),
            records: Vec::new(),
            plans: Vec::new(),
            dial_ends: Vec::new(),
            digits: Vec::new(),
            connected: 0,
            dtmf_media: Vec::new(),
            tracked: Vec::new(),
            invites: HashMap::new(),
        };
        world.settle();
        world
    }

    /// Moves messages and events until nothing moves.
    pub fn settle(&mut self) {
        loop {
            let mut moved = false;
            while let Some(output) = self.call.poll_output() {
                moved = true;
                match output {
                    CallOutput::Track(key) => self.tracked.push(key),
                    CallOutput::Record(record) => self.records.push(record),
                    CallOutput::Media(plan) => self.plans.push(plan),
                    CallOutput::DialEnded(end) => self.dial_ends.push(end),
                    CallOutput::Dtmf(digit) => self.digits.push(digit),
                    CallOutput::Connected => self.connected += 1,
                    CallOutput::DtmfMedia(m) => self.dtmf_media.push(m),
                }
            }
            while let Some(transmit) = self.layer.poll_transmit() {
                moved = true;
                if let Message::Request(request) = &transmit.message
                    && request.method == Method::INVITE
                    && !is_in_dialog(request)
                {
                    self.invites.insert(transmit.to, request.clone());
                }
                self.sent.push((transmit.to, transmit.message));
            }
            while let Some((key, event)) = self.layer.poll_event() {
                moved = true;
                if self.tracked.contains(&key) {
                    let now = self.now;
                    self.call.handle_event(now, &mut self.layer, &key, event);
                }
            }
            if !moved {
                break;
            }
        }
    }

    /// Advances virtual time to `at`, running every deadline on the way.
    pub fn advance(&mut self, by: Duration) {
        let end = self.now + by;
        loop {
            let next = [self.layer.poll_timeout(), self.call.poll_timeout()]
                .into_iter()
                .flatten()
                .min();
            match next {
                Some(at) if at <= end => {
                    self.now = at.max(self.now);
                    let now = self.now;
                    self.layer.handle_timeout(now);
                    self.call.handle_timeout(now, &mut self.layer);
                    self.settle();
                }
                _ => break,
            }
        }
        self.now = end;
    }

    /// A device answers its INVITE with `status` (and a To tag per device).
    pub fn device_answers(&mut self, device: Party, status: u16, body: Option<&str>) {
        let invite = self
            .invites
            .get(device)
            .cloned()
            .expect("the device got an INVITE");
        let tag = format!("tag-{device}");
        let mut response = Response::for_request(&invite, StatusCode(status), Some(&tag));
        if (101..300).contains(&status) {
            response.headers.push(
                HeaderName::CONTACT,
                format!("<sip:1000@{device}.example:5060>"),
            );
        }
        if let Some(body) = body {
            response
                .headers
                .push(HeaderName::CONTENT_TYPE, "application/sdp");
            response.body = Bytes::from(body.replace('\n', "\r\n"));
        }
        self.deliver_response(response);
    }

    pub fn deliver_response(&mut self, response: Response) {
        let now = self.now;
        let _ = self.layer.handle_response(now, response);
        self.settle();
    }

    /// A request arrives at the PBX from `from`.
    pub fn deliver_request(&mut self, from: Party, request: Request) {
        let now = self.now;
        match self.layer.handle_request(now, request, from, false) {
            Ok(RequestDisposition::New { key, request }) => {
                self.call.handle_request(now, &mut self.layer, key, request);
            }
            Ok(RequestDisposition::Ack(request)) => {
                self.call.handle_ack(now, &mut self.layer, &request)
            }
            Ok(RequestDisposition::CancelFor { key, request, .. }) => {
                self.call.handle_cancel(now, &mut self.layer, key, request);
            }
            Ok(_) => {}
            Err(e) => panic!("request refused by the layer: {e}"),
        }
        self.settle();
    }

    /// Messages sent to `to` since the start, as (status or method) strings.
    pub fn summary(&self, to: Party) -> Vec<String> {
        self.sent
            .iter()
            .filter(|(d, _)| *d == to)
            .map(|(_, m)| describe(m))
            .collect()
    }

    /// The last response the caller got.
    pub fn last_to_caller(&self) -> Response {
        self.sent
            .iter()
            .rev()
            .find_map(|(d, m)| match (d, m) {
                (&"caller", Message::Response(r)) => Some(r.clone()),
                _ => None,
            })
            .expect("the caller got a response")
    }

    /// The last request of `method` sent to `to`.
    pub fn last_request(&self, to: Party, method: &Method) -> Request {
        self.sent
            .iter()
            .rev()
            .find_map(|(d, m)| match m {
                Message::Request(r) if *d == to && r.method == *method => Some(r.clone()),
                _ => None,
            })
            .unwrap_or_else(|| panic!("no {method:?} sent to {to}"))
    }

    pub fn record(&self) -> &CallRecord {
        assert_eq!(self.records.len(), 1, "exactly one CDR");
        &self.records[0]
    }

    pub fn disposition(&self) -> Disposition {
        self.record().disposition
    }

    /// The caller's ACK for the PBX's 2xx.
    pub fn caller_acks(&mut self) {
        self.caller_acks_cseq(1);
    }

    /// The caller's ACK for the 2xx to its INVITE with CSeq `cseq`.
    pub fn caller_acks_cseq(&mut self, cseq: u32) {
        let ok = self.last_to_caller();
        let to = ok
            .headers
            .get_str(&HeaderName::TO)
            .unwrap_or_default()
            .to_string();
        let ack = parse_request(&format!(
            "ACK sip:pbx@192.0.2.1:5060 SIP/2.0
Via: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bKcallerack{cseq};rport
Max-Forwards: 70
From: \"Alice\" <sip:1001@pbx.test>;tag=alice
To: {to}
Call-ID: caller-call@10.0.0.1
CSeq: {cseq} ACK
Content-Length: 0

"
        ));
        self.deliver_request("caller", ack);
    }

    /// An in-dialog request from the caller (`method`, CSeq `cseq`).
    pub fn caller_request(&mut self, method: &str, cseq: u32, body: Option<&str>) {
        self.caller_request_typed(method, cseq, "application/sdp", body);
    }

    /// As [`World::caller_request`], with a body of `content_type`.
    pub fn caller_request_typed(
        &mut self,
        method: &str,
        cseq: u32,
        content_type: &str,
        body: Option<&str>,
    ) {
        let ok = self
            .sent
            .iter()
            .find_map(|(d, m)| match (d, m) {
                (&"caller", Message::Response(r)) if r.status.is_success() => Some(r.clone()),
                _ => None,
            })
            .expect("the caller was answered");
        let to = ok
            .headers
            .get_str(&HeaderName::TO)
            .unwrap_or_default()
            .to_string();
        let body = body.unwrap_or("").replace('\n', "\r\n");
        let content_type = if body.is_empty() {
            String::new()
        } else {
            format!("Content-Type: {content_type}\n")
        };
        let mut request = parse_request(&format!(
            "{method} sip:pbx@192.0.2.1:5060 SIP/2.0
Via: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bKc{method}{cseq};rport
Max-Forwards: 70
From: \"Alice\" <sip:1001@pbx.test>;tag=alice
To: {to}
Call-ID: caller-call@10.0.0.1
CSeq: {cseq} {method}
Contact: <sip:1001@10.0.0.1:5060>
{content_type}Content-Length: 0

"
        ));
        request.body = Bytes::from(body);
        self.deliver_request("caller", request);
    }

    /// An in-dialog request from the device that answered.
    pub fn device_request(&mut self, device: Party, method: &str, cseq: u32, body: Option<&str>) {
        let invite = self
            .invites
            .get(device)
            .cloned()
            .expect("the device got an INVITE");
        let from = invite
            .headers
            .get_str(&HeaderName::FROM)
            .unwrap_or_default()
            .to_string();
        let to = invite
            .headers
            .get_str(&HeaderName::TO)
            .unwrap_or_default()
            .to_string();
        let call_id = invite.headers.call_id().unwrap_or_default().to_string();
        let body = body.unwrap_or("").replace('\n', "\r\n");
        let content_type = if body.is_empty() {
            ""
        } else {
            "Content-Type: application/sdp\n"
        };
        let mut request = parse_request(&format!(
            "{method} sip:pbx@192.0.2.1:5060 SIP/2.0
Via: SIP/2.0/UDP {device}.example:5060;branch=z9hG4bKd{device}{method}{cseq};rport
Max-Forwards: 70
From: {to};tag=tag-{device}
To: {from}
Call-ID: {call_id}
CSeq: {cseq} {method}
Contact: <sip:1000@{device}.example:5060>
{content_type}Content-Length: 0

"
        ));
        request.body = Bytes::from(body);
        self.deliver_request(device, request);
    }

    /// The response a party gives to the last request of `method` the PBX sent it.
    pub fn party_responds(
        &mut self,
        party: Party,
        method: &Method,
        status: u16,
        body: Option<&str>,
    ) {
        let request = self.last_request(party, method);
        let mut response = Response::for_request(&request, StatusCode(status), None);
        if let Some(body) = body {
            response
                .headers
                .push(HeaderName::CONTENT_TYPE, "application/sdp");
            response.body = Bytes::from(body.replace('\n', "\r\n"));
        }
        self.deliver_response(response);
    }
}

fn is_in_dialog(request: &Request) -> bool {
    request.headers.to().is_ok_and(|to| to.tag().is_some())
}

/// `INVITE`, `200`, `CANCEL`...
pub fn describe(message: &Message) -> String {
    match message {
        Message::Request(r) => r.method.as_str().to_string(),
        Message::Response(r) => r.status.code().to_string(),
    }
}
