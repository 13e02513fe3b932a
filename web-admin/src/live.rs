//! The running PBX as the web admin sees it: two small traits the server implements, so this
//! crate never reaches into the server's internals.

use std::net::IpAddr;
use std::path::PathBuf;

use async_trait::async_trait;
use pbx_store::{Binding, StoreError};

/// A call in progress, as the engine knows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LiveCall {
    /// What [`Live::hang_up`] takes.
    pub id: String,
    /// The caller's Call-ID (the CDR will carry it).
    pub call_id: String,
    pub caller: String,
    pub called: String,
    /// Unix seconds.
    pub started_at: u64,
    /// Unix seconds; `None` while ringing.
    pub answered_at: Option<u64>,
    /// The codec both legs agreed on, once media is set up.
    pub codec: Option<String>,
    pub caller_encrypted: bool,
    pub callee_encrypted: bool,
}

/// What kind of thing a [`SecurityEvent`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SecurityKind {
    /// SIP digest credentials failed (a wrong password or an unknown extension: the PBX
    /// does not tell them apart).
    AuthFailed,
    /// A web admin login failed.
    LoginFailed,
    /// The source was banned.
    Banned,
    /// Right credentials from a network the extension does not allow.
    NetworkRefused,
    /// SIP dropped: outside `[security] allow` or inside `deny`.
    AclRefused,
    /// SIP dropped: over the per-source request rate.
    RateLimited,
}

impl SecurityKind {
    pub fn as_str(self) -> &'static str {
        match self {
            SecurityKind::AuthFailed => "auth_failed",
            SecurityKind::LoginFailed => "login_failed",
            SecurityKind::Banned => "banned",
            SecurityKind::NetworkRefused => "network_refused",
            SecurityKind::AclRefused => "acl_refused",
            SecurityKind::RateLimited => "rate_limited",
        }
    }

    /// For a person.
    pub fn words(self) -> &'static str {
        match self {
            SecurityKind::AuthFailed => "SIP authentication failed",
            SecurityKind::LoginFailed => "web login failed",
            SecurityKind::Banned => "banned",
            SecurityKind::NetworkRefused => "network not allowed for the extension",
            SecurityKind::AclRefused => "refused by allow/deny",
            SecurityKind::RateLimited => "over the request rate",
        }
    }
}

/// Something the security guard saw. Repeats of the same kind from the same source in a row
/// are one event with a count (a flood does not push everything else out).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecurityEvent {
    /// Unix seconds of the latest occurrence.
    pub at: u64,
    pub kind: SecurityKind,
    /// The source address (no port).
    pub source: IpAddr,
    /// The extension or admin user named, if any (never a password).
    pub user: String,
    /// More about it: why authentication failed, until when a ban lasts.
    pub detail: String,
    /// How many times in a row.
    pub count: u64,
}

/// How the PBX's outgoing mail (`[smtp]`) is doing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MailHealth {
    /// The server, without a password.
    pub server: String,
    /// Messages waiting in the spool.
    pub queued: usize,
    /// Unix seconds of the last delivery.
    pub last_sent: Option<u64>,
    /// Unix seconds and error of the last failed delivery.
    pub last_failure: Option<(u64, String)>,
}

impl MailHealth {
    /// Whether the latest delivery attempt failed (nothing tried yet counts as well).
    pub fn failing(&self) -> bool {
        match (&self.last_failure, self.last_sent) {
            (Some((failed, _)), Some(sent)) => *failed > sent,
            (Some(_), None) => true,
            (None, _) => false,
        }
    }
}

/// The engine's live state and the actions on it.
#[async_trait]
pub trait Live: Send + Sync {
    /// The devices registered now (not expired at `now_unix`), ordered by extension.
    fn registrations(&self, now_unix: u64) -> Vec<Binding>;

    /// The contexts of the running dialplan; `None` when the config names no dialplan.
    fn contexts(&self) -> Option<Vec<String>>;

    /// Reads the dialplan file again; every problem as `path:line:col: message` when it does
    /// not validate (the running plan then stays). Validated as the server loads a plan
    /// (the contexts the store assigns, the `[lookup]` databases of the config).
    async fn reload_dialplan(&self) -> Result<(), Vec<String>>;

    /// Validates a dialplan text (named `path` in messages) exactly as
    /// [`Live::reload_dialplan`] would: the web admin checks with it before saving.
    async fn check_dialplan(
        &self,
        path: &std::path::Path,
        text: &str,
    ) -> Result<std::sync::Arc<pbx_dialplan::Plan>, Vec<crate::dialplan_file::Problem>>;

    /// Lifts the ban of `addr` in the store and in the running guard; `false` when it was not
    /// banned.
    async fn lift_ban(&self, addr: IpAddr) -> Result<bool, StoreError>;

    /// The calls in progress, oldest first.
    fn calls(&self) -> Vec<LiveCall>;

    /// Ends the call `id` (BYE to answered legs, CANCEL and 503 while ringing); `false`
    /// when there is no such call in progress.
    fn hang_up(&self, id: &str) -> bool;

    /// Whether the SIP engine is running.
    fn sip_running(&self) -> bool;

    /// The dialplan file the config names (`[dialplan] file`), if any.
    fn dialplan_file(&self) -> Option<PathBuf>;

    /// A message of `mailbox` was moved or deleted: its phones' message lamps (RFC 3842
    /// NOTIFY) must show the new counts.
    fn mailbox_changed(&self, mailbox: &str);

    /// The most recent security events, newest first, at most `limit`.
    fn security_events(&self, limit: usize) -> Vec<SecurityEvent>;

    /// The outgoing mail's state; `None` when no `[smtp]` server is configured.
    fn mail_health(&self) -> Option<MailHealth>;

    /// A trunk was added, changed or removed in the store: the PBX reads them again now
    /// (it would within seconds anyway).
    fn trunks_changed(&self) {}
}

/// Why a login was not even checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoginRefusal {
    /// The source address is banned (by SIP or web failures alike).
    Banned,
    /// The source has as many failures and checks under way as the limit allows.
    Busy,
}

/// What a checked login came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoginSettled {
    Accepted,
    Rejected,
    /// Rejected, and this failure reached the limit: the source is banned now.
    RejectedAndBanned,
    /// The source was banned while this login waited: its result must not be disclosed.
    Banned,
}

/// The PBX's security guard (the same failure count and bans as SIP digest), in two steps:
/// admit the attempt where it arrives, then settle it with the password check's result.
pub trait LoginGuard: Send + Sync {
    fn admit(&self, source: IpAddr) -> Result<Box<dyn LoginTicket>, LoginRefusal>;
}

/// One admitted login attempt; dropping it unsettled frees its place.
#[async_trait]
pub trait LoginTicket: Send {
    async fn settle(self: Box<Self>, ok: bool) -> LoginSettled;
}
