//! Transcoding inside the relay, in virtual time: a browser leg that speaks Opus and a phone
//! leg that speaks µ-law hear each other's 1 kHz tone (Goertzel), DTMF events cross by
//! payload type or, between `telephone-event/48000` and `/8000`, converted onto the other
//! leg's clock and stream, and the browser gets one stream under the PBX's SSRC at 48 kHz.

mod relay_support;

use std::time::Duration;

use opus_rs::{Application, OpusDecoder, OpusEncoder};
use pbx_media::g711::Law;
use pbx_media::relay::{Component, Verdict};
use pbx_media::session::MediaSession;
use pbx_media::voice::Voice;
use pbx_media::{LegPlan, OutStreamPlan, Side, Transcoding};
use relay_support::{addr, base, leg, plan, rtp};

/// As `relay_support::feed`, with the shell's 2048-byte buffer: a transcoded packet may be
/// longer than the one that came in.
fn feed(
    s: &mut MediaSession,
    now: std::time::Instant,
    side: Side,
    component: Component,
    source: std::net::SocketAddr,
    pkt: &[u8],
) -> (Verdict, Vec<u8>) {
    let mut buf = vec![0u8; 2048];
    buf[..pkt.len()].copy_from_slice(pkt);
    let v = s.handle_datagram(now, side, component, source, &mut buf, pkt.len());
    let out = match v {
        Verdict::Forward { len, .. } => buf[..len].to_vec(),
        Verdict::Drop(_) | Verdict::Consumed | Verdict::Held => Vec::new(),
    };
    (v, out)
}

const BROWSER: &str = "192.0.2.40:5000";
const PHONE: &str = "192.0.2.41:6000";
const OUT_SSRC: u32 = 0x0b0b_0002;
const MS20: Duration = Duration::from_millis(20);

fn transcoded() -> pbx_media::MediaPlan {
    let browser = LegPlan {
        out_stream: Some(Box::new(OutStreamPlan {
            ssrc: OUT_SSRC,
            clock_rates: vec![(111, 48_000), (126, 8000)],
        })),
        transcode: Some(Transcoding {
            opus_pt: 111,
            voice: Voice::G711(Law::Mu),
            voice_pt: 0,
            events: None,
        }),
        ..leg(BROWSER)
    };
    let phone = LegPlan {
        pt_map: vec![(126, 101)],
        ..leg(PHONE)
    };
    plan(browser, phone)
}

fn tone(rate: u32, samples: usize) -> Vec<i16> {
    (0..samples)
        .map(|n| {
            (8000.0 * (2.0 * std::f64::consts::PI * 1000.0 * n as f64 / f64::from(rate)).sin())
                as i16
        })
        .collect()
}

fn power(pcm: &[i16], rate: u32, freq: f64) -> f64 {
    let k = 2.0 * (2.0 * std::f64::consts::PI * freq / f64::from(rate)).cos();
    let (mut s1, mut s2) = (0.0f64, 0.0f64);
    for &x in pcm {
        let s = f64::from(x) + k * s1 - s2;
        s2 = s1;
        s1 = s;
    }
    s1 * s1 + s2 * s2 - k * s1 * s2
}

/// 1 kHz stands out from its neighbours by far, and the level is about what was sent.
fn assert_tone(pcm: &[i16], rate: u32) {
    let at = power(pcm, rate, 1000.0);
    for other in [400.0, 700.0, 1300.0, 2000.0] {
        assert!(
            at > 100.0 * power(pcm, rate, other),
            "1 kHz over {other} Hz"
        );
    }
    let rms = (pcm.iter().map(|&s| f64::from(s).powi(2)).sum::<f64>() / pcm.len() as f64).sqrt();
    assert!((4000.0..7000.0).contains(&rms), "level: {rms}");
}

#[test]
fn browser_and_phone_hear_each_others_tone_through_the_transcoder() {
    let t0 = base();
    let mut s = MediaSession::relay(t0);
    s.apply(t0, &transcoded()).expect("plan");

    // Browser → phone: Opus 48 kHz in, µ-law out.
    let mut enc = OpusEncoder::new(48_000, 1, Application::Voip).expect("encoder");
    enc.bitrate_bps = 32_000;
    let mut heard_by_phone = Vec::new();
    for (i, frame) in tone(48_000, 48_000).chunks(960).enumerate() {
        let mut opus = [0u8; 1500];
        let n = enc.encode_i16(frame, 960, &mut opus).expect("encode");
        let p = rtp(111, false, 100 + i as u16, 960 * i as u32, 0xb1, &opus[..n]);
        let at = t0 + MS20 * i as u32;
        let (v, out) = feed(&mut s, at, Side::Caller, Component::Rtp, addr(BROWSER), &p);
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
        assert_eq!(out[1] & 0x7f, 0, "PCMU to the phone");
        assert_eq!(out.len(), 12 + 160);
        heard_by_phone.extend(out[12..].iter().map(|&c| Law::Mu.decode(c)));
    }
    assert_tone(&heard_by_phone[1600..], 8000);

    // Phone → browser: µ-law in, Opus out under the PBX's SSRC, 960 ticks a packet.
    let mut dec = OpusDecoder::new(48_000, 1).expect("decoder");
    let mut heard_by_browser = Vec::new();
    let mut last_ts = None;
    for (i, frame) in tone(8000, 8000).chunks(160).enumerate() {
        let payload: Vec<u8> = frame.iter().map(|&x| Law::Mu.encode(x)).collect();
        let p = rtp(0, false, 5000 + i as u16, 160 * i as u32, 0xf1, &payload);
        let at = t0 + MS20 * i as u32;
        let (v, out) = feed(&mut s, at, Side::Callee, Component::Rtp, addr(PHONE), &p);
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
        assert_eq!(out[1] & 0x7f, 111, "Opus to the browser");
        assert_eq!(&out[8..12], &OUT_SSRC.to_be_bytes());
        let ts = u32::from_be_bytes([out[4], out[5], out[6], out[7]]);
        if let Some(last) = last_ts {
            assert_eq!(ts.wrapping_sub(last), 960);
        }
        last_ts = Some(ts);
        let mut pcm = [0f32; 5760];
        let n = dec.decode(&out[12..], 5760, &mut pcm).expect("decode");
        heard_by_browser.extend(pcm[..n].iter().map(|&x| (x * 32768.0) as i16));
    }
    assert_tone(&heard_by_browser[9600..], 48_000);

    // A phone's DTMF event is not audio: it passes the stage untouched (the phone sends the
    // number the PBX offered it, the browser's 126, RFC 3264 §6.1), in the browser's stream.
    let event = rtp(126, true, 5050, 8000, 0xf1, &[5, 0x0a, 0, 160]);
    let (v, out) = feed(
        &mut s,
        t0 + MS20 * 50,
        Side::Callee,
        Component::Rtp,
        addr(PHONE),
        &event,
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
    assert_eq!(out[1] & 0x7f, 126);
    assert_eq!(&out[8..12], &OUT_SSRC.to_be_bytes());
    assert_eq!(&out[12..], &[5, 0x0a, 0, 160]);
}

#[test]
fn a_malformed_opus_payload_is_dropped_and_counted() {
    let t0 = base();
    let mut s = MediaSession::relay(t0);
    s.apply(t0, &transcoded()).expect("plan");
    // A code 3 packet without its frame count byte (RFC 6716 §3.2.5: malformed).
    let p = rtp(111, false, 1, 0, 0xb1, &[0x03, 0x00]);
    let (v, _) = feed(&mut s, t0, Side::Caller, Component::Rtp, addr(BROWSER), &p);
    assert_eq!(v, Verdict::Drop(pbx_media::relay::DropReason::Transcode));
    assert_eq!(
        s.stats().dropped(pbx_media::relay::DropReason::Transcode),
        1
    );
}

/// The browser offered only `telephone-event/48000` (110); the phone answered the
/// PBX's `telephone-event/8000` under its own 96 (offered 101).
fn transcoded_with_events() -> pbx_media::MediaPlan {
    let browser = LegPlan {
        out_stream: Some(Box::new(OutStreamPlan {
            ssrc: OUT_SSRC,
            clock_rates: vec![(111, 48_000), (110, 48_000)],
        })),
        transcode: Some(Transcoding {
            opus_pt: 111,
            voice: Voice::G711(Law::Mu),
            voice_pt: 0,
            events: Some(pbx_media::transcode::EventPts {
                opus_pt: 110,
                voice_in: 101,
                voice_out: 101,
            }),
        }),
        ..leg(BROWSER)
    };
    let phone = LegPlan {
        pt_map: vec![(101, 96)],
        ..leg(PHONE)
    };
    plan(browser, phone)
}

fn forwarded(v: Verdict, to: Side) {
    assert!(
        matches!(v, Verdict::Forward { side, .. } if side == to),
        "{v:?}"
    );
}

fn ts(p: &[u8]) -> u32 {
    u32::from_be_bytes([p[4], p[5], p[6], p[7]])
}

#[test]
fn events_cross_between_48k_and_8k_in_each_legs_stream() {
    let t0 = base();
    let mut s = MediaSession::relay(t0);
    s.apply(t0, &transcoded_with_events()).expect("plan");

    // Browser → phone: 5 Opus packets, then key 3 at the 6th packet's time.
    let mut enc = OpusEncoder::new(48_000, 1, Application::Voip).expect("encoder");
    let mut first_ts = None;
    for (i, frame) in tone(48_000, 4800).chunks(960).enumerate() {
        let mut opus = [0u8; 1500];
        let n = enc.encode_i16(frame, 960, &mut opus).expect("encode");
        let p = rtp(
            111,
            false,
            10 + i as u16,
            90_000 + 960 * i as u32,
            0xb1,
            &opus[..n],
        );
        let (v, out) = feed(
            &mut s,
            t0 + MS20 * i as u32,
            Side::Caller,
            Component::Rtp,
            addr(BROWSER),
            &p,
        );
        forwarded(v, Side::Callee);
        first_ts.get_or_insert(ts(&out));
    }
    let audio_ts = first_ts.expect("audio");
    for (i, (end, d)) in [(false, 960u16), (true, 5760), (true, 5760)]
        .into_iter()
        .enumerate()
    {
        let payload = [3, u8::from(end) << 7 | 10, (d >> 8) as u8, d as u8];
        let p = rtp(110, i == 0, 15 + i as u16, 90_000 + 960 * 5, 0xb1, &payload);
        let (v, out) = feed(
            &mut s,
            t0 + MS20 * (5 + i as u32),
            Side::Caller,
            Component::Rtp,
            addr(BROWSER),
            &p,
        );
        forwarded(v, Side::Callee);
        assert_eq!(
            out[1],
            u8::from(i == 0) << 7 | 96,
            "the phone's own number, marker kept"
        );
        assert_eq!(
            ts(&out),
            audio_ts + 800,
            "100 ms after the first audio, on 8 kHz"
        );
        assert_eq!(&out[12..14], &payload[..2]);
        assert_eq!(u16::from_be_bytes([out[14], out[15]]), d / 6);
    }

    // Phone → browser: 5 µ-law packets, then key 9; in the browser's one stream.
    let mut last = None;
    for (i, frame) in tone(8000, 800).chunks(160).enumerate() {
        let payload: Vec<u8> = frame.iter().map(|&x| Law::Mu.encode(x)).collect();
        let p = rtp(
            0,
            false,
            700 + i as u16,
            4000 + 160 * i as u32,
            0xf1,
            &payload,
        );
        let (v, out) = feed(
            &mut s,
            t0 + MS20 * i as u32,
            Side::Callee,
            Component::Rtp,
            addr(PHONE),
            &p,
        );
        forwarded(v, Side::Caller);
        last = Some((ts(&out), u16::from_be_bytes([out[2], out[3]])));
    }
    let (last_ts, last_seq) = last.expect("audio");
    let p = rtp(101, true, 705, 4000 + 800, 0xf1, &[9, 0x8a, 0x05, 0x00]);
    let (v, out) = feed(
        &mut s,
        t0 + MS20 * 5,
        Side::Callee,
        Component::Rtp,
        addr(PHONE),
        &p,
    );
    forwarded(v, Side::Caller);
    assert_eq!(out[1] & 0x7f, 110);
    assert_eq!(&out[8..12], &OUT_SSRC.to_be_bytes(), "the audio's SSRC");
    assert_eq!(
        u16::from_be_bytes([out[2], out[3]]),
        last_seq.wrapping_add(1)
    );
    assert_eq!(
        ts(&out),
        last_ts + 960,
        "20 ms after the last audio, on 48 kHz"
    );
    assert_eq!(
        &out[12..],
        &[9, 0x8a, 0x1e, 0x00],
        "E bit kept, 1280 * 6 = 7680"
    );
}

/// An SIP Opus leg (no stream of the PBX's own: its timestamps are the transcoder's) and a
/// phone that answered the PBX's `telephone-event/8000` under `events.voice_in`.
fn opus_to_phone(
    events: pbx_media::transcode::EventPts,
    phone_map: Vec<(u8, u8)>,
) -> pbx_media::MediaPlan {
    let opus = LegPlan {
        transcode: Some(Transcoding {
            opus_pt: 111,
            voice: Voice::G711(Law::Mu),
            voice_pt: 0,
            events: Some(events),
        }),
        ..leg(BROWSER)
    };
    let phone = LegPlan {
        pt_map: phone_map,
        ..leg(PHONE)
    };
    plan(opus, phone)
}

#[test]
fn a_replan_that_renumbers_the_events_keeps_the_transcoder_going() {
    use pbx_media::transcode::EventPts;
    let t0 = base();
    let mut s = MediaSession::relay(t0);
    // The phone answered the PBX's 101 under its own 96.
    let first = EventPts {
        opus_pt: 110,
        voice_in: 101,
        voice_out: 101,
    };
    s.apply(t0, &opus_to_phone(first, vec![(101, 96)]))
        .expect("plan");
    let pcmu = tone(8000, 480)
        .iter()
        .map(|&x| Law::Mu.encode(x))
        .collect::<Vec<u8>>();
    // 30 ms from the phone: one 20 ms Opus frame goes out, 10 ms wait for the next packet.
    let p = rtp(0, false, 700, 4000, 0xf1, &pcmu[..240]);
    let (v, out) = feed(&mut s, t0, Side::Callee, Component::Rtp, addr(PHONE), &p);
    forwarded(v, Side::Caller);
    assert_eq!(ts(&out), 4000 * 6);

    // The phone holds, re-offering its events under its own 96 (sdp_transcode_reoffer.rs):
    // the same codecs under other numbers.
    let renumbered = EventPts {
        opus_pt: 110,
        voice_in: 96,
        voice_out: 96,
    };
    s.apply(t0 + MS20, &opus_to_phone(renumbered, Vec::new()))
        .expect("re-plan");
    let p = rtp(0, false, 701, 4240, 0xf1, &pcmu[240..]);
    let (v, out) = feed(
        &mut s,
        t0 + MS20,
        Side::Callee,
        Component::Rtp,
        addr(PHONE),
        &p,
    );
    forwarded(v, Side::Caller);
    // The 10 ms kept from before the re-plan lead this packet's audio: nothing lost.
    assert_eq!(ts(&out), (4000 + 160) * 6);
    // The phone's key under its new number reaches the Opus leg on 48 kHz.
    let p = rtp(96, true, 702, 4480, 0xf1, &[9, 0x0a, 0x00, 0xa0]);
    let (v, out) = feed(
        &mut s,
        t0 + MS20 * 2,
        Side::Callee,
        Component::Rtp,
        addr(PHONE),
        &p,
    );
    forwarded(v, Side::Caller);
    assert_eq!(out[1], 0x80 | 110);
    assert_eq!(ts(&out), 4480 * 6);
    assert_eq!(u16::from_be_bytes([out[14], out[15]]), 160 * 6);
}
