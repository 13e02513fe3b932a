//! RTP headers for the PBX's own endpoints (RFC 3550 §5.1): reading what a leg sent (the
//! payload, for a recorder or a DTMF detector) and writing what a player sends. The relay
//! does not use this; it never looks past the payload type (see `relay/packet.rs`).

/// RFC 3550 §5.1: the fixed header.
pub(crate) const HEADER: usize = 12;

/// A received RTP packet, already classified and (on an SRTP leg) decrypted.
#[derive(Clone, Copy, Debug)]
pub(crate) struct RtpView<'a> {
    pub(crate) payload_type: u8,
    pub(crate) timestamp: u32,
    pub(crate) payload: &'a [u8],
}

impl<'a> RtpView<'a> {
    /// The header fields and the payload without CSRCs, extension and padding; `None` when
    /// the lengths do not add up.
    pub(crate) fn parse(pkt: &'a [u8]) -> Option<RtpView<'a>> {
        let (start, end) = payload_bounds(pkt)?;
        Some(RtpView {
            payload_type: pkt[1] & 0x7f,
            timestamp: u32::from_be_bytes([pkt[4], pkt[5], pkt[6], pkt[7]]),
            payload: pkt.get(start..end)?,
        })
    }
}

/// Where the payload of an RTP packet starts and ends (after CSRCs and extension, before
/// padding); `None` when the lengths do not add up.
pub(crate) fn payload_bounds(pkt: &[u8]) -> Option<(usize, usize)> {
    if pkt.len() < HEADER || pkt[0] >> 6 != 2 {
        return None;
    }
    let mut start = HEADER + 4 * usize::from(pkt[0] & 0x0f);
    if pkt[0] & 0x10 != 0 {
        // RFC 3550 §5.3.1: the extension's length counts 32-bit words after its header.
        let ext = pkt.get(start..start + 4)?;
        start += 4 + 4 * usize::from(u16::from_be_bytes([ext[2], ext[3]]));
    }
    let mut end = pkt.len();
    if pkt[0] & 0x20 != 0 {
        // RFC 3550 §5.1: the last octet counts the padding, itself included.
        end = end.checked_sub(usize::from(*pkt.last()?))?;
    }
    (start <= end).then_some((start, end))
}

/// Writes a fixed header (V=2, no padding, extension or CSRC) into `buf[..12]`; `buf` is at
/// least [`HEADER`] long.
pub(crate) fn write_header(
    buf: &mut [u8],
    marker: bool,
    payload_type: u8,
    sequence: u16,
    timestamp: u32,
    ssrc: u32,
) {
    buf[0] = 0x80;
    buf[1] = (u8::from(marker) << 7) | (payload_type & 0x7f);
    buf[2..4].copy_from_slice(&sequence.to_be_bytes());
    buf[4..8].copy_from_slice(&timestamp.to_be_bytes());
    buf[8..12].copy_from_slice(&ssrc.to_be_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_then_reads_a_header() {
        let mut p = [0u8; 16];
        write_header(&mut p, true, 8, 0xfffe, 0xdead_beef, 7);
        p[12..].copy_from_slice(&[1, 2, 3, 4]);
        let v = RtpView::parse(&p).expect("valid");
        assert_eq!(p[1], 0x80 | 8, "marker and payload type");
        assert_eq!(&p[2..4], &[0xff, 0xfe]);
        assert_eq!((v.payload_type, v.timestamp), (8, 0xdead_beef));
        assert_eq!(v.payload, &[1, 2, 3, 4]);
    }

    #[test]
    fn skips_csrcs_extension_and_padding() {
        // One CSRC, a one-word extension, 4 payload octets, 2 octets of padding.
        let mut p = vec![0xb1, 101, 0, 1, 0, 0, 0, 160, 0, 0, 0, 9];
        p.extend_from_slice(&[0, 0, 0, 5]); // CSRC
        p.extend_from_slice(&[0xbe, 0xde, 0, 1, 0x10, 0xaa, 0, 0]); // extension
        p.extend_from_slice(&[5, 0x80, 0, 160, 0, 2]); // payload + padding (count 2)
        let v = RtpView::parse(&p).expect("valid");
        assert_eq!(v.payload, &[5, 0x80, 0, 160]);
        // Padding count larger than the packet.
        let n = p.len();
        p[n - 1] = 200;
        assert!(RtpView::parse(&p).is_none());
    }
}
