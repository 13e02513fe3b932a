//! The voice codecs the PBX's own endpoints (player, recorder) speak: G.711 of either law,
//! G.722 for the phones that prefer wideband, and Opus for the callers that offer nothing
//! else (a browser or a softphone offering only `opus/48000/2`).
//!
//! Opus: encoded and decoded at 8 kHz by the codec itself (RFC 6716 §2: an encoder takes and
//! a decoder gives 8-48 kHz), so prompts and recordings need no resampler; 20 ms frames, one
//! per packet, mono (RFC 7587 §3.1: a stereo-capable receiver plays mono). Its RTP clock is
//! 48 kHz whatever it samples (RFC 7587 §4.1): 960 timestamp units per 20 ms.
//!
//! G.722 samples at 16 kHz; prompts and recordings are 8 kHz, so each stream has a
//! resampler (8 → 16 kHz before the encoder, 16 → 8 kHz after the decoder). The codec's own
//! 8 kHz mode would spare them, but in audio-codec 0.4 it decodes a tone to a constant
//! (tried; docs/decisions.md).
//! RFC 3551 §4.5.2: the RTP clock of G.722 is 8000 Hz although it samples at 16 kHz, so a
//! 20 ms frame is 160 octets and 160 timestamp units, as for G.711. Codec and resampler are
//! `audio-codec`'s (pure Rust).

use audio_codec::BoxedResampler;
use audio_codec::g722::{G722Decoder, G722Encoder};
use audio_codec::{Decoder as _, Encoder as _};
use opus_rs::{Application, OpusDecoder, OpusEncoder};

use crate::g711::Law;

/// The static payload type of G.722 (RFC 3551 §6, table 4).
pub const G722_PAYLOAD_TYPE: u8 = 9;

/// A voice codec of the PBX's endpoints.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Voice {
    G711(Law),
    G722,
    /// Opus (RFC 7587), under a dynamic payload type the leg chose.
    Opus,
}

/// The rate the endpoints' audio is at (prompts, recordings).
const RATE: u32 = 8000;
/// The Opus encoder's bit rate for the PBX's own prompts: narrowband speech (RFC 7587
/// §3.1.1 suggests 8-12 kb/s; a little more keeps tones clean), as the transcoder's.
const OPUS_BITRATE: i32 = 16_000;
/// The longest Opus packet (120 ms, RFC 6716 §3.2.5) at [`RATE`].
const OPUS_MAX_SAMPLES: usize = 960;

impl Voice {
    /// The codec of a static payload type: 0 PCMU, 8 PCMA, 9 G.722.
    pub fn from_payload_type(pt: u8) -> Option<Voice> {
        match pt {
            G722_PAYLOAD_TYPE => Some(Voice::G722),
            pt => Law::from_payload_type(pt).map(Voice::G711),
        }
    }

    /// Its name in SDP (`a=rtpmap`), RFC 3551 §6.
    pub fn name(self) -> &'static str {
        match self {
            Voice::G711(Law::Mu) => "PCMU",
            Voice::G711(Law::A) => "PCMA",
            Voice::G722 => "G722",
            Voice::Opus => "opus",
        }
    }

    /// Its RTP clock rate: 8000 for G.711 and G.722 (RFC 3551 §4.5.2), 48000 for Opus
    /// (RFC 7587 §4.1).
    pub fn clock_rate(self) -> u32 {
        match self {
            Voice::Opus => 48_000,
            Voice::G711(_) | Voice::G722 => RATE,
        }
    }
}

/// A G.722 stream's codec state and its resampler.
pub struct G722Stream<C> {
    codec: C,
    resampler: BoxedResampler,
}

/// Encodes 8 kHz linear PCM: one octet per sample for G.711 and G.722, an Opus packet per
/// frame for Opus.
pub enum VoiceEncoder {
    G711(Law),
    G722(Box<G722Stream<G722Encoder>>),
    Opus(Box<OpusEncoder>),
}

impl VoiceEncoder {
    pub fn new(voice: Voice) -> VoiceEncoder {
        match voice {
            Voice::G711(law) => VoiceEncoder::G711(law),
            Voice::Opus => match OpusEncoder::new(RATE as i32, 1, Application::Voip) {
                Ok(mut encoder) => {
                    encoder.bitrate_bps = OPUS_BITRATE;
                    VoiceEncoder::Opus(Box::new(encoder))
                }
                // Fixed parameters the codec supports: cannot fail.
                Err(_) => VoiceEncoder::G711(Law::Mu),
            },
            Voice::G722 => match BoxedResampler::new(8000, 16000) {
                Ok(resampler) => VoiceEncoder::G722(Box::new(G722Stream {
                    codec: G722Encoder::new(),
                    resampler,
                })),
                // Fixed rates: cannot fail; µ-law is what every phone also speaks.
                Err(_) => VoiceEncoder::G711(Law::Mu),
            },
        }
    }

    /// Encodes `pcm` (one frame: 10, 20, 40 or 60 ms for Opus) into `out` and returns the
    /// length written: as long as `pcm` for G.711 and G.722, an Opus packet for Opus (0 if
    /// `out` cannot hold it). The codec state carries over between calls, so a stream is
    /// encoded frame after frame.
    pub fn encode(&mut self, pcm: &[i16], out: &mut [u8]) -> usize {
        match self {
            VoiceEncoder::G711(_) | VoiceEncoder::G722(_) if out.len() < pcm.len() => 0,
            VoiceEncoder::G711(law) => {
                for (o, &s) in out.iter_mut().zip(pcm) {
                    *o = law.encode(s);
                }
                pcm.len()
            }
            VoiceEncoder::G722(g) => {
                let wide = g.resampler.resample(pcm);
                let n = g.codec.encode_into(&wide, out).unwrap_or(0);
                out.iter_mut().skip(n).take(pcm.len()).for_each(|o| *o = 0);
                pcm.len()
            }
            VoiceEncoder::Opus(e) => e.encode_i16(pcm, pcm.len(), out).unwrap_or(0),
        }
    }
}

/// Decodes the voice payloads of one stream to 8 kHz linear PCM.
#[derive(Default)]
pub struct VoiceDecoder {
    /// Made on the first G.722 packet (its state follows the stream).
    g722: Option<Box<G722Stream<G722Decoder>>>,
    /// Opus's payload type on this stream (dynamic), and its decoder, made on the first
    /// packet.
    opus_pt: Option<u8>,
    opus: Option<Box<OpusDecoder>>,
}

impl VoiceDecoder {
    /// A decoder that also takes Opus, under payload type `pt`.
    pub fn with_opus(pt: u8) -> VoiceDecoder {
        VoiceDecoder {
            opus_pt: Some(pt),
            ..VoiceDecoder::default()
        }
    }

    /// Decodes one Opus packet (RFC 6716) to 8 kHz; false if it is not one.
    fn decode_opus(&mut self, payload: &[u8], out: &mut Vec<i16>) -> bool {
        if self.opus.is_none() {
            let Ok(decoder) = OpusDecoder::new(RATE as i32, 1) else {
                return false;
            };
            self.opus = Some(Box::new(decoder));
        }
        let Some(decoder) = self.opus.as_mut() else {
            return false;
        };
        let mut pcm = [0f32; OPUS_MAX_SAMPLES];
        let Ok(n) = decoder.decode(payload, OPUS_MAX_SAMPLES, &mut pcm) else {
            return false;
        };
        out.extend(
            pcm[..n.min(OPUS_MAX_SAMPLES)]
                .iter()
                .map(|&s| (s * 32768.0).clamp(-32768.0, 32767.0) as i16),
        );
        true
    }

    /// Appends the samples of one payload of type `pt` to `out`; `false` when `pt` is not a
    /// voice codec here (telephone-event, comfort noise).
    pub fn decode(&mut self, pt: u8, payload: &[u8], out: &mut Vec<i16>) -> bool {
        if self.opus_pt == Some(pt) {
            return self.decode_opus(payload, out);
        }
        match Voice::from_payload_type(pt) {
            Some(Voice::G711(law)) => {
                out.extend(payload.iter().map(|&c| law.decode(c)));
                true
            }
            Some(Voice::G722) => {
                if self.g722.is_none() {
                    let Ok(resampler) = BoxedResampler::new(16000, 8000) else {
                        return false;
                    };
                    self.g722 = Some(Box::new(G722Stream {
                        codec: G722Decoder::new(),
                        resampler,
                    }));
                }
                let Some(g) = self.g722.as_mut() else {
                    return false;
                };
                let mut wide = vec![0i16; payload.len() * 2];
                let n = g.codec.decode_into(payload, &mut wide).unwrap_or(0);
                out.extend(g.resampler.resample(&wide[..n]));
                true
            }
            Some(Voice::Opus) | None => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The strongest of `freqs` in `pcm` by Goertzel power.
    fn strongest(pcm: &[i16], freqs: &[f64]) -> f64 {
        let power = |f: f64| {
            let k = 2.0 * (2.0 * std::f64::consts::PI * f / 8000.0).cos();
            let (mut s1, mut s2) = (0.0f64, 0.0f64);
            for &x in pcm {
                let s = f64::from(x) + k * s1 - s2;
                s2 = s1;
                s1 = s;
            }
            s1 * s1 + s2 * s2 - k * s1 * s2
        };
        freqs
            .iter()
            .copied()
            .fold((0.0, 0.0), |(bf, bp), f| {
                let p = power(f);
                if p > bp { (f, p) } else { (bf, bp) }
            })
            .0
    }

    #[test]
    fn g722_at_8_khz_keeps_a_tone_through_encode_and_decode() {
        let tone: Vec<i16> = (0..8000)
            .map(|n| {
                (8000.0 * (2.0 * std::f64::consts::PI * 1000.0 * f64::from(n) / 8000.0).sin())
                    as i16
            })
            .collect();
        let mut enc = VoiceEncoder::new(Voice::G722);
        let mut dec = VoiceDecoder::default();
        let mut back = Vec::new();
        for frame in tone.chunks(160) {
            let mut bytes = [0u8; 160];
            enc.encode(frame, &mut bytes);
            assert!(dec.decode(G722_PAYLOAD_TYPE, &bytes, &mut back));
        }
        assert!(
            back.len().abs_diff(tone.len()) <= 2,
            "one 8 kHz sample per octet"
        );
        let settled = &back[800..];
        assert_eq!(
            strongest(settled, &[400.0, 700.0, 1000.0, 1300.0, 2000.0]),
            1000.0
        );
        let level = settled.iter().map(|&s| f64::from(s).abs()).sum::<f64>() / settled.len() as f64;
        assert!(level > 2000.0, "the tone keeps its level: {level}");
    }

    #[test]
    fn opus_keeps_a_tone_through_encode_and_decode() {
        let tone: Vec<i16> = (0..8000)
            .map(|n| {
                (8000.0 * (2.0 * std::f64::consts::PI * 1000.0 * f64::from(n) / 8000.0).sin())
                    as i16
            })
            .collect();
        let mut enc = VoiceEncoder::new(Voice::Opus);
        let mut dec = VoiceDecoder::with_opus(111);
        let mut back = Vec::new();
        for frame in tone.chunks(160) {
            let mut bytes = [0u8; 400];
            let n = enc.encode(frame, &mut bytes);
            assert!(n > 0 && n < 160, "an Opus packet, smaller than G.711: {n}");
            assert!(dec.decode(111, &bytes[..n], &mut back));
        }
        // 20 ms out for 20 ms in: the decoder gives what the packet holds, at 8 kHz.
        assert_eq!(back.len(), tone.len());
        let settled = &back[800..];
        assert_eq!(
            strongest(settled, &[400.0, 700.0, 1000.0, 1300.0, 2000.0]),
            1000.0
        );
        let level = settled.iter().map(|&s| f64::from(s).abs()).sum::<f64>() / settled.len() as f64;
        assert!(level > 2000.0, "the tone keeps its level: {level}");
        // Another payload type is not taken for Opus; a decoder without Opus takes none.
        assert!(!dec.decode(101, &[1, 2, 3, 4], &mut back));
        assert!(!VoiceDecoder::default().decode(111, &[0xf8, 0xff, 0xfe], &mut back));
        assert_eq!(
            (Voice::Opus.clock_rate(), Voice::G722.clock_rate()),
            (48_000, 8000)
        );
    }

    #[test]
    fn payload_types_name_their_codecs() {
        assert_eq!(Voice::from_payload_type(0), Some(Voice::G711(Law::Mu)));
        assert_eq!(Voice::from_payload_type(8), Some(Voice::G711(Law::A)));
        assert_eq!(Voice::from_payload_type(9), Some(Voice::G722));
        assert_eq!(Voice::from_payload_type(101), None);
        let mut dec = VoiceDecoder::default();
        let mut out = Vec::new();
        assert!(!dec.decode(101, &[1, 2, 3, 4], &mut out));
        assert!(out.is_empty());
    }
}
