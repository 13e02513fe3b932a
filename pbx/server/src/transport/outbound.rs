//! Connections the PBX opens itself: to a trunk over TCP or TLS when a request (an INVITE,
//! REGISTER, OPTIONS) is sent to an address no connection reaches yet. The decision and the
//! queue live in the table ([`super::conn::Connections::route`]); this is the I/O: connect
//! (with a timeout), the TLS handshake (the certificate checked, [`super::tls_client`]),
//! then the connection is served like an accepted one ([`super::stream::serve_opened`]).
//! A failed connect tells every sender waiting on it, as a failed UDP send would
//! (RFC 3261 §8.1.3.1, §17.1.4: the transaction reports a transport error, a 503 to its TU).

use super::conn::{Connections, Opened};
use super::stream::{Side, serve_opened};
use super::tls_client::{TlsClients, TlsTarget, is_certificate_error};
use super::{Shared, TransportKind};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, RwLock};
use std::time::Duration;
use tokio::net::TcpStream;
use tokio::sync::watch;

/// A trunk that does not accept the connection within this time counts as unreachable.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Opens outbound connections.
pub struct Dialer {
    connections: Arc<Connections>,
    /// The listeners' shared state, set once they are built (the engine's sink comes after
    /// the sender, and trunks may send before): connects wait for it.
    shared: watch::Sender<Option<Arc<Shared>>>,
    tls: TlsClients,
    /// How each TLS address is checked (set by the trunks' shell); others by their address.
    targets: RwLock<HashMap<SocketAddr, TlsTarget>>,
}

impl Dialer {
    pub fn new(tls: TlsClients, connections: Arc<Connections>) -> Dialer {
        Dialer {
            connections,
            shared: watch::Sender::new(None),
            tls,
            targets: RwLock::new(HashMap::new()),
        }
    }

    /// Gives the dialer what serving a connection needs; connects wait until then.
    pub fn attach(&self, shared: Arc<Shared>) {
        self.shared.send_replace(Some(shared));
    }

    /// Replaces how TLS addresses are checked (the trunks reloaded).
    pub fn set_tls_targets(&self, targets: HashMap<SocketAddr, TlsTarget>) {
        *self.targets.write().unwrap_or_else(|e| e.into_inner()) = targets;
    }

    /// How a TLS connection to `remote` is checked: as a trunk says, else against the
    /// address itself with verification on.
    pub fn tls_target(&self, remote: SocketAddr) -> TlsTarget {
        let targets = self.targets.read().unwrap_or_else(|e| e.into_inner());
        targets.get(&remote).cloned().unwrap_or_else(|| TlsTarget {
            name: remote.ip().to_string(),
            ca_file: None,
            verify: true,
        })
    }

    /// Connects `opened` (already in the table, its queue filling) on a task. `local` is the
    /// PBX's address the messages on it name (the listener's of that transport).
    pub fn spawn(
        self: &Arc<Self>,
        opened: Opened,
        kind: TransportKind,
        remote: SocketAddr,
        local: SocketAddr,
    ) {
        let dialer = self.clone();
        let mut attached = self.shared.subscribe();
        tokio::spawn(async move {
            let ready = attached.wait_for(Option::is_some);
            let shared = match tokio::time::timeout(CONNECT_TIMEOUT, ready).await {
                Ok(Ok(shared)) => shared.clone(),
                _ => None,
            };
            match shared {
                Some(shared) => dialer.connect(shared, opened, kind, remote, local).await,
                None => dialer.fail(opened, remote, "the transports are not running"),
            }
        });
    }

    async fn connect(
        &self,
        shared: Arc<Shared>,
        opened: Opened,
        kind: TransportKind,
        remote: SocketAddr,
        local: SocketAddr,
    ) {
        let tcp = match tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(remote)).await {
            Ok(Ok(tcp)) => tcp,
            Ok(Err(e)) => return self.fail(opened, remote, &e.to_string()),
            Err(_) => return self.fail(opened, remote, "connect timed out"),
        };
        let _ = tcp.set_nodelay(true);
        if kind != TransportKind::Tls {
            tracing::debug!(%remote, transport = %kind, "connected");
            shared.connections.connected(opened.id);
            serve_opened(tcp, opened, Side::Outbound, kind, local, remote, shared).await;
            return;
        }
        let target = self.tls_target(remote);
        let (config, name) = match self.tls.config_for(&target) {
            Ok(found) => found,
            Err(error) => {
                tracing::warn!(%remote, name = %target.name, %error, "cannot set up TLS to the trunk");
                return self.fail(opened, remote, "TLS set-up failed");
            }
        };
        if !target.verify {
            tracing::warn!(%remote, name = %target.name, "connecting over TLS WITHOUT checking the certificate (tls_verify is off for this trunk): anyone on the path can read and change the calls");
        }
        let connector = tokio_rustls::TlsConnector::from(config);
        let handshake = connector.connect(name, tcp);
        match tokio::time::timeout(TLS_HANDSHAKE_TIMEOUT, handshake).await {
            Ok(Ok(stream)) => {
                tracing::debug!(%remote, name = %target.name, "TLS connected");
                shared.connections.connected(opened.id);
                serve_opened(stream, opened, Side::Outbound, kind, local, remote, shared).await;
            }
            Ok(Err(error)) if is_certificate_error(&error) => {
                metrics::counter!("pbx_sip_dropped_total", "reason" => "tls_certificate")
                    .increment(1);
                tracing::warn!(%remote, name = %target.name, %error, "TLS connection refused: the server's certificate does not verify for this name");
                self.fail(opened, remote, "certificate refused");
            }
            Ok(Err(error)) => {
                tracing::info!(%remote, name = %target.name, %error, "TLS handshake failed");
                self.fail(opened, remote, "TLS handshake failed");
            }
            Err(_) => self.fail(opened, remote, "TLS handshake timed out"),
        }
    }
}

impl Dialer {
    /// The connect failed: the entry leaves the table and every sender waiting on it hears.
    fn fail(&self, opened: Opened, remote: SocketAddr, why: &str) {
        metrics::counter!("pbx_sip_connect_failures_total").increment(1);
        tracing::info!(%remote, %why, "outbound connection failed");
        for tell in self.connections.connect_failed(opened.id) {
            tell();
        }
    }
}

#[cfg(test)]
mod socket_tests {
    use super::*;
    use crate::security::Guard;
    use crate::security::acl::Acl;
    use crate::security::rate::SourceRateLimit;
    use crate::transport::{Inbound, Peer, Sender};
    use bytes::Bytes;
    use std::path::PathBuf;
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    #[derive(Default)]
    struct Collect(Mutex<Vec<Inbound>>);

    impl crate::transport::Sink for Collect {
        fn deliver(&self, inbound: Inbound) {
            self.0.lock().unwrap().push(inbound);
        }
    }

    /// A sender whose outbound connections are served, and what they deliver.
    fn sender() -> (Sender, Arc<Collect>) {
        let guard = Guard::new(
            Acl::new(vec!["0.0.0.0/0".parse().unwrap()], vec![]),
            5,
            Duration::from_secs(60),
            Duration::from_secs(3600),
            SourceRateLimit::new(0, 0),
        );
        let collect = Arc::new(Collect::default());
        let connections: Arc<Connections> = Default::default();
        let shared = Arc::new(Shared {
            guard: Arc::new(guard),
            sink: collect.clone(),
            connections: connections.clone(),
            max_message_size: 4096,
            trace: Arc::new(crate::trace::Tracer::off()),
            limits: Default::default(),
            security_log: Default::default(),
        });
        let sender =
            Sender::new(Vec::new(), connections).with_outbound(Vec::new(), TlsClients::new(None));
        sender.attach(shared);
        (sender, collect)
    }

    fn to(remote: SocketAddr, kind: TransportKind) -> Peer {
        Peer {
            kind,
            remote,
            local: "127.0.0.1:5060".parse().unwrap(),
            conn: None,
        }
    }

    const OPTIONS: &[u8] = b"OPTIONS sip:far@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/TCP 127.0.0.1:5060;branch=z9hG4bK1\r\nFrom: <sip:pbx@127.0.0.1>;tag=1\r\nTo: <sip:far@127.0.0.1>\r\nCall-ID: a\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n";

    #[tokio::test]
    async fn requests_open_one_connection_in_order_and_answers_come_back_on_it() {
        let far = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let (sender, collect) = sender();
        let peer = to(far.local_addr().unwrap(), TransportKind::Tcp);
        // Both are queued before the connection is up.
        sender
            .send(&peer, Bytes::from_static(b"first\r\n"))
            .unwrap();
        sender
            .send(&peer, Bytes::from_static(b"second\r\n"))
            .unwrap();
        let (mut conn, _) = far.accept().await.unwrap();
        let mut got = Vec::new();
        while got.len() < 15 {
            let mut buf = [0u8; 64];
            let n = conn.read(&mut buf).await.unwrap();
            assert!(n > 0, "closed early");
            got.extend_from_slice(&buf[..n]);
        }
        assert_eq!(got, b"first\r\nsecond\r\n");
        // What the far end sends on it is delivered, with the connection to answer on.
        conn.write_all(OPTIONS).await.unwrap();
        let inbound = tokio::time::timeout(Duration::from_secs(5), async {
            loop {
                if let Some(inbound) = collect.0.lock().unwrap().pop() {
                    return inbound;
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        })
        .await
        .unwrap();
        assert_eq!(inbound.peer.kind, TransportKind::Tcp);
        assert!(inbound.peer.conn.is_some());
        // A third request reuses the connection: nothing else is accepted.
        sender
            .send(&peer, Bytes::from_static(b"third\r\n"))
            .unwrap();
        let mut buf = [0u8; 64];
        let n = conn.read(&mut buf).await.unwrap();
        assert_eq!(&buf[..n], b"third\r\n");
        let again = tokio::time::timeout(Duration::from_millis(200), far.accept()).await;
        assert!(again.is_err(), "a second connection was opened");
    }

    #[tokio::test]
    async fn a_refused_connect_is_reported_to_every_waiting_sender() {
        // A port nothing listens on: bind, note, close.
        let closed = TcpListener::bind("127.0.0.1:0")
            .await
            .unwrap()
            .local_addr()
            .unwrap();
        let (sender, _) = sender();
        let told = Arc::new(AtomicUsize::new(0));
        let (done_tx, mut done) = tokio::sync::mpsc::unbounded_channel();
        for _ in 0..2 {
            let told = told.clone();
            let done_tx = done_tx.clone();
            let on_failure: crate::transport::OnFailure = Box::new(move || {
                told.fetch_add(1, Ordering::SeqCst);
                let _ = done_tx.send(());
            });
            let peer = to(closed, TransportKind::Tcp);
            sender
                .send_reporting(&peer, Bytes::from_static(b"x"), Some(on_failure))
                .unwrap();
        }
        for _ in 0..2 {
            tokio::time::timeout(Duration::from_secs(10), done.recv())
                .await
                .unwrap();
        }
        assert_eq!(told.load(Ordering::SeqCst), 2);
    }

    /// A CA and a server certificate it signed for `localhost` and 127.0.0.1, written to
    /// `dir`: (the CA's file, the server's certificate, its key).
    fn certificates(dir: &std::path::Path) -> (PathBuf, PathBuf, PathBuf) {
        use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
        let ca_key = KeyPair::generate().unwrap();
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let ca = ca_params.self_signed(&ca_key).unwrap();
        let issuer = Issuer::new(ca_params, ca_key);
        let key = KeyPair::generate().unwrap();
        let names = vec!["localhost".to_string(), "127.0.0.1".to_string()];
        let server = CertificateParams::new(names)
            .unwrap()
            .signed_by(&key, &issuer)
            .unwrap();
        std::fs::create_dir_all(dir).unwrap();
        let files = (
            dir.join("ca.pem"),
            dir.join("cert.pem"),
            dir.join("key.pem"),
        );
        std::fs::write(&files.0, ca.pem()).unwrap();
        std::fs::write(&files.1, server.pem()).unwrap();
        std::fs::write(&files.2, key.serialize_pem()).unwrap();
        files
    }

    /// The outcome of sending to a TLS server presenting a certificate for `localhost` and
    /// 127.0.0.1 from a test CA, checked as `target` says (with the CA as its CA file): what
    /// the server read, or `None` when the connect failed.
    async fn tls_send(target: Option<TlsTarget>, tag: &str) -> Option<Vec<u8>> {
        let dir = std::env::temp_dir().join(format!("pbx-dial-{tag}-{}", std::process::id()));
        let (ca, cert, key) = certificates(&dir);
        let acceptor = crate::transport::tls::acceptor(&cert, &key).unwrap();
        let far = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = far.local_addr().unwrap();
        let (read_tx, mut read) = tokio::sync::mpsc::unbounded_channel();
        tokio::spawn(async move {
            while let Ok((tcp, _)) = far.accept().await {
                if let Ok(mut tls) = acceptor.accept(tcp).await {
                    let mut buf = [0u8; 64];
                    let n = tls.read(&mut buf).await.unwrap_or(0);
                    let _ = read_tx.send(buf[..n].to_vec());
                }
            }
        });
        let (sender, _) = sender();
        if let Some(mut target) = target {
            target.ca_file = Some(ca.clone());
            sender.set_tls_targets([(addr, target)].into_iter().collect());
        }
        let (done_tx, mut done) = tokio::sync::mpsc::unbounded_channel();
        let on_failure: crate::transport::OnFailure = Box::new(move || {
            let _ = done_tx.send(());
        });
        let peer = to(addr, TransportKind::Tls);
        sender
            .send_reporting(&peer, Bytes::from_static(b"hello"), Some(on_failure))
            .unwrap();
        let outcome = tokio::time::timeout(Duration::from_secs(10), async {
            tokio::select! {
                got = read.recv() => got,
                // Dropped unused once connected: only a call means the connect failed.
                Some(()) = done.recv() => None,
            }
        })
        .await
        .unwrap();
        let _ = std::fs::remove_dir_all(dir);
        outcome
    }

    #[tokio::test]
    async fn a_tls_server_is_verified_for_the_name_the_pbx_meant() {
        let trusted = |name: &str| TlsTarget {
            name: name.to_string(),
            ca_file: None,
            verify: true,
        };
        assert_eq!(
            tls_send(Some(trusted("localhost")), "ok").await.as_deref(),
            Some(&b"hello"[..]),
            "its CA trusted, a name it carries"
        );
        assert_eq!(
            tls_send(Some(trusted("sip.other.example")), "name").await,
            None,
            "a name it does not carry"
        );
        assert_eq!(
            tls_send(None, "unknown").await,
            None,
            "no CA trusts it (system roots only)"
        );
        let blind = TlsTarget {
            verify: false,
            ..trusted("sip.other.example")
        };
        assert_eq!(
            tls_send(Some(blind), "blind").await.as_deref(),
            Some(&b"hello"[..]),
            "verification off: anything goes"
        );
    }
}
