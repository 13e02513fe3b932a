//! RFC 4733 telephone-events across the transcoder's two clocks.
//!
//! An event's timestamp and its `duration` count in the RTP clock of the audio it rides
//! with (RFC 4733 §2.3, §2.5.1.1): 48 kHz beside Opus (RFC 7587 §4.1), 8 kHz beside G.711
//! and G.722. A browser that offered only `telephone-event/48000` calling a phone that
//! agreed `telephone-event/8000` gets its events converted here, in place like the audio:
//! the payload type rewritten, the timestamp mapped by the audio's own anchor (the event
//! starts where the audio sent at the same moment does), every duration scaled by the
//! clock ratio. Everything else passes as it came: the marker, the E bit, the volume, the
//! sequence number and the redundant end packets (§2.5.1.4: they repeat the timestamp and
//! duration, so they stay identical to each other after the mapping).

use super::TranscodeError;
use crate::rtp;

/// The telephone-event payload types of a transcoded call. The phone's event is known by
/// two numbers, as its voice codec would be by one: the one it sends (the PBX offered it)
/// and the one written towards it, which the phone leg's payload type table then turns
/// into the number of its answer (`relay/packet.rs`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct EventPts {
    /// The Opus leg's `telephone-event/48000`.
    pub opus_pt: u8,
    /// The phone's `telephone-event/8000` in the packets it sends.
    pub voice_in: u8,
    /// The phone's `telephone-event/8000` as written towards it.
    pub voice_out: u8,
}

impl EventPts {
    /// The (input, output) event payload types of the Opus-to-voice stage.
    pub(crate) fn opus_to_voice(self) -> (u8, u8) {
        (self.opus_pt, self.voice_out)
    }

    /// The (input, output) event payload types of the voice-to-Opus stage.
    pub(crate) fn voice_to_opus(self) -> (u8, u8) {
        (self.voice_in, self.opus_pt)
    }
}

/// How durations change from the input's clock to the output's.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Scale {
    /// Divided (48 kHz to 8 kHz).
    Down(u32),
    /// Multiplied (8 kHz to 48 kHz).
    Up(u32),
}

impl Scale {
    /// RFC 4733 §2.5.1.3 splits an event longer than the 16-bit field into segments; a
    /// stateless stage cannot close one segment and open the next, and receivers may take
    /// a new segment for a second key press. A duration past the field (a key held over
    /// 1.36 s on the 48 kHz clock) therefore stays at its maximum: one key, reported long.
    fn duration(self, d: u16) -> u16 {
        match self {
            Scale::Down(f) => (u32::from(d) / f) as u16,
            Scale::Up(f) => u16::try_from(u32::from(d) * f).unwrap_or(u16::MAX),
        }
    }
}

/// Rewrites the telephone-event packet `pkt` in place for the other leg: payload type
/// `pt` (marker kept), timestamp `ts`, and the duration of each 4-octet event block of
/// the payload (RFC 4733 §2.3) scaled.
pub(crate) fn rewrite(pkt: &mut [u8], pt: u8, ts: u32, scale: Scale) -> Result<(), TranscodeError> {
    let (start, end) = rtp::payload_bounds(pkt).ok_or(TranscodeError::NotMedia)?;
    // RFC 4733 §2.3: an event block is 4 octets; anything else is not an event packet.
    if end == start || (end - start) % 4 != 0 {
        return Err(TranscodeError::NotMedia);
    }
    pkt[1] = (pkt[1] & 0x80) | (pt & 0x7f);
    pkt[4..8].copy_from_slice(&ts.to_be_bytes());
    for block in pkt[start..end].chunks_exact_mut(4) {
        let d = scale.duration(u16::from_be_bytes([block[2], block[3]]));
        block[2..4].copy_from_slice(&d.to_be_bytes());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(pt: u8, marker: bool, ts: u32, digit: u8, end: bool, duration: u16) -> Vec<u8> {
        let mut p = vec![0u8; 16];
        rtp::write_header(&mut p, marker, pt, 9, ts, 0x5152);
        p[12] = digit;
        p[13] = u8::from(end) << 7 | 10;
        p[14..16].copy_from_slice(&duration.to_be_bytes());
        p
    }

    #[test]
    fn durations_scale_with_the_clocks_and_the_rest_is_kept() {
        let mut p = event(110, true, 48_000, 5, false, 960);
        rewrite(&mut p, 101, 8000, Scale::Down(6)).expect("event");
        assert_eq!(p, event(101, true, 8000, 5, false, 160));
        let mut p = event(101, false, 8000, 11, true, 1280);
        rewrite(&mut p, 110, 48_000, Scale::Up(6)).expect("event");
        assert_eq!(p, event(110, false, 48_000, 11, true, 7680));
    }

    #[test]
    fn a_duration_past_the_field_stays_at_its_maximum() {
        let mut p = event(101, false, 0, 1, false, 20_000);
        rewrite(&mut p, 110, 0, Scale::Up(6)).expect("event");
        assert_eq!(u16::from_be_bytes([p[14], p[15]]), u16::MAX);
    }

    #[test]
    fn a_payload_that_is_no_event_block_is_refused() {
        let mut p = event(110, false, 0, 1, false, 960);
        p.truncate(14);
        assert_eq!(
            rewrite(&mut p, 101, 0, Scale::Down(6)),
            Err(TranscodeError::NotMedia)
        );
        p.truncate(12);
        assert_eq!(
            rewrite(&mut p, 101, 0, Scale::Down(6)),
            Err(TranscodeError::NotMedia)
        );
    }
}
