//! What a session hands back to the shell: datagrams to send, and events.

use std::net::SocketAddr;
use std::time::Duration;

use crate::Side;
use crate::endpoint::recorder::RecordingEnd;
use crate::relay::Component;

/// Send `buf[..len]` (the buffer given to `poll_transmit`) from `side`'s `component` socket
/// to `to`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[must_use]
pub struct Transmit {
    pub side: Side,
    pub component: Component,
    pub to: SocketAddr,
    pub len: usize,
}

/// Something that happened in a session.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// A DTMF key `side` pressed (RFC 4733 §3.2: `0`-`9`, `*`, `#`, `A`-`D`) and for how long.
    Dtmf {
        side: Side,
        digit: char,
        duration: Duration,
    },
    /// The player on `side` sent its last frame (or was stopped or replaced).
    PlayerFinished { side: Side },
    /// The recorder on `side` has [`RECORDER_CHUNK`] of audio (8 kHz mono linear PCM): the
    /// shell writes it out as it comes, so a crash loses at most about that much.
    ///
    /// [`RECORDER_CHUNK`]: crate::endpoint::recorder::RECORDER_CHUNK
    RecorderAudio { side: Side, pcm: Vec<i16> },
    /// The recorder on `side` ended; `pcm` is the audio not yet handed out in
    /// [`Event::RecorderAudio`] chunks (8 kHz mono linear PCM).
    RecorderFinished {
        side: Side,
        end: RecordingEnd,
        pcm: Vec<i16>,
    },
    /// No RTP from either leg for the session's RTP timeout, while not on hold: the call is
    /// dead (a phone lost power or network without hanging up). Once per session.
    MediaTimeout { idle: Duration },
    /// A WebRTC leg's DTLS failed, or the peer's certificate matched none of its SDP's
    /// fingerprints (RFC 8122 §5): the leg will never carry media.
    WebRtcFailed { side: Side, reason: String },
    /// A WebRTC leg sent no authenticated ICE check for 30 s (RFC 7675 §5.1): the browser is
    /// gone, and nothing more is sent to it.
    ConsentLost { side: Side },
    /// SRTP/SRTCP packets failed authentication (RFC 3711 §3.3 step 5); `total` since the
    /// session began. At most one such event per second.
    SrtpFailures { total: u64 },
}
