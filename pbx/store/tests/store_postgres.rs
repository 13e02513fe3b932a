//! The store against PostgreSQL, when PBX_TEST_POSTGRES_URL names a database (the CI script
//! always sets it). Without it these tests are compiled as ignored, so that they show as
//! "ignored" rather than passing. Each test works in its own schema, dropped afterwards.

mod store_suite;

use pbx_store::{AdminStore, Engine, Store};
use sqlx::{Connection, PgConnection};

/// The server URL with `search_path` set to a new schema named after the test.
async fn fresh(name: &str) -> (Store, String) {
    let base = std::env::var("PBX_TEST_POSTGRES_URL").unwrap_or_else(|_| {
        panic!("PBX_TEST_POSTGRES_URL is not set: the PostgreSQL tests did not run")
    });
    let schema = format!("pbx_test_{}_{name}", std::process::id());
    let mut admin = PgConnection::connect(&base)
        .await
        .unwrap_or_else(|e| panic!("connect {base}: {e}"));
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
        "DROP SCHEMA IF EXISTS {schema} CASCADE; CREATE SCHEMA {schema}"
    )))
    .execute(&mut admin)
    .await
    .unwrap_or_else(|e| panic!("create schema: {e}"));
    let _ = admin.close().await;
    let sep = if base.contains('?') { '&' } else { '?' };
    let url = format!("{base}{sep}options=-c%20search_path%3D{schema}");
    let store = Store::open(&url)
        .await
        .unwrap_or_else(|e| panic!("open {url}: {e}"));
    assert_eq!(store.engine(), Engine::Postgres);
    (store, schema)
}

async fn drop_schema(schema: &str) {
    if let Ok(base) = std::env::var("PBX_TEST_POSTGRES_URL")
        && let Ok(mut c) = PgConnection::connect(&base).await
    {
        let _ = sqlx::raw_sql(sqlx::AssertSqlSafe(format!("DROP SCHEMA {schema} CASCADE")))
            .execute(&mut c)
            .await;
    }
}

macro_rules! suite_test {
    ($name:ident) => {
        #[tokio::test]
        #[cfg_attr(
            not(pbx_test_postgres),
            ignore = "PBX_TEST_POSTGRES_URL is not set: not run"
        )]
        async fn $name() {
            let (store, schema) = fresh(stringify!($name)).await;
            store_suite::$name(&store).await;
            assert!(store.ping().await);
            store.close().await;
            drop_schema(&schema).await;
        }
    };
}

suite_test!(extensions);
suite_test!(extension_numeric_order);
suite_test!(import_is_all_or_nothing);
suite_test!(registrations);
suite_test!(binding_batches);
suite_test!(bans);
suite_test!(admins);
suite_test!(cdrs);
suite_test!(cdr_search);
suite_test!(sip_traces);
suite_test!(mailboxes);
suite_test!(mwi);
suite_test!(extension_did);
suite_test!(extension_did_unique);

#[tokio::test]
#[cfg_attr(
    not(pbx_test_postgres),
    ignore = "PBX_TEST_POSTGRES_URL is not set: not run"
)]
async fn did_migration_clears_shared_dids() {
    let (store, schema) = fresh("did_migration").await;
    store.close().await;
    let base = std::env::var("PBX_TEST_POSTGRES_URL").unwrap_or_default();
    let sep = if base.contains('?') { '&' } else { '?' };
    let url = format!("{base}{sep}options=-c%20search_path%3D{schema}");
    store_suite::did_migration_clears_shared_dids(&url).await;
    drop_schema(&schema).await;
}
suite_test!(extension_search);
suite_test!(trunks);
suite_test!(audit);

#[tokio::test]
#[cfg_attr(
    not(pbx_test_postgres),
    ignore = "PBX_TEST_POSTGRES_URL is not set: not run"
)]
async fn migrations_run_once_and_data_survives_reopen() {
    let (store, schema) = fresh("reopen").await;
    store
        .create_admin("root", "pw")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    store.close().await;
    let base = std::env::var("PBX_TEST_POSTGRES_URL").unwrap_or_default();
    let sep = if base.contains('?') { '&' } else { '?' };
    let url = format!("{base}{sep}options=-c%20search_path%3D{schema}");
    let again = Store::open(&url)
        .await
        .unwrap_or_else(|e| panic!("reopen: {e}"));
    assert_eq!(
        again.list_admins().await.ok(),
        Some(vec!["root".to_string()])
    );
    again.close().await;
    drop_schema(&schema).await;
}
