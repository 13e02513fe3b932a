//! The DTMF detector: RFC 4733 telephone-events to digits, one per event, with its duration.
//!
//! A sender repeats an event's packets while the key is down, all with the event's start as
//! RTP timestamp and a growing duration (RFC 4733 §2.5.1.2), sets the E bit on the last, and
//! sends that last packet three times (§2.5.1.4). A digit is reported when its first end
//! packet arrives; the retransmissions, and late updates, carry the same timestamp and are
//! ignored. An event whose end packets were all lost is reported when the next event starts
//! or after [`LOST_END`] without packets (§2.5.2.5, soft state). A long event is split into
//! segments whose timestamps follow on (§2.5.1.3); they add up to one digit.
//!
//! In-band DTMF (tones inside the audio) plugs in through [`InbandDetector`]: the detector
//! hands it each G.711 packet of the leg decoded to PCM and reports what it finds as it
//! reports RFC 4733 digits: [`super::inband::InbandDtmf`] is one.

use std::time::{Duration, Instant};

use crate::g711::Law;
use crate::rtp::RtpView;

/// Reported without its end packets after this long without one of its packets (senders
/// update every 50 ms or so).
pub const LOST_END: Duration = Duration::from_millis(1000);

/// A tone detector over decoded audio (a Goertzel filter bank, ITU-T Q.23/Q.24).
pub trait InbandDetector: Send {
    /// 8 kHz PCM of one packet; a digit and its duration when a tone just ended.
    fn audio(&mut self, now: Instant, pcm: &[i16]) -> Option<(char, Duration)>;
}

/// What to detect on a leg.
pub struct DtmfSpec {
    /// The leg's telephone-event payload type (dynamic, from its SDP); `None` if it has none.
    pub payload_type: Option<u8>,
    /// Its clock rate (`telephone-event/8000`), in which durations count.
    pub clock_rate: u32,
    pub inband: Option<Box<dyn InbandDetector>>,
}

impl std::fmt::Debug for DtmfSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DtmfSpec")
            .field("payload_type", &self.payload_type)
            .field("clock_rate", &self.clock_rate)
            .field("inband", &self.inband.is_some())
            .finish()
    }
}

/// The event being received.
struct Current {
    digit: char,
    timestamp: u32,
    /// Clock units of the segments before this one (§2.5.1.3).
    earlier: u64,
    duration: u16,
    last_seen: Instant,
}

pub(crate) struct DtmfDetector {
    spec: DtmfSpec,
    current: Option<Current>,
    /// The timestamp of the last event reported: its retransmitted ends are not new.
    reported: Option<u32>,
}

/// RFC 4733 §3.2: events 0-15 are the DTMF keys.
fn digit(event: u8) -> Option<char> {
    b"0123456789*#ABCD"
        .get(usize::from(event))
        .map(|&b| char::from(b))
}

impl DtmfDetector {
    pub(crate) fn new(spec: DtmfSpec) -> DtmfDetector {
        DtmfDetector {
            spec,
            current: None,
            reported: None,
        }
    }

    /// The telephone-event payload type read on the leg.
    pub(crate) fn payload_type(&self) -> Option<u8> {
        self.spec.payload_type
    }

    /// Takes one packet of the leg; pushes each digit that ended onto `digits`.
    pub(crate) fn on_rtp(
        &mut self,
        now: Instant,
        pkt: &RtpView<'_>,
        digits: &mut impl FnMut(char, Duration),
    ) {
        if Some(pkt.payload_type) == self.spec.payload_type {
            self.on_event(now, pkt, digits);
        } else if let (Some(inband), Some(law)) = (
            self.spec.inband.as_mut(),
            Law::from_payload_type(pkt.payload_type),
        ) {
            let mut pcm = [0i16; 160];
            for chunk in pkt.payload.chunks(pcm.len()) {
                for (s, &c) in pcm.iter_mut().zip(chunk) {
                    *s = law.decode(c);
                }
                if let Some((d, len)) = inband.audio(now, &pcm[..chunk.len()]) {
                    digits(d, len);
                }
            }
        }
    }

    fn on_event(
        &mut self,
        now: Instant,
        pkt: &RtpView<'_>,
        digits: &mut impl FnMut(char, Duration),
    ) {
        // RFC 4733 §2.3: event, E|R|volume, duration (one event per packet in practice;
        // §2.5.1.5 allows more, only the first is read).
        let [event, flags, d0, d1, ..] = *pkt.payload else {
            return;
        };
        let Some(key) = digit(event) else { return };
        let end = flags & 0x80 != 0;
        let duration = u16::from_be_bytes([d0, d1]);
        let ts = pkt.timestamp;
        if self.reported == Some(ts) {
            return; // §2.5.1.4: a retransmitted end, or an update that came late.
        }
        let earlier = match self.current.take() {
            Some(cur) if cur.timestamp == ts => cur.earlier,
            // §2.5.1.3: the next segment of a long event starts where the last one ended.
            Some(cur)
                if cur.digit == key
                    && ts == cur.timestamp.wrapping_add(u32::from(cur.duration)) =>
            {
                cur.earlier + u64::from(cur.duration)
            }
            Some(cur) => {
                // A new event while the last one never ended: its end packets were lost.
                self.report(&cur, digits);
                0
            }
            None => 0,
        };
        let cur = Current {
            digit: key,
            timestamp: ts,
            earlier,
            duration,
            last_seen: now,
        };
        if end {
            self.report(&cur, digits);
        } else {
            self.current = Some(cur);
        }
    }

    fn report(&mut self, cur: &Current, digits: &mut impl FnMut(char, Duration)) {
        self.reported = Some(cur.timestamp);
        let units = cur.earlier + u64::from(cur.duration);
        let micros = units * 1_000_000 / u64::from(self.spec.clock_rate.max(1));
        digits(cur.digit, Duration::from_micros(micros));
    }

    pub(crate) fn poll_timeout(&self) -> Option<Instant> {
        self.current.as_ref().map(|c| c.last_seen + LOST_END)
    }

    pub(crate) fn handle_timeout(&mut self, now: Instant, digits: &mut impl FnMut(char, Duration)) {
        if let Some(cur) = self.current.take_if(|c| now >= c.last_seen + LOST_END) {
            self.report(&cur, digits);
        }
    }
}
