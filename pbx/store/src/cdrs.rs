//! Call detail records: one row per call, answered or not. Written by the call layer.

use crate::NewCdr;
use sqlx::Row;

use async_trait::async_trait;

use crate::ports::CdrStore;
use crate::{Store, StoreError, from_db, to_db};

/// A recorded call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cdr {
    pub id: i64,
    pub call: NewCdr,
}

/// A search of the call records; every filter optional. Results come newest first, a page
/// at a time: `before` is the last row of the previous page (keyset paging, so a page deep
/// in a million rows costs what the first one does, unlike `OFFSET`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CdrQuery {
    /// Calls started at or after this (Unix seconds).
    pub from: Option<u64>,
    /// Calls started before this (Unix seconds).
    pub to: Option<u64>,
    /// Calls from or to this number.
    pub extension: Option<String>,
    /// answered, busy, no_answer, failed, cancelled
    pub disposition: Option<String>,
    /// Only calls older than this `(started_at, id)`.
    pub before: Option<(u64, i64)>,
    pub limit: u32,
}

const COLUMNS: &str = "id, call_id, caller, called, started_at, answered_at, ended_at, \
     duration_secs, disposition, hangup_cause, hangup_side, codec, caller_encrypted, \
     callee_encrypted, trunk";

impl CdrQuery {
    /// The WHERE conditions after the extension's own, with their binds from `$first` on.
    fn conditions(&self, first: usize) -> (String, Vec<i64>, Option<&str>) {
        let mut sql = String::new();
        let mut ints = Vec::new();
        let mut n = first;
        if let Some(from) = self.from {
            sql.push_str(&format!(" AND started_at >= ${n}"));
            ints.push(to_db(from));
            n += 1;
        }
        if let Some(to) = self.to {
            sql.push_str(&format!(" AND started_at < ${n}"));
            ints.push(to_db(to));
            n += 1;
        }
        if let Some((at, id)) = self.before {
            // `(started_at, id) < (at, id)` spelt out with a plain upper bound first, so
            // that both engines start the index walk there instead of filtering up to it.
            sql.push_str(&format!(
                " AND started_at <= ${n} AND (started_at < ${n} OR id < ${})",
                n + 1
            ));
            ints.push(to_db(at));
            ints.push(id);
            n += 2;
        }
        let disposition = self.disposition.as_deref();
        if disposition.is_some() {
            sql.push_str(&format!(" AND disposition = ${n}"));
        }
        (sql, ints, disposition)
    }
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
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM cdrs ORDER BY started_at DESC, id DESC LIMIT $1"
        )))
        .bind(i64::from(limit))
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(read_row).collect()
    }

    async fn search_cdrs(&self, q: &CdrQuery) -> Result<Vec<Cdr>, StoreError> {
        let order = "ORDER BY started_at DESC, id DESC";
        let rows = match &q.extension {
            // Caller or called: two index walks (caller, started_at) and (called,
            // started_at), each stopping after a page, merged; an `OR` would make the
            // database collect and sort every call of the extension first.
            Some(number) => {
                let (rest, ints, disposition) = q.conditions(2);
                let limit_at = 2 + ints.len() + usize::from(disposition.is_some());
                let sql = format!(
                    "SELECT {COLUMNS} FROM (SELECT {COLUMNS} FROM cdrs WHERE caller = $1{rest} \
                     {order} LIMIT ${limit_at}) AS a \
                     UNION \
                     SELECT {COLUMNS} FROM (SELECT {COLUMNS} FROM cdrs WHERE called = $1{rest} \
                     {order} LIMIT ${limit_at}) AS b \
                     {order} LIMIT ${limit_at}"
                );
                let mut query = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(number.as_str());
                for v in ints {
                    query = query.bind(v);
                }
                if let Some(d) = disposition {
                    query = query.bind(d);
                }
                query
                    .bind(i64::from(q.limit))
                    .fetch_all(self.pool())
                    .await?
            }
            None => {
                let (rest, ints, disposition) = q.conditions(1);
                let limit_at = 1 + ints.len() + usize::from(disposition.is_some());
                let sql = format!(
                    "SELECT {COLUMNS} FROM cdrs WHERE 1 = 1{rest} {order} LIMIT ${limit_at}"
                );
                let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
                for v in ints {
                    query = query.bind(v);
                }
                if let Some(d) = disposition {
                    query = query.bind(d);
                }
                query
                    .bind(i64::from(q.limit))
                    .fetch_all(self.pool())
                    .await?
            }
        };
        rows.iter().map(read_row).collect()
    }

    async fn calls_per_hour(&self, from: u64, to: u64) -> Result<Vec<(u64, u64)>, StoreError> {
        // A range walk of the started_at index, grouped by hour in the database.
        let rows = sqlx::query(
            "SELECT started_at / 3600 AS hour, COUNT(*) AS calls FROM cdrs \
             WHERE started_at >= $1 AND started_at < $2 GROUP BY started_at / 3600 ORDER BY hour",
        )
        .bind(to_db(from))
        .bind(to_db(to))
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|row| {
                let hour: i64 = row.try_get("hour")?;
                let calls: i64 = row.try_get("calls")?;
                Ok((from_db(hour).saturating_mul(3600), from_db(calls)))
            })
            .collect()
    }
}

fn read_row(row: &sqlx::any::AnyRow) -> Result<Cdr, StoreError> {
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
            trunk: row.try_get("trunk")?,
        },
    })
}

fn insert_one(c: &NewCdr) -> sqlx::query::Query<'_, sqlx::Any, sqlx::any::AnyArguments> {
    sqlx::query(
        "INSERT INTO cdrs (call_id, caller, called, started_at, answered_at, ended_at, \
         duration_secs, disposition, hangup_cause, hangup_side, codec, caller_encrypted, \
         callee_encrypted, trunk) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, \
         $13, $14) RETURNING id",
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
    .bind(&c.trunk)
}
