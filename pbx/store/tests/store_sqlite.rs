//! The store against SQLite: a fresh database file per test.

mod store_suite;

use std::path::PathBuf;

use pbx_store::{BanStore, Engine, LocationStore, Store};

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("pbx-store-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

/// Opens a store in a new folder (which `open` must create).
async fn fresh(name: &str) -> (Store, PathBuf) {
    let dir = temp_dir(name);
    let url = format!("sqlite://{}/nested/pbx.db", dir.display());
    let store = Store::open(&url)
        .await
        .unwrap_or_else(|e| panic!("open {url}: {e}"));
    assert_eq!(store.engine(), Engine::Sqlite);
    (store, dir)
}

macro_rules! suite_test {
    ($name:ident) => {
        #[tokio::test]
        async fn $name() {
            let (store, dir) = fresh(stringify!($name)).await;
            store_suite::$name(&store).await;
            store.close().await;
            let _ = std::fs::remove_dir_all(&dir);
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
async fn did_migration_clears_shared_dids() {
    let dir = temp_dir("did-migration");
    let url = format!("sqlite://{}/pbx.db", dir.display());
    store_suite::did_migration_clears_shared_dids(&url).await;
    let _ = std::fs::remove_dir_all(&dir);
}
suite_test!(extension_search);
suite_test!(trunks);
suite_test!(audit);

#[tokio::test]
async fn file_created_in_wal_mode_and_data_survives_reopen() {
    let (store, dir) = fresh("reopen").await;
    let file = dir.join("nested/pbx.db");
    assert!(file.is_file());
    store
        .add_ban(
            "127.0.0.9".parse().unwrap_or_else(|_| panic!()),
            "test",
            u64::MAX,
        )
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(store.ping().await);
    store.close().await;
    // WAL mode leaves its -wal/-shm files next to the database while open; the mode itself
    // is recorded in the file header (bytes 18-19 are 2 for WAL).
    let header = std::fs::read(&file).unwrap_or_default();
    assert_eq!(header.get(18..20), Some(&[2u8, 2][..]));

    // Reopening runs the migrations again (a no-op) and keeps the data.
    let url = format!("sqlite:{}", file.display());
    let again = Store::open(&url)
        .await
        .unwrap_or_else(|e| panic!("reopen: {e}"));
    assert_eq!(again.active_bans(0).await.map(|b| b.len()).ok(), Some(1));
    again.close().await;
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn bad_urls_are_errors() {
    assert!(Store::open("mysql://localhost/x").await.is_err());
    assert!(Store::open("sqlite://").await.is_err());
}

#[tokio::test]
async fn an_unreadable_binding_is_skipped_not_fatal() {
    use sqlx::Connection;
    let (store, dir) = fresh("corrupt").await;
    let mut raw =
        sqlx::SqliteConnection::connect(&format!("sqlite://{}/nested/pbx.db", dir.display()))
            .await
            .unwrap_or_else(|e| panic!("{e}"));
    sqlx::query(
        "INSERT INTO registrations (aor, contact, expires_at, call_id, cseq, transport, source, \
         local, updated_at) VALUES ('1000', 'sip:x', 9, 'c', 1, 'carrier-pigeon', 'nowhere', \
         '127.0.0.1:5060', 0)",
    )
    .execute(&mut raw)
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    let _ = raw.close().await;
    assert_eq!(store.list_bindings().await.map(|b| b.len()).ok(), Some(0));
    store.close().await;
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn in_memory_database_keeps_its_data() {
    let store = Store::open("sqlite::memory:")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    store_suite::bans(&store).await;
    store.close().await;
}
