//! Datagrams that reach a leg before the session's first plan: the callee may send the
//! moment it has sent its 200 (RFC 3264 §6), and its packets can overtake the 200 on its way
//! through the PBX's SIP engine. They are kept (a few per leg, for a short while) and relayed
//! in order when the plan comes, in virtual time.

mod relay_support;
mod session_support;

use std::time::Duration;

use pbx_media::endpoint::echo::EchoSpec;
use pbx_media::relay::{Component, DropReason, LatchPolicy, Verdict};
use pbx_media::session::{Command, MediaSession};
use pbx_media::{LegPlan, Side};
use relay_support::{addr, base, feed, leg, plan, rtcp_rr, rtp};
use session_support::run_until;

const CALLER: &str = "192.0.2.10:4000";
const CALLEE: &str = "198.51.100.20:6000";
/// Where the callee really sends from (behind NAT): with `strict_rtp = "off"` the first held
/// packet latches it (the strict rule for held packets: relay_strict.rs).
const CALLEE_NAT: &str = "203.0.113.9:31000";

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

#[test]
fn packets_before_the_plan_are_relayed_in_order_when_it_comes() {
    let t0 = base();
    let mut s = MediaSession::relay(t0).with_latching(LatchPolicy::OFF);
    let pkts: Vec<Vec<u8>> = (0..3u16)
        .map(|i| {
            rtp(
                0,
                i == 0,
                100 + i,
                160 * u32::from(i),
                0xca11ee,
                &[i as u8; 160],
            )
        })
        .collect();
    for (i, p) in pkts.iter().enumerate() {
        let at = t0 + ms(i as u64);
        let (v, _) = feed(
            &mut s,
            at,
            Side::Callee,
            Component::Rtp,
            addr(CALLEE_NAT),
            p,
        );
        assert_eq!(v, Verdict::Held, "packet {i}");
    }
    // An RTCP report on the callee's RTCP socket is kept too.
    let rr = rtcp_rr(0xca11ee);
    let rr_from = addr("203.0.113.9:31001");
    let (v, _) = feed(
        &mut s,
        t0 + ms(3),
        Side::Callee,
        Component::Rtcp,
        rr_from,
        &rr,
    );
    assert_eq!(v, Verdict::Held);
    assert!(
        s.poll_timeout().is_none(),
        "nothing to wake up for before a plan"
    );

    let at_plan = t0 + ms(5);
    s.apply(at_plan, &plan(leg(CALLER), leg(CALLEE)))
        .expect("plan");
    let (sent, _) = run_until(&mut s, at_plan, at_plan);
    let got: Vec<_> = sent
        .iter()
        .map(|x| (x.transmit.side, x.transmit.component))
        .collect();
    assert_eq!(
        got,
        [
            (Side::Caller, Component::Rtp),
            (Side::Caller, Component::Rtp),
            (Side::Caller, Component::Rtp),
            (Side::Caller, Component::Rtcp),
        ]
    );
    for (x, p) in sent.iter().zip(&pkts) {
        assert_eq!(x.transmit.to, addr(CALLER));
        assert_eq!(&x.bytes, p, "relayed unchanged and in order");
    }
    assert_eq!(sent[3].bytes, rr);
    // The first held packet latched the callee's real address, as a live one would.
    assert_eq!(
        s.latched(Side::Callee, Component::Rtp),
        Some(addr(CALLEE_NAT))
    );
    assert_eq!(s.latched(Side::Callee, Component::Rtcp), Some(rr_from));
    assert_eq!(s.stats().relayed_from(Side::Callee).packets, 4);
    assert_eq!(s.stats().dropped_total(), 0);

    // Nothing is sent twice, and what comes next goes straight through.
    let (again, _) = run_until(&mut s, at_plan, at_plan);
    assert!(again.is_empty());
    let next = rtp(0, false, 103, 480, 0xca11ee, &[3; 160]);
    let (v, out) = feed(
        &mut s,
        at_plan,
        Side::Callee,
        Component::Rtp,
        addr(CALLEE_NAT),
        &next,
    );
    assert!(
        matches!(
            v,
            Verdict::Forward {
                side: Side::Caller,
                ..
            }
        ),
        "{v:?}"
    );
    assert_eq!(out, next);
}

#[test]
fn both_legs_are_kept_in_arrival_order() {
    let t0 = base();
    let mut s = MediaSession::relay(t0);
    let from_callee = rtp(0, true, 1, 0, 0xb, &[0xbb; 160]);
    let from_caller = rtp(0, true, 7, 0, 0xa, &[0xaa; 160]);
    let (v, _) = feed(
        &mut s,
        t0,
        Side::Callee,
        Component::Rtp,
        addr(CALLEE),
        &from_callee,
    );
    assert_eq!(v, Verdict::Held);
    let (v, _) = feed(
        &mut s,
        t0 + ms(1),
        Side::Caller,
        Component::Rtp,
        addr(CALLER),
        &from_caller,
    );
    assert_eq!(v, Verdict::Held);
    s.apply(t0 + ms(2), &plan(leg(CALLER), leg(CALLEE)))
        .expect("plan");
    let (sent, _) = run_until(&mut s, t0 + ms(2), t0 + ms(2));
    let got: Vec<_> = sent
        .iter()
        .map(|x| (x.transmit.side, x.bytes.clone()))
        .collect();
    assert_eq!(
        got,
        [(Side::Caller, from_callee), (Side::Callee, from_caller)]
    );
}

#[test]
fn at_most_eight_per_leg_are_kept_and_the_oldest_make_room() {
    let t0 = base();
    let mut s = MediaSession::relay(t0);
    for i in 0..10u16 {
        let p = rtp(0, false, i, 160 * u32::from(i), 0xca11ee, &[0; 160]);
        let at = t0 + ms(u64::from(i) * 10);
        let (v, _) = feed(&mut s, at, Side::Callee, Component::Rtp, addr(CALLEE), &p);
        assert_eq!(v, Verdict::Held);
    }
    // Two made room: counted as drops before a plan.
    assert_eq!(s.stats().dropped(DropReason::NoPlan), 2);
    let at = t0 + ms(95);
    s.apply(at, &plan(leg(CALLER), leg(CALLEE))).expect("plan");
    let (sent, _) = run_until(&mut s, at, at);
    let seqs: Vec<u16> = sent
        .iter()
        .map(|x| u16::from_be_bytes([x.bytes[2], x.bytes[3]]))
        .collect();
    assert_eq!(seqs, [2, 3, 4, 5, 6, 7, 8, 9]);
    assert_eq!(s.stats().relayed_from(Side::Callee).packets, 8);
}

#[test]
fn what_is_older_than_200_ms_when_the_plan_comes_is_dropped_and_counted() {
    let t0 = base();
    let mut s = MediaSession::relay(t0);
    for (i, at) in [t0, t0 + ms(50), t0 + ms(150)].into_iter().enumerate() {
        let p = rtp(0, false, i as u16, 0, 0xca11ee, &[0; 160]);
        let (v, _) = feed(&mut s, at, Side::Callee, Component::Rtp, addr(CALLEE), &p);
        assert_eq!(v, Verdict::Held);
    }
    // 260 ms after the first: the first two (260 and 210 ms old) are too old to be worth
    // playing.
    let at = t0 + ms(260);
    s.apply(at, &plan(leg(CALLER), leg(CALLEE))).expect("plan");
    let (sent, _) = run_until(&mut s, at, at);
    assert_eq!(sent.len(), 1);
    assert_eq!(u16::from_be_bytes([sent[0].bytes[2], sent[0].bytes[3]]), 2);
    assert_eq!(s.stats().dropped(DropReason::NoPlan), 2);
}

#[test]
fn the_first_plan_applies_the_directions_to_what_was_kept() {
    // A callee answering recvonly (RFC 3264 §6.1) sends nothing the caller should hear, even
    // if it sent before its answer reached the relay.
    let t0 = base();
    let mut s = MediaSession::relay(t0);
    let p = rtp(0, false, 1, 0, 0xca11ee, &[0; 160]);
    let (v, _) = feed(&mut s, t0, Side::Callee, Component::Rtp, addr(CALLEE), &p);
    assert_eq!(v, Verdict::Held);
    let callee = LegPlan {
        direction: pbx_media::Direction::RecvOnly,
        ..leg(CALLEE)
    };
    s.apply(t0 + ms(1), &plan(leg(CALLER), callee))
        .expect("plan");
    let (sent, _) = run_until(&mut s, t0 + ms(1), t0 + ms(1));
    assert!(sent.is_empty());
    assert_eq!(s.stats().dropped(DropReason::Direction), 1);
}

#[test]
fn an_echo_attached_before_the_plan_answers_the_first_packet() {
    // The echo test (600): the PBX answers, and the caller's first packet may come before
    // the plan reached the relay.
    let t0 = base();
    let mut s = MediaSession::new(t0);
    s.handle_command(
        t0,
        Command::Echo {
            side: Side::Caller,
            spec: EchoSpec { ssrc: 0xec40 },
        },
    )
    .expect("echo");
    let p = rtp(0, true, 1, 0, 0xca11, &[0x55; 160]);
    let (v, _) = feed(&mut s, t0, Side::Caller, Component::Rtp, addr(CALLER), &p);
    assert_eq!(v, Verdict::Held);
    s.apply(t0 + ms(1), &plan(leg(CALLER), LegPlan::default()))
        .expect("plan");
    let (sent, _) = run_until(&mut s, t0 + ms(1), t0 + ms(1));
    assert_eq!(sent.len(), 1, "the held packet was echoed");
    assert_eq!(sent[0].transmit.side, Side::Caller);
    assert_eq!(sent[0].transmit.to, addr(CALLER));
}
