//! SIP trace filters (`pbx trace add|list|remove`): what the running PBX writes to its trace
//! log besides the `[trace]` filters of the config. Kind and value are stored as text and
//! checked by the caller (the server's `trace::Target`).

use sqlx::Row;

use async_trait::async_trait;

use crate::ports::TraceStore;
use crate::{Store, StoreError, from_db, now_unix, to_db};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredTrace {
    pub id: i64,
    /// `source` or `extension`.
    pub kind: String,
    /// A CIDR or an extension number.
    pub value: String,
    /// Unix seconds; `None` = until removed.
    pub until: Option<u64>,
    /// Unix seconds.
    pub created_at: u64,
}

#[async_trait]
impl TraceStore for Store {
    async fn add_trace(
        &self,
        kind: &str,
        value: &str,
        until_unix: Option<u64>,
    ) -> Result<i64, StoreError> {
        let row = sqlx::query(
            "INSERT INTO sip_traces (kind, value, expires_at, created_at) \
             VALUES ($1, $2, $3, $4) RETURNING id",
        )
        .bind(kind)
        .bind(value)
        .bind(until_unix.map(to_db))
        .bind(to_db(now_unix()))
        .fetch_one(self.pool())
        .await?;
        Ok(row.try_get("id")?)
    }

    async fn active_traces(&self, now_unix: u64) -> Result<Vec<StoredTrace>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, kind, value, expires_at, created_at FROM sip_traces \
             WHERE expires_at IS NULL OR expires_at > $1 ORDER BY id",
        )
        .bind(to_db(now_unix))
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|row| {
                Ok(StoredTrace {
                    id: row.try_get("id")?,
                    kind: row.try_get("kind")?,
                    value: row.try_get("value")?,
                    until: row.try_get::<Option<i64>, _>("expires_at")?.map(from_db),
                    created_at: from_db(row.try_get("created_at")?),
                })
            })
            .collect()
    }

    async fn remove_trace(&self, id: i64) -> Result<bool, StoreError> {
        let n = sqlx::query("DELETE FROM sip_traces WHERE id = $1")
            .bind(id)
            .execute(self.pool())
            .await?
            .rows_affected();
        Ok(n > 0)
    }

    async fn remove_all_traces(&self, now_unix: u64) -> Result<u64, StoreError> {
        let active = self.active_traces(now_unix).await?.len();
        sqlx::query("DELETE FROM sip_traces")
            .execute(self.pool())
            .await?;
        Ok(u64::try_from(active).unwrap_or(u64::MAX))
    }

    async fn prune_traces(&self, now_unix: u64) -> Result<u64, StoreError> {
        let n =
            sqlx::query("DELETE FROM sip_traces WHERE expires_at IS NOT NULL AND expires_at <= $1")
                .bind(to_db(now_unix))
                .execute(self.pool())
                .await?
                .rows_affected();
        Ok(n)
    }
}
