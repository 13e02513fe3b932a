//! A DID names one extension (migration 0015). The migration clears the DID of every
//! extension but the lowest-numbered one holding it; this finds them first, so that the
//! admin is told which ones lost theirs rather than finding out from a missing caller ID.

use sqlx::{AnyPool, Row};

use crate::StoreError;

/// One DID that several extensions held before migration 0015.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SharedDid {
    pub did: String,
    /// The extension that keeps it.
    pub kept_by: String,
    /// The extensions whose DID the migration clears.
    pub cleared: Vec<String>,
}

/// The DIDs migration 0015 will take away, when it has not run yet (empty on a new database,
/// or one already past it).
pub(crate) async fn before_migration(pool: &AnyPool) -> Vec<SharedDid> {
    let applied =
        sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM _sqlx_migrations WHERE version = 15")
            .fetch_one(pool)
            .await;
    if !matches!(applied, Ok(0)) {
        // Applied already, or no migration table yet (a new database has no extensions).
        return Vec::new();
    }
    // Fails before migration 0014 (no DID column): nothing shared then either.
    let Ok(rows) = sqlx::query(
        "SELECT did, number FROM extensions WHERE did <> '' \
         ORDER BY did, LENGTH(number), number",
    )
    .fetch_all(pool)
    .await
    else {
        return Vec::new();
    };
    let mut shared: Vec<SharedDid> = Vec::new();
    for row in rows {
        let (Ok(did), Ok(number)) = (
            row.try_get::<String, _>("did"),
            row.try_get::<String, _>("number"),
        ) else {
            continue;
        };
        match shared.last_mut() {
            Some(last) if last.did == did => last.cleared.push(number),
            _ => shared.push(SharedDid {
                did,
                kept_by: number,
                cleared: Vec::new(),
            }),
        }
    }
    shared.retain(|s| !s.cleared.is_empty());
    shared
}

/// Logs what migration 0015 did to each shared DID.
pub(crate) fn report(shared: &[SharedDid]) {
    for s in shared {
        tracing::warn!(
            did = %s.did,
            kept_by = %s.kept_by,
            cleared = %s.cleared.join(","),
            "a DID named several extensions: the lowest number keeps it, the others' DID was \
             cleared (set another with `pbx extension set NUMBER --did`)"
        );
    }
}

/// `Err(DidTaken)` when an extension other than `number` holds `did` (empty: none to check).
/// Asked inside the change's transaction; the unique index stays the last word.
pub(crate) async fn check_free(
    conn: &mut sqlx::AnyConnection,
    did: &str,
    number: &str,
) -> Result<(), StoreError> {
    if did.is_empty() {
        return Ok(());
    }
    let holder: Option<String> =
        sqlx::query_scalar("SELECT number FROM extensions WHERE did = $1 AND number <> $2 LIMIT 1")
            .bind(did)
            .bind(number)
            .fetch_optional(conn)
            .await?;
    match holder {
        Some(holder) => Err(StoreError::DidTaken {
            did: did.to_string(),
            number: holder,
        }),
        None => Ok(()),
    }
}

/// `Err(DidTaken)` for the first row of `rows` (number, DID) repeating an earlier row's DID.
pub(crate) fn check_batch<'a>(
    rows: impl IntoIterator<Item = (&'a str, &'a str)>,
) -> Result<(), StoreError> {
    let mut seen = std::collections::HashMap::new();
    for (number, did) in rows.into_iter().filter(|(_, did)| !did.is_empty()) {
        if let Some(first) = seen.insert(did, number) {
            return Err(StoreError::DidTaken {
                did: did.to_string(),
                number: first.to_string(),
            });
        }
    }
    Ok(())
}

/// A unique violation of the DID index (two changes at once) as `Duplicate("DID ...")`; other
/// errors as [`StoreError::unique`] maps them for the extension's number.
pub(crate) fn unique(e: sqlx::Error, number: &str, did: &str) -> StoreError {
    let on_did = match &e {
        sqlx::Error::Database(db) if db.is_unique_violation() => {
            db.constraint() == Some("extensions_did_unique") || db.message().contains(".did")
        }
        _ => false,
    };
    if on_did {
        return StoreError::Duplicate(format!("DID {did}"));
    }
    StoreError::unique(e, || format!("extension {number}"))
}
