//! Counters of one bridge. Plain integers: the bridge is owned by one task, and the shell
//! turns deltas into metrics at its own pace.

use crate::Side;

/// Why a datagram was not relayed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DropReason {
    /// No offer/answer has completed yet: there is nowhere to send it.
    NoPlan,
    /// The leg's address is latched and this came from elsewhere (RFC 4961 symmetric RTP).
    UnexpectedSource,
    /// Not well-formed RTP or RTCP for the socket it arrived on.
    NotRtp,
    /// SRTP/SRTCP authentication tag did not verify (RFC 3711 §3.3 step 5).
    SrtpAuth,
    /// SRTP/SRTCP replayed or too old (RFC 3711 §3.3.2).
    SrtpReplay,
    /// Any other SRTP failure: malformed, too many SSRCs, unencrypted SRTCP.
    SrtpError,
    /// The other leg has no address to send to (port 0, `c=0.0.0.0`, or no RTCP address).
    NoDestination,
    /// The directions forbid it: the sender declared `recvonly`/`inactive` or the receiver
    /// `sendonly`/`inactive` (RFC 3264 §5.1, §8.4).
    Direction,
    /// Accepted on a leg of a [`crate::session::MediaSession`] whose relay is not connected
    /// and that no endpoint of the PBX listens on.
    NotConnected,
    /// The transcoder could not decode or encode it (a malformed Opus or G.711 payload).
    Transcode,
    /// Strict RTP: the leg is not latched yet and this source is not its SDP address and has
    /// not (yet) sent enough consecutive packets to be latched (`latch.rs`).
    Probation,
}

impl DropReason {
    /// Every reason, in label order.
    pub const ALL: [DropReason; 11] = [
        DropReason::NoPlan,
        DropReason::UnexpectedSource,
        DropReason::NotRtp,
        DropReason::SrtpAuth,
        DropReason::SrtpReplay,
        DropReason::SrtpError,
        DropReason::NoDestination,
        DropReason::Direction,
        DropReason::NotConnected,
        DropReason::Transcode,
        DropReason::Probation,
    ];

    /// A stable label for metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            DropReason::NoPlan => "no_plan",
            DropReason::UnexpectedSource => "unexpected_source",
            DropReason::NotRtp => "not_rtp",
            DropReason::SrtpAuth => "srtp_auth",
            DropReason::SrtpReplay => "srtp_replay",
            DropReason::SrtpError => "srtp_error",
            DropReason::NoDestination => "no_destination",
            DropReason::Direction => "direction",
            DropReason::NotConnected => "not_connected",
            DropReason::Transcode => "transcode",
            DropReason::Probation => "probation",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// Packets and bytes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Flow {
    pub packets: u64,
    pub bytes: u64,
}

/// What one bridge did since it was created.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BridgeStats {
    relayed: [Flow; 2],
    dropped: [u64; DropReason::ALL.len()],
    srtp_auth_failures: u64,
}

impl BridgeStats {
    /// Datagrams received from `side` and forwarded to the other leg (bytes as sent).
    pub fn relayed_from(&self, side: Side) -> Flow {
        self.relayed[side.index()]
    }

    /// Both directions together.
    pub fn relayed_total(&self) -> Flow {
        let [a, b] = self.relayed;
        Flow {
            packets: a.packets + b.packets,
            bytes: a.bytes + b.bytes,
        }
    }

    pub fn dropped(&self, reason: DropReason) -> u64 {
        self.dropped[reason.index()]
    }

    pub fn dropped_total(&self) -> u64 {
        self.dropped.iter().sum()
    }

    /// SRTP or SRTCP packets whose tag did not verify (also counted as
    /// [`DropReason::SrtpAuth`]).
    pub fn srtp_auth_failures(&self) -> u64 {
        self.srtp_auth_failures
    }

    pub(crate) fn count_relayed(&mut self, from: Side, bytes: usize) {
        let flow = &mut self.relayed[from.index()];
        flow.packets += 1;
        flow.bytes += bytes as u64;
    }

    pub(crate) fn count_drop(&mut self, reason: DropReason) {
        self.dropped[reason.index()] += 1;
        if reason == DropReason::SrtpAuth {
            self.srtp_auth_failures += 1;
        }
    }
}
