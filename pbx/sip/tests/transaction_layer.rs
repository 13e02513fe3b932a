//! The transaction layer: a UAC layer and a UAS layer talking over a virtual network.

mod transaction_support;

use pbx_sip::message::{HeaderName, Message, Request};
use pbx_sip::status::StatusCode;
use pbx_sip::transaction::{
    RequestDisposition, ResponseDisposition, TimerConfig, TransactionEvent, TransactionKey,
    TransactionLayer, TxnError,
};
use transaction_support::pair::{Pair, Side};
use transaction_support::*;

fn summary(pair: &Pair) -> Vec<(u64, &str)> {
    pair.wire_summary()
        .into_iter()
        .map(|(at, what)| (at, &*what.leak()))
        .collect()
}

fn assert_empty(pair: &mut Pair) {
    assert_eq!(
        (pair.uac.len(), pair.uas.len()),
        (0, 0),
        "transactions left"
    );
    assert!(pair.uac.is_empty() && pair.uas.is_empty());
    assert_eq!(pair.uac.poll_timeout(), None);
    assert_eq!(pair.uas.poll_timeout(), None);
}

fn new_requests(pair: &Pair) -> Vec<(TransactionKey, Request)> {
    pair.uas_requests
        .iter()
        .filter_map(|(_, d)| match d {
            RequestDisposition::New { key, request } => Some((key.clone(), request.clone())),
            _ => None,
        })
        .collect()
}

#[test]
fn invite_rejected_over_udp_is_acked_and_both_sides_clean_up() {
    let mut pair = Pair::new(false);
    pair.answer = |r| (r.method.as_str() == "INVITE").then_some(486);
    let key = pair
        .uac
        .send_request(pair.now, invite("z9hG4bKl1"), Side::Uas, false)
        .unwrap();
    assert_eq!(pair.uac.len(), 1);
    pair.deliver();
    assert_eq!(summary(&pair), [(0, "INVITE"), (0, "486"), (0, "ACK")]);
    assert!(matches!(
        pair.uas_requests.last(),
        Some((_, RequestDisposition::AckAbsorbed))
    ));
    assert!(matches!(pair.uac_responses[0].1, ResponseDisposition::Delivered(ref k) if *k == key));
    assert_eq!(pair.uac_statuses(), [StatusCode::BUSY_HERE]);
    // UAC: Timer D (32 s). UAS: Timer I (T4 = 5 s) after the ACK.
    pair.run_until(5000);
    assert_eq!((pair.uac.len(), pair.uas.len()), (1, 0));
    pair.run_to_end();
    assert_eq!(pair.elapsed_ms(), 32000);
    assert_empty(&mut pair);
    let terminated = |events: &[(u64, TransactionKey, TransactionEvent)]| {
        events
            .iter()
            .filter(|(_, _, e)| matches!(e, TransactionEvent::Terminated))
            .count()
    };
    assert_eq!(
        (terminated(&pair.uac_events), terminated(&pair.uas_events)),
        (1, 1)
    );
    assert_eq!(summary(&pair).len(), 3, "nothing retransmitted");
}

#[test]
fn lost_response_is_recovered_by_the_retransmitted_request() {
    let mut pair = Pair::new(false);
    pair.answer = |_| Some(200);
    let mut lost_first = false;
    pair.loss = Box::new(move |side, _| {
        let lose = side == Side::Uas && !lost_first;
        lost_first |= lose;
        lose
    });
    pair.uac
        .send_request(
            pair.now,
            request("REGISTER", "z9hG4bKreg", 1),
            Side::Uas,
            false,
        )
        .unwrap();
    pair.run_until(10_000);
    // The 200 is lost; Timer E retransmits at 500 ms; the UAS absorbs it and re-sends the 200.
    assert_eq!(
        summary(&pair),
        [(0, "REGISTER"), (0, "200"), (500, "REGISTER"), (500, "200")]
    );
    assert!(matches!(
        pair.uas_requests[1].1,
        RequestDisposition::Retransmission
    ));
    assert_eq!(new_requests(&pair).len(), 1, "the TU saw the request once");
    assert_eq!(pair.uac_statuses(), [StatusCode::OK]);
    // UAC Timer K (5 s) is over; UAS Timer J (32 s) still absorbs retransmissions.
    assert_eq!((pair.uac.len(), pair.uas.len()), (0, 1));
    pair.run_to_end();
    assert_eq!(pair.elapsed_ms(), 32_000);
    assert_empty(&mut pair);
}

#[test]
fn total_loss_times_out_at_64_t1_and_removes_the_transaction() {
    let mut pair = Pair::new(false);
    pair.loss = Box::new(|_, _| true);
    let key = pair
        .uac
        .send_request(pair.now, invite("z9hG4bKlost"), Side::Uas, false)
        .unwrap();
    pair.run_to_end();
    let times: Vec<u64> = summary(&pair).iter().map(|(at, _)| *at).collect();
    assert_eq!(times, [0, 500, 1500, 3500, 7500, 15500, 31500]);
    let events: Vec<_> = pair
        .uac_events
        .iter()
        .map(|(at, k, e)| (*at, k == &key, format!("{e:?}")))
        .collect();
    assert_eq!(
        events,
        [
            (32000, true, "Timeout".into()),
            (32000, true, "Terminated".into())
        ]
    );
    assert_empty(&mut pair);
}

#[test]
fn reliable_transport_never_retransmits_and_ends_at_the_final_response() {
    let mut pair = Pair::new(true);
    pair.answer = |r| {
        Some(if r.method.as_str() == "INVITE" {
            603
        } else {
            200
        })
    };
    pair.uac
        .send_request(
            pair.now,
            request("OPTIONS", "z9hG4bKopt", 1),
            Side::Uas,
            true,
        )
        .unwrap();
    pair.deliver();
    pair.uac
        .send_request(pair.now, invite("z9hG4bKinv"), Side::Uas, true)
        .unwrap();
    pair.deliver();
    // Timers K, J, D, I are zero: everything is gone the moment it completes.
    assert_empty(&mut pair);
    assert_eq!(
        summary(&pair),
        [
            (0, "OPTIONS"),
            (0, "200"),
            (0, "INVITE"),
            (0, "603"),
            (0, "ACK")
        ]
    );
}

#[test]
fn retransmitted_final_to_invite_is_acked_again_by_the_uac() {
    let mut pair = Pair::new(false);
    pair.answer = |_| Some(480);
    // The first ACK is lost: the UAS retransmits the 480 (Timer G), the UAC ACKs it again.
    let mut acks = 0;
    pair.loss = Box::new(move |side, m| {
        let is_ack =
            side == Side::Uac && matches!(m, Message::Request(r) if r.method.as_str() == "ACK");
        acks += usize::from(is_ack);
        is_ack && acks == 1
    });
    pair.uac
        .send_request(pair.now, invite("z9hG4bKg"), Side::Uas, false)
        .unwrap();
    pair.run_to_end();
    assert_eq!(
        summary(&pair),
        [
            (0, "INVITE"),
            (0, "480"),
            (0, "ACK"),
            (500, "480"),
            (500, "ACK")
        ]
    );
    assert_eq!(pair.uac_statuses(), [StatusCode::TEMPORARILY_UNAVAILABLE]);
    assert!(matches!(
        pair.uac_responses[1].1,
        ResponseDisposition::Absorbed(_)
    ));
    assert_empty(&mut pair);
}

#[test]
fn timer_h_fires_when_no_ack_ever_arrives() {
    let mut pair = Pair::new(false);
    pair.answer = |_| Some(500);
    pair.loss = Box::new(|side, m| {
        side == Side::Uac && matches!(m, Message::Request(r) if r.method.as_str() == "ACK")
    });
    pair.uac
        .send_request(pair.now, invite("z9hG4bKh"), Side::Uas, false)
        .unwrap();
    pair.run_to_end();
    let timeouts: Vec<_> = pair
        .uas_events
        .iter()
        .filter(|(_, _, e)| matches!(e, TransactionEvent::Timeout))
        .map(|(at, _, _)| *at)
        .collect();
    assert_eq!(timeouts, [32000]);
    assert_empty(&mut pair);
}

#[test]
fn cancel_matches_the_invite_and_both_complete() {
    let mut pair = Pair::new(false);
    let invite = invite("z9hG4bKcan");
    let invite_key = pair
        .uac
        .send_request(pair.now, invite.clone(), Side::Uas, false)
        .unwrap();
    pair.run_until(300);
    let [(server_invite, received)] = new_requests(&pair).try_into().expect("one INVITE");
    pair.uas
        .respond(
            pair.now,
            &server_invite,
            response(&received, 180, Some("uas-tag")),
        )
        .unwrap();
    pair.deliver();
    let cancel = request("CANCEL", "z9hG4bKcan", 1);
    let cancel_key = pair
        .uac
        .send_request(pair.now, cancel, Side::Uas, false)
        .unwrap();
    pair.deliver();
    let Some((
        _,
        RequestDisposition::CancelFor {
            key,
            invite: cancelled,
            request,
        },
    )) = pair.uas_requests.last()
    else {
        panic!("CANCEL not matched: {:?}", pair.uas_requests.last());
    };
    assert_eq!(cancelled, &server_invite);
    let (key, request) = (key.clone(), request.clone());
    // §9.2: 200 to the CANCEL, 487 to the INVITE.
    pair.uas
        .respond(pair.now, &key, response(&request, 200, Some("uas-tag")))
        .unwrap();
    pair.uas
        .respond(
            pair.now,
            &server_invite,
            response(&received, 487, Some("uas-tag")),
        )
        .unwrap();
    pair.deliver();
    let finals: Vec<_> = pair
        .uac_events
        .iter()
        .filter_map(|(_, k, e)| match e {
            TransactionEvent::Response(r) if r.status.is_final() => Some((k.clone(), r.status)),
            _ => None,
        })
        .collect();
    assert_eq!(
        finals,
        [
            (cancel_key, StatusCode::OK),
            (invite_key, StatusCode::REQUEST_TERMINATED)
        ]
    );
    assert!(matches!(
        pair.uas_requests.last(),
        Some((_, RequestDisposition::AckAbsorbed))
    ));
    pair.run_to_end();
    assert_empty(&mut pair);
}

#[test]
fn unmatched_cancel_is_a_new_request_for_the_tu() {
    let mut layer: TransactionLayer<u8> = TransactionLayer::new(TimerConfig::default());
    let now = base();
    let cancel = request("CANCEL", "z9hG4bKnone", 1);
    let disposition = layer.handle_request(now, cancel, 1, false).unwrap();
    assert!(
        matches!(disposition, RequestDisposition::New { ref key, .. } if key.cancelled_invite().is_some())
    );
}

#[test]
fn invite_2xx_reaches_the_tu_for_every_retransmission_and_its_ack_is_the_tus() {
    let mut pair = Pair::new(false);
    pair.answer = |_| Some(200);
    let key = pair
        .uac
        .send_request(pair.now, invite("z9hG4bK2xx"), Side::Uas, false)
        .unwrap();
    pair.deliver();
    assert_eq!(summary(&pair), [(0, "INVITE"), (0, "200"), (0, "ACK")]);
    // The UAS TU's ACK is its own transaction: passed up, not absorbed.
    assert!(matches!(
        pair.uas_requests.last(),
        Some((_, RequestDisposition::Ack(_)))
    ));
    // The UAS TU retransmits its 2xx (§13.3.1.4) through the Accepted transaction: the UAC
    // passes each one to its TU, which ACKs again.
    pair.run_until(500);
    let [(server_key, received)] = new_requests(&pair).try_into().expect("one INVITE");
    pair.uas
        .respond(
            pair.now,
            &server_key,
            response(&received, 200, Some("uas-tag")),
        )
        .unwrap();
    pair.deliver();
    assert_eq!(pair.uac_statuses(), [StatusCode::OK, StatusCode::OK]);
    assert!(
        pair.uac_responses
            .iter()
            .all(|(_, d)| matches!(d, ResponseDisposition::Delivered(k) if *k == key))
    );
    // A retransmitted INVITE (a late copy) is absorbed by the Accepted server transaction.
    let disposition = pair
        .uas
        .handle_request(pair.now, invite("z9hG4bK2xx"), Side::Uac, false)
        .unwrap();
    assert!(matches!(disposition, RequestDisposition::Retransmission));
    assert_eq!(new_requests(&pair).len(), 1);
    pair.run_to_end();
    assert_eq!(pair.elapsed_ms(), 32000, "Timers L and M");
    assert_empty(&mut pair);
    // After Timer M a 2xx is a stray: discarded (RFC 6026 §8.9).
    let late = pair
        .uac
        .handle_response(pair.now, response(&received, 200, Some("uas-tag")));
    assert!(matches!(late, ResponseDisposition::Unmatched(_)));
}

#[test]
fn layer_misuse_is_refused() {
    let mut layer: TransactionLayer<u8> = TransactionLayer::new(TimerConfig::default());
    let now = base();
    let options = request("OPTIONS", "z9hG4bKm", 1);
    let client = layer.send_request(now, options.clone(), 1, false).unwrap();
    assert_eq!(
        layer.send_request(now, options.clone(), 1, false),
        Err(TxnError::DuplicateKey)
    );
    let ack = ack_for(&invite("z9hG4bKm"), "t");
    assert_eq!(
        layer.send_request(now, ack, 1, false),
        Err(TxnError::AckHasNoTransaction)
    );
    let ok = response(&options, 200, Some("t"));
    assert_eq!(
        layer.respond(now, &client, ok.clone()),
        Err(TxnError::NotAServerTransaction)
    );
    let server = TransactionKey::server(&options).unwrap();
    assert_eq!(
        layer.respond(now, &server, ok),
        Err(TxnError::NoSuchTransaction)
    );
    let mut no_via = options.clone();
    no_via.headers.remove_all(&HeaderName::VIA);
    let err = layer.handle_request(now, no_via, 2, false).unwrap_err();
    assert_eq!(err.status(), StatusCode::BAD_REQUEST);
    assert_eq!(layer.len(), 1);
}

#[test]
fn transport_error_is_reported_for_the_transaction_that_sent() {
    let mut layer: TransactionLayer<u8> = TransactionLayer::new(TimerConfig::default());
    let now = base();
    let key = layer
        .send_request(now, invite("z9hG4bKte"), 9, true)
        .unwrap();
    let sent = layer.poll_transmit().expect("the INVITE");
    assert_eq!((sent.to, sent.key.as_ref()), (9, Some(&key)));
    layer.handle_transport_error(now, &key);
    let events: Vec<_> = std::iter::from_fn(|| layer.poll_event())
        .map(|(k, e)| (k == key, format!("{e:?}")))
        .collect();
    assert_eq!(
        events,
        [(true, "TransportError".into()), (true, "Terminated".into())]
    );
    assert!(layer.is_empty());
    assert_eq!(layer.poll_timeout(), None);
}

#[test]
fn abandon_removes_a_transaction() {
    let mut layer: TransactionLayer<u8> = TransactionLayer::new(TimerConfig::default());
    let now = base();
    let key = layer
        .send_request(now, invite("z9hG4bKab"), 1, false)
        .unwrap();
    assert!(layer.contains(&key));
    assert!(layer.abandon(&key));
    assert!(!layer.abandon(&key));
    assert!(layer.is_empty());
    assert_eq!(layer.poll_timeout(), None);
    layer.handle_timeout(now + ms(100_000));
    assert_eq!(
        layer.poll_transmit().map(|t| t.key.is_some()),
        Some(true),
        "the INVITE sent before"
    );
    assert!(layer.poll_transmit().is_none());
}

/// A small deterministic generator for the loss pattern.
fn lcg(seed: &mut u64) -> u64 {
    *seed = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    *seed >> 33
}

#[test]
fn many_transactions_under_loss_all_end_and_nothing_leaks() {
    let mut pair = Pair::new(false);
    pair.answer = |r| {
        let cseq = r.headers.cseq().map(|c| c.seq).unwrap_or(0);
        Some(match r.method.as_str() {
            "INVITE" if cseq % 2 == 0 => 200,
            "INVITE" => 486,
            _ => 200,
        })
    };
    let mut seed = 7;
    pair.loss = Box::new(move |_, _| lcg(&mut seed) % 100 < 20);
    let mut keys = Vec::new();
    for i in 0..600u32 {
        // Spread the requests over the first 10 s.
        pair.run_until(u64::from(i) * 16);
        let method = if i % 3 == 0 { "INVITE" } else { "OPTIONS" };
        let req = request(method, &format!("z9hG4bKmany{i}"), i);
        keys.push(
            pair.uac
                .send_request(pair.now, req, Side::Uas, false)
                .unwrap(),
        );
    }
    assert!(pair.uac.len() > 100);
    pair.run_to_end();
    assert_empty(&mut pair);
    // Every client transaction ended exactly once, after a final response or a timeout.
    let mut finals = 0;
    for (i, key) in keys.iter().enumerate() {
        let events: Vec<_> = pair
            .uac_events
            .iter()
            .filter(|(_, k, _)| k == key)
            .map(|(_, _, e)| e)
            .collect();
        let terminated = events
            .iter()
            .filter(|e| matches!(e, TransactionEvent::Terminated))
            .count();
        assert_eq!(terminated, 1, "{key:?}");
        assert!(matches!(events.last(), Some(TransactionEvent::Terminated)));
        let got_final = events
            .iter()
            .any(|e| matches!(e, TransactionEvent::Response(r) if r.status.is_final()));
        let timed_out = events
            .iter()
            .any(|e| matches!(e, TransactionEvent::Timeout));
        assert!(got_final != timed_out, "{key:?}");
        finals += usize::from(got_final);
        // Retransmissions recover every loss, except that of the one 2xx to an INVITE: its
        // retransmission is the UAS TU's job (§13.3.1.4), which this TU does not do.
        let answered_2xx = i % 3 == 0 && i % 2 == 0;
        assert!(got_final || answered_2xx, "transaction {i} timed out");
    }
    assert!(finals >= 550, "only {finals} of 600 completed");
    // Each request reached the UAS TU once, however often it was retransmitted.
    assert_eq!(new_requests(&pair).len(), 600);
}
