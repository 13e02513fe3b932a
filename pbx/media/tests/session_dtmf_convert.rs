//! DTMF converted on a bridged call (one leg RFC 4733, the other SIP INFO): the events of a
//! converting leg are reported and not relayed; a key to send replaces the relayed audio
//! packets with RFC 4733 events in that stream's own numbering.

mod relay_support;
mod session_support;

use std::time::Duration;

use pbx_media::Side;
use pbx_media::endpoint::dtmf::DtmfSpec;
use pbx_media::endpoint::dtmf_out::DtmfOutSpec;
use pbx_media::relay::{Component, Verdict};
use pbx_media::session::{Command, Event, MediaSession, SessionError};
use relay_support::{addr, base, feed, leg, plan, rtp};
use session_support::events;

const CALLER: &str = "192.0.2.10:4000";
const CALLEE: &str = "198.51.100.20:6000";

fn session() -> MediaSession {
    let t0 = base();
    let mut s = MediaSession::relay(t0);
    s.apply(t0, &plan(leg(CALLER), leg(CALLEE))).expect("plan");
    s
}

#[test]
fn a_converting_legs_events_are_reported_and_not_relayed() {
    let t0 = base();
    let mut s = session();
    let spec = DtmfSpec {
        payload_type: Some(101),
        clock_rate: 8000,
        inband: None,
    };
    s.handle_command(
        t0,
        Command::ConvertDtmf {
            side: Side::Caller,
            spec,
        },
    )
    .expect("convert");
    let audio = rtp(0, false, 1, 160, 7, &[0xff; 160]);
    let (v, _) = feed(
        &mut s,
        t0,
        Side::Caller,
        Component::Rtp,
        addr(CALLER),
        &audio,
    );
    assert!(matches!(v, Verdict::Forward { .. }), "audio is relayed");
    for (i, (end, dur)) in [(false, 400u16), (true, 800), (true, 800), (true, 800)]
        .into_iter()
        .enumerate()
    {
        let mut payload = vec![9, (u8::from(end) << 7) | 10];
        payload.extend_from_slice(&dur.to_be_bytes());
        let seq = 2 + u16::try_from(i).unwrap_or(0);
        let pkt = rtp(101, i == 0, seq, 320, 7, &payload);
        let (v, _) = feed(&mut s, t0, Side::Caller, Component::Rtp, addr(CALLER), &pkt);
        assert_eq!(v, Verdict::Consumed, "event packet {i} is not relayed");
    }
    assert_eq!(
        events(&mut s),
        vec![Event::Dtmf {
            side: Side::Caller,
            digit: '9',
            duration: Duration::from_millis(100),
        }]
    );
}

#[test]
fn a_key_to_send_replaces_the_audio_relayed_to_the_leg() {
    let t0 = base();
    let mut s = session();
    let spec = DtmfOutSpec {
        payload_type: 96,
        clock_rate: 8000,
    };
    let bad = s.handle_command(
        t0,
        Command::SendDtmf {
            side: Side::Caller,
            digit: 'x',
            duration: Duration::from_millis(40),
            spec,
        },
    );
    assert!(matches!(bad, Err(SessionError::Digit('x'))), "{bad:?}");
    s.handle_command(
        t0,
        Command::SendDtmf {
            side: Side::Caller,
            digit: '*',
            duration: Duration::from_millis(40),
            spec,
        },
    )
    .expect("send");
    // The callee's audio on its way to the caller: four packets become the event (start,
    // end three times), the fifth is audio again.
    let mut out = Vec::new();
    for i in 0..5u16 {
        let pkt = rtp(
            0,
            false,
            500 + i,
            8000 + 160 * u32::from(i),
            0xca11,
            &[0xd5; 160],
        );
        let (v, bytes) = feed(&mut s, t0, Side::Callee, Component::Rtp, addr(CALLEE), &pkt);
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
        out.push(bytes);
    }
    for (i, p) in out.iter().take(4).enumerate() {
        assert_eq!(p.len(), 16, "packet {i} is an event");
        assert_eq!(
            p[1],
            (u8::from(i == 0) << 7) | 96,
            "marker only on the first"
        );
        assert_eq!(
            u16::from_be_bytes([p[2], p[3]]),
            500 + u16::try_from(i).unwrap_or(0)
        );
        assert_eq!(&p[4..8], &8000u32.to_be_bytes(), "the event's start");
        assert_eq!(&p[8..12], &0xca11u32.to_be_bytes(), "the stream's SSRC");
        assert_eq!(p[12], 10, "`*` is event 10");
        assert_eq!(p[13] & 0x80 != 0, i > 0, "end bit on the last three");
    }
    assert_eq!(out[4].len(), 12 + 160, "audio again");
}
