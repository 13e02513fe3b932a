//! Calls with media anchored at the PBX: the SDP each side sees, the plans handed to the
//! relay, hold and resume, late offer and the encryption policy.

mod support;

use pbx_calls::{MediaSetup, Route};
use pbx_media::sdp::{Encryption, LocalEndpoint};
use pbx_media::{Direction, Side};
use pbx_sip::method::Method;
use pbx_sip::status::StatusCode;
use std::time::Duration;
use support::{OFFER, World, caller_invite, device};

const DEVICE_ANSWER: &str = "v=0
o=bob 7 7 IN IP4 10.0.0.2
s=-
c=IN IP4 10.0.0.2
t=0 0
m=audio 5000 RTP/AVP 8 96
a=rtpmap:8 PCMA/8000
a=rtpmap:96 telephone-event/8000
a=fmtp:96 0-16
a=sendrecv
";

fn media(caller: Encryption, callee: Encryption) -> MediaSetup {
    MediaSetup {
        caller: LocalEndpoint {
            ip: "192.0.2.1".parse().unwrap_or_else(|_| unreachable!()),
            rtp_port: 10000,
        },
        callee: LocalEndpoint {
            ip: "192.0.2.1".parse().unwrap_or_else(|_| unreachable!()),
            rtp_port: 10002,
        },
        caller_encryption: caller,
        callee_encryption: callee,
        allow_keys_in_clear: false,
        session_id: 42,
        dtls_fingerprint: None,
    }
}

fn ring_one() -> Route<&'static str> {
    Route::Ring {
        devices: vec![device("desk")],
        timeout: Duration::from_secs(20),
    }
}

fn body(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn each_side_sees_the_pbx_and_the_relay_gets_the_plan() {
    let setup = media(Encryption::Optional, Encryption::Optional);
    let mut w = World::start_with(caller_invite(Some(OFFER), 70), ring_one(), Some(setup));
    let offer = body(&w.invites["desk"].body);
    assert!(offer.contains("c=IN IP4 192.0.2.1"), "{offer}");
    assert!(offer.contains("m=audio 10002 RTP/AVP"), "{offer}");
    assert!(
        !offer.contains("10.0.0.1"),
        "the caller's address never reaches the callee"
    );

    w.device_answers("desk", 200, Some(DEVICE_ANSWER));
    let ok = w.last_to_caller();
    assert_eq!(ok.status, StatusCode::OK);
    let answer = body(&ok.body);
    assert!(answer.contains("m=audio 10000 RTP/AVP 8 101"), "{answer}");
    assert!(!answer.contains("10.0.0.2"));

    let plan = w.plans.last().expect("a media plan");
    assert_eq!(plan.codec, "PCMA/8000");
    assert_eq!(
        plan.caller.remote_rtp,
        Some("10.0.0.1:4000".parse().unwrap_or_else(|_| unreachable!()))
    );
    assert_eq!(
        plan.callee.remote_rtp,
        Some("10.0.0.2:5000".parse().unwrap_or_else(|_| unreachable!()))
    );
    // telephone-event: the device receives it as 96 (its answer), the caller sends it as
    // 101; the device sends with the numbers the PBX offered it (101, RFC 3264 §6.1), so only
    // packets towards the device are rewritten.
    assert!(plan.callee.pt_map.contains(&(101, 96)), "{plan:?}");
    assert!(plan.caller.pt_map.is_empty(), "{plan:?}");
    w.caller_acks();
    w.caller_request("BYE", 2, None);
    let record = w.record();
    assert_eq!(record.codec.as_deref(), Some("PCMA/8000"));
    assert!(!record.caller_encrypted && !record.callee_encrypted);
}

#[test]
fn hold_and_resume_go_through_the_anchor() {
    let setup = media(Encryption::Optional, Encryption::Optional);
    let mut w = World::start_with(caller_invite(Some(OFFER), 70), ring_one(), Some(setup));
    w.device_answers("desk", 200, Some(DEVICE_ANSWER));
    w.caller_acks();
    let plans_before = w.plans.len();

    w.caller_request(
        "INVITE",
        2,
        Some(&OFFER.replace("a=sendrecv", "a=sendonly")),
    );
    let reinvite = w.last_request("desk", &Method::INVITE);
    assert!(body(&reinvite.body).contains("a=sendonly"));
    w.party_responds(
        "desk",
        &Method::INVITE,
        200,
        Some(&DEVICE_ANSWER.replace("a=sendrecv", "a=recvonly")),
    );
    let ok = w.last_to_caller();
    assert!(body(&ok.body).contains("a=recvonly"), "{}", body(&ok.body));
    let plan = w.plans.last().expect("a plan after the hold");
    assert!(w.plans.len() > plans_before);
    assert_eq!(plan.caller.direction, Direction::SendOnly);
    assert!(plan.on_hold(), "no media timeout while on hold");
    w.caller_acks_cseq(2);

    w.caller_request("INVITE", 3, Some(OFFER));
    w.party_responds("desk", &Method::INVITE, 200, Some(DEVICE_ANSWER));
    let plan = w.plans.last().expect("a plan after the resume");
    assert!(!plan.on_hold());
}

#[test]
fn a_failed_reoffer_keeps_the_call() {
    let setup = media(Encryption::Optional, Encryption::Optional);
    let mut w = World::start_with(caller_invite(Some(OFFER), 70), ring_one(), Some(setup));
    w.device_answers("desk", 200, Some(DEVICE_ANSWER));
    w.caller_acks();
    w.caller_request(
        "INVITE",
        2,
        Some(&OFFER.replace("a=sendrecv", "a=sendonly")),
    );
    w.party_responds("desk", &Method::INVITE, 488, None);
    assert_eq!(w.last_to_caller().status, StatusCode::NOT_ACCEPTABLE_HERE);
    // The next offer is accepted again (the failed one was rolled back, RFC 3264 §8).
    w.caller_request("INVITE", 3, Some(OFFER));
    assert!(w.summary("caller").last().is_some_and(|s| s != "491"));
    w.party_responds("desk", &Method::INVITE, 200, Some(DEVICE_ANSWER));
    assert_eq!(w.last_to_caller().status, StatusCode::OK);
    assert!(w.call.is_established());
}

#[test]
fn late_offer_answers_in_the_ack() {
    let setup = media(Encryption::Optional, Encryption::Optional);
    let mut w = World::start_with(caller_invite(None, 70), ring_one(), Some(setup));
    assert!(w.invites["desk"].body.is_empty(), "no offer to pass on");
    // The device offers in its 2xx; the caller gets the PBX's offer in the 200.
    w.device_answers("desk", 200, Some(DEVICE_ANSWER));
    assert_eq!(
        w.summary("desk"),
        ["INVITE"],
        "the device's ACK waits for the caller"
    );
    let ok = w.last_to_caller();
    assert!(body(&ok.body).contains("m=audio 10000"));
    // The caller answers in its ACK; the device's ACK carries the PBX's answer.
    let ok_to = ok
        .headers
        .get_str(&pbx_sip::message::HeaderName::TO)
        .unwrap_or_default()
        .to_string();
    let mut ack = support::parse_request(&format!(
        "ACK sip:pbx@192.0.2.1:5060 SIP/2.0
Via: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bKlateack;rport
Max-Forwards: 70
From: \"Alice\" <sip:1001@pbx.test>;tag=alice
To: {ok_to}
Call-ID: caller-call@10.0.0.1
CSeq: 1 ACK
Content-Type: application/sdp
Content-Length: 0

"
    ));
    let caller_answer = OFFER.replace("m=audio 4000 RTP/AVP 0 8 101", "m=audio 4000 RTP/AVP 8 101");
    ack.body = bytes::Bytes::from(caller_answer.replace('\n', "\r\n"));
    w.deliver_request("caller", ack);
    let device_ack = w.last_request("desk", &Method::ACK);
    let sdp = body(&device_ack.body);
    assert!(sdp.contains("m=audio 10002 RTP/AVP 8"), "{sdp}");
    assert_eq!(
        w.plans.last().map(|p| p.codec.clone()),
        Some("PCMA/8000".into())
    );
}

#[test]
fn required_encryption_refuses_a_plain_offer_with_488() {
    let setup = media(Encryption::Required, Encryption::Optional);
    let w = World::start_with(caller_invite(Some(OFFER), 70), ring_one(), Some(setup));
    assert_eq!(w.last_to_caller().status, StatusCode::NOT_ACCEPTABLE_HERE);
    assert!(w.summary("desk").is_empty(), "nothing rung");
}

#[test]
fn a_device_answer_without_common_codec_fails_that_branch() {
    let setup = media(Encryption::Optional, Encryption::Optional);
    let mut w = World::start_with(caller_invite(Some(OFFER), 70), ring_one(), Some(setup));
    let g729 = DEVICE_ANSWER
        .replace("m=audio 5000 RTP/AVP 8 96", "m=audio 5000 RTP/AVP 18")
        .replace("a=rtpmap:8 PCMA/8000\n", "a=rtpmap:18 G729/8000\n");
    w.device_answers("desk", 200, Some(&g729));
    assert_eq!(w.summary("desk"), ["INVITE", "ACK", "BYE"]);
    assert_eq!(w.last_to_caller().status, StatusCode::NOT_ACCEPTABLE_HERE);
    let _ = Side::Caller;
}

/// A browser's answer: ICE credentials, its fingerprint, DTLS `active`.
const BROWSER_ANSWER: &str = "v=0
o=- 9 2 IN IP4 127.0.0.1
s=-
t=0 0
a=group:BUNDLE 0
m=audio 9 UDP/TLS/RTP/SAVPF 8 101
c=IN IP4 0.0.0.0
a=ice-ufrag:brw1
a=ice-pwd:browser-ice-password-012
a=fingerprint:sha-256 4E:F7:A0:9B:4B:2B:36:C5:C0:C8:B9:AA:AD:0B:59:95:10:9E:38:7A:88:0C:EF:FB:17:9A:73:00:FB:BC:33:9B
a=setup:active
a=mid:0
a=rtcp-mux
a=rtpmap:8 PCMA/8000
a=rtpmap:101 telephone-event/8000
a=sendrecv
";

#[test]
fn a_device_on_websocket_is_offered_webrtc_and_its_leg_counts_as_encrypted() {
    let mut setup = media(Encryption::Optional, Encryption::Optional);
    setup.dtls_fingerprint = Some(pbx_media::Fingerprint {
        algorithm: "sha-256".into(),
        digest: vec![0xab; 32],
    });
    let mut browser = device("browser");
    browser.endpoint.transport = "WSS";
    let route = Route::Ring {
        devices: vec![browser, device("desk")],
        timeout: Duration::from_secs(20),
    };
    let mut w = World::start_with(caller_invite(Some(OFFER), 70), route, Some(setup));
    let to_browser = body(&w.invites["browser"].body);
    for line in [
        "m=audio 10002 UDP/TLS/RTP/SAVPF ",
        "a=ice-lite",
        "a=setup:actpass",
        "a=fingerprint:sha-256 AB:AB:",
    ] {
        assert!(to_browser.contains(line), "{line:?} missing:\n{to_browser}");
    }
    let to_desk = body(&w.invites["desk"].body);
    assert!(
        to_desk.contains("m=audio 10002 RTP/AVP") && !to_desk.contains("fingerprint"),
        "the desk phone keeps plain RTP:\n{to_desk}"
    );

    w.device_answers("browser", 200, Some(BROWSER_ANSWER));
    let ok = w.last_to_caller();
    assert_eq!(ok.status, StatusCode::OK);
    assert!(body(&ok.body).contains("m=audio 10000 RTP/AVP 8 101"));
    let plan = w.plans.last().expect("a media plan");
    let webrtc = plan
        .callee
        .webrtc
        .as_ref()
        .expect("the browser's leg is WebRTC");
    assert_eq!(webrtc.role, pbx_media::DtlsRole::Server);
    assert_eq!(webrtc.remote_ice.ufrag, "brw1");
    w.caller_acks();
    w.caller_request("BYE", 2, None);
    let record = w.record();
    assert!(record.callee_encrypted && !record.caller_encrypted);
}
