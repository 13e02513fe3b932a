//! The location service: every extension's current bindings, in memory for speed; each
//! change is handed to the shell, which writes it behind to the store so a restart keeps them
//! (mechanism apart from storage, as Kamailio's registrar and usrloc).

use crate::peer::{Peer, TransportKind};
use pbx_sip::registrar::{Binding as Rule, BindingChange as Plan, RegisterPlan};
use pbx_store::{Binding, BindingChange};
use std::collections::HashMap;
use std::sync::Mutex;

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

/// Where the table's changes go, in table order: the shell's write-behind queue. It must not
/// block (it is called with the table locked).
pub type ChangeSink = Box<dyn Fn(BindingChange) + Send + Sync>;

pub struct Location {
    table: Mutex<HashMap<String, Vec<Binding>>>,
    writes: ChangeSink,
}

impl Location {
    /// An empty table whose changes go to `writes`.
    pub fn new(writes: ChangeSink) -> Location {
        Location {
            table: Mutex::new(HashMap::new()),
            writes,
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
        (self.writes)(change);
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
