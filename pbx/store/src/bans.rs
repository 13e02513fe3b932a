//! Banned source addresses: their SIP is dropped until the ban expires. Kept across restarts.

use std::net::IpAddr;

use sqlx::Row;

use async_trait::async_trait;

use crate::ports::BanStore;
use crate::{Store, StoreError, from_db, now_unix, to_db};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ban {
    pub address: IpAddr,
    pub reason: String,
    /// Unix seconds.
    pub until: u64,
    /// Unix seconds.
    pub created_at: u64,
}

#[async_trait]
impl BanStore for Store {
    async fn add_ban(&self, addr: IpAddr, reason: &str, until_unix: u64) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO bans (address, reason, expires_at, created_at) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (address) DO UPDATE SET reason = excluded.reason, \
             expires_at = excluded.expires_at, created_at = excluded.created_at",
        )
        .bind(addr.to_string())
        .bind(reason)
        .bind(to_db(until_unix))
        .bind(to_db(now_unix()))
        .execute(self.pool())
        .await?;
        Ok(())
    }

    async fn remove_ban(&self, addr: IpAddr) -> Result<bool, StoreError> {
        let n = sqlx::query("DELETE FROM bans WHERE address = $1")
            .bind(addr.to_string())
            .execute(self.pool())
            .await?
            .rows_affected();
        Ok(n > 0)
    }

    async fn active_bans(&self, now_unix: u64) -> Result<Vec<Ban>, StoreError> {
        let rows = sqlx::query(
            "SELECT address, reason, expires_at, created_at FROM bans \
             WHERE expires_at > $1 ORDER BY expires_at, address",
        )
        .bind(to_db(now_unix))
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|row| {
                let address: String = row.try_get("address")?;
                Ok(Ban {
                    address: address.parse().map_err(|_| {
                        StoreError::Corrupt(format!("bad banned address `{address}`"))
                    })?,
                    reason: row.try_get("reason")?,
                    until: from_db(row.try_get("expires_at")?),
                    created_at: from_db(row.try_get("created_at")?),
                })
            })
            .collect()
    }

    async fn prune_bans(&self, now_unix: u64) -> Result<u64, StoreError> {
        let n = sqlx::query("DELETE FROM bans WHERE expires_at <= $1")
            .bind(to_db(now_unix))
            .execute(self.pool())
            .await?
            .rows_affected();
        Ok(n)
    }
}
