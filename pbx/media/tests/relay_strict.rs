//! Strict latching of plain RTP legs (`[rtp] strict_rtp = "sequence"`, the default), in
//! virtual time: the SDP address latches at once; any other source only after a run of
//! consecutive packets, so a stranger spraying the port range ("RTP bleed") cannot take a
//! leg's media.

mod relay_support;
mod session_support;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use pbx_media::relay::{Component, DropReason, LatchPolicy, Verdict};
use pbx_media::session::MediaSession;
use pbx_media::{LegPlan, Side};
use relay_support::{addr, base, feed, leg, plan, rtcp_rr, rtp};
use session_support::run_until;

const CALLER: &str = "192.0.2.10:4000";
const CALLEE: &str = "198.51.100.20:6000";
/// A caller whose SDP carries its private address; its packets come from its NAT.
const CALLER_PRIVATE: &str = "10.0.0.5:4000";
const NAT: &str = "203.0.113.7:30000";
const STRANGER: &str = "198.18.66.6:1234";

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// A call with the default policy (strict, probation 4); the caller at `caller`.
fn call(now: Instant, caller: &str) -> MediaSession {
    let mut s = MediaSession::relay(now);
    s.apply(now, &plan(leg(caller), leg(CALLEE))).expect("plan");
    s
}

/// Packet `i` of a stream: sequence `first + i`.
fn voice(ssrc: u32, seq: u16) -> Vec<u8> {
    rtp(0, false, seq, u32::from(seq) * 160, ssrc, &[0x55; 160])
}

fn send(s: &mut MediaSession, at: Instant, side: Side, from: &str, pkt: &[u8]) -> Verdict {
    feed(s, at, side, Component::Rtp, addr(from), pkt).0
}

fn to(v: Verdict) -> Option<SocketAddr> {
    match v {
        Verdict::Forward { to, .. } => Some(to),
        _ => None,
    }
}

/// What the callee says goes where.
fn callee_audio_goes_to(s: &mut MediaSession, at: Instant, seq: u16) -> Option<SocketAddr> {
    to(send(s, at, Side::Callee, CALLEE, &voice(0xcee, seq)))
}

#[test]
fn the_sdp_address_latches_at_once() {
    let t0 = base();
    let mut s = call(t0, CALLER);
    let v = send(&mut s, t0, Side::Caller, CALLER, &voice(1, 500));
    assert_eq!(to(v), Some(addr(CALLEE)), "no packet lost");
    assert_eq!(s.latched(Side::Caller, Component::Rtp), Some(addr(CALLER)));
    assert_eq!(s.stats().dropped_total(), 0);
}

#[test]
fn a_stranger_short_of_probation_never_latches() {
    let t0 = base();
    let mut s = call(t0, CALLER);
    // Three in sequence (one short of four), then sprays with gaps, several SSRCs, and RTCP.
    for (i, seq) in [1u16, 2, 3, 10, 20, 30].into_iter().enumerate() {
        let at = t0 + ms(i as u64);
        let v = send(&mut s, at, Side::Caller, STRANGER, &voice(0xbad, seq));
        assert_eq!(v, Verdict::Drop(DropReason::Probation), "packet {i}");
    }
    let v = send(&mut s, t0, Side::Caller, STRANGER, &rtcp_rr(0xbad));
    assert_eq!(v, Verdict::Drop(DropReason::Probation));
    assert_eq!(s.latched(Side::Caller, Component::Rtp), None);
    assert_eq!(s.stats().dropped(DropReason::Probation), 7);
    // The callee's audio still goes to the caller's SDP address, never to the stranger.
    assert_eq!(callee_audio_goes_to(&mut s, t0, 1), Some(addr(CALLER)));
    assert_eq!(s.stats().relayed_from(Side::Caller).packets, 0);
}

#[test]
fn a_natted_phone_latches_after_probation_and_loses_only_the_first_packets() {
    let t0 = base();
    let mut s = call(t0, CALLER_PRIVATE);
    assert_eq!(
        callee_audio_goes_to(&mut s, t0, 1),
        Some(addr(CALLER_PRIVATE))
    );
    for i in 0..3u16 {
        let at = t0 + ms(20 * u64::from(i));
        let v = send(
            &mut s,
            at,
            Side::Caller,
            NAT,
            &voice(7, 65534u16.wrapping_add(i)),
        );
        assert_eq!(v, Verdict::Drop(DropReason::Probation), "packet {i}");
    }
    // The fourth in a row (across the sequence wrap) latches and is relayed.
    let v = send(&mut s, t0 + ms(60), Side::Caller, NAT, &voice(7, 1));
    assert_eq!(to(v), Some(addr(CALLEE)));
    assert_eq!(s.latched(Side::Caller, Component::Rtp), Some(addr(NAT)));
    assert_eq!(s.stats().dropped(DropReason::Probation), 3);
    assert_eq!(
        callee_audio_goes_to(&mut s, t0 + ms(60), 2),
        Some(addr(NAT))
    );
    // From now on others are unexpected, and the phone's packets pass in any order.
    let v = send(&mut s, t0 + ms(80), Side::Caller, STRANGER, &voice(9, 2));
    assert_eq!(v, Verdict::Drop(DropReason::UnexpectedSource));
    let v = send(&mut s, t0 + ms(80), Side::Caller, NAT, &voice(7, 40));
    assert_eq!(to(v), Some(addr(CALLEE)));
}

#[test]
fn a_break_in_the_sequence_restarts_probation() {
    let t0 = base();
    let mut s = call(t0, CALLER_PRIVATE);
    // 1 2 3 (gap) 5 6 7: the run restarts at 5; 8 completes it.
    for seq in [1u16, 2, 3, 5, 6, 7] {
        let v = send(&mut s, t0, Side::Caller, NAT, &voice(7, seq));
        assert_eq!(v, Verdict::Drop(DropReason::Probation), "seq {seq}");
    }
    // Another SSRC from the same address restarts it too.
    let v = send(&mut s, t0, Side::Caller, NAT, &voice(8, 8));
    assert_eq!(v, Verdict::Drop(DropReason::Probation));
    for seq in [9u16, 10] {
        let v = send(&mut s, t0, Side::Caller, NAT, &voice(8, seq));
        assert_eq!(v, Verdict::Drop(DropReason::Probation), "seq {seq}");
    }
    assert_eq!(s.latched(Side::Caller, Component::Rtp), None);
    let v = send(&mut s, t0, Side::Caller, NAT, &voice(8, 11));
    assert_eq!(to(v), Some(addr(CALLEE)));
    assert_eq!(s.latched(Side::Caller, Component::Rtp), Some(addr(NAT)));
}

#[test]
fn two_candidates_at_once_are_followed_apart() {
    let t0 = base();
    let mut s = call(t0, CALLER_PRIVATE);
    // The stranger's sprays interleave with the phone's stream without breaking its run.
    for i in 0..3u16 {
        let v = send(&mut s, t0, Side::Caller, NAT, &voice(7, 100 + i));
        assert_eq!(v, Verdict::Drop(DropReason::Probation));
        let v = send(&mut s, t0, Side::Caller, STRANGER, &voice(9, 1000 + 7 * i));
        assert_eq!(v, Verdict::Drop(DropReason::Probation));
    }
    let v = send(&mut s, t0, Side::Caller, NAT, &voice(7, 103));
    assert_eq!(to(v), Some(addr(CALLEE)));
    assert_eq!(s.latched(Side::Caller, Component::Rtp), Some(addr(NAT)));
}

#[test]
fn the_sdp_address_takes_the_latch_back_from_a_stranger() {
    let t0 = base();
    let mut s = call(t0, CALLER);
    // A stranger that sends four in a row before the phone speaks wins the latch...
    for seq in 1..=4u16 {
        let _ = send(&mut s, t0, Side::Caller, STRANGER, &voice(0xbad, seq));
    }
    assert_eq!(
        s.latched(Side::Caller, Component::Rtp),
        Some(addr(STRANGER))
    );
    let v = send(&mut s, t0, Side::Caller, STRANGER, &rtcp_rr(0xbad));
    assert!(matches!(v, Verdict::Forward { .. }));
    // ... and the stranger's RTCP port beside it.
    let v = feed(
        &mut s,
        t0,
        Side::Caller,
        Component::Rtcp,
        addr("198.18.66.6:1235"),
        &rtcp_rr(0xbad),
    )
    .0;
    assert!(matches!(v, Verdict::Forward { .. }));
    // ... until the SDP address speaks: its first packet takes RTP back, and RTCP lets go.
    let v = send(&mut s, t0 + ms(20), Side::Caller, CALLER, &voice(1, 77));
    assert_eq!(to(v), Some(addr(CALLEE)));
    assert_eq!(s.latched(Side::Caller, Component::Rtp), Some(addr(CALLER)));
    assert_eq!(s.latched(Side::Caller, Component::Rtcp), None);
    assert_eq!(
        callee_audio_goes_to(&mut s, t0 + ms(20), 1),
        Some(addr(CALLER))
    );
    let v = send(
        &mut s,
        t0 + ms(20),
        Side::Caller,
        STRANGER,
        &voice(0xbad, 5),
    );
    assert_eq!(v, Verdict::Drop(DropReason::UnexpectedSource));
}

#[test]
fn rtcp_latches_to_its_sdp_address_or_beside_the_rtp_latch() {
    let t0 = base();
    let mut s = call(t0, CALLER_PRIVATE);
    let rtcp_from = |s: &mut MediaSession, from: &str| {
        feed(
            s,
            t0,
            Side::Caller,
            Component::Rtcp,
            addr(from),
            &rtcp_rr(7),
        )
        .0
    };
    // Before RTP latched, RTCP from the NAT has nothing to prove itself by.
    assert_eq!(
        rtcp_from(&mut s, "203.0.113.7:30001"),
        Verdict::Drop(DropReason::Probation)
    );
    for seq in 1..=4u16 {
        let _ = send(&mut s, t0, Side::Caller, NAT, &voice(7, seq));
    }
    assert_eq!(s.latched(Side::Caller, Component::Rtp), Some(addr(NAT)));
    // Any port on the RTP latch's IP is the phone's RTCP (NATs need not keep port + 1).
    assert_eq!(
        rtcp_from(&mut s, STRANGER),
        Verdict::Drop(DropReason::UnexpectedSource)
    );
    let v = rtcp_from(&mut s, "203.0.113.7:30555");
    assert_eq!(to(v), Some(addr("198.51.100.20:6001")));
    assert_eq!(
        s.latched(Side::Caller, Component::Rtcp),
        Some(addr("203.0.113.7:30555"))
    );
    // The callee's RTCP goes there.
    let v = feed(
        &mut s,
        t0,
        Side::Callee,
        Component::Rtcp,
        addr("198.51.100.20:6001"),
        &rtcp_rr(2),
    )
    .0;
    assert_eq!(to(v), Some(addr("203.0.113.7:30555")));

    // A leg whose RTCP comes from its SDP RTCP address latches at once.
    let mut s = call(t0, CALLER);
    let v = rtcp_from(&mut s, "192.0.2.10:4001");
    assert_eq!(to(v), Some(addr("198.51.100.20:6001")));
}

#[test]
fn held_packets_follow_the_rule_when_the_plan_comes() {
    let t0 = base();
    let mut s = MediaSession::relay(t0);
    // Before the plan: a stranger's two and the NAT'd callee's five, interleaved.
    let nat = "203.0.113.9:31000";
    let mut at = t0;
    for i in 0..5u16 {
        at += ms(1);
        if i < 2 {
            let v = send(&mut s, at, Side::Callee, STRANGER, &voice(0xbad, 9 + i));
            assert_eq!(v, Verdict::Held);
        }
        let v = send(&mut s, at, Side::Callee, nat, &voice(0xcee, 200 + i));
        assert_eq!(v, Verdict::Held);
    }
    let at_plan = at + ms(1);
    s.apply(at_plan, &plan(leg(CALLER), leg(CALLEE)))
        .expect("plan");
    let (sent, _) = run_until(&mut s, at_plan, at_plan);
    // The callee's fourth and fifth went through; everything else was on probation.
    let seqs: Vec<u16> = sent
        .iter()
        .map(|x| u16::from_be_bytes([x.bytes[2], x.bytes[3]]))
        .collect();
    assert_eq!(seqs, [203, 204]);
    assert!(sent.iter().all(|x| x.transmit.to == addr(CALLER)));
    assert_eq!(s.latched(Side::Callee, Component::Rtp), Some(addr(nat)));
    assert_eq!(s.stats().dropped(DropReason::Probation), 5);
}

#[test]
fn a_replan_keeping_the_address_keeps_the_latch_and_the_runs() {
    let t0 = base();
    let mut s = call(t0, CALLER_PRIVATE);
    for seq in 1..=2u16 {
        let _ = send(&mut s, t0, Side::Caller, NAT, &voice(7, seq));
    }
    // A re-INVITE mid-probation (codec change): the run carries on.
    let mut callee = leg(CALLEE);
    callee.pt_map = vec![(0, 8)];
    s.apply(t0, &plan(leg(CALLER_PRIVATE), callee.clone()))
        .expect("replan");
    let _ = send(&mut s, t0, Side::Caller, NAT, &voice(7, 3));
    let v = send(&mut s, t0, Side::Caller, NAT, &voice(7, 4));
    assert!(matches!(v, Verdict::Forward { .. }));
    s.apply(t0, &plan(leg(CALLER_PRIVATE), callee.clone()))
        .expect("replan");
    assert_eq!(s.latched(Side::Caller, Component::Rtp), Some(addr(NAT)));
    // A move (new SDP address) starts over: the old source is a candidate again.
    s.apply(t0, &plan(leg("10.0.0.6:4000"), callee))
        .expect("move");
    assert_eq!(s.latched(Side::Caller, Component::Rtp), None);
    let v = send(&mut s, t0, Side::Caller, NAT, &voice(7, 5));
    assert_eq!(v, Verdict::Drop(DropReason::Probation));
}

#[test]
fn probation_is_configurable() {
    let t0 = base();
    let mut s = MediaSession::relay(t0).with_latching(LatchPolicy::sequence(1));
    s.apply(t0, &plan(leg(CALLER_PRIVATE), leg(CALLEE)))
        .expect("plan");
    let v = send(&mut s, t0, Side::Caller, NAT, &voice(7, 1));
    assert!(matches!(v, Verdict::Forward { .. }));
    // Still, the SDP address takes over.
    let v = send(&mut s, t0, Side::Caller, CALLER_PRIVATE, &voice(1, 1));
    assert!(matches!(v, Verdict::Forward { .. }));
    assert_eq!(
        s.latched(Side::Caller, Component::Rtp),
        Some(addr(CALLER_PRIVATE))
    );
    assert_eq!(LatchPolicy::sequence(0).probation, 1);
    assert_eq!(
        LatchPolicy::sequence(200).probation,
        LatchPolicy::MAX_PROBATION
    );
}

#[test]
fn off_latches_the_first_packet_as_before() {
    let t0 = base();
    let mut s = MediaSession::relay(t0).with_latching(LatchPolicy::OFF);
    s.apply(t0, &plan(leg(CALLER), leg(CALLEE))).expect("plan");
    let v = send(&mut s, t0, Side::Caller, STRANGER, &voice(0xbad, 1));
    assert!(matches!(v, Verdict::Forward { .. }));
    assert_eq!(
        s.latched(Side::Caller, Component::Rtp),
        Some(addr(STRANGER))
    );
    // Even the SDP address is then unexpected: the stranger keeps the callee's audio.
    let v = send(&mut s, t0, Side::Caller, CALLER, &voice(1, 1));
    assert_eq!(v, Verdict::Drop(DropReason::UnexpectedSource));
    assert_eq!(callee_audio_goes_to(&mut s, t0, 1), Some(addr(STRANGER)));
}

#[test]
fn a_leg_without_an_sdp_address_latches_only_after_probation() {
    let t0 = base();
    let mut s = MediaSession::relay(t0);
    let caller = LegPlan {
        remote_rtp: None,
        remote_rtcp: None,
        ..LegPlan::default()
    };
    s.apply(t0, &plan(caller, leg(CALLEE))).expect("plan");
    for seq in 1..=3u16 {
        let v = send(&mut s, t0, Side::Caller, NAT, &voice(7, seq));
        assert_eq!(v, Verdict::Drop(DropReason::Probation));
    }
    let v = send(&mut s, t0, Side::Caller, NAT, &voice(7, 4));
    assert!(matches!(v, Verdict::Forward { .. }));
}
