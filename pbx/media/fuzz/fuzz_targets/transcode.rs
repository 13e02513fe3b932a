//! Arbitrary payloads into the transcoding stage, both ways: what a browser sends as Opus and
//! what a phone sends as G.711/G.722 reach a codec that parses them (RFC 6716 TOC bytes, frame
//! lengths), so nothing here may panic, and an output must fit the buffer.
//!
//! Input: a config byte (the phone's codec), then records `[selector, len, bytes...]`; the
//! selector picks the direction and how far the sequence number jumps (loss to conceal,
//! reordering).
#![no_main]

use libfuzzer_sys::fuzz_target;
use pbx_media::Transcoding;
use pbx_media::g711::Law;
use pbx_media::transcode::{OpusToVoice, VoiceToOpus};
use pbx_media::voice::Voice;

const OPUS_PT: u8 = 111;

fn rtp(buf: &mut [u8], pt: u8, seq: u16, ts: u32, payload: &[u8]) -> usize {
    buf[0] = 0x80;
    buf[1] = pt;
    buf[2..4].copy_from_slice(&seq.to_be_bytes());
    buf[4..8].copy_from_slice(&ts.to_be_bytes());
    buf[8..12].copy_from_slice(&0x1234_5678u32.to_be_bytes());
    buf[12..12 + payload.len()].copy_from_slice(payload);
    12 + payload.len()
}

fuzz_target!(|data: &[u8]| {
    let Some((&config, mut rest)) = data.split_first() else {
        return;
    };
    let (voice, voice_pt) = match config % 3 {
        0 => (Voice::G711(Law::Mu), 0),
        1 => (Voice::G711(Law::A), 8),
        _ => (Voice::G722, 9),
    };
    let spec = Transcoding {
        opus_pt: OPUS_PT,
        voice,
        voice_pt,
    };
    let (Ok(mut to_voice), Ok(mut to_opus)) = (OpusToVoice::new(spec), VoiceToOpus::new(spec))
    else {
        return;
    };
    let mut buf = vec![0u8; 2048];
    let (mut seq_in, mut seq_out, mut ts_in, mut ts_out) = (0u16, 0u16, 0u32, 0u32);
    while let [selector, len, tail @ ..] = rest {
        let len = usize::from(*len).min(tail.len());
        let (payload, next) = tail.split_at(len);
        rest = next;
        let jump = u16::from(selector >> 1);
        if selector & 1 == 0 {
            seq_in = seq_in.wrapping_add(jump);
            ts_in = ts_in.wrapping_add(960 * u32::from(jump));
            let n = rtp(&mut buf, OPUS_PT, seq_in, ts_in, payload);
            if let Ok(out) = to_voice.transcode(&mut buf, n) {
                assert!(out <= buf.len());
            }
        } else {
            seq_out = seq_out.wrapping_add(jump);
            ts_out = ts_out.wrapping_add(160 * u32::from(jump));
            let n = rtp(&mut buf, voice_pt, seq_out, ts_out, payload);
            if let Ok(Some(out)) = to_opus.transcode(&mut buf, n) {
                assert!(out <= buf.len());
            }
        }
    }
});
