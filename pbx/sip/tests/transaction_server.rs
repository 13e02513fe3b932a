//! The server transactions (RFC 3261 §17.2, RFC 6026) in virtual time.

mod transaction_support;

use pbx_sip::message::{HeaderName, Request};
use pbx_sip::transaction::{
    ServerInvite, ServerInviteState, ServerNonInvite, ServerNonInviteState, TimerConfig, TxnError,
};
use std::time::Duration;
use transaction_support::*;

fn server_invite(reliable: bool, config: TimerConfig) -> (Driver<ServerInvite>, Request) {
    let base = base();
    let request = invite("z9hG4bKs1");
    let txn = ServerInvite::new(base, &request, reliable, config);
    (Driver::new(base, txn), request)
}

fn statuses(d: &Driver<impl Machine>) -> Vec<(u64, u16)> {
    d.sent
        .iter()
        .filter_map(|(at, m)| status_of(m).map(|s| (*at, s)))
        .collect()
}

#[test]
fn trying_is_sent_after_200_ms_when_the_tu_is_silent() {
    let (mut d, request) = server_invite(false, TimerConfig::default());
    assert!(d.sent.is_empty());
    d.run_until(1000);
    assert_eq!(statuses(&d), [(200, 100)]);
    let Some((_, pbx_sip::message::Message::Response(trying))) = d.sent.first() else {
        panic!("100 Trying")
    };
    // §8.2.6.2: the 100 echoes Via, From, To (no tag added), Call-ID and CSeq.
    for name in [
        HeaderName::VIA,
        HeaderName::FROM,
        HeaderName::TO,
        HeaderName::CALL_ID,
        HeaderName::CSEQ,
    ] {
        assert_eq!(
            trying.headers.get(&name),
            request.headers.get(&name),
            "{name}"
        );
    }
    // Proceeding has no timers of its own: the INVITE may ring for minutes.
    assert_eq!(d.machine.poll_timeout(), None);
}

#[test]
fn no_trying_when_the_tu_answers_within_200_ms() {
    let (mut d, request) = server_invite(false, TimerConfig::default());
    d.run_until(50);
    d.input(|m, now| m.respond(now, response(&request, 401, Some("s"))))
        .unwrap();
    d.run_until(1000);
    assert_eq!(statuses(&d), [(50, 401), (550, 401)]);
}

#[test]
fn trying_at_once_when_configured_with_zero_delay() {
    let config = TimerConfig {
        trying: Duration::ZERO,
        ..TimerConfig::default()
    };
    let (d, _) = server_invite(false, config);
    assert_eq!(statuses(&d), [(0, 100)]);
}

#[test]
fn retransmitted_invite_gets_the_latest_provisional_again() {
    let (mut d, request) = server_invite(false, TimerConfig::default());
    // A retransmission before the TU spoke is answered with the 100 at once.
    d.run_until(100);
    d.input(|m, now| m.handle_request(now, request.clone()));
    d.run_until(1000);
    d.input(|m, now| m.respond(now, response(&request, 180, Some("s"))))
        .unwrap();
    d.run_until(1500);
    assert!(
        d.input(|m, now| m.handle_request(now, request.clone()))
            .is_none()
    );
    assert_eq!(statuses(&d), [(100, 100), (1000, 180), (1500, 180)]);
}

#[test]
fn final_response_timer_g_doubles_to_t2_until_timer_h_without_ack() {
    let (mut d, request) = server_invite(false, TimerConfig::default());
    d.input(|m, now| m.respond(now, response(&request, 486, Some("s"))))
        .unwrap();
    assert_eq!(d.machine.state(), ServerInviteState::Completed);
    d.run_to_end();
    let times: Vec<_> = statuses(&d)
        .into_iter()
        .map(|(at, s)| {
            assert_eq!(s, 486);
            at
        })
        .collect();
    // Each retransmission is the first response again, byte for byte (the transaction keeps
    // it serialized).
    let first = d.sent[0].1.to_bytes();
    assert!(d.sent.iter().all(|(_, m)| m.to_bytes() == first));
    // RFC 3261 §17.2.1: G = 500, 1000, 2000, then T2 = 4000; H at 64*T1 = 32 s.
    assert_eq!(
        times,
        [
            0, 500, 1500, 3500, 7500, 11500, 15500, 19500, 23500, 27500, 31500
        ]
    );
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
fn ack_confirms_then_timer_i_ends_and_retransmissions_are_absorbed() {
    let (mut d, request) = server_invite(false, TimerConfig::default());
    let busy = response(&request, 486, Some("s"));
    d.input(|m, now| m.respond(now, busy)).unwrap();
    d.run_until(1000);
    // A retransmitted INVITE in Completed gets the final response again.
    d.input(|m, now| m.handle_request(now, request.clone()));
    assert_eq!(statuses(&d), [(0, 486), (500, 486), (1000, 486)]);
    let ack = ack_for(&request, "s");
    assert!(
        d.input(|m, now| m.handle_request(now, ack.clone()))
            .is_none()
    );
    assert_eq!(d.machine.state(), ServerInviteState::Confirmed);
    d.clear();
    // Confirmed: Timer G no longer fires, further ACKs and INVITEs are absorbed.
    d.run_until(3000);
    assert!(
        d.input(|m, now| m.handle_request(now, ack.clone()))
            .is_none()
    );
    d.input(|m, now| m.handle_request(now, request.clone()));
    assert!(d.sent.is_empty());
    // RFC 3261 §17.2.1: Timer I = T4 = 5 s after the ACK.
    d.run_to_end();
    assert_eq!(
        d.events
            .iter()
            .map(|(at, e)| (*at, is_terminated(e)))
            .collect::<Vec<_>>(),
        [(6000, true)]
    );
    assert!(d.sent.is_empty());
    assert_eq!(
        d.input(|m, now| m.respond(now, response(&request, 500, Some("s")))),
        Err(TxnError::Terminated)
    );
}

#[test]
fn reliable_transport_sends_once_and_timer_i_is_zero() {
    let (mut d, request) = server_invite(true, TimerConfig::default());
    d.input(|m, now| m.respond(now, response(&request, 404, Some("s"))))
        .unwrap();
    // No Timer G on a reliable transport; only H is running.
    assert_eq!(d.machine.poll_timeout(), Some(d.base + ms(32000)));
    d.run_until(2000);
    assert!(
        d.input(|m, now| m.handle_request(now, ack_for(&request, "s")))
            .is_none()
    );
    assert!(d.machine.is_terminated());
    assert_eq!(statuses(&d), [(0, 404)]);
    assert_eq!(d.machine.poll_timeout(), None);
}

#[test]
fn a_second_final_response_is_refused() {
    let (mut d, request) = server_invite(false, TimerConfig::default());
    d.input(|m, now| m.respond(now, response(&request, 480, Some("s"))))
        .unwrap();
    let again = d.input(|m, now| m.respond(now, response(&request, 500, Some("s"))));
    assert_eq!(again, Err(TxnError::FinalResponseSent));
    let late_ok = d.input(|m, now| m.respond(now, response(&request, 200, Some("s"))));
    assert_eq!(late_ok, Err(TxnError::FinalResponseSent));
}

#[test]
fn accepted_absorbs_invite_retransmissions_passes_acks_and_ends_on_timer_l() {
    let (mut d, request) = server_invite(false, TimerConfig::default());
    let ok = response(&request, 200, Some("s"));
    d.run_until(100);
    d.input(|m, now| m.respond(now, ok.clone())).unwrap();
    assert_eq!(d.machine.state(), ServerInviteState::Accepted);
    d.run_until(600);
    // RFC 6026 §8.7: INVITE retransmissions are absorbed without a resend of the 2xx (the TU
    // retransmits 2xx, §13.3.1.4), and go through here when it does.
    assert!(
        d.input(|m, now| m.handle_request(now, request.clone()))
            .is_none()
    );
    assert_eq!(statuses(&d), [(100, 200)]);
    d.input(|m, now| m.respond(now, ok.clone())).unwrap();
    assert_eq!(statuses(&d), [(100, 200), (600, 200)]);
    // The ACK of the 2xx is the TU's.
    let ack = ack_for(&request, "s");
    assert!(
        d.input(|m, now| m.handle_request(now, ack.clone()))
            .is_some()
    );
    // RFC 6026 §8.7: Timer L = 64*T1.
    d.run_to_end();
    assert_eq!(
        d.events
            .iter()
            .map(|(at, e)| (*at, is_terminated(e)))
            .collect::<Vec<_>>(),
        [(32100, true)]
    );
    assert_eq!(statuses(&d).len(), 2);
}

#[test]
fn timer_l_also_runs_on_reliable_transports() {
    let (mut d, request) = server_invite(true, TimerConfig::default());
    d.input(|m, now| m.respond(now, response(&request, 200, Some("s"))))
        .unwrap();
    assert!(!d.machine.is_terminated());
    assert_eq!(d.machine.poll_timeout(), Some(d.base + ms(32000)));
}

#[test]
fn invite_server_transport_error_informs_the_tu() {
    let (mut d, request) = server_invite(false, TimerConfig::default());
    d.input(|m, now| m.respond(now, response(&request, 486, Some("s"))))
        .unwrap();
    d.input(|m, now| m.handle_transport_error(now));
    let events: Vec<_> = d.events.iter().map(|(_, e)| format!("{e:?}")).collect();
    assert_eq!(events, ["TransportError", "Terminated"]);
}

fn server_non_invite(reliable: bool) -> Driver<ServerNonInvite> {
    Driver::new(
        base(),
        ServerNonInvite::new(reliable, TimerConfig::default()),
    )
}

#[test]
fn non_invite_absorbs_retransmissions_and_resends_the_latest_response() {
    let mut d = server_non_invite(false);
    let request = request("OPTIONS", "z9hG4bKo1", 5);
    // Trying: a retransmission is discarded; there is nothing to resend.
    d.run_until(500);
    d.input(|m, now| m.handle_request(now));
    assert!(d.sent.is_empty());
    assert_eq!(d.machine.poll_timeout(), None);
    d.input(|m, now| m.respond(now, response(&request, 100, None)))
        .unwrap();
    assert_eq!(d.machine.state(), ServerNonInviteState::Proceeding);
    d.run_until(1500);
    d.input(|m, now| m.handle_request(now));
    d.run_until(2000);
    d.input(|m, now| m.respond(now, response(&request, 200, Some("s"))))
        .unwrap();
    assert_eq!(d.machine.state(), ServerNonInviteState::Completed);
    d.run_until(4000);
    d.input(|m, now| m.handle_request(now));
    assert_eq!(
        statuses(&d),
        [(500, 100), (1500, 100), (2000, 200), (4000, 200)]
    );
    assert_eq!(
        d.input(|m, now| m.respond(now, response(&request, 500, Some("s")))),
        Err(TxnError::FinalResponseSent)
    );
    // RFC 3261 §17.2.2: Timer J = 64*T1 after the final response, no response retransmissions.
    d.run_to_end();
    assert_eq!(
        d.events
            .iter()
            .map(|(at, e)| (*at, is_terminated(e)))
            .collect::<Vec<_>>(),
        [(34000, true)]
    );
    assert_eq!(statuses(&d).len(), 4);
}

#[test]
fn non_invite_reliable_timer_j_is_zero() {
    let mut d = server_non_invite(true);
    let request = request("REGISTER", "z9hG4bKr9", 2);
    d.run_until(10);
    d.input(|m, now| m.respond(now, response(&request, 200, Some("s"))))
        .unwrap();
    assert!(d.machine.is_terminated());
    assert_eq!(statuses(&d), [(10, 200)]);
    assert_eq!(
        d.events
            .iter()
            .map(|(at, e)| (*at, is_terminated(e)))
            .collect::<Vec<_>>(),
        [(10, true)]
    );
}
