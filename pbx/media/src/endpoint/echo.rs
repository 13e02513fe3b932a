//! The echo: a leg's own RTP sent back to it (the echo test a caller reaches at `600`), so the
//! caller hears the whole path: its network, its codec, the PBX.
//!
//! Each packet goes back as it came, under the PBX's own SSRC: a phone that saw its own SSRC
//! arrive would take it for a collision or a loop and pick a new one (RFC 3550 §8.2). Sequence
//! numbers and timestamps are the caller's, which is one valid stream's numbering.

use crate::rtp::HEADER;

/// How to send the echo back.
#[derive(Clone, Copy, Debug)]
pub struct EchoSpec {
    /// RFC 3550 §8: the PBX's SSRC for the echoed stream (the shell draws it at random).
    pub ssrc: u32,
}

pub(crate) struct Echo {
    ssrc: u32,
}

impl Echo {
    pub(crate) fn new(spec: EchoSpec) -> Echo {
        Echo { ssrc: spec.ssrc }
    }

    /// Rewrites the plain RTP packet `pkt` to go back to its sender; false when it is too
    /// short to be RTP.
    pub(crate) fn reflect(&self, pkt: &mut [u8]) -> bool {
        if pkt.len() < HEADER || pkt[0] >> 6 != 2 {
            return false;
        }
        pkt[8..12].copy_from_slice(&self.ssrc.to_be_bytes());
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_packet_and_changes_only_the_ssrc() {
        let echo = Echo::new(EchoSpec { ssrc: 0x0102_0304 });
        let mut pkt = [0x80, 0x00, 0, 7, 0, 0, 1, 0, 9, 9, 9, 9, 0xff, 0xfe];
        assert!(echo.reflect(&mut pkt));
        assert_eq!(pkt, [0x80, 0x00, 0, 7, 0, 0, 1, 0, 1, 2, 3, 4, 0xff, 0xfe]);
        assert!(!echo.reflect(&mut [0x80, 0, 0]));
    }
}
