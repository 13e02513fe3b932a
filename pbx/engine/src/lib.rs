//! The sans-IO SIP engine of one shard, in the shape of quinn-proto's `Endpoint`: the shell
//! feeds it an [`Input`] with the time ([`Now`]), drains its [`Output`]s and wakes it at
//! [`Engine::poll_timeout`]. It makes every protocol decision (method dispatch, the digest
//! challenge, bans and network checks, the registrar's answers, routing by the plan, calls,
//! qualify) and does no I/O: no tokio, no clock, no socket, no randomness of its own (the
//! `StdRng` it is given).
//!
//! What the shards share ([`Core`]) are read-mostly tables behind `std::sync` locks, each
//! taking the time as an argument: the [`location::Location`] table, the
//! [`credentials::CredentialCache`] table, the [`security::Guard`], the digest
//! authenticator and the [`plan::PlanHandle`].

mod application;
mod auth;
mod caller;
mod calls;
pub mod credentials;
pub mod date;
mod dialing;
pub mod io;
pub mod location;
mod mwi;
mod now;
mod options;
pub mod peer;
pub mod plan;
pub mod qualify;
mod register;
mod respond;
mod routing;
mod say;
pub mod security;
mod shard;
mod state;
pub mod trunk;
mod voicemail;

pub use application::RINGBACK;
pub use io::{
    AppMedia, CallState, Input, MediaEvent, MediaPorts, Now, Output, Security, VoicemailRequest,
};
pub use peer::{ConnId, Inbound, Peer, TransportKind};
pub use routing::{OWN_CALL_ID_PREFIX, carries_credentials, own_shard};
pub use state::Engine;
pub use voicemail::VoicemailSettings;

use credentials::CredentialCache;
use location::Location;
use pbx_sip::auth::DigestAuthenticator;
use pbx_sip::registrar::RegistrarPolicy;
use pbx_sip::status::StatusCode;
use plan::PlanHandle;
use security::Guard;
use std::sync::{Arc, Mutex};

/// What every engine reads: the configuration and the read-mostly tables the shards share
/// (each takes the time as an argument; none does I/O).
pub struct Core {
    pub domain: String,
    pub user_agent: String,
    pub guard: Arc<Guard>,
    /// Only its in-memory table: loads from the store are the driver's.
    pub credentials: Arc<CredentialCache>,
    pub location: Arc<Location>,
    /// Shared so that a nonce-count seen by one shard is known to all (replay protection).
    pub digest: Arc<Mutex<DigestAuthenticator>>,
    pub policy: RegistrarPolicy,
    /// Lower-case User-Agent substrings of clients challenged with MD5 only.
    pub md5_only_user_agents: Vec<String>,
    /// `[rtp] public_ip`: written into SDP instead of the listener's address.
    pub public_ip: Option<std::net::IpAddr>,
    /// `[rtp] bind` when it is one specific address: SDP names it (unless `public_ip`).
    pub media_bind: Option<std::net::IpAddr>,
    /// `[rtp] sdes_over_insecure`.
    pub sdes_over_insecure: bool,
    /// The fingerprint of the PBX's DTLS certificate, for WebRTC legs (none: no WebRTC).
    pub dtls_fingerprint: Option<pbx_media::Fingerprint>,
    /// `[calls] ring_timeout`.
    pub ring_timeout: std::time::Duration,
    /// The dialplan; reloaded on SIGHUP or when its file changes.
    pub plan: Arc<PlanHandle>,
    /// `[voicemail]`.
    pub voicemail: VoicemailSettings,
    /// The trunks whose INVITEs are recognised without digest; reloaded by the shell.
    pub trunks: Arc<trunk::TrunkTable>,
}

/// The `class` label of a status code: `1xx` ... `6xx`.
fn status_class(status: StatusCode) -> &'static str {
    match status.class() {
        1 => "1xx",
        2 => "2xx",
        3 => "3xx",
        4 => "4xx",
        5 => "5xx",
        _ => "6xx",
    }
}

/// Counts one response sent (`pbx_sip_responses_total` by class): by the engine as each
/// leaves its transaction layer, and by the transports for their own answers to unparsable
/// requests. The `metrics` facade records into whatever recorder the shell installed; it is
/// no I/O of the engine's (docs/decisions.md).
pub fn count_response(status: StatusCode) {
    metrics::counter!("pbx_sip_responses_total", "class" => status_class(status)).increment(1);
}
