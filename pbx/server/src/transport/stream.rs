//! TCP and TLS connections: Content-Length framing (RFC 3261 §18.3), RFC 5626 §3.5.1 CRLF
//! keep-alives, and a writer task per connection so replies and requests to a registered
//! contact reuse it.

use super::{Inbound, Peer, Shared, TransportKind, admitted, parse_inbound};
use bytes::{Bytes, BytesMut};
use pbx_sip::framing::{StreamItem, next_item};
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpListener;

/// A connection that sends nothing for this long is closed (phones refresh registrations or
/// send keep-alives far more often).
const IDLE_TIMEOUT: Duration = Duration::from_secs(3600);
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
        let _ = tcp.set_nodelay(true);
        let shared = shared.clone();
        match &tls {
            None => {
                tokio::spawn(serve(tcp, kind, local, remote, shared));
            }
            Some(acceptor) => {
                let acceptor = acceptor.clone();
                tokio::spawn(async move {
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

/// Reads framed messages from one connection until it closes, fails or idles out.
async fn serve<S>(
    stream: S,
    kind: TransportKind,
    local: SocketAddr,
    remote: SocketAddr,
    shared: Arc<Shared>,
) where
    S: AsyncRead + AsyncWrite + Send + 'static,
{
    let (mut reader, mut writer) = tokio::io::split(stream);
    let (conn, mut outgoing) = shared.connections.open(kind, remote);
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
    let mut buf = BytesMut::with_capacity(8192);
    'read: loop {
        let read = tokio::time::timeout(IDLE_TIMEOUT, reader.read_buf(&mut buf)).await;
        match read {
            Ok(Ok(0)) | Ok(Err(_)) | Err(_) => break,
            Ok(Ok(_)) => {}
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
                    if !admitted(&shared, remote) {
                        break 'read;
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
                Err(error) => {
                    // Framing is lost (no Content-Length, too large): the stream cannot be
                    // resynchronised, so the connection is closed (RFC 3261 §18.3).
                    metrics::counter!("pbx_sip_dropped_total", "reason" => "framing").increment(1);
                    tracing::info!(%remote, transport = %kind, %error, "closing connection");
                    break 'read;
                }
            }
        }
    }
    // Dropping the table's sender lets the writer flush what is queued, then shut down.
    shared.connections.close(conn);
    drop(writer_task);
}
