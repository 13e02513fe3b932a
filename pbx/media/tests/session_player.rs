//! The player in virtual time: 20 ms pacing (50 packets a second), RFC 3550 §5.1 sequence
//! numbers and timestamps, the marker on the first packet, SRTP on SRTP legs.

mod relay_support;
mod session_support;

use std::time::Duration;

use pbx_media::endpoint::player::{PcmSource, PlayerSpec};
use pbx_media::g711::Law;
use pbx_media::relay::Component;
use pbx_media::session::{Command, Event, MediaSession, SessionError};
use pbx_media::{CryptoSuite, Direction, LegPlan, Side, SrtpKey, SrtpPair};
use relay_support::{addr, base, leg, plan};
use rtc_srtp::context::Context;
use rtc_srtp::protection_profile::ProtectionProfile;
use session_support::run_until;

const CALLER: &str = "192.0.2.10:4000";
const MS20: Duration = Duration::from_millis(20);

/// One second of a ramp, so every frame differs.
fn pcm() -> Vec<i16> {
    (0..8000).map(|i| ((i % 400) * 40 - 8000) as i16).collect()
}

fn spec(law: Law, pcm: Vec<i16>) -> PlayerSpec {
    PlayerSpec {
        source: Box::new(PcmSource::new(
            pcm,
            pbx_media::voice::Voice::G711(law),
            MS20,
        )),
        payload_type: law.payload_type(),
        ssrc: 0x5eed_0001,
        // Both counters wrap during the second: RFC 3550 §5.1 arithmetic is modulo.
        first_sequence: 65_530,
        first_timestamp: 0xffff_ff00,
        ptime: MS20,
    }
}

fn caller_only(caller: LegPlan) -> pbx_media::MediaPlan {
    plan(caller, LegPlan::default())
}

#[test]
fn one_second_is_fifty_packets_twenty_ms_apart() {
    let t0 = base();
    let mut s = MediaSession::new(t0);
    s.apply(t0, &caller_only(leg(CALLER))).expect("plan");
    let audio = pcm();
    s.handle_command(
        t0,
        Command::Play {
            side: Side::Caller,
            spec: spec(Law::Mu, audio.clone()),
        },
    )
    .expect("play");
    let (sent, events) = run_until(&mut s, t0, t0 + Duration::from_secs(2));

    assert_eq!(sent.len(), 50, "8000 samples in 160-sample frames");
    for (i, p) in sent.iter().enumerate() {
        let i32_ = i as u32;
        assert_eq!(p.at, t0 + MS20 * i32_, "packet {i} paced at 20 ms");
        assert_eq!(p.transmit.side, Side::Caller);
        assert_eq!(p.transmit.component, Component::Rtp);
        assert_eq!(p.transmit.to, addr(CALLER));
        let b = &p.bytes;
        assert_eq!(b.len(), 12 + 160);
        assert_eq!(b[0], 0x80, "V=2, no padding, extension or CSRC");
        assert_eq!(b[1] & 0x80 != 0, i == 0, "marker on the first packet only");
        assert_eq!(b[1] & 0x7f, 0, "PCMU");
        let seq = u16::from_be_bytes([b[2], b[3]]);
        assert_eq!(seq, 65_530u16.wrapping_add(i as u16));
        let ts = u32::from_be_bytes([b[4], b[5], b[6], b[7]]);
        assert_eq!(
            ts,
            0xffff_ff00u32.wrapping_add(160 * i32_),
            "timestamps +160"
        );
        assert_eq!(u32::from_be_bytes([b[8], b[9], b[10], b[11]]), 0x5eed_0001);
        let expected: Vec<u8> = audio[i * 160..(i + 1) * 160]
            .iter()
            .map(|&x| Law::Mu.encode(x))
            .collect();
        assert_eq!(&b[12..], &expected[..]);
    }
    // The last frame's 20 ms end at one second: then the player is done, once.
    assert_eq!(
        events,
        vec![(
            t0 + Duration::from_secs(1),
            Event::PlayerFinished { side: Side::Caller }
        )]
    );
    assert_eq!(s.poll_timeout(), None, "nothing left to do");
    assert_eq!(
        s.stats().relayed_total().packets,
        0,
        "own packets are not relayed ones"
    );
}

#[test]
fn a_late_wake_up_sends_what_is_due_and_skips_the_rest() {
    let t0 = base();
    let mut s = MediaSession::new(t0);
    s.apply(t0, &caller_only(leg(CALLER))).expect("plan");
    s.handle_command(
        t0,
        Command::Play {
            side: Side::Caller,
            spec: spec(Law::A, pcm()),
        },
    )
    .expect("play");
    let mut buf = [0u8; 2048];
    let first = s.poll_transmit(t0, &mut buf).expect("first frame at once");
    assert_eq!(first.len, 172);
    assert!(s.poll_transmit(t0, &mut buf).is_none());
    assert_eq!(s.poll_timeout(), Some(t0 + MS20));
    // The worker wakes 100 ms late: frames of 20..100 ms are due; at most 3 + 1 go out.
    let late = t0 + Duration::from_millis(100);
    let mut stamps = Vec::new();
    while let Some(t) = s.poll_transmit(late, &mut buf) {
        stamps.push((
            u16::from_be_bytes([buf[2], buf[3]]),
            u32::from_be_bytes([buf[4], buf[5], buf[6], buf[7]]),
        ));
        assert_eq!(buf[1], 8, "PCMA, no marker");
        assert_eq!(t.len, 172);
    }
    let ts0 = 0xffff_ff00u32;
    assert_eq!(
        stamps,
        vec![
            (65_531, ts0.wrapping_add(320)),
            (65_532, ts0.wrapping_add(480)),
            (65_533, ts0.wrapping_add(640)),
            (65_534, ts0.wrapping_add(800)),
        ],
        "the 20 ms frame is skipped: its time passes (timestamp), no sequence number is used"
    );
    assert_eq!(s.poll_timeout(), Some(t0 + Duration::from_millis(120)));
}

fn key(suite: CryptoSuite, fill: u8) -> SrtpKey {
    SrtpKey {
        suite,
        key_salt: (0..30u8).map(|i| i.wrapping_mul(7) ^ fill).collect(),
    }
}

#[test]
fn an_srtp_leg_gets_srtp_with_the_pbx_key() {
    let t0 = base();
    let suite = CryptoSuite::AesCm128HmacSha1_80;
    let keys = SrtpPair {
        inbound: key(suite, 1),
        outbound: key(suite, 2),
    };
    let mut s = MediaSession::new(t0);
    let caller = LegPlan {
        srtp: Some(keys.clone()),
        ..leg(CALLER)
    };
    s.apply(t0, &caller_only(caller)).expect("plan");
    s.handle_command(
        t0,
        Command::Play {
            side: Side::Caller,
            spec: spec(Law::Mu, pcm()),
        },
    )
    .expect("play");
    let (sent, _) = run_until(&mut s, t0, t0 + Duration::from_millis(100));
    assert_eq!(sent.len(), 6);
    // The phone decrypts with the PBX's outbound key (RFC 4568: the key in the PBX's a=crypto).
    let (master, salt) = keys.outbound.key_salt.split_at(16);
    let provider = rtc_srtp::crypto::default_provider().expect("provider");
    let mut phone = Context::new(
        master,
        salt,
        ProtectionProfile::Aes128CmHmacSha1_80,
        None,
        None,
        provider.crypto(),
    )
    .expect("context");
    for (i, p) in sent.iter().enumerate() {
        assert_eq!(p.bytes.len(), 12 + 160 + 10, "80-bit tag");
        let plain = phone.decrypt_rtp(&p.bytes).expect("authentic SRTP");
        assert_eq!(plain.len(), 172);
        assert_eq!(
            u16::from_be_bytes([plain[2], plain[3]]),
            65_530u16.wrapping_add(i as u16)
        );
        assert_ne!(&p.bytes[12..172], &plain[12..172], "payload encrypted");
    }
}

#[test]
fn a_leg_that_does_not_receive_hears_nothing_but_time_passes() {
    let t0 = base();
    let mut s = MediaSession::new(t0);
    let held = LegPlan {
        direction: Direction::SendOnly,
        ..leg(CALLER)
    };
    s.apply(t0, &caller_only(held)).expect("plan");
    s.handle_command(
        t0,
        Command::Play {
            side: Side::Caller,
            spec: spec(Law::Mu, pcm()),
        },
    )
    .expect("play");
    let (sent, events) = run_until(&mut s, t0, t0 + Duration::from_secs(2));
    assert!(sent.is_empty(), "RFC 3264 §5.1: nothing to a sendonly leg");
    assert_eq!(
        events,
        vec![(
            t0 + Duration::from_secs(1),
            Event::PlayerFinished { side: Side::Caller }
        )]
    );
}

#[test]
fn stop_reports_the_end_and_bad_ptime_is_refused() {
    let t0 = base();
    let mut s = MediaSession::new(t0);
    let mut bad = spec(Law::Mu, pcm());
    bad.ptime = Duration::ZERO;
    assert!(matches!(
        s.handle_command(
            t0,
            Command::Play {
                side: Side::Callee,
                spec: bad
            }
        ),
        Err(SessionError::Ptime(_))
    ));
    assert_eq!(s.poll_timeout(), None);
    s.handle_command(
        t0,
        Command::Play {
            side: Side::Callee,
            spec: spec(Law::Mu, pcm()),
        },
    )
    .expect("play");
    assert_eq!(s.poll_timeout(), Some(t0));
    s.handle_command(t0, Command::StopPlayer { side: Side::Callee })
        .expect("stop");
    assert_eq!(
        s.poll_event(),
        Some(Event::PlayerFinished { side: Side::Callee })
    );
    assert_eq!(s.poll_event(), None);
    assert_eq!(s.poll_timeout(), None);
}

fn seq_ts(bytes: &[u8]) -> (u16, u32) {
    (
        u16::from_be_bytes([bytes[2], bytes[3]]),
        u32::from_be_bytes([bytes[4], bytes[5], bytes[6], bytes[7]]),
    )
}

#[test]
fn the_next_prompt_carries_on_the_stream_of_the_last_one() {
    // A menu plays its prompt, waits, and plays it again: one SSRC, so RFC 3550 §5.1 wants
    // the sequence number to go on by one and the timestamp to count the silence between.
    let t0 = base();
    let mut s = MediaSession::new(t0);
    s.apply(t0, &caller_only(leg(CALLER))).expect("plan");
    let play = |s: &mut MediaSession, at, first_sequence, first_timestamp| {
        let mut spec = spec(Law::Mu, pcm()[..800].to_vec());
        spec.first_sequence = first_sequence;
        spec.first_timestamp = first_timestamp;
        s.handle_command(
            at,
            Command::Play {
                side: Side::Caller,
                spec,
            },
        )
        .expect("play");
    };
    play(&mut s, t0, 65_534, 0xffff_ff00);
    let (first, _) = run_until(&mut s, t0, t0 + Duration::from_secs(1));
    assert_eq!(first.len(), 5, "800 samples are five frames");
    let (last_seq, last_ts) = seq_ts(&first[4].bytes);
    assert_eq!(last_seq, 2, "65534, 65535, 0, 1, 2");

    // One second of silence after the last frame, then a new player drawn with another
    // random start: the stream carries on instead.
    let again = first[4].at + Duration::from_secs(1);
    play(&mut s, again, 1234, 99);
    let (second, _) = run_until(&mut s, again, again + Duration::from_secs(1));
    assert_eq!(second.len(), 5);
    let (seq, ts) = seq_ts(&second[0].bytes);
    assert_eq!(seq, last_seq.wrapping_add(1), "the sequence goes on by one");
    assert_eq!(
        ts,
        last_ts.wrapping_add(8000),
        "the timestamp counts the second since the last frame"
    );
    assert!(
        second[0].bytes[1] & 0x80 != 0,
        "a new talkspurt: marker set"
    );

    // Another SSRC is another stream: its own start is kept.
    let later = second[4].at + MS20;
    let mut other = spec(Law::Mu, pcm()[..160].to_vec());
    other.ssrc = 0x0dd5_0002;
    other.first_sequence = 4321;
    s.handle_command(
        later,
        Command::Play {
            side: Side::Caller,
            spec: other,
        },
    )
    .expect("play");
    let (third, _) = run_until(&mut s, later, later + Duration::from_secs(1));
    assert_eq!(seq_ts(&third[0].bytes).0, 4321);
}
