//! `pbx serve`: opens the store, binds every listener, starts the engine and the web
//! listener, and runs until SIGTERM or SIGINT, then stops cleanly (bindings written, the
//! database closed).

use crate::config::{Config, Transport};
use crate::engine::credentials::CredentialLoader;
use crate::engine::location::{Location, WriteBehind};
use crate::engine::{self, EngineContext};
use crate::security::Guard;
use crate::security::acl::Acl;
use crate::security::guard::Ban as GuardBan;
use crate::security::rate::SourceRateLimit;
use crate::transport::{self, Connections, Sender, Shared, TransportKind};
use crate::web::{self, WebState};
use metrics_exporter_prometheus::PrometheusBuilder;
use pbx_sip::auth::DigestAuthenticator;
use pbx_sip::registrar::RegistrarPolicy;
use pbx_store::{BanStore, LocationStore, Store};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};
use tokio::net::TcpListener;
use tokio::task::JoinSet;

#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("database: {0}")]
    Store(#[from] pbx_store::StoreError),
    #[error("TLS: {0}")]
    Tls(#[from] transport::tls::TlsError),
    #[error("cannot listen on {what}: {source}")]
    Bind {
        what: String,
        source: std::io::Error,
    },
    #[error("metrics: {0}")]
    Metrics(String),
    #[error("the dialplan is not valid:\n{}", .0.join("\n"))]
    Dialplan(Vec<String>),
    #[error("cannot wait for signals: {0}")]
    Signal(std::io::Error),
    #[error("media relay: {0}")]
    Media(#[from] crate::media::MediaError),
    #[error("SIP trace: {0}")]
    Trace(#[from] crate::trace::ExportError),
    #[error("e-mail: {0}")]
    Mail(#[from] crate::mail::MailError),
}

/// `[voicemail]` as the engines read it.
fn voicemail_settings(
    config: &crate::config::VoicemailConfig,
    time_zone: jiff::tz::TimeZone,
) -> pbx_engine::VoicemailSettings {
    let silence = Some(config.silence).filter(|s| !s.is_zero());
    let defaults = pbx_engine::VoicemailSettings::default();
    pbx_engine::VoicemailSettings {
        storage: config.storage.to_string_lossy().into_owned(),
        operator: config.operator.clone(),
        message: pbx_voicemail::RecordLimits {
            min: config.min_message,
            max: config.max_message,
            silence,
        },
        greeting: pbx_voicemail::RecordLimits {
            min: defaults.greeting.min,
            max: config.max_greeting,
            silence: silence.map(|s| s.min(defaults.greeting.silence.unwrap_or(s))),
        },
        max_attempts: config.max_logins,
        time_zone,
        ..defaults
    }
}

/// How often bans are re-read from the store (so `pbx ban remove` takes effect).
const BAN_SYNC: Duration = Duration::from_secs(2);
const HOUSEKEEPING: Duration = Duration::from_secs(10);

pub async fn run(config: Config) -> Result<(), ServeError> {
    let metrics = PrometheusBuilder::new()
        .install_recorder()
        .map_err(|e| ServeError::Metrics(e.to_string()))?;
    describe_metrics();

    let store = Arc::new(Store::open(&config.database.url).await?);
    let now_unix = transport::now_unix();
    let security = &config.security;
    let acl = Acl::new(security.allow.clone(), security.deny.clone());
    let rate = SourceRateLimit::new(security.rate_limit, security.rate_burst);
    let guard = Arc::new(Guard::new(
        acl,
        security.max_auth_failures,
        security.failure_window,
        security.ban_for,
        rate,
    ));
    guard.sync_bans(
        &stored_bans(store.as_ref(), now_unix).await?,
        Instant::now(),
    );

    let location = Arc::new(Location::new());
    let (location_writes, location_writer) = WriteBehind::start(store.clone());
    let saved = store.list_bindings().await?;
    // Bindings over a WebSocket died with their connections: off the store too.
    for write in location.forget_websocket_rows(&saved) {
        location_writes.write(write);
    }
    let restored = location.restore(saved, now_unix);
    tracing::info!(bindings = restored, "registrations restored");

    // The SIP trace: filters from the config and `pbx trace`, re-read every 2 s.
    let tracer = Arc::new(crate::trace::Tracer::start(&config.trace)?);
    crate::trace::sync::once(store.as_ref(), &tracer, &config.trace.targets).await?;
    tokio::spawn(crate::trace::sync::run(
        store.clone(),
        tracer.clone(),
        config.trace.targets.clone(),
    ));

    let connections = Arc::new(Connections::default());
    let mut udp_out = Vec::new();
    let mut udp_sockets = Vec::new();
    let mut stream_listeners = Vec::new();
    let mut ws_listeners = Vec::new();
    for listen in &config.sip.listen {
        let what = listen.to_string();
        match listen.transport {
            Transport::Udp => {
                let socket =
                    transport::udp::bind(listen.addr).map_err(|source| ServeError::Bind {
                        what: what.clone(),
                        source,
                    })?;
                let socket = Arc::new(socket);
                udp_out.push(
                    transport::udp::UdpOut::new(socket.clone())
                        .map_err(|source| ServeError::Bind { what, source })?,
                );
                udp_sockets.push(socket);
            }
            Transport::Tcp | Transport::Tls => {
                let listener = TcpListener::bind(listen.addr)
                    .await
                    .map_err(|source| ServeError::Bind { what, source })?;
                let tls = if listen.transport == Transport::Tls {
                    transport::tls::ensure_certificate(
                        &config.tls.cert,
                        &config.tls.key,
                        &config.sip.domain,
                    )?;
                    Some(transport::tls::acceptor(&config.tls.cert, &config.tls.key)?)
                } else {
                    None
                };
                let kind = if tls.is_some() {
                    TransportKind::Tls
                } else {
                    TransportKind::Tcp
                };
                stream_listeners.push((listener, kind, tls));
            }
            Transport::Ws | Transport::Wss => {
                let listener = TcpListener::bind(listen.addr)
                    .await
                    .map_err(|source| ServeError::Bind { what, source })?;
                // wss: with the `[tls]` certificate, as tls: does.
                let (kind, tls) = if listen.transport == Transport::Wss {
                    transport::tls::ensure_certificate(
                        &config.tls.cert,
                        &config.tls.key,
                        &config.sip.domain,
                    )?;
                    let acceptor = transport::tls::acceptor(&config.tls.cert, &config.tls.key)?;
                    (TransportKind::Wss, Some(acceptor))
                } else {
                    (TransportKind::Ws, None)
                };
                ws_listeners.push((listener, kind, tls));
            }
        }
    }

    // A dialplan that does not validate is never loaded: not at start, not on reload.
    // Trunks' and extensions' contexts are reachable without `may_call` (the store assigns
    // them); a store that cannot say leaves the file's own rules.
    let plan = crate::plan::load_with_store(&config, &store)
        .await
        .map_err(ServeError::Dialplan)?;
    let plan = Arc::new(crate::plan::PlanHandle::new(plan));
    tokio::spawn(reload_dialplan(config.clone(), plan.clone(), store.clone()));
    let web_plan = plan.clone();

    let credentials = Arc::new(CredentialLoader::new(store.clone()));
    let known = credentials.refresh().await?;
    tracing::info!(extensions = known, "extensions loaded");
    tokio::spawn(credentials.clone().run_refresh());

    let digest = DigestAuthenticator::new(
        config.sip.domain.clone(),
        rand::random::<[u8; 32]>(),
        config.security.nonce_lifetime,
        config.security.digest_algorithms.clone(),
    );
    let policy = RegistrarPolicy {
        min_expires: secs(config.sip.min_expires),
        max_expires: secs(config.sip.max_expires),
        default_expires: secs(config.sip.default_expires),
        max_bindings_per_aor: 10,
    };
    // E-mail, when `[smtp]` is configured: spooled, delivered by one task.
    let mailer = match &config.smtp {
        Some(smtp) => {
            let mailer = crate::mail::Mailer::new(&smtp.url, &smtp.from, smtp.queue.clone())?;
            tokio::spawn(mailer.clone().run());
            Some(mailer)
        }
        None => None,
    };
    let ban_alerts = match (&mailer, &config.security.alert_email) {
        (Some(mailer), Some(to)) => Some(crate::mail::BanAlerts::new(
            mailer.clone(),
            to.clone(),
            config.sip.domain.clone(),
        )),
        (None, Some(_)) => {
            tracing::warn!("[security] alert_email is set but there is no [smtp]: no ban alerts");
            None
        }
        _ => None,
    };
    // The listeners' time zone: the host's (envelopes and e-mails say local times).
    let time_zone = jiff::tz::TimeZone::system();
    let voicemail = crate::voicemail::VoicemailService::new(
        store.clone(),
        mailer.clone(),
        config.voicemail.storage.clone(),
        time_zone.clone(),
    )
    .map_err(|source| ServeError::Bind {
        what: "the voicemail recorder".into(),
        source,
    })?;
    let recovered = voicemail.recover().await;
    if recovered > 0 {
        tracing::info!(
            recordings = recovered,
            "voicemail recordings cut short were filed"
        );
    }
    let voicemail_settings = voicemail_settings(&config.voicemail, time_zone);
    let spool = engine::cdr_spool::CdrSpool::new(config.database.cdr_spool.clone());
    let (cdrs, cdr_writer) = engine::cdr_writer::CdrWriter::start(store.clone(), spool);
    let cdrs = Arc::new(cdrs);
    let live_calls = Arc::new(engine::live_calls::LiveCalls::default());
    let security_log = Arc::new(crate::security::events::SecurityLog::default());
    let context = Arc::new(EngineContext {
        domain: config.sip.domain.clone(),
        user_agent: config.sip.user_agent.clone(),
        sender: Sender::new(udp_out, connections.clone())
            .with_trace(tracer.clone())
            .with_outbound(
                stream_listeners
                    .iter()
                    .filter_map(|(l, kind, _)| Some((*kind, l.local_addr().ok()?)))
                    .collect(),
                transport::tls_client::TlsClients::new(config.sip.tls_ca_file.clone()),
            ),
        guard: guard.clone(),
        store: store.clone(),
        credentials: credentials.clone(),
        location: location.clone(),
        binding_writes: location_writes.clone(),
        digest: Arc::new(std::sync::Mutex::new(digest)),
        policy,
        md5_only_user_agents: config.security.md5_only_user_agents.clone(),
        // RTP sockets bind to `[rtp] bind` (by default where SIP listens, if that is one
        // address); the SDP names the address to use.
        media: media_service(&config.rtp)?,
        public_ip: config.rtp.public_ip,
        sdes_over_insecure: config.rtp.sdes_over_insecure,
        ring_timeout: config.calls.ring_timeout,
        cdrs: cdrs.clone(),
        plan,
        prompts: Arc::new(crate::media::prompts::Prompts::new(
            config.voicemail.sounds.clone(),
        )),
        ban_alerts: ban_alerts.clone(),
        live_calls: live_calls.clone(),
        voicemail: voicemail.clone(),
        voicemail_settings,
        lookups: Arc::new(engine::db_lookup::Lookups::new(&config.lookup)),
        mailboxes: store.clone(),
        security_log: security_log.clone(),
        trunks: engine::trunks::table(),
        trunk_inbox: Default::default(),
    });
    let trunks = engine::trunks::Trunks::new(
        context.clone(),
        store.clone(),
        config.sip.qualify_interval,
        config.calls.trunk_setup_timeout,
        locator(&config.dns),
    );
    // The first load before SIP is served: a trunk's INVITEs are recognised from the start.
    trunks.reload().await;
    tokio::spawn(trunks.clone().run());
    // One shard per runtime thread: each owns its transactions outright.
    let shards = tokio::runtime::Handle::current().metrics().num_workers();
    // Connections the PBX opens (to trunks) are served like accepted ones, below.
    let sender_context = context.clone();
    let dispatcher = engine::start(context, shards);
    // Message-waiting lamps: `mwi.mailbox_changed(number)` after a mailbox changes in this
    // process (hand a clone to the voicemail code and the web admin); the watch task finds
    // changes made anywhere else through the store's change counters.
    let mwi = engine::mwi::MwiNotifier::new(store.clone(), dispatcher.clone());
    tokio::spawn(mwi.clone().watch(store.clone()));
    // Voicemail's own changes (a message filed, heard, deleted) light the lamps at once.
    let mut changes = voicemail.changes();
    let notifier = mwi.clone();
    tokio::spawn(async move {
        loop {
            match changes.recv().await {
                Ok(mailbox) => {
                    if let Err(error) = notifier.mailbox_changed(&mailbox).await {
                        tracing::warn!(%error, %mailbox, "message lamps not updated");
                    }
                }
                // Too many at once: the store watch catches up within seconds.
                Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                Err(tokio::sync::broadcast::error::RecvError::Closed) => break,
            }
        }
    });
    if !config.sip.qualify_interval.is_zero() {
        let schedule = pbx_engine::qualify::Schedule::new(
            config.sip.qualify_interval,
            config.sip.domain.clone(),
            Instant::now(),
        );
        let qualify = engine::qualify::run(dispatcher.clone(), location.clone(), schedule);
        tokio::spawn(qualify);
    }
    let shared = Arc::new(Shared {
        guard: guard.clone(),
        sink: dispatcher.clone(),
        connections,
        max_message_size: config.sip.max_message_size,
        trace: tracer,
        security_log: security_log.clone(),
        limits: transport::limits::StreamLimits {
            message_timeout: config.security.message_timeout,
            unauthenticated_idle: config.security.unauthenticated_idle,
            authenticated_idle: transport::limits::authenticated_idle(config.sip.max_expires),
            max_connections_per_source: config.security.max_connections_per_source,
        },
    });

    sender_context.sender.attach(shared.clone());

    let mut tasks = JoinSet::new();
    for socket in udp_sockets {
        tasks.spawn(transport::udp::run(socket, shared.clone()));
    }
    for (listener, kind, tls) in stream_listeners {
        tasks.spawn(transport::stream::accept_loop(
            listener,
            kind,
            tls,
            shared.clone(),
        ));
    }
    for (listener, kind, tls) in ws_listeners {
        tasks.spawn(transport::ws::accept_loop(
            listener,
            kind,
            tls,
            shared.clone(),
        ));
    }
    for listen in &config.sip.listen {
        tracing::info!(%listen, "SIP listening");
    }

    let web_state = Arc::new(WebState {
        store: Store::clone(&store),
        metrics: metrics.clone(),
        sip_up: Default::default(),
    });
    let web_listener = TcpListener::bind(config.web.listen)
        .await
        .map_err(|source| ServeError::Bind {
            what: format!("web {}", config.web.listen),
            source,
        })?;
    tracing::info!(listen = %config.web.listen, https = config.web.tls, "web listening");
    let web_location = location.clone();
    let admin = web::admin::state(
        &config,
        store.clone(),
        guard.clone(),
        web_plan,
        Box::new(move |now| {
            let all = web_location.snapshot(now);
            all.into_iter().map(|(_, binding)| binding).collect()
        }),
        web::admin::Engine {
            calls: live_calls,
            dispatcher: dispatcher.clone(),
            security_log,
            mailer: mailer.clone(),
            mwi: mwi.clone(),
            trunks: trunks.clone(),
            ban_alerts,
        },
    );
    // SIP over WebSocket at /ws: wss when the web listener speaks HTTPS.
    let web_ws_kind = if config.web.tls {
        TransportKind::Wss
    } else {
        TransportKind::Ws
    };
    let router = web::with_admin(web_state.clone(), admin)
        .merge(transport::ws::route(
            shared.clone(),
            web_ws_kind,
            config.web.listen,
        ))
        .into_make_service_with_connect_info::<std::net::SocketAddr>();
    if config.web.tls {
        transport::tls::ensure_certificate(&config.tls.cert, &config.tls.key, &config.sip.domain)?;
        let acceptor = transport::tls::acceptor(&config.tls.cert, &config.tls.key)?;
        let listener = web::tls::TlsListener::new(web_listener, acceptor).map_err(|source| {
            ServeError::Bind {
                what: format!("web {}", config.web.listen),
                source,
            }
        })?;
        // `tap_io` gives the listener axum's connect info (the peer's address).
        let listener = axum::serve::ListenerExt::tap_io(listener, |_| {});
        tokio::spawn(async move {
            if let Err(error) = axum::serve(listener, router).await {
                tracing::error!(%error, "web listener failed");
            }
        });
    } else {
        if !config.web.listen.ip().is_loopback() {
            tracing::warn!(listen = %config.web.listen, "the web admin is served over plain HTTP beyond this host; set [web] tls = true");
        }
        tokio::spawn(async move {
            if let Err(error) = axum::serve(web_listener, router).await {
                tracing::error!(%error, "web listener failed");
            }
        });
    }
    web_state.sip_up.store(true, Ordering::Relaxed);

    tokio::spawn(housekeeping(
        store.clone(),
        guard,
        location.clone(),
        location_writes.clone(),
        credentials,
        metrics,
    ));

    let outcome = tokio::select! {
        signal = shutdown_signal() => signal,
        Some(ended) = tasks.join_next() => {
            // A listener only returns on a fatal socket error.
            tracing::error!(?ended, "a SIP listener stopped");
            Ok(())
        }
    };
    tracing::info!("shutting down");
    // Calls in progress end properly: BYE to both sides, CANCEL to ringing devices, 503 to
    // callers still waiting, and their CDRs are written before the database closes.
    // Trunk bindings are removed (Expires: 0) meanwhile.
    tokio::join!(
        dispatcher.hang_up_all(Duration::from_secs(2)),
        trunks.shutdown(Duration::from_secs(2))
    );
    // With the database down these give up quickly: call records wait in the spool (written
    // at the next start), phones re-register; a stop never hangs on a dead database.
    if tokio::time::timeout(Duration::from_secs(5), cdrs.flush())
        .await
        .is_err()
    {
        tracing::warn!("gave up waiting for call records to be saved");
    }
    cdr_writer.abort();
    tasks.abort_all();
    web_state.sip_up.store(false, Ordering::Relaxed);
    // Bindings changed just before the signal are written before the database closes.
    if tokio::time::timeout(Duration::from_secs(2), location_writes.flush())
        .await
        .is_err()
    {
        tracing::warn!("gave up waiting for registrations to be saved");
    }
    location_writer.abort();
    if tokio::time::timeout(Duration::from_secs(1), store.close())
        .await
        .is_err()
    {
        tracing::warn!("gave up closing the database connections");
    }
    outcome
}

/// The resolver that locates trunks: `[dns] nameservers`, else the system's.
fn locator(dns: &crate::config::DnsConfig) -> Arc<engine::locate::Locator> {
    Arc::new(engine::locate::Locator::new(&dns.nameservers))
}

fn secs(duration: Duration) -> u32 {
    u32::try_from(duration.as_secs()).unwrap_or(u32::MAX)
}

async fn stored_bans(store: &dyn BanStore, now_unix: u64) -> Result<Vec<GuardBan>, ServeError> {
    let bans = store.active_bans(now_unix).await?;
    Ok(bans
        .into_iter()
        .map(|b| GuardBan {
            address: b.address,
            reason: b.reason,
            until: b.until,
        })
        .collect())
}

/// Periodic work: ban sync, expiry of bindings, gauges.
async fn housekeeping(
    store: Arc<Store>,
    guard: Arc<Guard>,
    location: Arc<Location>,
    location_writes: WriteBehind,
    credentials: Arc<CredentialLoader>,
    metrics: metrics_exporter_prometheus::PrometheusHandle,
) {
    let mut ticker = tokio::time::interval(BAN_SYNC);
    let mut last_housekeeping = Instant::now();
    loop {
        ticker.tick().await;
        let now = Instant::now();
        let now_unix = transport::now_unix();
        match stored_bans(store.as_ref(), now_unix).await {
            Ok(bans) => guard.sync_bans(&bans, now),
            Err(error) => tracing::warn!(%error, "could not read bans"),
        }
        location.prune(now_unix);
        let (removed, writes) = location.retain_extensions(|aor| credentials.knows(aor));
        for write in writes {
            location_writes.write(write);
        }
        if removed > 0 {
            tracing::info!(
                bindings = removed,
                "dropped the bindings of removed extensions"
            );
        }
        metrics::gauge!("pbx_registrations_active").set(location.count() as f64);
        metrics::gauge!("pbx_bans_active").set(guard.active_bans(now_unix) as f64);
        if now.duration_since(last_housekeeping) >= HOUSEKEEPING {
            last_housekeeping = now;
            guard.housekeeping(now, now_unix);
            metrics.run_upkeep();
            if let Err(error) = store.prune_bindings(now_unix).await {
                tracing::warn!(%error, "could not prune expired bindings");
            }
        }
    }
}

/// How often the dialplan file is checked for a change.
const DIALPLAN_WATCH: Duration = Duration::from_secs(2);

/// Reloads the dialplan on SIGHUP or when its file changes: validated first, swapped whole;
/// calls in progress keep the plan they started with. A plan that fails keeps the old one
/// and every problem is logged with its position.
async fn reload_dialplan(config: Config, plan: Arc<crate::plan::PlanHandle>, store: Arc<Store>) {
    use tokio::signal::unix::{SignalKind, signal};
    let Some(file) = config.dialplan.file.clone() else {
        return;
    };
    let modified = |path: &std::path::Path| std::fs::metadata(path).and_then(|m| m.modified()).ok();
    let mut seen = modified(&file);
    let mut hangup = match signal(SignalKind::hangup()) {
        Ok(hangup) => Some(hangup),
        Err(error) => {
            tracing::warn!(%error, "SIGHUP does not reload the dialplan");
            None
        }
    };
    let mut tick = tokio::time::interval(DIALPLAN_WATCH);
    loop {
        let why = tokio::select! {
            Some(()) = async { match hangup.as_mut() { Some(h) => h.recv().await, None => std::future::pending().await } } => "SIGHUP",
            _ = tick.tick() => {
                let now = modified(&file);
                if now == seen {
                    continue;
                }
                seen = now;
                "the file changed"
            }
        };
        match crate::plan::load_with_store(&config, &store)
            .await
            .map(|new| plan.replace(new))
        {
            Ok(()) => tracing::info!(file = %file.display(), why, "dialplan reloaded"),
            Err(problems) => {
                for problem in &problems {
                    tracing::error!("{problem}");
                }
                tracing::error!(file = %file.display(), why, errors = problems.len(), "dialplan not reloaded: the running plan stays");
            }
        }
    }
}

async fn shutdown_signal() -> Result<(), ServeError> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).map_err(ServeError::Signal)?;
    let mut int = signal(SignalKind::interrupt()).map_err(ServeError::Signal)?;
    tokio::select! {
        _ = term.recv() => tracing::info!("SIGTERM"),
        _ = int.recv() => tracing::info!("SIGINT"),
    }
    Ok(())
}

fn describe_metrics() {
    metrics::describe_counter!("pbx_sip_requests_total", "SIP requests received, by method");
    metrics::describe_counter!("pbx_sip_responses_total", "SIP responses sent, by class");
    metrics::describe_counter!("pbx_registrations_total", "successful REGISTER requests");
    metrics::describe_gauge!("pbx_registrations_active", "live registration bindings");
    metrics::describe_counter!("pbx_auth_failures_total", "failed digest authentications");
    metrics::describe_counter!("pbx_bans_total", "source addresses banned");
    metrics::describe_gauge!("pbx_bans_active", "source addresses banned now");
    metrics::describe_counter!("pbx_sip_dropped_total", "input dropped, by reason");
    metrics::describe_gauge!(
        "pbx_mwi_subscriptions",
        "message-waiting (RFC 3842) subscriptions active"
    );
    metrics::describe_counter!(
        "pbx_mwi_notifies_total",
        "message-waiting NOTIFYs sent, by kind (subscription, unsolicited)"
    );
    metrics::gauge!("pbx_mwi_subscriptions").set(0.0);
    for kind in ["subscription", "unsolicited"] {
        metrics::counter!("pbx_mwi_notifies_total", "kind" => kind).increment(0);
    }
    // Counters appear in /metrics from the start, at zero.
    for method in ["REGISTER", "OPTIONS", "INVITE"] {
        metrics::counter!("pbx_sip_requests_total", "method" => method).increment(0);
    }
    for class in ["1xx", "2xx", "3xx", "4xx", "5xx", "6xx"] {
        metrics::counter!("pbx_sip_responses_total", "class" => class).increment(0);
    }
    metrics::counter!("pbx_registrations_total").increment(0);
    metrics::counter!("pbx_auth_failures_total").increment(0);
    metrics::counter!("pbx_bans_total").increment(0);
    metrics::describe_counter!(
        "pbx_engine_panics_total",
        "engine shards that failed and were restarted, their calls ended"
    );
    metrics::counter!("pbx_engine_panics_total").increment(0);
    for reason in [
        "banned",
        "acl",
        "rate_limit",
        "oversized",
        "unparsable",
        "framing",
        "overload",
        "garbage",
        "message_timeout",
        "connection_limit",
        "tls_handshake",
        "ws_frame",
        "ws_subprotocol",
        "ws_protocol",
    ] {
        metrics::counter!("pbx_sip_dropped_total", "reason" => reason).increment(0);
    }
    metrics::describe_gauge!(
        "pbx_sip_connections",
        "open SIP stream connections, by transport (tcp, tls, ws, wss)"
    );
    for transport in ["tcp", "tls", "ws", "wss"] {
        metrics::gauge!("pbx_sip_connections", "transport" => transport).increment(0.0);
    }
    metrics::describe_gauge!(
        "pbx_calls_active",
        "calls in progress (ringing or answered)"
    );
    metrics::describe_counter!("pbx_calls_total", "finished calls, by disposition");
    metrics::gauge!("pbx_calls_active").set(0.0);
    for disposition in ["answered", "busy", "no_answer", "failed", "cancelled"] {
        metrics::counter!("pbx_calls_total", "disposition" => disposition).increment(0);
    }
}

/// The relay workers, at real-time priority unless `[rtp] realtime = false`.
fn media_service(
    rtp: &crate::config::RtpConfig,
) -> Result<Arc<crate::media::MediaService>, crate::media::MediaError> {
    let media =
        crate::media::MediaService::new(rtp.port_min, rtp.port_max, rtp.bind, rtp.rtp_timeout)?;
    media.set_latching(rtp.latching());
    if rtp.realtime {
        media.use_realtime_priority();
    }
    Ok(media)
}
