//! The ports are what consumers depend on: an in-memory fake must pass the same contract
//! tests as the sqlx store, so a consumer's test can use one in its place.

#[allow(dead_code)]
mod store_suite;

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use pbx_store::{
    Ban, BanStore, Binding, BindingChange, LocationStore, StoreError, Trunk, TrunkStatus,
    TrunkStore, now_unix,
};

/// Bindings keyed by (aor, contact), in the order `list_bindings` promises.
#[derive(Default)]
struct MemoryLocations(Mutex<BTreeMap<(String, String), Binding>>);

impl MemoryLocations {
    fn apply(&self, change: &BindingChange) {
        let mut rows = self.0.lock().unwrap_or_else(|e| e.into_inner());
        match change {
            BindingChange::Upsert(b) => {
                let key = (b.aor.clone(), b.contact());
                // As the table: the qualify result stays, the connection is not kept.
                let reachable = rows.get(&key).and_then(|old| old.reachable);
                let row = Binding {
                    reachable,
                    conn: None,
                    ..b.clone()
                };
                rows.insert(key, row);
            }
            BindingChange::Remove { aor, contact } => {
                rows.remove(&(aor.clone(), contact.clone()));
            }
            BindingChange::RemoveAll { aor } => rows.retain(|(a, _), _| a != aor),
            BindingChange::Reachable {
                aor,
                contact,
                reachable,
            } => {
                if let Some(row) = rows.get_mut(&(aor.clone(), contact.clone())) {
                    row.reachable = Some(*reachable);
                }
            }
        }
    }

    fn len(&self) -> usize {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).len()
    }
}

#[async_trait]
impl LocationStore for MemoryLocations {
    async fn upsert_binding(&self, b: &Binding) -> Result<(), StoreError> {
        self.apply(&BindingChange::Upsert(b.clone()));
        Ok(())
    }

    async fn apply_binding_changes(&self, changes: &[BindingChange]) -> Result<(), StoreError> {
        changes.iter().for_each(|c| self.apply(c));
        Ok(())
    }

    async fn set_reachable(
        &self,
        aor: &str,
        contact: &str,
        reachable: bool,
    ) -> Result<bool, StoreError> {
        let key = (aor.to_string(), contact.to_string());
        let found = self
            .0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .contains_key(&key);
        self.apply(&BindingChange::Reachable {
            aor: key.0,
            contact: key.1,
            reachable,
        });
        Ok(found)
    }

    async fn remove_binding(&self, aor: &str, contact: &str) -> Result<bool, StoreError> {
        let key = (aor.to_string(), contact.to_string());
        Ok(self
            .0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&key)
            .is_some())
    }

    async fn remove_bindings(&self, aor: &str) -> Result<u64, StoreError> {
        let before = self.len();
        self.apply(&BindingChange::RemoveAll {
            aor: aor.to_string(),
        });
        Ok((before - self.len()) as u64)
    }

    async fn list_bindings(&self) -> Result<Vec<Binding>, StoreError> {
        let rows = self.0.lock().unwrap_or_else(|e| e.into_inner());
        Ok(rows.values().cloned().collect())
    }

    async fn prune_bindings(&self, now_unix: u64) -> Result<u64, StoreError> {
        let before = self.len();
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .retain(|_, b| b.expires_at() > now_unix);
        Ok((before - self.len()) as u64)
    }
}

#[derive(Default)]
struct MemoryBans(Mutex<BTreeMap<IpAddr, Ban>>);

#[async_trait]
impl BanStore for MemoryBans {
    async fn add_ban(&self, addr: IpAddr, reason: &str, until_unix: u64) -> Result<(), StoreError> {
        let ban = Ban {
            address: addr,
            reason: reason.to_string(),
            until: until_unix,
            created_at: now_unix(),
        };
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(addr, ban);
        Ok(())
    }

    async fn remove_ban(&self, addr: IpAddr) -> Result<bool, StoreError> {
        Ok(self
            .0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&addr)
            .is_some())
    }

    async fn active_bans(&self, now_unix: u64) -> Result<Vec<Ban>, StoreError> {
        let bans = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let mut active: Vec<Ban> = bans
            .values()
            .filter(|b| b.until > now_unix)
            .cloned()
            .collect();
        active.sort_by_key(|b| (b.until, b.address.to_string()));
        Ok(active)
    }

    async fn prune_bans(&self, now_unix: u64) -> Result<u64, StoreError> {
        let mut bans = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let before = bans.len();
        bans.retain(|_, b| b.until > now_unix);
        Ok((before - bans.len()) as u64)
    }
}

/// Trunks and their states by name, in the order `list_trunks` promises.
#[derive(Default)]
struct MemoryTrunks(Mutex<(BTreeMap<String, Trunk>, BTreeMap<String, TrunkStatus>)>);

impl MemoryTrunks {
    fn lock(
        &self,
    ) -> std::sync::MutexGuard<'_, (BTreeMap<String, Trunk>, BTreeMap<String, TrunkStatus>)> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[async_trait]
impl TrunkStore for MemoryTrunks {
    async fn add_trunk(&self, trunk: &Trunk) -> Result<(), StoreError> {
        if let Some(problem) = trunk.problems().into_iter().next() {
            return Err(StoreError::Invalid(problem));
        }
        let mut tables = self.lock();
        if tables.0.contains_key(&trunk.name) {
            return Err(StoreError::Duplicate(format!("trunk {}", trunk.name)));
        }
        let row = Trunk {
            created_at: now_unix(),
            ..trunk.clone()
        };
        tables.0.insert(trunk.name.clone(), row);
        Ok(())
    }

    async fn list_trunks(&self) -> Result<Vec<Trunk>, StoreError> {
        Ok(self.lock().0.values().cloned().collect())
    }

    async fn remove_trunk(&self, name: &str) -> Result<bool, StoreError> {
        let mut tables = self.lock();
        tables.1.remove(name);
        Ok(tables.0.remove(name).is_some())
    }

    async fn update_trunk(&self, trunk: &Trunk) -> Result<bool, StoreError> {
        if let Some(problem) = trunk.problems().into_iter().next() {
            return Err(StoreError::Invalid(problem));
        }
        let mut tables = self.lock();
        let Some(row) = tables.0.get_mut(&trunk.name) else {
            return Ok(false);
        };
        *row = Trunk {
            created_at: row.created_at,
            ..trunk.clone()
        };
        Ok(true)
    }

    async fn set_trunk_status(&self, status: &TrunkStatus) -> Result<(), StoreError> {
        self.lock().1.insert(status.name.clone(), status.clone());
        Ok(())
    }

    async fn trunk_statuses(&self) -> Result<Vec<TrunkStatus>, StoreError> {
        Ok(self.lock().1.values().cloned().collect())
    }
}

#[tokio::test]
async fn a_memory_trunk_store_keeps_the_contract() {
    let store: Arc<dyn TrunkStore> = Arc::new(MemoryTrunks::default());
    store_suite::trunks(store.as_ref()).await;
}

#[tokio::test]
async fn a_memory_location_store_keeps_the_contract() {
    // Used as a consumer would hold it.
    let store: Arc<dyn LocationStore> = Arc::new(MemoryLocations::default());
    store_suite::registrations(store.as_ref()).await;
    store_suite::binding_batches(store.as_ref()).await;
}

#[tokio::test]
async fn a_memory_ban_store_keeps_the_contract() {
    let store: Arc<dyn BanStore> = Arc::new(MemoryBans::default());
    store_suite::bans(store.as_ref()).await;
}
