//! Every extension's credentials, in memory. The whole table is re-read from the store every
//! [`REFRESH`] in the background, so a REGISTER never waits for the database on the hot
//! path, and extensions added, changed (`pbx extension set`: a new password, policy or
//! context) or removed with the CLI while the PBX runs are seen within that time. A name not in the table is looked up once (an extension added a moment ago) and,
//! when unknown, remembered as unknown for [`REFRESH`], so guessing names does not become
//! database load.

use pbx_store::{CredentialStore, Credentials, StoreError};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

pub const REFRESH: Duration = Duration::from_secs(5);
/// Unknown names remembered at most; past this the list starts over.
const MAX_UNKNOWN: usize = 100_000;

/// `None` inside means "no such extension".
pub type Lookup = Option<Arc<Credentials>>;

pub struct CredentialCache {
    store: Arc<dyn CredentialStore>,
    /// The store's extensions revision the table was read at.
    revision: Mutex<Option<u64>>,
    known: RwLock<HashMap<String, Arc<Credentials>>>,
    unknown: Mutex<HashMap<String, Instant>>,
}

impl CredentialCache {
    pub fn new(store: Arc<dyn CredentialStore>) -> CredentialCache {
        CredentialCache {
            store,
            revision: Mutex::default(),
            known: RwLock::default(),
            unknown: Mutex::default(),
        }
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

    /// Asks the store about one name and remembers the answer. A store error is not cached.
    pub async fn load(&self, user: &str) -> Result<Lookup, StoreError> {
        match self.store.credentials(user).await? {
            Some(found) => {
                let found = Arc::new(found);
                let mut known = self.known.write().unwrap_or_else(|e| e.into_inner());
                known.insert(user.to_string(), found.clone());
                Ok(Some(found))
            }
            None => {
                let mut unknown = self.unknown.lock().unwrap_or_else(|e| e.into_inner());
                if unknown.len() >= MAX_UNKNOWN {
                    unknown.clear();
                }
                unknown.insert(user.to_string(), Instant::now());
                Ok(None)
            }
        }
    }

    /// Replaces the table with the store's, when the store's revision moved since the last
    /// read (re-reading thousands of rows every few seconds for nothing would churn memory).
    /// Returns the number of extensions known.
    pub async fn refresh(&self) -> Result<usize, StoreError> {
        let revision = self.store.extensions_revision().await?;
        let seen = *self.revision.lock().unwrap_or_else(|e| e.into_inner());
        if seen == Some(revision) {
            return Ok(self.known.read().unwrap_or_else(|e| e.into_inner()).len());
        }
        let all = self.store.all_credentials().await?;
        *self.revision.lock().unwrap_or_else(|e| e.into_inner()) = Some(revision);
        let table: HashMap<String, Arc<Credentials>> = all
            .into_iter()
            .map(|c| (c.number.clone(), Arc::new(c)))
            .collect();
        let count = table.len();
        *self.known.write().unwrap_or_else(|e| e.into_inner()) = table;
        // Once at start, then once per change made with the CLI: an admin can see when a
        // new password took effect.
        tracing::info!(extensions = count, revision, "extension credentials loaded");
        let now = Instant::now();
        self.unknown
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .retain(|_, at| now.saturating_duration_since(*at) < REFRESH);
        Ok(count)
    }

    /// Refreshes the table every [`REFRESH`] until the process ends.
    pub async fn run_refresh(self: Arc<Self>) {
        let mut ticker = tokio::time::interval(REFRESH);
        loop {
            ticker.tick().await;
            if let Err(error) = self.refresh().await {
                tracing::warn!(%error, "could not refresh extension credentials");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pbx_store::{ExtensionStore, NewExtension, Store};

    fn extension(number: &str) -> NewExtension {
        NewExtension {
            number: number.into(),
            password: "pw".into(),
            name: None,
            email: None,
            pin: None,
            allowed_networks: vec![],
            media_encryption: None,
        }
    }

    #[tokio::test]
    async fn known_unknown_and_refreshed() {
        let store = Store::open("sqlite::memory:").await.unwrap();
        store
            .add_extension("pbx.test", extension("1000"))
            .await
            .unwrap();
        let cache = CredentialCache::new(Arc::new(store.clone()));
        let now = Instant::now();
        assert!(cache.cached("1000", now).is_none(), "nothing loaded yet");
        assert_eq!(cache.refresh().await.unwrap(), 1);
        assert_eq!(
            cache
                .cached("1000", now)
                .flatten()
                .map(|c| c.number.clone()),
            Some("1000".into())
        );
        // A name the table lacks is looked up once, then remembered as unknown.
        assert!(cache.cached("2000", now).is_none());
        assert!(cache.load("2000").await.unwrap().is_none());
        assert!(matches!(cache.cached("2000", Instant::now()), Some(None)));
        // Added meanwhile: found by a lookup; removed: gone at the next refresh.
        store
            .add_extension("pbx.test", extension("3000"))
            .await
            .unwrap();
        assert!(cache.load("3000").await.unwrap().is_some());
        assert!(cache.cached("3000", now).flatten().is_some());
        store.remove_extension("1000").await.unwrap();
        cache.refresh().await.unwrap();
        assert!(cache.cached("1000", now).is_none());
        assert!(cache.cached("3000", now).flatten().is_some());
    }

    #[tokio::test]
    async fn a_changed_password_is_seen_at_the_next_refresh() {
        let store = Store::open("sqlite::memory:").await.unwrap();
        store
            .add_extension("pbx.test", extension("1000"))
            .await
            .unwrap();
        let cache = CredentialCache::new(Arc::new(store.clone()));
        cache.refresh().await.unwrap();
        let now = Instant::now();
        let before = cache.cached("1000", now).flatten().unwrap();
        let changes = pbx_store::ExtensionChanges {
            password: Some("new-password".into()),
            context: Some("staff".into()),
            ..Default::default()
        };
        assert!(
            store
                .update_extension("pbx.test", "1000", &changes)
                .await
                .unwrap()
        );
        cache.refresh().await.unwrap();
        let after = cache.cached("1000", now).flatten().unwrap();
        assert_ne!(before.ha1_sha256, after.ha1_sha256);
        assert_eq!(
            after.ha1_sha256,
            pbx_sip::auth::ha1_hex(
                pbx_sip::auth::Algorithm::Sha256,
                "1000",
                "pbx.test",
                "new-password"
            )
        );
        assert_eq!(after.context, "staff");
        assert_eq!(after.media_encryption, "optional");
    }
}
