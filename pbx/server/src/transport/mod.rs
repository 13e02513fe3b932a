//! The transports: UDP, TCP and TLS listeners (RFC 3261 §18), SIP over WebSocket (RFC 7118),
//! the table of open stream connections, and the one `send` the engine uses for every
//! outgoing message.
//!
//! Each listener parses what arrives exactly once and hands the message to the [`Sink`] (the
//! engine's dispatcher). Hostile input stops here: sources the [`Guard`] refuses are dropped
//! before parsing, oversized and unparsable input is dropped (or answered 400 when the
//! request was readable enough, RFC 3261 §21.4.1) with a log line and a counter.
//!
//! Every response the PBX puts on the wire is counted once, by its status class, with
//! [`count_response`]: by the engine as each leaves its transaction layer (provisional, final,
//! stateless and retransmitted alike), by [`parse_inbound`] for the transports' own answers to
//! unparsable requests.

pub mod conn;
pub mod limits;
pub mod stream;
pub mod tls;
pub mod udp;
pub mod ws;

use crate::security::{Guard, Verdict};
use bytes::Bytes;
use pbx_sip::message::Message;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

pub use conn::Connections;
/// One function counts every response sent, the engine's and the transports' own.
pub use pbx_engine::count_response;
/// Where a message came from and its kind of transport: the engine's types.
pub use pbx_engine::{ConnId, Inbound, Peer, TransportKind};

/// Receives every parsed inbound message (implemented by the engine's dispatcher).
pub trait Sink: Send + Sync + 'static {
    fn deliver(&self, inbound: Inbound);

    /// A WebSocket connection closed: what was registered over it is unreachable now
    /// (RFC 7118 §5).
    fn flow_closed(&self, _conn: ConnId) {}
}

/// What every listener shares.
pub struct Shared {
    pub guard: Arc<Guard>,
    pub sink: Arc<dyn Sink>,
    pub connections: Arc<Connections>,
    pub max_message_size: usize,
    /// Sees every message in and out (the SIP trace and HEP export).
    pub trace: Arc<crate::trace::Tracer>,
    /// Deadlines and the per-source cap of stream connections.
    pub limits: limits::StreamLimits,
    /// Refused sources are noted here for the web admin.
    pub security_log: Arc<crate::security::events::SecurityLog>,
}

pub(crate) fn now_unix() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Asks the guard about a source; counts and reports false for a refused one.
pub(crate) fn admitted(shared: &Shared, remote: SocketAddr) -> bool {
    match shared.guard.check(remote.ip(), now_unix()) {
        Verdict::Pass => true,
        refused => {
            metrics::counter!("pbx_sip_dropped_total", "reason" => refused.drop_reason())
                .increment(1);
            // Banned sources were reported when banned; their drops are only counted.
            let kind = match refused {
                Verdict::NotAllowed => Some(crate::security::events::SecurityKind::AclRefused),
                Verdict::RateLimited => Some(crate::security::events::SecurityKind::RateLimited),
                Verdict::Pass | Verdict::Banned => None,
            };
            if let Some(kind) = kind {
                shared
                    .security_log
                    .push(now_unix(), kind, remote.ip(), "", "");
            }
            false
        }
    }
}

/// Parses one message. A readable-enough bad request gets its 400 (returned for the caller
/// to send); anything else unparsable is dropped with a log line and a counter.
pub(crate) fn parse_inbound(data: Bytes, peer: &Peer) -> Result<Message, Option<Bytes>> {
    match pbx_sip::parse::parse_message(data) {
        Ok(message) => Ok(message),
        Err(error) => {
            metrics::counter!("pbx_sip_dropped_total", "reason" => "unparsable").increment(1);
            tracing::info!(remote = %peer.remote, transport = %peer.kind, %error, "unparsable SIP message");
            Err(error.bad_request_response().map(|response| {
                // 400, or 505 for another SIP version (RFC 3261 §21.5.20): counted by its class.
                count_response(response.status);
                response.to_bytes()
            }))
        }
    }
}

/// Sends bytes to a peer: over its stream connection when it has one that is still open
/// (RFC 3261 §18.2.2: responses go back over the connection the request came on), else by UDP.
pub struct Sender {
    udp: Vec<udp::UdpOut>,
    connections: Arc<Connections>,
    trace: Arc<crate::trace::Tracer>,
}

#[derive(Debug, thiserror::Error)]
pub enum SendError {
    #[error("the connection to {0} is closed")]
    ConnectionClosed(SocketAddr),
    #[error("no UDP socket can reach {0}")]
    NoUdpSocket(SocketAddr),
    #[error("sending to {0} failed: {1}")]
    Io(SocketAddr, std::io::Error),
}

impl Sender {
    pub fn new(udp: Vec<udp::UdpOut>, connections: Arc<Connections>) -> Sender {
        let trace = Arc::new(crate::trace::Tracer::off());
        Sender {
            udp,
            connections,
            trace,
        }
    }

    /// Hands every message sent to the SIP trace.
    pub fn with_trace(mut self, trace: Arc<crate::trace::Tracer>) -> Sender {
        self.trace = trace;
        self
    }

    /// A request on stream connection `conn` passed digest authentication: the connection
    /// may idle as long as a registered phone's ([`limits::StreamLimits`]).
    pub fn mark_authenticated(&self, conn: ConnId) {
        self.connections.mark_authenticated(conn);
    }

    /// The local addresses of the UDP listeners (requests the PBX starts pick one).
    pub fn udp_locals(&self) -> Vec<SocketAddr> {
        self.udp.iter().map(|s| s.local).collect()
    }

    pub fn send(&self, peer: &Peer, data: Bytes) -> Result<(), SendError> {
        self.trace.outbound(peer, &data);
        match peer.kind {
            TransportKind::Udp => {
                let socket = self
                    .udp
                    .iter()
                    .find(|s| s.local == peer.local)
                    .or_else(|| {
                        self.udp
                            .iter()
                            .find(|s| s.local.is_ipv4() == peer.remote.is_ipv4())
                    })
                    .ok_or(SendError::NoUdpSocket(peer.remote))?;
                socket
                    .send(peer.remote, data)
                    .map_err(|e| SendError::Io(peer.remote, e))
            }
            // RFC 7118 §5.2: a WebSocket client is reached over its connection, never by the
            // (often `.invalid`) host of its Via or Contact.
            TransportKind::Tcp | TransportKind::Tls | TransportKind::Ws | TransportKind::Wss => {
                let conn = match peer.conn {
                    Some(id) if self.connections.is_open(id) => id,
                    _ => self
                        .connections
                        .find(peer.kind, peer.remote)
                        .ok_or(SendError::ConnectionClosed(peer.remote))?,
                };
                if self.connections.send(conn, data) {
                    Ok(())
                } else {
                    Err(SendError::ConnectionClosed(peer.remote))
                }
            }
        }
    }
}
