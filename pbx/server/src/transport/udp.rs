//! UDP: one receive loop per socket. Every datagram is one message (RFC 3261 §18.3).

use super::{Inbound, Peer, Shared, TransportKind, admitted, parse_inbound};
use bytes::Bytes;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::net::UdpSocket;

/// Socket buffers sized for bursts of thousands of requests per second.
const SOCKET_BUFFER: usize = 4 << 20;

/// The receive buffer for a `max_message_size` limit: one byte more, so that a datagram over
/// the limit fills it (the kernel truncates the rest) and is seen as oversized. With the
/// default limit (65535) no datagram can be over it: a UDP payload is at most 65507 bytes
/// over IPv4 and 65527 over IPv6.
pub fn recv_buffer_len(max_message_size: usize) -> usize {
    max_message_size.saturating_add(1)
}

/// Binds a UDP socket with large kernel buffers.
pub fn bind(addr: SocketAddr) -> io::Result<UdpSocket> {
    let domain = socket2::Domain::for_address(addr);
    let socket = socket2::Socket::new(domain, socket2::Type::DGRAM, Some(socket2::Protocol::UDP))?;
    if addr.is_ipv6() {
        socket.set_only_v6(true)?;
    }
    // Best effort: the kernel caps these at net.core.{r,w}mem_max.
    let _ = socket.set_recv_buffer_size(SOCKET_BUFFER);
    let _ = socket.set_send_buffer_size(SOCKET_BUFFER);
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    UdpSocket::from_std(socket.into())
}

/// The sending half the engine uses.
#[derive(Clone)]
pub struct UdpOut {
    pub local: SocketAddr,
    socket: Arc<UdpSocket>,
}

impl UdpOut {
    pub fn new(socket: Arc<UdpSocket>) -> io::Result<UdpOut> {
        Ok(UdpOut {
            local: socket.local_addr()?,
            socket,
        })
    }

    /// Sends without waiting; when the kernel buffer is full, finishes the send on a task.
    pub fn send(&self, to: SocketAddr, data: Bytes) -> io::Result<()> {
        match self.socket.try_send_to(&data, to) {
            Ok(_) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                let socket = self.socket.clone();
                tokio::spawn(async move {
                    if let Err(e) = socket.send_to(&data, to).await {
                        tracing::debug!(%to, error = %e, "UDP send failed");
                    }
                });
                Ok(())
            }
            Err(e) => Err(e),
        }
    }
}

/// Whether a datagram of `len` bytes (as received into [`recv_buffer_len`]) is within the
/// limit.
pub fn fits(len: usize, max_message_size: usize) -> bool {
    len <= max_message_size
}

/// Receives datagrams until the socket fails.
pub async fn run(socket: Arc<UdpSocket>, shared: Arc<Shared>) -> io::Result<()> {
    let local = socket.local_addr()?;
    let mut buf = vec![0u8; recv_buffer_len(shared.max_message_size)];
    loop {
        let (len, remote) = match socket.recv_from(&mut buf).await {
            Ok(received) => received,
            // ICMP port unreachable from an earlier send shows up here on some systems.
            Err(e) if e.kind() == io::ErrorKind::ConnectionReset => continue,
            Err(e) => return Err(e),
        };
        if !admitted(&shared, remote) {
            continue;
        }
        let Some(datagram) = buf.get(..len) else {
            continue;
        };
        if !fits(len, shared.max_message_size) {
            metrics::counter!("pbx_sip_dropped_total", "reason" => "oversized").increment(1);
            tracing::info!(%remote, len, "oversized UDP datagram dropped");
            continue;
        }
        // RFC 5626 §4.4.1: CRLF keep-alives over UDP carry no message.
        if datagram
            .iter()
            .all(|b| matches!(b, b'\r' | b'\n' | b' ' | b'\t' | 0))
        {
            continue;
        }
        let peer = Peer {
            kind: TransportKind::Udp,
            remote,
            local,
            conn: None,
        };
        let data = Bytes::copy_from_slice(datagram);
        shared.trace.inbound(&peer, &data);
        match parse_inbound(data, &peer) {
            Ok(message) => shared.sink.deliver(Inbound { peer, message }),
            Err(Some(answer)) => {
                shared.trace.outbound(&peer, &answer);
                let _ = socket.try_send_to(&answer, remote);
            }
            Err(None) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_datagram_over_the_limit_is_seen_as_oversized() {
        let max = 1500;
        let server = bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let client = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let to = server.local_addr().unwrap();
        let mut buf = vec![0u8; recv_buffer_len(max)];
        for (size, ok) in [(max, true), (max + 1, false), (3000, false)] {
            client.send_to(&vec![b'x'; size], to).unwrap();
            let (len, _) = server.recv_from(&mut buf).await.unwrap();
            assert_eq!(fits(len, max), ok, "{size} bytes");
        }
    }
}
