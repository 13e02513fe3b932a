//! The audit log (migration 0010): every change an admin made, with who, what, when and from
//! where, newest first. Written by the web admin and the API; never holds a secret.

use async_trait::async_trait;
use sqlx::Row;
use sqlx::any::AnyRow;

use crate::ports::AuditStore;
use crate::{Store, StoreError, from_db, to_db};

/// One change to record.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct NewAudit {
    /// Unix seconds.
    pub at: u64,
    /// The admin account (for an API call, the token's admin).
    pub admin: String,
    /// The client's address.
    pub source: String,
    /// `web` or `api`.
    pub via: String,
    /// What was done, as `thing.verb`: `extension.create`, `trunk.delete`, `ban.lift`, ...
    pub action: String,
    /// What it was done to: an extension number, a trunk name, an address, ...
    pub target: String,
    /// More, in a few words (never a password, PIN or token).
    pub detail: String,
}

/// A recorded change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEntry {
    pub id: u64,
    pub entry: NewAudit,
}

fn entry_from(row: &AnyRow) -> Result<AuditEntry, StoreError> {
    Ok(AuditEntry {
        id: from_db(row.try_get("id")?),
        entry: NewAudit {
            at: from_db(row.try_get("at")?),
            admin: row.try_get("admin")?,
            source: row.try_get("source")?,
            via: row.try_get("via")?,
            action: row.try_get("action")?,
            target: row.try_get("target")?,
            detail: row.try_get("detail")?,
        },
    })
}

#[async_trait]
impl AuditStore for Store {
    async fn record_audit(&self, entry: &NewAudit) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO audit_log (at, admin, source, via, action, target, detail) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(to_db(entry.at))
        .bind(&entry.admin)
        .bind(&entry.source)
        .bind(&entry.via)
        .bind(&entry.action)
        .bind(&entry.target)
        .bind(&entry.detail)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    async fn audit_page(
        &self,
        offset: u64,
        limit: u32,
    ) -> Result<(Vec<AuditEntry>, u64), StoreError> {
        let total: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM audit_log")
            .fetch_one(self.pool())
            .await?;
        let rows = sqlx::query(
            "SELECT id, at, admin, source, via, action, target, detail FROM audit_log \
             ORDER BY id DESC LIMIT $1 OFFSET $2",
        )
        .bind(i64::from(limit))
        .bind(i64::try_from(offset).unwrap_or(i64::MAX))
        .fetch_all(self.pool())
        .await?;
        let items = rows.iter().map(entry_from).collect::<Result<_, _>>()?;
        Ok((items, from_db(total)))
    }
}
