//! The plain RTP/RTCP bridge: forwarding, payload type rewriting, latching, rtcp-mux.
//! The latching tests here are of the first-packet rule (`strict_rtp = "off"`); the strict
//! rule is in relay_strict.rs.

mod relay_support;

use std::time::Instant;

use pbx_media::relay::{Component, DropReason, LatchPolicy, Verdict};
use pbx_media::session::MediaSession;
use pbx_media::{Direction, LegPlan, Side};
use relay_support::{addr, base, feed, leg, plan, rtcp_rr, rtp};

const CALLER: &str = "192.0.2.10:4000";
const CALLEE: &str = "198.51.100.20:6000";

fn bridge(now: Instant) -> MediaSession {
    let mut b = MediaSession::relay(now);
    b.apply(now, &plan(leg(CALLER), leg(CALLEE))).expect("plan");
    b
}

/// A call whose plain legs latch on the first packet (`strict_rtp = "off"`).
fn first_packet(now: Instant) -> MediaSession {
    MediaSession::relay(now).with_latching(LatchPolicy::OFF)
}

fn forward(side: Side, component: Component, to: &str, len: usize) -> Verdict {
    Verdict::Forward {
        side,
        component,
        to: addr(to),
        len,
    }
}

#[test]
fn keeps_what_comes_before_a_plan_without_relaying_or_counting_it() {
    // What happens to it when the plan comes: tests/session_early.rs.
    let now = base();
    let mut b = MediaSession::relay(now);
    let pkt = rtp(0, false, 1, 160, 7, &[0xff; 160]);
    let (v, _) = feed(
        &mut b,
        now,
        Side::Caller,
        Component::Rtp,
        addr(CALLER),
        &pkt,
    );
    assert_eq!(v, Verdict::Held);
    assert_eq!(b.stats().dropped_total(), 0);
    assert_eq!(b.stats().relayed_total().packets, 0);
    assert_eq!(b.idle_for(now), None);
}

#[test]
fn forwards_both_ways_unchanged() {
    let now = base();
    let mut b = bridge(now);
    let a = rtp(0, true, 100, 8000, 0xaaaa, &[1; 160]);
    let (v, out) = feed(&mut b, now, Side::Caller, Component::Rtp, addr(CALLER), &a);
    assert_eq!(v, forward(Side::Callee, Component::Rtp, CALLEE, a.len()));
    assert_eq!(out, a);

    let z = rtp(0, false, 5, 320, 0xbbbb, &[2; 160]);
    let (v, out) = feed(&mut b, now, Side::Callee, Component::Rtp, addr(CALLEE), &z);
    assert_eq!(v, forward(Side::Caller, Component::Rtp, CALLER, z.len()));
    assert_eq!(out, z);

    let s = b.stats();
    assert_eq!(s.relayed_from(Side::Caller).packets, 1);
    assert_eq!(s.relayed_from(Side::Caller).bytes, a.len() as u64);
    assert_eq!(s.relayed_from(Side::Callee).packets, 1);
    assert_eq!(s.relayed_total().packets, 2);
    assert_eq!(s.dropped_total(), 0);
}

#[test]
fn rewrites_payload_type_only() {
    let now = base();
    let mut caller = leg(CALLER);
    let mut callee = leg(CALLEE);
    // The caller calls telephone-event 101, the callee 96; PCMU stays 0.
    callee.pt_map = vec![(101, 96)];
    caller.pt_map = vec![(96, 101)];
    let mut b = MediaSession::relay(now);
    b.apply(now, &plan(caller, callee)).expect("plan");

    let a = rtp(101, true, 0xfffe, 0xdead_beef, 0x1234_5678, &[9, 8, 7, 6]);
    let (v, out) = feed(&mut b, now, Side::Caller, Component::Rtp, addr(CALLER), &a);
    assert!(matches!(v, Verdict::Forward { .. }));
    let mut expected = rtp(96, true, 0xfffe, 0xdead_beef, 0x1234_5678, &[9, 8, 7, 6]);
    assert_eq!(out, expected);

    let z = rtp(96, false, 1, 2, 3, &[5; 4]);
    let (_, out) = feed(&mut b, now, Side::Callee, Component::Rtp, addr(CALLEE), &z);
    expected = rtp(101, false, 1, 2, 3, &[5; 4]);
    assert_eq!(out, expected);

    // Unmapped types pass unchanged.
    let pcmu = rtp(0, false, 2, 3, 4, &[0; 4]);
    let (_, out) = feed(
        &mut b,
        now,
        Side::Caller,
        Component::Rtp,
        addr(CALLER),
        &pcmu,
    );
    assert_eq!(out, pcmu);
}

#[test]
fn latches_to_the_nated_source_and_drops_others() {
    let now = base();
    // The caller's SDP carries its private address; packets come from its NAT.
    let mut b = first_packet(now);
    b.apply(now, &plan(leg("10.0.0.5:4000"), leg(CALLEE)))
        .expect("plan");
    let nat = addr("203.0.113.7:30000");
    assert_eq!(b.rtp_destination(Side::Caller), Some(addr("10.0.0.5:4000")));

    let pkt = rtp(0, false, 1, 160, 1, &[0; 160]);
    let (v, _) = feed(&mut b, now, Side::Caller, Component::Rtp, nat, &pkt);
    assert!(matches!(v, Verdict::Forward { .. }));
    assert_eq!(b.latched(Side::Caller, Component::Rtp), Some(nat));
    assert_eq!(b.rtp_destination(Side::Caller), Some(nat));

    // The callee's media now goes to the NAT address.
    let z = rtp(0, false, 1, 160, 2, &[0; 160]);
    let (v, _) = feed(&mut b, now, Side::Callee, Component::Rtp, addr(CALLEE), &z);
    assert_eq!(
        v,
        forward(Side::Caller, Component::Rtp, "203.0.113.7:30000", z.len())
    );

    // Someone else on the caller's port, even from the SDP address, is dropped.
    for src in ["203.0.113.7:30002", "10.0.0.5:4000", "203.0.113.99:30000"] {
        let (v, _) = feed(&mut b, now, Side::Caller, Component::Rtp, addr(src), &pkt);
        assert_eq!(v, Verdict::Drop(DropReason::UnexpectedSource));
    }
    assert_eq!(b.stats().dropped(DropReason::UnexpectedSource), 3);
    assert_eq!(b.latched(Side::Caller, Component::Rtp), Some(nat));
}

#[test]
fn invalid_packets_do_not_latch() {
    let now = base();
    let mut b = bridge(now);
    let evil = addr("203.0.113.66:1234");
    for junk in [&[][..], &[0x80][..], &[0u8; 40][..], &[0x80, 0, 0, 1][..]] {
        let (v, _) = feed(&mut b, now, Side::Caller, Component::Rtp, evil, junk);
        assert_eq!(v, Verdict::Drop(DropReason::NotRtp));
    }
    assert_eq!(b.latched(Side::Caller, Component::Rtp), None);
    assert_eq!(b.stats().dropped(DropReason::NotRtp), 4);
}

#[test]
fn rtcp_on_its_own_ports_latches_separately() {
    let now = base();
    let mut b = first_packet(now);
    b.apply(now, &plan(leg(CALLER), leg(CALLEE))).expect("plan");
    let rr = rtcp_rr(0xaaaa);
    let nat_rtcp = addr("203.0.113.7:30001");
    let (v, out) = feed(&mut b, now, Side::Caller, Component::Rtcp, nat_rtcp, &rr);
    assert_eq!(
        v,
        forward(
            Side::Callee,
            Component::Rtcp,
            "198.51.100.20:6001",
            rr.len()
        )
    );
    assert_eq!(out, rr);
    assert_eq!(b.latched(Side::Caller, Component::Rtcp), Some(nat_rtcp));
    assert_eq!(b.latched(Side::Caller, Component::Rtp), None);

    let (v, _) = feed(
        &mut b,
        now,
        Side::Callee,
        Component::Rtcp,
        addr("198.51.100.20:6001"),
        &rtcp_rr(0xbbbb),
    );
    assert_eq!(
        v,
        forward(Side::Caller, Component::Rtcp, "203.0.113.7:30001", 8)
    );
    // RTP on an RTCP socket is refused.
    let pkt = rtp(0, false, 1, 1, 1, &[0; 20]);
    let (v, _) = feed(&mut b, now, Side::Caller, Component::Rtcp, nat_rtcp, &pkt);
    assert_eq!(v, Verdict::Drop(DropReason::NotRtp));
}

#[test]
fn rtcp_mux_demultiplexes_on_the_rtp_port() {
    let now = base();
    let caller = LegPlan {
        remote_rtcp: Some(addr(CALLER)),
        rtcp_mux: true,
        ..leg(CALLER)
    };
    let mut b = MediaSession::relay(now);
    b.apply(now, &plan(caller, leg(CALLEE))).expect("plan");

    // RTCP from the muxed caller, on its RTP socket, goes to the callee's RTCP port.
    let sr = {
        let mut p = vec![0x80, 200, 0, 6];
        p.extend_from_slice(&[0x11; 24]);
        p
    };
    let (v, out) = feed(&mut b, now, Side::Caller, Component::Rtp, addr(CALLER), &sr);
    assert_eq!(
        v,
        forward(
            Side::Callee,
            Component::Rtcp,
            "198.51.100.20:6001",
            sr.len()
        )
    );
    assert_eq!(out, sr);

    // RTP with the marker bit and PT 72 would look like RTCP SR (RFC 5761 §4): RTP uses
    // other types, and a real RTP packet on the same socket is still RTP.
    let pkt = rtp(0, true, 1, 1, 1, &[0; 20]);
    let (v, _) = feed(
        &mut b,
        now,
        Side::Caller,
        Component::Rtp,
        addr(CALLER),
        &pkt,
    );
    assert_eq!(v, forward(Side::Callee, Component::Rtp, CALLEE, pkt.len()));

    // The callee's RTCP goes to the muxed caller's RTP address, from its RTP socket.
    let (v, _) = feed(
        &mut b,
        now,
        Side::Callee,
        Component::Rtcp,
        addr("198.51.100.20:6001"),
        &rtcp_rr(5),
    );
    assert_eq!(v, forward(Side::Caller, Component::Rtp, CALLER, 8));
}

#[test]
fn replan_keeps_latch_while_the_address_stays() {
    let now = base();
    let mut b = first_packet(now);
    let caller = leg("10.0.0.5:4000");
    b.apply(now, &plan(caller.clone(), leg(CALLEE)))
        .expect("plan");
    let nat = addr("203.0.113.7:30000");
    let pkt = rtp(0, false, 1, 160, 1, &[0; 160]);
    let _ = feed(&mut b, now, Side::Caller, Component::Rtp, nat, &pkt);

    // A re-INVITE changing only the codec mapping keeps the latch.
    let mut callee = leg(CALLEE);
    callee.pt_map = vec![(0, 8)];
    b.apply(now, &plan(caller, callee.clone())).expect("replan");
    assert_eq!(b.latched(Side::Caller, Component::Rtp), Some(nat));
    let (v, _) = feed(
        &mut b,
        now,
        Side::Caller,
        Component::Rtp,
        addr("203.0.113.8:1"),
        &pkt,
    );
    assert_eq!(v, Verdict::Drop(DropReason::UnexpectedSource));

    // The caller moved (new SDP address): send there, and latch again on the first packet.
    b.apply(now, &plan(leg("192.0.2.77:5000"), callee))
        .expect("move");
    assert_eq!(b.latched(Side::Caller, Component::Rtp), None);
    assert_eq!(
        b.rtp_destination(Side::Caller),
        Some(addr("192.0.2.77:5000"))
    );
    let moved = addr("198.18.0.1:40000");
    let (v, _) = feed(&mut b, now, Side::Caller, Component::Rtp, moved, &pkt);
    assert!(matches!(v, Verdict::Forward { .. }));
    assert_eq!(b.latched(Side::Caller, Component::Rtp), Some(moved));
}

#[test]
fn port_zero_means_no_destination() {
    let now = base();
    let mut b = MediaSession::relay(now);
    let callee = LegPlan {
        remote_rtp: None,
        remote_rtcp: None,
        ..LegPlan::default()
    };
    b.apply(now, &plan(leg(CALLER), callee)).expect("plan");
    let pkt = rtp(0, false, 1, 160, 1, &[0; 160]);
    let (v, _) = feed(
        &mut b,
        now,
        Side::Caller,
        Component::Rtp,
        addr(CALLER),
        &pkt,
    );
    assert_eq!(v, Verdict::Drop(DropReason::NoDestination));
}

#[test]
fn hold_directions_are_enforced_for_rtp_not_rtcp() {
    let now = base();
    let caller = LegPlan {
        direction: Direction::SendOnly,
        ..leg(CALLER)
    };
    let callee = LegPlan {
        direction: Direction::RecvOnly,
        ..leg(CALLEE)
    };
    let mut b = MediaSession::relay(now);
    b.apply(now, &plan(caller, callee)).expect("plan");
    // Music on hold from the holder flows; the held party's RTP does not.
    let pkt = rtp(0, false, 1, 160, 1, &[0; 160]);
    let (v, _) = feed(
        &mut b,
        now,
        Side::Caller,
        Component::Rtp,
        addr(CALLER),
        &pkt,
    );
    assert!(matches!(v, Verdict::Forward { .. }));
    let (v, _) = feed(
        &mut b,
        now,
        Side::Callee,
        Component::Rtp,
        addr(CALLEE),
        &pkt,
    );
    assert_eq!(v, Verdict::Drop(DropReason::Direction));
    // RFC 3264 §5.1: RTCP keeps flowing on hold.
    let (v, _) = feed(
        &mut b,
        now,
        Side::Callee,
        Component::Rtcp,
        addr("198.51.100.20:6001"),
        &rtcp_rr(1),
    );
    assert!(matches!(v, Verdict::Forward { .. }));
}

#[test]
fn hostile_lengths_never_panic() {
    let now = base();
    let mut b = bridge(now);
    let mut buf = [0x80u8; 16];
    // len beyond the buffer
    let v = b.handle_datagram(
        now,
        Side::Caller,
        Component::Rtp,
        addr(CALLER),
        &mut buf,
        100,
    );
    assert_eq!(v, Verdict::Drop(DropReason::NotRtp));
    // CSRC count larger than the packet
    let mut buf = [0x8fu8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
    let v = b.handle_datagram(
        now,
        Side::Caller,
        Component::Rtp,
        addr(CALLER),
        &mut buf,
        16,
    );
    assert_eq!(v, Verdict::Drop(DropReason::NotRtp));
}
