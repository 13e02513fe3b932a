//! The change counters of voicemail, for message-waiting indication (migration 0008: the
//! triggers on `voicemail_messages` keep them).

use async_trait::async_trait;
use sqlx::Row;

use crate::ports::MwiStore;
use crate::{Store, StoreError, from_db};

#[async_trait]
impl MwiStore for Store {
    async fn voicemail_revision(&self) -> Result<u64, StoreError> {
        let value: i64 = sqlx::query("SELECT value FROM revisions WHERE name = 'voicemail'")
            .fetch_one(self.pool())
            .await?
            .try_get("value")?;
        Ok(from_db(value))
    }

    async fn mailbox_revisions(&self) -> Result<Vec<(String, u64)>, StoreError> {
        let rows = sqlx::query("SELECT mailbox, revision FROM voicemail_revisions")
            .fetch_all(self.pool())
            .await?;
        rows.iter()
            .map(|row| Ok((row.try_get("mailbox")?, from_db(row.try_get("revision")?))))
            .collect()
    }
}
