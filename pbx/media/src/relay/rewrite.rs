//! One continuous outgoing RTP stream per leg, whatever feeds it (RFC 3550 §5.1, §8).
//!
//! What the PBX sends a leg comes from several sources over a call: a prompt player, then
//! the relayed other leg; early media from one fork, then the answer from another; a new
//! device after a transfer. Each has its own SSRC, sequence numbers and timestamps. A
//! browser's jitter buffer and its SRTP replay window (RFC 3711 §3.3.2) follow one stream;
//! a jump in sequence number looks like massive loss or a replay, and a new SSRC in the
//! middle of a BUNDLE session is a new, unsignalled stream. So a leg with an [`OutStream`]
//! sees one SSRC of the PBX's own with sequence numbers and timestamps that go on from where
//! the previous source left them:
//!
//! - within one source, `out = in + offset` (wrapping), so the source's own gaps, reordering
//!   and timestamp steps (silence suppression, DTMF events) pass through unchanged;
//! - on a change of source, the offsets are re-based: the next sequence number follows the
//!   highest one sent, and the timestamp advances by the wall-clock time since the last
//!   packet at the clock rate of the new packet's payload type (RFC 7160 §4.1: timestamps
//!   advance with real time across a change), and the marker bit is set (RFC 3551 §4.1: the
//!   start of a talkspurt, which lets the receiver re-sync its playout).
//!
//! RTCP sender reports from the source are rewritten to match (SSRC and RTP timestamp,
//! RFC 3550 §6.4.1) so the leg's receiver statistics and lip sync stay consistent.

use std::time::Instant;

/// Where a packet to the leg came from. Two sources are the same stream only if both the
/// kind and the SSRC match (a player and the far end could draw the same SSRC).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Source {
    /// Relayed from the other leg, under that leg's SSRC.
    Relayed(u32),
    /// Made by the PBX (a player, the echo), under the endpoint's SSRC.
    Own(u32),
}

/// The highest packet sent so far, for re-basing the next source after it.
#[derive(Clone, Copy, Debug)]
struct Last {
    seq: u16,
    ts: u32,
    at: Instant,
}

/// RTP clock rates by payload type, for the timestamp advance across a change.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct Clocks([u32; 128]);

impl Clocks {
    /// 8000 Hz (G.711, G.722's RTP clock, telephone-event/8000) unless `rates` says
    /// otherwise for a payload type.
    pub(crate) fn new(rates: &[(u8, u32)]) -> Clocks {
        let mut table = [8000u32; 128];
        for &(pt, rate) in rates {
            if let Some(slot) = table.get_mut(usize::from(pt)) {
                *slot = rate.max(1);
            }
        }
        Clocks(table)
    }

    fn rate(&self, pt: u8) -> u32 {
        self.0[usize::from(pt & 0x7f)]
    }
}

/// The stream the PBX sends one leg (see the module documentation).
pub(crate) struct OutStream {
    ssrc: u32,
    clocks: Clocks,
    current: Option<Source>,
    seq_offset: u16,
    ts_offset: u32,
    last: Option<Last>,
}

impl OutStream {
    pub(crate) fn new(ssrc: u32, clocks: Clocks) -> OutStream {
        OutStream {
            ssrc,
            clocks,
            current: None,
            seq_offset: 0,
            ts_offset: 0,
            last: None,
        }
    }

    pub(crate) fn ssrc(&self) -> u32 {
        self.ssrc
    }

    /// A new plan for the same leg: same SSRC and numbering, the new payload types' clocks.
    pub(crate) fn set_clocks(&mut self, clocks: Clocks) {
        self.clocks = clocks;
    }

    /// Rewrites a plain RTP packet (already classified, payload type already rewritten for
    /// this leg) from `source` in place: SSRC, sequence number, timestamp, and the marker on
    /// the first packet of a new source.
    pub(crate) fn rewrite_rtp(&mut self, now: Instant, source: Source, pkt: &mut [u8]) {
        if pkt.len() < 12 {
            return;
        }
        let seq = u16::from_be_bytes([pkt[2], pkt[3]]);
        let ts = u32::from_be_bytes([pkt[4], pkt[5], pkt[6], pkt[7]]);
        if self.current != Some(source) {
            self.rebase(now, seq, ts, pkt[1]);
            self.current = Some(source);
            pkt[1] |= 0x80;
        }
        let out_seq = seq.wrapping_add(self.seq_offset);
        let out_ts = ts.wrapping_add(self.ts_offset);
        pkt[2..4].copy_from_slice(&out_seq.to_be_bytes());
        pkt[4..8].copy_from_slice(&out_ts.to_be_bytes());
        pkt[8..12].copy_from_slice(&self.ssrc.to_be_bytes());
        // RFC 3550 §A.1: a packet older than the highest sent (reordered in the network)
        // does not move the reference.
        let newer = self
            .last
            .is_none_or(|l| (out_seq.wrapping_sub(l.seq) as i16) > 0);
        if newer {
            self.last = Some(Last {
                seq: out_seq,
                ts: out_ts,
                at: now,
            });
        }
    }

    /// The offsets that make the new source's packet with `seq`/`ts` follow the last one
    /// sent. The first source of all keeps its own numbering (already random, RFC 3550 §5.1).
    fn rebase(&mut self, now: Instant, seq: u16, ts: u32, pt_byte: u8) {
        let Some(last) = self.last else {
            return;
        };
        let rate = u128::from(self.clocks.rate(pt_byte));
        let elapsed = now.saturating_duration_since(last.at).as_micros();
        // At least one tick: two packets of different sources must not share a timestamp.
        let ticks = ((elapsed * rate / 1_000_000) as u32).max(1);
        self.seq_offset = last.seq.wrapping_add(1).wrapping_sub(seq);
        self.ts_offset = last.ts.wrapping_add(ticks).wrapping_sub(ts);
    }

    /// Rewrites a plain RTCP packet relayed from `source` in place: a sender report (RFC
    /// 3550 §6.4.1) from the current source gets the leg's SSRC and its RTP timestamp the
    /// current offset. Reports of other sources, and other packet types, pass unchanged.
    pub(crate) fn rewrite_rtcp(&self, source_ssrc: u32, pkt: &mut [u8]) {
        if pkt.len() < 20 || pkt[1] != 200 {
            return;
        }
        let sender = u32::from_be_bytes([pkt[4], pkt[5], pkt[6], pkt[7]]);
        if sender != source_ssrc || self.current != Some(Source::Relayed(source_ssrc)) {
            return;
        }
        let ts = u32::from_be_bytes([pkt[16], pkt[17], pkt[18], pkt[19]]);
        pkt[4..8].copy_from_slice(&self.ssrc.to_be_bytes());
        pkt[16..20].copy_from_slice(&ts.wrapping_add(self.ts_offset).to_be_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn pkt(pt: u8, seq: u16, ts: u32, ssrc: u32) -> Vec<u8> {
        let mut p = vec![0u8; 172];
        p[0] = 0x80;
        p[1] = pt;
        p[2..4].copy_from_slice(&seq.to_be_bytes());
        p[4..8].copy_from_slice(&ts.to_be_bytes());
        p[8..12].copy_from_slice(&ssrc.to_be_bytes());
        p
    }

    fn fields(p: &[u8]) -> (bool, u8, u16, u32, u32) {
        (
            p[1] & 0x80 != 0,
            p[1] & 0x7f,
            u16::from_be_bytes([p[2], p[3]]),
            u32::from_be_bytes([p[4], p[5], p[6], p[7]]),
            u32::from_be_bytes([p[8], p[9], p[10], p[11]]),
        )
    }

    const OUT: u32 = 0xAAAA_0001;

    /// The one real instant the tests read; everything after is virtual.
    fn base() -> Instant {
        #[allow(clippy::disallowed_methods)]
        Instant::now()
    }
    const MS20: Duration = Duration::from_millis(20);

    #[test]
    fn one_source_keeps_its_numbering_under_the_legs_ssrc() {
        let t0 = base();
        let mut s = OutStream::new(OUT, Clocks::new(&[]));
        let mut p = pkt(0, 100, 1600, 7);
        s.rewrite_rtp(t0, Source::Relayed(7), &mut p);
        assert_eq!(fields(&p), (true, 0, 100, 1600, OUT));
        let mut p = pkt(0, 101, 1760, 7);
        s.rewrite_rtp(t0 + MS20, Source::Relayed(7), &mut p);
        assert_eq!(fields(&p), (false, 0, 101, 1760, OUT));
    }

    #[test]
    fn a_new_source_continues_sequence_and_time_with_the_marker() {
        let t0 = base();
        let mut s = OutStream::new(OUT, Clocks::new(&[]));
        // A prompt: 50 packets, 20 ms apart, from seq 65530 (wraps).
        let mut t = t0;
        let mut last = (0u16, 0u32);
        for i in 0..50u16 {
            let mut p = pkt(
                0,
                65530u16.wrapping_add(i),
                1000 + 160 * u32::from(i),
                0x1111,
            );
            s.rewrite_rtp(t, Source::Own(0x1111), &mut p);
            let f = fields(&p);
            last = (f.2, f.3);
            t += MS20;
        }
        assert_eq!(last.0, 65530u16.wrapping_add(49));
        // 60 ms of silence, then the other leg, with its own numbering.
        let t_relay = t + Duration::from_millis(40);
        let mut p = pkt(0, 9, 777_777, 0x2222);
        s.rewrite_rtp(t_relay, Source::Relayed(0x2222), &mut p);
        let (marker, _, seq, ts, ssrc) = fields(&p);
        assert!(marker);
        assert_eq!(ssrc, OUT);
        assert_eq!(seq, last.0.wrapping_add(1));
        // 60 ms at 8 kHz after the last packet's timestamp.
        assert_eq!(ts, last.1.wrapping_add(480));
        // And the relayed stream goes on from there, marker cleared.
        let mut p = pkt(0, 10, 777_777 + 160, 0x2222);
        s.rewrite_rtp(t_relay + MS20, Source::Relayed(0x2222), &mut p);
        let f = fields(&p);
        assert_eq!((f.0, f.2, f.3), (false, seq + 1, ts + 160));
    }

    #[test]
    fn reordering_and_gaps_of_a_source_pass_through() {
        let t0 = base();
        let mut s = OutStream::new(OUT, Clocks::new(&[]));
        let mut a = pkt(0, 500, 0, 1);
        s.rewrite_rtp(t0, Source::Relayed(1), &mut a);
        let mut c = pkt(0, 502, 320, 1);
        s.rewrite_rtp(t0 + MS20, Source::Relayed(1), &mut c);
        let mut b = pkt(0, 501, 160, 1);
        s.rewrite_rtp(t0 + MS20, Source::Relayed(1), &mut b);
        assert_eq!(fields(&b).2, 501);
        // A switch now follows the highest (502), not the late 501.
        let mut d = pkt(0, 40_000, 5, 2);
        s.rewrite_rtp(t0 + MS20 * 2, Source::Own(2), &mut d);
        assert_eq!(fields(&d).2, 503);
        assert_eq!(fields(&d).3, 320 + 160);
    }

    #[test]
    fn the_timestamp_advance_uses_the_new_payload_types_clock() {
        // RFC 7160: Opus runs at 48 kHz whatever its sampling.
        let t0 = base();
        let mut s = OutStream::new(OUT, Clocks::new(&[(111, 48_000)]));
        let mut p = pkt(111, 1, 0, 1);
        s.rewrite_rtp(t0, Source::Own(1), &mut p);
        let mut p = pkt(111, 1, 0, 2);
        s.rewrite_rtp(t0 + MS20, Source::Relayed(2), &mut p);
        assert_eq!(fields(&p).3, 960);
        // A switch within the same instant still moves the timestamp.
        let mut p = pkt(111, 1, 0, 3);
        s.rewrite_rtp(t0 + MS20, Source::Own(3), &mut p);
        assert_eq!(fields(&p).3, 961);
    }

    #[test]
    fn switching_back_to_an_earlier_source_is_a_change_too() {
        let t0 = base();
        let mut s = OutStream::new(OUT, Clocks::new(&[]));
        let mut p = pkt(0, 10, 100, 1);
        s.rewrite_rtp(t0, Source::Relayed(1), &mut p);
        let mut p = pkt(0, 9000, 5, 2);
        s.rewrite_rtp(t0 + MS20, Source::Relayed(2), &mut p);
        let mut p = pkt(0, 11, 260, 1);
        s.rewrite_rtp(t0 + MS20 * 2, Source::Relayed(1), &mut p);
        let f = fields(&p);
        assert!(f.0);
        assert_eq!((f.2, f.3), (12, 100 + 160 + 160));
    }

    #[test]
    fn sender_reports_follow_the_rewritten_stream() {
        let t0 = base();
        let mut s = OutStream::new(OUT, Clocks::new(&[]));
        let mut p = pkt(0, 1, 1000, 0x10);
        s.rewrite_rtp(t0, Source::Own(0x10), &mut p);
        let mut p = pkt(0, 50, 90_000, 0x20);
        s.rewrite_rtp(t0 + MS20, Source::Relayed(0x20), &mut p);
        let out_ts = fields(&p).3;
        let mut sr = vec![0u8; 28];
        sr[0] = 0x80;
        sr[1] = 200;
        sr[3] = 6;
        sr[4..8].copy_from_slice(&0x20u32.to_be_bytes());
        sr[16..20].copy_from_slice(&90_000u32.to_be_bytes());
        s.rewrite_rtcp(0x20, &mut sr);
        assert_eq!(&sr[4..8], &OUT.to_be_bytes());
        assert_eq!(&sr[16..20], &out_ts.to_be_bytes());
        // A receiver report passes unchanged.
        let mut rr = sr.clone();
        rr[1] = 201;
        rr[4..8].copy_from_slice(&0x20u32.to_be_bytes());
        let before = rr.clone();
        s.rewrite_rtcp(0x20, &mut rr);
        assert_eq!(rr, before);
    }
}
