//! The write-behind of the engine's location table ([`Location`], in `pbx_engine`): the
//! changes the engines give out (`Output::Location`) and the housekeeping makes are queued
//! here and written to the store in batches, in table order, so a restart keeps the bindings
//! (mechanism apart from storage, as Kamailio's registrar and usrloc).

pub use pbx_engine::location::{BindingPeer, Location, Write};
use pbx_store::{BindingChange, LocationStore};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::time::Instant;

// Nearly every message is a change; boxing it to shrink the one flush marker is not worth an
// allocation per REGISTER.
#[allow(clippy::large_enum_variant)]
enum Queued {
    Change(Write),
    /// Everything queued before it is written: acknowledge and stop.
    Flush(tokio::sync::oneshot::Sender<()>),
}

/// The most changes written in one transaction.
const MAX_BATCH: usize = 4096;
/// How long the writer gathers changes before writing them: a crash loses at most this
/// much (phones re-register at their next refresh).
const COALESCE: Duration = Duration::from_millis(20);
/// How long changes wait behind a missing `seq` before the writer gives up on it. Every
/// change the table numbers is sent (a failed engine's are too), and a shard sends them
/// microseconds after making them: this only bounds the wait should one ever be lost.
const GAP_WAIT: Duration = Duration::from_secs(1);

/// The queue of binding changes on their way to the store.
#[derive(Clone)]
pub struct WriteBehind {
    queue: mpsc::UnboundedSender<Queued>,
}

impl WriteBehind {
    /// Starts the write-behind task; [`WriteBehind::flush`] ends it. Changes queued while a
    /// transaction commits are written together in the next one.
    pub fn start(store: Arc<dyn LocationStore>) -> (WriteBehind, tokio::task::JoinHandle<()>) {
        let (queue, receiver) = mpsc::unbounded_channel::<Queued>();
        let writer = tokio::spawn(write_behind(store, receiver));
        (WriteBehind { queue }, writer)
    }

    /// Queues one change of the table.
    pub fn write(&self, write: Write) {
        // Fails only once the writer has stopped at shutdown.
        let _ = self.queue.send(Queued::Change(write));
    }

    /// Waits until every change queued so far is in the store, then stops the writer (at
    /// shutdown; later changes are not saved).
    pub async fn flush(&self) {
        let (done, flushed) = tokio::sync::oneshot::channel();
        if self.queue.send(Queued::Flush(done)).is_ok() {
            let _ = flushed.await;
        }
    }
}

/// Changes received, put back in table order.
struct Reorder {
    /// The `seq` of the next change to write.
    next: u64,
    waiting: BTreeMap<u64, BindingChange>,
    /// Since when changes wait behind a missing one.
    gap_since: Option<Instant>,
}

impl Reorder {
    fn new() -> Reorder {
        Reorder {
            next: 1,
            waiting: BTreeMap::new(),
            gap_since: None,
        }
    }

    fn add(&mut self, write: Write, batch: &mut Vec<BindingChange>) {
        if write.seq < self.next {
            // Later than a gap given up on: written now rather than never (a phone's next
            // refresh corrects it, as after a crash).
            tracing::debug!(seq = write.seq, "a binding change arrived after its turn");
            batch.push(write.change);
            return;
        }
        self.waiting.insert(write.seq, write.change);
    }

    /// Moves the changes whose turn has come into `batch`; with `all`, every change received
    /// (at a flush, or once a gap has waited [`GAP_WAIT`]).
    fn ready(&mut self, batch: &mut Vec<BindingChange>, all: bool, now: Instant) {
        loop {
            while let Some(change) = self.waiting.remove(&self.next) {
                batch.push(change);
                self.next += 1;
            }
            let Some((&first, _)) = self.waiting.first_key_value() else {
                self.gap_since = None;
                return;
            };
            let since = *self.gap_since.get_or_insert(now);
            if !all && now.saturating_duration_since(since) < GAP_WAIT {
                return;
            }
            tracing::warn!(
                missing = first - self.next,
                "binding changes never arrived: writing the later ones"
            );
            self.next = first;
            self.gap_since = None;
        }
    }

    /// When to stop waiting for a missing change.
    fn deadline(&self) -> Option<Instant> {
        self.gap_since.map(|since| since + GAP_WAIT)
    }
}

/// Writes queued changes in batches, in table order, until a flush. After the first change
/// of a batch it waits [`COALESCE`] for more, so a burst of REGISTERs becomes one transaction
/// of a few multi-row statements instead of a statement (and a thread hand-off) per REGISTER.
async fn write_behind(store: Arc<dyn LocationStore>, mut queue: mpsc::UnboundedReceiver<Queued>) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    let mut order = Reorder::new();
    loop {
        let received = match order.deadline() {
            None => queue.recv().await,
            Some(deadline) => match tokio::time::timeout_at(deadline, queue.recv()).await {
                Ok(received) => received,
                // The gap waited long enough: write what is behind it.
                Err(_) => {
                    order.ready(&mut batch, false, Instant::now());
                    save(store.as_ref(), &mut batch).await;
                    continue;
                }
            },
        };
        let Some(first) = received else {
            return;
        };
        if matches!(first, Queued::Change(_)) {
            tokio::time::sleep(COALESCE).await;
        }
        let mut flushed = None;
        let mut received = 0;
        let mut next = Some(first);
        while let Some(queued) = next.take() {
            match queued {
                Queued::Change(write) => {
                    order.add(write, &mut batch);
                    received += 1;
                }
                Queued::Flush(done) => {
                    flushed = Some(done);
                    break;
                }
            }
            if received < MAX_BATCH {
                next = queue.try_recv().ok();
            }
        }
        order.ready(&mut batch, flushed.is_some(), Instant::now());
        save(store.as_ref(), &mut batch).await;
        if let Some(done) = flushed {
            let _ = done.send(());
            return;
        }
    }
}

async fn save(store: &dyn LocationStore, batch: &mut Vec<BindingChange>) {
    if batch.is_empty() {
        return;
    }
    if let Err(error) = store.apply_binding_changes(batch).await {
        tracing::error!(%error, changes = batch.len(), "could not save registrations");
    }
    batch.clear();
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
        let location = Location::new();
        let (writes, writer) = WriteBehind::start(store.clone());
        let policy = RegistrarPolicy::default();
        // What the engines give out, collected to be handed over in the wrong order below.
        let apply = |request: pbx_sip::message::Request, now: u64| {
            location
                .update("1000", &peer(), "phone/1", |current| {
                    process_register(now, &request, current, &policy)
                })
                .unwrap()
                .writes
        };
        let mut given = apply(register("sip:1000@10.0.0.5:5062", 1, 600), 1_000);
        given.extend(apply(register("sip:1000@10.0.0.6:5062", 2, 600), 1_000));
        assert_eq!(location.count(), 2);
        assert_eq!(location.lookup("1000", 1_100).len(), 2);
        assert_eq!(location.lookup("1000", 1_600).len(), 0, "expired");
        given.extend(location.set_reachable("1000", "sip:1000@10.0.0.6:5062", false));
        assert_eq!(location.unreachable(), 1);
        given.extend(apply(register("sip:1000@10.0.0.5:5062", 3, 0), 1_001));
        assert_eq!(location.count(), 1);
        // Shards carry out their outputs independently: the writer restores table order.
        for write in given.into_iter().rev() {
            writes.write(write);
        }
        writes.flush().await;
        writer.await.unwrap();

        let saved = store.list_bindings().await.unwrap();
        assert_eq!(saved.len(), 1);
        assert_eq!(saved[0].contact(), "sip:1000@10.0.0.6:5062");
        assert_eq!(saved[0].transport, crate::config::Transport::Tcp);
        assert_eq!(saved[0].source, peer().remote);
        assert_eq!(saved[0].reachable, Some(false));

        // A restart: a new location table from the store.
        let restarted = Location::new();
        assert_eq!(restarted.restore(saved, 1_002), 1);
        let restored = restarted.lookup("1000", 1_002);
        assert_eq!(restored.len(), 1);
        assert_eq!(restored[0].conn, None, "the old connection is gone");
        assert_eq!(restored[0].peer().remote, peer().remote);
        assert_eq!(restored[0].user_agent, "phone/1");

        // The extension is removed while the PBX runs: its bindings go too.
        let (dropped, removals) = restarted.retain_extensions(|aor| aor != "1000");
        assert_eq!(dropped, 1);
        assert!(matches!(
            removals.as_slice(),
            [Write { change: BindingChange::RemoveAll { aor }, .. }] if aor == "1000"
        ));
        assert_eq!(restarted.count(), 0);
    }

    fn change(seq: u64) -> Write {
        Write {
            seq,
            change: BindingChange::RemoveAll {
                aor: seq.to_string(),
            },
        }
    }

    fn aors(batch: &[BindingChange]) -> Vec<String> {
        batch
            .iter()
            .map(|c| match c {
                BindingChange::RemoveAll { aor } => aor.clone(),
                other => format!("{other:?}"),
            })
            .collect()
    }

    #[test]
    fn changes_are_put_back_in_table_order_and_a_lost_one_is_not_waited_for_forever() {
        let t0 = Instant::now();
        let mut order = Reorder::new();
        let mut batch = Vec::new();
        order.add(change(2), &mut batch);
        order.ready(&mut batch, false, t0);
        assert!(batch.is_empty(), "2 waits for 1");
        order.add(change(1), &mut batch);
        order.ready(&mut batch, false, t0);
        assert_eq!(aors(&batch), ["1", "2"]);
        batch.clear();

        // 3 never comes: 4 waits, then is written once the gap has waited long enough.
        order.add(change(4), &mut batch);
        order.ready(&mut batch, false, t0);
        assert!(batch.is_empty());
        assert_eq!(order.deadline(), Some(t0 + GAP_WAIT));
        order.ready(&mut batch, false, t0 + GAP_WAIT);
        assert_eq!(aors(&batch), ["4"]);
        assert_eq!(order.deadline(), None);
        batch.clear();
        // 3 after all: written rather than dropped; 5 goes on from 4.
        order.add(change(3), &mut batch);
        order.add(change(5), &mut batch);
        order.ready(&mut batch, false, t0 + GAP_WAIT);
        assert_eq!(aors(&batch), ["3", "5"]);
        batch.clear();

        // A flush writes everything received, gaps or not.
        order.add(change(8), &mut batch);
        order.ready(&mut batch, true, t0 + GAP_WAIT);
        assert_eq!(aors(&batch), ["8"]);
    }
}
