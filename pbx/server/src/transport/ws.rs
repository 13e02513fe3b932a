//! SIP over WebSocket (RFC 7118): the `ws:`/`wss:` listeners of `[sip] listen` and `/ws` on
//! the web listener share one upgrade handler and one connection loop.
//!
//! The upgrade needs the `sip` subprotocol (§4.1) and is refused to a source the guard
//! refuses (ban, ACL, rate) before anything else; per-source connection caps and the idle
//! limits are those of TCP ([`super::limits`]). Each WebSocket message carries exactly one SIP
//! message (§5.1): a frame that is not one whole message is dropped and counted. Text frames
//! are sent when the message is UTF-8, binary otherwise. The connection is the only way back
//! to the client (§5.2: its Via names a `.invalid` host), so it is registered in
//! [`super::Connections`] like a TCP flow, and what was registered over it goes when it closes.

use super::conn::{Opened, SourceClaim};
use super::limits::{Activity, Expiry};
use super::{Inbound, Peer, Shared, TransportKind, admitted, parse_inbound};
use axum::Router;
use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::ws::{Message, Utf8Bytes, WebSocket, WebSocketUpgrade};
use axum::extract::{ConnectInfo, Extension, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use bytes::{Bytes, BytesMut};
use futures_util::{SinkExt, StreamExt};
use pbx_sip::framing::{FramingError, StreamItem, next_item};
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;

/// The WebSocket subprotocol of SIP (RFC 7118 §4.1, IANA registry).
pub const SUBPROTOCOL: &str = "sip";

const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Whether the upgrade request offers the `sip` subprotocol (RFC 6455 §4.1: a comma-separated
/// list, possibly over several `Sec-WebSocket-Protocol` lines; names compare exactly, as the
/// browser checks the one echoed against those it offered).
pub fn offers_sip(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::SEC_WEBSOCKET_PROTOCOL)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|token| token.trim() == SUBPROTOCOL)
}

/// What one WebSocket message holds.
#[derive(Debug, PartialEq, Eq)]
pub enum Frame {
    /// Only CR/LF: a keep-alive some clients send (RFC 5626 §3.5.1 style); nothing to do.
    KeepAlive,
    /// Exactly one SIP message (leading CRLFs removed, RFC 3261 §7.5), for the parser.
    Message(Bytes),
    /// Not one whole SIP message: bytes that cannot start one, a body shorter than its
    /// Content-Length, or a second message after the first. Dropped (RFC 7118 §5.1).
    NotOneMessage,
}

/// Sorts a WebSocket message. Content-Length is optional here (the frame delimits the
/// message, RFC 7118 §5.1); when present it must account for every byte after the headers.
pub fn classify(data: Bytes, max_message_size: usize) -> Frame {
    let skip = data
        .iter()
        .take_while(|b| matches!(b, b'\r' | b'\n'))
        .count();
    if skip == data.len() {
        return Frame::KeepAlive;
    }
    let data = data.slice(skip..);
    let mut buf = BytesMut::from(&data[..]);
    match next_item(&mut buf, max_message_size) {
        Ok(Some(StreamItem::Message(message))) => {
            if buf.iter().all(|b| matches!(b, b'\r' | b'\n')) {
                Frame::Message(message)
            } else {
                Frame::NotOneMessage
            }
        }
        // The headers or the body end before the frame does.
        Ok(None) => Frame::NotOneMessage,
        // Leading CRLFs were skipped, so neither can come first.
        Ok(Some(StreamItem::Ping | StreamItem::Pong)) => Frame::NotOneMessage,
        Err(FramingError::NotSip) => Frame::NotOneMessage,
        // Without Content-Length the body runs to the end of the frame; a bad or doubled
        // Content-Length is the parser's to answer with a 400.
        Err(
            FramingError::MissingContentLength
            | FramingError::InvalidContentLength
            | FramingError::MultipleContentLength
            | FramingError::TooLarge,
        ) => Frame::Message(data),
    }
}

/// The listener a WebSocket came in on.
struct Listener {
    shared: Arc<Shared>,
    kind: TransportKind,
    local: SocketAddr,
}

/// The source's connection slot, taken by a `ws:`/`wss:` listener's accept loop before the
/// HTTP request was read; `/ws` on the web listener takes it in the handler.
#[derive(Clone)]
struct Claimed(Arc<Mutex<Option<SourceClaim>>>);

/// `/ws` for the web listener (plain: `ws`, HTTPS: `wss`), merged into its router.
pub fn route(shared: Arc<Shared>, kind: TransportKind, local: SocketAddr) -> Router {
    Router::new()
        .route("/ws", any(upgrade))
        .with_state(Arc::new(Listener {
            shared,
            kind,
            local,
        }))
}

/// Why an upgrade is refused, with its HTTP status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("forbidden")]
    Guard,
    #[error("SIP over WebSocket needs the `sip` subprotocol (RFC 7118 §4.1)")]
    NoSubprotocol,
    #[error("too many connections from this address")]
    ConnectionLimit,
}

impl Refusal {
    pub fn status(self) -> StatusCode {
        match self {
            Refusal::Guard => StatusCode::FORBIDDEN,
            Refusal::NoSubprotocol => StatusCode::BAD_REQUEST,
            Refusal::ConnectionLimit => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    fn drop_reason(self) -> Option<&'static str> {
        match self {
            // The guard counted it.
            Refusal::Guard => None,
            Refusal::NoSubprotocol => Some("ws_subprotocol"),
            Refusal::ConnectionLimit => Some("connection_limit"),
        }
    }
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        if let Some(reason) = self.drop_reason() {
            metrics::counter!("pbx_sip_dropped_total", "reason" => reason).increment(1);
        }
        (self.status(), format!("{self}\n")).into_response()
    }
}

async fn upgrade(
    State(listener): State<Arc<Listener>>,
    ConnectInfo(remote): ConnectInfo<SocketAddr>,
    claimed: Option<Extension<Claimed>>,
    headers: HeaderMap,
    ws: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Response {
    // A refused source learns nothing else, not even whether this is a WebSocket endpoint.
    if !admitted(&listener.shared, remote) {
        return Refusal::Guard.into_response();
    }
    let ws = match ws {
        Ok(ws) => ws,
        Err(rejection) => return rejection.into_response(),
    };
    if !offers_sip(&headers) {
        tracing::info!(%remote, transport = %listener.kind, "WebSocket upgrade without the sip subprotocol refused");
        return Refusal::NoSubprotocol.into_response();
    }
    let claim = match claimed {
        Some(Extension(Claimed(slot))) => slot.lock().unwrap_or_else(|e| e.into_inner()).take(),
        None => listener.shared.connections.claim_source(
            remote.ip(),
            listener.shared.limits.max_connections_per_source,
        ),
    };
    let Some(claim) = claim else {
        tracing::debug!(%remote, transport = %listener.kind, "too many connections from this address, upgrade refused");
        return Refusal::ConnectionLimit.into_response();
    };
    let shared = listener.shared.clone();
    let (kind, local) = (listener.kind, listener.local);
    let max = shared.max_message_size;
    let mut ws = ws.max_message_size(max).max_frame_size(max);
    ws.set_selected_protocol(HeaderValue::from_static(SUBPROTOCOL));
    ws.on_failed_upgrade(move |error| {
        tracing::debug!(%remote, %error, "WebSocket upgrade failed");
    })
    .on_upgrade(move |socket| async move {
        serve(socket, kind, local, remote, shared).await;
        drop(claim);
    })
}

/// Accepts `ws:` (or, with an acceptor, `wss:`) connections of `[sip] listen` until the
/// listener fails: the guard and the per-source cap first, then TLS, then one HTTP request
/// that must be the upgrade.
pub async fn accept_loop(
    listener: TcpListener,
    kind: TransportKind,
    tls: Option<tokio_rustls::TlsAcceptor>,
    shared: Arc<Shared>,
) -> io::Result<()> {
    let local = listener.local_addr()?;
    let header_timeout = shared.limits.message_timeout;
    let router = Router::new()
        .fallback(upgrade)
        .with_state(Arc::new(Listener {
            shared: shared.clone(),
            kind,
            local,
        }));
    loop {
        let (tcp, remote) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(e) => {
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
            metrics::counter!("pbx_sip_dropped_total", "reason" => "connection_limit").increment(1);
            tracing::debug!(%remote, transport = %kind, cap, "too many connections from this address, refused");
            continue;
        };
        let _ = tcp.set_nodelay(true);
        let router = router.clone();
        let tls = tls.clone();
        tokio::spawn(async move {
            match tls {
                None => serve_http(tcp, remote, router, claim, header_timeout).await,
                Some(acceptor) => {
                    match tokio::time::timeout(TLS_HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
                        Ok(Ok(stream)) => {
                            serve_http(stream, remote, router, claim, header_timeout).await
                        }
                        Ok(Err(e)) => {
                            metrics::counter!("pbx_sip_dropped_total", "reason" => "tls_handshake")
                                .increment(1);
                            tracing::info!(%remote, error = %e, "TLS handshake failed");
                        }
                        Err(_) => tracing::info!(%remote, "TLS handshake timed out"),
                    }
                }
            }
        });
    }
}

/// Serves HTTP/1.1 on one accepted connection until it is upgraded or closed; the request
/// head must arrive within `header_timeout` (`[security] message_timeout`).
async fn serve_http<S>(
    io: S,
    remote: SocketAddr,
    router: Router,
    claim: SourceClaim,
    header_timeout: Duration,
) where
    S: AsyncRead + AsyncWrite + Send + Unpin + 'static,
{
    let app = router
        .layer(Extension(Claimed(Arc::new(Mutex::new(Some(claim))))))
        .layer(Extension(ConnectInfo(remote)));
    let service = hyper_util::service::TowerToHyperService::new(app);
    let connection = hyper::server::conn::http1::Builder::new()
        .timer(hyper_util::rt::TokioTimer::new())
        .header_read_timeout(header_timeout)
        .serve_connection(hyper_util::rt::TokioIo::new(io), service)
        .with_upgrades();
    if let Err(error) = connection.await {
        tracing::debug!(%remote, %error, "WebSocket listener: HTTP connection ended");
    }
}

/// Why the reader stopped.
enum Closed {
    ByPeer,
    Expired(Expiry),
    /// The WebSocket layer failed: a message over the size limit, a protocol violation.
    Socket(axum::Error),
    /// The source was banned or refused while the connection was open.
    Refused,
}

/// Reads SIP messages from one WebSocket until it closes, fails, breaks a limit or idles out.
async fn serve(
    socket: WebSocket,
    kind: TransportKind,
    local: SocketAddr,
    remote: SocketAddr,
    shared: Arc<Shared>,
) {
    let (mut sink, mut stream) = socket.split();
    let Opened {
        id: conn,
        mut outgoing,
        authenticated,
    } = shared.connections.open(kind, remote);
    tokio::spawn(async move {
        while let Some(data) = outgoing.recv().await {
            // RFC 7118 §5.1: text frames carry UTF-8, anything else goes binary.
            let message = match Utf8Bytes::try_from(data.clone()) {
                Ok(text) => Message::Text(text),
                Err(_) => Message::Binary(data),
            };
            if sink.send(message).await.is_err() {
                break;
            }
        }
        let _ = sink.close().await;
    });
    let peer = Peer {
        kind,
        remote,
        local,
        conn: Some(conn),
    };
    let opened = Instant::now();
    // A frame arrives whole or not at all, so no message is ever "started": a slow sender
    // is cut off by the idle limits.
    let mut activity = Activity {
        last_read: opened,
        last_message: opened,
        message_started: None,
        authenticated: false,
        outbound: false,
    };
    let closed = loop {
        activity.authenticated = authenticated.load(Ordering::Relaxed);
        let (deadline, _) = shared.limits.deadline(&activity);
        let next = tokio::time::timeout_at(deadline.into(), stream.next()).await;
        let now = Instant::now();
        let message = match next {
            Err(_) => {
                activity.authenticated = authenticated.load(Ordering::Relaxed);
                let (deadline, expiry) = shared.limits.deadline(&activity);
                if deadline > now {
                    continue;
                }
                break Closed::Expired(expiry);
            }
            Ok(None) => break Closed::ByPeer,
            Ok(Some(Err(error))) => break Closed::Socket(error),
            Ok(Some(Ok(message))) => message,
        };
        activity.last_read = now;
        let data = match message {
            Message::Text(text) => Bytes::from(text),
            Message::Binary(data) => data,
            // Pings are answered by the WebSocket layer.
            Message::Ping(_) | Message::Pong(_) => continue,
            Message::Close(_) => break Closed::ByPeer,
        };
        match classify(data, shared.max_message_size) {
            Frame::KeepAlive => {}
            Frame::NotOneMessage => {
                metrics::counter!("pbx_sip_dropped_total", "reason" => "ws_frame").increment(1);
                tracing::info!(%remote, transport = %kind, "WebSocket frame that is not one SIP message dropped");
            }
            Frame::Message(data) => {
                activity.last_message = now;
                if !admitted(&shared, remote) {
                    break Closed::Refused;
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
        }
    };
    report(&closed, remote, kind);
    // Dropping the table's sender lets the writer flush what is queued, then close.
    shared.connections.close(conn);
    shared.sink.flow_closed(conn);
}

/// The drop-counter reason for a WebSocket error.
fn socket_drop_reason(error: &(dyn std::error::Error + 'static)) -> &'static str {
    match error.downcast_ref::<tungstenite::Error>() {
        Some(tungstenite::Error::Capacity(_)) => "oversized",
        Some(
            tungstenite::Error::ConnectionClosed
            | tungstenite::Error::AlreadyClosed
            | tungstenite::Error::Io(_),
        ) => "",
        _ => "ws_protocol",
    }
}

/// One counter and one log line per connection closed by the PBX.
fn report(closed: &Closed, remote: SocketAddr, kind: TransportKind) {
    match closed {
        Closed::ByPeer | Closed::Refused => {}
        Closed::Socket(error) => {
            let inner = std::error::Error::source(error);
            let reason = inner.map_or("ws_protocol", socket_drop_reason);
            if !reason.is_empty() {
                metrics::counter!("pbx_sip_dropped_total", "reason" => reason).increment(1);
                tracing::info!(%remote, transport = %kind, %error, "closing WebSocket");
            }
        }
        Closed::Expired(Expiry::UnauthenticatedIdle) => tracing::info!(
            %remote, transport = %kind,
            "closing idle WebSocket that authenticated no request"
        ),
        Closed::Expired(_) => {
            tracing::debug!(%remote, transport = %kind, "closing idle WebSocket")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const REGISTER: &str = "REGISTER sip:pbx.test SIP/2.0\r\n\
        Via: SIP/2.0/WS df7jal23ls0d.invalid;branch=z9hG4bK1\r\n\
        From: <sip:1000@pbx.test>;tag=a\r\nTo: <sip:1000@pbx.test>\r\nCall-ID: c1\r\n\
        CSeq: 1 REGISTER\r\nContact: <sip:x@df7jal23ls0d.invalid;transport=ws>\r\n\
        Max-Forwards: 70\r\n";

    fn frame(text: &str) -> Frame {
        classify(Bytes::from(text.to_string()), 65535)
    }

    #[test]
    fn one_message_per_frame_with_or_without_content_length() {
        let with = format!("{REGISTER}Content-Length: 0\r\n\r\n");
        assert_eq!(frame(&with), Frame::Message(Bytes::from(with.clone())));
        let without = format!("{REGISTER}\r\n");
        assert_eq!(
            frame(&without),
            Frame::Message(Bytes::from(without.clone()))
        );
        let body = format!("{REGISTER}Content-Length: 4\r\n\r\nabcd");
        assert_eq!(frame(&body), Frame::Message(Bytes::from(body.clone())));
        // Leading CRLFs are skipped (RFC 3261 §7.5), a trailing CRLF is harmless.
        let padded = format!("\r\n{with}\r\n");
        assert_eq!(frame(&padded), Frame::Message(Bytes::from(with)));
    }

    #[test]
    fn a_frame_that_is_not_one_whole_message_is_refused() {
        let one = format!("{REGISTER}Content-Length: 0\r\n\r\n");
        assert_eq!(frame(&format!("{one}{one}")), Frame::NotOneMessage);
        assert_eq!(
            frame(&format!("{REGISTER}Content-Length: 10\r\n\r\nabc")),
            Frame::NotOneMessage,
            "body shorter than its Content-Length"
        );
        assert_eq!(
            frame(&format!("{REGISTER}Content-Length: 1\r\n\r\nabc")),
            Frame::NotOneMessage,
            "bytes after the body"
        );
        assert_eq!(frame("\u{1}\u{2}binary junk"), Frame::NotOneMessage);
        assert_eq!(frame("\r\n\r\n"), Frame::KeepAlive);
        assert_eq!(frame(""), Frame::KeepAlive);
    }

    #[test]
    fn a_bad_content_length_goes_to_the_parser_for_its_400() {
        let bad = format!("{REGISTER}Content-Length: x\r\n\r\n");
        assert_eq!(frame(&bad), Frame::Message(Bytes::from(bad.clone())));
    }

    #[test]
    fn the_sip_subprotocol_must_be_offered() {
        let offered = |values: &[&str]| {
            let mut headers = HeaderMap::new();
            for v in values {
                headers.append(header::SEC_WEBSOCKET_PROTOCOL, v.parse().unwrap());
            }
            offers_sip(&headers)
        };
        assert!(offered(&["sip"]));
        assert!(offered(&["chat, sip"]));
        assert!(offered(&["chat", " sip "]));
        assert!(!offered(&[]));
        assert!(!offered(&["chat"]));
        assert!(!offered(&["sips"]));
        assert!(!offered(&["SIP"]), "names compare exactly");
    }

    #[test]
    fn refusals_have_their_status() {
        assert_eq!(Refusal::Guard.status(), StatusCode::FORBIDDEN);
        assert_eq!(Refusal::NoSubprotocol.status(), StatusCode::BAD_REQUEST);
        assert_eq!(
            Refusal::ConnectionLimit.status(),
            StatusCode::SERVICE_UNAVAILABLE
        );
    }

    #[test]
    fn oversized_messages_are_counted_as_such() {
        let capacity =
            tungstenite::Error::Capacity(tungstenite::error::CapacityError::MessageTooLong {
                size: 70_000,
                max_size: 65_535,
            });
        assert_eq!(socket_drop_reason(&capacity), "oversized");
        let protocol = tungstenite::Error::Protocol(
            tungstenite::error::ProtocolError::UnmaskedFrameFromClient,
        );
        assert_eq!(socket_drop_reason(&protocol), "ws_protocol");
        assert_eq!(
            socket_drop_reason(&tungstenite::Error::ConnectionClosed),
            ""
        );
    }
}

/// The listener over real sockets: the upgrade refusals, one message in, one out, and the
/// flow's end reported.
#[cfg(test)]
mod socket_tests {
    use super::*;
    use crate::security::Guard;
    use crate::security::acl::Acl;
    use crate::security::rate::SourceRateLimit;
    use futures_util::{SinkExt, StreamExt};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio_tungstenite::tungstenite::Message as ClientMessage;
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;

    #[derive(Default)]
    struct Collect {
        inbound: Mutex<Vec<Peer>>,
        closed: Mutex<Vec<super::super::ConnId>>,
    }

    impl super::super::Sink for Collect {
        fn deliver(&self, inbound: Inbound) {
            self.inbound.lock().unwrap().push(inbound.peer);
        }
        fn flow_closed(&self, conn: super::super::ConnId) {
            self.closed.lock().unwrap().push(conn);
        }
    }

    async fn listener(deny: &str) -> (SocketAddr, Arc<Shared>, Arc<Collect>) {
        let deny = if deny.is_empty() {
            vec![]
        } else {
            vec![deny.parse().unwrap()]
        };
        let acl = Acl::new(vec!["0.0.0.0/0".parse().unwrap()], deny);
        let guard = Guard::new(
            acl,
            5,
            Duration::from_secs(60),
            Duration::from_secs(3600),
            SourceRateLimit::new(0, 0),
        );
        let collect = Arc::new(Collect::default());
        let shared = Arc::new(Shared {
            guard: Arc::new(guard),
            sink: collect.clone(),
            connections: Default::default(),
            max_message_size: 4096,
            trace: Arc::new(crate::trace::Tracer::off()),
            limits: Default::default(),
            security_log: Default::default(),
        });
        let tcp = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = tcp.local_addr().unwrap();
        tokio::spawn(accept_loop(tcp, TransportKind::Ws, None, shared.clone()));
        (addr, shared, collect)
    }

    async fn raw_upgrade(addr: SocketAddr, protocol: Option<&str>) -> String {
        let mut tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
        let protocol = protocol
            .map(|p| format!("Sec-WebSocket-Protocol: {p}\r\n"))
            .unwrap_or_default();
        let request = format!(
            "GET / HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
             {protocol}\r\n"
        );
        tcp.write_all(request.as_bytes()).await.unwrap();
        let mut buf = vec![0u8; 1024];
        let n = tokio::time::timeout(Duration::from_secs(5), tcp.read(&mut buf))
            .await
            .unwrap()
            .unwrap_or(0);
        String::from_utf8_lossy(&buf[..n]).into_owned()
    }

    #[tokio::test]
    async fn an_upgrade_needs_the_sip_subprotocol() {
        let (addr, _, _) = listener("").await;
        let answer = raw_upgrade(addr, None).await;
        assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
        let answer = raw_upgrade(addr, Some("chat")).await;
        assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
        let answer = raw_upgrade(addr, Some("chat, sip")).await;
        assert!(answer.starts_with("HTTP/1.1 101"), "{answer}");
        assert!(
            answer
                .to_ascii_lowercase()
                .contains("sec-websocket-protocol: sip\r\n"),
            "{answer}"
        );
    }

    #[tokio::test]
    async fn a_refused_source_gets_no_answer_at_all() {
        let (addr, _, _) = listener("127.0.0.1/32").await;
        assert_eq!(
            raw_upgrade(addr, Some("sip")).await,
            "",
            "closed unanswered"
        );
    }

    #[tokio::test]
    async fn messages_flow_both_ways_and_the_end_of_the_flow_is_reported() {
        let (addr, shared, collect) = listener("").await;
        let mut request = format!("ws://{addr}/").into_client_request().unwrap();
        request.headers_mut().insert(
            header::SEC_WEBSOCKET_PROTOCOL,
            HeaderValue::from_static("sip"),
        );
        let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
        let local = tcp.local_addr().unwrap();
        let (mut client, response) = tokio_tungstenite::client_async(request, tcp).await.unwrap();
        assert_eq!(
            response.headers().get(header::SEC_WEBSOCKET_PROTOCOL),
            Some(&HeaderValue::from_static("sip"))
        );
        let options = "OPTIONS sip:pbx.test SIP/2.0\r\nVia: SIP/2.0/WS x.invalid;branch=z9hG4bK1\r\n\
            From: <sip:a@pbx.test>;tag=1\r\nTo: <sip:pbx.test>\r\nCall-ID: ws1\r\nCSeq: 1 OPTIONS\r\n\
            Max-Forwards: 70\r\n\r\n";
        client.send(ClientMessage::text(options)).await.unwrap();
        // Two messages in one frame: dropped, not delivered.
        let framed = options.replace("\r\n\r\n", "\r\nContent-Length: 0\r\n\r\n");
        client
            .send(ClientMessage::text(format!("{framed}{framed}")))
            .await
            .unwrap();
        client
            .send(ClientMessage::binary(options.as_bytes().to_vec()))
            .await
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(5);
        while collect.inbound.lock().unwrap().len() < 2 && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let peers = collect.inbound.lock().unwrap().clone();
        assert_eq!(
            peers.len(),
            2,
            "the text and the binary frame, not the double one"
        );
        let peer = &peers[0];
        assert_eq!(peer.kind, TransportKind::Ws);
        assert_eq!(peer.remote, local);
        let conn = peer.conn.unwrap();
        assert_eq!(
            shared.connections.find(TransportKind::Ws, local),
            Some(conn)
        );
        // What the engine sends goes out as a text frame.
        assert!(
            shared
                .connections
                .send(conn, Bytes::from_static(b"SIP/2.0 200 OK\r\n\r\n"))
        );
        let reply = tokio::time::timeout(Duration::from_secs(5), client.next())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        assert_eq!(reply, ClientMessage::text("SIP/2.0 200 OK\r\n\r\n"));
        client.close(None).await.unwrap();
        let deadline = Instant::now() + Duration::from_secs(5);
        while collect.closed.lock().unwrap().is_empty() && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert_eq!(*collect.closed.lock().unwrap(), vec![conn]);
        assert!(shared.connections.is_empty());
        assert_eq!(
            shared.connections.held_by(local.ip()),
            0,
            "the slot is given back"
        );
    }
}
