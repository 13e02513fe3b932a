//! The media timeout clock: `idle_for` in virtual time, and hold.

mod relay_support;

use std::time::Duration;

use pbx_media::relay::Component;
use pbx_media::session::MediaSession;
use pbx_media::{Direction, LegPlan, Side};
use relay_support::{addr, base, feed, leg, plan, rtcp_rr, rtp};

const CALLER: &str = "192.0.2.10:4000";
const CALLEE: &str = "198.51.100.20:6000";

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

#[test]
fn idle_counts_from_the_plan_then_from_the_last_rtp() {
    let t0 = base();
    let mut b = MediaSession::relay(t0);
    assert_eq!(
        b.idle_for(t0 + secs(100)),
        None,
        "nothing to watch before a plan"
    );

    b.apply(t0 + secs(10), &plan(leg(CALLER), leg(CALLEE)))
        .expect("plan");
    assert_eq!(b.idle_for(t0 + secs(10)), Some(secs(0)));
    assert_eq!(b.idle_for(t0 + secs(25)), Some(secs(15)));

    let pkt = rtp(0, false, 1, 160, 1, &[0; 160]);
    let _ = feed(
        &mut b,
        t0 + secs(30),
        Side::Callee,
        Component::Rtp,
        addr(CALLEE),
        &pkt,
    );
    assert_eq!(b.idle_for(t0 + secs(31)), Some(secs(1)));

    // RTCP alone does not keep a call alive.
    let _ = feed(
        &mut b,
        t0 + secs(40),
        Side::Callee,
        Component::Rtcp,
        addr("198.51.100.20:6001"),
        &rtcp_rr(1),
    );
    assert_eq!(b.idle_for(t0 + secs(41)), Some(secs(11)));

    // Rejected packets do not either.
    let _ = feed(
        &mut b,
        t0 + secs(42),
        Side::Callee,
        Component::Rtp,
        addr("203.0.113.1:9"),
        &pkt,
    );
    assert_eq!(b.idle_for(t0 + secs(43)), Some(secs(13)));

    // A re-plan without hold changes does not reset the clock.
    b.apply(t0 + secs(44), &plan(leg(CALLER), leg(CALLEE)))
        .expect("replan");
    assert_eq!(b.idle_for(t0 + secs(45)), Some(secs(15)));
}

#[test]
fn hold_stops_the_clock_and_resume_restarts_it() {
    let t0 = base();
    let mut b = MediaSession::relay(t0);
    b.apply(t0, &plan(leg(CALLER), leg(CALLEE))).expect("plan");
    let held = LegPlan {
        direction: Direction::SendOnly,
        ..leg(CALLER)
    };
    b.apply(t0 + secs(5), &plan(held, leg(CALLEE)))
        .expect("hold");
    assert_eq!(b.idle_for(t0 + secs(3600)), None);

    b.apply(t0 + secs(3600), &plan(leg(CALLER), leg(CALLEE)))
        .expect("resume");
    assert_eq!(b.idle_for(t0 + secs(3600)), Some(secs(0)));
    assert_eq!(b.idle_for(t0 + secs(3630)), Some(secs(30)));
}
