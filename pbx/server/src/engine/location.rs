//! The write-behind of the engine's location table ([`Location`], in `pbx_engine`): its
//! changes are queued here and written to the store in batches, so a restart keeps the
//! bindings (mechanism apart from storage, as Kamailio's registrar and usrloc).

pub use pbx_engine::location::{BindingPeer, Location};
use pbx_store::{BindingChange, LocationStore};
use std::sync::Arc;
use tokio::sync::mpsc;

// Nearly every write is a change; boxing it to shrink the one flush marker is not worth an
// allocation per REGISTER.
#[allow(clippy::large_enum_variant)]
enum Write {
    Change(BindingChange),
    /// Everything queued before it is written: acknowledge and stop.
    Flush(tokio::sync::oneshot::Sender<()>),
}

/// The most changes written in one transaction.
const MAX_BATCH: usize = 4096;
/// How long the writer gathers changes before writing them: a crash loses at most this
/// much (phones re-register at their next refresh).
const COALESCE: std::time::Duration = std::time::Duration::from_millis(20);

/// The queue of binding changes on their way to the store.
#[derive(Clone)]
pub struct WriteBehind {
    writes: mpsc::UnboundedSender<Write>,
}

impl WriteBehind {
    /// Starts the write-behind task; [`WriteBehind::flush`] ends it. Changes queued while a
    /// transaction commits are written together in the next one.
    pub fn start(store: Arc<dyn LocationStore>) -> (WriteBehind, tokio::task::JoinHandle<()>) {
        let (writes, queue) = mpsc::unbounded_channel::<Write>();
        let writer = tokio::spawn(write_behind(store, queue));
        (WriteBehind { writes }, writer)
    }

    /// Queues one change.
    pub fn write(&self, change: BindingChange) {
        // Fails only once the writer has stopped at shutdown.
        let _ = self.writes.send(Write::Change(change));
    }

    /// Waits until every change queued so far is in the store, then stops the writer (at
    /// shutdown; later changes are not saved).
    pub async fn flush(&self) {
        let (done, flushed) = tokio::sync::oneshot::channel();
        if self.writes.send(Write::Flush(done)).is_ok() {
            let _ = flushed.await;
        }
    }
}

/// A location table whose changes are written behind to `store`, its queue and the writer
/// task.
pub fn start(
    store: Arc<dyn LocationStore>,
) -> (Location, WriteBehind, tokio::task::JoinHandle<()>) {
    let (writes, writer) = WriteBehind::start(store);
    let queue = writes.clone();
    let location = Location::new(Box::new(move |change| queue.write(change)));
    (location, writes, writer)
}

/// Writes queued changes in batches until a flush. After the first change of a batch it
/// waits [`COALESCE`] for more, so a burst of REGISTERs becomes one transaction of a few
/// multi-row statements instead of a statement (and a thread hand-off) per REGISTER.
async fn write_behind(store: Arc<dyn LocationStore>, mut queue: mpsc::UnboundedReceiver<Write>) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    while let Some(first) = queue.recv().await {
        if matches!(first, Write::Change(_)) {
            tokio::time::sleep(COALESCE).await;
        }
        let mut flushed = None;
        let mut next = Some(first);
        while let Some(write) = next.take() {
            match write {
                Write::Change(change) => batch.push(change),
                Write::Flush(done) => {
                    flushed = Some(done);
                    break;
                }
            }
            if batch.len() < MAX_BATCH {
                next = queue.try_recv().ok();
            }
        }
        if !batch.is_empty() {
            if let Err(error) = store.apply_binding_changes(&batch).await {
                tracing::error!(%error, changes = batch.len(), "could not save registrations");
            }
            batch.clear();
        }
        if let Some(done) = flushed {
            let _ = done.send(());
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use pbx_engine::{Peer, TransportKind};
    use pbx_sip::message::Message;
    use pbx_sip::registrar::{RegistrarPolicy, process_register};
    use pbx_store::Store;

    fn register(contact: &str, cseq: u32, expires: u32) -> pbx_sip::message::Request {
        let text = format!(
            "REGISTER sip:pbx.test SIP/2.0\r\nVia: SIP/2.0/UDP 10.0.0.5:5062;branch=z9hG4bK{cseq}\r\n\
             From: <sip:1000@pbx.test>;tag=a\r\nTo: <sip:1000@pbx.test>\r\nCall-ID: reg-1\r\n\
             CSeq: {cseq} REGISTER\r\nContact: <{contact}>\r\nExpires: {expires}\r\n\
             Max-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
        );
        match pbx_sip::parse::parse_message(Bytes::from(text)) {
            Ok(Message::Request(r)) => r,
            other => panic!("not a request: {other:?}"),
        }
    }

    fn peer() -> Peer {
        Peer {
            kind: TransportKind::Tcp,
            remote: "203.0.113.9:40001".parse().unwrap(),
            local: "127.0.0.1:5060".parse().unwrap(),
            conn: Some(7),
        }
    }

    #[tokio::test]
    async fn bindings_are_written_behind_and_restored() {
        let store = Arc::new(Store::open("sqlite::memory:").await.unwrap());
        let (location, writes, writer) = start(store.clone());
        let policy = RegistrarPolicy::default();
        let apply = |request: pbx_sip::message::Request, now: u64| {
            location
                .update("1000", &peer(), "phone/1", |current| {
                    process_register(now, &request, current, &policy)
                })
                .unwrap()
        };
        apply(register("sip:1000@10.0.0.5:5062", 1, 600), 1_000);
        apply(register("sip:1000@10.0.0.6:5062", 2, 600), 1_000);
        assert_eq!(location.count(), 2);
        assert_eq!(location.lookup("1000", 1_100).len(), 2);
        assert_eq!(location.lookup("1000", 1_600).len(), 0, "expired");
        location.set_reachable("1000", "sip:1000@10.0.0.6:5062", false);
        assert_eq!(location.unreachable(), 1);
        apply(register("sip:1000@10.0.0.5:5062", 3, 0), 1_001);
        assert_eq!(location.count(), 1);
        writes.flush().await;
        writer.await.unwrap();

        let saved = store.list_bindings().await.unwrap();
        assert_eq!(saved.len(), 1);
        assert_eq!(saved[0].contact(), "sip:1000@10.0.0.6:5062");
        assert_eq!(saved[0].transport, crate::config::Transport::Tcp);
        assert_eq!(saved[0].source, peer().remote);
        assert_eq!(saved[0].reachable, Some(false));

        // A restart: a new location table from the store.
        let (restarted, _writes, _writer) = start(store.clone());
        assert_eq!(restarted.restore(saved, 1_002), 1);
        let restored = restarted.lookup("1000", 1_002);
        assert_eq!(restored.len(), 1);
        assert_eq!(restored[0].conn, None, "the old connection is gone");
        assert_eq!(restored[0].peer().remote, peer().remote);
        assert_eq!(restored[0].user_agent, "phone/1");

        // The extension is removed while the PBX runs: its bindings go too.
        assert_eq!(restarted.retain_extensions(|aor| aor != "1000"), 1);
        assert_eq!(restarted.count(), 0);
    }
}
