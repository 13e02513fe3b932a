//! The location service: every extension's current bindings, in memory for speed and written
//! behind to the store so a restart keeps them (mechanism apart from storage, as Kamailio's
//! registrar and usrloc).

use crate::store::{Store, StoredBinding};
use crate::transport::{ConnId, Peer, TransportKind};
use pbx_sip::registrar::{Binding, BindingChange, RegisterPlan};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Mutex;
use tokio::sync::mpsc;

/// One device's binding and how it reached the PBX.
#[derive(Clone, Debug)]
pub struct Registration {
    pub binding: Binding,
    pub transport: TransportKind,
    pub source: SocketAddr,
    pub local: SocketAddr,
    pub conn: Option<ConnId>,
    pub user_agent: String,
    /// The last OPTIONS qualify result (`None` until qualified).
    pub reachable: Option<bool>,
}

impl Registration {
    /// Where requests to this device go: back over the flow it registered from (RFC 5626
    /// §5.3; without outbound, the same symmetric path keeps a phone behind NAT reachable).
    pub fn peer(&self) -> Peer {
        Peer {
            kind: self.transport,
            remote: self.source,
            local: self.local,
            conn: self.conn,
        }
    }

    fn stored(&self, aor: &str) -> StoredBinding {
        StoredBinding {
            aor: aor.to_string(),
            contact: self.binding.contact.to_string(),
            expires_at: self.binding.expires_at,
            call_id: self.binding.call_id.clone(),
            cseq: self.binding.cseq,
            q: self.binding.q,
            instance: self.binding.instance.clone(),
            reg_id: self.binding.reg_id,
            transport: self.transport.into(),
            source: self.source,
            local: self.local,
            user_agent: self.user_agent.clone(),
            reachable: self.reachable,
        }
    }
}

enum Write {
    Upsert(StoredBinding),
    Remove {
        aor: String,
        contact: String,
    },
    RemoveAll(String),
    Reachable {
        aor: String,
        contact: String,
        reachable: bool,
    },
    /// Everything queued before it is written: acknowledge and stop.
    Flush(tokio::sync::oneshot::Sender<()>),
}

pub struct Location {
    table: Mutex<HashMap<String, Vec<Registration>>>,
    writes: mpsc::UnboundedSender<Write>,
}

impl Location {
    /// Starts the write-behind task; [`Location::flush`] ends it.
    pub fn new(store: Store) -> (Location, tokio::task::JoinHandle<()>) {
        let (writes, mut queue) = mpsc::unbounded_channel::<Write>();
        let writer = tokio::spawn(async move {
            while let Some(write) = queue.recv().await {
                let result = match &write {
                    Write::Upsert(b) => store.upsert_binding(b).await,
                    Write::Remove { aor, contact } => {
                        store.remove_binding(aor, contact).await.map(|_| ())
                    }
                    Write::RemoveAll(aor) => store.remove_bindings(aor).await.map(|_| ()),
                    Write::Reachable {
                        aor,
                        contact,
                        reachable,
                    } => store
                        .set_reachable(aor, contact, *reachable)
                        .await
                        .map(|_| ()),
                    Write::Flush(_) => Ok(()),
                };
                if let Write::Flush(done) = write {
                    let _ = done.send(());
                    break;
                }
                if let Err(error) = result {
                    tracing::error!(%error, "could not save a registration");
                }
            }
        });
        (
            Location {
                table: Mutex::new(HashMap::new()),
                writes,
            },
            writer,
        )
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
    pub fn restore(&self, saved: Vec<StoredBinding>, now_unix: u64) -> usize {
        let mut table = self.lock();
        let mut count = 0;
        for row in saved.into_iter().filter(|b| b.expires_at > now_unix) {
            let Some(registration) = restored(&row) else {
                tracing::warn!(aor = %row.aor, contact = %row.contact, "skipping an unreadable saved binding");
                continue;
            };
            table.entry(row.aor.clone()).or_default().push(registration);
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
        decide: impl FnOnce(&[Binding]) -> Result<RegisterPlan, E>,
    ) -> Result<RegisterPlan, E> {
        let mut table = self.lock();
        let current: Vec<Binding> = table
            .get(aor)
            .map(|list| list.iter().map(|r| r.binding.clone()).collect())
            .unwrap_or_default();
        let plan = decide(&current)?;
        let list = table.entry(aor.to_string()).or_default();
        for change in &plan.changes {
            match change {
                BindingChange::Upsert(binding) => {
                    let existing = list.iter().find(|r| r.binding.same_key(binding));
                    let registration = Registration {
                        binding: binding.clone(),
                        transport: peer.kind,
                        source: peer.remote,
                        local: peer.local,
                        conn: peer.conn,
                        user_agent: user_agent.to_string(),
                        // A refresh keeps what qualify last learnt about this device.
                        reachable: existing.and_then(|r| r.reachable),
                    };
                    let _ = self.writes.send(Write::Upsert(registration.stored(aor)));
                    match list.iter_mut().find(|r| r.binding.same_key(binding)) {
                        Some(existing) => *existing = registration,
                        None => list.push(registration),
                    }
                }
                BindingChange::Remove(binding) => {
                    list.retain(|r| !r.binding.same_key(binding));
                    let contact = binding.contact.to_string();
                    let _ = self.writes.send(Write::Remove {
                        aor: aor.to_string(),
                        contact,
                    });
                }
                BindingChange::RemoveAll => {
                    list.clear();
                    let _ = self.writes.send(Write::RemoveAll(aor.to_string()));
                }
            }
        }
        if list.is_empty() {
            table.remove(aor);
        }
        Ok(plan)
    }

    /// The live registrations of one extension.
    pub fn lookup(&self, aor: &str, now_unix: u64) -> Vec<Registration> {
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
    pub fn snapshot(&self, now_unix: u64) -> Vec<(String, Registration)> {
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
            let write = Write::Reachable {
                aor: aor.to_string(),
                contact: contact.to_string(),
                reachable,
            };
            let _ = self.writes.send(write);
        }
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
        let mut pruned = 0;
        table.retain(|_, list| {
            let before = list.len();
            list.retain(|r| r.binding.expires_at > now_unix);
            pruned += before - list.len();
            !list.is_empty()
        });
        pruned
    }

    /// How many bindings are live.
    pub fn count(&self) -> usize {
        self.lock().values().map(Vec::len).sum()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Vec<Registration>>> {
        self.table.lock().unwrap_or_else(|e| e.into_inner())
    }
}

fn restored(row: &StoredBinding) -> Option<Registration> {
    let binding = Binding {
        contact: pbx_sip::uri::Uri::parse(&row.contact).ok()?,
        expires_at: row.expires_at,
        call_id: row.call_id.clone(),
        cseq: row.cseq,
        q: row.q,
        instance: row.instance.clone(),
        reg_id: row.reg_id,
    };
    Some(Registration {
        binding,
        transport: TransportKind::try_from(row.transport).ok()?,
        source: row.source,
        local: row.local,
        conn: None,
        user_agent: row.user_agent.clone(),
        reachable: row.reachable,
    })
}
