//! Call detail records: one row per call, answered or not. Written by the call layer.

use sqlx::Row;

use async_trait::async_trait;

use crate::ports::CdrStore;
use crate::{Store, StoreError, from_db, to_db};

/// A finished call to record. Serializable: records the database could not take wait in the
/// CDR spool file.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct NewCdr {
    pub call_id: String,
    pub caller: String,
    pub called: String,
    /// Unix seconds.
    pub started_at: u64,
    pub answered_at: Option<u64>,
    pub ended_at: u64,
    /// Seconds talked (from answer to end); 0 when not answered.
    pub duration_secs: u64,
    /// answered, busy, no_answer, failed, cancelled
    pub disposition: String,
    pub hangup_cause: String,
    /// caller, callee or pbx
    pub hangup_side: String,
    pub codec: Option<String>,
    pub caller_encrypted: bool,
    pub callee_encrypted: bool,
}

/// A recorded call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cdr {
    pub id: i64,
    pub call: NewCdr,
}

#[async_trait]
impl CdrStore for Store {
    async fn insert_cdrs(&self, cdrs: &[NewCdr]) -> Result<Vec<i64>, StoreError> {
        // One transaction: a busy PBX ends hundreds of calls a second, and one commit each
        // would queue them behind the database's write lock.
        let mut tx = self.pool().begin().await?;
        let mut ids = Vec::with_capacity(cdrs.len());
        for c in cdrs {
            ids.push(insert_one(c).fetch_one(&mut *tx).await?.try_get("id")?);
        }
        tx.commit().await?;
        Ok(ids)
    }

    async fn list_cdrs(&self, limit: u32) -> Result<Vec<Cdr>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, call_id, caller, called, started_at, answered_at, ended_at, \
             duration_secs, disposition, hangup_cause, hangup_side, codec, caller_encrypted, \
             callee_encrypted FROM cdrs ORDER BY started_at DESC, id DESC LIMIT $1",
        )
        .bind(i64::from(limit))
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|row| {
                Ok(Cdr {
                    id: row.try_get("id")?,
                    call: NewCdr {
                        call_id: row.try_get("call_id")?,
                        caller: row.try_get("caller")?,
                        called: row.try_get("called")?,
                        started_at: from_db(row.try_get("started_at")?),
                        answered_at: row.try_get::<Option<i64>, _>("answered_at")?.map(from_db),
                        ended_at: from_db(row.try_get("ended_at")?),
                        duration_secs: from_db(row.try_get("duration_secs")?),
                        disposition: row.try_get("disposition")?,
                        hangup_cause: row.try_get("hangup_cause")?,
                        hangup_side: row.try_get("hangup_side")?,
                        codec: row.try_get("codec")?,
                        caller_encrypted: row.try_get::<i64, _>("caller_encrypted")? != 0,
                        callee_encrypted: row.try_get::<i64, _>("callee_encrypted")? != 0,
                    },
                })
            })
            .collect()
    }
}

fn insert_one(c: &NewCdr) -> sqlx::query::Query<'_, sqlx::Any, sqlx::any::AnyArguments> {
    sqlx::query(
        "INSERT INTO cdrs (call_id, caller, called, started_at, answered_at, ended_at, \
         duration_secs, disposition, hangup_cause, hangup_side, codec, caller_encrypted, \
         callee_encrypted) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13) \
         RETURNING id",
    )
    .bind(&c.call_id)
    .bind(&c.caller)
    .bind(&c.called)
    .bind(to_db(c.started_at))
    .bind(c.answered_at.map(to_db))
    .bind(to_db(c.ended_at))
    .bind(to_db(c.duration_secs))
    .bind(&c.disposition)
    .bind(&c.hangup_cause)
    .bind(&c.hangup_side)
    .bind(c.codec.as_deref())
    .bind(i64::from(c.caller_encrypted))
    .bind(i64::from(c.callee_encrypted))
}
