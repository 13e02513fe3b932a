//! The SIP engine's shell: N shard tasks, each owning the transactions of the Call-IDs that
//! hash to it (ARCHITECTURE.md "Sharding, not locking").
//!
//! Each shard is a sans-IO [`Engine`] (the `pbx-engine` crate: no tokio, no clock, no
//! randomness of its own, no socket) run by a thin tokio [`driver`] that feeds it [`Input`]s
//! and carries out its [`Output`]s. Here too: the [`Dispatcher`] that routes messages to
//! shards, the CDR writer and its spool, the location table's write-behind, the credential
//! refresher and the qualify ticker.

pub mod cdr_spool;
pub mod cdr_writer;
pub mod credentials;
pub(crate) mod db_lookup;
pub mod driver;
pub mod live_calls;
pub mod locate;
pub mod location;
mod lookup;
pub mod mwi;
pub mod qualify;
pub mod trunks;

pub use pbx_engine::io;
pub use pbx_engine::{AppMedia, Core, Engine, Input, MediaPorts, Now, Output, Security};

use crate::security::Guard;
use crate::transport::{Inbound, Sender, Sink};
use credentials::CredentialLoader;
use location::Location;
use pbx_engine::{carries_credentials, own_shard};
use pbx_sip::auth::DigestAuthenticator;
use pbx_sip::registrar::RegistrarPolicy;
use pbx_store::BanStore;
use std::hash::BuildHasher;
use std::sync::{Arc, Mutex};
use tokio::sync::mpsc;

/// Inputs a shard queues before the dispatcher starts dropping (and counting) new ones.
const SHARD_QUEUE: usize = 8192;

/// What every shard shares.
pub struct EngineContext {
    pub domain: String,
    pub user_agent: String,
    pub sender: Sender,
    pub guard: Arc<Guard>,
    pub store: Arc<dyn BanStore>,
    /// The credential table and its loads from the store.
    pub credentials: Arc<CredentialLoader>,
    pub location: Arc<Location>,
    /// Where the engines' `Output::Location` changes go: written behind to the store.
    pub binding_writes: location::WriteBehind,
    /// Shared so that a nonce-count seen by one shard is known to all (replay protection).
    pub digest: Arc<Mutex<DigestAuthenticator>>,
    pub policy: RegistrarPolicy,
    /// Lower-case User-Agent substrings of clients challenged with MD5 only.
    pub md5_only_user_agents: Vec<String>,
    /// The media relay: ports and relay workers for calls.
    pub media: Arc<crate::media::MediaService>,
    /// `[rtp] public_ip`: written into SDP instead of the listener's address.
    pub public_ip: Option<std::net::IpAddr>,
    /// `[rtp] sdes_over_insecure`.
    pub sdes_over_insecure: bool,
    /// `[calls] ring_timeout`.
    pub ring_timeout: std::time::Duration,
    /// Call records, written behind in batches.
    pub cdrs: Arc<cdr_writer::CdrWriter>,
    /// The dialplan; reloaded on SIGHUP or when its file changes.
    pub plan: Arc<crate::plan::PlanHandle>,
    /// The prompts the PBX plays on the calls it answers.
    pub prompts: Arc<crate::media::prompts::Prompts>,
    /// E-mail to the admin when a source is banned (`[security] alert_email`).
    pub ban_alerts: Option<crate::mail::BanAlerts>,
    /// The calls in progress, for the web admin.
    pub live_calls: Arc<live_calls::LiveCalls>,
    /// Voicemail's disk, store and mail.
    pub voicemail: Arc<crate::voicemail::VoicemailService>,
    /// `[voicemail]` as the engines read it.
    pub voicemail_settings: pbx_engine::VoicemailSettings,
    /// `[lookup.NAME]`: the databases of the dialplan's `db_lookup`.
    pub lookups: Arc<db_lookup::Lookups>,
    /// Message counts, for message-waiting NOTIFYs.
    pub mailboxes: Arc<dyn pbx_store::MailboxStore>,
    /// The recent security events, for the web admin.
    pub security_log: Arc<crate::security::events::SecurityLog>,
    /// The trunks the engines recognise INVITEs from (filled by [`trunks::Trunks`]).
    pub trunks: Arc<pbx_engine::trunk::TrunkTable>,
    /// Where responses to the PBX's own requests to trunks (REGISTER, OPTIONS) go.
    pub trunk_inbox: Arc<trunks::Inbox>,
}

impl EngineContext {
    /// What the engines read of it: everything but the shell's services.
    fn core(&self) -> Core {
        Core {
            domain: self.domain.clone(),
            user_agent: self.user_agent.clone(),
            guard: self.guard.clone(),
            credentials: self.credentials.table().clone(),
            location: self.location.clone(),
            digest: self.digest.clone(),
            policy: self.policy,
            md5_only_user_agents: self.md5_only_user_agents.clone(),
            public_ip: self.public_ip,
            media_bind: self.media.bound_ip(),
            dtls_fingerprint: Some(self.media.dtls_fingerprint().clone()),
            sdes_over_insecure: self.sdes_over_insecure,
            ring_timeout: self.ring_timeout,
            plan: self.plan.clone(),
            voicemail: self.voicemail_settings.clone(),
            trunks: self.trunks.clone(),
        }
    }
}

// Almost every input is a SIP message: boxing it to shrink the rare ones would cost an
// allocation per packet.
#[allow(clippy::large_enum_variant)]
pub(crate) enum ShardInput {
    /// For the engine.
    Input(Input),
    /// The PBX is stopping: end every call (BYE, CANCEL, 503), then acknowledge.
    Shutdown(tokio::sync::oneshot::Sender<()>),
}

/// Routes each message to its shard by Call-ID; implements the transports' [`Sink`].
pub struct Dispatcher {
    shards: Vec<mpsc::Sender<ShardInput>>,
    hasher: std::collections::hash_map::RandomState,
    guard: Arc<Guard>,
    trunk_inbox: Arc<trunks::Inbox>,
    /// Bindings over a WebSocket go when it closes ([`Sink::flow_closed`]).
    location: Arc<Location>,
    binding_writes: location::WriteBehind,
}

impl Dispatcher {
    fn shard_of(&self, call_id: &[u8]) -> usize {
        let count = self.shards.len().max(1);
        if let Some(index) = own_shard(call_id) {
            return index % count;
        }
        (self.hasher.hash_one(call_id) % count as u64) as usize
    }

    /// Queues an input on the shard that owns `call_id`; counts it when that shard is full.
    pub(crate) fn send_to_shard_of(&self, call_id: &[u8], input: ShardInput) {
        let Some(shard) = self.shards.get(self.shard_of(call_id)) else {
            return;
        };
        if shard.try_send(input).is_err() {
            metrics::counter!("pbx_sip_dropped_total", "reason" => "overload").increment(1);
        }
    }
}

impl Dispatcher {
    /// Asks shard `shard` to end its call `call` (an admin's hang-up); `false` when the
    /// shard is unknown or its queue is full.
    pub fn hang_up(&self, shard: usize, call: u64) -> bool {
        self.shards.get(shard).is_some_and(|s| {
            s.try_send(ShardInput::Input(Input::HangUp { call }))
                .is_ok()
        })
    }

    /// Tells every shard that `mailbox` now holds `counts` (its subscriptions may live on
    /// any of them); one shard, always the same for a mailbox, also sends the unsolicited
    /// NOTIFYs, so that a device gets each once.
    pub async fn mailbox_changed(&self, mailbox: &str, counts: pbx_store::MessageCounts) {
        let unsolicited_shard = self.shard_of(mailbox.as_bytes());
        for (index, shard) in self.shards.iter().enumerate() {
            let input = Input::MailboxChanged {
                mailbox: mailbox.to_string(),
                counts,
                unsolicited: index == unsolicited_shard,
            };
            let _ = shard.send(ShardInput::Input(input)).await;
        }
    }

    /// Whether every shard is running (the dashboard's "SIP up").
    pub fn running(&self) -> bool {
        !self.shards.is_empty() && self.shards.iter().all(|s| !s.is_closed())
    }

    /// Ends every call of every shard and waits (at most `within`) until each has sent its
    /// BYEs and CANCELs.
    pub async fn hang_up_all(&self, within: std::time::Duration) {
        let mut acks = Vec::new();
        for shard in &self.shards {
            let (done, ack) = tokio::sync::oneshot::channel();
            if shard.send(ShardInput::Shutdown(done)).await.is_ok() {
                acks.push(ack);
            }
        }
        let all = futures_util::future::join_all(acks);
        if tokio::time::timeout(within, all).await.is_err() {
            tracing::warn!("gave up waiting for calls to end");
        }
    }
}

impl Sink for Dispatcher {
    fn deliver(&self, inbound: Inbound) {
        let call_id = inbound
            .message
            .headers()
            .get(&pbx_sip::message::HeaderName::CALL_ID)
            .cloned()
            .unwrap_or_default();
        // Answers to the PBX's own requests to trunks go to the trunk's task, not a shard.
        let inbound = match inbound {
            Inbound {
                peer,
                message: pbx_sip::message::Message::Response(response),
            } => match self.trunk_inbox.deliver(&call_id, response) {
                Ok(()) => return,
                Err(response) => Inbound {
                    peer,
                    message: pbx_sip::message::Message::Response(response),
                },
            },
            request => request,
        };
        let Some(shard) = self.shards.get(self.shard_of(&call_id)) else {
            return;
        };
        let admission = carries_credentials(&inbound.message).then(|| {
            let now = std::time::Instant::now();
            self.guard
                .admit_credential(inbound.peer.remote.ip(), now, crate::transport::now_unix())
        });
        if shard
            .try_send(ShardInput::Input(Input::Sip(inbound, admission)))
            .is_err()
        {
            metrics::counter!("pbx_sip_dropped_total", "reason" => "overload").increment(1);
        }
    }

    fn flow_closed(&self, conn: crate::transport::ConnId) {
        for write in self.location.remove_flow(conn) {
            self.binding_writes.write(write);
        }
    }
}

/// Starts `count` shards; returns the dispatcher the transports deliver to.
pub fn start(context: Arc<EngineContext>, count: usize) -> Arc<Dispatcher> {
    let mut senders = Vec::with_capacity(count);
    let mut receivers = Vec::with_capacity(count);
    for _ in 0..count.max(1) {
        let (tx, rx) = mpsc::channel(SHARD_QUEUE);
        senders.push(tx);
        receivers.push(rx);
    }
    let core = Arc::new(context.core());
    for (index, rx) in receivers.into_iter().enumerate() {
        let own = senders.get(index).cloned();
        if let Some(own) = own {
            let driver = driver::Driver::new(context.clone(), core.clone(), own, index);
            tokio::spawn(driver.run(rx));
        }
    }
    Arc::new(Dispatcher {
        shards: senders,
        hasher: Default::default(),
        guard: context.guard.clone(),
        trunk_inbox: context.trunk_inbox.clone(),
        location: context.location.clone(),
        binding_writes: context.binding_writes.clone(),
    })
}
