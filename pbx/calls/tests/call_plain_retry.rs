//! Encrypted by default (issue 10, part 6): a device on TLS is offered SRTP under the
//! `optional` policy; one that refuses it with 488 gets one plain offer in a new transaction of
//! the same branch; `required` and a second refusal end the branch. And the CDR names the
//! device when its refusal ends the call (part 8).

mod support;

use pbx_calls::{HangupSide, Route};
use pbx_media::sdp::Encryption::{Optional, Required};
use pbx_sip::message::{HeaderName, Request};
use pbx_sip::method::Method;
use pbx_sip::status::StatusCode;
use std::time::Duration;
use support::{OFFER, Party, World, caller_invite, device, device_tls, media_setup};

const PLAIN_ANSWER: &str = "v=0
o=bob 7 7 IN IP4 10.0.0.2
s=-
c=IN IP4 10.0.0.2
t=0 0
m=audio 5000 RTP/AVP 0
a=rtpmap:0 PCMU/8000
a=sendrecv
";

const SRTP_ANSWER: &str = "v=0
o=bob 7 7 IN IP4 10.0.0.2
s=-
c=IN IP4 10.0.0.2
t=0 0
m=audio 5000 RTP/SAVP 0
a=rtpmap:0 PCMU/8000
a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:J8WTunHRtt8tdXuF2H9Po1sVf09vNTTMOd+XoU3g
a=sendrecv
";

fn route(devices: Vec<pbx_calls::Device<Party>>) -> Route<Party> {
    Route::Ring {
        devices,
        timeout: Duration::from_secs(20),
    }
}

fn call(devices: Vec<pbx_calls::Device<Party>>, callee: pbx_media::sdp::Encryption) -> World {
    World::start_with(
        caller_invite(Some(OFFER), 70),
        route(devices),
        Some(media_setup(Optional, callee)),
    )
}

fn body(request: &Request) -> String {
    String::from_utf8_lossy(&request.body).into_owned()
}

fn header(request: &Request, name: &HeaderName) -> String {
    request
        .headers
        .get_str(name)
        .unwrap_or_default()
        .to_string()
}

fn invites_to(w: &World, to: Party) -> Vec<Request> {
    w.sent
        .iter()
        .filter_map(|(d, m)| match m {
            pbx_sip::message::Message::Request(r) if *d == to && r.method == Method::INVITE => {
                Some(r.clone())
            }
            _ => None,
        })
        .collect()
}

fn is_srtp(offer: &str) -> bool {
    offer.contains("m=audio 10002 RTP/SAVP") && offer.contains("a=crypto:")
}

fn is_plain(offer: &str) -> bool {
    offer.contains("m=audio 10002 RTP/AVP") && !offer.contains("a=crypto")
}

#[test]
fn a_tls_device_refusing_srtp_gets_a_plain_offer_in_a_new_transaction() {
    let mut w = call(vec![device_tls("desk")], Optional);
    let first = w.invites["desk"].clone();
    assert!(is_srtp(&body(&first)), "{}", body(&first));

    w.device_answers("desk", 488, None);
    let invites = invites_to(&w, "desk");
    assert_eq!(invites.len(), 2, "{:?}", w.summary("desk"));
    let second = &invites[1];
    assert!(is_plain(&body(second)), "{}", body(second));
    // RFC 3261 §8.1.3.5: same Call-ID, From and To; CSeq one higher; a new branch.
    for name in [HeaderName::CALL_ID, HeaderName::FROM, HeaderName::TO] {
        assert_eq!(header(&first, &name), header(second, &name), "{name:?}");
    }
    assert_eq!(header(second, &HeaderName::CSEQ), "2 INVITE");
    let branch = |r: &Request| {
        r.headers
            .vias()
            .ok()
            .and_then(|v| v[0].branch().map(str::to_owned))
    };
    assert_ne!(branch(&first), branch(second));
    assert!(
        !w.summary("caller").iter().any(|s| s.starts_with('4')),
        "the caller keeps waiting: {:?}",
        w.summary("caller")
    );

    w.device_answers("desk", 180, None);
    w.device_answers("desk", 200, Some(PLAIN_ANSWER));
    assert_eq!(w.last_to_caller().status, StatusCode::OK);
    let ack = w.last_request("desk", &Method::ACK);
    assert_eq!(header(&ack, &HeaderName::CSEQ), "2 ACK");
    let plan = w.plans.last().expect("a media plan");
    assert!(plan.callee.srtp.is_none() && plan.caller.srtp.is_none());

    // The dialog continues from CSeq 2.
    w.caller_acks();
    w.caller_request("BYE", 2, None);
    let bye = w.last_request("desk", &Method::BYE);
    assert_eq!(header(&bye, &HeaderName::CSEQ), "3 BYE");
    let record = w.record();
    assert_eq!(record.disposition, pbx_calls::Disposition::Answered);
    assert!(!record.callee_encrypted);
}

#[test]
fn a_tls_device_that_accepts_srtp_gets_it_from_a_plain_caller() {
    let mut w = call(vec![device_tls("desk")], Optional);
    w.device_answers("desk", 200, Some(SRTP_ANSWER));
    assert_eq!(w.last_to_caller().status, StatusCode::OK);
    let answer = String::from_utf8_lossy(&w.last_to_caller().body).into_owned();
    assert!(
        answer.contains("RTP/AVP") && !answer.contains("a=crypto"),
        "{answer}"
    );
    let plan = w.plans.last().expect("a media plan");
    assert!(plan.callee.srtp.is_some() && plan.caller.srtp.is_none());
    assert_eq!(invites_to(&w, "desk").len(), 1);
}

#[test]
fn required_refusal_is_final_and_the_cdr_names_the_device() {
    let mut w = call(vec![device_tls("desk")], Required);
    w.device_answers("desk", 488, None);
    assert_eq!(invites_to(&w, "desk").len(), 1);
    assert_eq!(w.last_to_caller().status, StatusCode::NOT_ACCEPTABLE_HERE);
    let record = w.record();
    assert_eq!(record.hangup_side, HangupSide::Callee);
    assert!(record.hangup_cause.starts_with("488"), "{record:?}");
}

#[test]
fn a_refused_plain_offer_is_not_retried() {
    let mut w = call(vec![device_tls("desk")], Optional);
    w.device_answers("desk", 606, None);
    w.device_answers("desk", 488, None);
    assert_eq!(invites_to(&w, "desk").len(), 2, "{:?}", w.summary("desk"));
    // The plain offer's refusal is the branch's answer.
    assert_eq!(w.last_to_caller().status, StatusCode::NOT_ACCEPTABLE_HERE);
    assert_eq!(w.record().hangup_side, HangupSide::Callee);
}

#[test]
fn other_refusals_and_plain_offers_are_not_retried() {
    // A device on UDP gets plain RTP (no keys in clear): its 488 is final.
    let mut w = call(vec![device("soft")], Optional);
    assert!(is_plain(&body(&w.invites["soft"])));
    w.device_answers("soft", 488, None);
    assert_eq!(invites_to(&w, "soft").len(), 1);
    assert_eq!(w.last_to_caller().status, StatusCode::NOT_ACCEPTABLE_HERE);

    // 415 refuses the body's type, which a plain offer keeps; 486 is busy.
    for status in [415, 486] {
        let mut w = call(vec![device_tls("desk")], Optional);
        w.device_answers("desk", status, None);
        assert_eq!(invites_to(&w, "desk").len(), 1, "{status}");
        assert_eq!(w.last_to_caller().status.code(), status);
    }
}

#[test]
fn forking_offers_each_device_what_its_transport_allows() {
    let mut w = call(vec![device_tls("desk"), device("soft")], Optional);
    assert!(is_srtp(&body(&w.invites["desk"])));
    assert!(is_plain(&body(&w.invites["soft"])));

    // desk refuses SRTP and is offered plain; soft is busy: the call waits for desk's answer
    // to the plain offer, and its refusal of SRTP is not the extension's answer.
    w.device_answers("desk", 488, None);
    w.device_answers("soft", 486, None);
    assert!(
        !w.summary("caller").iter().any(|s| s.starts_with('4')),
        "{:?}",
        w.summary("caller")
    );
    w.device_answers("desk", 480, None);
    assert_eq!(w.last_to_caller().status, StatusCode::BUSY_HERE);
}

#[test]
fn a_cancel_during_the_plain_offer_copies_its_cseq() {
    let mut w = call(vec![device_tls("desk")], Optional);
    w.device_answers("desk", 488, None);
    w.device_answers("desk", 180, None);
    let cancel = support::parse_request(
        "CANCEL sip:1000@pbx.test SIP/2.0
Via: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bKcaller1;rport
Max-Forwards: 70
From: \"Alice\" <sip:1001@pbx.test>;tag=alice
To: <sip:1000@pbx.test>
Call-ID: caller-call@10.0.0.1
CSeq: 1 CANCEL
Content-Length: 0

",
    );
    w.deliver_request("caller", cancel);
    let cancel = w.last_request("desk", &Method::CANCEL);
    // RFC 3261 §9.1: the CANCEL's CSeq number is the INVITE's.
    assert_eq!(header(&cancel, &HeaderName::CSEQ), "2 CANCEL");
    assert_eq!(w.record().disposition, pbx_calls::Disposition::Cancelled);
}

#[test]
fn a_refusal_the_dialplan_does_not_answer_is_the_devices_in_the_cdr() {
    // With a dialplan, the failed dial goes back to it; when the plan has nothing more, the
    // caller gets the dial's answer and the CDR names the device, not the PBX.
    let mut w = World::start_planned_with(
        caller_invite(Some(OFFER), 70),
        route(vec![device_tls("desk")]),
        Some(media_setup(Optional, Required)),
    );
    w.device_answers("desk", 488, None);
    let end = w.dial_ends.pop().expect("the dial ended");
    assert_eq!(end.side, HangupSide::Callee);
    let now = w.now;
    w.call.finish_dial(now, &mut w.layer, &end);
    w.settle();
    assert_eq!(w.last_to_caller().status, StatusCode::NOT_ACCEPTABLE_HERE);
    let record = w.record();
    assert_eq!(record.hangup_side, HangupSide::Callee);
    assert!(record.hangup_cause.starts_with("488"), "{record:?}");

    // A ring timeout is the PBX's decision.
    let mut w = World::start_planned_with(
        caller_invite(Some(OFFER), 70),
        route(vec![device("soft")]),
        Some(media_setup(Optional, Optional)),
    );
    w.advance(Duration::from_secs(21));
    let end = w.dial_ends.pop().expect("the dial ended");
    assert_eq!(end.side, HangupSide::Pbx);
}

#[test]
fn required_rings_only_the_devices_that_can_get_keys() {
    // RFC 4568 §8.3: no keys in clear, so under `required` the UDP device is left out and
    // the TLS one still rings.
    let w = call(vec![device("soft"), device_tls("desk")], Required);
    assert!(w.summary("soft").is_empty(), "{:?}", w.summary("soft"));
    assert!(is_srtp(&body(&w.invites["desk"])));
    assert!(w.records.is_empty(), "the call goes on");

    // With no device on TLS, nothing can be offered: 488, the PBX's decision.
    let w = call(vec![device("soft")], Required);
    assert!(w.summary("soft").is_empty());
    assert_eq!(w.last_to_caller().status, StatusCode::NOT_ACCEPTABLE_HERE);
    assert_eq!(w.record().hangup_side, HangupSide::Pbx);
}
