//! Registrar bindings (RFC 3261 §10.3), kept so that a restart does not lose them.

use async_trait::async_trait;
use sqlx::Row;
use sqlx::any::AnyRow;

use crate::ports::LocationStore;
use crate::{Binding, BindingChange, Store, StoreError, from_db, now_unix, to_db};
use pbx_sip::transport::Transport;
use pbx_sip::uri::Uri;

fn corrupt(what: &str, value: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(format!("bad {what} `{value}` in registrations"))
}

fn from_row(row: &AnyRow) -> Result<Binding, StoreError> {
    let contact: String = row.try_get("contact")?;
    let transport: String = row.try_get("transport")?;
    let source: String = row.try_get("source")?;
    let local: String = row.try_get("local")?;
    let cseq: i64 = row.try_get("cseq")?;
    let q: Option<i64> = row.try_get("q_milli")?;
    let reg_id: Option<i64> = row.try_get("reg_id")?;
    Ok(Binding {
        aor: row.try_get("aor")?,
        binding: pbx_sip::registrar::Binding {
            contact: Uri::parse(&contact).map_err(|_| corrupt("contact", &contact))?,
            expires_at: from_db(row.try_get("expires_at")?),
            call_id: row.try_get("call_id")?,
            cseq: u32::try_from(cseq).map_err(|_| corrupt("cseq", cseq))?,
            q: q.map(|q| u16::try_from(q).map_err(|_| corrupt("q", q)))
                .transpose()?,
            instance: row.try_get("instance")?,
            reg_id: reg_id
                .map(|r| u32::try_from(r).map_err(|_| corrupt("reg_id", r)))
                .transpose()?,
        },
        transport: Transport::from_scheme(&transport)
            .ok_or_else(|| corrupt("transport", &transport))?,
        source: source.parse().map_err(|_| corrupt("source", &source))?,
        local: local.parse().map_err(|_| corrupt("local", &local))?,
        conn: None,
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

fn bind_binding<'q>(query: AnyQuery<'q>, b: &'q Binding, now: u64) -> AnyQuery<'q> {
    let r = &b.binding;
    query
        .bind(&b.aor)
        .bind(r.contact.to_string())
        .bind(to_db(r.expires_at))
        .bind(&r.call_id)
        .bind(i64::from(r.cseq))
        .bind(r.q.map(i64::from))
        .bind(r.instance.as_deref())
        .bind(r.reg_id.map(i64::from))
        .bind(b.transport.as_str())
        .bind(b.source.to_string())
        .bind(b.local.to_string())
        .bind(&b.user_agent)
        .bind(to_db(now))
}

/// The last upsert of each (aor, contact), in the order of those last upserts: one
/// statement must not touch a row twice (PostgreSQL refuses), and only the last counts.
fn last_of_each<'a>(upserts: impl Iterator<Item = &'a Binding>) -> Vec<&'a Binding> {
    let all: Vec<(String, &Binding)> = upserts.map(|b| (b.contact(), b)).collect();
    let mut seen = std::collections::HashSet::new();
    let mut out: Vec<&Binding> = all
        .iter()
        .rev()
        .filter(|(contact, b)| seen.insert((b.aor.as_str(), contact.as_str())))
        .map(|(_, b)| *b)
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

/// The statement that carries out one change.
fn change_query(change: &BindingChange) -> AnyQuery<'_> {
    match change {
        BindingChange::Upsert(b) => bind_binding(sqlx::query(UPSERT_ONE.as_str()), b, now_unix()),
        BindingChange::Remove { aor, contact } => remove_query(aor, contact),
        BindingChange::RemoveAll { aor } => remove_all_query(aor),
        BindingChange::Reachable {
            aor,
            contact,
            reachable,
        } => reachable_query(aor, contact, *reachable),
    }
}

#[async_trait]
impl LocationStore for Store {
    async fn upsert_binding(&self, b: &Binding) -> Result<(), StoreError> {
        bind_binding(sqlx::query(UPSERT_ONE.as_str()), b, now_unix())
            .execute(self.pool())
            .await?;
        Ok(())
    }

    async fn apply_binding_changes(&self, changes: &[BindingChange]) -> Result<(), StoreError> {
        let now = now_unix();
        let mut tx = self.pool().begin().await?;
        let mut rest = changes;
        while let Some(first) = rest.first() {
            let run = rest
                .iter()
                .take_while(|c| matches!(c, BindingChange::Upsert(_)))
                .count();
            if run == 0 {
                change_query(first).execute(&mut *tx).await?;
                rest = &rest[1..];
                continue;
            }
            // A run of upserts becomes multi-row statements.
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

    async fn set_reachable(
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

    async fn remove_binding(&self, aor: &str, contact: &str) -> Result<bool, StoreError> {
        let n = remove_query(aor, contact)
            .execute(self.pool())
            .await?
            .rows_affected();
        Ok(n > 0)
    }

    async fn remove_bindings(&self, aor: &str) -> Result<u64, StoreError> {
        let n = remove_all_query(aor)
            .execute(self.pool())
            .await?
            .rows_affected();
        Ok(n)
    }

    async fn list_bindings(&self) -> Result<Vec<Binding>, StoreError> {
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

    async fn prune_bindings(&self, now_unix: u64) -> Result<u64, StoreError> {
        let n = sqlx::query("DELETE FROM registrations WHERE expires_at <= $1")
            .bind(to_db(now_unix))
            .execute(self.pool())
            .await?
            .rows_affected();
        Ok(n)
    }
}
