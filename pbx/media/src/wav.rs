//! WAV files of telephone audio: the prompts the PBX plays and the messages it records.
//!
//! A reader for the three formats a telephone prompt comes in (RFC 2361 / Microsoft WAVE:
//! format tag 1 linear PCM 16-bit, 6 A-law, 7 µ-law), mono at 8 kHz, decoded to linear PCM.
//! `hound` reads only linear PCM, and the committed prompts are µ-law (half the size, and the
//! phone's own format), hence this small one.

use crate::g711::Law;

/// Why a WAV file cannot be played.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum WavError {
    #[error("not a RIFF/WAVE file")]
    NotWave,
    #[error("no `fmt ` chunk before the `data` chunk")]
    NoFormat,
    #[error("no `data` chunk")]
    NoData,
    #[error("format tag {0} (the PBX plays 16-bit PCM, A-law and µ-law)")]
    Encoding(u16),
    #[error("{channels} channels at {rate} Hz (the PBX plays mono 8000 Hz)")]
    Shape { channels: u16, rate: u32 },
    #[error("{0} bits a sample")]
    Bits(u16),
}

const PCM: u16 = 1;
const ALAW: u16 = 6;
const MULAW: u16 = 7;

/// The samples of a mono 8 kHz WAV as linear 16-bit PCM. A `data` chunk that claims more
/// than the file holds (a recording cut by a crash) is read as far as it goes.
pub fn decode(bytes: &[u8]) -> Result<Vec<i16>, WavError> {
    if bytes.len() < 12 || &bytes[0..4] != b"RIFF" || &bytes[8..12] != b"WAVE" {
        return Err(WavError::NotWave);
    }
    let mut at = 12;
    let mut format = None;
    while let Some(header) = bytes.get(at..at + 8) {
        let id = &header[0..4];
        let size = u32::from_le_bytes([header[4], header[5], header[6], header[7]]) as usize;
        let start = at + 8;
        let end = start.saturating_add(size).min(bytes.len());
        let body = &bytes[start..end];
        match id {
            b"fmt " => format = Some(read_format(body)?),
            b"data" => {
                let tag = format.ok_or(WavError::NoFormat)?;
                return Ok(samples(tag, body));
            }
            _ => {}
        }
        // RIFF chunks are padded to an even length.
        at = start.saturating_add(size).saturating_add(size & 1);
    }
    Err(WavError::NoData)
}

/// The format tag of a `fmt ` chunk the PBX can play.
fn read_format(body: &[u8]) -> Result<u16, WavError> {
    let field = |i: usize| body.get(i..i + 2).map(|b| u16::from_le_bytes([b[0], b[1]]));
    let (Some(tag), Some(channels), Some(bits)) = (field(0), field(2), field(14)) else {
        return Err(WavError::NoFormat);
    };
    let rate = body
        .get(4..8)
        .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .ok_or(WavError::NoFormat)?;
    if !matches!(tag, PCM | ALAW | MULAW) {
        return Err(WavError::Encoding(tag));
    }
    if channels != 1 || rate != 8000 {
        return Err(WavError::Shape { channels, rate });
    }
    let expected = if tag == PCM { 16 } else { 8 };
    if bits != expected {
        return Err(WavError::Bits(bits));
    }
    Ok(tag)
}

fn samples(tag: u16, data: &[u8]) -> Vec<i16> {
    match tag {
        MULAW => data.iter().map(|&b| Law::Mu.decode(b)).collect(),
        ALAW => data.iter().map(|&b| Law::A.decode(b)).collect(),
        _ => data
            .chunks_exact(2)
            .map(|b| i16::from_le_bytes([b[0], b[1]]))
            .collect(),
    }
}

/// A 16-bit PCM mono 8 kHz WAV of `pcm` (what the PBX writes: every mail client plays it).
pub fn encode_pcm(pcm: &[i16]) -> Vec<u8> {
    let data = u32::try_from(pcm.len() * 2).unwrap_or(u32::MAX);
    let mut out = Vec::with_capacity(44 + pcm.len() * 2);
    out.extend_from_slice(b"RIFF");
    out.extend_from_slice(&data.saturating_add(36).to_le_bytes());
    out.extend_from_slice(b"WAVEfmt ");
    out.extend_from_slice(&16u32.to_le_bytes());
    out.extend_from_slice(&PCM.to_le_bytes());
    out.extend_from_slice(&1u16.to_le_bytes());
    out.extend_from_slice(&8000u32.to_le_bytes());
    out.extend_from_slice(&16000u32.to_le_bytes());
    out.extend_from_slice(&2u16.to_le_bytes());
    out.extend_from_slice(&16u16.to_le_bytes());
    out.extend_from_slice(b"data");
    out.extend_from_slice(&data.to_le_bytes());
    for s in pcm {
        out.extend_from_slice(&s.to_le_bytes());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn g711_wav(tag: u16, data: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        out.extend_from_slice(b"RIFF");
        out.extend_from_slice(&(50 + data.len() as u32).to_le_bytes());
        out.extend_from_slice(b"WAVEfmt ");
        out.extend_from_slice(&18u32.to_le_bytes());
        for v in [tag, 1] {
            out.extend_from_slice(&v.to_le_bytes());
        }
        out.extend_from_slice(&8000u32.to_le_bytes());
        out.extend_from_slice(&8000u32.to_le_bytes());
        for v in [1u16, 8, 0] {
            out.extend_from_slice(&v.to_le_bytes());
        }
        // A chunk to skip, odd-sized (padded), as sox writes `fact` and `LIST`.
        out.extend_from_slice(b"fact\x03\x00\x00\x00abc\x00");
        out.extend_from_slice(b"data");
        out.extend_from_slice(&(data.len() as u32).to_le_bytes());
        out.extend_from_slice(data);
        out
    }

    #[test]
    fn mu_law_and_a_law_decode_to_linear() {
        let mu = decode(&g711_wav(MULAW, &[0xff, 0x80])).expect("µ-law");
        assert_eq!(mu, vec![Law::Mu.decode(0xff), Law::Mu.decode(0x80)]);
        let a = decode(&g711_wav(ALAW, &[0xd5])).expect("A-law");
        assert_eq!(a, vec![Law::A.decode(0xd5)]);
    }

    #[test]
    fn pcm_round_trips_and_a_cut_file_reads_what_is_there() {
        let pcm = [0i16, 1000, -1000, i16::MAX, i16::MIN];
        let wav = encode_pcm(&pcm);
        assert_eq!(decode(&wav).expect("pcm"), pcm);
        assert_eq!(decode(&wav[..wav.len() - 4]).expect("cut"), pcm[..3]);
    }

    #[test]
    fn what_cannot_be_played_says_why() {
        assert_eq!(decode(b"RIFX"), Err(WavError::NotWave));
        let mut stereo = encode_pcm(&[0; 4]);
        stereo[22] = 2;
        assert_eq!(
            decode(&stereo),
            Err(WavError::Shape {
                channels: 2,
                rate: 8000
            })
        );
        let mut mp3 = encode_pcm(&[0; 4]);
        mp3[20] = 0x55;
        assert_eq!(decode(&mp3), Err(WavError::Encoding(0x55)));
        let no_data = &encode_pcm(&[])[..36];
        assert_eq!(decode(no_data), Err(WavError::NoData));
    }

    #[test]
    fn the_committed_prompts_decode() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../sounds/en");
        for name in ["beep", "demo-menu", "vm-youhave", "digits/3"] {
            let bytes = std::fs::read(dir.join(format!("{name}.wav"))).expect("prompt");
            let pcm = decode(&bytes).expect(name);
            assert!(pcm.len() > 800, "{name}: {} samples", pcm.len());
        }
    }
}
