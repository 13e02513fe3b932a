//! The endpoints a [`crate::session::MediaSession`] attaches to its legs. Each is a small
//! sans-IO machine: it takes the leg's received RTP (`on_rtp`), says when it next wants to
//! act (`poll_timeout`), acts when that time comes (`handle_timeout`) and, if it sends, hands
//! out packets (`poll_transmit`). The session composes them; none of them knows sockets,
//! addresses or SRTP, which belong to the leg.
//!
//! - [`relay`]: today's two-party bridge ([`crate::relay::Bridge`]) as the relay between the
//!   two legs of a session.
//! - [`player`]: sends frames of a [`player::FrameSource`] paced at its packetization interval.
//! - [`recorder`]: collects a leg's G.711 audio as 8 kHz PCM up to a length or a silence.
//! - [`dtmf`]: RFC 4733 telephone-events to digits, with a hook for in-band detection.
//! - [`dtmf_out`]: RFC 4733 events the PBX makes (keys another leg sent as SIP INFO), in
//!   place of the audio relayed to the leg.
//! - [`echo`]: a leg's own audio sent back to it.
//! - [`inband`]: in-band DTMF (the key tones inside G.711 audio), a Goertzel detector that
//!   plugs into that hook.

pub mod dtmf;
pub mod dtmf_out;
pub mod echo;
pub mod inband;
pub mod player;
pub mod recorder;
pub mod relay;
