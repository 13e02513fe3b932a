//! The application seam: the PBX answers the caller itself (voicemail, IVR, echo), answers
//! what the caller does in that dialog, and hangs up or is hung up on like a bridged call.

mod support;

use pbx_calls::{AnswerError, Disposition, HangupSide, Route};
use pbx_media::g711::Law;
use pbx_media::sdp::Encryption;
use pbx_media::{Direction, Side};
use pbx_sip::method::Method;
use pbx_sip::status::StatusCode;
use std::time::Duration;
use support::{OFFER, World, caller_invite, device, media_setup, ring};

fn waiting_call() -> World {
    World::start_planned_with(
        caller_invite(Some(OFFER), 70),
        Route::Wait,
        Some(media_setup(Encryption::Optional, Encryption::Optional)),
    )
}

fn answered() -> World {
    let mut w = waiting_call();
    let now = w.now;
    let local = w.call.answer(now, &mut w.layer).expect("answered");
    assert_eq!(local.voice, pbx_media::voice::Voice::G711(Law::Mu));
    assert_eq!(local.payload_type, 0);
    assert_eq!(local.telephone_event, Some(101));
    assert_eq!(local.ptime, Duration::from_millis(20));
    w.settle();
    w
}

fn body(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn the_pbx_answers_with_its_own_sdp_and_the_caller_hangs_up() {
    let mut w = answered();
    let ok = w.last_to_caller();
    assert_eq!(ok.status, StatusCode::OK);
    let sdp = body(&ok.body);
    assert!(sdp.contains("c=IN IP4 192.0.2.1"), "{sdp}");
    assert!(sdp.contains("m=audio 10000 RTP/AVP 0 101"), "{sdp}");
    assert!(w.call.is_established());
    assert_eq!(w.plans.len(), 1);
    assert_eq!(
        w.plans[0].caller.remote_rtp,
        Some("10.0.0.1:4000".parse().expect("addr"))
    );
    assert_eq!(w.plans[0].leg(Side::Callee).remote_rtp, None);

    w.caller_acks();
    w.advance(Duration::from_secs(40));
    let oks = w.summary("caller").iter().filter(|s| *s == "200").count();
    assert_eq!(oks, 1, "the ACK stopped the retransmissions");
    assert!(w.call.is_established(), "an answered call waits for a BYE");

    w.caller_request("BYE", 2, None);
    assert_eq!(w.last_to_caller().status, StatusCode::OK);
    assert_eq!(w.disposition(), Disposition::Answered);
    assert_eq!(w.record().hangup_side, HangupSide::Caller);
    assert!(w.record().answered.is_some());
    assert!(w.call.is_finished());
}

#[test]
fn the_pbx_hangs_up_with_a_bye() {
    let mut w = answered();
    w.caller_acks();
    let now = w.now;
    w.call.hang_up(now, &mut w.layer);
    w.settle();
    let bye = w.last_request("caller", &Method::BYE);
    assert_eq!(bye.uri.to_string(), "sip:1001@10.0.0.1:5060");
    assert_eq!(w.disposition(), Disposition::Answered);
    assert_eq!(w.record().hangup_side, HangupSide::Pbx);
}

#[test]
fn dtmf_by_info_reaches_the_application() {
    let mut w = answered();
    w.caller_acks();
    w.caller_request_typed(
        "INFO",
        2,
        "application/dtmf-relay",
        Some("Signal=5\nDuration=160\n"),
    );
    assert_eq!(w.last_to_caller().status, StatusCode::OK);
    w.caller_request_typed("INFO", 3, "application/dtmf", Some("#"));
    assert_eq!(w.last_to_caller().status, StatusCode::OK);
    w.caller_request_typed("INFO", 4, "text/plain", Some("hello"));
    assert_eq!(w.last_to_caller().status, StatusCode(415));
    w.caller_request_typed("INFO", 5, "application/dtmf-relay", Some("Signal=55\n"));
    assert_eq!(w.last_to_caller().status, StatusCode::BAD_REQUEST);
    assert_eq!(w.digits, vec!['5', '#']);
    w.caller_request("OPTIONS", 6, None);
    assert_eq!(w.last_to_caller().status, StatusCode::OK);
    assert!(w.call.is_established());
}

#[test]
fn hold_is_answered_by_the_pbx_and_the_plan_follows() {
    let mut w = answered();
    w.caller_acks();
    let hold = OFFER.replace("a=sendrecv", "a=sendonly");
    w.caller_request("INVITE", 2, Some(&hold));
    let ok = w.last_to_caller();
    assert_eq!(ok.status, StatusCode::OK);
    assert!(body(&ok.body).contains("a=recvonly"), "{}", body(&ok.body));
    assert_eq!(w.plans.len(), 2);
    assert_eq!(w.plans[1].caller.direction, Direction::SendOnly);
    w.caller_acks_cseq(2);
    w.advance(Duration::from_secs(5));
    let oks = w.summary("caller").iter().filter(|s| *s == "200").count();
    assert_eq!(oks, 2, "each 2xx sent once, ACKed");
    // An offer the PBX cannot take leaves the session as it was.
    // (G.729 only: the PBX's endpoints speak G.711 and G.722.)
    let g729_only = OFFER.replace("m=audio 4000 RTP/AVP 0 8 101", "m=audio 4000 RTP/AVP 18");
    w.caller_request("INVITE", 3, Some(&g729_only));
    assert_eq!(w.last_to_caller().status, StatusCode::NOT_ACCEPTABLE_HERE);
    assert!(w.call.is_established());
    assert_eq!(w.plans.len(), 2);
}

#[test]
fn an_invite_without_offer_gets_488() {
    let mut w = World::start_planned_with(
        caller_invite(None, 70),
        Route::Wait,
        Some(media_setup(Encryption::Optional, Encryption::Optional)),
    );
    let now = w.now;
    assert_eq!(w.call.answer(now, &mut w.layer), Err(AnswerError::NoOffer));
    w.settle();
    assert_eq!(w.last_to_caller().status, StatusCode::NOT_ACCEPTABLE_HERE);
    assert_eq!(w.disposition(), Disposition::Failed);
    assert!(w.call.is_finished());
}

#[test]
fn answering_cancels_the_devices_still_ringing() {
    let mut w = World::start_planned_with(
        caller_invite(Some(OFFER), 70),
        ring(&["desk"]),
        Some(media_setup(Encryption::Optional, Encryption::Optional)),
    );
    w.device_answers("desk", 180, None);
    let now = w.now;
    w.call.answer(now, &mut w.layer).expect("answered");
    w.settle();
    assert!(w.summary("desk").contains(&"CANCEL".to_string()));
    assert_eq!(w.last_to_caller().status, StatusCode::OK);
    let now = w.now;
    assert_eq!(
        w.call.answer(now, &mut w.layer),
        Err(AnswerError::NotPending),
        "answered once"
    );
}

const DEVICE_ANSWER: &str = "v=0
o=bob 7 7 IN IP4 10.0.0.2
s=-
c=IN IP4 10.0.0.2
t=0 0
m=audio 5000 RTP/AVP 0 101
a=rtpmap:0 PCMU/8000
a=rtpmap:101 telephone-event/8000
a=sendrecv
";

/// The PBX answered (an IVR), then the plan rings a device.
fn answered_then_ringing() -> World {
    let mut w = answered();
    w.caller_acks();
    let now = w.now;
    w.call.ring(
        now,
        &mut w.layer,
        vec![device("desk")],
        Duration::from_secs(20),
        None,
    );
    w.settle();
    w
}

#[test]
fn a_device_rung_after_the_pbx_answered_takes_the_call_over() {
    let mut w = answered_then_ringing();
    let offer = body(&w.invites["desk"].body);
    assert!(
        offer.contains("m=audio 10002 RTP/AVP 0 101"),
        "only the agreed codec: {offer}"
    );
    w.device_answers("desk", 180, None);
    let to_caller = w.summary("caller");
    assert_eq!(
        to_caller.iter().filter(|s| *s == "180").count(),
        0,
        "the caller is answered"
    );
    w.device_answers("desk", 200, Some(DEVICE_ANSWER));
    assert_eq!(w.connected, 1);
    assert!(w.summary("desk").contains(&"ACK".to_string()));
    let plan = w.plans.last().expect("a plan for the relay");
    assert_eq!(
        plan.callee.remote_rtp,
        Some("10.0.0.2:5000".parse().expect("addr"))
    );
    assert_eq!(
        plan.caller.remote_rtp,
        Some("10.0.0.1:4000".parse().expect("addr"))
    );
    assert_eq!(
        w.call.local_media(),
        None,
        "the PBX is no longer the partner"
    );
    assert_eq!(
        w.summary("caller").iter().filter(|s| *s == "200").count(),
        1,
        "no second answer to the caller"
    );
    // The caller's BYE now goes to the device.
    w.caller_request("BYE", 2, None);
    assert!(w.summary("desk").contains(&"BYE".to_string()));
    assert_eq!(w.disposition(), Disposition::Answered);
}

#[test]
fn nobody_answering_after_the_pbx_answered_goes_back_to_the_plan() {
    let mut w = answered_then_ringing();
    w.device_answers("desk", 486, None);
    assert_eq!(w.dial_ends.len(), 1);
    assert_eq!(w.dial_ends[0].outcome, pbx_calls::DialOutcome::Busy);
    assert!(w.call.is_established(), "the caller stays with the PBX");
    assert!(w.call.local_media().is_some());
    assert!(w.records.is_empty());
}

#[test]
fn the_caller_hanging_up_while_a_device_rings_cancels_it() {
    let mut w = answered_then_ringing();
    w.device_answers("desk", 180, None);
    w.caller_request("BYE", 2, None);
    assert!(w.summary("desk").contains(&"CANCEL".to_string()));
    assert_eq!(w.disposition(), Disposition::Answered);
    assert_eq!(w.record().hangup_side, HangupSide::Caller);
}
