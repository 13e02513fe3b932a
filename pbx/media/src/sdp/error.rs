//! Why an offer or answer could not be used, and the SIP status that says so.

use super::parse::ParseError;
use crate::Side;

/// A failed negotiation. Policy errors name the leg whose policy refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum NegotiationError {
    /// The body is not SDP.
    #[error("malformed SDP: {0}")]
    Malformed(#[from] ParseError),
    /// No audio stream on a profile the relay bridges (RTP/AVP(F), RTP/SAVP(F)).
    #[error("no usable audio stream")]
    NoAudio,
    /// The two legs share no voice codec (telephone-event and CN alone do not count).
    #[error("no common codec")]
    NoCommonCodec,
    /// The leg's policy requires SRTP and its SDP has none.
    #[error("SRTP required for the {0:?} leg")]
    EncryptionRequired(Side),
    /// The leg's policy is plain RTP only and it offered RTP/SAVP.
    #[error("SRTP disabled for the {0:?} leg")]
    EncryptionDisabled(Side),
    /// RTP/SAVP without an `a=crypto` line the PBX can use (RFC 4568 §6.1), or an answer whose
    /// `a=crypto` matches none the PBX offered.
    #[error("no acceptable crypto from the {0:?} leg")]
    NoAcceptableCrypto(Side),
    /// SRTP is needed on a leg whose signaling is not TLS and keys may not travel in clear
    /// (RFC 4568 §8.3).
    #[error("SRTP keys would be sent in clear to the {0:?} leg")]
    KeysInClear(Side),
    /// A WebRTC leg answered without usable ICE credentials and fingerprint (RFC 8122 §5).
    #[error("no usable DTLS-SRTP from the {0:?} leg")]
    NoDtls(Side),
    /// An offer while another is outstanding (RFC 3264 §4).
    #[error("an offer is already pending")]
    OfferPending,
    /// An answer from a leg that was sent no offer.
    #[error("answer without a pending offer")]
    UnexpectedAnswer,
}

impl NegotiationError {
    /// The SIP status for the transaction that carried the SDP.
    pub fn status(&self) -> u16 {
        match self {
            NegotiationError::Malformed(_) => 400,
            NegotiationError::NoAudio
            | NegotiationError::NoCommonCodec
            | NegotiationError::EncryptionRequired(_)
            | NegotiationError::EncryptionDisabled(_)
            | NegotiationError::NoAcceptableCrypto(_)
            | NegotiationError::KeysInClear(_)
            | NegotiationError::NoDtls(_) => 488,
            // RFC 3261 §14.2: a re-INVITE while one is in progress gets 491.
            NegotiationError::OfferPending => 491,
            NegotiationError::UnexpectedAnswer => 500,
        }
    }

    /// A short reason phrase or `Warning` text (no key material, no leg detail).
    pub fn reason(&self) -> &'static str {
        match self {
            NegotiationError::Malformed(_) => "Malformed SDP",
            NegotiationError::NoAudio => "No audio stream",
            NegotiationError::NoCommonCodec => "Incompatible media format",
            NegotiationError::EncryptionRequired(_) => "SRTP required",
            NegotiationError::EncryptionDisabled(_) => "SRTP not allowed",
            NegotiationError::NoAcceptableCrypto(_) => "No acceptable crypto suite",
            NegotiationError::KeysInClear(_) => "SRTP requires TLS",
            NegotiationError::NoDtls(_) => "DTLS-SRTP required",
            NegotiationError::OfferPending => "Request Pending",
            NegotiationError::UnexpectedAnswer => "Unexpected SDP answer",
        }
    }
}
