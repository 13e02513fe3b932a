//! The recorder in virtual time: stops on silence, on its maximum length (by audio or by
//! time), decodes G.711 of either law, and takes a leg's packets with or without the relay.

mod relay_support;
mod session_support;

use std::time::{Duration, Instant};

use pbx_media::Side;
use pbx_media::endpoint::recorder::{RecorderSpec, RecordingEnd};
use pbx_media::g711::Law;
use pbx_media::relay::{Component, DropReason, Verdict};
use pbx_media::session::{Command, Event, MediaSession};
use relay_support::{addr, base, feed, leg, plan, rtp};
use session_support::run_until;

const CALLER: &str = "192.0.2.10:4000";
const CALLEE: &str = "198.51.100.20:6000";
const MS20: Duration = Duration::from_millis(20);

fn record(s: &mut MediaSession, now: Instant, spec: RecorderSpec) {
    s.handle_command(
        now,
        Command::Record {
            side: Side::Caller,
            spec,
        },
    )
    .expect("record");
}

/// Packet `i` from the caller: 160 samples of `code` in payload type `pt`.
fn send(s: &mut MediaSession, at: Instant, i: u16, pt: u8, code: u8) -> Verdict {
    let pkt = rtp(pt, i == 0, i, 160 * u32::from(i), 0xca11, &[code; 160]);
    feed(s, at, Side::Caller, Component::Rtp, addr(CALLER), &pkt).0
}

#[test]
fn stops_after_the_silence_that_follows_speech() {
    let t0 = base();
    let mut s = MediaSession::relay(t0);
    s.apply(t0, &plan(leg(CALLER), leg(CALLEE))).expect("plan");
    record(
        &mut s,
        t0,
        RecorderSpec {
            max_length: Duration::from_secs(60),
            silence: Some(Duration::from_millis(300)),
            silence_level: 100,
            opus_payload_type: None,
        },
    );
    // 200 ms of speech (µ-law 0xce = 1884... loud), then idle-channel µ-law (0xff = 0).
    let voice = 0xce;
    let mut sent = 0u16;
    let mut now = t0;
    for i in 0..10 {
        now = t0 + MS20 * u32::from(i);
        let v = send(&mut s, now, i, 0, voice);
        assert!(
            matches!(v, Verdict::Forward { .. }),
            "still relayed while recorded"
        );
        sent += 1;
    }
    let last_voice = now;
    assert_eq!(
        s.poll_timeout(),
        Some(last_voice + Duration::from_millis(300))
    );
    let mut events = Vec::new();
    // Silence keeps coming; the recorder ends 300 ms after the last voiced packet.
    while events.is_empty() {
        now += MS20;
        if s.poll_timeout().is_some_and(|at| at <= now) {
            let (_, ev) = run_until(&mut s, now, now);
            events = ev;
        } else {
            let _ = send(&mut s, now, sent, 0, 0xff);
            sent += 1;
        }
    }
    let [(at, Event::RecorderFinished { side, end, pcm })] = &events[..] else {
        panic!("one recording end: {events:?}");
    };
    assert_eq!(*at, last_voice + Duration::from_millis(300));
    assert_eq!((*side, *end), (Side::Caller, RecordingEnd::Silence));
    // 10 voiced packets then the silent ones before the deadline (14 at 20 ms steps).
    assert_eq!(pcm.len(), 160 * usize::from(sent));
    assert!(pcm[..1600].iter().all(|&x| x == Law::Mu.decode(voice)));
    assert!(pcm[1600..].iter().all(|&x| x == 0));
    assert_eq!(s.poll_timeout(), None);
}

#[test]
fn stops_at_the_maximum_length_of_audio() {
    let t0 = base();
    let mut s = MediaSession::new(t0);
    s.apply(t0, &plan(leg(CALLER), leg(CALLEE))).expect("plan");
    record(
        &mut s,
        t0,
        RecorderSpec {
            max_length: Duration::from_millis(100),
            silence: None,
            silence_level: 100,
            opus_payload_type: None,
        },
    );
    // A-law (payload type 8); a telephone-event in between is not audio.
    for i in 0..5 {
        let at = t0 + MS20 * u32::from(i);
        assert_eq!(send(&mut s, at, i, 8, 0xaa), Verdict::Consumed);
        if i == 2 {
            assert_eq!(send(&mut s, at, 100, 101, 0x05), Verdict::Consumed);
        }
        if i < 4 {
            assert_eq!(s.poll_event(), None);
        }
    }
    match s.poll_event() {
        Some(Event::RecorderFinished {
            side: Side::Caller,
            end: RecordingEnd::MaxLength,
            pcm,
        }) => {
            assert_eq!(pcm.len(), 800, "100 ms at 8 kHz");
            assert!(pcm.iter().all(|&x| x == 32256), "A-law 0xaa");
        }
        other => panic!("expected the end of the recording, got {other:?}"),
    }
    // Nobody listens now and the relay is not connected.
    assert_eq!(
        send(&mut s, t0 + MS20 * 5, 5, 8, 0xaa),
        Verdict::Drop(DropReason::NotConnected)
    );
    assert_eq!(s.stats().dropped(DropReason::NotConnected), 1);
}

#[test]
fn stops_at_the_maximum_length_in_time_without_packets() {
    let t0 = base();
    let mut s = MediaSession::new(t0);
    record(
        &mut s,
        t0,
        RecorderSpec {
            max_length: Duration::from_millis(500),
            silence: Some(Duration::from_secs(2)),
            silence_level: 100,
            opus_payload_type: None,
        },
    );
    let (_, events) = run_until(&mut s, t0, t0 + Duration::from_secs(10));
    assert_eq!(
        events,
        vec![(
            t0 + Duration::from_millis(500),
            Event::RecorderFinished {
                side: Side::Caller,
                end: RecordingEnd::MaxLength,
                pcm: Vec::new(),
            }
        )]
    );
}

#[test]
fn a_stop_hands_over_what_was_recorded() {
    let t0 = base();
    let mut s = MediaSession::new(t0);
    s.apply(t0, &plan(leg(CALLER), leg(CALLEE))).expect("plan");
    record(
        &mut s,
        t0,
        RecorderSpec {
            max_length: Duration::from_secs(5),
            silence: None,
            silence_level: 0,
            opus_payload_type: None,
        },
    );
    let _ = send(&mut s, t0, 0, 0, 0x80);
    s.handle_command(t0 + MS20, Command::StopRecorder { side: Side::Caller })
        .expect("stop");
    match s.poll_event() {
        Some(Event::RecorderFinished {
            end: RecordingEnd::Stopped,
            pcm,
            ..
        }) => assert_eq!(pcm, vec![32124; 160]),
        other => panic!("expected the recording, got {other:?}"),
    }
}

#[test]
fn a_long_recording_comes_out_in_chunks_and_a_stop_hands_over_the_rest() {
    use pbx_media::endpoint::recorder::RECORDER_CHUNK;
    let t0 = base();
    let mut s = MediaSession::relay(t0);
    s.apply(t0, &plan(leg(CALLER), leg(CALLEE))).expect("plan");
    record(
        &mut s,
        t0,
        RecorderSpec {
            max_length: Duration::from_secs(60),
            silence: None,
            silence_level: 100,
            opus_payload_type: None,
        },
    );
    // 1.2 s of speech: two chunks of half a second, 0.2 s still held.
    let mut chunks = Vec::new();
    for i in 0..60u16 {
        let _ = send(&mut s, t0 + MS20 * u32::from(i), i, 0, 0xce);
        while let Some(event) = s.poll_event() {
            match event {
                Event::RecorderAudio { side, pcm } => {
                    assert_eq!(side, Side::Caller);
                    chunks.push(pcm);
                }
                other => panic!("only audio while recording: {other:?}"),
            }
        }
    }
    assert_eq!(chunks.len(), 2, "a chunk every {RECORDER_CHUNK} samples");
    assert!(chunks.iter().all(|c| c.len() == RECORDER_CHUNK));
    // The session goes away (the caller hung up): the rest comes out with the end.
    s.stop_recorders();
    let Some(Event::RecorderFinished { end, pcm, .. }) = s.poll_event() else {
        panic!("the recording ends");
    };
    assert_eq!(end, RecordingEnd::Stopped);
    assert_eq!(
        pcm.len() + 2 * RECORDER_CHUNK,
        60 * 160,
        "no sample lost or doubled"
    );
    assert_eq!(s.poll_event(), None);
}
