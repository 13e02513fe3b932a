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
pub mod outbound;
pub mod stream;
pub mod tls;
pub mod tls_client;
pub mod udp;
pub mod ws;

use crate::security::{Guard, Verdict};
use bytes::Bytes;
use pbx_sip::message::Message;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

pub use conn::{Connections, OnFailure};
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
/// A request the PBX starts over TCP or TLS to an address no connection reaches opens one
/// ([`outbound`]).
pub struct Sender {
    udp: Vec<udp::UdpOut>,
    connections: Arc<Connections>,
    trace: Arc<crate::trace::Tracer>,
    dialer: Arc<outbound::Dialer>,
    /// The TCP and TLS listeners' addresses (Via and Contact of requests sent over a
    /// connection the PBX opens name them).
    stream_locals: Vec<(TransportKind, SocketAddr)>,
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
            trace,
            dialer: Arc::new(outbound::Dialer::new(
                tls_client::TlsClients::new(None),
                connections.clone(),
            )),
            stream_locals: Vec::new(),
            connections,
        }
    }

    /// Outbound connections: the TCP/TLS listeners' addresses and how TLS servers are
    /// checked (`[sip] tls_ca_file`).
    pub fn with_outbound(
        mut self,
        stream_locals: Vec<(TransportKind, SocketAddr)>,
        tls: tls_client::TlsClients,
    ) -> Sender {
        self.stream_locals = stream_locals;
        self.dialer = Arc::new(outbound::Dialer::new(tls, self.connections.clone()));
        self
    }

    /// Outbound connections are served like accepted ones: this is what they share.
    pub fn attach(&self, shared: Arc<Shared>) {
        self.dialer.attach(shared);
    }

    /// How each TLS address is checked (the trunks' names, CA files, verification).
    pub fn set_tls_targets(
        &self,
        targets: std::collections::HashMap<SocketAddr, tls_client::TlsTarget>,
    ) {
        self.dialer.set_tls_targets(targets);
    }

    /// The PBX's listener of `kind` (TCP or TLS) of `remote`'s address family, for the Via
    /// and Contact of requests sent over a connection it opens.
    pub fn stream_local(&self, kind: TransportKind, remote: SocketAddr) -> Option<SocketAddr> {
        self.stream_locals
            .iter()
            .find(|(k, l)| *k == kind && l.is_ipv4() == remote.is_ipv4())
            .map(|(_, l)| *l)
    }

    /// A registration uses the connection to `remote`: it is kept open (with RFC 5626
    /// keep-alives) instead of idling out. False when there is none.
    pub fn keep(&self, kind: TransportKind, remote: SocketAddr) -> bool {
        self.connections
            .find(kind, remote)
            .is_some_and(|id| self.connections.mark_authenticated(id))
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
        self.send_reporting(peer, data, None)
    }

    /// As [`Sender::send`]. When the message waits for an outbound connection to be made,
    /// `on_failure` is called if the connect fails (an error is returned at once for
    /// everything known to fail now).
    pub fn send_reporting(
        &self,
        peer: &Peer,
        data: Bytes,
        on_failure: Option<OnFailure>,
    ) -> Result<(), SendError> {
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
                let closed = || SendError::ConnectionClosed(peer.remote);
                match self.connections.route(peer.kind, peer.remote, peer.conn) {
                    conn::Route::Existing(id) => {
                        if self.connections.send_reporting(id, data, on_failure) {
                            Ok(())
                        } else {
                            Err(closed())
                        }
                    }
                    conn::Route::Connect(opened) => {
                        let id = opened.id;
                        let queued = self.connections.send_reporting(id, data, on_failure);
                        if !queued {
                            // Told by the error returned, not by the callbacks.
                            drop(self.connections.connect_failed(id));
                            return Err(closed());
                        }
                        tracing::debug!(remote = %peer.remote, transport = %peer.kind, "connecting");
                        self.dialer
                            .spawn(opened, peer.kind, peer.remote, peer.local);
                        Ok(())
                    }
                    conn::Route::Closed => Err(closed()),
                }
            }
        }
    }
}
