//! One continuous outgoing stream per leg (RFC 3550 §5.1, §8), in virtual time: a leg whose
//! plan gives it an SSRC of the PBX's own sees a prompt, then the relayed other leg, then a
//! new device on that leg after a re-plan, as one SSRC with consecutive sequence numbers,
//! timestamps that follow the wall clock across each change, and the marker on the first
//! packet after a change. A leg without one keeps the byte-exact pass-through.

mod relay_support;
mod session_support;

use std::time::{Duration, Instant};

use pbx_media::endpoint::player::{PcmSource, PlayerSpec};
use pbx_media::g711::Law;
use pbx_media::relay::{Component, Verdict};
use pbx_media::session::{Command, MediaSession};
use pbx_media::{LegPlan, OutStreamPlan, Side};
use relay_support::{addr, base, feed, leg, plan, rtp};
use session_support::run_until;

const BROWSER: &str = "192.0.2.30:5000";
const PHONE: &str = "192.0.2.31:6000";
const BROWSER_SSRC: u32 = 0x0b0b_0001;
const MS20: Duration = Duration::from_millis(20);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Hdr {
    marker: bool,
    pt: u8,
    seq: u16,
    ts: u32,
    ssrc: u32,
}

fn hdr(b: &[u8]) -> Hdr {
    Hdr {
        marker: b[1] & 0x80 != 0,
        pt: b[1] & 0x7f,
        seq: u16::from_be_bytes([b[2], b[3]]),
        ts: u32::from_be_bytes([b[4], b[5], b[6], b[7]]),
        ssrc: u32::from_be_bytes([b[8], b[9], b[10], b[11]]),
    }
}

/// The browser leg (caller) with its own stream and telephone-event under 126; the phone
/// (callee) plain, sending telephone-event as 101.
fn browser_and_phone() -> pbx_media::MediaPlan {
    let browser = LegPlan {
        out_stream: Some(Box::new(OutStreamPlan {
            ssrc: BROWSER_SSRC,
            clock_rates: vec![(0, 8000), (126, 8000)],
        })),
        pt_map: vec![(101, 126)],
        ..leg(BROWSER)
    };
    let phone = LegPlan {
        pt_map: vec![(126, 101)],
        ..leg(PHONE)
    };
    plan(browser, phone)
}

fn prompt(samples: usize) -> PlayerSpec {
    PlayerSpec {
        source: Box::new(PcmSource::new(
            vec![1000; samples],
            pbx_media::voice::Voice::G711(Law::Mu),
            MS20,
        )),
        payload_type: 0,
        ssrc: 0x5eed_0001,
        first_sequence: 40_000,
        first_timestamp: 123_456,
        ptime: MS20,
    }
}

/// The phone sends `n` packets 20 ms apart from `start`; returns what the browser got.
fn phone_talks(
    s: &mut MediaSession,
    start: Instant,
    n: u16,
    seq0: u16,
    ts0: u32,
    ssrc: u32,
    pt: u8,
) -> Vec<Hdr> {
    (0..n)
        .map(|i| {
            let p = rtp(
                pt,
                false,
                seq0.wrapping_add(i),
                ts0.wrapping_add(160 * u32::from(i)),
                ssrc,
                &[0xff; 160],
            );
            let at = start + MS20 * u32::from(i);
            let (v, out) = feed(s, at, Side::Callee, Component::Rtp, addr(PHONE), &p);
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
            hdr(&out)
        })
        .collect()
}

/// Every packet follows the one before: next sequence number, no marker unless it is the
/// first of a new source.
fn assert_continuous(all: &[Hdr], changes: &[usize]) {
    for (i, w) in all.windows(2).enumerate() {
        let (a, b) = (w[0], w[1]);
        assert_eq!(b.ssrc, BROWSER_SSRC, "packet {}", i + 1);
        assert_eq!(b.seq, a.seq.wrapping_add(1), "packet {} follows {i}", i + 1);
        assert!(
            b.ts.wrapping_sub(a.ts) > 0 && b.ts.wrapping_sub(a.ts) < 8000,
            "packet {}: timestamp moves forward by less than a second: {a:?} -> {b:?}",
            i + 1
        );
        assert_eq!(
            b.marker,
            changes.contains(&(i + 1)),
            "marker of packet {}",
            i + 1
        );
    }
}

#[test]
fn a_prompt_then_the_relay_then_a_new_device_are_one_stream() {
    let t0 = base();
    let mut s = MediaSession::new(t0);
    s.apply(t0, &browser_and_phone()).expect("plan");
    // 10 frames of prompt.
    s.handle_command(
        t0,
        Command::Play {
            side: Side::Caller,
            spec: prompt(1600),
        },
    )
    .expect("play");
    let (sent, _) = run_until(&mut s, t0, t0 + Duration::from_secs(1));
    let mut all: Vec<Hdr> = sent.iter().map(|p| hdr(&p.bytes)).collect();
    assert_eq!(all.len(), 10);
    // The first source keeps its own (random) numbering.
    assert_eq!((all[0].seq, all[0].ts), (40_000, 123_456));
    let prompt_end = sent.last().map(|p| p.at).expect("sent");

    // The call connects 100 ms after the prompt's last frame.
    let t1 = prompt_end + Duration::from_millis(100);
    s.handle_command(t1, Command::ConnectRelay)
        .expect("connect");
    let relayed = phone_talks(&mut s, t1, 20, 7, 9_000_000, 0xfeed_0001, 0);
    let first_relayed = all.len();
    assert_eq!(
        relayed[0].ts,
        all[9].ts.wrapping_add(800),
        "100 ms at 8 kHz after the last prompt frame"
    );
    all.extend(relayed);
    // A DTMF event from the phone: 101 becomes the browser's 126, same stream.
    let t2 = t1 + MS20 * 20;
    let dtmf = phone_talks(&mut s, t2, 1, 27, 9_000_000 + 160 * 20, 0xfeed_0001, 101);
    assert_eq!(dtmf[0].pt, 126);
    all.extend(dtmf);

    // A re-INVITE moves the phone leg to another device (a transfer): new SSRC, new numbers.
    let t3 = t2 + MS20;
    let mut moved = browser_and_phone();
    moved.callee = LegPlan {
        pt_map: vec![(126, 101)],
        ..leg("192.0.2.32:6100")
    };
    s.apply(t3, &moved).expect("re-plan");
    let other: Vec<Hdr> = (0..5u16)
        .map(|i| {
            let p = rtp(
                0,
                false,
                60_000 + i,
                5 + 160 * u32::from(i),
                0x0dd,
                &[0x7f; 160],
            );
            let at = t3 + MS20 * (u32::from(i) + 1);
            let (v, out) = feed(
                &mut s,
                at,
                Side::Callee,
                Component::Rtp,
                addr("192.0.2.32:6100"),
                &p,
            );
            assert!(matches!(v, Verdict::Forward { .. }), "{v:?}");
            hdr(&out)
        })
        .collect();
    let second_device = all.len();
    all.extend(other);

    assert_continuous(&all, &[first_relayed, second_device]);
    assert!(all[0].marker, "the player marks its first packet");
}

#[test]
fn sender_reports_to_the_browser_name_its_stream() {
    let t0 = base();
    let mut s = MediaSession::relay(t0);
    s.apply(t0, &browser_and_phone()).expect("plan");
    let got = phone_talks(&mut s, t0, 1, 100, 5000, 0x5151, 0);
    let mut sr = vec![0x80, 200, 0, 6];
    sr.extend_from_slice(&0x5151u32.to_be_bytes());
    sr.extend_from_slice(&[0; 8]); // NTP timestamp
    sr.extend_from_slice(&5000u32.to_be_bytes());
    sr.extend_from_slice(&[0; 8]); // packet and octet counts
    let (v, out) = feed(
        &mut s,
        t0,
        Side::Callee,
        Component::Rtcp,
        addr("192.0.2.31:6001"),
        &sr,
    );
    assert!(matches!(v, Verdict::Forward { .. }), "{v:?}");
    assert_eq!(&out[4..8], &BROWSER_SSRC.to_be_bytes());
    assert_eq!(&out[16..20], &got[0].ts.to_be_bytes());
}

#[test]
fn a_leg_without_its_own_stream_keeps_the_pass_through() {
    let t0 = base();
    let mut s = MediaSession::relay(t0);
    s.apply(t0, &browser_and_phone()).expect("plan");
    // Browser to phone: the phone's plan has no SSRC of the PBX's, so the browser's packet
    // arrives with its SSRC, sequence and timestamp (only the payload type is rewritten).
    let p = rtp(126, true, 31_000, 77_777, 0xb0b0, &[1, 2, 3, 4]);
    let (v, out) = feed(&mut s, t0, Side::Caller, Component::Rtp, addr(BROWSER), &p);
    assert!(
        matches!(
            v,
            Verdict::Forward {
                side: Side::Callee,
                ..
            }
        ),
        "{v:?}"
    );
    let mut expected = p.clone();
    expected[1] = 0x80 | 101;
    assert_eq!(out, expected);
}
