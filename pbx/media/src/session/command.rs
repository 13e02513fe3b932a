//! What the shell asks of a session, and why it may refuse.

use std::time::Duration;

use crate::Side;
use crate::endpoint::dtmf::DtmfSpec;
use crate::endpoint::dtmf_out::DtmfOutSpec;
use crate::endpoint::echo::EchoSpec;
use crate::endpoint::player::PlayerSpec;
use crate::endpoint::recorder::RecorderSpec;
use crate::relay::RelayError;

/// A command to a [`super::MediaSession`]. Attaching an endpoint where one of its kind is
/// already attached replaces it (the old one reports that it finished, as a stop does).
#[derive(Debug)]
pub enum Command {
    /// Connect the two legs to each other: what one sends goes to the other (a two-party
    /// call). A session has two legs, so there is nothing to name; more legs (a conference)
    /// would name them here.
    ConnectRelay,
    /// Stop relaying between the legs; each leg stays latched and keyed for the PBX's own
    /// endpoints.
    DisconnectRelay,
    /// Play to `side`, starting now.
    Play {
        side: Side,
        spec: PlayerSpec,
    },
    StopPlayer {
        side: Side,
    },
    /// Record what `side` sends, starting now.
    Record {
        side: Side,
        spec: RecorderSpec,
    },
    StopRecorder {
        side: Side,
    },
    /// Report the digits `side` sends.
    DetectDtmf {
        side: Side,
        spec: DtmfSpec,
    },
    /// As [`Command::DetectDtmf`] on a bridged call whose other leg takes keys as SIP INFO:
    /// the leg's telephone-events are reported and not relayed (the other leg would get
    /// each key twice).
    ConvertDtmf {
        side: Side,
        spec: DtmfSpec,
    },
    StopDtmf {
        side: Side,
    },
    /// Send `side` this key as RFC 4733 events (a key another leg sent as SIP INFO), in
    /// place of the audio relayed to it, after the keys already queued.
    SendDtmf {
        side: Side,
        digit: char,
        duration: Duration,
        spec: DtmfOutSpec,
    },
    /// Send what `side` sends back to it (the echo test).
    Echo {
        side: Side,
        spec: EchoSpec,
    },
    StopEcho {
        side: Side,
    },
}

/// A command or plan the session refused; nothing changed.
#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    #[error(transparent)]
    Relay(#[from] RelayError),
    #[error("packetization interval {0:?} is not between 10 ms and 200 ms")]
    Ptime(Duration),
    #[error("a recording needs a maximum length")]
    NoMaxLength,
    #[error("telephone-event clock rate 0")]
    ClockRate,
    #[error("`{0}` is not a DTMF key, or too many keys wait")]
    Digit(char),
}

impl Command {
    /// Checks what the endpoints cannot take.
    pub(crate) fn validate(&self) -> Result<(), SessionError> {
        match self {
            // RFC 3551 §4.2: frames of 10-200 ms are what receivers are expected to take.
            Command::Play { spec, .. }
                if !(Duration::from_millis(10)..=Duration::from_millis(200))
                    .contains(&spec.ptime) =>
            {
                Err(SessionError::Ptime(spec.ptime))
            }
            Command::Record { spec, .. } if spec.max_length.is_zero() => {
                Err(SessionError::NoMaxLength)
            }
            Command::DetectDtmf { spec, .. } | Command::ConvertDtmf { spec, .. }
                if spec.clock_rate == 0 =>
            {
                Err(SessionError::ClockRate)
            }
            Command::SendDtmf { spec, .. } if spec.clock_rate == 0 => Err(SessionError::ClockRate),
            Command::SendDtmf { digit, .. }
                if crate::endpoint::dtmf_out::event_of(*digit).is_none() =>
            {
                Err(SessionError::Digit(*digit))
            }
            _ => Ok(()),
        }
    }
}
