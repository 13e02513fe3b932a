//! The call machine in virtual time: forking, answers, failures, CANCEL races, BYE from
//! either side, in-dialog relaying, glare and the RFC 3261 §13.3.1.4 2xx retransmission.

mod support;

use pbx_calls::{Disposition, HangupSide, Route};
use pbx_sip::message::{HeaderName, Message};
use pbx_sip::method::Method;
use pbx_sip::status::StatusCode;
use std::time::Duration;
use support::{World, caller_invite, ring};

#[test]
fn every_device_rings_and_the_first_answer_wins() {
    let mut w = World::start(ring(&["desk", "soft"]));
    assert_eq!(w.summary("desk"), ["INVITE"]);
    assert_eq!(w.summary("soft"), ["INVITE"]);
    // Both forks share the callee leg's Call-ID and From tag, like a proxy's forks.
    let desk = &w.invites["desk"];
    let soft = &w.invites["soft"];
    assert_eq!(desk.headers.call_id(), Some("pbx0-callee"));
    assert_eq!(desk.headers.call_id(), soft.headers.call_id());
    assert_eq!(
        desk.headers
            .from()
            .ok()
            .and_then(|f| f.tag().map(str::to_owned)),
        soft.headers
            .from()
            .ok()
            .and_then(|f| f.tag().map(str::to_owned))
    );
    assert_eq!(desk.uri.to_string(), "sip:1000@desk.example:5060");
    // Max-Forwards is decremented (RFC 3261 §16.6 item 3).
    assert_eq!(desk.headers.max_forwards(), Some(69));

    w.device_answers("desk", 180, None);
    w.device_answers("soft", 180, None);
    assert_eq!(w.last_to_caller().status, StatusCode::RINGING);

    w.device_answers("soft", 200, None);
    // The winner is ACKed, the other device gets CANCEL with the RFC 3326 reason.
    assert_eq!(w.summary("soft"), ["INVITE", "ACK"]);
    assert_eq!(w.summary("desk"), ["INVITE", "CANCEL"]);
    let cancel = w.last_request("desk", &Method::CANCEL);
    assert_eq!(
        cancel.headers.get_str(&HeaderName::REASON),
        Some("SIP;cause=200;text=\"Call completed elsewhere\"")
    );
    // RFC 3261 §9.1: the CANCEL has the INVITE's branch.
    assert_eq!(
        cancel
            .headers
            .top_via()
            .ok()
            .and_then(|v| v.branch().map(str::to_owned)),
        w.invites["desk"]
            .headers
            .top_via()
            .ok()
            .and_then(|v| v.branch().map(str::to_owned))
    );
    let ok = w.last_to_caller();
    assert_eq!(ok.status, StatusCode::OK);
    // One To tag towards the caller for the whole call, a Contact of the PBX.
    assert!(
        ok.headers
            .get_str(&HeaderName::CONTACT)
            .is_some_and(|c| c.contains("pbx@192.0.2.1"))
    );
    assert!(w.call.is_established());

    // The cancelled device answers 200 to the CANCEL and 487 to its INVITE.
    w.party_responds("desk", &Method::CANCEL, 200, None);
    w.device_answers("desk", 487, None);
    w.caller_acks();
    w.caller_request("BYE", 2, None);
    assert_eq!(w.last_to_caller().status, StatusCode::OK);
    assert_eq!(w.summary("soft"), ["INVITE", "ACK", "BYE"]);
    let record = w.record();
    assert_eq!(record.disposition, Disposition::Answered);
    assert_eq!(record.hangup_side, HangupSide::Caller);
    assert_eq!(record.caller, "1001");
    assert_eq!(record.called, "1000");
}

#[test]
fn the_answering_device_can_hang_up() {
    let mut w = World::start(ring(&["desk"]));
    w.device_answers("desk", 200, None);
    w.caller_acks();
    w.device_request("desk", "BYE", 1, None);
    // The device's BYE is answered; the caller gets a BYE in its own dialog.
    assert_eq!(w.summary("desk").last().map(String::as_str), Some("200"));
    let bye = w.last_request("caller", &Method::BYE);
    assert_eq!(bye.headers.call_id(), Some("caller-call@10.0.0.1"));
    assert_eq!(bye.uri.to_string(), "sip:1001@10.0.0.1:5060");
    let to_tag = bye
        .headers
        .to()
        .ok()
        .and_then(|t| t.tag().map(str::to_owned));
    assert_eq!(to_tag.as_deref(), Some("alice"));
    assert_eq!(w.record().hangup_side, HangupSide::Callee);
    w.party_responds("caller", &Method::BYE, 200, None);
    assert!(w.call.is_finished());
}

#[test]
fn busy_everywhere_is_486() {
    let mut w = World::start(ring(&["desk", "soft"]));
    w.device_answers("desk", 486, None);
    assert!(
        !w.summary("caller").iter().any(|s| s == "486"),
        "still one device ringing"
    );
    w.device_answers("soft", 486, None);
    assert_eq!(w.last_to_caller().status, StatusCode::BUSY_HERE);
    assert_eq!(w.disposition(), Disposition::Busy);
    // The layer ACKs the non-2xx finals (RFC 3261 §17.1.1.3).
    assert_eq!(w.summary("desk"), ["INVITE", "ACK"]);
}

#[test]
fn busy_on_one_device_and_unreachable_on_another_is_busy() {
    let mut w = World::start(Route::Ring {
        devices: vec![support::device("desk"), support::device("soft")],
        timeout: Duration::from_secs(60),
    });
    w.device_answers("desk", 486, None);
    // The other device never answers: Timer B (64*T1) ends its transaction.
    w.advance(Duration::from_secs(33));
    assert_eq!(w.last_to_caller().status, StatusCode::BUSY_HERE);
}

#[test]
fn no_registered_device_is_480() {
    let w = World::start(ring(&[]));
    assert_eq!(
        w.last_to_caller().status,
        StatusCode::TEMPORARILY_UNAVAILABLE
    );
    assert_eq!(w.disposition(), Disposition::Failed);
    assert!(w.call.is_finished());
}

#[test]
fn an_unknown_number_is_refused_as_routed() {
    let w = World::start(Route::Reject {
        status: StatusCode::NOT_FOUND,
        reason: "Not Found".into(),
        disposition: Disposition::Failed,
    });
    assert_eq!(w.last_to_caller().status, StatusCode::NOT_FOUND);
    assert_eq!(w.record().hangup_cause, "404 Not Found");
}

#[test]
fn ring_timeout_is_480_and_no_answer() {
    let mut w = World::start(ring(&["desk"]));
    w.device_answers("desk", 180, None);
    w.advance(Duration::from_secs(19));
    assert_eq!(w.last_to_caller().status, StatusCode::RINGING);
    w.advance(Duration::from_secs(2));
    assert_eq!(
        w.last_to_caller().status,
        StatusCode::TEMPORARILY_UNAVAILABLE
    );
    assert_eq!(w.disposition(), Disposition::NoAnswer);
    // The CANCEL (retransmitted by its transaction until the device answers it).
    let desk = w.summary("desk");
    assert_eq!(desk[..2], ["INVITE", "CANCEL"]);
    assert!(desk[2..].iter().all(|m| m == "CANCEL"), "{desk:?}");
}

#[test]
fn caller_cancel_is_487_and_cancels_every_device() {
    let mut w = World::start(ring(&["desk", "soft"]));
    w.device_answers("desk", 180, None);
    w.device_answers("soft", 180, None);
    let invite = caller_invite(None, 70);
    let mut cancel = invite.clone();
    cancel.method = Method::CANCEL;
    cancel.headers.set(HeaderName::CSEQ, "1 CANCEL");
    w.deliver_request("caller", cancel);
    let to_caller = w.summary("caller");
    assert!(
        to_caller.contains(&"200".to_string()),
        "CANCEL answered: {to_caller:?}"
    );
    assert_eq!(w.last_to_caller().status, StatusCode::REQUEST_TERMINATED);
    assert_eq!(w.summary("desk"), ["INVITE", "CANCEL"]);
    assert_eq!(w.summary("soft"), ["INVITE", "CANCEL"]);
    assert_eq!(w.disposition(), Disposition::Cancelled);
    assert_eq!(w.record().hangup_side, HangupSide::Caller);
}

#[test]
fn a_200_crossing_the_cancel_is_acked_and_ended() {
    let mut w = World::start(ring(&["desk"]));
    w.device_answers("desk", 180, None);
    let mut cancel = caller_invite(None, 70);
    cancel.method = Method::CANCEL;
    cancel.headers.set(HeaderName::CSEQ, "1 CANCEL");
    w.deliver_request("caller", cancel);
    assert!(
        !w.call.is_finished(),
        "the device's answer is still awaited"
    );
    // The device answered before our CANCEL reached it (RFC 3261 §9.1).
    w.device_answers("desk", 200, None);
    assert_eq!(w.summary("desk"), ["INVITE", "CANCEL", "ACK", "BYE"]);
    assert_eq!(w.last_to_caller().status, StatusCode::REQUEST_TERMINATED);
    assert_eq!(w.disposition(), Disposition::Cancelled);
}

#[test]
fn a_cancel_waits_for_a_provisional_response() {
    let mut w = World::start(ring(&["desk"]));
    let mut cancel = caller_invite(None, 70);
    cancel.method = Method::CANCEL;
    cancel.headers.set(HeaderName::CSEQ, "1 CANCEL");
    w.deliver_request("caller", cancel);
    // RFC 3261 §9.1: no CANCEL before the device said anything.
    assert_eq!(w.summary("desk"), ["INVITE"]);
    w.device_answers("desk", 180, None);
    assert_eq!(w.summary("desk"), ["INVITE", "CANCEL"]);
}

#[test]
fn too_many_hops_and_loops_are_refused() {
    let w = World::start_with(caller_invite(None, 0), ring(&["desk"]), None);
    assert_eq!(w.last_to_caller().status, StatusCode::TOO_MANY_HOPS);
    assert!(w.summary("desk").is_empty());

    let mut looped = caller_invite(None, 70);
    looped.headers.push(
        HeaderName::VIA,
        "SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bKpbx0011",
    );
    let w = World::start_with(looped, ring(&["desk"]), None);
    assert_eq!(w.last_to_caller().status, StatusCode::LOOP_DETECTED);

    // Another PBX of this kind (a second site over a trunk) uses the same branch prefix at
    // its own address: its call is no loop.
    let mut neighbour = caller_invite(None, 70);
    neighbour.headers.push(
        HeaderName::VIA,
        "SIP/2.0/UDP 198.51.100.7:5060;branch=z9hG4bKpbx0012",
    );
    let w = World::start_with(neighbour, ring(&["desk"]), None);
    assert_eq!(w.summary("desk"), ["INVITE"], "the neighbour's call rings");
}

#[test]
fn the_200_is_retransmitted_until_the_ack() {
    let mut w = World::start(ring(&["desk"]));
    w.device_answers("desk", 200, None);
    let oks = |w: &World| w.summary("caller").iter().filter(|s| *s == "200").count();
    assert_eq!(oks(&w), 1);
    w.advance(Duration::from_millis(600));
    assert_eq!(oks(&w), 2, "T1");
    w.advance(Duration::from_millis(1000));
    assert_eq!(oks(&w), 3, "2*T1");
    w.caller_acks();
    w.advance(Duration::from_secs(10));
    assert_eq!(oks(&w), 3, "no more after the ACK");
    assert!(w.call.is_established());
}

#[test]
fn the_answer_to_the_caller_keeps_its_record_route() {
    // A call through a provider's proxy: RFC 3261 §12.1.1, the 2xx copies every
    // Record-Route, in order, so the caller's ACK and BYE come back through the proxy.
    let mut invite = caller_invite(None, 70);
    invite
        .headers
        .push(HeaderName::RECORD_ROUTE, "<sip:proxy2.example;lr>");
    invite
        .headers
        .push(HeaderName::RECORD_ROUTE, "<sip:proxy1.example;lr;ftag=x>");
    let mut w = World::start_with(invite, ring(&["desk"]), None);
    w.device_answers("desk", 180, None);
    w.device_answers("desk", 200, None);
    let ok = w.last_to_caller();
    assert_eq!(ok.status, StatusCode::OK);
    let routes: Vec<&str> = ok
        .headers
        .get_all(&HeaderName::RECORD_ROUTE)
        .filter_map(|v| std::str::from_utf8(v).ok())
        .collect();
    assert_eq!(
        routes,
        ["<sip:proxy2.example;lr>", "<sip:proxy1.example;lr;ftag=x>"]
    );
}

#[test]
fn no_ack_ends_the_call_on_both_sides() {
    let mut w = World::start(ring(&["desk"]));
    w.device_answers("desk", 200, None);
    w.advance(Duration::from_secs(33));
    assert!(w.summary("desk").contains(&"BYE".to_string()));
    assert!(w.summary("caller").contains(&"BYE".to_string()));
    assert_eq!(w.record().hangup_side, HangupSide::Pbx);
}

#[test]
fn info_is_relayed_with_its_body_and_answer() {
    let mut w = World::start(ring(&["desk"]));
    w.device_answers("desk", 200, None);
    w.caller_acks();
    let mut info = support::parse_request(
        "INFO sip:pbx@192.0.2.1:5060 SIP/2.0
Via: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bKinfo1;rport
Max-Forwards: 70
From: \"Alice\" <sip:1001@pbx.test>;tag=alice
To: <sip:1000@pbx.test>
Call-ID: caller-call@10.0.0.1
CSeq: 2 INFO
Content-Type: application/dtmf-relay
Content-Length: 0

",
    );
    let to = w
        .last_to_caller()
        .headers
        .get_str(&HeaderName::TO)
        .unwrap_or_default()
        .to_string();
    info.headers.set(HeaderName::TO, to);
    info.body = bytes::Bytes::from_static(b"Signal=5\r\nDuration=160\r\n");
    w.deliver_request("caller", info);
    let relayed = w.last_request("desk", &Method::INFO);
    assert_eq!(&relayed.body[..], b"Signal=5\r\nDuration=160\r\n");
    assert_eq!(
        relayed.headers.get_str(&HeaderName::CONTENT_TYPE),
        Some("application/dtmf-relay")
    );
    // In the callee's dialog: its Call-ID, our From tag, its To tag, CSeq 2.
    assert_eq!(relayed.headers.call_id(), Some("pbx0-callee"));
    assert_eq!(relayed.headers.cseq().map(|c| c.seq), Ok(2));
    w.party_responds("desk", &Method::INFO, 200, None);
    assert_eq!(w.last_to_caller().status, StatusCode::OK);
    assert_eq!(
        w.last_to_caller()
            .headers
            .cseq()
            .map(|c| c.method.as_str().to_string()),
        Ok("INFO".to_string())
    );
}

#[test]
fn reinvite_is_relayed_and_glare_gets_491() {
    let mut w = World::start(ring(&["desk"]));
    w.device_answers("desk", 200, None);
    w.caller_acks();
    let hold = support::OFFER.replace("a=sendrecv", "a=sendonly");
    w.caller_request("INVITE", 2, Some(&hold));
    let reinvite = w.last_request("desk", &Method::INVITE);
    assert!(String::from_utf8_lossy(&reinvite.body).contains("a=sendonly"));
    // The device re-offers at the same time: one offer at a time (RFC 3261 §14.2).
    w.device_request("desk", "INVITE", 1, Some(support::OFFER));
    assert_eq!(w.summary("desk").last().map(String::as_str), Some("491"));
    // The device accepts the hold; the caller gets the answer, then ACKs.
    let answer = support::OFFER.replace("a=sendrecv", "a=recvonly");
    w.party_responds("desk", &Method::INVITE, 200, Some(&answer));
    assert_eq!(w.summary("desk").last().map(String::as_str), Some("ACK"));
    let ok = w.last_to_caller();
    assert_eq!(ok.status, StatusCode::OK);
    assert!(String::from_utf8_lossy(&ok.body).contains("a=recvonly"));
}

#[test]
fn a_stale_cseq_is_500_and_a_foreign_dialog_481() {
    let mut w = World::start(ring(&["desk"]));
    w.device_answers("desk", 200, None);
    w.caller_acks();
    w.caller_request("OPTIONS", 5, None);
    w.party_responds("desk", &Method::OPTIONS, 200, None);
    w.caller_request("INFO", 4, None);
    assert_eq!(w.last_to_caller().status, StatusCode::SERVER_INTERNAL_ERROR);
    let stray = support::parse_request(
        "BYE sip:pbx@192.0.2.1:5060 SIP/2.0
Via: SIP/2.0/UDP 10.0.0.9:5060;branch=z9hG4bKstray;rport
Max-Forwards: 70
From: <sip:1001@pbx.test>;tag=someone
To: <sip:1000@pbx.test>;tag=else
Call-ID: caller-call@10.0.0.1
CSeq: 9 BYE
Content-Length: 0

",
    );
    w.deliver_request("caller", stray);
    assert_eq!(w.last_to_caller().status, StatusCode::CALL_DOES_NOT_EXIST);
    assert!(w.call.is_established());
}

#[test]
fn a_redirect_is_passed_back_with_its_contacts() {
    let mut w = World::start(ring(&["desk"]));
    let invite = w.invites["desk"].clone();
    let mut moved =
        pbx_sip::message::Response::for_request(&invite, StatusCode(302), Some("tag-desk"));
    moved
        .headers
        .push(HeaderName::CONTACT, "<sip:2000@pbx.test>");
    w.deliver_response(moved);
    let answer = w.last_to_caller();
    assert_eq!(answer.status.code(), 302);
    assert_eq!(
        answer.headers.get_str(&HeaderName::CONTACT),
        Some("<sip:2000@pbx.test>")
    );
    assert!(matches!(w.sent.last(), Some((_, Message::Response(_)))));
}

/// A call routed by a dialplan: failed rounds are reported, not answered.
fn planned(route: Route<&'static str>) -> World {
    World::start_planned(route)
}

#[test]
fn a_busy_round_is_reported_to_the_plan_which_rings_someone_else() {
    let mut w = planned(ring(&["desk"]));
    w.device_answers("desk", 486, None);
    assert_eq!(w.dial_ends.len(), 1);
    assert_eq!(w.dial_ends[0].outcome, pbx_calls::DialOutcome::Busy);
    assert!(
        !w.summary("caller").iter().any(|s| s == "486"),
        "the caller waits for the plan: {:?}",
        w.summary("caller")
    );
    // The plan's on_busy rings another extension, presenting a looked-up name.
    let now = w.now;
    w.call.ring(
        now,
        &mut w.layer,
        vec![support::device("soft")],
        Duration::from_secs(20),
        Some("Looked Up".into()),
    );
    w.settle();
    let invite = &w.invites["soft"];
    assert!(
        invite
            .headers
            .get_str(&HeaderName::FROM)
            .is_some_and(|f| f.contains("\"Looked Up\"")),
        "{invite:?}"
    );
    // A new round has a new From tag (not a merged copy of the first INVITE).
    let tag = |r: &pbx_sip::message::Request| {
        r.headers
            .from()
            .ok()
            .and_then(|f| f.tag().map(str::to_owned))
    };
    assert_ne!(tag(&w.invites["soft"]), tag(&w.invites["desk"]));
    w.device_answers("soft", 200, None);
    assert_eq!(w.last_to_caller().status, StatusCode::OK);
    w.caller_acks();
    w.caller_request("BYE", 2, None);
    assert_eq!(w.disposition(), Disposition::Answered);
}

#[test]
fn a_ring_timeout_is_reported_and_the_plan_has_the_last_word() {
    let mut w = planned(ring(&["desk"]));
    w.device_answers("desk", 180, None);
    w.advance(Duration::from_secs(21));
    assert_eq!(w.dial_ends.len(), 1);
    assert_eq!(w.dial_ends[0].outcome, pbx_calls::DialOutcome::NoAnswer);
    assert_eq!(w.summary("desk")[..2], ["INVITE", "CANCEL"]);
    assert_eq!(w.last_to_caller().status, StatusCode::RINGING);
    let now = w.now;
    w.call.finish(
        now,
        &mut w.layer,
        StatusCode(408),
        "Request Timeout",
        Disposition::NoAnswer,
    );
    w.settle();
    assert_eq!(w.last_to_caller().status.code(), 408);
    assert_eq!(w.disposition(), Disposition::NoAnswer);
}

#[test]
fn a_refusal_tells_the_caller_the_plain_phrase_and_the_cdr_the_detail() {
    let mut w = planned(Route::Wait);
    let now = w.now;
    w.call.refuse(
        now,
        &mut w.layer,
        StatusCode::NOT_FOUND,
        "no rule in context staff matches 5555",
        Disposition::Failed,
    );
    w.settle();
    let last = w.last_to_caller();
    assert_eq!(last.status, StatusCode::NOT_FOUND);
    assert_eq!(&last.reason[..], b"Not Found");
    assert_eq!(
        w.record().hangup_cause,
        "404 Not Found (no rule in context staff matches 5555)"
    );
    assert_eq!(w.disposition(), Disposition::Failed);
}

#[test]
fn a_call_waiting_for_its_plan_can_be_cancelled() {
    let mut w = planned(Route::Wait);
    assert!(w.summary("caller").is_empty() || w.summary("caller") == ["100"]);
    let mut cancel = caller_invite(None, 70);
    cancel.method = Method::CANCEL;
    cancel.headers.set(HeaderName::CSEQ, "1 CANCEL");
    w.deliver_request("caller", cancel);
    assert_eq!(w.last_to_caller().status, StatusCode::REQUEST_TERMINATED);
    assert_eq!(w.disposition(), Disposition::Cancelled);
    assert!(w.call.is_finished());
    // A plan that decides after the CANCEL changes nothing.
    let now = w.now;
    w.call.ring(
        now,
        &mut w.layer,
        vec![support::device("desk")],
        Duration::from_secs(5),
        None,
    );
    w.settle();
    assert!(w.summary("desk").is_empty());
}
