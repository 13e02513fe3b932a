//! Just enough RTP/RTCP parsing to relay safely: classify, bound-check, rewrite the payload
//! type. Everything works on the received buffer in place and never allocates.

/// What a datagram on a media socket turned out to be.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    Rtp,
    Rtcp,
}

/// RFC 3550 §5.1: the fixed RTP header.
const RTP_HEADER: usize = 12;
/// RFC 3550 §6.4.1: the common RTCP header plus the sender's SSRC, which SRTCP needs (RFC 3711
/// §3.4 authenticates from it on).
const RTCP_MIN: usize = 8;

/// Classifies and validates a datagram. `None` for anything that is neither well-formed RTP
/// nor well-formed RTCP; the caller drops it.
pub(crate) fn classify(pkt: &[u8]) -> Option<Kind> {
    // RFC 3550 §5.1 / §6.4.1: both start with version 2 in the top two bits.
    if pkt.len() < 2 || pkt[0] >> 6 != 2 {
        return None;
    }
    // RFC 5761 §4: with RTP and RTCP on one port, the RTCP packet types 192-223 (SR 200,
    // RR 201, SDES, BYE, APP, RTPFB, PSFB, XR ...) occupy the second octet where RTP has its
    // marker bit and payload type; RTP payload types 64-95 are therefore never used for RTP.
    // Looking at the 7-bit type catches both marker values, so nothing in that range is ever
    // taken for RTP.
    if (64..=95).contains(&(pkt[1] & 0x7f)) {
        valid_rtcp(pkt).then_some(Kind::Rtcp)
    } else {
        valid_rtp(pkt).then_some(Kind::Rtp)
    }
}

/// RFC 3550 §5.1, §5.3.1: the header, its CSRC list and its extension fit in the packet.
/// Padding is not checked: with SRTP the padding count sits under the encryption and the
/// authentication tag ends the packet, and the relay never strips padding anyway.
fn valid_rtp(pkt: &[u8]) -> bool {
    if pkt.len() < RTP_HEADER {
        return false;
    }
    let csrc_count = usize::from(pkt[0] & 0x0f);
    let mut header = RTP_HEADER + 4 * csrc_count;
    if pkt[0] & 0x10 != 0 {
        // RFC 3550 §5.3.1: 16-bit profile, 16-bit length in 32-bit words, then the words.
        let Some(ext) = pkt.get(header..header + 4) else {
            return false;
        };
        let words = usize::from(u16::from_be_bytes([ext[2], ext[3]]));
        header += 4 + 4 * words;
    }
    header <= pkt.len()
}

/// Whether `rtc-srtp` will find the payload where it is. It re-derives the header length from
/// the parsed RFC 8285 extension elements instead of the length field, and panics (0.21.1,
/// `encrypt_rtp`) or mis-encrypts when the two differ. They agree when every element lies
/// inside the declared block and the reserved ID 15 is absent, which is what RFC 8285 §4.2
/// and §4.3 require of senders; anything else is refused on SRTP legs. `pkt` is already
/// classified as RTP, so the block itself is within bounds.
pub(crate) fn extensions_well_formed(pkt: &[u8]) -> bool {
    if pkt[0] & 0x10 == 0 {
        return true;
    }
    let at = RTP_HEADER + 4 * usize::from(pkt[0] & 0x0f);
    let Some(ext) = pkt.get(at..at + 4) else {
        return false;
    };
    let profile = u16::from_be_bytes([ext[0], ext[1]]);
    let end = at + 4 + 4 * usize::from(u16::from_be_bytes([ext[2], ext[3]]));
    let mut i = at + 4;
    while i < end {
        let Some(&b) = pkt.get(i) else {
            return false;
        };
        if b == 0 {
            // RFC 8285 §4.1: padding between elements.
            i += 1;
            continue;
        }
        i += match profile {
            // RFC 8285 §4.2: one-byte header, ID 15 reserved, length - 1 in the low nibble.
            0xbede if b >> 4 == 15 => return false,
            0xbede => 1 + usize::from(b & 0x0f) + 1,
            // RFC 8285 §4.3 (rtc-rtp knows only appbits 0): ID byte, length byte.
            0x1000 => match pkt.get(i + 1) {
                Some(&len) if i + 1 < end => 2 + usize::from(len),
                _ => return false,
            },
            // RFC 3550 §5.3.1: opaque, the length field is all there is.
            _ => return true,
        };
        if i > end {
            return false;
        }
    }
    true
}

/// RFC 3550 §6.4.1: a packet type in the RTCP range and a first packet whose length field
/// fits in the datagram (for a compound packet, only the first is checked: the receiver
/// parses the rest).
fn valid_rtcp(pkt: &[u8]) -> bool {
    if pkt.len() < RTCP_MIN || !(192..=223).contains(&pkt[1]) {
        return false;
    }
    let words = usize::from(u16::from_be_bytes([pkt[2], pkt[3]]));
    (words + 1) * 4 <= pkt.len()
}

/// The SSRC of an RTP packet (bytes 8..12) or of an RTCP packet's sender (bytes 4..8), for a
/// packet already classified; 0 when (impossibly) too short.
pub(crate) fn ssrc(kind: Kind, pkt: &[u8]) -> u32 {
    let at = match kind {
        Kind::Rtp => 8,
        Kind::Rtcp => 4,
    };
    pkt.get(at..at + 4)
        .map_or(0, |b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
}

/// A payload type translation table: index = incoming PT, value = outgoing PT. A table and
/// not a list so the per-packet lookup is one load.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct PtTable([u8; 128]);

impl PtTable {
    /// The identity, overridden by `map` (other leg's PT, this leg's PT). Entries outside
    /// 0..=127 cannot be on the wire and are ignored.
    pub(crate) fn new(map: &[(u8, u8)]) -> PtTable {
        let mut table = [0u8; 128];
        for (pt, slot) in (0u8..).zip(table.iter_mut()) {
            *slot = pt;
        }
        for &(from, to) in map {
            if from < 128 && to < 128 {
                table[usize::from(from)] = to;
            }
        }
        PtTable(table)
    }

    /// Rewrites the payload type in place, keeping the marker bit (RFC 3550 §5.1). Sequence
    /// number, timestamp and SSRC stay as they are: the two legs share one RTP session as far
    /// as the endpoints can tell, which keeps their jitter buffers and RTCP reports truthful.
    pub(crate) fn rewrite(&self, pkt: &mut [u8]) {
        if let Some(b) = pkt.get_mut(1) {
            *b = (*b & 0x80) | self.0[usize::from(*b & 0x7f)];
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rtp(first: u8, second: u8, len: usize) -> Vec<u8> {
        let mut p = vec![0u8; len];
        p[0] = first;
        p[1] = second;
        p
    }

    #[test]
    fn classifies_rtp_and_rtcp_per_rfc5761() {
        assert_eq!(classify(&rtp(0x80, 0, 172)), Some(Kind::Rtp));
        assert_eq!(classify(&rtp(0x80, 0x80 | 8, 172)), Some(Kind::Rtp));
        assert_eq!(classify(&rtp(0x80, 101, 16)), Some(Kind::Rtp));
        // SR, length 6 words = 28 bytes.
        let mut sr = rtp(0x80, 200, 28);
        sr[3] = 6;
        assert_eq!(classify(&sr), Some(Kind::Rtcp));
        // PT 72 without the marker: in the RTCP range but not a valid RTCP type.
        assert_eq!(classify(&rtp(0x80, 72, 28)), None);
    }

    #[test]
    fn rejects_bad_versions_and_lengths() {
        assert_eq!(classify(&[]), None);
        assert_eq!(classify(&[0x80]), None);
        assert_eq!(classify(&rtp(0x40, 0, 172)), None);
        assert_eq!(classify(&rtp(0x80, 0, 11)), None);
        // 15 CSRCs need 72 bytes.
        assert_eq!(classify(&rtp(0x8f, 0, 71)), None);
        assert_eq!(classify(&rtp(0x8f, 0, 72)), Some(Kind::Rtp));
        // Extension header missing, then an extension longer than the packet.
        assert_eq!(classify(&rtp(0x90, 0, 12)), None);
        let mut ext = rtp(0x90, 0, 20);
        ext[15] = 2;
        assert_eq!(classify(&ext), None);
        ext[15] = 1;
        assert_eq!(classify(&ext), Some(Kind::Rtp));
        // RTCP whose length field overruns the datagram.
        let mut rr = rtp(0x80, 201, 8);
        rr[3] = 2;
        assert_eq!(classify(&rr), None);
    }

    #[test]
    fn rfc8285_elements_must_stay_in_their_block() {
        // One-byte profile, one word: element ID 1 with 2 bytes, then a padding byte.
        let mut p = rtp(0x90, 0, 20);
        p[12..16].copy_from_slice(&[0xbe, 0xde, 0, 1]);
        p[16..20].copy_from_slice(&[0x11, 0xaa, 0xbb, 0]);
        assert!(extensions_well_formed(&p));
        // Element of 4 bytes overruns the one-word block.
        p[16] = 0x13;
        assert!(!extensions_well_formed(&p));
        // Reserved ID 15.
        p[16] = 0xf0;
        assert!(!extensions_well_formed(&p));
        // Two-byte profile: ID, length 2, data.
        p[12..16].copy_from_slice(&[0x10, 0x00, 0, 1]);
        p[16..20].copy_from_slice(&[0x01, 0x02, 0xaa, 0xbb]);
        assert!(extensions_well_formed(&p));
        p[17] = 3;
        assert!(!extensions_well_formed(&p));
        // Opaque RFC 3550 extension.
        p[12..14].copy_from_slice(&[0x12, 0x34]);
        assert!(extensions_well_formed(&p));
    }

    #[test]
    fn pt_rewrite_keeps_marker() {
        let table = PtTable::new(&[(0, 8), (101, 96), (200, 1)]);
        let mut p = rtp(0x80, 0x80, 12);
        table.rewrite(&mut p);
        assert_eq!(p[1], 0x80 | 8);
        let mut p = rtp(0x80, 101, 12);
        table.rewrite(&mut p);
        assert_eq!(p[1], 96);
        let mut p = rtp(0x80, 18, 12);
        table.rewrite(&mut p);
        assert_eq!(p[1], 18);
    }
}
