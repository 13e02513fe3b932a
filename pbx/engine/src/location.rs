//! The location service: every extension's current bindings, in memory for speed. Each
//! change comes back to the caller as a [`Write`] (the engine makes it an
//! `Output::Location`), which the shell writes behind to the store so a restart keeps them
//! (mechanism apart from storage, as Kamailio's registrar and usrloc).

use crate::peer::{Peer, TransportKind};
use pbx_sip::registrar::{Binding as Rule, BindingChange as Plan, RegisterPlan};
use pbx_store_types::{Binding, BindingChange};
use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

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

/// One change of the table, for the store. `seq` numbers the changes in the order they were
/// made to the table (1, 2, 3, ... without gaps, taken under its lock): shards carry out their
/// outputs independently, so two changes of one AOR made by two shards (a `Contact: *` from
/// one device while another refreshes) may reach the writer in the other order; the writer
/// puts them back in table order by `seq`.
#[derive(Clone, Debug, PartialEq)]
pub struct Write {
    pub seq: u64,
    pub change: BindingChange,
}

/// What [`Location::update`] did: the registrar's plan and the changes to save.
#[derive(Debug)]
pub struct Updated {
    pub plan: RegisterPlan,
    pub writes: Vec<Write>,
}

#[derive(Default)]
pub struct Location {
    table: Mutex<HashMap<String, Vec<Binding>>>,
    /// The `seq` of the last [`Write`]; only advanced with `table` locked.
    seq: AtomicU64,
}

impl Location {
    /// An empty table.
    pub fn new() -> Location {
        Location::default()
    }

    /// Loads the bindings saved before a restart (the flows they came over are gone; requests
    /// go to their source address over a new connection or UDP).
    pub fn restore(&self, saved: Vec<Binding>, now_unix: u64) -> usize {
        let mut table = self.lock();
        let mut count = 0;
        for mut row in saved.into_iter().filter(|b| b.expires_at() > now_unix) {
            match TransportKind::try_from(row.transport) {
                Err(_) => {
                    tracing::warn!(aor = %row.aor, contact = %row.contact(), transport = %row.transport, "skipping a saved binding over a transport with no listener");
                    continue;
                }
                // RFC 7118 §5: a WebSocket client is reachable only over its connection,
                // which did not survive the restart; it registers again when it reconnects.
                Ok(kind) if kind.is_websocket() => continue,
                Ok(_) => {}
            }
            row.conn = None;
            table.entry(row.aor.clone()).or_default().push(row);
            count += 1;
        }
        count
    }

    /// The saved WebSocket bindings [`Location::restore`] leaves out, as removals for the
    /// store: their connections did not survive the restart, so `pbx registration list`
    /// must not show them until they expire.
    pub fn forget_websocket_rows(&self, saved: &[Binding]) -> Vec<Write> {
        let _table = self.lock();
        saved
            .iter()
            .filter(|row| TransportKind::try_from(row.transport).is_ok_and(|k| k.is_websocket()))
            .map(|row| {
                self.stamp(BindingChange::Remove {
                    aor: row.aor.clone(),
                    contact: row.contact(),
                })
            })
            .collect()
    }

    /// Runs `decide` on the AOR's current bindings and applies the plan it returns, atomically
    /// with respect to other REGISTERs for the same AOR.
    pub fn update<E>(
        &self,
        aor: &str,
        peer: &Peer,
        user_agent: &str,
        decide: impl FnOnce(&[Rule]) -> Result<RegisterPlan, E>,
    ) -> Result<Updated, E> {
        let mut table = self.lock();
        let current: Vec<Rule> = table
            .get(aor)
            .map(|list| list.iter().map(|r| r.binding.clone()).collect())
            .unwrap_or_default();
        let plan = decide(&current)?;
        let list = table.entry(aor.to_string()).or_default();
        // Logged once the table is unlocked: (added, binding).
        let mut logged: Vec<(bool, Binding)> = Vec::new();
        let mut writes = Vec::with_capacity(plan.changes.len());
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
                    writes.push(self.stamp(BindingChange::Upsert(registration.clone())));
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
                    writes.push(self.stamp(BindingChange::Remove {
                        aor: aor.to_string(),
                        contact,
                    }));
                }
                Plan::RemoveAll => {
                    logged.extend(list.drain(..).map(|r| (false, r)));
                    writes.push(self.stamp(BindingChange::RemoveAll {
                        aor: aor.to_string(),
                    }));
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
        Ok(Updated { plan, writes })
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

    /// A WebSocket connection closed: the bindings registered over it go with it at once
    /// (RFC 7118 §5: nothing else reaches that client; RFC 5626 §5.3, the flow failed).
    /// Returns the changes to save.
    pub fn remove_flow(&self, conn: crate::peer::ConnId) -> Vec<Write> {
        let mut table = self.lock();
        let mut gone = Vec::new();
        let mut writes = Vec::new();
        table.retain(|aor, list| {
            let (closed, kept): (Vec<Binding>, _) = std::mem::take(list)
                .into_iter()
                .partition(|r| r.conn == Some(conn));
            *list = kept;
            for registration in closed {
                gone.push((aor.clone(), registration));
            }
            !list.is_empty()
        });
        for (aor, registration) in &gone {
            writes.push(self.stamp(BindingChange::Remove {
                aor: aor.clone(),
                contact: registration.binding.contact.to_string(),
            }));
        }
        drop(table);
        for (aor, registration) in &gone {
            log_binding(aor, registration, "removed (its connection closed)");
        }
        writes
    }

    /// Records a qualify result (RFC 3261 §11: any final response means the device is there);
    /// the change to save, when it is news.
    pub fn set_reachable(&self, aor: &str, contact: &str, reachable: bool) -> Option<Write> {
        let mut table = self.lock();
        let list = table.get_mut(aor)?;
        let mut changed = false;
        for registration in list
            .iter_mut()
            .filter(|r| r.binding.contact.to_string() == contact)
        {
            changed |= registration.reachable != Some(reachable);
            registration.reachable = Some(reachable);
        }
        if !changed {
            return None;
        }
        if !reachable {
            tracing::warn!(%aor, %contact, "registered device does not answer OPTIONS");
        }
        Some(self.stamp(BindingChange::Reachable {
            aor: aor.to_string(),
            contact: contact.to_string(),
            reachable,
        }))
    }

    /// Drops every binding of an extension that no longer exists (removed with the CLI while
    /// the PBX runs). Returns how many bindings went, and the changes to save.
    pub fn retain_extensions(&self, exists: impl Fn(&str) -> bool) -> (usize, Vec<Write>) {
        let mut table = self.lock();
        let gone: Vec<String> = table.keys().filter(|aor| !exists(aor)).cloned().collect();
        let mut dropped = 0;
        let mut writes = Vec::with_capacity(gone.len());
        for aor in gone {
            dropped += table.remove(&aor).map_or(0, |list| list.len());
            writes.push(self.stamp(BindingChange::RemoveAll { aor }));
        }
        (dropped, writes)
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

    /// Numbers a change; called only with the table locked, so `seq` is table order.
    fn stamp(&self, change: BindingChange) -> Write {
        let seq = self.seq.fetch_add(1, Ordering::Relaxed) + 1;
        Write { seq, change }
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

#[cfg(test)]
mod tests {
    use super::*;
    use pbx_sip::message::{Message, Request};
    use pbx_sip::registrar::{RegistrarPolicy, process_register};

    fn register(contact: &str, call_id: &str) -> Request {
        let text = format!(
            "REGISTER sip:pbx.test SIP/2.0\r\nVia: SIP/2.0/WS abc.invalid;branch=z9hG4bK{call_id}\r\n\
             From: <sip:1000@pbx.test>;tag=a\r\nTo: <sip:1000@pbx.test>\r\nCall-ID: {call_id}\r\n\
             CSeq: 1 REGISTER\r\nContact: <{contact}>\r\nExpires: 600\r\n\
             Max-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
        );
        match pbx_sip::parse::parse_message(bytes::Bytes::from(text)) {
            Ok(Message::Request(r)) => r,
            other => panic!("not a request: {other:?}"),
        }
    }

    fn peer(kind: TransportKind, conn: u64) -> Peer {
        Peer {
            kind,
            remote: format!("127.0.0.1:{}", 40000 + conn).parse().unwrap(),
            local: "127.0.0.1:8080".parse().unwrap(),
            conn: Some(conn),
        }
    }

    fn add(location: &Location, contact: &str, peer: &Peer) -> Vec<Write> {
        let call_id = format!("reg{}", peer.conn.unwrap_or(0));
        let request = register(contact, &call_id);
        let policy = RegistrarPolicy::default();
        location
            .update("1000", peer, "browser", |current| {
                process_register(1_000, &request, current, &policy)
            })
            .unwrap()
            .writes
    }

    #[test]
    fn a_closed_websocket_takes_its_bindings_and_only_those() {
        let location = Location::new();
        add(
            &location,
            "sip:a@a.invalid;transport=ws",
            &peer(TransportKind::Ws, 1),
        );
        add(
            &location,
            "sip:b@b.invalid;transport=ws",
            &peer(TransportKind::Wss, 2),
        );
        add(&location, "sip:1000@10.0.0.5", &peer(TransportKind::Tcp, 3));
        let bindings = location.lookup("1000", 1_000);
        assert_eq!(bindings.len(), 3);
        let ws = bindings.iter().find(|b| b.conn == Some(1)).unwrap();
        assert_eq!(ws.transport, pbx_sip::transport::Transport::Ws);
        assert_eq!(
            ws.peer().kind,
            TransportKind::Ws,
            "requests go back over WS"
        );

        let writes = location.remove_flow(1);
        assert_eq!(writes.len(), 1);
        assert!(matches!(
            &writes[0].change,
            BindingChange::Remove { aor, contact } if aor == "1000" && contact.contains("a.invalid")
        ));
        assert_eq!(location.count(), 2);
        assert!(location.remove_flow(1).is_empty(), "already gone");
        assert!(location.remove_flow(99).is_empty(), "unknown connection");
        location.remove_flow(2);
        let left = location.lookup("1000", 1_000);
        assert_eq!(left.len(), 1);
        assert_eq!(left[0].transport, pbx_sip::transport::Transport::Tcp);
    }

    #[test]
    fn websocket_bindings_are_not_restored_after_a_restart() {
        let location = Location::new();
        add(
            &location,
            "sip:a@a.invalid;transport=ws",
            &peer(TransportKind::Ws, 1),
        );
        add(&location, "sip:1000@10.0.0.5", &peer(TransportKind::Tcp, 2));
        let saved: Vec<Binding> = location
            .snapshot(1_000)
            .into_iter()
            .map(|(_, b)| b)
            .collect();
        let restarted = Location::new();
        let forgotten = restarted.forget_websocket_rows(&saved);
        assert_eq!(forgotten.len(), 1);
        assert!(matches!(
            &forgotten[0].change,
            BindingChange::Remove { contact, .. } if contact.contains("a.invalid")
        ));
        assert_eq!(restarted.restore(saved, 1_000), 1);
        let kept = restarted.lookup("1000", 1_000);
        assert_eq!(kept.len(), 1);
        assert_eq!(kept[0].transport, pbx_sip::transport::Transport::Tcp);
        assert_eq!(kept[0].conn, None);
    }
}
