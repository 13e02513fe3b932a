//! The player: sends RTP frames of one payload type from a [`FrameSource`], one every
//! packetization interval, on the schedule set when it started (RFC 3551 §4.2: the sender
//! keeps its clock; a late wake-up sends what is due, it does not shift the stream).

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::rtp;
use crate::voice::{Voice, VoiceEncoder};

/// Encoded audio frames, one per packet.
pub trait FrameSource: Send {
    /// Writes the next frame into `out` and returns its length; `None` once there is no more.
    fn next_frame(&mut self, out: &mut [u8]) -> Option<usize>;
    /// RTP timestamp units each frame covers (RFC 3550 §5.1: the sampling clock; 160 for
    /// 20 ms of 8 kHz audio).
    fn timestamp_step(&self) -> u32;
}

/// Frames of a voice codec (G.711, G.722, Opus) encoded on the fly from 8 kHz linear PCM.
pub struct PcmSource {
    pcm: Arc<[i16]>,
    encoder: VoiceEncoder,
    at: usize,
    frame: usize,
    /// RTP timestamp units per 8 kHz sample: 1, or 6 for Opus's 48 kHz clock.
    ticks: u32,
}

impl PcmSource {
    /// Frames of `ptime` (20 ms is the RFC 3551 §4.5 default: 160 samples, 160 octets for
    /// G.711 and G.722). Opus frames are 20 ms whatever the leg's `ptime` (RFC 7587 §4.2:
    /// 20 ms is its default, and an encoder frame is at most 60 ms). The last frame is
    /// padded with silence.
    pub fn new(pcm: impl Into<Arc<[i16]>>, voice: Voice, ptime: Duration) -> PcmSource {
        let ptime = match voice {
            Voice::Opus => Duration::from_millis(20),
            _ => ptime,
        };
        let frame = usize::try_from(ptime.as_millis() * 8).unwrap_or(160).max(1);
        PcmSource {
            pcm: pcm.into(),
            encoder: VoiceEncoder::new(voice),
            at: 0,
            frame,
            ticks: voice.clock_rate() / 8000,
        }
    }
}

impl FrameSource for PcmSource {
    fn next_frame(&mut self, out: &mut [u8]) -> Option<usize> {
        if self.at >= self.pcm.len() {
            return None;
        }
        let end = (self.at + self.frame).min(self.pcm.len());
        let mut frame = [0i16; 1600];
        let frame = frame.get_mut(..self.frame)?;
        frame[..end - self.at].copy_from_slice(&self.pcm[self.at..end]);
        frame[end - self.at..].fill(0);
        let n = self.encoder.encode(frame, out);
        self.at = end;
        // A buffer too small for the frame: the stream ends rather than sending garbage.
        (n > 0).then_some(n)
    }

    fn timestamp_step(&self) -> u32 {
        u32::try_from(self.frame)
            .unwrap_or(u32::MAX)
            .saturating_mul(self.ticks)
    }
}

/// What to play on a leg and how to number it.
pub struct PlayerSpec {
    pub source: Box<dyn FrameSource>,
    /// The payload type the leg negotiated for the source's codec.
    pub payload_type: u8,
    /// RFC 3550 §5.1 and §8: SSRC, first sequence number and first timestamp SHOULD be
    /// random. The shell draws them: nothing in this crate reads a random source.
    pub ssrc: u32,
    pub first_sequence: u16,
    pub first_timestamp: u32,
    /// The packetization interval (`a=ptime`), 20 ms for G.711 by default.
    pub ptime: Duration,
}

impl std::fmt::Debug for PlayerSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PlayerSpec")
            .field("payload_type", &self.payload_type)
            .field("ptime", &self.ptime)
            .finish_non_exhaustive()
    }
}

/// At most this many frames go out at once after a late wake-up; older ones are skipped (a
/// receiver's jitter buffer would discard them anyway).
const MAX_BURST: u32 = 3;

/// What [`Player::poll_transmit`] produced.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum PlayerOutput {
    /// `buf[..len]` holds the next RTP packet (plain).
    Packet(usize),
    /// The source ran out at the end of the last frame's interval.
    Finished,
    /// Nothing due before [`Player::poll_timeout`].
    Idle,
}

/// Where a stopped player's stream was, so that the next player on the leg carries on with
/// the same SSRC: RFC 3550 §5.1 wants the sequence number to go on by one per packet and the
/// timestamp to advance with the sampling clock, whatever the source. A receiver that sees a
/// random jump instead may take it for a restarted sender and drop packets while it re-syncs
/// (RFC 3550 A.1: the probation of a new source).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Continuation {
    ssrc: u32,
    sequence: u16,
    /// The timestamp the frame due at `at` would have carried.
    timestamp: u32,
    at: Instant,
    step: u32,
    ptime: Duration,
}

impl Continuation {
    /// Makes `spec` carry on from here when it sends under the same SSRC (a new SSRC is a new
    /// stream and keeps its own random start). The timestamp moves on by the time that passed
    /// (negative when the next frame was not due yet).
    pub(crate) fn carry_into(&self, now: Instant, spec: &mut PlayerSpec) {
        if spec.ssrc != self.ssrc {
            return;
        }
        let micros = |d: Duration| i128::try_from(d.as_micros()).unwrap_or(i128::MAX);
        let elapsed = if now >= self.at {
            micros(now - self.at)
        } else {
            -micros(self.at - now)
        };
        let units = elapsed * i128::from(self.step) / micros(self.ptime).max(1);
        // Modulo 2^32 (RFC 3550 §5.1): the truncation is the wrap.
        spec.first_timestamp = self.timestamp.wrapping_add(units as u32);
        spec.first_sequence = self.sequence;
    }
}

pub(crate) struct Player {
    source: Box<dyn FrameSource>,
    payload_type: u8,
    ssrc: u32,
    sequence: u16,
    timestamp: u32,
    step: u32,
    ptime: Duration,
    next: Instant,
    first: bool,
}

impl Player {
    /// Starts at `now`: the first packet is due at once. `ptime` is at least a millisecond.
    pub(crate) fn new(now: Instant, spec: PlayerSpec) -> Player {
        Player {
            step: spec.source.timestamp_step(),
            source: spec.source,
            payload_type: spec.payload_type,
            ssrc: spec.ssrc,
            sequence: spec.first_sequence,
            timestamp: spec.first_timestamp,
            ptime: spec.ptime.max(Duration::from_millis(1)),
            next: now,
            first: true,
        }
    }

    pub(crate) fn poll_timeout(&self) -> Instant {
        self.next
    }

    /// Where the stream stands, for the player that follows on the leg.
    pub(crate) fn continuation(&self) -> Continuation {
        Continuation {
            ssrc: self.ssrc,
            sequence: self.sequence,
            timestamp: self.timestamp,
            at: self.next,
            step: self.step,
            ptime: self.ptime,
        }
    }

    /// The packet due at `now`, written into `buf` (at least [`rtp::HEADER`] plus one frame).
    pub(crate) fn poll_transmit(&mut self, now: Instant, buf: &mut [u8]) -> PlayerOutput {
        if now < self.next || buf.len() < rtp::HEADER {
            return PlayerOutput::Idle;
        }
        let behind = now.duration_since(self.next).as_micros() / self.ptime.as_micros();
        for _ in u128::from(MAX_BURST)..behind {
            // RFC 3550 §5.1: the timestamp counts the frames skipped, the sequence number
            // only the packets sent (a receiver sees a gap in time, not a loss).
            if self.source.next_frame(&mut buf[rtp::HEADER..]).is_none() {
                return PlayerOutput::Finished;
            }
            self.timestamp = self.timestamp.wrapping_add(self.step);
            self.next += self.ptime;
        }
        let Some(frame) = self.source.next_frame(&mut buf[rtp::HEADER..]) else {
            return PlayerOutput::Finished;
        };
        // RFC 3551 §4.1: the marker bit flags the first packet of a talkspurt.
        rtp::write_header(
            buf,
            self.first,
            self.payload_type,
            self.sequence,
            self.timestamp,
            self.ssrc,
        );
        self.first = false;
        self.sequence = self.sequence.wrapping_add(1);
        self.timestamp = self.timestamp.wrapping_add(self.step);
        self.next += self.ptime;
        PlayerOutput::Packet(rtp::HEADER + frame)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn g711_source_pads_the_last_frame_and_ends() {
        let pcm: Vec<i16> = vec![1000; 200];
        let mut src = PcmSource::new(
            pcm,
            Voice::G711(crate::g711::Law::Mu),
            Duration::from_millis(20),
        );
        let mut out = [0u8; 160];
        assert_eq!(src.next_frame(&mut out), Some(160));
        assert!(out.iter().all(|&b| b == 0xce));
        assert_eq!(src.next_frame(&mut out), Some(160));
        assert!(out[..40].iter().all(|&b| b == 0xce));
        assert!(out[40..].iter().all(|&b| b == 0xff), "silence pads");
        assert_eq!(src.next_frame(&mut out), None);
        assert_eq!(src.timestamp_step(), 160);
    }

    #[test]
    fn opus_source_sends_20_ms_frames_on_the_48_khz_clock() {
        // 50 ms of audio: three 20 ms Opus frames (the last padded), whatever the ptime.
        let pcm: Vec<i16> = vec![1000; 400];
        let mut src = PcmSource::new(pcm, Voice::Opus, Duration::from_millis(30));
        assert_eq!(src.timestamp_step(), 960, "RFC 7587 §4.1: 48 kHz");
        let mut decoder = crate::voice::VoiceDecoder::with_opus(111);
        let mut back = Vec::new();
        let mut out = [0u8; 1500];
        let mut frames = 0;
        while let Some(n) = src.next_frame(&mut out) {
            assert!(n < 160, "an Opus packet: {n} bytes");
            assert!(decoder.decode(111, &out[..n], &mut back));
            frames += 1;
        }
        assert_eq!(frames, 3);
        assert_eq!(back.len(), 480, "20 ms at 8 kHz per frame");
    }
}
