//! The SIP transports a binding or a listener can use (RFC 3261 §18; WebSocket, RFC 7118).
//! Here rather than in the server so that the store, the config and the engine share one type.

use std::fmt;

/// A SIP transport, named as in the config's `listen` schemes and the registrations table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Transport {
    Udp,
    Tcp,
    Tls,
    Ws,
    Wss,
}

impl Transport {
    pub const ALL: [Transport; 5] = [
        Transport::Udp,
        Transport::Tcp,
        Transport::Tls,
        Transport::Ws,
        Transport::Wss,
    ];

    /// The scheme as written in the config (`udp`, `tcp`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            Transport::Udp => "udp",
            Transport::Tcp => "tcp",
            Transport::Tls => "tls",
            Transport::Ws => "ws",
            Transport::Wss => "wss",
        }
    }

    pub fn from_scheme(scheme: &str) -> Option<Transport> {
        Transport::ALL.into_iter().find(|t| t.as_str() == scheme)
    }

    /// Whether the transport runs over TLS (needs `[tls]`).
    pub fn is_secure(self) -> bool {
        matches!(self, Transport::Tls | Transport::Wss)
    }
}

impl fmt::Display for Transport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schemes_round_trip() {
        for t in Transport::ALL {
            assert_eq!(Transport::from_scheme(t.as_str()), Some(t));
            assert_eq!(t.to_string(), t.as_str());
        }
        assert_eq!(Transport::from_scheme("sctp"), None);
        assert!(Transport::Wss.is_secure() && !Transport::Tcp.is_secure());
    }
}
