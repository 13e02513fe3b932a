//! The shell of the engine's credential table ([`CredentialCache`], in `pbx_engine`): the
//! whole table is re-read from the store every [`REFRESH`] in the background, so extensions
//! added, changed (`pbx extension set`: a new password, policy or context) or removed with the
//! CLI while the PBX runs are seen within that time; a name the engine did not find is looked
//! up once ([`CredentialLoader::load`], for `Output::LoadCredentials`).

pub use pbx_engine::credentials::{CredentialCache, Lookup, REFRESH};
use pbx_store::{CredentialStore, StoreError};
use std::sync::Arc;
use std::time::Instant;

pub struct CredentialLoader {
    store: Arc<dyn CredentialStore>,
    table: Arc<CredentialCache>,
}

impl CredentialLoader {
    pub fn new(store: Arc<dyn CredentialStore>) -> CredentialLoader {
        CredentialLoader {
            store,
            table: Arc::new(CredentialCache::new()),
        }
    }

    /// The in-memory table the engines read.
    pub fn table(&self) -> &Arc<CredentialCache> {
        &self.table
    }

    /// Whether the table knows this extension (as of the last refresh or lookup).
    pub fn knows(&self, user: &str) -> bool {
        self.table.knows(user)
    }

    /// Asks the store about one name and remembers the answer. A store error is not cached.
    pub async fn load(&self, user: &str) -> Result<Lookup, StoreError> {
        let found = self.store.credentials(user).await?;
        Ok(self.table.remember(user, found, Instant::now()))
    }

    /// Replaces the table with the store's, when the store's revision moved since the last
    /// read (re-reading thousands of rows every few seconds for nothing would churn memory).
    /// Returns the number of extensions known.
    pub async fn refresh(&self) -> Result<usize, StoreError> {
        let revision = self.store.extensions_revision().await?;
        if self.table.revision() == Some(revision) {
            return Ok(self.table.len());
        }
        let all = self.store.all_credentials().await?;
        let count = self.table.replace(revision, all, Instant::now());
        // Once at start, then once per change made with the CLI: an admin can see when a
        // new password took effect.
        tracing::info!(extensions = count, revision, "extension credentials loaded");
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
            did: None,
        }
    }

    #[tokio::test]
    async fn known_unknown_and_refreshed() {
        let store = Store::open("sqlite::memory:").await.unwrap();
        store
            .add_extension("pbx.test", extension("1000"))
            .await
            .unwrap();
        let cache = CredentialLoader::new(Arc::new(store.clone()));
        let now = Instant::now();
        assert!(
            cache.table().cached("1000", now).is_none(),
            "nothing loaded yet"
        );
        assert_eq!(cache.refresh().await.unwrap(), 1);
        assert_eq!(
            cache
                .table()
                .cached("1000", now)
                .flatten()
                .map(|c| c.number.clone()),
            Some("1000".into())
        );
        // A name the table lacks is looked up once, then remembered as unknown.
        assert!(cache.table().cached("2000", now).is_none());
        assert!(cache.load("2000").await.unwrap().is_none());
        assert!(matches!(
            cache.table().cached("2000", Instant::now()),
            Some(None)
        ));
        // Added meanwhile: found by a lookup; removed: gone at the next refresh.
        store
            .add_extension("pbx.test", extension("3000"))
            .await
            .unwrap();
        assert!(cache.load("3000").await.unwrap().is_some());
        assert!(cache.table().cached("3000", now).flatten().is_some());
        store.remove_extension("1000").await.unwrap();
        cache.refresh().await.unwrap();
        assert!(cache.table().cached("1000", now).is_none());
        assert!(cache.table().cached("3000", now).flatten().is_some());
    }

    #[tokio::test]
    async fn a_changed_password_is_seen_at_the_next_refresh() {
        let store = Store::open("sqlite::memory:").await.unwrap();
        store
            .add_extension("pbx.test", extension("1000"))
            .await
            .unwrap();
        let cache = CredentialLoader::new(Arc::new(store.clone()));
        cache.refresh().await.unwrap();
        let now = Instant::now();
        let before = cache.table().cached("1000", now).flatten().unwrap();
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
        let after = cache.table().cached("1000", now).flatten().unwrap();
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
