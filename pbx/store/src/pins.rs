//! The voicemail PIN: what a valid one is, and the one check of a PIN against the stored
//! argon2 hash (for [`crate::CredentialStore::verify_pin`] and
//! [`crate::MailboxStore::check_pin`]).

use crate::{Store, StoreError, verify_secret};

/// Why `pin` cannot be a PIN, if it cannot.
pub(crate) fn pin_problem(pin: &str) -> Option<String> {
    (!(4..=12).contains(&pin.len()) || !pin.bytes().all(|b| b.is_ascii_digit()))
        .then(|| "bad PIN: expected 4 to 12 digits".to_string())
}

/// Whether `pin` is the PIN of extension `number` (`false` when it has none).
pub(crate) async fn pin_matches(
    store: &Store,
    number: &str,
    pin: &str,
) -> Result<bool, StoreError> {
    let hash: Option<Option<String>> =
        sqlx::query_scalar("SELECT pin_hash FROM extensions WHERE number = $1")
            .bind(number)
            .fetch_optional(store.pool())
            .await?;
    Ok(hash.flatten().is_some_and(|h| verify_secret(pin, &h)))
}
