//! The table of open TCP/TLS connections: by id for replies on the connection a request
//! came on, and by (transport, remote address) for requests to a contact that registered
//! over one (RFC 5626 §5: the flow is reused; RFC 3261 §18.2.2). It also knows which
//! connections carried an authenticated request (they may idle longer) and how many
//! connections each source address holds (capped by the accept loop).

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
        let id = self.next_id.fetch_add(1, Ordering::Relaxed) + 1;
        let (tx, outgoing) = mpsc::channel(QUEUE_DEPTH);
        let authenticated = Arc::new(AtomicBool::new(false));
        let mut table = self.table.lock().unwrap_or_else(|e| e.into_inner());
        table.by_id.insert(
            id,
            Entry {
                kind,
                remote,
                tx,
                authenticated: authenticated.clone(),
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
        let tx = {
            let table = self.table.lock().unwrap_or_else(|e| e.into_inner());
            match table.by_id.get(&id) {
                Some(entry) => entry.tx.clone(),
                None => return false,
            }
        };
        tx.try_send(data).is_ok()
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

    #[test]
    fn cap_decision() {
        assert!(within_cap(0, 1));
        assert!(!within_cap(1, 1));
        assert!(within_cap(1_000_000, 0));
    }
}
