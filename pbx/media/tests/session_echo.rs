//! The echo endpoint: a one-leg session (the PBX answered the call) sends the caller's own
//! packets back to it under the PBX's SSRC, and stops when told.

mod relay_support;

use std::time::Instant;

use pbx_media::endpoint::echo::EchoSpec;
use pbx_media::relay::{Component, Verdict};
use pbx_media::session::{Command, MediaSession};
use pbx_media::{LegPlan, MediaPlan, Side};
use relay_support::{addr, base, feed, leg, rtp};

const CALLER: &str = "192.0.2.10:4000";

/// A call the PBX answered: only the caller's leg has an address, the relay is not connected.
fn answered(t0: Instant) -> MediaSession {
    let mut s = MediaSession::new(t0);
    let plan = MediaPlan {
        caller: leg(CALLER),
        callee: LegPlan::default(),
        codec: "PCMU/8000".into(),
    };
    s.apply(t0, &plan).expect("plan");
    s
}

#[test]
fn the_caller_hears_its_own_packets_under_another_ssrc() {
    let t0 = base();
    let mut s = answered(t0);
    let before = rtp(0, true, 7, 160, 0xd7f, &[0x55; 160]);
    let (verdict, _) = feed(
        &mut s,
        t0,
        Side::Caller,
        Component::Rtp,
        addr(CALLER),
        &before,
    );
    assert!(
        matches!(verdict, Verdict::Drop(_)),
        "no echo, no relay: {verdict:?}"
    );

    s.handle_command(
        t0,
        Command::Echo {
            side: Side::Caller,
            spec: EchoSpec { ssrc: 0xabcd_ef01 },
        },
    )
    .expect("echo");
    let pkt = rtp(0, false, 8, 320, 0xd7f, &[0x55; 160]);
    let (verdict, out) = feed(&mut s, t0, Side::Caller, Component::Rtp, addr(CALLER), &pkt);
    match verdict {
        Verdict::Forward {
            side,
            component,
            to,
            len,
        } => {
            assert_eq!(
                (side, component, to),
                (Side::Caller, Component::Rtp, addr(CALLER))
            );
            assert_eq!(len, pkt.len());
        }
        other => panic!("not echoed: {other:?}"),
    }
    assert_eq!(
        out[..8],
        pkt[..8],
        "version, type, sequence, timestamp kept"
    );
    assert_eq!(out[8..12], 0xabcd_ef01u32.to_be_bytes(), "the PBX's SSRC");
    assert_eq!(out[12..], pkt[12..], "the audio as sent");

    s.handle_command(t0, Command::StopEcho { side: Side::Caller })
        .expect("stop");
    let (verdict, _) = feed(&mut s, t0, Side::Caller, Component::Rtp, addr(CALLER), &pkt);
    assert!(matches!(verdict, Verdict::Drop(_)), "{verdict:?}");
}
