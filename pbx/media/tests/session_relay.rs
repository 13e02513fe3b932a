//! The relay as a session endpoint: the session relays exactly as the bare bridge does, the
//! RTP timeout becomes an event at the session's deadline, and the relay can be
//! disconnected and connected again.

mod relay_support;
mod session_support;

use std::time::Duration;

use pbx_media::relay::{Bridge, Component, DropReason, LatchPolicy, Verdict};
use pbx_media::session::{Command, Event, MediaSession};
use pbx_media::{CryptoSuite, Direction, LegPlan, Side, SrtpKey, SrtpPair};
use relay_support::{SPARE, addr, base, feed, leg, plan, rtcp_rr, rtp};
use session_support::{events, run_until};

const CALLER: &str = "192.0.2.10:4000";
const CALLEE: &str = "198.51.100.20:6000";

#[test]
fn the_session_relays_as_the_bridge_does() {
    let now = base();
    let mut caller = leg("10.0.0.5:4000");
    caller.pt_map = vec![(96, 101)];
    let mut callee = leg(CALLEE);
    callee.pt_map = vec![(101, 96)];
    let p = plan(caller, callee);
    // The first-packet rule, so the NAT'd caller latches at once (strict: relay_strict.rs).
    let mut bridge = Bridge::new(now);
    bridge.set_latching(LatchPolicy::OFF);
    let mut session = MediaSession::relay(now).with_latching(LatchPolicy::OFF);
    bridge.apply(now, &p).expect("plan");
    session.apply(now, &p).expect("plan");
    let nat = addr("203.0.113.7:30000");
    let inputs = [
        (
            Side::Caller,
            Component::Rtp,
            nat,
            rtp(101, true, 1, 160, 1, &[1; 4]),
        ),
        (
            Side::Caller,
            Component::Rtp,
            addr("203.0.113.8:1"),
            rtp(0, false, 2, 320, 1, &[0; 160]),
        ),
        (
            Side::Callee,
            Component::Rtp,
            addr(CALLEE),
            rtp(96, false, 9, 9, 2, &[2; 4]),
        ),
        (
            Side::Callee,
            Component::Rtcp,
            addr("198.51.100.20:6001"),
            rtcp_rr(2),
        ),
        (
            Side::Callee,
            Component::Rtcp,
            addr(CALLEE),
            rtp(0, false, 3, 3, 2, &[0; 4]),
        ),
        (Side::Caller, Component::Rtp, nat, vec![0x40, 0, 1]),
        (
            Side::Caller,
            Component::Rtp,
            nat,
            rtp(0, false, 3, 480, 1, &[7; 160]),
        ),
    ];
    for (side, component, source, pkt) in inputs {
        let mut buf = vec![0u8; pkt.len() + SPARE];
        buf[..pkt.len()].copy_from_slice(&pkt);
        let expected = bridge.handle_packet(now, side, component, source, &mut buf, pkt.len());
        let (got, out) = feed(&mut session, now, side, component, source, &pkt);
        assert_eq!(got, expected);
        if let Verdict::Forward { len, .. } = expected {
            assert_eq!(out, buf[..len]);
        }
    }
    assert_eq!(session.stats(), bridge.stats());
    assert_eq!(session.stats().relayed_total().packets, 4);
    assert_eq!(session.stats().dropped_total(), 3);
    assert_eq!(session.latched(Side::Caller, Component::Rtp), Some(nat));
}

#[test]
fn silence_is_one_timeout_event_at_the_deadline() {
    let t0 = base();
    let secs = Duration::from_secs;
    let mut s = MediaSession::relay(t0).with_rtp_timeout(secs(30));
    assert_eq!(s.poll_timeout(), None, "nothing to watch before a plan");
    s.apply(t0, &plan(leg(CALLER), leg(CALLEE))).expect("plan");
    assert_eq!(s.poll_timeout(), Some(t0 + secs(30)));
    let _ = feed(
        &mut s,
        t0 + secs(10),
        Side::Caller,
        Component::Rtp,
        addr(CALLER),
        &rtp(0, false, 1, 1, 1, &[0; 160]),
    );
    assert_eq!(
        s.poll_timeout(),
        Some(t0 + secs(40)),
        "RTP moves the deadline"
    );
    // A timer armed for the old deadline finds nothing due.
    s.handle_timeout(t0 + secs(30));
    assert!(events(&mut s).is_empty());
    let (_, got) = run_until(&mut s, t0 + secs(30), t0 + secs(3600));
    assert_eq!(
        got,
        vec![(t0 + secs(40), Event::MediaTimeout { idle: secs(30) })]
    );
    assert_eq!(s.poll_timeout(), None, "once per session");
}

#[test]
fn hold_has_no_deadline() {
    let t0 = base();
    let mut s = MediaSession::relay(t0).with_rtp_timeout(Duration::from_secs(30));
    let held = LegPlan {
        direction: Direction::SendOnly,
        ..leg(CALLER)
    };
    s.apply(t0, &plan(held, leg(CALLEE))).expect("hold");
    assert_eq!(s.poll_timeout(), None);
    s.apply(
        t0 + Duration::from_secs(600),
        &plan(leg(CALLER), leg(CALLEE)),
    )
    .expect("resume");
    assert_eq!(s.poll_timeout(), Some(t0 + Duration::from_secs(630)));
}

#[test]
fn disconnected_legs_stay_latched_and_reconnect() {
    let t0 = base();
    let mut s = MediaSession::relay(t0).with_latching(LatchPolicy::OFF);
    s.apply(t0, &plan(leg(CALLER), leg(CALLEE))).expect("plan");
    let pkt = rtp(0, false, 1, 160, 1, &[0; 160]);
    let nat = addr("203.0.113.9:5000");
    s.handle_command(t0, Command::DisconnectRelay)
        .expect("disconnect");
    assert!(!s.is_relaying());
    let (v, _) = feed(&mut s, t0, Side::Caller, Component::Rtp, nat, &pkt);
    assert_eq!(v, Verdict::Drop(DropReason::NotConnected));
    assert_eq!(
        s.latched(Side::Caller, Component::Rtp),
        Some(nat),
        "still the leg's address"
    );
    s.handle_command(t0, Command::ConnectRelay)
        .expect("connect");
    let (v, out) = feed(&mut s, t0, Side::Caller, Component::Rtp, nat, &pkt);
    assert!(matches!(
        v,
        Verdict::Forward {
            side: Side::Callee,
            ..
        }
    ));
    assert_eq!(out, pkt);
}

#[test]
fn srtp_failures_are_reported_at_most_once_a_second() {
    let t0 = base();
    let suite = CryptoSuite::AesCm128HmacSha1_80;
    let key = |fill: u8| SrtpKey {
        suite,
        key_salt: vec![fill; 30],
    };
    let caller = LegPlan {
        srtp: Some(SrtpPair {
            inbound: key(1),
            outbound: key(2),
        }),
        ..leg(CALLER)
    };
    let mut s = MediaSession::relay(t0);
    s.apply(t0, &plan(caller, leg(CALLEE))).expect("plan");
    // Plain RTP with a made-up tag: fails authentication.
    let forged = rtp(0, false, 1, 160, 1, &[0; 170]);
    for ms in [0, 10, 500, 1000, 1200] {
        let at = t0 + Duration::from_millis(ms);
        let (v, _) = feed(
            &mut s,
            at,
            Side::Caller,
            Component::Rtp,
            addr(CALLER),
            &forged,
        );
        assert_eq!(v, Verdict::Drop(DropReason::SrtpAuth));
    }
    assert_eq!(
        events(&mut s),
        vec![
            Event::SrtpFailures { total: 1 },
            Event::SrtpFailures { total: 4 }
        ]
    );
    assert_eq!(s.stats().srtp_auth_failures(), 5);
}
