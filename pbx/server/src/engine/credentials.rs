//! A short-lived cache of extension credentials in front of the store, so a burst of
//! REGISTERs does not become a burst of queries. Extensions added or removed with the CLI
//! while the PBX runs are seen within [`TTL`].

use crate::store::{Credentials, Store};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub const TTL: Duration = Duration::from_secs(5);
/// Unknown names are cached too (an attacker guessing names must not turn each guess into a
/// query), but the cache is bounded: past this many entries it starts over.
const MAX_ENTRIES: usize = 100_000;

/// `None` inside means "no such extension".
pub type Lookup = Option<Arc<Credentials>>;

pub struct CredentialCache {
    store: Store,
    entries: Mutex<HashMap<String, (Instant, Lookup)>>,
}

impl CredentialCache {
    pub fn new(store: Store) -> CredentialCache {
        CredentialCache {
            store,
            entries: Mutex::new(HashMap::new()),
        }
    }

    /// The cached answer, if fresh.
    pub fn cached(&self, user: &str, now: Instant) -> Option<Lookup> {
        let entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        entries
            .get(user)
            .filter(|(at, _)| now.saturating_duration_since(*at) < TTL)
            .map(|(_, lookup)| lookup.clone())
    }

    /// Asks the store and caches the answer. A store error is not cached.
    pub async fn load(&self, user: &str) -> Result<Lookup, crate::store::StoreError> {
        let lookup = self.store.credentials(user).await?.map(Arc::new);
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        if entries.len() >= MAX_ENTRIES {
            entries.clear();
        }
        entries.insert(user.to_string(), (Instant::now(), lookup.clone()));
        Ok(lookup)
    }
}
