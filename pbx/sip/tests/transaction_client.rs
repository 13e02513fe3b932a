//! The client transactions (RFC 3261 §17.1) in virtual time.

mod transaction_support;

use pbx_sip::message::{HeaderName, Message};
use pbx_sip::method::Method;
use pbx_sip::transaction::{
    ClientInvite, ClientInviteState, ClientNonInvite, ClientNonInviteState, TimerConfig,
    TransactionEvent,
};
use transaction_support::*;

fn client_invite(reliable: bool) -> Driver<ClientInvite> {
    let base = base();
    Driver::new(
        base,
        ClientInvite::new(base, invite("z9hG4bKc1"), reliable, TimerConfig::default()),
    )
}

fn client_non_invite(reliable: bool) -> Driver<ClientNonInvite> {
    let base = base();
    let register = request("REGISTER", "z9hG4bKr1", 1);
    Driver::new(
        base,
        ClientNonInvite::new(base, register, reliable, TimerConfig::default()),
    )
}

#[test]
fn invite_timer_a_doubles_until_timer_b_times_out() {
    let mut d = client_invite(false);
    d.run_to_end();
    // RFC 3261 §17.1.1.2: sent at 0, then after 500, 1000, 2000, 4000, 8000, 16000 ms; Timer B
    // (64*T1 = 32 s) ends it before the next one (at 63.5 s).
    assert_eq!(d.send_times(), [0, 500, 1500, 3500, 7500, 15500, 31500]);
    assert!(d.sent.iter().all(|(_, m)| method_of(m) == Some("INVITE")));
    let events: Vec<_> = d
        .events
        .iter()
        .map(|(at, e)| (*at, format!("{e:?}")))
        .collect();
    assert_eq!(
        events,
        [
            (32000, "Timeout".to_owned()),
            (32000, "Terminated".to_owned())
        ]
    );
    assert!(d.machine.is_terminated());
    assert_eq!(d.machine.poll_timeout(), None);
}

#[test]
fn invite_over_reliable_transport_is_not_retransmitted() {
    let mut d = client_invite(true);
    d.run_to_end();
    assert_eq!(d.send_times(), [0]);
    assert!(d.has_event(is_timeout));
    assert_eq!(d.elapsed_ms(), 32000);
}

#[test]
fn provisional_stops_retransmission_and_reaches_the_tu() {
    let mut d = client_invite(false);
    d.run_until(700);
    let ringing = response(d.machine.request(), 180, Some("t1"));
    d.input(|m, now| m.handle_response(now, ringing));
    assert_eq!(d.machine.state(), ClientInviteState::Proceeding);
    assert_eq!(d.response_events(), [180]);
    // No Timer A, no Timer B in Proceeding: it waits for the final response.
    assert_eq!(d.machine.poll_timeout(), None);
    d.run_until(100_000);
    assert_eq!(d.send_times(), [0, 500]);
}

#[test]
fn non_2xx_final_is_acked_by_the_transaction_and_the_ack_resent_for_each_retransmission() {
    let mut d = client_invite(false);
    let original = d.machine.request().clone();
    let busy = response(&original, 486, Some("callee-tag"));
    d.run_until(100);
    d.input(|m, now| m.handle_response(now, busy.clone()));
    assert_eq!(d.machine.state(), ClientInviteState::Completed);
    assert_eq!(d.response_events(), [486]);

    let acks: Vec<_> = d
        .sent
        .iter()
        .filter(|(_, m)| method_of(m) == Some("ACK"))
        .collect();
    assert_eq!(acks.len(), 1);
    let Message::Request(ack) = &acks[0].1 else {
        panic!("ACK is a request")
    };
    // RFC 3261 §17.1.1.3: Request-URI, Call-ID, From of the INVITE; To of the response; CSeq
    // number with method ACK; one Via, the INVITE's top; the INVITE's Route headers.
    assert_eq!(ack.method, Method::ACK);
    assert_eq!(ack.uri, original.uri);
    let h = &ack.headers;
    assert_eq!(h.get_all(&HeaderName::VIA).count(), 1);
    assert_eq!(h.top_via().unwrap().branch(), Some("z9hG4bKc1"));
    assert_eq!(
        h.get(&HeaderName::FROM),
        original.headers.get(&HeaderName::FROM)
    );
    assert_eq!(
        h.get(&HeaderName::CALL_ID),
        original.headers.get(&HeaderName::CALL_ID)
    );
    assert_eq!(h.to().unwrap().tag(), Some("callee-tag"));
    let cseq = h.cseq().unwrap();
    assert_eq!((cseq.seq, cseq.method), (1, Method::ACK));
    let routes: Vec<_> = h.get_all(&HeaderName::ROUTE).collect();
    assert_eq!(
        routes,
        original
            .headers
            .get_all(&HeaderName::ROUTE)
            .collect::<Vec<_>>()
    );
    assert!(h.max_forwards().is_some());

    // Each retransmitted 486 gets the ACK again and does not reach the TU.
    d.clear();
    d.run_until(1000);
    d.input(|m, now| m.handle_response(now, busy.clone()));
    d.run_until(3000);
    d.input(|m, now| m.handle_response(now, busy.clone()));
    assert_eq!(d.send_times(), [1000, 3000]);
    assert!(d.sent.iter().all(|(_, m)| method_of(m) == Some("ACK")));
    assert!(d.response_events().is_empty());

    // RFC 3261 §17.1.1.2: Timer D (32 s) ends Completed.
    d.run_to_end();
    assert_eq!(
        d.events.last().map(|(at, e)| (*at, is_terminated(e))),
        Some((32100, true))
    );
}

#[test]
fn non_2xx_final_over_reliable_transport_terminates_at_once() {
    let mut d = client_invite(true);
    let decline = response(d.machine.request(), 603, Some("x"));
    d.input(|m, now| m.handle_response(now, decline));
    // Timer D = 0: the ACK goes out and the transaction is gone.
    assert_eq!(
        d.sent
            .iter()
            .filter_map(|(_, m)| method_of(m))
            .collect::<Vec<_>>(),
        ["INVITE", "ACK"]
    );
    assert!(d.machine.is_terminated());
    assert!(d.has_event(is_terminated));
    assert_eq!(d.machine.poll_timeout(), None);
}

#[test]
fn every_2xx_reaches_the_tu_while_accepted_then_timer_m_ends_it() {
    let mut d = client_invite(false);
    let original = d.machine.request().clone();
    d.run_until(200);
    d.input(|m, now| m.handle_response(now, response(&original, 200, Some("fork-a"))));
    assert_eq!(d.machine.state(), ClientInviteState::Accepted);
    // The transaction sends no ACK for a 2xx (the TU does, §13.2.2.4) and stops Timer A.
    assert_eq!(d.send_times(), [0]);
    d.run_until(4000);
    d.input(|m, now| m.handle_response(now, response(&original, 200, Some("fork-a"))));
    d.input(|m, now| m.handle_response(now, response(&original, 200, Some("fork-b"))));
    // A late 180 is ignored.
    d.input(|m, now| m.handle_response(now, response(&original, 180, Some("fork-c"))));
    assert_eq!(d.response_events(), [200, 200, 200]);
    assert_eq!(d.send_times(), [0]);
    // RFC 6026 §8.4: Timer M = 64*T1 after the first 2xx.
    d.run_to_end();
    assert_eq!(
        d.events.last().map(|(at, e)| (*at, is_terminated(e))),
        Some((32200, true))
    );
}

#[test]
fn invite_transport_error_informs_the_tu() {
    let mut d = client_invite(false);
    d.input(|m, now| m.handle_transport_error(now));
    let events: Vec<_> = d.events.iter().map(|(_, e)| format!("{e:?}")).collect();
    assert_eq!(events, ["TransportError", "Terminated"]);
    assert!(d.machine.is_terminated());
}

#[test]
fn non_invite_timer_e_doubles_up_to_t2_until_timer_f() {
    let mut d = client_non_invite(false);
    d.run_to_end();
    // RFC 3261 §17.1.2.2: intervals 500, 1000, 2000, then T2 = 4000 each, until F at 32 s.
    assert_eq!(
        d.send_times(),
        [
            0, 500, 1500, 3500, 7500, 11500, 15500, 19500, 23500, 27500, 31500
        ]
    );
    assert!(d.sent.iter().all(|(_, m)| method_of(m) == Some("REGISTER")));
    let events: Vec<_> = d
        .events
        .iter()
        .map(|(at, e)| (*at, format!("{e:?}")))
        .collect();
    assert_eq!(
        events,
        [
            (32000, "Timeout".to_owned()),
            (32000, "Terminated".to_owned())
        ]
    );
}

#[test]
fn non_invite_in_proceeding_retransmits_every_t2() {
    let mut d = client_non_invite(false);
    d.run_until(600);
    let trying = response(d.machine.request(), 100, None);
    d.input(|m, now| m.handle_response(now, trying));
    assert_eq!(d.machine.state(), ClientNonInviteState::Proceeding);
    d.run_to_end();
    // The Timer E set in Trying (1500) still fires, then every T2 = 4 s until F.
    assert_eq!(
        d.send_times(),
        [0, 500, 1500, 5500, 9500, 13500, 17500, 21500, 25500, 29500]
    );
    assert_eq!(d.response_events(), [100]);
    assert!(d.has_event(is_timeout));
}

#[test]
fn non_invite_final_then_timer_k_absorbs_retransmissions() {
    let mut d = client_non_invite(false);
    let ok = response(d.machine.request(), 200, Some("reg"));
    d.run_until(300);
    d.input(|m, now| m.handle_response(now, ok.clone()));
    assert_eq!(d.machine.state(), ClientNonInviteState::Completed);
    d.run_until(2000);
    d.input(|m, now| m.handle_response(now, ok.clone()));
    assert_eq!(d.response_events(), [200]);
    assert_eq!(d.send_times(), [0]);
    // RFC 3261 §17.1.2.2: Timer K = T4 = 5 s.
    d.run_to_end();
    assert_eq!(
        d.events.last().map(|(at, e)| (*at, is_terminated(e))),
        Some((5300, true))
    );
}

#[test]
fn non_invite_over_reliable_transport_has_timer_k_zero() {
    let mut d = client_non_invite(true);
    assert_eq!(d.machine.poll_timeout(), Some(d.base + ms(32000)));
    let ok = response(d.machine.request(), 200, Some("reg"));
    d.run_until(50);
    d.input(|m, now| m.handle_response(now, ok));
    assert!(d.machine.is_terminated());
    assert_eq!(d.send_times(), [0]);
    let events: Vec<_> = d
        .events
        .iter()
        .map(|(at, e)| (*at, format!("{e:?}")))
        .collect();
    assert_eq!(events.len(), 2);
    assert_eq!(events[1], (50, "Terminated".to_owned()));
    assert!(matches!(d.events[0].1, TransactionEvent::Response(_)));
}

#[test]
fn non_invite_total_loss_reliable_still_times_out() {
    let mut d = client_non_invite(true);
    d.run_to_end();
    assert_eq!(d.send_times(), [0]);
    assert_eq!(
        d.events.iter().map(|(at, _)| *at).collect::<Vec<_>>(),
        [32000, 32000]
    );
    assert!(d.has_event(is_timeout));
}
