//! What can go wrong in the store, grouped by whose fault it is.

/// A store failure. `Duplicate`, `DidTaken`, `NotFound` and `Invalid` are the caller's input;
/// the rest are the database's or the machine's.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{0} already exists")]
    Duplicate(String),
    /// A DID names one extension (migration 0015).
    #[error("DID {did} is already extension {number}'s")]
    DidTaken { did: String, number: String },
    #[error("{0} not found")]
    NotFound(String),
    #[error("{0}")]
    Invalid(String),
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    #[error("database migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("{what}: {source}")]
    Io {
        what: String,
        source: std::io::Error,
    },
    #[error("bad data in the database: {0}")]
    Corrupt(String),
    #[error("password hashing failed: {0}")]
    Hash(String),
}

impl StoreError {
    /// Maps a unique-key violation to `Duplicate(what)`, passing other errors through.
    pub(crate) fn unique(e: sqlx::Error, what: impl FnOnce() -> String) -> StoreError {
        match &e {
            sqlx::Error::Database(db) if db.is_unique_violation() => StoreError::Duplicate(what()),
            _ => StoreError::Database(e),
        }
    }
}
