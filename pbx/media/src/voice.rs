//! The voice codecs the PBX's own endpoints (player, recorder) speak: G.711 of either law,
//! and G.722 for the phones that prefer wideband.
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

use crate::g711::Law;

/// The static payload type of G.722 (RFC 3551 §6, table 4).
pub const G722_PAYLOAD_TYPE: u8 = 9;

/// A voice codec of the PBX's endpoints.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Voice {
    G711(Law),
    G722,
}

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
        }
    }
}

/// A G.722 stream's codec state and its resampler.
pub struct G722Stream<C> {
    codec: C,
    resampler: BoxedResampler,
}

/// Encodes 8 kHz linear PCM, one octet per 8 kHz sample for each codec.
pub enum VoiceEncoder {
    G711(Law),
    G722(Box<G722Stream<G722Encoder>>),
}

impl VoiceEncoder {
    pub fn new(voice: Voice) -> VoiceEncoder {
        match voice {
            Voice::G711(law) => VoiceEncoder::G711(law),
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

    /// Encodes `pcm` into `out` (as long as `pcm`); the G.722 state carries over between
    /// calls, so a stream is encoded frame after frame.
    pub fn encode(&mut self, pcm: &[i16], out: &mut [u8]) {
        match self {
            VoiceEncoder::G711(law) => {
                for (o, &s) in out.iter_mut().zip(pcm) {
                    *o = law.encode(s);
                }
            }
            VoiceEncoder::G722(g) => {
                let wide = g.resampler.resample(pcm);
                let n = g.codec.encode_into(&wide, out).unwrap_or(0);
                out.iter_mut().skip(n).for_each(|o| *o = 0);
            }
        }
    }
}

/// Decodes the voice payloads of one stream to 8 kHz linear PCM.
#[derive(Default)]
pub struct VoiceDecoder {
    /// Made on the first G.722 packet (its state follows the stream).
    g722: Option<Box<G722Stream<G722Decoder>>>,
}

impl VoiceDecoder {
    /// Appends the samples of one payload of type `pt` to `out`; `false` when `pt` is not a
    /// voice codec here (telephone-event, comfort noise).
    pub fn decode(&mut self, pt: u8, payload: &[u8], out: &mut Vec<i16>) -> bool {
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
            None => false,
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
