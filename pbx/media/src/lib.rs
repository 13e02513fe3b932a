//! Sans-IO media for the PBX's B2BUA.
//!
//! - [`sdp`]: SDP parsing and the B2BUA's offer/answer (RFC 3264, RFC 4568 SDES): what the PBX
//!   offers each leg and answers, and the [`MediaPlan`] the relay applies.
//! - [`relay`]: the per-call RTP/RTCP bridge: latching (RFC 4961 symmetric RTP), payload type
//!   rewriting, SRTP (RFC 3711) decrypt/encrypt, counters and the media timeout.
//! - [`session`]: the media of one call as a sans-IO machine (datagrams, commands and time
//!   in; datagrams to send, events and the next deadline out), holding the [`endpoint`]s the
//!   PBX attaches to a leg: the relay to the other leg, a player, a recorder, a DTMF
//!   detector.
//! - [`webrtc`]: a browser's leg: ICE-lite, consent freshness and DTLS-SRTP on the leg's RTP
//!   socket, the keys handed to the relay's SRTP contexts.
//! - [`g711`]: µ-law and A-law; [`wav`]: prompt and message files.
//!
//! Nothing here touches a socket or a clock: the shell owns the sockets and passes `now` in.

pub mod endpoint;
pub mod g711;
pub mod relay;
mod rtp;
pub mod sdp;
pub mod session;
pub mod transcode;
mod types;
pub mod voice;
pub mod wav;
pub mod webrtc;

pub use transcode::Transcoding;
pub use types::{
    CryptoSuite, Direction, DtlsRole, Fingerprint, IceCredentials, LegPlan, MediaPlan,
    OutStreamPlan, Setup, Side, SrtpKey, SrtpPair, WebRtcPlan,
};
