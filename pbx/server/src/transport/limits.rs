//! How long a TCP/TLS connection may stay open without doing its job: the deadlines that
//! close slow-loris senders and idle strangers (`[security]` in the config). The decision is
//! a pure function of the connection's history, so it is tested without sockets or clocks.

use std::time::{Duration, Instant};

/// A connection that sends nothing for this long is closed once it has authenticated (phones
/// refresh registrations or send keep-alives far more often).
pub const AUTHENTICATED_IDLE: Duration = Duration::from_secs(3600);

/// The idle limit of an authenticated connection: at least [`AUTHENTICATED_IDLE`], and longer
/// than the longest registration the registrar grants: nothing reaches a phone once its
/// connection is closed (its binding shows as unreachable), so a phone that only refreshes
/// its registration must never be cut off before its refresh is due.
pub fn authenticated_idle(max_expires: Duration) -> Duration {
    AUTHENTICATED_IDLE.max(max_expires + Duration::from_secs(60))
}

/// A connection the PBX opened (to a trunk) is closed after this long without a message
/// from the far end, unless a registration keeps it.
pub const OUTBOUND_IDLE: Duration = Duration::from_secs(300);

/// How often a kept outbound connection sends a CRLF keep-alive (RFC 5626 §4.4.1: about
/// every 95 to 120 s on TCP and TLS); the pong is a read, so a live flow never idles out.
pub const KEEPALIVE_EVERY: Duration = Duration::from_secs(100);

/// The limits every stream connection runs under.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StreamLimits {
    /// `[security] message_timeout`: a message must be complete (headers and body) this long
    /// after its first byte.
    pub message_timeout: Duration,
    /// `[security] unauthenticated_idle`: a connection that has carried no authenticated
    /// request is closed after this long without a SIP message (keep-alives do not count).
    pub unauthenticated_idle: Duration,
    /// Idle limit once a request on the connection passed digest authentication.
    pub authenticated_idle: Duration,
    /// `[security] max_connections_per_source`; 0 = no cap.
    pub max_connections_per_source: u32,
}

impl Default for StreamLimits {
    fn default() -> Self {
        StreamLimits {
            message_timeout: Duration::from_secs(10),
            unauthenticated_idle: Duration::from_secs(30),
            authenticated_idle: AUTHENTICATED_IDLE,
            max_connections_per_source: 128,
        }
    }
}

/// Why a connection is closed when its deadline passes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Expiry {
    /// A message started and did not complete in time (slow-loris).
    MessageTimeout,
    /// Nothing was authenticated on it and no message came for `unauthenticated_idle`.
    UnauthenticatedIdle,
    /// An authenticated connection sent nothing at all for `authenticated_idle`.
    Idle,
}

/// What the reader knows about its connection.
#[derive(Clone, Copy, Debug)]
pub struct Activity {
    /// The last time bytes arrived (keep-alives included).
    pub last_read: Instant,
    /// The last time a whole message arrived (or the connection opened).
    pub last_message: Instant,
    /// The first byte of the message now partly received, if any.
    pub message_started: Option<Instant>,
    /// Accepted: a request on it passed digest authentication. Outbound: a registration
    /// keeps it.
    pub authenticated: bool,
    /// The PBX opened it (to a trunk): nothing on it is a stranger's.
    pub outbound: bool,
}

impl StreamLimits {
    /// When the connection is closed unless something changes first, and why.
    pub fn deadline(&self, activity: &Activity) -> (Instant, Expiry) {
        let idle = if activity.authenticated {
            (activity.last_read + self.authenticated_idle, Expiry::Idle)
        } else if activity.outbound {
            (activity.last_message + OUTBOUND_IDLE, Expiry::Idle)
        } else {
            (
                activity.last_message + self.unauthenticated_idle,
                Expiry::UnauthenticatedIdle,
            )
        };
        match activity.message_started {
            Some(started) => {
                let message = (started + self.message_timeout, Expiry::MessageTimeout);
                if message.0 <= idle.0 { message } else { idle }
            }
            None => idle,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> StreamLimits {
        StreamLimits {
            message_timeout: Duration::from_secs(10),
            unauthenticated_idle: Duration::from_secs(30),
            authenticated_idle: Duration::from_secs(3600),
            max_connections_per_source: 4,
        }
    }

    #[test]
    fn a_connection_outlasts_the_longest_registration() {
        assert_eq!(
            authenticated_idle(Duration::from_secs(600)),
            AUTHENTICATED_IDLE
        );
        assert_eq!(
            authenticated_idle(Duration::from_secs(7200)),
            Duration::from_secs(7260)
        );
    }

    #[test]
    fn a_stranger_idles_out_from_its_last_message_keep_alives_or_not() {
        let t0 = Instant::now();
        let activity = Activity {
            last_read: t0 + Duration::from_secs(25),
            last_message: t0,
            message_started: None,
            authenticated: false,
            outbound: false,
        };
        assert_eq!(
            limits().deadline(&activity),
            (t0 + Duration::from_secs(30), Expiry::UnauthenticatedIdle)
        );
    }

    #[test]
    fn an_authenticated_connection_idles_out_from_its_last_byte() {
        let t0 = Instant::now();
        let activity = Activity {
            last_read: t0 + Duration::from_secs(25),
            last_message: t0,
            message_started: None,
            authenticated: true,
            outbound: false,
        };
        assert_eq!(
            limits().deadline(&activity),
            (t0 + Duration::from_secs(3625), Expiry::Idle)
        );
    }

    #[test]
    fn a_partial_message_must_complete_in_time_however_often_bytes_come() {
        let t0 = Instant::now();
        for authenticated in [false, true] {
            let activity = Activity {
                last_read: t0 + Duration::from_secs(9),
                last_message: t0,
                message_started: Some(t0 + Duration::from_secs(1)),
                authenticated,
                outbound: false,
            };
            assert_eq!(
                limits().deadline(&activity),
                (t0 + Duration::from_secs(11), Expiry::MessageTimeout)
            );
        }
        // A message timeout longer than the idle limit: the idle limit still applies.
        let long = StreamLimits {
            message_timeout: Duration::from_secs(60),
            ..limits()
        };
        let activity = Activity {
            last_read: t0,
            last_message: t0,
            message_started: Some(t0),
            authenticated: false,
            outbound: false,
        };
        assert_eq!(
            long.deadline(&activity),
            (t0 + Duration::from_secs(30), Expiry::UnauthenticatedIdle)
        );
    }

    #[test]
    fn an_outbound_connection_idles_out_unless_a_registration_keeps_it() {
        let t0 = Instant::now();
        let mut activity = Activity {
            last_read: t0 + Duration::from_secs(25),
            last_message: t0,
            message_started: None,
            authenticated: false,
            outbound: true,
        };
        assert_eq!(
            limits().deadline(&activity),
            (t0 + OUTBOUND_IDLE, Expiry::Idle),
            "not the stranger's short limit"
        );
        activity.authenticated = true;
        assert_eq!(
            limits().deadline(&activity),
            (t0 + Duration::from_secs(3625), Expiry::Idle),
            "kept: idles out only when even keep-alives stop coming back"
        );
    }
}
