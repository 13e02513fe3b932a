//! DTMF interworking (RFC 4733 on one leg, SIP INFO on the other): the offerer keeps
//! `telephone-event` in its answer when the answerer has none, and the negotiator says which
//! payload type each leg uses for events.

mod sdp_support;

use pbx_media::Side::{Callee, Caller};
use sdp_support::*;

/// A phone offering PCMU and telephone-event/8000 on 101.
fn phone_offer() -> Vec<u8> {
    sdp(&[
        "v=0",
        "o=phone 1 1 IN IP4 192.0.2.10",
        "s=-",
        "c=IN IP4 192.0.2.10",
        "t=0 0",
        "m=audio 4000 RTP/AVP 0 101",
        "a=rtpmap:101 telephone-event/8000",
        "a=fmtp:101 0-16",
    ])
}

#[test]
fn without_interworking_the_events_go_when_the_answerer_has_none() {
    let mut n = negotiator(plain(), plain());
    n.offer(Caller, &phone_offer(), &mut rng()).unwrap();
    let (answer, _) = n
        .answer(Callee, &callee_answer("0", &[]), &mut rng())
        .unwrap();
    assert_eq!(formats(&answer), ["0"]);
    assert_eq!(n.telephone_event(Caller), None);
    assert_eq!(n.telephone_event(Callee), None);
}

#[test]
fn with_interworking_the_offerer_keeps_its_events() {
    let mut n = negotiator(plain(), plain()).with_dtmf_interworking();
    n.offer(Caller, &phone_offer(), &mut rng()).unwrap();
    let (answer, plan) = n
        .answer(Callee, &callee_answer("0", &[]), &mut rng())
        .unwrap();
    assert_eq!(formats(&answer), ["0", "101"]);
    assert!(lines(&answer, "a=rtpmap:101").contains(&"a=rtpmap:101 telephone-event/8000".into()));
    assert_eq!(n.telephone_event(Caller), Some(101));
    assert_eq!(n.telephone_event(Callee), None);
    // Nothing to rewrite: the answerer has no number for events.
    assert!(plan.callee.pt_map.is_empty() && plan.caller.pt_map.is_empty());
}

#[test]
fn agreed_events_are_reported_under_each_legs_number() {
    let mut n = negotiator(plain(), plain()).with_dtmf_interworking();
    n.offer(Caller, &phone_offer(), &mut rng()).unwrap();
    let answer = callee_answer("0 96", &["a=rtpmap:96 telephone-event/8000"]);
    let (answer, _) = n.answer(Callee, &answer, &mut rng()).unwrap();
    assert_eq!(formats(&answer), ["0", "101"]);
    assert_eq!(n.telephone_event(Caller), Some(101));
    assert_eq!(n.telephone_event(Callee), Some(96));
}

#[test]
fn an_offer_without_events_gets_the_pbxs_own_for_the_other_leg() {
    let gateway = sdp(&[
        "v=0",
        "o=gw 1 1 IN IP4 192.0.2.20",
        "s=-",
        "c=IN IP4 192.0.2.20",
        "t=0 0",
        "m=audio 4000 RTP/AVP 8",
    ]);
    // Without interworking the offer is passed on as it is.
    let mut plain_n = negotiator(plain(), plain());
    let offer = plain_n.offer(Caller, &gateway, &mut rng()).unwrap();
    assert_eq!(formats(&offer), ["8"]);

    let mut n = negotiator(plain(), plain()).with_dtmf_interworking();
    let offer = n.offer(Caller, &gateway, &mut rng()).unwrap();
    assert_eq!(formats(&offer), ["8", "101"]);
    assert!(lines(&offer, "a=rtpmap:101").contains(&"a=rtpmap:101 telephone-event/8000".into()));
    let answer = callee_answer("8 101", &["a=rtpmap:101 telephone-event/8000"]);
    let (answer, plan) = n.answer(Callee, &answer, &mut rng()).unwrap();
    // The gateway's answer stays without events; the phone's are the PBX's to read.
    assert_eq!(formats(&answer), ["8"]);
    assert_eq!(n.telephone_event(Caller), None);
    assert_eq!(n.telephone_event(Callee), Some(101));
    assert!(plan.caller.pt_map.is_empty() && plan.callee.pt_map.is_empty());
}
