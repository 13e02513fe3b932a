//! The query of a dialplan `db_lookup` step against a database the admin names in
//! `[lookup.NAME]`: its parameters bound (`$1`, `$2`...), never spliced into the SQL; the
//! first row's columns handed back to the plan as text. A pool per database, opened on first
//! use, so a database that is down only fails the calls that ask it.

use std::collections::BTreeMap;
use std::time::Duration;

use pbx_dialplan::{DbOutcome, DbRequest};
use sqlx::any::{AnyPoolOptions, AnyRow};
use sqlx::{AnyPool, Column, Row, ValueRef};

use crate::config::LookupConfig;

/// The lookup databases by name.
pub struct Lookups {
    pools: BTreeMap<String, AnyPool>,
}

impl Lookups {
    pub fn new(config: &BTreeMap<String, LookupConfig>) -> Lookups {
        sqlx::any::install_default_drivers();
        let mut pools = BTreeMap::new();
        for (name, lookup) in config {
            let options = AnyPoolOptions::new()
                .max_connections(4)
                .min_connections(0)
                .acquire_timeout(Duration::from_secs(5));
            match options.connect_lazy(&sqlx_url(&lookup.url)) {
                Ok(pool) => {
                    pools.insert(name.clone(), pool);
                }
                // The URL was checked when the config was read; say it anyway.
                Err(error) => tracing::error!(database = %name, %error, "lookup database unusable"),
            }
        }
        Lookups { pools }
    }

    pub async fn query(&self, request: &DbRequest) -> DbOutcome {
        let Some(pool) = self.pools.get(&request.database) else {
            return DbOutcome::Failed(format!("no [lookup.{}] in the config", request.database));
        };
        // The SQL is the admin's, from the dialplan (`pbx check` rejects `${...}` in it);
        // every value from the call goes in as a bound parameter.
        let mut query = sqlx::query(sqlx::AssertSqlSafe(request.query.clone()));
        for param in &request.params {
            query = query.bind(param.as_str());
        }
        match tokio::time::timeout(request.timeout, query.fetch_optional(pool)).await {
            Ok(Ok(Some(row))) => DbOutcome::Row(columns(&row)),
            Ok(Ok(None)) => DbOutcome::NoRow,
            Ok(Err(error)) => DbOutcome::Failed(error.to_string()),
            Err(_) => DbOutcome::Failed(format!("no answer within {:?}", request.timeout)),
        }
    }
}

/// sqlx's spelling of a config URL: `sqlite://` + an absolute path is `sqlite:///path`.
fn sqlx_url(url: &str) -> String {
    match url.strip_prefix("sqlite://") {
        Some(rest) if rest.starts_with('/') => format!("sqlite://{rest}"),
        _ => url.to_string(),
    }
}

/// Every column of `row` as text: integers, reals and text as they read; NULL as empty.
fn columns(row: &AnyRow) -> Vec<(String, String)> {
    row.columns()
        .iter()
        .map(|c| {
            let i = c.ordinal();
            let null = row.try_get_raw(i).map(|v| v.is_null()).unwrap_or(true);
            let value = if null {
                String::new()
            } else if let Ok(v) = row.try_get::<i64, _>(i) {
                v.to_string()
            } else if let Ok(v) = row.try_get::<f64, _>(i) {
                v.to_string()
            } else {
                row.try_get::<String, _>(i).unwrap_or_default()
            };
            (c.name().to_string(), value)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn crm() -> (Lookups, std::path::PathBuf) {
        let dir = std::env::temp_dir().join(format!("pbx-lookup-{}", std::process::id()));
        let _ = std::fs::create_dir_all(&dir);
        let file = dir.join("crm.db");
        let _ = std::fs::remove_file(&file);
        let url = format!("sqlite://{}?mode=rwc", file.display());
        sqlx::any::install_default_drivers();
        let pool = AnyPool::connect(&sqlx_url(&url)).await.unwrap();
        for sql in [
            "CREATE TABLE accounts (id TEXT, pin TEXT, balance INTEGER, owner TEXT)",
            "INSERT INTO accounts VALUES ('4711', '1234', 250, 'Ada'), ('9', '0', NULL, 'Bob')",
        ] {
            sqlx::query(sql).execute(&pool).await.unwrap();
        }
        pool.close().await;
        let config = BTreeMap::from([(
            "crm".to_string(),
            LookupConfig {
                url: format!("sqlite://{}", file.display()),
            },
        )]);
        (Lookups::new(&config), dir)
    }

    fn request(query: &str, params: &[&str]) -> DbRequest {
        DbRequest {
            database: "crm".into(),
            query: query.into(),
            params: params.iter().map(|p| p.to_string()).collect(),
            timeout: Duration::from_secs(2),
        }
    }

    #[tokio::test]
    async fn bound_parameters_find_the_row_and_an_injection_finds_nothing() {
        let (lookups, dir) = crm().await;
        let q = "SELECT balance, owner FROM accounts WHERE id = $1 AND pin = $2";
        assert_eq!(
            lookups.query(&request(q, &["4711", "1234"])).await,
            DbOutcome::Row(vec![
                ("balance".into(), "250".into()),
                ("owner".into(), "Ada".into())
            ])
        );
        assert_eq!(
            lookups.query(&request(q, &["4711", "9999"])).await,
            DbOutcome::NoRow
        );
        // A value is a value: the classic injection is just a PIN that does not match.
        assert_eq!(
            lookups.query(&request(q, &["4711", "1' OR '1'='1"])).await,
            DbOutcome::NoRow
        );
        assert_eq!(
            lookups.query(&request(q, &["9", "0"])).await,
            DbOutcome::Row(vec![
                ("balance".into(), String::new()),
                ("owner".into(), "Bob".into())
            ])
        );
        let DbOutcome::Failed(why) = lookups.query(&request("SELECT nope FROM x", &[])).await
        else {
            panic!("a bad query fails");
        };
        assert!(why.contains("no such table"), "{why}");
        let mut other = request(q, &[]);
        other.database = "erp".into();
        assert!(matches!(lookups.query(&other).await, DbOutcome::Failed(_)));
        let _ = std::fs::remove_dir_all(dir);
    }
}
