//! The shell of trunks: loads them from the store every few seconds into the engine's
//! [`TrunkTable`] (so INVITEs from a trunk are recognised), and runs one task per trunk
//! around the sans-IO [`TrunkTask`]: a registration for a trunk the PBX registers to, OPTIONS
//! pings (every `[sip] qualify_interval`, else 30 s) for the others.
//!
//! The task owns its own client transactions (UDP retransmissions and Timer F) and the
//! shell sends what it asks through the server's transports ([`Sender`]), from the
//! listener of the remote's address family, and asks DNS again when it says so. The answers
//! come back through the dispatcher: responses whose Call-ID starts with [`CALL_ID_PREFIX`]
//! are handed to the
//! [`Inbox`] instead of a shard. What a task learns is written to the store's
//! `trunk_status` (which `pbx trunk list` reads from another process), counted in
//! `/metrics` and logged without secrets. On shutdown every binding is removed
//! (`Expires: 0`).
//!
//! The trunk's host (or its outbound proxy) is located as RFC 3263 says ([`Locator`]:
//! NAPTR, SRV, A/AAAA): calls, REGISTERs and OPTIONS go to the first target and fail over
//! to the next on 503, no answer or a transport error (§4.3). The order is kept until the
//! records' TTL ends, then asked again.
//!
//! Over TCP and TLS the requests go out on a connection the transports open to the trunk
//! (and reuse; a registration keeps it open). For TLS the shell tells the transports the
//! name each address's certificate must carry ([`TlsTarget`], RFC 5922).

use super::EngineContext;
use super::locate::{self, Located, Locator};
use crate::transport::tls_client::TlsTarget;
use crate::transport::{Peer, TransportKind};
use pbx_engine::trunk::ping::Reachability;
use pbx_engine::trunk::register::{Event, RegisterConfig, Registration};
use pbx_engine::trunk::task::{PingConfig, Target, TaskOutput, TrunkTask};
use pbx_engine::trunk::{Outbound, TrunkPeer, TrunkTable};
use pbx_sip::message::Response;
use pbx_store::{Trunk, TrunkStatus, TrunkStore, now_unix};
use rand::SeedableRng;
use rand::rngs::StdRng;
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, oneshot};

/// Call-IDs of the PBX's requests to trunks (REGISTER, OPTIONS) start with this.
pub const CALL_ID_PREFIX: &str = "trunkreg-";
/// How often the trunks are re-read from the store (`pbx trunk add` on a running PBX).
const RELOAD_EVERY: Duration = Duration::from_secs(5);
/// The binding's life asked of a provider (RFC 3261 §10.2.1.1: a UA's choice).
const REGISTER_EXPIRES: Duration = Duration::from_secs(3600);
/// How often trunks get an OPTIONS when `[sip] qualify_interval` is off.
pub const PING_EVERY: Duration = Duration::from_secs(30);
/// `[calls] trunk_setup_timeout` by default.
pub const DEFAULT_SETUP_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a failed DNS look-up waits before the next.
const RESOLVE_RETRY: Duration = Duration::from_secs(30);

/// Where the dispatcher hands the responses to the PBX's requests to trunks, by Call-ID.
#[derive(Default)]
pub struct Inbox {
    routes: RwLock<HashMap<String, mpsc::Sender<Response>>>,
}

impl Inbox {
    /// Takes a response whose Call-ID is a trunk task's; gives anything else back (the
    /// dispatcher routes that to a shard). A response for a task that ended is taken and
    /// dropped (RFC 6026 §8.9: a stray response is discarded).
    pub fn deliver(&self, call_id: &[u8], response: Response) -> Result<(), Response> {
        if !call_id.starts_with(CALL_ID_PREFIX.as_bytes()) {
            return Err(response);
        }
        let routes = self.routes.read().unwrap_or_else(|e| e.into_inner());
        if let Some(route) = std::str::from_utf8(call_id)
            .ok()
            .and_then(|id| routes.get(id))
        {
            let _ = route.try_send(response);
        }
        Ok(())
    }

    fn open(&self, call_id: &str) -> mpsc::Receiver<Response> {
        let (tx, rx) = mpsc::channel(64);
        self.routes
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(call_id.to_string(), tx);
        rx
    }

    fn close(&self, call_id: &str) {
        self.routes
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .remove(call_id);
    }
}

/// A registration task running for a trunk, and the trunk as it was when started (a
/// change restarts it).
struct Running {
    trunk: Trunk,
    stop: oneshot::Sender<()>,
    done: tokio::task::JoinHandle<()>,
}

pub struct Trunks {
    ctx: Arc<EngineContext>,
    store: Arc<dyn TrunkStore>,
    /// How often a trunk the PBX does not register to gets an OPTIONS.
    ping_every: Duration,
    /// `[calls] trunk_setup_timeout`: a trunk silent this long after an INVITE fails over.
    setup_timeout: Duration,
    last: Mutex<Option<Vec<Trunk>>>,
    running: Mutex<HashMap<String, Running>>,
    /// One load at a time: a reload asked for by the web admin must not interleave with the
    /// periodic one (an older read reconciled last would undo a newer one).
    loading: tokio::sync::Mutex<()>,
    locator: Arc<Locator>,
    /// When the DNS answers of the last load end (their smallest TTL): then they are asked
    /// again.
    resolve_at: Mutex<Instant>,
}

impl Trunks {
    /// `ping_every`: `[sip] qualify_interval`, or [`PING_EVERY`] when qualify is off.
    pub fn new(
        ctx: Arc<EngineContext>,
        store: Arc<dyn TrunkStore>,
        ping_every: Duration,
        setup_timeout: Duration,
        locator: Arc<Locator>,
    ) -> Arc<Trunks> {
        let ping_every = if ping_every.is_zero() {
            PING_EVERY
        } else {
            ping_every
        };
        describe_metrics();
        Arc::new(Trunks {
            ctx,
            store,
            ping_every,
            setup_timeout,
            last: Mutex::new(None),
            running: Mutex::new(HashMap::new()),
            loading: tokio::sync::Mutex::new(()),
            locator,
            resolve_at: Mutex::new(Instant::now()),
        })
    }

    /// Re-reads the trunks every few seconds until the PBX stops, and resolves their hosts
    /// again when the DNS answers' TTL ends (a provider's addresses may change).
    pub async fn run(self: Arc<Self>) {
        loop {
            let stale =
                Instant::now() >= *self.resolve_at.lock().unwrap_or_else(|e| e.into_inner());
            self.load(stale).await;
            tokio::time::sleep(RELOAD_EVERY).await;
        }
    }

    /// Loads the trunks; on a change, refills the engine's table and starts, restarts or
    /// stops registration tasks.
    pub async fn reload(&self) {
        self.load(false).await;
    }

    /// As [`Trunks::reload`]; `refresh` refills the table (resolving the hosts again) even
    /// when no trunk changed.
    async fn load(&self, refresh: bool) {
        let _one_at_a_time = self.loading.lock().await;
        let trunks = match self.store.list_trunks().await {
            Ok(trunks) => trunks,
            Err(error) => {
                tracing::warn!(%error, "cannot read the trunks");
                return;
            }
        };
        {
            let mut last = self.last.lock().unwrap_or_else(|e| e.into_inner());
            if last.as_ref() == Some(&trunks) && !refresh {
                return;
            }
            *last = Some(trunks.clone());
        }
        let mut peers = Vec::with_capacity(trunks.len());
        let mut hold = Duration::from_secs(3600);
        let mut tls_targets = HashMap::new();
        for trunk in &trunks {
            let host = self
                .locator
                .locate(&trunk.host, trunk.port, &locate::allowed(&trunk.transport))
                .await;
            let next_hop = match proxy_of(trunk) {
                Some(Ok((proxy, port))) => {
                    self.locator
                        .locate(&proxy, port, &locate::allowed(&trunk.transport))
                        .await
                }
                Some(Err(())) => Located {
                    targets: Vec::new(),
                    hold: host.hold,
                },
                None => host.clone(),
            };
            hold = hold.min(host.hold).min(next_hop.hold);
            if host.targets.is_empty() {
                tracing::warn!(trunk = %trunk.name, host = %trunk.host, "cannot resolve the trunk's host");
            }
            // Its calls come from the addresses its host (and proxy) resolved to.
            let mut addresses: Vec<IpAddr> = Vec::new();
            for t in host.targets.iter().chain(&next_hop.targets) {
                if !addresses.contains(&t.ip) {
                    addresses.push(t.ip);
                }
            }
            let mut peer = peer_of(trunk, addresses);
            // The trunk's own setup time, else `[calls] trunk_setup_timeout`.
            peer.outbound.setup_timeout = trunk.setup_timeout.map_or(self.setup_timeout, |secs| {
                Duration::from_secs(u64::from(secs))
            });
            // Calls try the targets in order, each from the listener that reaches it, over
            // a connection the transports open for TCP and TLS.
            let kind = peer.outbound.transport;
            peer.outbound.targets = targets_of(&next_hop, kind)
                .into_iter()
                .filter_map(|t| local_toward(&self.ctx, kind, t).map(|local| (t, local)))
                .collect();
            if kind == TransportKind::Tls {
                for (address, _) in &peer.outbound.targets {
                    // Trunks sharing an address share its connection: one that verifies
                    // the certificate is not overruled by one that does not.
                    let target = tls_target(trunk);
                    tls_targets
                        .entry(*address)
                        .and_modify(|t: &mut TlsTarget| {
                            if !t.verify {
                                *t = target.clone();
                            }
                        })
                        .or_insert(target);
                }
            }
            peers.push(peer);
        }
        *self.resolve_at.lock().unwrap_or_else(|e| e.into_inner()) = Instant::now() + hold;
        let count = peers.len();
        self.ctx.sender.set_tls_targets(tls_targets);
        self.ctx.trunks.replace(peers);
        metrics::gauge!("pbx_trunks").set(count as f64);
        if refresh {
            tracing::debug!(trunks = count, "trunk hosts resolved again");
        } else {
            tracing::info!(trunks = count, "trunks loaded");
        }
        self.reconcile(&trunks).await;
    }

    async fn reconcile(&self, trunks: &[Trunk]) {
        let wanted: HashMap<&str, &Trunk> = trunks.iter().map(|t| (t.name.as_str(), t)).collect();
        let stale: Vec<Running> = {
            let mut running = self.running.lock().unwrap_or_else(|e| e.into_inner());
            let names: Vec<String> = running
                .iter()
                .filter(|(name, r)| wanted.get(name.as_str()) != Some(&&r.trunk))
                .map(|(name, _)| name.clone())
                .collect();
            names
                .iter()
                .filter_map(|name| running.remove(name))
                .collect()
        };
        for old in stale {
            metrics::gauge!("pbx_trunk_registered", "trunk" => old.trunk.name.clone()).set(0.0);
            metrics::gauge!("pbx_trunk_up", "trunk" => old.trunk.name.clone()).set(0.0);
            stop(old, Duration::from_secs(2)).await;
        }
        for trunk in wanted.values() {
            let started = self
                .running
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .contains_key(&trunk.name);
            if started {
                continue;
            }
            let (stop, stopped) = oneshot::channel();
            let task = Task {
                ctx: self.ctx.clone(),
                locator: self.locator.clone(),
                store: self.store.clone(),
                trunk: (*trunk).clone(),
                ping_every: self.ping_every,
            };
            let done = tokio::spawn(task.run(stopped));
            let running = Running {
                trunk: (*trunk).clone(),
                stop,
                done,
            };
            self.running
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .insert(trunk.name.clone(), running);
        }
    }

    /// Removes every binding (`Expires: 0`), waiting at most `within` in all.
    pub async fn shutdown(&self, within: Duration) {
        let all: Vec<Running> = self
            .running
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .drain()
            .map(|(_, r)| r)
            .collect();
        let stops = all.into_iter().map(|r| stop(r, within));
        futures_util::future::join_all(stops).await;
    }
}

fn describe_metrics() {
    metrics::describe_gauge!("pbx_trunks", "trunks configured");
    metrics::describe_gauge!(
        "pbx_trunk_registered",
        "1 while the trunk holds the PBX's registration, by trunk"
    );
    metrics::describe_gauge!(
        "pbx_trunk_up",
        "1 while the trunk answers OPTIONS, by trunk (trunks not registered to)"
    );
    metrics::describe_counter!(
        "pbx_trunk_registrations_total",
        "REGISTERs to trunks answered 2xx, by trunk"
    );
    metrics::describe_counter!(
        "pbx_trunk_register_failures_total",
        "registration attempts to trunks that failed, by trunk"
    );
    metrics::describe_counter!(
        "pbx_trunk_calls_total",
        "calls through trunks, by trunk and direction"
    );
    metrics::describe_gauge!(
        "pbx_trunk_channels_in_use",
        "calls in progress through the trunk, by trunk"
    );
    metrics::describe_counter!(
        "pbx_trunk_calls_refused_total",
        "trunk calls refused because every channel was in use, by trunk"
    );
    metrics::describe_counter!(
        "pbx_trunk_failures_total",
        "outbound calls a trunk failed (408, 5xx, silent past the setup time, down, full), by trunk"
    );
}

/// Asks a task to unregister and waits for it (at most `within`).
async fn stop(running: Running, within: Duration) {
    let _ = running.stop.send(());
    let mut done = running.done;
    if tokio::time::timeout(within, &mut done).await.is_err() {
        done.abort();
    }
}

async fn write_status(
    store: &dyn TrunkStore,
    name: &str,
    state: &str,
    detail: &str,
    valid_for: u64,
) {
    let now = now_unix();
    let status = TrunkStatus {
        name: name.to_string(),
        state: state.to_string(),
        detail: detail.to_string(),
        valid_until: now.saturating_add(valid_for),
        updated_at: now,
    };
    if let Err(error) = store.set_trunk_status(&status).await {
        tracing::warn!(trunk = %name, %error, "cannot save the trunk's state");
    }
}

/// The engine's view of a trunk.
fn peer_of(trunk: &Trunk, addresses: Vec<IpAddr>) -> TrunkPeer {
    TrunkPeer {
        name: trunk.name.clone(),
        context: trunk.context.clone(),
        allowed_networks: trunk.allowed_networks.clone(),
        registered_user: (trunk.register && !trunk.username.is_empty())
            .then(|| trunk.username.clone()),
        addresses,
        media_encryption: trunk.media_encryption.clone(),
        channels: trunk.channels,
        dtmf: pbx_calls::DtmfMode::parse(&trunk.dtmf).unwrap_or_default(),
        outbound: Outbound {
            host: trunk.host.clone(),
            port: trunk.port,
            targets: Vec::new(),
            proxy: Some(trunk.outbound_proxy.clone()).filter(|p| !p.is_empty()),
            transport: transport_of(trunk),
            username: trunk.username.clone(),
            password: trunk.password.clone(),
            caller_id_mode: trunk.caller_id_mode.clone(),
            caller_id: trunk.caller_id.clone(),
            codecs: trunk.codecs.clone(),
            setup_timeout: DEFAULT_SETUP_TIMEOUT,
        },
    }
}

/// The outbound proxy's host and port, when the trunk has one (`Err`: not parsable).
fn proxy_of(trunk: &Trunk) -> Option<Result<(String, Option<u16>), ()>> {
    if trunk.outbound_proxy.is_empty() {
        return None;
    }
    Some(pbx_store::parse_host_port(&trunk.outbound_proxy).map_err(|_| ()))
}

/// The targets of the trunk's transport, in order (the locator asked only for it).
fn targets_of(located: &Located, kind: TransportKind) -> Vec<SocketAddr> {
    located
        .targets
        .iter()
        .filter(|t| t.transport == kind)
        .map(locate::socket)
        .collect()
}

/// Where requests go, in the order to try them (RFC 3263): the outbound proxy's targets
/// when there is one, else the trunk host's.
async fn destinations(locator: &Locator, trunk: &Trunk) -> Vec<SocketAddr> {
    let allowed = locate::allowed(&trunk.transport);
    let located = match proxy_of(trunk) {
        None => locator.locate(&trunk.host, trunk.port, &allowed).await,
        Some(Ok((proxy, port))) => locator.locate(&proxy, port, &allowed).await,
        Some(Err(())) => return Vec::new(),
    };
    targets_of(&located, allowed[0])
}

/// One trunk's task: the shell around its sans-IO [`TrunkTask`] (registration or OPTIONS
/// pings); run until stopped.
struct Task {
    ctx: Arc<EngineContext>,
    locator: Arc<Locator>,
    store: Arc<dyn TrunkStore>,
    trunk: Trunk,
    ping_every: Duration,
}

impl Task {
    async fn run(self, mut stopped: oneshot::Receiver<()>) {
        let name = self.trunk.name.clone();
        if self.trunk.register {
            write_status(self.store.as_ref(), &name, "unknown", "registering", 120).await;
        }
        // Resolve until it works (or the trunk is stopped).
        let targets = loop {
            let targets = self.targets().await;
            if !targets.is_empty() {
                break targets;
            }
            let detail = "cannot resolve the host or reach it from a listener";
            tracing::warn!(trunk = %name, "{detail}");
            write_status(self.store.as_ref(), &name, "down", detail, 120).await;
            tokio::select! {
                _ = tokio::time::sleep(RESOLVE_RETRY) => {}
                _ = &mut stopped => return,
            }
        };
        let first = targets[0];
        let base = Peer {
            kind: self.kind(),
            remote: first.remote,
            local: first.local,
            conn: None,
        };
        let call_id = format!(
            "{CALL_ID_PREFIX}{name}-{:016x}@{}",
            rand::random::<u64>(),
            self.ctx.domain
        );
        let mut inbox = self.ctx.trunk_inbox.open(&call_id);
        let now = Instant::now();
        let rng = StdRng::from_os_rng();
        let mut task = if self.trunk.register {
            let cfg = RegisterConfig {
                registrar: self.trunk.address(),
                domain: self.trunk.host.clone(),
                username: self.trunk.username.clone(),
                password: self.trunk.password.clone(),
                expires: REGISTER_EXPIRES,
                call_id: call_id.clone(),
                targets: targets.iter().map(|t| t.remote).collect(),
                local: first.local,
                transport: self.kind().via_token(),
                user_agent: self.ctx.user_agent.clone(),
            };
            tracing::info!(trunk = %name, registrar = %cfg.registrar, destination = %first.remote, user = %cfg.username, "registering to the trunk");
            let registration = Registration::new(cfg, StdRng::from_os_rng());
            TrunkTask::register(registration, base, targets, rng, now)
        } else {
            let ping = PingConfig {
                name: name.clone(),
                contact: format!("sip:{}", self.trunk.address()),
                domain: self.ctx.domain.clone(),
                user_agent: self.ctx.user_agent.clone(),
            };
            TrunkTask::ping(
                ping,
                self.ping_every,
                base,
                targets,
                call_id.clone(),
                rng,
                now,
            )
        };
        // Requests that waited for a connection to the trunk that could not be made.
        let (failed_tx, mut failed) = mpsc::unbounded_channel();
        loop {
            while let Some(output) = task.poll_output() {
                self.carry_out(&mut task, output, &failed_tx).await;
            }
            if task.is_done() {
                break;
            }
            tokio::select! {
                _ = sleep_until(task.poll_timeout()) => task.handle_timeout(Instant::now()),
                Some(response) = inbox.recv() => task.handle_response(Instant::now(), response),
                Some(key) = failed.recv() => task.handle_transport_error(Instant::now(), &key),
                _ = &mut stopped, if !task.is_stopping() => task.stop(Instant::now()),
            }
        }
        self.ctx.trunk_inbox.close(&call_id);
    }

    /// Does what the task asked.
    async fn carry_out(
        &self,
        task: &mut TrunkTask,
        output: TaskOutput,
        failed: &mpsc::UnboundedSender<pbx_sip::transaction::TransactionKey>,
    ) {
        match output {
            TaskOutput::Transmit(transmit) => {
                let bytes = transmit.message.to_bytes();
                let on_failure = transmit.key.clone().map(|key| {
                    let failed = failed.clone();
                    Box::new(move || {
                        let _ = failed.send(key);
                    }) as crate::transport::OnFailure
                });
                let sent = self
                    .ctx
                    .sender
                    .send_reporting(&transmit.to, bytes, on_failure);
                if let Err(error) = sent {
                    tracing::debug!(trunk = %self.trunk.name, %error, "send to a trunk failed");
                    if let Some(key) = transmit.key {
                        task.handle_transport_error(Instant::now(), &key);
                    }
                }
            }
            TaskOutput::Registration(event) => self.report(event).await,
            TaskOutput::Ping { before, state, why } => self.report_ping(before, state, &why).await,
            TaskOutput::Relocate => {
                let fresh = self.targets().await;
                task.set_targets(Instant::now(), fresh);
            }
        }
    }

    /// The trunk's addresses that a listener can reach, in RFC 3263 order, each with this
    /// host's address toward it.
    async fn targets(&self) -> Vec<Target> {
        destinations(&self.locator, &self.trunk)
            .await
            .into_iter()
            .filter_map(|remote| {
                self.local_toward(remote)
                    .map(|local| Target { remote, local })
            })
            .collect()
    }

    async fn report_ping(&self, before: Reachability, state: Reachability, why: &str) {
        let name = &self.trunk.name;
        // A trunk found down is skipped by calls at once (the next trunk is tried).
        self.ctx.trunks.set_up(name, state == Reachability::Up);
        let up = if state == Reachability::Up { 1.0 } else { 0.0 };
        metrics::gauge!("pbx_trunk_up", "trunk" => name.clone()).set(up);
        if before != state {
            if state == Reachability::Up {
                tracing::info!(trunk = %name, "trunk up");
            } else {
                tracing::warn!(trunk = %name, %why, "trunk down");
            }
        }
        // Holds until the next ping has had its time (Timer F at most).
        let valid = self.ping_every.as_secs().saturating_add(64);
        write_status(self.store.as_ref(), name, state.name(), why, valid).await;
    }

    async fn report(&self, event: Event) {
        let name = &self.trunk.name;
        let store = self.store.as_ref();
        match event {
            Event::Registered { expires, .. } => {
                metrics::gauge!("pbx_trunk_registered", "trunk" => name.clone()).set(1.0);
                metrics::counter!("pbx_trunk_registrations_total", "trunk" => name.clone())
                    .increment(1);
                tracing::info!(trunk = %name, expires = expires.as_secs(), "trunk registered");
                self.ctx.trunks.set_up(name, true);
                // Over TCP/TLS the provider reaches the PBX through this connection
                // (RFC 5626 §5): it stays open, with keep-alives.
                let kind = self.kind();
                if kind != TransportKind::Udp {
                    for remote in destinations(&self.locator, &self.trunk).await {
                        self.ctx.sender.keep(kind, remote);
                    }
                }
                let detail = format!("binding for {}s", expires.as_secs());
                write_status(store, name, "registered", &detail, expires.as_secs()).await;
            }
            Event::Failed { failure, retry_in } => {
                // Unreachable (no answer, 5xx): calls skip it until it registers again.
                let unreachable = matches!(
                    failure,
                    pbx_engine::trunk::register::Failure::NoAnswer
                        | pbx_engine::trunk::register::Failure::Unavailable(_)
                );
                if unreachable {
                    self.ctx.trunks.set_up(name, false);
                }
                metrics::gauge!("pbx_trunk_registered", "trunk" => name.clone()).set(0.0);
                metrics::counter!("pbx_trunk_register_failures_total", "trunk" => name.clone())
                    .increment(1);
                tracing::warn!(trunk = %name, %failure, retry_in = retry_in.as_secs(), "trunk registration failed");
                let detail = format!(
                    "registration failed: {failure}, retry in {}s",
                    retry_in.as_secs()
                );
                // Down until the retry has had its answer (Timer F at most).
                let valid = retry_in.as_secs().saturating_add(64);
                write_status(store, name, "down", &detail, valid).await;
            }
            Event::FailedOver { from, to, failure } => {
                tracing::warn!(trunk = %name, %from, %to, %failure, "trunk registrar failed, trying the next address");
            }
            Event::Unregistered => {
                metrics::gauge!("pbx_trunk_registered", "trunk" => name.clone()).set(0.0);
                tracing::info!(trunk = %name, "trunk unregistered");
                write_status(store, name, "unknown", "unregistered", 0).await;
            }
        }
    }

    /// This host's address toward `remote` on the trunk's transport.
    fn local_toward(&self, remote: SocketAddr) -> Option<SocketAddr> {
        local_toward(&self.ctx, self.kind(), remote)
    }

    fn kind(&self) -> TransportKind {
        transport_of(&self.trunk)
    }
}

fn transport_of(trunk: &Trunk) -> TransportKind {
    match trunk.transport.as_str() {
        "tcp" => TransportKind::Tcp,
        "tls" => TransportKind::Tls,
        _ => TransportKind::Udp,
    }
}

/// How the certificate of a TLS trunk's addresses is checked: for the host the PBX meant
/// to reach, the outbound proxy's when there is one (RFC 5922 §4).
fn tls_target(trunk: &Trunk) -> TlsTarget {
    let name = pbx_store::parse_host_port(&trunk.outbound_proxy)
        .ok()
        .map(|(host, _)| host)
        .filter(|host| !trunk.outbound_proxy.is_empty() && !host.is_empty())
        .unwrap_or_else(|| trunk.host.clone());
    TlsTarget {
        name,
        ca_file: Some(&trunk.tls_ca_file)
            .filter(|f| !f.is_empty())
            .map(std::path::PathBuf::from),
        verify: trunk.tls_verify,
    }
}

/// The listener to name in Via and Contact toward `remote`, and this host's address on it:
/// the UDP listener for UDP; for TCP and TLS the listener of that transport (messages go
/// out on a connection the PBX opens, but the far end may open its own to it), the UDP
/// listener's when there is none.
fn local_toward(
    ctx: &EngineContext,
    kind: TransportKind,
    remote: SocketAddr,
) -> Option<SocketAddr> {
    let stream = match kind {
        TransportKind::Udp => None,
        _ => ctx.sender.stream_local(kind, remote),
    };
    let listener = stream.or_else(|| {
        ctx.sender
            .udp_locals()
            .into_iter()
            .find(|l| l.is_ipv4() == remote.is_ipv4())
    })?;
    if !listener.ip().is_unspecified() {
        return Some(listener);
    }
    let ip = super::driver::local_ip_towards(remote.ip())?;
    Some(SocketAddr::new(ip, listener.port()))
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(at) => tokio::time::sleep_until(at.into()).await,
        None => std::future::pending().await,
    }
}

/// The engine's table, empty until the first load.
pub fn table() -> Arc<TrunkTable> {
    Arc::new(TrunkTable::default())
}
