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
