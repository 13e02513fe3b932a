//! Which source a plain RTP leg latches to: strict RTP against the "RTP bleed" attack class.
//!
//! Symmetric RTP (RFC 4961 §4, "comedia") sends a leg's media where the leg sends from. Taken
//! naively — the first packet latches — anyone who sprays the relay's port range wins the
//! latch before the phone speaks (CVE-2017-14099 in Asterisk): the other party's audio goes to
//! the stranger and the phone is cut off. So, on a plain RTP leg (SRTP legs latch only on an
//! authenticated packet, WebRTC legs on ICE):
//!
//! - A packet from exactly the leg's SDP address latches at once, and takes the latch over
//!   from any other source (the SDP is what the phone told us; only a spoofer, who is on
//!   path anyway, can send from it). rtpengine prefers the SDP address the same way.
//! - Any other source is a candidate on probation: it latches after `probation` RTP packets
//!   in a row from the same address and SSRC with consecutive sequence numbers (RFC 3550
//!   §A.1's source probation; Asterisk's `strictrtp = seqno` with `probation = 4`,
//!   `rtp_learning_rtp_seq_update` in res_rtp_asterisk.c). Its packets are dropped until then
//!   ([`DropReason::Probation`]); a break in its sequence starts it over. At most
//!   [`MAX_CANDIDATES`] are followed at once.
//! - The RTCP socket (no rtcp-mux) latches to its SDP address, or to any port on the IP the
//!   RTP socket latched to. Nothing else: RTCP carries no sequence to prove itself with.

use std::net::SocketAddr;
use std::time::Instant;

use super::packet::Kind;
use super::{Component, DropReason};

/// How plain RTP legs latch (`[rtp] strict_rtp`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StrictRtp {
    /// The first valid packet latches (the behaviour before strict RTP).
    Off,
    /// The SDP address at once, anyone else after a probation of consecutive packets.
    Sequence,
}

/// The latching rule of a bridge's plain RTP legs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LatchPolicy {
    pub strict: StrictRtp,
    /// Consecutive packets a source other than the SDP address must send before it latches,
    /// within `1..=`[`LatchPolicy::MAX_PROBATION`] (1 latches a non-SDP source at once, but
    /// the SDP address still takes over from it).
    pub probation: u8,
}

impl LatchPolicy {
    /// Asterisk's default `probation`, and RFC 3550 §A.1's `MIN_SEQUENTIAL` is 2: four is a
    /// long enough run that a blind sprayer rarely completes it, and costs a NAT'd phone 60 ms
    /// of 20 ms audio.
    pub const DEFAULT_PROBATION: u8 = 4;
    pub const MAX_PROBATION: u8 = 32;

    /// The old first-packet latching.
    pub const OFF: LatchPolicy = LatchPolicy {
        strict: StrictRtp::Off,
        probation: 1,
    };

    /// Strict latching with `probation` packets, brought into `1..=MAX_PROBATION`.
    pub fn sequence(probation: u8) -> LatchPolicy {
        LatchPolicy {
            strict: StrictRtp::Sequence,
            probation: probation.clamp(1, Self::MAX_PROBATION),
        }
    }
}

impl Default for LatchPolicy {
    fn default() -> LatchPolicy {
        LatchPolicy::sequence(LatchPolicy::DEFAULT_PROBATION)
    }
}

/// Candidates followed at once per leg. A sprayer from many addresses evicts only candidates
/// with shorter runs than the phone's (see [`Probation::feed`]), and the table never grows.
pub const MAX_CANDIDATES: usize = 4;

/// A source sending RTP to an unlatched leg from outside its SDP address.
#[derive(Clone, Copy, Debug)]
struct Candidate {
    source: SocketAddr,
    ssrc: u32,
    /// The last sequence number seen.
    seq: u16,
    /// Consecutive packets so far.
    run: u8,
    last: Instant,
}

/// The candidates of one leg's RTP socket.
#[derive(Clone, Debug, Default)]
pub(crate) struct Probation {
    slots: [Option<Candidate>; MAX_CANDIDATES],
}

impl Probation {
    /// Counts an RTP packet from `source`; true when it completes a run of `needed`.
    fn feed(&mut self, now: Instant, source: SocketAddr, ssrc: u32, seq: u16, needed: u8) -> bool {
        let slot = match self
            .slots
            .iter()
            .position(|c| c.is_some_and(|c| c.source == source))
        {
            Some(i) => i,
            None => self.free_slot(),
        };
        let entry = &mut self.slots[slot];
        let run = match entry {
            // RFC 3550 §A.1: in probation, a packet continues the run only if it is the next
            // in sequence (and, here, of the same SSRC); anything else starts over.
            Some(c) if c.source == source && c.ssrc == ssrc && seq == c.seq.wrapping_add(1) => {
                c.run.saturating_add(1)
            }
            _ => 1,
        };
        *entry = Some(Candidate {
            source,
            ssrc,
            seq,
            run,
            last: now,
        });
        run >= needed
    }

    /// An empty slot, or the one of the candidate least far along (the longest silent among
    /// equals): a phone with a longer run keeps its place against fresh sprayed sources.
    fn free_slot(&self) -> usize {
        self.slots
            .iter()
            .enumerate()
            .min_by_key(|(_, c)| c.map(|c| (c.run, c.last)))
            .map_or(0, |(i, _)| i)
    }

    pub(crate) fn clear(&mut self) {
        self.slots = [None; MAX_CANDIDATES];
    }
}

/// A valid datagram on a leg's socket, as [`Latches::admit`] judges it.
pub(crate) struct Arrival<'a> {
    pub(crate) component: Component,
    pub(crate) kind: Kind,
    pub(crate) source: SocketAddr,
    pub(crate) pkt: &'a [u8],
}

/// The addresses a leg latched, per PBX socket, and the candidates of its RTP socket.
#[derive(Clone, Debug, Default)]
pub(crate) struct Latches {
    addr: [Option<SocketAddr>; 2],
    pub(crate) probation: Probation,
}

impl Latches {
    pub(crate) fn new(addr: [Option<SocketAddr>; 2], probation: Probation) -> Latches {
        Latches { addr, probation }
    }

    pub(crate) fn get(&self, component: Component) -> Option<SocketAddr> {
        self.addr[component.index()]
    }

    /// Sets (or clears) a latch outright: ICE decided.
    pub(crate) fn set(&mut self, component: Component, addr: Option<SocketAddr>) {
        self.addr[component.index()] = addr;
    }

    /// The first-packet rule (SRTP legs, after authentication; `strict_rtp = "off"`): only
    /// an unlatched socket latches.
    pub(crate) fn first(&mut self, component: Component, source: SocketAddr) {
        self.addr[component.index()].get_or_insert(source);
    }

    /// The strict rule for a valid datagram on a plain leg whose SDP addresses are `sdp`
    /// (RTP, RTCP): `Ok` when it is the leg's media (latching as needed), else why it is
    /// dropped.
    pub(crate) fn admit(
        &mut self,
        now: Instant,
        arrival: Arrival<'_>,
        sdp: [Option<SocketAddr>; 2],
        probation: u8,
    ) -> Result<(), DropReason> {
        let Arrival {
            component,
            kind,
            source,
            pkt,
        } = arrival;
        let [sdp_rtp, sdp_rtcp] = sdp;
        match component {
            Component::Rtp => {
                let latched = self.get(Component::Rtp);
                if latched == Some(source) {
                    return Ok(());
                }
                if Some(source) == sdp_rtp {
                    self.set(Component::Rtp, Some(source));
                    self.probation.clear();
                    // RTCP latched beside a source that just lost RTP goes with it.
                    if let Some(rtcp) = self.get(Component::Rtcp)
                        && Some(rtcp) != sdp_rtcp
                        && rtcp.ip() != source.ip()
                    {
                        self.set(Component::Rtcp, None);
                    }
                    return Ok(());
                }
                if latched.is_some() {
                    return Err(DropReason::UnexpectedSource);
                }
                // Only RTP proves a source; RTCP from a candidate waits for it to latch.
                let (Kind::Rtp, Some(ssrc), Some(seq)) = (kind, rtp_ssrc(pkt), rtp_seq(pkt)) else {
                    return Err(DropReason::Probation);
                };
                if self.probation.feed(now, source, ssrc, seq, probation) {
                    self.set(Component::Rtp, Some(source));
                    self.probation.clear();
                    return Ok(());
                }
                Err(DropReason::Probation)
            }
            Component::Rtcp => {
                let latched = self.get(Component::Rtcp);
                if latched == Some(source) {
                    return Ok(());
                }
                let rtp = self.get(Component::Rtp);
                let beside_rtp = rtp.is_some_and(|a| a.ip() == source.ip());
                if Some(source) == sdp_rtcp || (latched.is_none() && beside_rtp) {
                    self.set(Component::Rtcp, Some(source));
                    return Ok(());
                }
                match (latched, rtp) {
                    (None, None) => Err(DropReason::Probation),
                    _ => Err(DropReason::UnexpectedSource),
                }
            }
        }
    }
}

/// RFC 3550 §5.1: the sequence number, octets 2-3 (the packet is classified RTP, so at least
/// the fixed header is there).
fn rtp_seq(pkt: &[u8]) -> Option<u16> {
    pkt.get(2..4).map(|b| u16::from_be_bytes([b[0], b[1]]))
}

/// RFC 3550 §5.1: the SSRC, octets 8-11.
fn rtp_ssrc(pkt: &[u8]) -> Option<u32> {
    pkt.get(8..12)
        .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn addr(s: &str) -> SocketAddr {
        s.parse().expect("test address")
    }

    fn t0() -> Instant {
        #[allow(clippy::disallowed_methods)]
        Instant::now()
    }

    #[test]
    fn a_run_of_consecutive_packets_completes_probation() {
        let now = t0();
        let mut p = Probation::default();
        let a = addr("192.0.2.1:4000");
        assert!(!p.feed(now, a, 7, 65534, 3));
        assert!(!p.feed(now, a, 7, 65535, 3));
        // The sequence number wraps (RFC 3550 §A.1 counts cycles).
        assert!(p.feed(now, a, 7, 0, 3));
    }

    #[test]
    fn a_gap_a_repeat_or_another_ssrc_starts_over() {
        let now = t0();
        let mut p = Probation::default();
        let a = addr("192.0.2.1:4000");
        assert!(!p.feed(now, a, 7, 10, 3));
        assert!(!p.feed(now, a, 7, 11, 3));
        assert!(!p.feed(now, a, 7, 13, 3)); // gap: run 1 from 13
        assert!(!p.feed(now, a, 7, 14, 3));
        assert!(!p.feed(now, a, 7, 14, 3)); // repeat: run 1
        assert!(!p.feed(now, a, 7, 15, 3));
        assert!(!p.feed(now, a, 8, 16, 3)); // new SSRC: run 1
        assert!(!p.feed(now, a, 8, 17, 3));
        assert!(p.feed(now, a, 8, 18, 3));
    }

    #[test]
    fn sprayed_sources_evict_each_other_before_a_longer_run() {
        let now = t0();
        let mut p = Probation::default();
        let phone = addr("203.0.113.7:30000");
        assert!(!p.feed(now, phone, 1, 100, 4));
        assert!(!p.feed(now, phone, 1, 101, 4));
        for port in 0..100u16 {
            let at = now + Duration::from_millis(u64::from(port));
            assert!(!p.feed(at, addr(&format!("198.51.100.9:{}", 20000 + port)), 9, 1, 4));
        }
        assert!(p.slots.iter().flatten().count() <= MAX_CANDIDATES);
        assert!(!p.feed(now, phone, 1, 102, 4));
        assert!(p.feed(now, phone, 1, 103, 4));
    }
}
