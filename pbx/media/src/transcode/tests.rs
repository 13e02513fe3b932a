//! The stage with real codecs: a 1 kHz tone through Opus and G.711 both ways keeps its
//! frequency (Goertzel) and its level; a lost packet is concealed; timestamps map across the
//! 48 kHz and 8 kHz clocks.

use super::*;
use crate::g711::Law;

const OPUS_PT: u8 = 111;
const SPEC: Transcoding = Transcoding {
    opus_pt: OPUS_PT,
    voice: Voice::G711(Law::Mu),
    voice_pt: 0,
    events: None,
};

fn tone(rate: u32, freq: f64, amplitude: f64, samples: usize) -> Vec<i16> {
    (0..samples)
        .map(|n| {
            (amplitude * (2.0 * std::f64::consts::PI * freq * n as f64 / f64::from(rate)).sin())
                as i16
        })
        .collect()
}

/// Goertzel power of `freq` in `pcm` sampled at `rate`.
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

fn strongest(pcm: &[i16], rate: u32) -> f64 {
    [300.0, 500.0, 700.0, 1000.0, 1300.0, 1700.0, 2500.0]
        .into_iter()
        .map(|f| (f, power(pcm, rate, f)))
        .fold(
            (0.0, 0.0),
            |(bf, bp), (f, p)| if p > bp { (f, p) } else { (bf, bp) },
        )
        .0
}

fn rms(pcm: &[i16]) -> f64 {
    (pcm.iter().map(|&s| f64::from(s).powi(2)).sum::<f64>() / pcm.len() as f64).sqrt()
}

fn rtp_packet(pt: u8, seq: u16, ts: u32, payload: &[u8]) -> Vec<u8> {
    let mut p = vec![0u8; 2048];
    rtp::write_header(&mut p, false, pt, seq, ts, 0xb0b0_0001);
    p[12..12 + payload.len()].copy_from_slice(payload);
    p.truncate(12 + payload.len());
    p
}

/// A browser's Opus stream: 20 ms frames of a 48 kHz tone, as RTP.
fn opus_stream(frames: usize) -> Vec<Vec<u8>> {
    let mut enc = OpusEncoder::new(48_000, 1, Application::Voip).expect("encoder");
    enc.bitrate_bps = 32_000;
    let pcm = tone(48_000, 1000.0, 8000.0, 960 * frames);
    pcm.chunks(960)
        .enumerate()
        .map(|(i, frame)| {
            let mut out = [0u8; 1500];
            let n = enc.encode_i16(frame, 960, &mut out).expect("encode");
            rtp_packet(OPUS_PT, 1000 + i as u16, 50_000 + 960 * i as u32, &out[..n])
        })
        .collect()
}

/// Runs packets through Opus → µ-law; returns each output's (seq, ts, samples).
fn to_voice(stage: &mut OpusToVoice, packets: &[Vec<u8>]) -> Vec<(u16, u32, Vec<i16>)> {
    packets
        .iter()
        .map(|p| {
            let mut buf = p.clone();
            buf.resize(2048, 0);
            assert!(stage.takes(&buf));
            let len = stage.transcode(&mut buf, p.len()).expect("transcode");
            let (_, seq, ts, ssrc) = header(&buf);
            assert_eq!(ssrc, 0xb0b0_0001);
            assert_eq!(buf[1] & 0x7f, 0, "PCMU");
            let pcm = buf[12..len].iter().map(|&c| Law::Mu.decode(c)).collect();
            (seq, ts, pcm)
        })
        .collect()
}

#[test]
fn an_opus_tone_comes_out_as_g711_with_its_frequency_and_level() {
    let mut stage = OpusToVoice::new(SPEC).expect("stage");
    let out = to_voice(&mut stage, &opus_stream(50));
    assert_eq!(out.len(), 50);
    for (i, (seq, ts, pcm)) in out.iter().enumerate() {
        assert_eq!(pcm.len(), 160, "20 ms at 8 kHz per packet");
        assert_eq!(*seq, 1000 + i as u16);
        assert_eq!(
            ts.wrapping_sub(out[0].1),
            160 * i as u32,
            "48 kHz ticks / 6"
        );
    }
    let audio: Vec<i16> = out.iter().flat_map(|(_, _, p)| p.clone()).collect();
    let settled = &audio[1600..];
    assert_eq!(strongest(settled, 8000), 1000.0);
    let level = rms(settled);
    // 8000 peak is 5657 RMS; codecs may lose a little.
    assert!((4000.0..7000.0).contains(&level), "level kept: {level}");
}

#[test]
fn a_lost_opus_packet_is_concealed_in_front_of_the_next() {
    let mut stage = OpusToVoice::new(SPEC).expect("stage");
    let mut packets = opus_stream(30);
    packets.remove(20);
    let out = to_voice(&mut stage, &packets);
    let (_, ts19, _) = &out[19];
    let (seq, ts, pcm) = &out[20];
    assert_eq!(*seq, 1021);
    assert_eq!(pcm.len(), 320, "the lost 20 ms and this packet's");
    assert_eq!(*ts, ts19 + 160, "starts where the lost packet would have");
    assert!(rms(&pcm[..160]) > 1000.0, "PLC carries the tone on");
    assert_eq!(strongest(pcm, 8000), 1000.0);
    // Then back to one frame per packet.
    assert_eq!(out[21].2.len(), 160);
    assert_eq!(out[21].1, ts + 320);
}

#[test]
fn a_long_gap_is_not_filled() {
    let mut stage = OpusToVoice::new(SPEC).expect("stage");
    let mut packets = opus_stream(20);
    packets.drain(5..15);
    let out = to_voice(&mut stage, &packets);
    assert_eq!(
        out[5].2.len(),
        160,
        "a 200 ms hole is a new talkspurt, not PLC"
    );
    assert_eq!(out[5].1, out[0].1 + 160 * 15, "its time kept");
}

/// A phone's µ-law stream, `per_packet` samples a packet.
fn g711_stream(samples: usize, per_packet: usize) -> Vec<Vec<u8>> {
    let pcm = tone(8000, 1000.0, 8000.0, samples);
    pcm.chunks(per_packet)
        .enumerate()
        .map(|(i, chunk)| {
            let payload: Vec<u8> = chunk.iter().map(|&s| Law::Mu.encode(s)).collect();
            rtp_packet(0, 7 + i as u16, 1_000 + (per_packet * i) as u32, &payload)
        })
        .collect()
}

/// Runs packets through µ-law → Opus and decodes the Opus at 48 kHz.
fn to_opus(stage: &mut VoiceToOpus, packets: &[Vec<u8>]) -> (Vec<(u16, u32)>, Vec<i16>) {
    let mut dec = OpusDecoder::new(48_000, 1).expect("decoder");
    let mut headers = Vec::new();
    let mut audio = Vec::new();
    for p in packets {
        let mut buf = p.clone();
        buf.resize(2048, 0);
        assert!(stage.takes(&buf));
        let Some(len) = stage.transcode(&mut buf, p.len()).expect("transcode") else {
            continue;
        };
        assert_eq!(buf[1] & 0x7f, OPUS_PT);
        let (_, seq, ts, _) = header(&buf);
        headers.push((seq, ts));
        let mut pcm = [0f32; 5760];
        let n = dec.decode(&buf[12..len], 5760, &mut pcm).expect("decode");
        audio.extend(pcm[..n].iter().map(|&s| (s * 32768.0) as i16));
    }
    (headers, audio)
}

#[test]
fn a_g711_tone_comes_out_as_opus_with_its_frequency_and_level() {
    let mut stage = VoiceToOpus::new(SPEC).expect("stage");
    let (headers, audio) = to_opus(&mut stage, &g711_stream(8000, 160));
    assert_eq!(headers.len(), 50);
    for (i, (seq, ts)) in headers.iter().enumerate() {
        assert_eq!(*seq, 7 + i as u16);
        assert_eq!(
            ts.wrapping_sub(headers[0].1),
            960 * i as u32,
            "8 kHz ticks * 6"
        );
    }
    assert_eq!(audio.len(), 48_000);
    let settled = &audio[9600..];
    assert_eq!(strongest(settled, 48_000), 1000.0);
    let level = rms(settled);
    assert!((4000.0..7000.0).contains(&level), "level kept: {level}");
}

#[test]
fn thirty_ms_packets_are_reframed_without_losing_audio() {
    let mut stage = VoiceToOpus::new(SPEC).expect("stage");
    let (headers, audio) = to_opus(&mut stage, &g711_stream(240 * 20, 240));
    // 30 ms is no Opus frame size: 20 ms goes out and 10 ms waits, then 10 + 30 = 40 ms
    // as two 20 ms frames in one packet.
    assert_eq!(headers.len(), 20);
    for (i, w) in headers.windows(2).enumerate() {
        let expected = if i % 2 == 0 { 960 } else { 1920 };
        assert_eq!(w[1].1 - w[0].1, expected, "packet {i}");
    }
    assert_eq!(audio.len(), 4800 * 6, "every sample once");
    assert_eq!(strongest(&audio[9600..], 48_000), 1000.0);
}

/// The call of the e2e test: the browser's `telephone-event/48000` on 110, the phone's
/// `telephone-event/8000` on 101.
const WITH_EVENTS: Transcoding = Transcoding {
    events: Some(EventPts {
        opus_pt: 110,
        voice_in: 101,
        voice_out: 101,
    }),
    ..SPEC
};

/// RFC 4733 §2.5: one key, a packet per 20 ms of it, the end three times.
fn key(pt: u8, seq: u16, ts: u32, digit: u8, durations: &[u16]) -> Vec<Vec<u8>> {
    let n = durations.len();
    durations
        .iter()
        .chain([durations[n - 1]; 2].iter())
        .enumerate()
        .map(|(i, &d)| {
            let end = i >= n - 1;
            let mut p = rtp_packet(pt, seq + i as u16, ts, &[digit, u8::from(end) << 7 | 10]);
            p.extend_from_slice(&d.to_be_bytes());
            if i == 0 {
                p[1] |= 0x80;
            }
            p
        })
        .collect()
}

/// (marker, payload type, seq, ts, digit, end, duration) of an event packet.
fn event_fields(p: &[u8]) -> (bool, u8, u16, u32, u8, bool, u16) {
    let (marker, seq, ts, _) = header(p);
    (
        marker,
        p[1] & 0x7f,
        seq,
        ts,
        p[12],
        p[13] & 0x80 != 0,
        u16::from_be_bytes([p[14], p[15]]),
    )
}

#[test]
fn browser_events_reach_the_phone_on_its_clock_and_its_audio_timeline() {
    let mut stage = OpusToVoice::new(WITH_EVENTS).expect("stage");
    let packets = opus_stream(10);
    let audio = to_voice(&mut stage, &packets);
    // A 120 ms key 200 ms after the first packet: 9600 units on 48 kHz, 1600 on 8 kHz.
    let keys = key(110, 1010, 50_000 + 9600, 5, &[960, 2880, 4800, 5760]);
    let out: Vec<_> = keys
        .iter()
        .map(|p| {
            let mut buf = p.clone();
            assert!(stage.takes(&buf), "the stage takes the browser's events");
            let len = stage.transcode(&mut buf, p.len()).expect("event");
            assert_eq!(len, 16);
            event_fields(&buf[..len])
        })
        .collect();
    let ts = audio[0].1 + 1600;
    assert_eq!(
        out,
        [
            (true, 101, 1010, ts, 5, false, 160),
            (false, 101, 1011, ts, 5, false, 480),
            (false, 101, 1012, ts, 5, false, 800),
            (false, 101, 1013, ts, 5, true, 960),
            (false, 101, 1014, ts, 5, true, 960),
            (false, 101, 1015, ts, 5, true, 960),
        ]
    );
}

#[test]
fn an_events_sequence_numbers_are_no_lost_opus_to_conceal() {
    let mut stage = OpusToVoice::new(WITH_EVENTS).expect("stage");
    let mut packets = opus_stream(14);
    let after = packets.pop().expect("packet 13");
    packets.truncate(10);
    let audio = to_voice(&mut stage, &packets);
    // A short key (one packet and two more ends: 1010-1012), then the audio at 1013.
    for mut p in key(110, 1010, 50_000 + 9600, 1, &[960]) {
        let len = p.len();
        stage.transcode(&mut p, len).expect("event");
    }
    let next = to_voice(&mut stage, &[after]);
    assert_eq!(next[0].2.len(), 160, "no concealed frame in front");
    assert_eq!(next[0].1, audio[0].1 + 160 * 13);
}

#[test]
fn phone_events_reach_the_browser_on_48k_in_its_opus_timeline() {
    let mut stage = VoiceToOpus::new(WITH_EVENTS).expect("stage");
    let (headers, _) = to_opus(&mut stage, &g711_stream(1600, 160));
    let keys = key(101, 17, 1_000 + 1600, 11, &[160, 480, 800, 1280]);
    let out: Vec<_> = keys
        .iter()
        .map(|p| {
            let mut buf = p.clone();
            assert!(stage.takes(&buf));
            let len = stage
                .transcode(&mut buf, p.len())
                .expect("event")
                .expect("an event goes out at once");
            event_fields(&buf[..len])
        })
        .collect();
    let ts = headers[0].1 + 9600;
    assert_eq!(
        out,
        [
            (true, 110, 17, ts, 11, false, 960),
            (false, 110, 18, ts, 11, false, 2880),
            (false, 110, 19, ts, 11, false, 4800),
            (false, 110, 20, ts, 11, true, 7680),
            (false, 110, 21, ts, 11, true, 7680),
            (false, 110, 22, ts, 11, true, 7680),
        ]
    );
}

#[test]
fn an_event_before_any_audio_anchors_the_timeline_the_audio_then_follows() {
    let mut stage = VoiceToOpus::new(WITH_EVENTS).expect("stage");
    let mut ev = key(101, 5, 1_000, 1, &[160]).remove(0);
    let len = ev.len();
    stage.transcode(&mut ev, len).expect("event");
    let event_ts = header(&ev).2;
    let (headers, _) = to_opus(&mut stage, &g711_stream(320, 160));
    assert_eq!(headers[0].1, event_ts, "the audio at the event's moment");
}

#[test]
fn without_event_conversion_events_are_not_the_stages() {
    let voice = VoiceToOpus::new(SPEC).expect("stage");
    let opus = OpusToVoice::new(SPEC).expect("stage");
    assert!(!voice.takes(&key(101, 1, 0, 1, &[160])[0]));
    assert!(!opus.takes(&key(110, 1, 0, 1, &[960])[0]));
}
