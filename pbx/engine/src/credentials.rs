//! Every extension's credentials, in memory. The shell re-reads the whole table from the
//! store in the background and hands it over with [`CredentialCache::replace`], so a
//! REGISTER never waits for the database on the hot path. A name not in the table is looked
//! up once by the shell (an extension added a moment ago, [`crate::Output::LoadCredentials`])
//! and, when unknown, remembered as unknown for [`REFRESH`], so guessing names does not
//! become database load.

use pbx_store_types::Credentials;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

/// How often the shell re-reads the table, and how long an unknown name is remembered.
pub const REFRESH: Duration = Duration::from_secs(5);
/// Unknown names remembered at most; past this the list starts over.
const MAX_UNKNOWN: usize = 100_000;

/// `None` inside means "no such extension".
pub type Lookup = Option<Arc<Credentials>>;

#[derive(Default)]
pub struct CredentialCache {
    /// The store's extensions revision the table was read at.
    revision: Mutex<Option<u64>>,
    known: RwLock<HashMap<String, Arc<Credentials>>>,
    unknown: Mutex<HashMap<String, Instant>>,
}

impl CredentialCache {
    pub fn new() -> CredentialCache {
        CredentialCache::default()
    }

    /// The answer without asking the store, when there is one.
    pub fn cached(&self, user: &str, now: Instant) -> Option<Lookup> {
        if let Some(found) = self
            .known
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(user)
        {
            return Some(Some(found.clone()));
        }
        let unknown = self.unknown.lock().unwrap_or_else(|e| e.into_inner());
        unknown
            .get(user)
            .filter(|at| now.saturating_duration_since(**at) < REFRESH)
            .map(|_| None)
    }

    /// Whether the table knows this extension (as of the last refresh or lookup).
    pub fn knows(&self, user: &str) -> bool {
        self.known
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .contains_key(user)
    }

    /// Remembers the store's answer about one name, looked up at `now`.
    pub fn remember(&self, user: &str, found: Option<Credentials>, now: Instant) -> Lookup {
        match found {
            Some(found) => {
                let found = Arc::new(found);
                let mut known = self.known.write().unwrap_or_else(|e| e.into_inner());
                known.insert(user.to_string(), found.clone());
                Some(found)
            }
            None => {
                let mut unknown = self.unknown.lock().unwrap_or_else(|e| e.into_inner());
                if unknown.len() >= MAX_UNKNOWN {
                    unknown.clear();
                }
                unknown.insert(user.to_string(), now);
                None
            }
        }
    }

    /// The store's extensions revision the table was last read at.
    pub fn revision(&self) -> Option<u64> {
        *self.revision.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The number of extensions known.
    pub fn len(&self) -> usize {
        self.known.read().unwrap_or_else(|e| e.into_inner()).len()
    }

    /// Whether no extension is known.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Replaces the table with the store's, read at `revision` and `now`; unknown names
    /// older than [`REFRESH`] are forgotten. Returns the number of extensions known.
    pub fn replace(&self, revision: u64, all: Vec<Credentials>, now: Instant) -> usize {
        *self.revision.lock().unwrap_or_else(|e| e.into_inner()) = Some(revision);
        let table: HashMap<String, Arc<Credentials>> = all
            .into_iter()
            .map(|c| (c.number.clone(), Arc::new(c)))
            .collect();
        let count = table.len();
        *self.known.write().unwrap_or_else(|e| e.into_inner()) = table;
        self.unknown
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .retain(|_, at| now.saturating_duration_since(*at) < REFRESH);
        count
    }
}
