//! The tokio shell around one shard's [`Engine`]: it feeds the engine its inputs with the
//! time, carries out its outputs (sends, store calls, HTTP look-ups, the media relay), and
//! sleeps until the engine's next timer. It also supervises: an engine that panics is
//! logged, counted, made to end its calls, and replaced by a fresh one.

use super::{Core, EngineContext, ShardInput};
use crate::media::{MediaEvent, MediaSession};
use pbx_engine::{AppMedia, Engine, Input, MediaPorts, Now, Output, Security, VoicemailRequest};
use pbx_media::Side;
use pbx_media::endpoint::dtmf::{DtmfSpec, InbandDetector};
use pbx_media::endpoint::echo::EchoSpec;
use pbx_media::endpoint::inband::InbandDtmf;
use pbx_media::endpoint::player::{PcmSource, PlayerSpec};
use pbx_media::endpoint::recorder::{RecorderSpec, RecordingEnd};
use pbx_media::session::Command;
use rand::SeedableRng;
use rand::rngs::StdRng;
use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};
use tokio::sync::{mpsc, oneshot};

pub(crate) struct Driver {
    ctx: Arc<EngineContext>,
    /// This shard's own queue, for answers that come back later (store, HTTP, media events).
    own: mpsc::Sender<ShardInput>,
    index: usize,
    engine: Engine,
    /// The relay of each call that has one.
    media: HashMap<u64, MediaSession>,
    /// Answers the driver has at once (local address, relay ports, a failed send): fed to
    /// the engine before the next queued input.
    immediate: VecDeque<Input>,
    /// Who waits for the calls to end at shutdown.
    shutdown: Vec<oneshot::Sender<()>>,
    /// The voicemail machines' store requests, done one after the other (a machine's writes
    /// and reads keep their order).
    voicemail: mpsc::UnboundedSender<(u64, u64, VoicemailRequest)>,
}

/// The clocks, read here and only here.
pub(crate) fn now() -> Now {
    let unix_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
    Now {
        at: Instant::now(),
        unix_ms,
    }
}

impl Driver {
    pub fn new(
        ctx: Arc<EngineContext>,
        core: Arc<Core>,
        own: mpsc::Sender<ShardInput>,
        index: usize,
    ) -> Driver {
        let engine = Engine::new(core.clone(), index, StdRng::from_os_rng());
        let (voicemail, requests) = mpsc::unbounded_channel();
        tokio::spawn(voicemail_requests(ctx.clone(), own.clone(), requests));
        Driver {
            ctx,
            own,
            index,
            engine,
            media: HashMap::new(),
            immediate: VecDeque::new(),
            shutdown: Vec::new(),
            voicemail,
        }
    }

    pub async fn run(mut self, mut inputs: mpsc::Receiver<ShardInput>) {
        loop {
            let deadline = self.engine.poll_timeout();
            tokio::select! {
                // One input, then its answers go out: handling a batch before sending sent the
                // answers in bursts that overflowed a busy client's receive buffer (measured
                // with SIPp at 10,000 REGISTER/s: 507 retransmissions with batches of 64, 2
                // without, and less CPU; docs/performance.md).
                input = inputs.recv() => match input {
                    None => break,
                    Some(ShardInput::Input(input)) => self.step(input),
                    Some(ShardInput::Shutdown(done)) => {
                        self.shutdown.push(done);
                        self.step(Input::Shutdown);
                    }
                },
                () = sleep_until(deadline) => self.step(Input::Timeout),
            }
        }
    }

    /// Feeds one input, then carries out everything it led to.
    pub(crate) fn step(&mut self, input: Input) {
        self.immediate.push_back(input);
        while let Some(input) = self.immediate.pop_front() {
            let kind = input.kind();
            let now = now();
            let engine = &mut self.engine;
            if catch_unwind(AssertUnwindSafe(|| engine.handle(now, input))).is_err() {
                self.restart(kind);
                continue;
            }
            while let Some(output) = self.engine.poll_output() {
                self.execute(output);
            }
        }
    }

    /// Replaces an engine that panicked: its calls end (BYE, CANCEL, 503, CDRs), then a fresh
    /// engine takes over the shard.
    fn restart(&mut self, kind: &'static str) {
        tracing::error!(
            shard = self.index,
            input = kind,
            "the SIP engine failed on an input: ending its calls and restarting it"
        );
        metrics::counter!("pbx_engine_panics_total").increment(1);
        let fresh = self.engine.successor(StdRng::from_os_rng());
        let mut broken = std::mem::replace(&mut self.engine, fresh);
        let now = now();
        let ended = catch_unwind(AssertUnwindSafe(|| {
            broken.abandon_all(now);
            std::iter::from_fn(|| broken.poll_output()).collect::<Vec<_>>()
        }));
        match ended {
            Ok(outputs) => {
                for output in outputs {
                    // Requests of the broken engine are not answered to the new one; what it
                    // changed in the shared location table is saved all the same.
                    if matches!(
                        output,
                        Output::Transmit { .. } | Output::WriteCdr(_) | Output::Location(_)
                    ) {
                        self.execute(output);
                    }
                }
            }
            Err(_) => tracing::error!(
                shard = self.index,
                "could not end the calls of a failed engine"
            ),
        }
        // Its relays stop; answers still on their way find no call and are dropped.
        self.media.clear();
        self.ctx.live_calls.clear_shard(self.index);
        self.immediate.clear();
        for done in self.shutdown.drain(..) {
            let _ = done.send(());
        }
    }

    fn execute(&mut self, output: Output) {
        match output {
            Output::Transmit { peer, bytes, key } => {
                // A request waiting for a connection to a trunk: a failed connect comes back
                // as a transport error too (RFC 3261 §17.1.4).
                let on_failure = key.clone().map(|key| {
                    let own = self.own.clone();
                    Box::new(move || {
                        tokio::spawn(async move {
                            let _ = own.send(ShardInput::Input(Input::SendFailed(key))).await;
                        });
                    }) as crate::transport::OnFailure
                });
                if let Err(error) = self.ctx.sender.send_reporting(&peer, bytes, on_failure) {
                    metrics::counter!("pbx_sip_send_failures_total").increment(1);
                    tracing::debug!(%error, "send failed");
                    if let Some(key) = key {
                        self.immediate.push_back(Input::SendFailed(key));
                    }
                }
            }
            Output::LoadCredentials { id, user } => {
                let credentials = self.ctx.credentials.clone();
                let own = self.own.clone();
                tokio::spawn(async move {
                    let lookup = credentials.load(&user).await.map_err(|e| e.to_string());
                    let input = Input::Credentials { id, lookup };
                    let _ = own.send(ShardInput::Input(input)).await;
                });
            }
            Output::MessageCounts { id, mailbox } => {
                let mailboxes = self.ctx.mailboxes.clone();
                let own = self.own.clone();
                tokio::spawn(async move {
                    let counts = mailboxes
                        .message_counts(&mailbox)
                        .await
                        .map_err(|e| e.to_string());
                    let input = Input::MessageCounts { id, counts };
                    let _ = own.send(ShardInput::Input(input)).await;
                });
            }
            Output::HttpLookup { call, request } => {
                let own = self.own.clone();
                tokio::spawn(async move {
                    let outcome = super::lookup::fetch(&request).await;
                    if let pbx_dialplan::HttpOutcome::Failed(why) = &outcome {
                        tracing::info!(url = %request.url, %why, "http_lookup failed");
                    }
                    let input = Input::Http { call, outcome };
                    let _ = own.send(ShardInput::Input(input)).await;
                });
            }
            Output::DbLookup { call, request } => {
                let own = self.own.clone();
                let lookups = self.ctx.lookups.clone();
                tokio::spawn(async move {
                    let outcome = lookups.query(&request).await;
                    if let pbx_dialplan::DbOutcome::Failed(why) = &outcome {
                        tracing::info!(database = %request.database, %why, "db_lookup failed");
                    }
                    let input = Input::Db { call, outcome };
                    let _ = own.send(ShardInput::Input(input)).await;
                });
            }
            Output::AllocateMedia { call } => {
                let own = self.own.clone();
                let on_event = Box::new(move |event: MediaEvent| {
                    let _ = own.try_send(ShardInput::Input(Input::Media(call, event)));
                });
                let own = self.own.clone();
                let recordings = self.ctx.voicemail.recordings.clone();
                let key = (self.index, call);
                let on_endpoint = Box::new(move |event: pbx_media::session::Event| {
                    use pbx_media::session::Event;
                    // Recorded audio goes to the disk; the engine hears of the end once the
                    // file is complete (`Input::Recorded`).
                    match event {
                        Event::RecorderAudio { pcm, .. } => recordings.audio(key, pcm),
                        Event::RecorderFinished { end, pcm, .. } => {
                            recordings.finish(key, record_end(end), pcm)
                        }
                        event => {
                            let _ = own.try_send(ShardInput::Input(Input::Session { call, event }));
                        }
                    }
                });
                let allocated = self.ctx.media.allocate_with_endpoints(
                    format!("call {call}"),
                    on_event,
                    on_endpoint,
                );
                let ports = match allocated {
                    Ok(session) => {
                        let ports = MediaPorts {
                            caller: session.port(Side::Caller),
                            callee: session.port(Side::Callee),
                        };
                        self.media.insert(call, session);
                        Ok(ports)
                    }
                    Err(error) => Err(error.to_string()),
                };
                self.immediate
                    .push_back(Input::MediaAllocated { call, ports });
            }
            Output::ApplyMedia { call, plan } => {
                // Queued to the worker here, before the 200 that follows it among the
                // outputs goes out: a phone may send the moment it has the 200 (RFC 3264 §6).
                self.ctx.live_calls.media(self.index, call, &plan);
                if let Some(session) = self.media.get(&call) {
                    session.apply(plan);
                }
            }
            Output::AppMedia { call, media } => self.app_media(call, media),
            Output::DtmfMedia { call, media } => {
                if let Some(session) = self.media.get(&call) {
                    session.command(dtmf_command(media));
                }
            }
            Output::Voicemail { call, id, request } => {
                let _ = self.voicemail.send((call, id, request));
            }
            Output::ReleaseMedia { call } => {
                // Dropping the session stops its relay and frees its ports.
                self.media.remove(&call);
            }
            Output::ResolveLocalAddress { toward } => {
                let local = local_ip_towards(toward);
                self.immediate
                    .push_back(Input::LocalAddress { toward, local });
            }
            Output::WriteCdr(cdr) => self.ctx.cdrs.write(cdr),
            Output::CallState(state) => {
                let now_unix = crate::transport::now_unix();
                self.ctx.live_calls.apply(self.index, state, now_unix);
            }
            Output::Location(write) => self.ctx.binding_writes.write(write),
            Output::SaveBan(ban) => {
                let store = self.ctx.store.clone();
                tokio::spawn(async move {
                    if let Err(error) = store.add_ban(ban.address, &ban.reason, ban.until).await {
                        tracing::error!(%error, "could not save a ban");
                    }
                });
            }
            Output::Authenticated { conn } => self.ctx.sender.mark_authenticated(conn),
            Output::Security(event) => {
                if let (Security::Banned { address, until }, Some(alerts)) =
                    (&event, &self.ctx.ban_alerts)
                {
                    alerts.banned(*address, *until);
                }
                record(&self.ctx.security_log, &event);
                report(event)
            }
            Output::ShutdownComplete => {
                for done in self.shutdown.drain(..) {
                    let _ = done.send(());
                }
            }
        }
    }
}

impl Driver {
    /// Turns the engine's application request into a command for the call's session.
    fn app_media(&mut self, call: u64, media: AppMedia) {
        let Some(session) = self.media.get(&call) else {
            return;
        };
        let side = Side::Caller;
        if media == AppMedia::Bridge {
            for stop in [
                Command::StopPlayer { side },
                Command::StopDtmf { side },
                Command::StopEcho { side },
                Command::ConnectRelay,
            ] {
                session.command(stop);
            }
            return;
        }
        // The PBX is the caller's partner: nothing is relayed to the other leg.
        session.command(Command::DisconnectRelay);
        let command = match media {
            AppMedia::Play {
                prompts,
                local,
                ssrc,
                first_sequence,
                first_timestamp,
            } => {
                let mut pcm: Vec<i16> = Vec::new();
                for sound in &prompts {
                    match sound {
                        pbx_voicemail::Sound::Prompt(name) => match self.ctx.prompts.get(name) {
                            Ok(samples) => pcm.extend_from_slice(&samples),
                            Err(error) => tracing::warn!(call, %error, "prompt not played"),
                        },
                        // A message or greeting: read as it is played (they change).
                        pbx_voicemail::Sound::File(path) => match std::fs::read(path)
                            .map_err(|e| e.to_string())
                            .and_then(|b| pbx_media::wav::decode(&b).map_err(|e| e.to_string()))
                        {
                            Ok(samples) => pcm.extend_from_slice(&samples),
                            Err(error) => tracing::warn!(call, %path, %error, "file not played"),
                        },
                    }
                }
                if pcm.is_empty() {
                    // Nothing to play: the step is over at once.
                    let event = pbx_media::session::Event::PlayerFinished { side };
                    self.immediate.push_back(Input::Session { call, event });
                    return;
                }
                let source = PcmSource::new(pcm, local.voice, local.ptime);
                Command::Play {
                    side,
                    spec: PlayerSpec {
                        source: Box::new(source),
                        payload_type: local.payload_type,
                        ssrc,
                        first_sequence,
                        first_timestamp,
                        ptime: local.ptime,
                    },
                }
            }
            AppMedia::StopPlayer => Command::StopPlayer { side },
            AppMedia::Record {
                path,
                limits,
                message,
                local,
            } => {
                let sidecar = message
                    .as_ref()
                    .map(|m| crate::voicemail::recordings::Sidecar::new(m, limits));
                let own = self.own.clone();
                let service = self.ctx.voicemail.clone();
                let runtime = tokio::runtime::Handle::current();
                let on_finished = Box::new(move |done: crate::voicemail::recordings::Finished| {
                    let end = done.end;
                    if done.message {
                        let path = done.path.clone();
                        runtime.spawn(async move { service.file(&path, Some(end)).await });
                    }
                    let input = Input::Recorded {
                        call,
                        duration: done.duration,
                        end,
                    };
                    if own.try_send(ShardInput::Input(input)).is_err() {
                        tracing::warn!(call, "recording end not reported: shard busy");
                    }
                });
                let key = (self.index, call);
                self.ctx
                    .voicemail
                    .recordings
                    .begin(key, path.into(), sidecar, on_finished);
                Command::Record {
                    side,
                    spec: RecorderSpec {
                        max_length: limits.max,
                        silence: limits.silence,
                        silence_level: SILENCE_LEVEL,
                        opus_payload_type: (local.voice == pbx_media::voice::Voice::Opus)
                            .then_some(local.payload_type),
                    },
                }
            }
            AppMedia::StopRecorder => Command::StopRecorder { side },
            AppMedia::DetectDtmf { local } => Command::DetectDtmf {
                side,
                spec: DtmfSpec {
                    payload_type: local.telephone_event,
                    clock_rate: local.event_clock(),
                    // Tones in the audio are listened for only from a phone that does not
                    // send RFC 4733 events: one that does mutes its tones, or sends both and
                    // every key would count twice.
                    inband: local
                        .telephone_event
                        .is_none()
                        .then(|| Box::new(InbandDtmf::new()) as Box<dyn InbandDetector>),
                },
            },
            AppMedia::Echo { ssrc } => Command::Echo {
                side,
                spec: EchoSpec { ssrc },
            },
            AppMedia::Bridge => return,
        };
        session.command(command);
    }
}

/// The media command that converts a bridged call's DTMF (RFC 4733 at 8000 Hz both ways).
fn dtmf_command(media: pbx_calls::DtmfMedia) -> Command {
    match media {
        pbx_calls::DtmfMedia::Detect { side, payload_type } => Command::ConvertDtmf {
            side,
            spec: DtmfSpec {
                payload_type: Some(payload_type),
                clock_rate: 8000,
                inband: None,
            },
        },
        pbx_calls::DtmfMedia::Send {
            side,
            digit,
            duration,
            payload_type,
        } => Command::SendDtmf {
            side,
            digit,
            duration,
            spec: pbx_media::endpoint::dtmf_out::DtmfOutSpec {
                payload_type,
                clock_rate: 8000,
            },
        },
    }
}

/// Samples at or under this (of 32767) are silence for the recorder: G.711 idle noise and
/// a quiet room sit well below it, speech well above.
const SILENCE_LEVEL: u16 = 300;

fn record_end(end: RecordingEnd) -> pbx_voicemail::RecordEnd {
    match end {
        RecordingEnd::MaxLength => pbx_voicemail::RecordEnd::MaxLength,
        RecordingEnd::Silence => pbx_voicemail::RecordEnd::Silence,
        RecordingEnd::Stopped => pbx_voicemail::RecordEnd::Stopped,
    }
}

/// Does shard's voicemail requests in order, answering the machines that wait.
async fn voicemail_requests(
    ctx: Arc<EngineContext>,
    own: mpsc::Sender<ShardInput>,
    mut requests: mpsc::UnboundedReceiver<(u64, u64, VoicemailRequest)>,
) {
    while let Some((call, id, request)) = requests.recv().await {
        if let Some(answer) = ctx.voicemail.request(request).await {
            let input = Input::Voicemail { call, id, answer };
            let _ = own.send(ShardInput::Input(input)).await;
        }
    }
}

/// The security log and its counters.
/// Keeps the event for the web admin (the ones a person wants to see).
fn record(log: &crate::security::events::SecurityLog, event: &Security) {
    use crate::security::events::SecurityKind;
    let now_unix = crate::transport::now_unix();
    match event {
        Security::AuthFailed {
            source,
            user,
            failure,
            ..
        } => log.push(
            now_unix,
            SecurityKind::AuthFailed,
            source.ip(),
            user,
            failure,
        ),
        Security::Banned { address, until } => log.push(
            now_unix,
            SecurityKind::Banned,
            *address,
            "",
            &format!("until {}", pbx_web_admin::views::when(*until)),
        ),
        Security::NetworkRefused { source, user } => log.push(
            now_unix,
            SecurityKind::NetworkRefused,
            source.ip(),
            user,
            "",
        ),
        Security::DroppedBanned | Security::NotChecked { .. } => {}
    }
}

fn report(event: Security) {
    match event {
        Security::DroppedBanned => {
            metrics::counter!("pbx_sip_dropped_total", "reason" => "banned").increment(1);
        }
        Security::NotChecked { source, user } => {
            tracing::info!(%source, %user, "credentials not checked: too many on their way");
        }
        Security::AuthFailed {
            source,
            user,
            failure,
            counted,
        } => {
            tracing::info!(%source, %user, %failure, "authentication failed");
            if counted {
                metrics::counter!("pbx_auth_failures_total").increment(1);
            }
        }
        Security::Banned { address, until } => {
            metrics::counter!("pbx_bans_total").increment(1);
            tracing::warn!(%address, until, "banned after repeated authentication failures");
        }
        Security::NetworkRefused { source, user } => {
            tracing::info!(%source, %user, "request from a network the extension does not allow");
        }
    }
}

/// The address of this host that the kernel would use to reach `remote`. No packet is sent
/// (a connected UDP socket only picks a route); asked once per destination.
pub(crate) fn local_ip_towards(remote: IpAddr) -> Option<IpAddr> {
    let any: std::net::SocketAddr = if remote.is_ipv4() {
        (IpAddr::from([0, 0, 0, 0]), 0).into()
    } else {
        (IpAddr::from([0u16; 8]), 0).into()
    };
    let probe = std::net::UdpSocket::bind(any).ok()?;
    probe.connect((remote, 9)).ok()?;
    probe.local_addr().ok().map(|a| a.ip())
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(at) => tokio::time::sleep_until(at.into()).await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::credentials::CredentialLoader;
    use crate::security::Guard;
    use crate::security::acl::Acl;
    use crate::security::rate::SourceRateLimit;
    use crate::transport::{Inbound, Peer, Sender, TransportKind, udp::UdpOut};
    use bytes::Bytes;
    use pbx_sip::auth::{Algorithm, DigestAuthenticator, ha1_hex};
    use pbx_sip::registrar::{RegistrarPolicy, process_register};
    use pbx_store::{CdrStore, ExtensionStore, NewExtension, Store};
    use std::sync::Mutex;
    use std::time::Duration;

    const DOMAIN: &str = "pbx.test";

    fn parse(text: String) -> pbx_sip::message::Message {
        pbx_sip::parse::parse_message(Bytes::from(text)).unwrap()
    }

    fn receive(socket: &std::net::UdpSocket) -> String {
        let mut buf = [0u8; 4096];
        let (n, _) = socket.recv_from(&mut buf).unwrap();
        String::from_utf8_lossy(&buf[..n]).into_owned()
    }

    /// A shard whose engine panics in the middle of a ringing call: the call is ended (503
    /// to the caller, a CDR saying the PBX ended it), and a fresh engine takes the shard.
    // Two workers: a send the kernel defers finishes on a task while the test waits.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_panicking_engine_ends_its_calls_and_is_replaced() {
        let store = Arc::new(Store::open("sqlite::memory:").await.unwrap());
        for number in ["1000", "1001"] {
            let extension = NewExtension {
                number: number.into(),
                password: format!("secret{number}"),
                name: None,
                email: None,
                pin: None,
                allowed_networks: vec![],
                media_encryption: None,
                did: None,
            };
            store.add_extension(DOMAIN, extension).await.unwrap();
        }
        let credentials = Arc::new(CredentialLoader::new(store.clone()));
        credentials.refresh().await.unwrap();
        let location = crate::engine::location::Location::new();
        let (binding_writes, _writer) = crate::engine::location::WriteBehind::start(store.clone());
        let pbx_socket = Arc::new(tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap());
        let pbx = pbx_socket.local_addr().unwrap();
        let udp = UdpOut::new(pbx_socket).unwrap();
        let device = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let caller = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        for socket in [&device, &caller] {
            socket
                .set_read_timeout(Some(Duration::from_secs(5)))
                .unwrap();
        }
        let digest = DigestAuthenticator::new(
            DOMAIN.into(),
            [3; 32],
            Duration::from_secs(300),
            vec![Algorithm::Md5],
        );
        let spool = super::super::cdr_spool::CdrSpool::new(std::env::temp_dir().join(format!(
            "pbx-driver-test-spool-{}.jsonl",
            std::process::id()
        )));
        let (cdrs, _cdr_task) = super::super::cdr_writer::CdrWriter::start(store.clone(), spool);
        let policy = RegistrarPolicy {
            min_expires: 60,
            max_expires: 3600,
            default_expires: 600,
            max_bindings_per_aor: 10,
        };
        let ctx = Arc::new(EngineContext {
            domain: DOMAIN.into(),
            user_agent: "pbx-test".into(),
            sender: Sender::new(vec![udp], Default::default()),
            guard: Arc::new(Guard::new(
                Acl::new(vec!["0.0.0.0/0".parse().unwrap()], vec![]),
                5,
                Duration::from_secs(60),
                Duration::from_secs(60),
                SourceRateLimit::new(1000, 1000),
            )),
            store: store.clone(),
            credentials,
            location: Arc::new(location),
            binding_writes,
            digest: Arc::new(Mutex::new(digest)),
            policy,
            md5_only_user_agents: vec![],
            media: crate::media::MediaService::with_workers(
                47_600,
                47_699,
                IpAddr::from([127, 0, 0, 1]),
                Duration::from_secs(30),
                1,
            )
            .unwrap(),
            public_ip: None,
            sdes_over_insecure: false,
            ring_timeout: Duration::from_secs(30),
            cdrs: Arc::new(cdrs),
            plan: Arc::new(crate::plan::PlanHandle::new(None)),
            prompts: Arc::new(crate::media::prompts::Prompts::new(None)),
            ban_alerts: None,
            live_calls: Default::default(),
            voicemail: crate::voicemail::VoicemailService::new(
                store.clone(),
                None,
                std::env::temp_dir().join("pbx-driver-test-voicemail"),
                jiff::tz::TimeZone::UTC,
            )
            .unwrap(),
            voicemail_settings: Default::default(),
            lookups: Arc::new(super::super::db_lookup::Lookups::new(&Default::default())),
            mailboxes: store.clone(),
            security_log: Default::default(),
            trunks: Default::default(),
            trunk_inbox: Default::default(),
        });
        let (own, _queue) = mpsc::channel(16);
        let mut driver = Driver::new(ctx.clone(), Arc::new(ctx.core()), own, 0);
        let now = now();

        // 1000 is registered at `device`.
        let device_addr = device.local_addr().unwrap();
        let peer_of = |remote| Peer {
            kind: TransportKind::Udp,
            remote,
            local: pbx,
            conn: None,
        };
        let register = parse(format!(
            "REGISTER sip:{DOMAIN} SIP/2.0\r\nVia: SIP/2.0/UDP {device_addr};branch=z9hG4bKr1\r\n\
             From: <sip:1000@{DOMAIN}>;tag=r\r\nTo: <sip:1000@{DOMAIN}>\r\nCall-ID: r1\r\n\
             CSeq: 1 REGISTER\r\nContact: <sip:1000@{device_addr}>\r\nExpires: 600\r\n\
             Content-Length: 0\r\n\r\n"
        ));
        let pbx_sip::message::Message::Request(register) = register else {
            panic!("not a request");
        };
        ctx.location
            .update("1000", &peer_of(device_addr), "phone", |current| {
                process_register(now.unix(), &register, current, &policy)
            })
            .unwrap();

        // 1001 calls 1000 with credentials for a fresh nonce.
        let challenge = ctx
            .digest
            .lock()
            .unwrap()
            .challenge_values(now.unix(), false)
            .remove(0);
        let nonce = challenge
            .split("nonce=\"")
            .nth(1)
            .and_then(|rest| rest.split('"').next())
            .unwrap()
            .to_string();
        let opaque = challenge
            .split("opaque=\"")
            .nth(1)
            .and_then(|rest| rest.split('"').next())
            .unwrap_or_default()
            .to_string();
        let uri = format!("sip:1000@{DOMAIN}");
        let ha1 = ha1_hex(Algorithm::Md5, "1001", DOMAIN, "secret1001");
        let ha2 = Algorithm::Md5.hash_hex(format!("INVITE:{uri}").as_bytes());
        let response =
            Algorithm::Md5.hash_hex(format!("{ha1}:{nonce}:00000001:c:auth:{ha2}").as_bytes());
        let caller_addr = caller.local_addr().unwrap();
        let invite = parse(format!(
            "INVITE {uri} SIP/2.0\r\nVia: SIP/2.0/UDP {caller_addr};branch=z9hG4bKi1\r\n\
             Max-Forwards: 70\r\nFrom: <sip:1001@{DOMAIN}>;tag=c\r\nTo: <{uri}>\r\n\
             Call-ID: crash-call\r\nCSeq: 1 INVITE\r\nContact: <sip:1001@{caller_addr}>\r\n\
             Proxy-Authorization: Digest username=\"1001\", realm=\"{DOMAIN}\", \
             nonce=\"{nonce}\", uri=\"{uri}\", algorithm=MD5, qop=auth, nc=00000001, \
             cnonce=\"c\", response=\"{response}\", opaque=\"{opaque}\"\r\n\
             Content-Length: 0\r\n\r\n"
        ));
        let inbound = Inbound {
            peer: peer_of(caller_addr),
            message: invite,
        };
        driver.step(Input::Sip(inbound, None));
        let ring = receive(&device);
        assert!(ring.starts_with("INVITE sip:1000@"), "{ring}");
        assert_eq!(driver.engine.calls(), 1);
        assert_eq!(driver.media.len(), 1, "the call has its relay");
        let live = ctx.live_calls.list();
        assert_eq!(live.len(), 1, "the call is in the live table");
        assert_eq!(
            (live[0].caller.as_str(), live[0].called.as_str()),
            ("1001", "1000")
        );

        driver.step(Input::Panic);
        assert_eq!(driver.engine.calls(), 0, "a fresh engine");
        assert!(
            driver.media.is_empty(),
            "the broken engine's relays are freed"
        );
        assert!(
            ctx.live_calls.list().is_empty(),
            "and its calls are not live"
        );
        assert!(receive(&caller).starts_with("SIP/2.0 503"));
        ctx.cdrs.flush().await;
        let cdrs = store.list_cdrs(10).await.unwrap();
        let cdr = &cdrs.first().unwrap().call;
        assert_eq!(cdr.call_id, "crash-call");
        assert_eq!(cdr.hangup_side, "pbx");

        // The new engine serves the shard.
        let options = parse(format!(
            "OPTIONS sip:{DOMAIN} SIP/2.0\r\nVia: SIP/2.0/UDP {caller_addr};branch=z9hG4bKo1\r\n\
             From: <sip:1001@{DOMAIN}>;tag=o\r\nTo: <sip:{DOMAIN}>\r\nCall-ID: o1\r\n\
             CSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n"
        ));
        let inbound = Inbound {
            peer: peer_of(caller_addr),
            message: options,
        };
        driver.step(Input::Sip(inbound, None));
        assert!(receive(&caller).starts_with("SIP/2.0 200"));
    }
}
