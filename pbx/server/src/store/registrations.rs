//! Registrar bindings (RFC 3261 §10.3), kept so that a restart does not lose them.

use std::net::SocketAddr;

use sqlx::Row;
use sqlx::any::AnyRow;

use super::{Store, StoreError, from_db, now_unix, to_db};
use crate::config::Transport;

/// One binding of an address of record to a contact. The numeric fields have the types of
/// `pbx_sip::registrar::Binding`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredBinding {
    /// The address of record: the extension number.
    pub aor: String,
    /// The Contact URI as the phone sent it.
    pub contact: String,
    /// Unix seconds.
    pub expires_at: u64,
    pub call_id: String,
    pub cseq: u32,
    /// The contact's q-value in thousandths (q=0.5 is 500), RFC 3261 §20.10.
    pub q: Option<u16>,
    /// RFC 5626 `+sip.instance`.
    pub instance: Option<String>,
    /// RFC 5626 `reg-id`.
    pub reg_id: Option<u32>,
    /// The transport the REGISTER came over.
    pub transport: Transport,
    /// Where the REGISTER came from (after rport/received).
    pub source: SocketAddr,
    /// The listener it arrived on.
    pub local: SocketAddr,
    /// The User-Agent header; empty when the phone sent none.
    pub user_agent: String,
    /// The last OPTIONS qualify result; `None` when not qualified (yet). Set with
    /// [`Store::set_reachable`]; an upsert keeps the stored value.
    pub reachable: Option<bool>,
}

fn corrupt(what: &str, value: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(format!("bad {what} `{value}` in registrations"))
}

fn from_row(row: &AnyRow) -> Result<StoredBinding, StoreError> {
    let transport: String = row.try_get("transport")?;
    let source: String = row.try_get("source")?;
    let local: String = row.try_get("local")?;
    let cseq: i64 = row.try_get("cseq")?;
    let q: Option<i64> = row.try_get("q_milli")?;
    let reg_id: Option<i64> = row.try_get("reg_id")?;
    Ok(StoredBinding {
        aor: row.try_get("aor")?,
        contact: row.try_get("contact")?,
        expires_at: from_db(row.try_get("expires_at")?),
        call_id: row.try_get("call_id")?,
        cseq: u32::try_from(cseq).map_err(|_| corrupt("cseq", cseq))?,
        q: q.map(|q| u16::try_from(q).map_err(|_| corrupt("q", q)))
            .transpose()?,
        instance: row.try_get("instance")?,
        reg_id: reg_id
            .map(|r| u32::try_from(r).map_err(|_| corrupt("reg_id", r)))
            .transpose()?,
        transport: Transport::from_scheme(&transport)
            .ok_or_else(|| corrupt("transport", &transport))?,
        source: source.parse().map_err(|_| corrupt("source", &source))?,
        local: local.parse().map_err(|_| corrupt("local", &local))?,
        user_agent: row
            .try_get::<Option<String>, _>("user_agent")?
            .unwrap_or_default(),
        reachable: row.try_get::<Option<i64>, _>("reachable")?.map(|r| r != 0),
    })
}

macro_rules! columns {
    () => {
        "aor, contact, expires_at, call_id, cseq, q_milli, instance, reg_id, transport, source, \
         local, user_agent, updated_at"
    };
}

macro_rules! select_columns {
    () => {
        concat!(columns!(), ", reachable")
    };
}

type AnyQuery<'q> = sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments>;

/// The one-row upsert, made once.
static UPSERT_ONE: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| upsert_sql(1));
/// The [`UPSERT_ROWS`]-row upsert, made once.
static UPSERT_MANY: std::sync::LazyLock<String> =
    std::sync::LazyLock::new(|| upsert_sql(UPSERT_ROWS));

/// Rows per multi-row upsert. Small on purpose: sqlx's SQLite driver resolves each `$N`
/// parameter by name, which costs quadratically in the parameter count, and a fixed size
/// (plus one-row statements for the rest) keeps both statements in its prepared-statement
/// cache.
const UPSERT_ROWS: usize = 16;

/// `INSERT ... VALUES (..), (..) ... ON CONFLICT DO UPDATE` for `rows` bindings.
fn upsert_sql(rows: usize) -> String {
    let mut sql = String::with_capacity(400 + rows * 70);
    sql.push_str(concat!(
        "INSERT INTO registrations (",
        columns!(),
        ") VALUES "
    ));
    for row in 0..rows {
        if row > 0 {
            sql.push_str(", ");
        }
        sql.push('(');
        for column in 0..13 {
            if column > 0 {
                sql.push_str(", ");
            }
            sql.push('$');
            sql.push_str(&(row * 13 + column + 1).to_string());
        }
        sql.push(')');
    }
    sql.push_str(
        " ON CONFLICT (aor, contact) DO UPDATE SET \
         expires_at = excluded.expires_at, call_id = excluded.call_id, \
         cseq = excluded.cseq, q_milli = excluded.q_milli, instance = excluded.instance, \
         reg_id = excluded.reg_id, transport = excluded.transport, \
         source = excluded.source, local = excluded.local, \
         user_agent = excluded.user_agent, updated_at = excluded.updated_at",
    );
    sql
}

fn bind_binding<'q>(query: AnyQuery<'q>, b: &'q StoredBinding, now: u64) -> AnyQuery<'q> {
    query
        .bind(&b.aor)
        .bind(&b.contact)
        .bind(to_db(b.expires_at))
        .bind(&b.call_id)
        .bind(i64::from(b.cseq))
        .bind(b.q.map(i64::from))
        .bind(b.instance.as_deref())
        .bind(b.reg_id.map(i64::from))
        .bind(b.transport.as_str())
        .bind(b.source.to_string())
        .bind(b.local.to_string())
        .bind(&b.user_agent)
        .bind(to_db(now))
}

/// The last upsert of each (aor, contact), in the order of those last upserts: one
/// statement must not touch a row twice (PostgreSQL refuses), and only the last counts.
fn last_of_each<'a>(upserts: impl Iterator<Item = &'a StoredBinding>) -> Vec<&'a StoredBinding> {
    let all: Vec<&StoredBinding> = upserts.collect();
    let mut seen = std::collections::HashSet::new();
    let mut out: Vec<&StoredBinding> = all
        .iter()
        .rev()
        .filter(|b| seen.insert((b.aor.as_str(), b.contact.as_str())))
        .copied()
        .collect();
    out.reverse();
    out
}

fn reachable_query<'q>(aor: &'q str, contact: &'q str, reachable: bool) -> AnyQuery<'q> {
    sqlx::query("UPDATE registrations SET reachable = $1 WHERE aor = $2 AND contact = $3")
        .bind(i64::from(reachable))
        .bind(aor)
        .bind(contact)
}

fn remove_query<'q>(aor: &'q str, contact: &'q str) -> AnyQuery<'q> {
    sqlx::query("DELETE FROM registrations WHERE aor = $1 AND contact = $2")
        .bind(aor)
        .bind(contact)
}

fn remove_all_query(aor: &str) -> AnyQuery<'_> {
    sqlx::query("DELETE FROM registrations WHERE aor = $1").bind(aor)
}

/// One change to the registrations table, for [`Store::apply_binding_changes`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BindingChange {
    Upsert(StoredBinding),
    Remove {
        aor: String,
        contact: String,
    },
    RemoveAll {
        aor: String,
    },
    Reachable {
        aor: String,
        contact: String,
        reachable: bool,
    },
}

impl BindingChange {
    fn query(&self) -> AnyQuery<'_> {
        match self {
            BindingChange::Upsert(b) => {
                bind_binding(sqlx::query(UPSERT_ONE.as_str()), b, now_unix())
            }
            BindingChange::Remove { aor, contact } => remove_query(aor, contact),
            BindingChange::RemoveAll { aor } => remove_all_query(aor),
            BindingChange::Reachable {
                aor,
                contact,
                reachable,
            } => reachable_query(aor, contact, *reachable),
        }
    }
}

impl Store {
    /// Adds the binding, or replaces the one with the same (aor, contact).
    pub async fn upsert_binding(&self, b: &StoredBinding) -> Result<(), StoreError> {
        bind_binding(sqlx::query(UPSERT_ONE.as_str()), b, now_unix())
            .execute(self.pool())
            .await?;
        Ok(())
    }

    /// Applies changes in order, in one transaction: the registrar's write-behind batches
    /// them so a burst of REGISTERs costs one commit (one fsync), not one each.
    /// Runs of upserts become multi-row statements.
    pub async fn apply_binding_changes(&self, changes: &[BindingChange]) -> Result<(), StoreError> {
        let now = now_unix();
        let mut tx = self.pool().begin().await?;
        let mut rest = changes;
        while let Some(first) = rest.first() {
            let run = rest
                .iter()
                .take_while(|c| matches!(c, BindingChange::Upsert(_)))
                .count();
            if run == 0 {
                first.query().execute(&mut *tx).await?;
                rest = &rest[1..];
                continue;
            }
            let (upserts, after) = rest.split_at(run);
            let rows = last_of_each(upserts.iter().filter_map(|c| match c {
                BindingChange::Upsert(b) => Some(b),
                _ => None,
            }));
            let mut chunks = rows.chunks_exact(UPSERT_ROWS);
            for chunk in chunks.by_ref() {
                let query = chunk
                    .iter()
                    .fold(sqlx::query(UPSERT_MANY.as_str()), |query, b| {
                        bind_binding(query, b, now)
                    });
                query.execute(&mut *tx).await?;
            }
            for b in chunks.remainder() {
                bind_binding(sqlx::query(UPSERT_ONE.as_str()), b, now)
                    .execute(&mut *tx)
                    .await?;
            }
            rest = after;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Records an OPTIONS qualify result; `false` when there is no such binding.
    pub async fn set_reachable(
        &self,
        aor: &str,
        contact: &str,
        reachable: bool,
    ) -> Result<bool, StoreError> {
        let n = reachable_query(aor, contact, reachable)
            .execute(self.pool())
            .await?
            .rows_affected();
        Ok(n > 0)
    }

    /// Removes one binding; `false` when there was none.
    pub async fn remove_binding(&self, aor: &str, contact: &str) -> Result<bool, StoreError> {
        let n = remove_query(aor, contact)
            .execute(self.pool())
            .await?
            .rows_affected();
        Ok(n > 0)
    }

    /// Removes every binding of `aor` (`Contact: *`); returns how many there were.
    pub async fn remove_bindings(&self, aor: &str) -> Result<u64, StoreError> {
        let n = remove_all_query(aor)
            .execute(self.pool())
            .await?
            .rows_affected();
        Ok(n)
    }

    /// Every stored binding, expired or not, ordered by aor then contact. A row that cannot be
    /// read is skipped with a warning, so that one bad row cannot stop the server starting.
    pub async fn list_bindings(&self) -> Result<Vec<StoredBinding>, StoreError> {
        let rows = sqlx::query(concat!(
            "SELECT ",
            select_columns!(),
            " FROM registrations ORDER BY aor, contact"
        ))
        .fetch_all(self.pool())
        .await?;
        Ok(rows
            .iter()
            .filter_map(|row| match from_row(row) {
                Ok(b) => Some(b),
                Err(error) => {
                    tracing::warn!(%error, "skipping an unreadable stored binding");
                    None
                }
            })
            .collect())
    }

    /// Deletes the bindings that expired at or before `now_unix`; returns how many.
    pub async fn prune_bindings(&self, now_unix: u64) -> Result<u64, StoreError> {
        let n = sqlx::query("DELETE FROM registrations WHERE expires_at <= $1")
            .bind(to_db(now_unix))
            .execute(self.pool())
            .await?
            .rows_affected();
        Ok(n)
    }
}
