//! SDP for a B2BUA that always anchors media (RFC 3264 offer/answer, RFC 4568 SDES).
//!
//! The PBX never forwards one leg's SDP to the other: every SDP it sends is its own, written
//! from scratch with its relay address (`c=`, `m=` port), its own `o=` line per leg, and its own
//! SRTP keys per leg. What crosses from one leg to the other is only the meaning: the audio
//! codecs (payload types remapped per leg), the direction (hold/resume), rtcp-mux, and whether
//! the offerer wanted SRTP. [`Negotiator`] holds that per-call state; the [`MediaPlan`] it
//! returns after each completed exchange tells the relay what to do.
//!
//! Only the first usable audio stream is bridged. Every other `m=` line (video, a second audio
//! stream, data channels) is offered on with port 0 and answered with port 0 in the same
//! position (RFC 3264 §6, §8.2). A WebRTC audio stream (`UDP/TLS/RTP/SAVPF`, [`crate::webrtc`]) is
//! usable when the negotiator has the PBX's DTLS fingerprint ([`Negotiator::with_webrtc`]):
//! the PBX answers it ICE-lite with DTLS-SRTP, and offers it to legs marked WebRTC.
//!
//! # Why our own SDP parser, not `ezk-sdp-types`
//!
//! ARCHITECTURE.md suggests `ezk-sdp-types` (0.6.1, evaluated here). It has typed `a=crypto`,
//! `a=rtcp`, `a=rtpmap`, `a=fmtp`, `rtcp-mux` and keeps unknown attributes, but it does not fit:
//!
//! - It is strict where a PBX must be tolerant: one attribute it fails to parse (an odd
//!   `a=rtpmap`, `a=rtcp`, `a=crypto`, `a=ssrc`, …) fails the whole description, so one
//!   phone's quirk becomes a failed call. RFC 4568 §6.1 wants an unusable `a=crypto` line
//!   skipped and the next one tried; we want the same for every attribute we do not need.
//! - It wants valid UTF-8 (`BytesStr`) for the whole body; `s=`/`i=` may carry other
//!   charsets (RFC 8866 §6.10).
//! - Its round trip of unknown attributes buys nothing here: a B2BUA that anchors media writes
//!   its own SDP and must not pass the other leg's attributes (ICE candidates, keys) through.
//! - It brings nom 7 and two internal ezk crates for ~10 fields we read.
//!
//! So [`parse`] is a small line reader (RFC 8866 §5) that keeps exactly what negotiation needs,
//! rejects only what makes the description meaningless (no `v=0`, a line that is not
//! `<letter>=`, an unreadable `m=` or `c=`), and never panics on any input.

mod codec;
mod crypto;
mod direction;
mod error;
mod negotiator;
mod opus_leg;
mod parse;
mod pending;
mod webrtc;
mod write;

pub use error::NegotiationError;
pub use negotiator::{LocalMedia, Negotiator};
pub use parse::{
    Connection, MediaDescription, ParseError, Rtcp, RtpMap, SessionDescription, WebRtcAttributes,
    parse,
};
pub use pending::FirstOffer;

use std::net::IpAddr;

/// The PBX's relay address for one leg: what it writes in `c=` and `m=` towards that leg.
/// RTCP is `rtp_port + 1` unless rtcp-mux is negotiated (RFC 3550 §11, RFC 5761).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LocalEndpoint {
    pub ip: IpAddr,
    pub rtp_port: u16,
}

/// An extension's `media_encryption` policy.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Encryption {
    /// SRTP on this leg or no call (488).
    Required,
    /// SRTP when the other leg has it (or this leg offers it), RTP otherwise.
    #[default]
    Optional,
    /// Plain RTP only: the PBX never offers SRTP to this leg and refuses an RTP/SAVP offer
    /// from it; `a=crypto` on an RTP/AVP offer ("best-effort SRTP") is ignored.
    Off,
}

/// How the PBX may talk media to one leg.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LegPolicy {
    pub encryption: Encryption,
    /// The leg's signaling runs over TLS, so SDES keys in its SDP are not in clear.
    pub secure_signaling: bool,
    /// Allow SDES keys in SDP over unencrypted signaling (RFC 4568 §8.3 says MUST NOT; some
    /// sites accept the risk on a trusted LAN).
    pub allow_keys_in_clear: bool,
}

impl LegPolicy {
    /// RFC 4568 §8.3: keys go only in SDP that is itself protected, unless the admin allowed it.
    pub(crate) fn keys_may_travel(&self) -> bool {
        self.secure_signaling || self.allow_keys_in_clear
    }
}
