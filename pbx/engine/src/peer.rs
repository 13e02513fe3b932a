//! Where a message came from and where its answers go: the transport, the two addresses and
//! the stream connection, as the shell's transports report them.

use pbx_sip::message::Message;
use pbx_sip::transport::Transport;
use std::fmt;
use std::net::SocketAddr;

/// The shell's number for an open TCP/TLS/WebSocket connection.
pub type ConnId = u64;

/// The kind of transport a message came over or must leave by.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum TransportKind {
    #[default]
    Udp,
    Tcp,
    Tls,
    /// SIP over WebSocket (RFC 7118), plain or over TLS: the connection is the only way to
    /// the client (its Via and Contact name a `.invalid` host, §5.2).
    Ws,
    Wss,
}

impl TransportKind {
    /// The token in a Via header (RFC 3261 §20.42).
    pub fn via_token(self) -> &'static str {
        match self {
            TransportKind::Udp => "UDP",
            TransportKind::Tcp => "TCP",
            TransportKind::Tls => "TLS",
            // RFC 7118 §5.2.
            TransportKind::Ws => "WS",
            TransportKind::Wss => "WSS",
        }
    }

    /// Lower-case name, as in the config's listen schemes and the registration list.
    pub fn name(self) -> &'static str {
        match self {
            TransportKind::Udp => "udp",
            TransportKind::Tcp => "tcp",
            TransportKind::Tls => "tls",
            TransportKind::Ws => "ws",
            TransportKind::Wss => "wss",
        }
    }

    /// Reliable transports run no retransmission timers (RFC 3261 §17).
    pub fn is_reliable(self) -> bool {
        !matches!(self, TransportKind::Udp)
    }

    /// Signalling is encrypted (TLS, WebSocket over TLS).
    pub fn is_secure(self) -> bool {
        matches!(self, TransportKind::Tls | TransportKind::Wss)
    }

    /// A WebSocket: its client cannot be reached but over the connection it opened, so a
    /// binding made over one lives only as long as that connection (RFC 7118 §5).
    pub fn is_websocket(self) -> bool {
        matches!(self, TransportKind::Ws | TransportKind::Wss)
    }
}

impl From<TransportKind> for Transport {
    fn from(kind: TransportKind) -> Self {
        match kind {
            TransportKind::Udp => Transport::Udp,
            TransportKind::Tcp => Transport::Tcp,
            TransportKind::Tls => Transport::Tls,
            TransportKind::Ws => Transport::Ws,
            TransportKind::Wss => Transport::Wss,
        }
    }
}

impl TryFrom<Transport> for TransportKind {
    type Error = Transport;

    /// Every transport has a listener now; kept fallible for transports still to come.
    fn try_from(transport: Transport) -> Result<Self, Self::Error> {
        match transport {
            Transport::Udp => Ok(TransportKind::Udp),
            Transport::Tcp => Ok(TransportKind::Tcp),
            Transport::Tls => Ok(TransportKind::Tls),
            Transport::Ws => Ok(TransportKind::Ws),
            Transport::Wss => Ok(TransportKind::Wss),
        }
    }
}

impl fmt::Display for TransportKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Where a message came from, and so where its answers go.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Peer {
    pub kind: TransportKind,
    pub remote: SocketAddr,
    pub local: SocketAddr,
    /// The stream connection it arrived on (TCP/TLS/WebSocket).
    pub conn: Option<ConnId>,
}

/// One parsed message and where it came from.
pub struct Inbound {
    pub peer: Peer,
    pub message: Message,
}
