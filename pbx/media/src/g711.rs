//! G.711 (ITU-T G.711, 1988) µ-law and A-law: 16-bit linear PCM to 8-bit codewords and
//! back, by the segment algorithm of the Sun reference implementation (`g711.c`, public
//! domain) that libraries and tools (sox, Python's `audioop`) share, so what the PBX writes
//! decodes the same everywhere. RFC 3551 §4.5.14: PCMU is static payload type 0, PCMA 8,
//! 8000 Hz, one octet per sample.

/// Which G.711 companding law.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Law {
    /// µ-law, PCMU (North America, Japan).
    Mu,
    /// A-law, PCMA (elsewhere).
    A,
}

impl Law {
    /// The static RTP payload type (RFC 3551 §6, table 4).
    pub fn payload_type(self) -> u8 {
        match self {
            Law::Mu => 0,
            Law::A => 8,
        }
    }

    /// The law of a static payload type, if it is one of the two.
    pub fn from_payload_type(pt: u8) -> Option<Law> {
        match pt {
            0 => Some(Law::Mu),
            8 => Some(Law::A),
            _ => None,
        }
    }

    pub fn encode(self, sample: i16) -> u8 {
        match self {
            Law::Mu => linear_to_ulaw(sample),
            Law::A => linear_to_alaw(sample),
        }
    }

    pub fn decode(self, code: u8) -> i16 {
        match self {
            Law::Mu => ulaw_to_linear(code),
            Law::A => alaw_to_linear(code),
        }
    }
}

/// Segment end points (magnitude before biasing), µ-law on 14 bits, A-law on 13.
const SEG_UEND: [i32; 8] = [0x3f, 0x7f, 0xff, 0x1ff, 0x3ff, 0x7ff, 0xfff, 0x1fff];
const SEG_AEND: [i32; 8] = [0x1f, 0x3f, 0x7f, 0xff, 0x1ff, 0x3ff, 0x7ff, 0xfff];
/// µ-law bias (0x84 on 16 bits) and clip (the largest 14-bit magnitude before the bias).
const BIAS: i32 = 0x84;
const CLIP: i32 = 8159;

fn segment(value: i32, ends: &[i32; 8]) -> usize {
    ends.iter().position(|&end| value <= end).unwrap_or(8)
}

pub fn linear_to_ulaw(sample: i16) -> u8 {
    let mut pcm = i32::from(sample) >> 2;
    let mask = if pcm < 0 {
        pcm = -pcm;
        0x7f
    } else {
        0xff
    };
    pcm = pcm.min(CLIP) + (BIAS >> 2);
    let seg = segment(pcm, &SEG_UEND);
    if seg >= 8 {
        return 0x7f ^ mask;
    }
    // seg < 8, and the quantised value fits a nibble: the casts keep what they should.
    let code = ((seg as i32) << 4) | ((pcm >> (seg + 1)) & 0x0f);
    (code as u8) ^ mask
}

pub fn ulaw_to_linear(code: u8) -> i16 {
    let u = i32::from(!code);
    let t = (((u & 0x0f) << 3) + BIAS) << ((u & 0x70) >> 4);
    // At most (0x78 + 0x84) << 7 - 0x84 = 32124: fits.
    (if u & 0x80 != 0 { BIAS - t } else { t - BIAS }) as i16
}

pub fn linear_to_alaw(sample: i16) -> u8 {
    let mut pcm = i32::from(sample) >> 3;
    let mask = if pcm >= 0 {
        0xd5
    } else {
        pcm = -pcm - 1;
        0x55
    };
    let seg = segment(pcm, &SEG_AEND);
    if seg >= 8 {
        return 0x7f ^ mask;
    }
    let quant = if seg < 2 { pcm >> 1 } else { pcm >> seg };
    let code = ((seg as i32) << 4) | (quant & 0x0f);
    (code as u8) ^ mask
}

pub fn alaw_to_linear(code: u8) -> i16 {
    let a = i32::from(code ^ 0x55);
    let seg = (a & 0x70) >> 4;
    let mut t = (a & 0x0f) << 4;
    t += if seg == 0 { 8 } else { 0x108 };
    if seg > 1 {
        t <<= seg - 1;
    }
    // At most (0xf0 + 0x108) << 6 = 32256: fits.
    (if a & 0x80 != 0 { t } else { -t }) as i16
}

#[cfg(test)]
mod tests {
    use super::*;

    // Reference values from Python's `audioop` (the same Sun algorithm, independently built).
    const ENCODE: [(i16, u8, u8); 16] = [
        (0, 0xff, 0xd5),
        (-1, 0x7e, 0x55),
        (7, 0xfe, 0xd5),
        (100, 0xf2, 0xd3),
        (-100, 0x72, 0x53),
        (1000, 0xce, 0xfa),
        (-1000, 0x4e, 0x7a),
        (4000, 0xaf, 0x9a),
        (-4000, 0x2f, 0x1a),
        (8159, 0x9f, 0x8a),
        (16000, 0x90, 0xba),
        (-16000, 0x10, 0x3a),
        (32000, 0x80, 0xaa),
        (32124, 0x80, 0xaa),
        (32767, 0x80, 0xaa),
        (-32768, 0x00, 0x2a),
    ];

    const DECODE: [(u8, i16, i16); 10] = [
        (0x00, -32124, -5504),
        (0x7f, 0, -848),
        (0x80, 32124, 5504),
        (0xff, 0, 848),
        (0x55, -716, -8),
        (0xd5, 716, 8),
        (0x2a, -5372, -32256),
        (0xaa, 5372, 32256),
        (0x01, -31100, -5248),
        (0x81, 31100, 5248),
    ];

    #[test]
    fn encodes_known_values() {
        for (pcm, mu, a) in ENCODE {
            assert_eq!(Law::Mu.encode(pcm), mu, "µ-law of {pcm}");
            assert_eq!(Law::A.encode(pcm), a, "A-law of {pcm}");
        }
    }

    #[test]
    fn decodes_known_values() {
        for (code, mu, a) in DECODE {
            assert_eq!(Law::Mu.decode(code), mu, "µ-law {code:#x}");
            assert_eq!(Law::A.decode(code), a, "A-law {code:#x}");
        }
    }

    #[test]
    fn every_codeword_survives_decode_then_encode() {
        for law in [Law::Mu, Law::A] {
            for code in 0..=255u8 {
                let back = law.encode(law.decode(code));
                // µ-law has two zeros (0x7f and 0xff); both decode to 0, which encodes as 0xff.
                if law == Law::Mu && code == 0x7f {
                    assert_eq!(back, 0xff);
                } else {
                    assert_eq!(back, code, "{law:?} {code:#x}");
                }
            }
        }
    }

    #[test]
    fn payload_types_are_the_static_ones() {
        assert_eq!(Law::from_payload_type(0), Some(Law::Mu));
        assert_eq!(Law::from_payload_type(8), Some(Law::A));
        assert_eq!(Law::from_payload_type(101), None);
        assert_eq!(Law::A.payload_type(), 8);
    }
}
