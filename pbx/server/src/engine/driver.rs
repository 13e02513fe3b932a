//! The tokio shell around one shard's [`Engine`]: it feeds the engine its inputs with the
//! time, carries out its outputs (sends, store calls, HTTP look-ups, the media relay), and
//! sleeps until the engine's next timer. It also supervises: an engine that panics is
//! logged, counted, made to end its calls, and replaced by a fresh one.

use super::io::{Input, MediaPorts, Now, Output};
use super::shard::Engine;
use super::{Core, EngineContext, ShardInput};
use crate::media::{MediaEvent, MediaSession};
use pbx_media::Side;
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
        Driver {
            ctx,
            own,
            index,
            engine,
            media: HashMap::new(),
            immediate: VecDeque::new(),
            shutdown: Vec::new(),
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
                    // Requests of the broken engine are not answered to the new one.
                    if matches!(output, Output::Transmit { .. } | Output::WriteCdr(_)) {
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
        self.immediate.clear();
        for done in self.shutdown.drain(..) {
            let _ = done.send(());
        }
    }

    fn execute(&mut self, output: Output) {
        match output {
            Output::Transmit { peer, bytes, key } => {
                if let Err(error) = self.ctx.sender.send(&peer, bytes) {
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
            Output::AllocateMedia { call } => {
                let own = self.own.clone();
                let on_event = Box::new(move |event: MediaEvent| {
                    let _ = own.try_send(ShardInput::Input(Input::Media(call, event)));
                });
                let ports = match self.ctx.media.allocate(format!("call {call}"), on_event) {
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
                if let Some(session) = self.media.get(&call) {
                    session.apply(plan);
                }
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
            Output::SaveBan(ban) => {
                let store = self.ctx.store.clone();
                tokio::spawn(async move {
                    if let Err(error) = store.add_ban(ban.address, &ban.reason, ban.until).await {
                        tracing::error!(%error, "could not save a ban");
                    }
                });
            }
            Output::ShutdownComplete => {
                for done in self.shutdown.drain(..) {
                    let _ = done.send(());
                }
            }
        }
    }
}

/// The address of this host that the kernel would use to reach `remote`. No packet is sent
/// (a connected UDP socket only picks a route); asked once per destination.
fn local_ip_towards(remote: IpAddr) -> Option<IpAddr> {
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
