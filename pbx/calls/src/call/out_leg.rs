//! What a trunk's branch carries besides a device's: its From, To and headers, the trunk's
//! credentials, and whether it was heard from within its setup time. Below both the forks
//! (which hold it) and the trunk leg (which fills it in).

use pbx_sip::header::NameAddr;
use pbx_sip::message::HeaderName;
use std::fmt;
use std::time::{Duration, Instant};

/// A trunk's digest account.
#[derive(Clone)]
pub struct TrunkCredentials {
    pub username: String,
    pub password: String,
}

// Hand-written so that the password never reaches a log through `{:?}`.
impl fmt::Debug for TrunkCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TrunkCredentials")
            .field("username", &self.username)
            .finish_non_exhaustive()
    }
}

/// A fork's trunk part: how its INVITE differs from a device's, and its progress.
#[derive(Clone, Debug)]
pub(super) struct OutLeg {
    pub(super) from: NameAddr,
    pub(super) to: NameAddr,
    pub(super) headers: Vec<(HeaderName, String)>,
    pub(super) credentials: Option<TrunkCredentials>,
    /// Credentials were sent once: a second challenge is a failure.
    pub(super) answered_challenge: bool,
    /// When the branch fails unless something was heard.
    pub(super) setup_by: Instant,
    /// A provisional response (100 included) arrived.
    pub(super) heard: bool,
    /// The trunk's setup time, for a later INVITE of the branch (the plain re-offer).
    pub(super) setup_timeout: Duration,
    /// The caller's payload types the trunk is offered (`None`: all agreed ones).
    pub(super) only: Option<Vec<u8>>,
}

impl OutLeg {
    /// The branch's part for a new INVITE sent at `now` (the plain re-offer after a refused
    /// SRTP one): its own setup time, and its own challenge to answer.
    pub(super) fn renewed(&self, now: Instant) -> OutLeg {
        OutLeg {
            answered_challenge: false,
            setup_by: now + self.setup_timeout,
            heard: false,
            ..self.clone()
        }
    }
}

/// Notes that a trunk's branch was heard from (a 100 counts); nothing for a device's.
pub(super) fn mark_heard(out: Option<&mut Box<OutLeg>>) {
    if let Some(out) = out {
        out.heard = true;
    }
}
