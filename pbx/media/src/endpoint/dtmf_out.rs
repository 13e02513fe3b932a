//! RFC 4733 events the PBX makes for a leg: the digits another leg sent as SIP INFO, put
//! into the RTP stream the relay sends to this leg.
//!
//! The events take the place of the relayed audio packets one for one, so they carry the
//! stream's own SSRC and sequence numbers, with no gap and no duplicate, as RFC 4733 §2.1
//! asks of events that share an audio stream's SSRC. Each event starts at the timestamp of
//! the packet it replaces, marker bit set (§2.5.1.1); the packets that follow repeat that
//! timestamp with a growing duration (§2.5.1.2) until the digit's length; the end packet
//! goes three times (§2.5.1.4), then the audio flows again and the next digit may start.
//! A leg that sends no audio (on hold) gets no events until it does.

use std::collections::VecDeque;
use std::time::Duration;

use crate::rtp::{self, RtpView};

/// RFC 4733 §2.5.1.4: the final packet of an event is sent three times.
const END_PACKETS: u8 = 3;
/// RFC 4733 §2.3.4: the volume of a DTMF key, -10 dBm0 (a typical phone's).
const VOLUME: u8 = 10;
/// Digits waiting beyond this many are dropped (a burst of INFOs faster than keys).
const MAX_QUEUED: usize = 32;
/// One event packet: the header and the 4-octet event (RFC 4733 §2.3).
const PACKET: usize = rtp::HEADER + 4;
/// The step assumed before two packets of the stream showed its own (20 ms at 8 kHz).
const DEFAULT_STEP: u32 = 160;

/// What a leg's events are written with: its negotiated `telephone-event` payload type and
/// clock.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DtmfOutSpec {
    pub payload_type: u8,
    pub clock_rate: u32,
}

/// The event being sent.
struct Current {
    event: u8,
    start: u32,
    /// The digit's length in clock units.
    length: u32,
    /// Packets sent so far (the first one carries the marker bit).
    sent: u32,
    ends: u8,
}

pub(crate) struct DtmfOut {
    spec: DtmfOutSpec,
    queue: VecDeque<(u8, u32)>,
    current: Option<Current>,
    /// The last relayed packet's timestamp and the step between the last two.
    last_ts: Option<u32>,
    step: u32,
}

/// RFC 4733 §3.2: the DTMF keys are events 0-15.
pub(crate) fn event_of(digit: char) -> Option<u8> {
    let d = digit.to_ascii_uppercase();
    b"0123456789*#ABCD"
        .iter()
        .position(|&b| char::from(b) == d)
        .and_then(|i| u8::try_from(i).ok())
}

impl DtmfOut {
    pub(crate) fn new(spec: DtmfOutSpec) -> DtmfOut {
        DtmfOut {
            spec,
            queue: VecDeque::new(),
            current: None,
            last_ts: None,
            step: DEFAULT_STEP,
        }
    }

    /// The leg's payload type or clock changed (a re-INVITE).
    pub(crate) fn set_spec(&mut self, spec: DtmfOutSpec) {
        self.spec = spec;
    }

    /// Queues a key; false when it is not a DTMF key or too many wait.
    pub(crate) fn push(&mut self, digit: char, duration: Duration) -> bool {
        let Some(event) = event_of(digit) else {
            return false;
        };
        if self.queue.len() >= MAX_QUEUED {
            return false;
        }
        let units = duration.as_micros() * u128::from(self.spec.clock_rate) / 1_000_000;
        // The duration field is 16 bits (§2.3.5); a longer key would need segments
        // (§2.5.1.3), which no INFO asks for.
        let length = u32::try_from(units.clamp(1, u128::from(u16::MAX))).unwrap_or(1);
        self.queue.push_back((event, length));
        true
    }

    /// Whether an event is being sent or waits.
    pub(crate) fn busy(&self) -> bool {
        self.current.is_some() || !self.queue.is_empty()
    }

    /// Takes the relayed packet `buf[..len]` (plain RTP, before any SRTP) on its way to the
    /// leg: while an event is due, rewrites it in place as the next event packet and returns
    /// the new length; otherwise leaves it alone and returns `None`.
    pub(crate) fn replace(&mut self, buf: &mut [u8], len: usize) -> Option<usize> {
        let (seq, ts, ssrc) = {
            let pkt = buf.get(..len)?;
            RtpView::parse(pkt)?;
            (
                u16::from_be_bytes([pkt[2], pkt[3]]),
                u32::from_be_bytes([pkt[4], pkt[5], pkt[6], pkt[7]]),
                u32::from_be_bytes([pkt[8], pkt[9], pkt[10], pkt[11]]),
            )
        };
        if let Some(last) = self.last_ts {
            let step = ts.wrapping_sub(last);
            // A plausible frame (up to 200 ms); a jump (new talkspurt, reordering) is not.
            if (1..=self.spec.clock_rate / 5).contains(&step) {
                self.step = step;
            }
        }
        self.last_ts = Some(ts);
        if self.current.is_none() {
            let (event, length) = self.queue.pop_front()?;
            self.current = Some(Current {
                event,
                start: ts,
                length,
                sent: 0,
                ends: 0,
            });
        }
        let out = buf.get_mut(..PACKET)?;
        let cur = self.current.as_mut()?;
        // The packet covers the time up to the end of the frame it replaces.
        let covered = ts.wrapping_sub(cur.start).saturating_add(self.step);
        let end = cur.ends > 0 || covered >= cur.length;
        let duration = if end { cur.length } else { covered };
        rtp::write_header(
            out,
            cur.sent == 0,
            self.spec.payload_type,
            seq,
            cur.start,
            ssrc,
        );
        let duration = u16::try_from(duration).unwrap_or(u16::MAX).to_be_bytes();
        out[rtp::HEADER..].copy_from_slice(&[
            cur.event,
            (u8::from(end) << 7) | VOLUME,
            duration[0],
            duration[1],
        ]);
        cur.sent += 1;
        if end {
            cur.ends += 1;
            if cur.ends >= END_PACKETS {
                self.current = None;
            }
        }
        Some(PACKET)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn audio(seq: u16, ts: u32) -> Vec<u8> {
        let mut p = vec![0u8; 2048];
        rtp::write_header(&mut p, false, 0, seq, ts, 0xabcd);
        p
    }

    /// (marker, pt, seq, ts, ssrc, event, end, duration) of an event packet.
    fn read(p: &[u8]) -> (bool, u8, u16, u32, u32, u8, bool, u16) {
        (
            p[1] & 0x80 != 0,
            p[1] & 0x7f,
            u16::from_be_bytes([p[2], p[3]]),
            u32::from_be_bytes([p[4], p[5], p[6], p[7]]),
            u32::from_be_bytes([p[8], p[9], p[10], p[11]]),
            p[12],
            p[13] & 0x80 != 0,
            u16::from_be_bytes([p[14], p[15]]),
        )
    }

    #[test]
    fn a_key_replaces_audio_packets_with_its_event() {
        let mut out = DtmfOut::new(DtmfOutSpec {
            payload_type: 101,
            clock_rate: 8000,
        });
        let mut p = audio(10, 1000);
        assert_eq!(
            out.replace(&mut p, 172),
            None,
            "nothing queued: audio passes"
        );
        assert!(out.push('5', Duration::from_millis(100)));
        assert!(out.busy());
        let mut got = Vec::new();
        for i in 1..20u16 {
            let mut p = audio(10 + i, 1000 + 160 * u32::from(i));
            match out.replace(&mut p, 172) {
                Some(len) => {
                    assert_eq!(len, 16);
                    got.push(read(&p));
                }
                None => break,
            }
        }
        // 100 ms = 800 units: 160, 320, ..., 800 (the fifth ends it), sent three times.
        let durations: Vec<u16> = got.iter().map(|g| g.7).collect();
        assert_eq!(durations, [160, 320, 480, 640, 800, 800, 800]);
        let ends: Vec<bool> = got.iter().map(|g| g.6).collect();
        assert_eq!(ends, [false, false, false, false, true, true, true]);
        for (i, g) in got.iter().enumerate() {
            assert_eq!(g.0, i == 0, "marker on the first packet only");
            assert_eq!((g.1, g.3, g.4, g.5), (101, 1160, 0xabcd, 5));
            assert_eq!(
                g.2,
                11 + u16::try_from(i).unwrap(),
                "the stream's own numbers"
            );
        }
        assert!(!out.busy());
        let mut p = audio(30, 5000);
        assert_eq!(out.replace(&mut p, 172), None, "audio again");
    }

    #[test]
    fn keys_follow_each_other_and_unknown_ones_are_refused() {
        let mut out = DtmfOut::new(DtmfOutSpec {
            payload_type: 96,
            clock_rate: 8000,
        });
        assert!(!out.push('x', Duration::from_millis(100)));
        assert!(out.push('#', Duration::from_millis(40)));
        assert!(out.push('a', Duration::from_millis(40)));
        let mut events = Vec::new();
        for i in 0..10u16 {
            let mut p = audio(i, 160 * u32::from(i));
            if out.replace(&mut p, 172).is_some() {
                let g = read(&p);
                events.push((g.3, g.5, g.6));
            }
        }
        assert_eq!(
            events,
            [
                (0, 11, false),
                (0, 11, true),
                (0, 11, true),
                (0, 11, true),
                (640, 12, false),
                (640, 12, true),
                (640, 12, true),
                (640, 12, true),
            ]
        );
    }

    #[test]
    fn a_short_packet_is_left_alone() {
        let mut out = DtmfOut::new(DtmfOutSpec {
            payload_type: 101,
            clock_rate: 8000,
        });
        assert!(out.push('1', Duration::from_millis(100)));
        let mut p = vec![0x80u8; 8];
        assert_eq!(out.replace(&mut p, 8), None);
        assert!(out.busy());
    }
}
