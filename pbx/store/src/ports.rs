//! The ports: one trait per concern, so that a consumer depends on what it uses (the location
//! service on [`LocationStore`], the credential cache on [`CredentialStore`]) and a test can hand
//! it an in-memory fake. [`crate::Store`] (sqlx, SQLite and PostgreSQL) implements them all.
//!
//! The traits use `async-trait` (boxed futures) so that they can be used as `dyn` objects:
//! a store call is a database round trip, next to which one allocation does not count.
//!
//! Room for what comes next, not implemented yet (each a trait here and tables in a migration):
//! - `SettingsStore`: settings the web admin edits at run time, beside the TOML config.

use std::net::IpAddr;

use async_trait::async_trait;

use crate::{
    ApiToken, Ban, Binding, BindingChange, Cdr, CdrQuery, Credentials, Extension, ExtensionChanges,
    Folder, Greeting, GreetingKind, Mailbox, Message, MessageCounts, NewCdr, NewExtension,
    NewMessage, StoreError, StoredTrace, Trunk, TrunkStatus,
};

/// What digest authentication and the voicemail PIN prompt read about extensions.
#[async_trait]
pub trait CredentialStore: Send + Sync {
    /// The digest credentials of one extension.
    async fn credentials(&self, number: &str) -> Result<Option<Credentials>, StoreError>;

    /// The digest credentials of every extension (to fill a cache).
    async fn all_credentials(&self) -> Result<Vec<Credentials>, StoreError>;

    /// The extensions table's revision: it changes whenever an extension is added or removed.
    async fn extensions_revision(&self) -> Result<u64, StoreError>;

    /// Whether `pin` is the voicemail PIN of `number`; `false` when it has none. The same
    /// check as [`MailboxStore::check_pin`], kept here for the CLI.
    async fn verify_pin(&self, number: &str, pin: &str) -> Result<bool, StoreError>;
}

/// Managing extensions (the CLI, and the web admin to come).
#[async_trait]
pub trait ExtensionStore: Send + Sync {
    /// Creates one extension. `realm` is `[sip] domain`: the HA1s depend on it.
    async fn add_extension(&self, realm: &str, ext: NewExtension) -> Result<(), StoreError>;

    /// Creates all of `exts` in one transaction: all of them, or none on any error.
    async fn import_extensions(
        &self,
        realm: &str,
        exts: Vec<NewExtension>,
    ) -> Result<usize, StoreError>;

    /// Every extension, ordered by number.
    async fn list_extensions(&self) -> Result<Vec<Extension>, StoreError>;

    /// One page of the extensions whose number, name or e-mail contains `q` (ignoring ASCII
    /// case; all of them when `q` is empty), ordered by number: `limit` from `offset`, and
    /// how many match in all. Searched and paged in SQL, not in memory.
    async fn search_extensions(
        &self,
        q: &str,
        offset: u64,
        limit: u32,
    ) -> Result<(Vec<Extension>, u64), StoreError>;

    /// Changes an extension in place; its registrations stay. A new password replaces both
    /// HA1s (`realm` is `[sip] domain`). `false` when there is no such extension. The
    /// revision moves, so a running PBX reads the change at its next credentials refresh.
    async fn update_extension(
        &self,
        realm: &str,
        number: &str,
        changes: &ExtensionChanges,
    ) -> Result<bool, StoreError>;

    /// Removes an extension, its registrations and its mailbox's messages and greetings (the
    /// audio files stay on disk). `false` when there was no such extension.
    async fn remove_extension(&self, number: &str) -> Result<bool, StoreError>;
}

/// Registrar bindings (RFC 3261 §10.3), kept so that a restart does not lose them.
#[async_trait]
pub trait LocationStore: Send + Sync {
    /// Adds the binding, or replaces the one with the same (aor, contact).
    async fn upsert_binding(&self, b: &Binding) -> Result<(), StoreError>;

    /// Applies changes in order, in one transaction: the registrar's write-behind batches
    /// them so a burst of REGISTERs costs one commit (one fsync), not one each.
    async fn apply_binding_changes(&self, changes: &[BindingChange]) -> Result<(), StoreError>;

    /// Records an OPTIONS qualify result; `false` when there is no such binding.
    async fn set_reachable(
        &self,
        aor: &str,
        contact: &str,
        reachable: bool,
    ) -> Result<bool, StoreError>;

    /// Removes one binding; `false` when there was none.
    async fn remove_binding(&self, aor: &str, contact: &str) -> Result<bool, StoreError>;

    /// Removes every binding of `aor` (`Contact: *`); returns how many there were.
    async fn remove_bindings(&self, aor: &str) -> Result<u64, StoreError>;

    /// Every stored binding, expired or not, ordered by aor then contact. A row that cannot be
    /// read is skipped with a warning, so that one bad row cannot stop the server starting.
    async fn list_bindings(&self) -> Result<Vec<Binding>, StoreError>;

    /// Deletes the bindings that expired at or before `now_unix`; returns how many.
    async fn prune_bindings(&self, now_unix: u64) -> Result<u64, StoreError>;
}

/// Call detail records.
#[async_trait]
pub trait CdrStore: Send + Sync {
    /// Records a call; returns its id.
    async fn insert_cdr(&self, c: &NewCdr) -> Result<i64, StoreError> {
        let ids = self.insert_cdrs(std::slice::from_ref(c)).await?;
        ids.first()
            .copied()
            .ok_or_else(|| StoreError::Corrupt("no id for an inserted CDR".into()))
    }

    /// Records calls in one transaction: all of them or none. Returns their ids (the
    /// database assigns them), in order.
    async fn insert_cdrs(&self, cdrs: &[NewCdr]) -> Result<Vec<i64>, StoreError>;

    /// The `limit` most recent calls, newest first.
    async fn list_cdrs(&self, limit: u32) -> Result<Vec<Cdr>, StoreError>;

    /// The calls matching `q`, newest first, at most `q.limit` (in SQL, on indexes).
    async fn search_cdrs(&self, q: &CdrQuery) -> Result<Vec<Cdr>, StoreError>;

    /// Calls started in `[from, to)` per hour: (the hour's start in Unix seconds, calls),
    /// oldest first; hours without calls are left out.
    async fn calls_per_hour(&self, from: u64, to: u64) -> Result<Vec<(u64, u64)>, StoreError>;
}

/// Banned source addresses, kept across restarts.
#[async_trait]
pub trait BanStore: Send + Sync {
    /// Bans `addr` until `until_unix`, replacing an earlier ban of the same address.
    async fn add_ban(&self, addr: IpAddr, reason: &str, until_unix: u64) -> Result<(), StoreError>;

    /// Lifts the ban of `addr`; `false` when it was not banned.
    async fn remove_ban(&self, addr: IpAddr) -> Result<bool, StoreError>;

    /// The bans still in force at `now_unix`, soonest expiry first.
    async fn active_bans(&self, now_unix: u64) -> Result<Vec<Ban>, StoreError>;

    /// Deletes the bans that ended at or before `now_unix`; returns how many.
    async fn prune_bans(&self, now_unix: u64) -> Result<u64, StoreError>;
}

/// Web admin accounts and their API bearer tokens.
#[async_trait]
pub trait AdminStore: Send + Sync {
    /// Creates a web admin account; the password is stored as an argon2 hash.
    async fn create_admin(&self, user: &str, password: &str) -> Result<(), StoreError>;

    /// Whether `password` is the password of admin `user` (for the login page).
    async fn verify_admin(&self, user: &str, password: &str) -> Result<bool, StoreError>;

    /// The admin user names, sorted.
    async fn list_admins(&self) -> Result<Vec<String>, StoreError>;

    /// A new API token for `user` (64 hex characters). Only its SHA-256 is stored, so this is
    /// the one time it can be seen.
    async fn create_token(&self, user: &str) -> Result<String, StoreError>;

    /// The admin a bearer token belongs to, if it is a valid token.
    async fn verify_token(&self, token: &str) -> Result<Option<String>, StoreError>;

    /// Deletes an admin account and its tokens; `false` when there was none.
    async fn delete_admin(&self, user: &str) -> Result<bool, StoreError>;

    /// Replaces an admin's password (argon2 hash); `false` when there is no such admin.
    async fn set_admin_password(&self, user: &str, password: &str) -> Result<bool, StoreError>;

    /// Every API token (never the token itself: its public id, owner and age), newest first.
    async fn list_tokens(&self) -> Result<Vec<ApiToken>, StoreError>;

    /// Revokes the token with this id; `false` when there is none.
    async fn revoke_token(&self, id: &str) -> Result<bool, StoreError>;
}

/// SIP trace filters (`pbx trace add|list|remove`). Kind and value are stored as text and
/// checked by the caller.
#[async_trait]
pub trait TraceStore: Send + Sync {
    /// Adds a filter; returns its id.
    async fn add_trace(
        &self,
        kind: &str,
        value: &str,
        until_unix: Option<u64>,
    ) -> Result<i64, StoreError>;

    /// The filters still in force at `now_unix`, oldest first.
    async fn active_traces(&self, now_unix: u64) -> Result<Vec<StoredTrace>, StoreError>;

    /// Removes filter `id`; `false` when there is none.
    async fn remove_trace(&self, id: i64) -> Result<bool, StoreError>;

    /// Removes every filter, expired or not; returns how many were in force at `now_unix`.
    async fn remove_all_traces(&self, now_unix: u64) -> Result<u64, StoreError>;

    /// Deletes the filters that ended at or before `now_unix`; returns how many.
    async fn prune_traces(&self, now_unix: u64) -> Result<u64, StoreError>;
}

/// Voicemail: each extension's mailbox (its PIN and e-mail are the extension's, as `pbx
/// extension add` and `set` store them; greetings and the delete-after-e-mail choice are
/// added here) and the messages left in it. Audio stays on disk: greetings and messages are
/// WAV files whose paths the store keeps. Where a call removes a row that names a file, it
/// returns the path so that the caller deletes the file after the commit.
#[async_trait]
pub trait MailboxStore: Send + Sync {
    /// The mailbox of extension `number`; `None` when there is no such extension.
    async fn mailbox(&self, number: &str) -> Result<Option<Mailbox>, StoreError>;

    /// Whether `pin` is the mailbox's PIN; `false` when it has none (argon2, so slow on
    /// purpose: a guess costs the guesser too).
    async fn check_pin(&self, number: &str, pin: &str) -> Result<bool, StoreError>;

    /// Changes the PIN (4 to 12 digits, else `Invalid`); `false` when there is no such
    /// extension.
    async fn set_pin(&self, number: &str, pin: &str) -> Result<bool, StoreError>;

    /// Delete messages once they were e-mailed; `false` when there is no such extension.
    async fn set_delete_after_email(&self, number: &str, on: bool) -> Result<bool, StoreError>;

    /// Records (or replaces) a greeting; the path of the one it replaced, if another file.
    async fn set_greeting(
        &self,
        number: &str,
        greeting: &Greeting,
    ) -> Result<Option<String>, StoreError>;

    /// Removes a greeting (the temporary one, when it is no longer wanted); its path.
    async fn remove_greeting(
        &self,
        number: &str,
        kind: GreetingKind,
    ) -> Result<Option<String>, StoreError>;

    /// Files a message into the mailbox's new folder; returns its id.
    async fn add_message(&self, message: &NewMessage) -> Result<i64, StoreError>;

    /// The mailbox's messages, of one folder or all, oldest first.
    async fn messages(
        &self,
        mailbox: &str,
        folder: Option<Folder>,
    ) -> Result<Vec<Message>, StoreError>;

    /// One message by id.
    async fn message(&self, id: i64) -> Result<Option<Message>, StoreError>;

    /// Moves a message to another folder; `false` when there is no such message.
    async fn move_message(&self, id: i64, folder: Folder) -> Result<bool, StoreError>;

    /// Deletes a message; what it was (its file is the caller's to delete), `None` when
    /// there was none.
    async fn delete_message(&self, id: i64) -> Result<Option<Message>, StoreError>;

    /// How many messages each folder holds.
    async fn message_counts(&self, mailbox: &str) -> Result<MessageCounts, StoreError>;

    /// Every mailbox that holds at least one message, by number, with its counts (one
    /// query, for the admin's list of mailboxes).
    async fn mailboxes_with_messages(&self) -> Result<Vec<(String, MessageCounts)>, StoreError>;
}

/// What message-waiting indication reads to learn which mailboxes changed, whoever changed
/// them: triggers on the messages table bump a counter per mailbox and one for them all
/// (migration 0008), so a change made by another node or by SQL is seen too.
#[async_trait]
pub trait MwiStore: Send + Sync {
    /// The counter of every voicemail change; read first, it is one row.
    async fn voicemail_revision(&self) -> Result<u64, StoreError>;

    /// Every mailbox that ever changed, with its own counter.
    async fn mailbox_revisions(&self) -> Result<Vec<(String, u64)>, StoreError>;
}

/// Trunks (`pbx trunk add|list|remove`) and the state the running PBX reports for each.
#[async_trait]
pub trait TrunkStore: Send + Sync {
    /// Adds a trunk (checked by [`Trunk::problems`]); `Duplicate` when the name is taken.
    async fn add_trunk(&self, trunk: &Trunk) -> Result<(), StoreError>;

    /// Every trunk, ordered by name.
    async fn list_trunks(&self) -> Result<Vec<Trunk>, StoreError>;

    /// Removes a trunk and its state; `false` when there was none.
    async fn remove_trunk(&self, name: &str) -> Result<bool, StoreError>;

    /// Replaces every field of the trunk named `trunk.name` but its creation time (checked by
    /// [`Trunk::problems`]); `false` when there is none.
    async fn update_trunk(&self, trunk: &Trunk) -> Result<bool, StoreError>;

    /// Records what the running PBX knows of a trunk now (replacing what it knew before).
    async fn set_trunk_status(&self, status: &TrunkStatus) -> Result<(), StoreError>;

    /// The states recorded, ordered by name (stale ones too: see [`TrunkStatus::state_at`]).
    async fn trunk_statuses(&self) -> Result<Vec<TrunkStatus>, StoreError>;
}

/// The audit log of admin changes (the web admin and the API write it).
#[async_trait]
pub trait AuditStore: Send + Sync {
    /// Records one change.
    async fn record_audit(&self, entry: &crate::NewAudit) -> Result<(), StoreError>;

    /// One page of the log, newest first: `limit` from `offset`, and how many there are.
    async fn audit_page(
        &self,
        offset: u64,
        limit: u32,
    ) -> Result<(Vec<crate::AuditEntry>, u64), StoreError>;
}
