//! The table of open TCP/TLS connections: by id for replies on the connection a request
//! came on, and by (transport, remote address) for requests to a contact that registered
//! over one (RFC 5626 §5: the flow is reused; RFC 3261 §18.2.2). It also knows which
//! connections carried an authenticated request (they may idle longer) and how many
//! connections each source address holds (capped by the accept loop).
//!
//! Connections the PBX opens itself (to trunks) enter the table before they are connected:
//! what is sent meanwhile waits in the connection's queue, in order, and the senders that
//! want to hear of a failed connect leave a [`OnFailure`] that [`Connections::connect_failed`]
//! hands back (RFC 3261 §17.1.4: the transaction learns of the transport error).

use super::{ConnId, TransportKind};
use bytes::Bytes;
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use tokio::sync::mpsc;

/// Bytes queued per connection before further sends are refused (a reader that stopped
/// reading must not make the PBX buffer without bound).
pub const QUEUE_DEPTH: usize = 512;

struct Entry {
    kind: TransportKind,
    remote: SocketAddr,
    tx: mpsc::Sender<Bytes>,
    authenticated: Arc<AtomicBool>,
    /// `Some` while an outbound connection is still connecting: who to tell if it fails.
    connecting: Option<Vec<OnFailure>>,
}

/// Called once when a message queued on a connection being opened cannot be sent (the
/// connect failed).
pub type OnFailure = Box<dyn FnOnce() + Send>;

/// Where a message to a stream peer goes ([`Connections::route`]).
pub enum Route {
    /// An open (or opening) connection.
    Existing(ConnId),
    /// A new outbound connection was entered into the table: the caller connects it.
    Connect(Opened),
    /// None, and the PBX does not open one (a phone's or a WebSocket client's flow is gone).
    Closed,
}

/// A connection just opened: its id, the queue its writer task drains, and the flag the
/// engine sets once a request on it passed digest authentication.
pub struct Opened {
    pub id: ConnId,
    pub outgoing: mpsc::Receiver<Bytes>,
    pub authenticated: Arc<AtomicBool>,
}

#[derive(Default)]
pub struct Connections {
    next_id: AtomicU64,
    table: Mutex<Table>,
    /// Accepted connections (TLS handshakes included) per source address.
    per_source: Mutex<HashMap<IpAddr, u32>>,
}

/// One accepted connection counted against its source address; uncounted on drop.
pub struct SourceClaim {
    connections: Arc<Connections>,
    ip: IpAddr,
}

impl Drop for SourceClaim {
    fn drop(&mut self) {
        let mut counts = self.connections.lock_sources();
        if let Some(count) = counts.get_mut(&self.ip) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                counts.remove(&self.ip);
            }
        }
    }
}

/// Whether a source already holding `held` connections may open one more (`cap` 0: no cap).
pub fn within_cap(held: u32, cap: u32) -> bool {
    cap == 0 || held < cap
}

#[derive(Default)]
struct Table {
    by_id: HashMap<ConnId, Entry>,
    by_remote: HashMap<(TransportKind, SocketAddr), ConnId>,
}

impl Connections {
    /// Registers a new connection; its writer task drains [`Opened::outgoing`].
    pub fn open(&self, kind: TransportKind, remote: SocketAddr) -> Opened {
        let mut table = self.table.lock().unwrap_or_else(|e| e.into_inner());
        self.insert(&mut table, kind, remote, None)
    }

    fn insert(
        &self,
        table: &mut Table,
        kind: TransportKind,
        remote: SocketAddr,
        connecting: Option<Vec<OnFailure>>,
    ) -> Opened {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed) + 1;
        let (tx, outgoing) = mpsc::channel(QUEUE_DEPTH);
        let authenticated = Arc::new(AtomicBool::new(false));
        table.by_id.insert(
            id,
            Entry {
                kind,
                remote,
                tx,
                authenticated: authenticated.clone(),
                connecting,
            },
        );
        table.by_remote.insert((kind, remote), id);
        metrics::gauge!("pbx_sip_connections", "transport" => kind.name()).increment(1.0);
        Opened {
            id,
            outgoing,
            authenticated,
        }
    }

    /// Picks the connection for a message to `remote` (RFC 3261 §18.2.2, RFC 5626 §5): the
    /// one it came on (`conn`) while open, else any to the same address and transport.
    /// Failing both, a message the PBX starts itself (`conn` is `None`) over TCP or TLS gets
    /// a new outbound connection, entered here as connecting (its [`Opened`] is returned
    /// for the caller to connect and serve); the rest has nowhere to go. One lock: two
    /// senders at once open one connection.
    pub fn route(&self, kind: TransportKind, remote: SocketAddr, conn: Option<ConnId>) -> Route {
        let mut table = self.table.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(id) = conn
            && table.by_id.get(&id).is_some_and(|e| !e.tx.is_closed())
        {
            return Route::Existing(id);
        }
        if let Some(&id) = table.by_remote.get(&(kind, remote)) {
            return Route::Existing(id);
        }
        let dials = matches!(kind, TransportKind::Tcp | TransportKind::Tls) && conn.is_none();
        if !dials {
            return Route::Closed;
        }
        Route::Connect(self.insert(&mut table, kind, remote, Some(Vec::new())))
    }

    /// The outbound connection `id` is up: failures are no longer reported to the senders
    /// of what was queued while connecting.
    pub fn connected(&self, id: ConnId) {
        let mut table = self.table.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(entry) = table.by_id.get_mut(&id) {
            entry.connecting = None;
        }
    }

    /// The outbound connection `id` could not be made: it leaves the table, its queue is
    /// dropped, and the senders waiting to hear are returned to be told.
    pub fn connect_failed(&self, id: ConnId) -> Vec<OnFailure> {
        let mut table = self.table.lock().unwrap_or_else(|e| e.into_inner());
        let Some(entry) = table.by_id.remove(&id) else {
            return Vec::new();
        };
        if table.by_remote.get(&(entry.kind, entry.remote)) == Some(&id) {
            table.by_remote.remove(&(entry.kind, entry.remote));
        }
        metrics::gauge!("pbx_sip_connections", "transport" => entry.kind.name()).decrement(1.0);
        entry.connecting.unwrap_or_default()
    }

    /// Counts one more connection from `ip`; `None` when it already holds `cap` (0: no cap).
    pub fn claim_source(self: &Arc<Self>, ip: IpAddr, cap: u32) -> Option<SourceClaim> {
        let mut counts = self.lock_sources();
        let held = counts.entry(ip).or_insert(0);
        if !within_cap(*held, cap) {
            return None;
        }
        *held += 1;
        drop(counts);
        Some(SourceClaim {
            connections: Arc::clone(self),
            ip,
        })
    }

    /// Connections counted for `ip` now.
    pub fn held_by(&self, ip: IpAddr) -> u32 {
        self.lock_sources().get(&ip).copied().unwrap_or(0)
    }

    fn lock_sources(&self) -> std::sync::MutexGuard<'_, HashMap<IpAddr, u32>> {
        self.per_source.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A request on connection `id` passed digest authentication: from now on it idles
    /// out after the long limit. False when the connection is gone.
    pub fn mark_authenticated(&self, id: ConnId) -> bool {
        let table = self.table.lock().unwrap_or_else(|e| e.into_inner());
        match table.by_id.get(&id) {
            Some(entry) => {
                entry.authenticated.store(true, Ordering::Relaxed);
                true
            }
            None => false,
        }
    }

    pub fn is_authenticated(&self, id: ConnId) -> bool {
        let table = self.table.lock().unwrap_or_else(|e| e.into_inner());
        table
            .by_id
            .get(&id)
            .is_some_and(|e| e.authenticated.load(Ordering::Relaxed))
    }

    pub fn close(&self, id: ConnId) {
        let mut table = self.table.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(entry) = table.by_id.remove(&id) {
            if table.by_remote.get(&(entry.kind, entry.remote)) == Some(&id) {
                table.by_remote.remove(&(entry.kind, entry.remote));
            }
            metrics::gauge!("pbx_sip_connections", "transport" => entry.kind.name()).decrement(1.0);
        }
    }

    pub fn is_open(&self, id: ConnId) -> bool {
        let table = self.table.lock().unwrap_or_else(|e| e.into_inner());
        table.by_id.get(&id).is_some_and(|e| !e.tx.is_closed())
    }

    pub fn find(&self, kind: TransportKind, remote: SocketAddr) -> Option<ConnId> {
        let table = self.table.lock().unwrap_or_else(|e| e.into_inner());
        table.by_remote.get(&(kind, remote)).copied()
    }

    /// Queues bytes on a connection; false when it is gone or its queue is full.
    pub fn send(&self, id: ConnId, data: Bytes) -> bool {
        self.send_reporting(id, data, None)
    }

    /// As [`Connections::send`]; while the connection is still connecting, `on_failure` is
    /// kept to be called if the connect fails.
    pub fn send_reporting(&self, id: ConnId, data: Bytes, on_failure: Option<OnFailure>) -> bool {
        let mut table = self.table.lock().unwrap_or_else(|e| e.into_inner());
        let Some(entry) = table.by_id.get_mut(&id) else {
            return false;
        };
        // Queued under the lock: a connect failing now cannot miss this sender.
        if entry.tx.try_send(data).is_err() {
            return false;
        }
        if let (Some(waiting), Some(on_failure)) = (entry.connecting.as_mut(), on_failure) {
            waiting.push(on_failure);
        }
        true
    }

    /// Whether outbound connection `id` is still connecting.
    pub fn is_connecting(&self, id: ConnId) -> bool {
        let table = self.table.lock().unwrap_or_else(|e| e.into_inner());
        table.by_id.get(&id).is_some_and(|e| e.connecting.is_some())
    }

    pub fn len(&self) -> usize {
        self.table
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .by_id
            .len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn open_find_send_close() {
        let conns = Connections::default();
        let remote: SocketAddr = "127.0.0.1:5070".parse().unwrap();
        let Opened {
            id,
            outgoing: mut rx,
            authenticated,
        } = conns.open(TransportKind::Tcp, remote);
        assert!(!conns.is_authenticated(id));
        assert!(conns.mark_authenticated(id));
        assert!(
            authenticated.load(Ordering::Relaxed),
            "the reader sees the mark"
        );
        assert_eq!(conns.find(TransportKind::Tcp, remote), Some(id));
        assert_eq!(conns.find(TransportKind::Tls, remote), None);
        assert!(conns.send(id, Bytes::from_static(b"x")));
        assert_eq!(rx.recv().await.as_deref(), Some(&b"x"[..]));
        conns.close(id);
        assert!(!conns.is_open(id));
        assert!(!conns.send(id, Bytes::from_static(b"y")));
        assert_eq!(conns.find(TransportKind::Tcp, remote), None);
        assert!(conns.is_empty());
        assert!(!conns.mark_authenticated(id), "gone");
    }

    #[test]
    fn sources_are_capped_and_released() {
        let conns = Arc::new(Connections::default());
        let a: IpAddr = "127.0.0.2".parse().unwrap();
        let b: IpAddr = "127.0.0.3".parse().unwrap();
        let first = conns.claim_source(a, 2).unwrap();
        let second = conns.claim_source(a, 2).unwrap();
        assert!(conns.claim_source(a, 2).is_none(), "third from a refused");
        assert!(conns.claim_source(b, 2).is_some(), "b has its own count");
        drop(first);
        assert_eq!(conns.held_by(a), 1);
        let third = conns.claim_source(a, 2).unwrap();
        drop((second, third));
        assert_eq!(conns.held_by(a), 0);
        let unlimited: Vec<_> = (0..100).filter_map(|_| conns.claim_source(a, 0)).collect();
        assert_eq!(unlimited.len(), 100, "0 means no cap");
    }

    #[tokio::test]
    async fn a_request_to_a_trunk_opens_one_connection_and_queues_in_order() {
        let conns = Connections::default();
        let trunk: SocketAddr = "127.0.29.1:5060".parse().unwrap();
        let Route::Connect(Opened {
            id,
            outgoing: mut rx,
            ..
        }) = conns.route(TransportKind::Tcp, trunk, None)
        else {
            panic!("a new connection to the trunk");
        };
        assert!(conns.is_connecting(id));
        assert!(conns.send_reporting(id, Bytes::from_static(b"first"), None));
        // A second request while connecting finds the same connection.
        assert!(matches!(
            conns.route(TransportKind::Tcp, trunk, None),
            Route::Existing(found) if found == id
        ));
        assert!(conns.send_reporting(id, Bytes::from_static(b"second"), None));
        // Another transport to the same address is another connection.
        assert!(matches!(
            conns.route(TransportKind::Tls, trunk, None),
            Route::Connect(_)
        ));
        conns.connected(id);
        assert!(!conns.is_connecting(id));
        assert_eq!(rx.recv().await.as_deref(), Some(&b"first"[..]));
        assert_eq!(rx.recv().await.as_deref(), Some(&b"second"[..]));
    }

    #[test]
    fn a_failed_connect_tells_every_waiting_sender_once() {
        let conns = Connections::default();
        let trunk: SocketAddr = "127.0.29.1:5061".parse().unwrap();
        let Route::Connect(opened) = conns.route(TransportKind::Tls, trunk, None) else {
            panic!("a new connection");
        };
        let told = Arc::new(AtomicU64::new(0));
        for _ in 0..2 {
            let told = told.clone();
            let on_failure: OnFailure = Box::new(move || {
                told.fetch_add(1, Ordering::Relaxed);
            });
            assert!(conns.send_reporting(opened.id, Bytes::from_static(b"x"), Some(on_failure)));
        }
        for tell in conns.connect_failed(opened.id) {
            tell();
        }
        assert_eq!(told.load(Ordering::Relaxed), 2);
        assert!(conns.connect_failed(opened.id).is_empty(), "only once");
        assert!(conns.is_empty());
        // The next request tries again.
        assert!(matches!(
            conns.route(TransportKind::Tls, trunk, None),
            Route::Connect(_)
        ));
    }

    #[test]
    fn once_connected_failures_are_no_longer_reported_through_the_queue() {
        let conns = Connections::default();
        let trunk: SocketAddr = "127.0.29.1:5060".parse().unwrap();
        let Route::Connect(opened) = conns.route(TransportKind::Tcp, trunk, None) else {
            panic!("a new connection");
        };
        conns.connected(opened.id);
        let on_failure: OnFailure = Box::new(|| panic!("not called"));
        assert!(conns.send_reporting(opened.id, Bytes::from_static(b"x"), Some(on_failure)));
        assert!(conns.connect_failed(opened.id).is_empty());
    }

    #[test]
    fn flows_of_phones_and_websocket_clients_are_never_dialed() {
        let conns = Connections::default();
        let phone: SocketAddr = "127.0.0.2:40000".parse().unwrap();
        // A registered phone's flow (its connection id) that closed: no new connection.
        assert!(matches!(
            conns.route(TransportKind::Tcp, phone, Some(41)),
            Route::Closed
        ));
        for kind in [TransportKind::Ws, TransportKind::Wss] {
            assert!(matches!(conns.route(kind, phone, None), Route::Closed));
        }
        // The connection a request came on is used while open.
        let accepted = conns.open(TransportKind::Tcp, phone);
        assert!(matches!(
            conns.route(TransportKind::Tcp, phone, Some(accepted.id)),
            Route::Existing(id) if id == accepted.id
        ));
        assert!(!conns.is_connecting(accepted.id));
    }

    #[test]
    fn cap_decision() {
        assert!(within_cap(0, 1));
        assert!(!within_cap(1, 1));
        assert!(within_cap(1_000_000, 0));
    }
}
