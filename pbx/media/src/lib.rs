//! Sans-IO media for the PBX's B2BUA.
//!
//! - [`sdp`]: SDP parsing and the B2BUA's offer/answer (RFC 3264, RFC 4568 SDES): what the PBX
//!   offers each leg and answers, and the [`MediaPlan`] the relay applies.
//! - [`relay`]: the per-call RTP/RTCP bridge: latching (RFC 4961 symmetric RTP), payload type
//!   rewriting, SRTP (RFC 3711) decrypt/encrypt, counters and the media timeout.
//!
//! Nothing here touches a socket or a clock: the shell owns the sockets and passes `now` in.

pub mod relay;
pub mod sdp;
mod types;

pub use types::{CryptoSuite, Direction, LegPlan, MediaPlan, Side, SrtpKey, SrtpPair};
