//! What the engine takes in and gives out, in the shape of quinn-proto's `Endpoint` and
//! str0m's `Rtc`: the driver feeds an [`Input`] with the time ([`Now`]), then drains
//! [`Output`]s and sleeps until `poll_timeout`. Every request the engine makes of the shell
//! (store, HTTP, media, local address) carries an id its answer comes back with.

use crate::credentials::Lookup;
use crate::location;
pub use crate::now::Now;
use crate::peer::{ConnId, Inbound, Peer};
use crate::qualify;
use crate::security::Admission;
use crate::security::guard::Ban;
use bytes::Bytes;
use pbx_dialplan::{HttpOutcome, HttpRequest};
use pbx_media::MediaPlan;
use pbx_sip::transaction::TransactionKey;
use pbx_store_types::{MessageCounts, NewCdr};
use std::net::{IpAddr, SocketAddr};

/// What the engine reports about sources and credentials (the driver logs and counts it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Security {
    /// A request from a source banned while it waited was dropped unanswered.
    DroppedBanned,
    /// Credentials were not checked: the source has its limit's worth on their way.
    NotChecked { source: SocketAddr, user: String },
    /// Digest credentials failed; `counted` when the failure counts toward a ban.
    AuthFailed {
        source: SocketAddr,
        user: String,
        failure: String,
        counted: bool,
    },
    /// The source is banned until `until` (Unix seconds); [`Output::SaveBan`] follows.
    Banned { address: IpAddr, until: u64 },
    /// Right credentials from a network the extension does not allow.
    NetworkRefused { source: SocketAddr, user: String },
}

/// What a voicemail machine asks of the shell.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VoicemailRequest {
    Store(pbx_voicemail::StoreRequest),
    /// Delete this recording (too short, or not kept).
    Discard {
        path: String,
    },
}

/// What the PBX does on the caller's leg of a call it answered itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AppMedia {
    /// Play these prompts (names in the prompt library) one after the other, encoded as
    /// `local` says, then report [`pbx_media::session::Event::PlayerFinished`] (also when a
    /// prompt is missing: the shell logs it).
    Play {
        /// Prompts by name, and recorded files (messages, greetings) by path.
        prompts: Vec<pbx_voicemail::Sound>,
        local: pbx_media::sdp::LocalMedia,
        /// RFC 3550 §5.1: the stream's SSRC and random first numbers, from the engine's
        /// random source.
        ssrc: u32,
        first_sequence: u16,
        first_timestamp: u32,
    },
    StopPlayer,
    /// Record the caller into the WAV file `path`, written as it comes; report
    /// [`Input::Recorded`] when it ends. `message` is set for a voicemail message: the shell
    /// files it (row, e-mail, lamp) once recorded, even when the caller hangs up first or the
    /// PBX is killed on the way (docs/voicemail.md, "Nothing is lost").
    Record {
        path: String,
        limits: pbx_voicemail::RecordLimits,
        message: Option<pbx_voicemail::NewMessageInfo>,
        /// The caller's codec, to decode what it sends.
        local: pbx_media::sdp::LocalMedia,
    },
    StopRecorder,
    /// Report the caller's keys: RFC 4733 events with `local.telephone_event`.
    DetectDtmf {
        local: pbx_media::sdp::LocalMedia,
    },
    /// Send the caller's packets back to it under `ssrc`.
    Echo {
        ssrc: u32,
    },
    /// A device took the call over: stop the PBX's own endpoints and relay between the legs.
    Bridge,
}

/// What a call's media relay reports.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MediaEvent {
    /// No RTP from either leg for `rtp_timeout` while not on hold: the call is dead (a phone
    /// lost power or network without hanging up). Sent once per session.
    Timeout,
    /// The relay hit an internal error on this call and dropped its media.
    Failed,
}

/// What the shell's table of live calls learns about a call (the web admin's Calls page):
/// `call` is the call's number in this shard.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallState {
    /// Extension `caller` dialed `called`.
    Started {
        call: u64,
        call_id: String,
        caller: String,
        called: String,
    },
    /// A device (or the PBX itself) answered.
    Answered { call: u64 },
    /// The call is over.
    Ended { call: u64 },
}

/// The two relay ports the shell bound for a call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MediaPorts {
    pub caller: u16,
    pub callee: u16,
}

// Almost every input is a SIP message: boxing it to shrink the rare ones would cost an
// allocation per packet.
#[allow(clippy::large_enum_variant)]
pub enum Input {
    /// A message, and for a request that carries credentials, its place in the credential
    /// gate, taken in arrival order (see [`crate::security::Guard::admit_credential`]).
    Sip(Inbound, Option<Admission>),
    /// The answer to [`Output::LoadCredentials`] `id`.
    Credentials {
        id: u64,
        lookup: Result<Lookup, String>,
    },
    /// The answer to [`Output::HttpLookup`] of call `call`.
    Http { call: u64, outcome: HttpOutcome },
    /// The answer to [`Output::DbLookup`] of call `call`.
    Db {
        call: u64,
        outcome: pbx_dialplan::DbOutcome,
    },
    /// The answer to [`Output::AllocateMedia`].
    MediaAllocated {
        call: u64,
        ports: Result<MediaPorts, String>,
    },
    /// The answer to [`Output::ResolveLocalAddress`]: `None` when the host has no route.
    LocalAddress {
        toward: IpAddr,
        local: Option<IpAddr>,
    },
    /// The media relay of call `.0` reports something.
    Media(u64, MediaEvent),
    /// The PBX's own endpoints on call `call`'s media (a key, a prompt finished).
    Session {
        call: u64,
        event: pbx_media::session::Event,
    },
    /// The recording of call `call` ([`AppMedia::Record`]) is written and closed.
    Recorded {
        call: u64,
        duration: std::time::Duration,
        end: pbx_voicemail::RecordEnd,
    },
    /// The answer to [`Output::Voicemail`] `id` of call `call`.
    Voicemail {
        call: u64,
        id: u64,
        answer: pbx_voicemail::StoreAnswer,
    },
    /// Send this device an OPTIONS.
    Qualify(qualify::Target),
    /// A [`Output::Transmit`] carrying this transaction's key could not be sent.
    SendFailed(TransactionKey),
    /// The answer to [`Output::MessageCounts`] `id`.
    MessageCounts {
        id: u64,
        counts: Result<MessageCounts, String>,
    },
    /// Mailbox `mailbox` changed and now holds `counts`: NOTIFY its subscribers on this
    /// shard; with `unsolicited`, also the registered devices of an extension that asked for
    /// NOTIFYs without subscribing (the shell sets it on one shard only).
    MailboxChanged {
        mailbox: String,
        counts: MessageCounts,
        unsolicited: bool,
    },
    /// An admin ends call `call` of this shard (BYE to answered legs, CANCEL and 503 to a
    /// ringing call); unknown or finished calls are ignored.
    HangUp { call: u64 },
    /// Time passed: run the timers due at `now`.
    Timeout,
    /// The PBX is stopping: end every call (BYE, CANCEL, 503), then say
    /// [`Output::ShutdownComplete`].
    Shutdown,
    /// Makes the engine panic, to test the driver's supervision.
    #[cfg(feature = "fault-injection")]
    Panic,
}

impl Input {
    /// The kind, for the log line of a shard that failed on it.
    pub fn kind(&self) -> &'static str {
        match self {
            Input::Sip(..) => "sip",
            Input::Credentials { .. } => "credentials",
            Input::Http { .. } => "http",
            Input::Db { .. } => "db",
            Input::MediaAllocated { .. } => "media-allocated",
            Input::LocalAddress { .. } => "local-address",
            Input::Media(..) => "media-event",
            Input::Session { .. } => "session-event",
            Input::Recorded { .. } => "recorded",
            Input::Voicemail { .. } => "voicemail",
            Input::Qualify(_) => "qualify",
            Input::SendFailed(_) => "send-failed",
            Input::HangUp { .. } => "hang-up",
            Input::MessageCounts { .. } => "message-counts",
            Input::MailboxChanged { .. } => "mailbox-changed",
            Input::Timeout => "timeout",
            Input::Shutdown => "shutdown",
            #[cfg(feature = "fault-injection")]
            Input::Panic => "panic",
        }
    }
}

/// What the engine asks of its shell.
#[derive(Debug)]
pub enum Output {
    /// Send these bytes; when `key` is set and sending fails, answer [`Input::SendFailed`].
    Transmit {
        peer: Peer,
        bytes: Bytes,
        key: Option<TransactionKey>,
    },
    /// Load one extension's credentials from the store (not in the in-memory table).
    LoadCredentials { id: u64, user: String },
    /// Read how many messages mailbox `mailbox` holds per folder (for message-waiting
    /// indication); answer [`Input::MessageCounts`] `id`.
    MessageCounts { id: u64, mailbox: String },
    /// A dialplan `http_lookup` of call `call`.
    HttpLookup { call: u64, request: HttpRequest },
    /// A dialplan `db_lookup` of call `call`.
    DbLookup {
        call: u64,
        request: pbx_dialplan::DbRequest,
    },
    /// A voicemail machine of call `call` asks the store (reads are answered with
    /// [`Input::Voicemail`] `id`; writes are done in order, failures logged) or the disk
    /// (`Discard`: delete a recording not kept).
    Voicemail {
        call: u64,
        id: u64,
        request: VoicemailRequest,
    },
    /// Bind relay ports for call `call`.
    AllocateMedia { call: u64 },
    /// Apply this plan to call `call`'s relay.
    ApplyMedia { call: u64, plan: MediaPlan },
    /// Call `call` is over: free its relay.
    ReleaseMedia { call: u64 },
    /// Drive the PBX's own endpoints on the caller's leg of call `call` (which it answered).
    AppMedia { call: u64, media: AppMedia },
    /// Convert DTMF between the legs of bridged call `call` (RFC 4733 and SIP INFO): read a
    /// leg's events (reported as [`Input::Session`] `Dtmf`), or send a leg events.
    DtmfMedia {
        call: u64,
        media: pbx_calls::DtmfMedia,
    },
    /// Which address of this host routes toward `toward` (for Via, Contact and SDP when the
    /// listener is a wildcard). Asked once per destination; the engine caches the answer.
    ResolveLocalAddress { toward: IpAddr },
    /// Write a call record.
    WriteCdr(NewCdr),
    /// A call started, was answered or ended (for the live calls view).
    CallState(CallState),
    /// Persist a ban.
    SaveBan(Ban),
    /// Save a change of the location table (a binding added, refreshed or removed, or what
    /// qualify learnt). Written behind in the order of their `seq`.
    Location(location::Write),
    /// A request over this TCP/TLS connection passed digest authentication: it is a phone's
    /// flow now, kept open past the idle limit for strangers.
    Authenticated { conn: ConnId },
    /// For the security log and metrics.
    Security(Security),
    /// Every call has been ended after [`Input::Shutdown`].
    ShutdownComplete,
}
