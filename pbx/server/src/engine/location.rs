//! The location service: every extension's current bindings, in memory for speed and written
//! behind to the store so a restart keeps them (mechanism apart from storage, as Kamailio's
//! registrar and usrloc).

use crate::transport::{Peer, TransportKind};
use pbx_sip::registrar::{Binding as Rule, BindingChange as Plan, RegisterPlan};
use pbx_store::{Binding, BindingChange, LocationStore};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use tokio::sync::mpsc;

/// Where requests to a registered device go.
pub trait BindingPeer {
    /// Back over the flow it registered from (RFC 5626 §5.3; without outbound, the same
    /// symmetric path keeps a phone behind NAT reachable).
    fn peer(&self) -> Peer;
}

impl BindingPeer for Binding {
    fn peer(&self) -> Peer {
        Peer {
            // Every binding in the table came over a listener (`update`) or was kept by
            // `restore` only when its transport has one, so the fallback is never taken.
            kind: TransportKind::try_from(self.transport).unwrap_or(TransportKind::Udp),
            remote: self.source,
            local: self.local,
            conn: self.conn,
        }
    }
}

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

pub struct Location {
    table: Mutex<HashMap<String, Vec<Binding>>>,
    writes: mpsc::UnboundedSender<Write>,
}

impl Location {
    /// Starts the write-behind task; [`Location::flush`] ends it. Changes queued while a
    /// transaction commits are written together in the next one.
    pub fn new(store: Arc<dyn LocationStore>) -> (Location, tokio::task::JoinHandle<()>) {
        let (writes, queue) = mpsc::unbounded_channel::<Write>();
        let writer = tokio::spawn(write_behind(store, queue));
        let table = Mutex::new(HashMap::new());
        (Location { table, writes }, writer)
    }

    /// Waits until every change made so far is in the store, then stops the writer (at
    /// shutdown; later changes are not saved).
    pub async fn flush(&self) {
        let (done, flushed) = tokio::sync::oneshot::channel();
        if self.writes.send(Write::Flush(done)).is_ok() {
            let _ = flushed.await;
        }
    }

    /// Loads the bindings saved before a restart (the flows they came over are gone; requests
    /// go to their source address over a new connection or UDP).
    pub fn restore(&self, saved: Vec<Binding>, now_unix: u64) -> usize {
        let mut table = self.lock();
        let mut count = 0;
        for mut row in saved.into_iter().filter(|b| b.expires_at() > now_unix) {
            if TransportKind::try_from(row.transport).is_err() {
                tracing::warn!(aor = %row.aor, contact = %row.contact(), transport = %row.transport, "skipping a saved binding over a transport with no listener");
                continue;
            }
            row.conn = None;
            table.entry(row.aor.clone()).or_default().push(row);
            count += 1;
        }
        count
    }

    /// Runs `decide` on the AOR's current bindings and applies the plan it returns, atomically
    /// with respect to other REGISTERs for the same AOR.
    pub fn update<E>(
        &self,
        aor: &str,
        peer: &Peer,
        user_agent: &str,
        decide: impl FnOnce(&[Rule]) -> Result<RegisterPlan, E>,
    ) -> Result<RegisterPlan, E> {
        let mut table = self.lock();
        let current: Vec<Rule> = table
            .get(aor)
            .map(|list| list.iter().map(|r| r.binding.clone()).collect())
            .unwrap_or_default();
        let plan = decide(&current)?;
        let list = table.entry(aor.to_string()).or_default();
        // Logged once the table is unlocked: (added, binding).
        let mut logged: Vec<(bool, Binding)> = Vec::new();
        for change in &plan.changes {
            match change {
                Plan::Upsert(binding) => {
                    let existing = list.iter().find(|r| r.binding.same_key(binding));
                    let registration = Binding {
                        aor: aor.to_string(),
                        binding: binding.clone(),
                        transport: peer.kind.into(),
                        source: peer.remote,
                        local: peer.local,
                        conn: peer.conn,
                        user_agent: user_agent.to_string(),
                        // A refresh keeps what qualify last learnt about this device.
                        reachable: existing.and_then(|r| r.reachable),
                    };
                    // A refresh of a binding is not news; a new one is.
                    if existing.is_none() {
                        logged.push((true, registration.clone()));
                    }
                    self.write(BindingChange::Upsert(registration.clone()));
                    match list.iter_mut().find(|r| r.binding.same_key(binding)) {
                        Some(existing) => *existing = registration,
                        None => list.push(registration),
                    }
                }
                Plan::Remove(binding) => {
                    let (gone, kept): (Vec<Binding>, _) = std::mem::take(list)
                        .into_iter()
                        .partition(|r| r.binding.same_key(binding));
                    *list = kept;
                    logged.extend(gone.into_iter().map(|r| (false, r)));
                    let contact = binding.contact.to_string();
                    self.write(BindingChange::Remove {
                        aor: aor.to_string(),
                        contact,
                    });
                }
                Plan::RemoveAll => {
                    logged.extend(list.drain(..).map(|r| (false, r)));
                    self.write(BindingChange::RemoveAll {
                        aor: aor.to_string(),
                    });
                }
            }
        }
        if list.is_empty() {
            table.remove(aor);
        }
        drop(table);
        for (added, registration) in &logged {
            log_binding(aor, registration, if *added { "added" } else { "removed" });
        }
        Ok(plan)
    }

    /// The live registrations of one extension.
    pub fn lookup(&self, aor: &str, now_unix: u64) -> Vec<Binding> {
        let table = self.lock();
        table
            .get(aor)
            .map(|list| {
                list.iter()
                    .filter(|r| r.binding.expires_at > now_unix)
                    .cloned()
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Every live registration, for the qualify pass.
    pub fn snapshot(&self, now_unix: u64) -> Vec<(String, Binding)> {
        let table = self.lock();
        table
            .iter()
            .flat_map(|(aor, list)| {
                list.iter()
                    .filter(|r| r.binding.expires_at > now_unix)
                    .map(|r| (aor.clone(), r.clone()))
            })
            .collect()
    }

    /// Records a qualify result (RFC 3261 §11: any final response means the device is there).
    pub fn set_reachable(&self, aor: &str, contact: &str, reachable: bool) {
        let mut table = self.lock();
        let Some(list) = table.get_mut(aor) else {
            return;
        };
        let mut changed = false;
        for registration in list
            .iter_mut()
            .filter(|r| r.binding.contact.to_string() == contact)
        {
            changed |= registration.reachable != Some(reachable);
            registration.reachable = Some(reachable);
        }
        if changed {
            if !reachable {
                tracing::warn!(%aor, %contact, "registered device does not answer OPTIONS");
            }
            self.write(BindingChange::Reachable {
                aor: aor.to_string(),
                contact: contact.to_string(),
                reachable,
            });
        }
    }

    /// Drops every binding of an extension that no longer exists (removed with the CLI while
    /// the PBX runs). Returns how many bindings went.
    pub fn retain_extensions(&self, exists: impl Fn(&str) -> bool) -> usize {
        let mut table = self.lock();
        let gone: Vec<String> = table.keys().filter(|aor| !exists(aor)).cloned().collect();
        let mut dropped = 0;
        for aor in gone {
            dropped += table.remove(&aor).map_or(0, |list| list.len());
            self.write(BindingChange::RemoveAll { aor });
        }
        dropped
    }

    /// How many live bindings failed their last qualify.
    pub fn unreachable(&self) -> usize {
        self.lock()
            .values()
            .flatten()
            .filter(|r| r.reachable == Some(false))
            .count()
    }

    /// Drops expired bindings from memory (the store prunes its own copy). Returns how many.
    pub fn prune(&self, now_unix: u64) -> usize {
        let mut table = self.lock();
        let mut expired = Vec::new();
        table.retain(|aor, list| {
            let (gone, live) = std::mem::take(list)
                .into_iter()
                .partition(|r: &Binding| r.binding.expires_at <= now_unix);
            *list = live;
            expired.extend(gone.into_iter().map(|r| (aor.clone(), r)));
            !list.is_empty()
        });
        drop(table);
        for (aor, registration) in &expired {
            log_binding(aor, registration, "expired");
        }
        expired.len()
    }

    /// How many bindings are live.
    pub fn count(&self) -> usize {
        self.lock().values().map(Vec::len).sum()
    }

    fn write(&self, change: BindingChange) {
        // Fails only once the writer has stopped at shutdown.
        let _ = self.writes.send(Write::Change(change));
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Vec<Binding>>> {
        self.table.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// One info line per binding added, removed or expired (the contact, where it came from and
/// the device's own name for itself: nothing secret).
fn log_binding(aor: &str, registration: &Binding, what: &str) {
    tracing::info!(
        extension = %aor,
        contact = %registration.binding.contact,
        transport = %registration.transport,
        source = %registration.source,
        expires_at = registration.binding.expires_at,
        user_agent = %registration.user_agent,
        "registration {what}"
    );
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
        let (location, writer) = Location::new(store.clone());
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
        location.flush().await;
        writer.await.unwrap();

        let saved = store.list_bindings().await.unwrap();
        assert_eq!(saved.len(), 1);
        assert_eq!(saved[0].contact(), "sip:1000@10.0.0.6:5062");
        assert_eq!(saved[0].transport, crate::config::Transport::Tcp);
        assert_eq!(saved[0].source, peer().remote);
        assert_eq!(saved[0].reachable, Some(false));

        // A restart: a new location table from the store.
        let (restarted, _writer) = Location::new(store.clone());
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
