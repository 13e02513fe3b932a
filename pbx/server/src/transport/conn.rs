//! The table of open TCP/TLS connections: by id for replies on the connection a request
//! came on, and by (transport, remote address) for requests to a contact that registered
//! over one (RFC 5626 §5: the flow is reused; RFC 3261 §18.2.2).

use super::TransportKind;
use bytes::Bytes;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use tokio::sync::mpsc;

pub type ConnId = u64;

/// Bytes queued per connection before further sends are refused (a reader that stopped
/// reading must not make the PBX buffer without bound).
pub const QUEUE_DEPTH: usize = 512;

struct Entry {
    kind: TransportKind,
    remote: SocketAddr,
    tx: mpsc::Sender<Bytes>,
}

#[derive(Default)]
pub struct Connections {
    next_id: AtomicU64,
    table: Mutex<Table>,
}

#[derive(Default)]
struct Table {
    by_id: HashMap<ConnId, Entry>,
    by_remote: HashMap<(TransportKind, SocketAddr), ConnId>,
}

impl Connections {
    /// Registers a new connection; its writer task drains the returned receiver.
    pub fn open(&self, kind: TransportKind, remote: SocketAddr) -> (ConnId, mpsc::Receiver<Bytes>) {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed) + 1;
        let (tx, rx) = mpsc::channel(QUEUE_DEPTH);
        let mut table = self.table.lock().unwrap_or_else(|e| e.into_inner());
        table.by_id.insert(id, Entry { kind, remote, tx });
        table.by_remote.insert((kind, remote), id);
        metrics::gauge!("pbx_sip_connections", "transport" => kind.name()).increment(1.0);
        (id, rx)
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
        let (id, mut rx) = conns.open(TransportKind::Tcp, remote);
        assert_eq!(conns.find(TransportKind::Tcp, remote), Some(id));
        assert_eq!(conns.find(TransportKind::Tls, remote), None);
        assert!(conns.send(id, Bytes::from_static(b"x")));
        assert_eq!(rx.recv().await.as_deref(), Some(&b"x"[..]));
        conns.close(id);
        assert!(!conns.is_open(id));
        assert!(!conns.send(id, Bytes::from_static(b"y")));
        assert_eq!(conns.find(TransportKind::Tcp, remote), None);
        assert!(conns.is_empty());
    }
}
