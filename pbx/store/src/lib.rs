//! The PBX's persistent state as ports: one trait per concern ([`ports`]), and one sqlx
//! implementation of them all, [`Store`], for SQLite and PostgreSQL. Consumers take the trait
//! they need (`Arc<dyn LocationStore>`), so a test can give them an in-memory fake and the web
//! admin can depend on this crate alone.
//!
//! One code path for SQLite and PostgreSQL through sqlx's `Any` driver: the queries use `$1`
//! placeholders, integers (unix seconds, 0/1) and text only, which both engines read alike.
//! Each engine has its own migrations (`migrations/sqlite`, `migrations/postgres` at the
//! repository root), embedded at compile time and applied on open.

mod admins;
mod audit;
mod bans;
mod cdrs;
mod did_unique;
mod error;
mod extensions;
mod extensions_csv;
mod mailbox_files;
mod mailboxes;
mod mwi;
mod pins;
pub mod ports;
mod registrations;
mod secrets;
mod traces;
mod trunks;

use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use sqlx::AnyPool;
use sqlx::any::AnyPoolOptions;
use sqlx::migrate::Migrator;

pub use admins::ApiToken;
pub use audit::{AuditEntry, NewAudit};
pub use bans::Ban;
pub use cdrs::{Cdr, CdrQuery};
pub use error::StoreError;
pub use extensions::{Extension, ExtensionChanges, MEDIA_ENCRYPTION, NewExtension};
pub use extensions_csv::{
    CsvProblem, EXPORT_COLUMNS, IMPORT_COLUMNS, extensions_to_csv, parse_extensions_csv,
};
pub use mailbox_files::remove_mailbox_files;
pub use mailboxes::{Folder, Greeting, GreetingKind, Mailbox, Message, NewMessage};
pub use pbx_sip::transport::Transport;
/// The plain records, in their own crate so that the sans-IO engine needs no async runtime.
pub use pbx_store_types::{Binding, BindingChange, Credentials, MessageCounts, NewCdr};
pub use ports::{
    AdminStore, AuditStore, BanStore, CdrStore, CredentialStore, ExtensionStore, LocationStore,
    MailboxStore, MwiStore, TraceStore, TrunkStore,
};
pub use secrets::{hash_secret, verify_secret};
pub use traces::StoredTrace;
pub use trunks::{
    CALLER_ID_MODES, DEFAULT_TRUNK_CONTEXT, DTMF_MODES, MAX_TRUNK_SETUP_TIMEOUT, TRUNK_TRANSPORTS,
    Trunk, TrunkStatus, parse_host_port,
};

static SQLITE_MIGRATIONS: Migrator = sqlx::migrate!("../../migrations/sqlite");
static POSTGRES_MIGRATIONS: Migrator = sqlx::migrate!("../../migrations/postgres");

/// Which database engine a [`Store`] talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Engine {
    Sqlite,
    Postgres,
}

/// A handle on the database; cheap to clone (a connection pool inside). Implements every
/// trait of [`ports`].
#[derive(Debug, Clone)]
pub struct Store {
    pool: AnyPool,
    engine: Engine,
}

impl Store {
    /// Connects to `url` (`sqlite://PATH`, `sqlite::memory:` or `postgres://...`) and applies
    /// the migrations. A SQLite file and its folder are created when missing; it runs in WAL
    /// mode.
    pub async fn open(url: &str) -> Result<Store, StoreError> {
        sqlx::any::install_default_drivers();
        let (engine, url) = prepare_url(url)?;
        let options = if url.starts_with("sqlite::memory:") {
            // Each connection would get its own empty in-memory database: keep exactly one,
            // forever (handy for tests).
            AnyPoolOptions::new()
                .max_connections(1)
                .min_connections(1)
                .idle_timeout(None)
                .max_lifetime(None)
        } else {
            AnyPoolOptions::new()
                .max_connections(match engine {
                    Engine::Sqlite => 4,
                    Engine::Postgres => 8,
                })
                .after_connect(move |conn, _| {
                    Box::pin(async move {
                        if engine == Engine::Sqlite {
                            // In WAL mode NORMAL cannot corrupt the database; a power cut may
                            // lose the last commits, which phones re-send at their next
                            // refresh. FULL would fsync on every commit.
                            sqlx::query("PRAGMA synchronous = NORMAL")
                                .execute(conn)
                                .await?;
                        }
                        Ok(())
                    })
                })
        };
        let pool = options.connect(&url).await?;
        if engine == Engine::Sqlite {
            // WAL lets readers work while a writer commits; it is stored in the file, so once
            // is enough. The busy timeout (sqlx default 5 s) is set on every connection.
            sqlx::query("PRAGMA journal_mode = WAL")
                .execute(&pool)
                .await?;
        }
        let migrator = match engine {
            Engine::Sqlite => &SQLITE_MIGRATIONS,
            Engine::Postgres => &POSTGRES_MIGRATIONS,
        };
        let shared_dids = did_unique::before_migration(&pool).await;
        migrator.run(&pool).await?;
        did_unique::report(&shared_dids);
        Ok(Store { pool, engine })
    }

    pub fn engine(&self) -> Engine {
        self.engine
    }

    /// Whether the database answers (for `/healthz`).
    pub async fn ping(&self) -> bool {
        sqlx::query("SELECT 1").execute(&self.pool).await.is_ok()
    }

    /// Closes every connection; waits for queries in flight.
    pub async fn close(&self) {
        self.pool.close().await;
    }

    pub(crate) fn pool(&self) -> &AnyPool {
        &self.pool
    }
}

/// The engine of `url`, and the URL to connect with: for SQLite, `mode=rwc` (create when
/// missing) and the parent folder created.
fn prepare_url(url: &str) -> Result<(Engine, String), StoreError> {
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        return Ok((Engine::Postgres, url.to_string()));
    }
    let rest = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))
        .ok_or_else(|| StoreError::Invalid(format!("unsupported database url `{url}`")))?;
    let (file, query) = rest.split_once('?').unwrap_or((rest, ""));
    if file.is_empty() {
        return Err(StoreError::Invalid(format!("no database file in `{url}`")));
    }
    if file == ":memory:" {
        let sep = if query.is_empty() { "" } else { "?" };
        return Ok((Engine::Sqlite, format!("sqlite::memory:{sep}{query}")));
    }
    if let Some(parent) = Path::new(file).parent()
        && !parent.as_os_str().is_empty()
    {
        std::fs::create_dir_all(parent).map_err(|e| StoreError::Io {
            what: format!("cannot create folder {}", parent.display()),
            source: e,
        })?;
    }
    let query = if query.split('&').any(|p| p.starts_with("mode=")) {
        query.to_string()
    } else if query.is_empty() {
        "mode=rwc".to_string()
    } else {
        format!("{query}&mode=rwc")
    };
    Ok((Engine::Sqlite, format!("sqlite://{file}?{query}")))
}

/// Now, in unix seconds.
pub fn now_unix() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Unix seconds as the database keeps them (BIGINT); far-future times saturate.
pub(crate) fn to_db(t: u64) -> i64 {
    i64::try_from(t).unwrap_or(i64::MAX)
}

/// Unix seconds read back; a negative value (never written by us) reads as 0.
pub(crate) fn from_db(t: i64) -> u64 {
    u64::try_from(t).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlite_urls_get_create_mode() {
        let dir = std::env::temp_dir().join(format!("pbx-url-{}", std::process::id()));
        let file = dir.join("sub/pbx.db");
        let url = format!("sqlite://{}", file.display());
        let prepared = prepare_url(&url).ok();
        assert_eq!(
            prepared,
            Some((
                Engine::Sqlite,
                format!("sqlite://{}?mode=rwc", file.display())
            ))
        );
        assert!(dir.join("sub").is_dir());
        let _ = std::fs::remove_dir_all(&dir);
        assert_eq!(
            prepare_url("postgres://u@h/db").ok(),
            Some((Engine::Postgres, "postgres://u@h/db".into()))
        );
        assert_eq!(
            prepare_url("sqlite::memory:?cache=shared")
                .ok()
                .map(|p| p.1),
            Some("sqlite::memory:?cache=shared".into())
        );
        assert!(prepare_url("mysql://x").is_err());
    }
}
