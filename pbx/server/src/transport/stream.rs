//! TCP and TLS connections: Content-Length framing (RFC 3261 §18.3), RFC 5626 §3.5.1 CRLF
//! keep-alives, and a writer task per connection so replies and requests to a registered
//! contact reuse it. A connection is closed when its bytes cannot be SIP, when a message
//! does not complete in time, when it idles (strangers sooner), and the accept loop caps
//! connections per source address ([`super::limits`]).

use super::limits::{Activity, Expiry, KEEPALIVE_EVERY};
use super::{Inbound, Peer, Shared, TransportKind, admitted, conn::Opened, parse_inbound};
use bytes::{Bytes, BytesMut};
use pbx_sip::framing::{FramingError, StreamItem, next_item};
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpListener;

const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Accepts TCP (or, with an acceptor, TLS) connections until the listener fails.
pub async fn accept_loop(
    listener: TcpListener,
    kind: TransportKind,
    tls: Option<tokio_rustls::TlsAcceptor>,
    shared: Arc<Shared>,
) -> io::Result<()> {
    let local = listener.local_addr()?;
    loop {
        let (tcp, remote) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(e) => {
                // Out of descriptors and the like: back off instead of spinning.
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        if !admitted(&shared, remote) {
            continue;
        }
        let cap = shared.limits.max_connections_per_source;
        let Some(claim) = shared.connections.claim_source(remote.ip(), cap) else {
            // Dropping the stream closes it before anything is read.
            metrics::counter!("pbx_sip_dropped_total", "reason" => "connection_limit").increment(1);
            tracing::debug!(%remote, transport = %kind, cap, "too many connections from this address, refused");
            continue;
        };
        let _ = tcp.set_nodelay(true);
        let shared = shared.clone();
        match &tls {
            None => {
                tokio::spawn(async move {
                    serve(tcp, kind, local, remote, shared).await;
                    drop(claim);
                });
            }
            Some(acceptor) => {
                let acceptor = acceptor.clone();
                tokio::spawn(async move {
                    let _claim = claim;
                    match tokio::time::timeout(TLS_HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
                        Ok(Ok(stream)) => serve(stream, kind, local, remote, shared).await,
                        Ok(Err(e)) => {
                            metrics::counter!("pbx_sip_dropped_total", "reason" => "tls_handshake")
                                .increment(1);
                            tracing::info!(%remote, error = %e, "TLS handshake failed");
                        }
                        Err(_) => tracing::info!(%remote, "TLS handshake timed out"),
                    }
                });
            }
        }
    }
}

/// Why the reader stopped.
enum Closed {
    /// The peer closed it or the socket failed.
    ByPeer,
    /// A deadline of [`super::limits::StreamLimits`] passed.
    Expired(Expiry),
    /// Framing was lost: garbage, no Content-Length, too large.
    Framing(FramingError),
    /// The source was banned or refused while the connection was open.
    Refused,
}

/// Reads framed messages from one accepted connection until it closes, fails, breaks a
/// limit or idles out.
async fn serve<S>(
    stream: S,
    kind: TransportKind,
    local: SocketAddr,
    remote: SocketAddr,
    shared: Arc<Shared>,
) where
    S: AsyncRead + AsyncWrite + Send + 'static,
{
    let opened = shared.connections.open(kind, remote);
    serve_opened(stream, opened, Side::Accepted, kind, local, remote, shared).await;
}

/// Who opened a connection: the far end, or the PBX (to a trunk, [`super::outbound`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Side {
    Accepted,
    Outbound,
}

/// Serves a connection already in the table: its writer drains the queue (what was sent
/// while an outbound connection was connecting goes first, in order), its reader hands
/// every message to the sink, as for any connection.
pub(crate) async fn serve_opened<S>(
    stream: S,
    opened: Opened,
    side: Side,
    kind: TransportKind,
    local: SocketAddr,
    remote: SocketAddr,
    shared: Arc<Shared>,
) where
    S: AsyncRead + AsyncWrite + Send + 'static,
{
    let (mut reader, mut writer) = tokio::io::split(stream);
    let Opened {
        id: conn,
        mut outgoing,
        authenticated,
    } = opened;
    let writer_task = tokio::spawn(async move {
        while let Some(data) = outgoing.recv().await {
            if writer.write_all(&data).await.is_err() {
                break;
            }
        }
        let _ = writer.shutdown().await;
    });
    let peer = Peer {
        kind,
        remote,
        local,
        conn: Some(conn),
    };
    let opened = Instant::now();
    let mut activity = Activity {
        last_read: opened,
        last_message: opened,
        message_started: None,
        authenticated: false,
        outbound: side == Side::Outbound,
    };
    let mut buf = BytesMut::with_capacity(8192);
    // RFC 5626 §4.4.1: the PBX pings a kept outbound connection (a registration's flow).
    let mut next_ping = opened + KEEPALIVE_EVERY;
    let closed = 'read: loop {
        activity.authenticated = authenticated.load(Ordering::Relaxed);
        let (deadline, _) = shared.limits.deadline(&activity);
        let pings = activity.outbound && activity.authenticated;
        let wake = if pings {
            deadline.min(next_ping)
        } else {
            deadline
        };
        let read = tokio::time::timeout_at(wake.into(), reader.read_buf(&mut buf)).await;
        let now = Instant::now();
        match read {
            Err(_) if pings && now >= next_ping => {
                shared
                    .connections
                    .send(conn, Bytes::from_static(b"\r\n\r\n"));
                next_ping = now + KEEPALIVE_EVERY;
                continue;
            }
            Err(_) => {
                // The engine may have authenticated a request since the deadline was set.
                activity.authenticated = authenticated.load(Ordering::Relaxed);
                let (deadline, expiry) = shared.limits.deadline(&activity);
                if deadline > now {
                    continue;
                }
                break Closed::Expired(expiry);
            }
            Ok(Ok(0)) | Ok(Err(_)) => break Closed::ByPeer,
            Ok(Ok(_)) => activity.last_read = now,
        }
        loop {
            match next_item(&mut buf, shared.max_message_size) {
                Ok(None) => break,
                Ok(Some(StreamItem::Ping)) => {
                    // RFC 5626 §3.5.1: answer a double-CRLF ping with a single-CRLF pong.
                    shared.connections.send(conn, Bytes::from_static(b"\r\n"));
                }
                Ok(Some(StreamItem::Pong)) => {}
                Ok(Some(StreamItem::Message(data))) => {
                    activity.last_message = now;
                    // What is left starts with this read, not with the message just taken.
                    activity.message_started = None;
                    // The PBX chose to open an outbound connection: its answers are not a
                    // stranger's to screen.
                    if side == Side::Accepted && !admitted(&shared, remote) {
                        break 'read Closed::Refused;
                    }
                    shared.trace.inbound(&peer, &data);
                    match parse_inbound(data, &peer) {
                        Ok(message) => shared.sink.deliver(Inbound {
                            peer: peer.clone(),
                            message,
                        }),
                        Err(Some(answer)) => {
                            shared.trace.outbound(&peer, &answer);
                            shared.connections.send(conn, answer);
                        }
                        Err(None) => {}
                    }
                }
                // Framing is lost (garbage, no Content-Length, too large): the stream cannot
                // be resynchronised, so the connection is closed (RFC 3261 §18.3).
                Err(error) => break 'read Closed::Framing(error),
            }
        }
        // The clock of a message starts with its first byte; CRLFs between messages are
        // keep-alives, not a message.
        if buf.iter().all(|b| matches!(b, b'\r' | b'\n')) {
            activity.message_started = None;
        } else if activity.message_started.is_none() {
            activity.message_started = Some(now);
        }
    };
    report(&closed, remote, kind, buf.len());
    // Dropping the table's sender lets the writer flush what is queued, then shut down.
    shared.connections.close(conn);
    drop(writer_task);
}

/// The drop-counter reason for a closing connection, if it dropped input.
fn drop_reason(closed: &Closed) -> Option<&'static str> {
    match closed {
        Closed::Framing(FramingError::NotSip) => Some("garbage"),
        Closed::Framing(FramingError::TooLarge) => Some("oversized"),
        Closed::Framing(_) => Some("framing"),
        Closed::Expired(Expiry::MessageTimeout) => Some("message_timeout"),
        // Idle connections and refused sources drop nothing that is not already counted.
        Closed::Expired(_) | Closed::ByPeer | Closed::Refused => None,
    }
}

/// One counter and one log line per connection closed by the PBX.
fn report(closed: &Closed, remote: SocketAddr, kind: TransportKind, pending: usize) {
    if let Some(reason) = drop_reason(closed) {
        metrics::counter!("pbx_sip_dropped_total", "reason" => reason).increment(1);
    }
    match closed {
        Closed::ByPeer | Closed::Refused => {}
        Closed::Framing(error) => {
            tracing::info!(%remote, transport = %kind, %error, "closing connection")
        }
        Closed::Expired(Expiry::MessageTimeout) => tracing::info!(
            %remote, transport = %kind, received = pending,
            "closing connection: message not complete in time"
        ),
        Closed::Expired(Expiry::UnauthenticatedIdle) => tracing::info!(
            %remote, transport = %kind,
            "closing idle connection that authenticated no request"
        ),
        Closed::Expired(Expiry::Idle) => {
            tracing::debug!(%remote, transport = %kind, "closing idle connection")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_way_of_closing_has_its_reason() {
        let reason = |c| drop_reason(&c);
        assert_eq!(
            reason(Closed::Framing(FramingError::NotSip)),
            Some("garbage")
        );
        assert_eq!(
            reason(Closed::Framing(FramingError::TooLarge)),
            Some("oversized")
        );
        assert_eq!(
            reason(Closed::Framing(FramingError::MissingContentLength)),
            Some("framing")
        );
        assert_eq!(
            reason(Closed::Expired(Expiry::MessageTimeout)),
            Some("message_timeout")
        );
        assert_eq!(reason(Closed::Expired(Expiry::UnauthenticatedIdle)), None);
        assert_eq!(reason(Closed::ByPeer), None);
    }
}
