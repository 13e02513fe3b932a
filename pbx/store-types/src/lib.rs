//! The plain records the PBX's store keeps and its sans-IO engine reads: no I/O, no async
//! runtime, so that the engine can use them without depending on tokio (docs/decisions.md).
//! `pbx-store` re-exports each of them; its queries live there.

mod binding;

pub use binding::Binding;

use ipnet::IpNet;

/// What digest authentication needs about an extension.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credentials {
    pub number: String,
    /// Lower-case hex of MD5(number:realm:password).
    pub ha1_md5: String,
    /// Lower-case hex of SHA-256(number:realm:password).
    pub ha1_sha256: String,
    pub allowed_networks: Vec<IpNet>,
    /// `required`, `optional` or `off`.
    pub media_encryption: String,
    /// The dialplan context it calls from; empty: the dialplan decides.
    pub context: String,
    /// Its devices get message-waiting NOTIFYs without subscribing.
    pub mwi_unsolicited: bool,
    /// The configured name (empty: none), shown as the caller's display name on the calls
    /// it places.
    pub name: String,
    /// Its own public number (empty: none), its caller ID on trunks that present the
    /// extension.
    pub did: String,
}

/// A finished call to record. Serializable: records the database could not take wait in the
/// CDR spool file.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct NewCdr {
    pub call_id: String,
    pub caller: String,
    pub called: String,
    /// Unix seconds.
    pub started_at: u64,
    pub answered_at: Option<u64>,
    pub ended_at: u64,
    /// Seconds talked (from answer to end); 0 when not answered.
    pub duration_secs: u64,
    /// answered, busy, no_answer, failed, cancelled
    pub disposition: String,
    pub hangup_cause: String,
    /// caller, callee or pbx
    pub hangup_side: String,
    pub codec: Option<String>,
    pub caller_encrypted: bool,
    pub callee_encrypted: bool,
    /// The trunk the call came in by; empty for calls between extensions. (A spool file
    /// written before this field reads as empty.)
    #[serde(default)]
    pub trunk: String,
}

/// How many messages a mailbox holds per folder (RFC 3842's counts come from here).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MessageCounts {
    pub new: u64,
    pub old: u64,
    pub saved: u64,
}

/// One change to the registrations table, for `LocationStore::apply_binding_changes` (pbx-store).
// Nearly every change is an upsert: boxing it would cost an allocation per REGISTER to shrink
// the rare removals.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq)]
pub enum BindingChange {
    Upsert(Binding),
    Remove {
        aor: String,
        contact: String,
    },
    RemoveAll {
        aor: String,
    },
    Reachable {
        aor: String,
        contact: String,
        reachable: bool,
    },
}
