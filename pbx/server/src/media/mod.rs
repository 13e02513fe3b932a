//! The media shell: RTP/RTCP sockets and relay workers around the sans-IO
//! [`pbx_media::session::MediaSession`] (a two-party relay, and the PBX's own endpoints:
//! players, recorders, DTMF detectors).
//!
//! A call asks [`MediaService::allocate`] for a [`MediaSession`]: two port pairs (one per
//! leg, RTP even and RTCP + 1), bound and handed to one of the relay workers (OS threads,
//! one per core, each with one epoll set for all its calls; see `worker.rs` for why not
//! tokio). The call puts `session.port(side)` in the SDP it sends to that leg and hands every
//! completed offer/answer to [`MediaSession::apply`]. Dropping the session removes the call
//! from its worker, which closes the sockets and returns the ports. Media never goes through
//! the SIP engine (ARCHITECTURE.md "One way through").

pub mod lateness;
mod poller;
mod ports;
pub mod prompts;
mod realtime;
mod worker;

use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use pbx_media::relay::BridgeStats;
use pbx_media::webrtc::DtlsIdentity;
use pbx_media::{Fingerprint, MediaPlan, Side};
use tokio::sync::watch;

use lateness::{Lateness, LatenessSnapshot};
use ports::PortPool;
use worker::{CallMedia, Command, WorkerHandle};

/// What a relay worker tells a call (the engine's type: it decides what follows).
pub use pbx_engine::MediaEvent;

/// Why a session could not be allocated.
#[derive(Debug, thiserror::Error)]
pub enum MediaError {
    #[error("no free RTP port pair ({in_use} ports in use)")]
    PortsExhausted { in_use: usize },
    #[error("media socket setup: {0}")]
    Io(#[from] std::io::Error),
    #[error("cannot bind media sockets to {ip} ([rtp] bind): {source}")]
    Bind { ip: IpAddr, source: std::io::Error },
    #[error("cannot make the DTLS certificate for WebRTC: {0}")]
    Dtls(#[from] pbx_media::webrtc::DtlsError),
}

/// Called from a relay worker thread; it must not block (post to a queue).
pub type EventSink = Box<dyn Fn(MediaEvent) + Send + Sync>;

/// What the session's endpoints report (DTMF digits, a player or recorder finished), called
/// from a relay worker thread like [`EventSink`].
pub type EndpointSink = Box<dyn Fn(pbx_media::session::Event) + Send + Sync>;

/// The RTP port pool and the relay workers.
pub struct MediaService {
    pool: Arc<PortPool>,
    bind_ip: IpAddr,
    workers: Vec<Arc<WorkerHandle>>,
    next_id: AtomicU64,
    lateness: Arc<Lateness>,
    /// The PBX's DTLS certificate for WebRTC legs, made at start (docs/decisions.md "WebRTC
    /// media"): its fingerprint is in every WebRTC SDP.
    dtls: Arc<DtlsIdentity>,
}

impl MediaService {
    /// Ports come from `[port_min, port_max]` (`[rtp]` in the config), bound on `bind_ip`;
    /// one relay worker per core this process may run on.
    pub fn new(
        port_min: u16,
        port_max: u16,
        bind_ip: IpAddr,
        rtp_timeout: Duration,
    ) -> Result<Arc<MediaService>, MediaError> {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        Self::with_workers(port_min, port_max, bind_ip, rtp_timeout, cores)
    }

    /// As [`MediaService::new`] with `workers` relay threads (at least one).
    pub fn with_workers(
        port_min: u16,
        port_max: u16,
        bind_ip: IpAddr,
        rtp_timeout: Duration,
        workers: usize,
    ) -> Result<Arc<MediaService>, MediaError> {
        // An address this host does not have fails at start, not at every call.
        std::net::UdpSocket::bind((bind_ip, 0)).map_err(|source| MediaError::Bind {
            ip: bind_ip,
            source,
        })?;
        let lateness = Arc::new(Lateness::default());
        let dtls = Arc::new(DtlsIdentity::generate()?);
        tracing::info!(fingerprint = %dtls.fingerprint().attribute(), "WebRTC DTLS certificate made");
        let workers = (0..workers.max(1))
            .map(|i| worker::spawn(i, rtp_timeout, Arc::clone(&lateness), dtls.clone()))
            .collect::<Result<_, _>>()?;
        Ok(Arc::new(MediaService {
            pool: Arc::new(PortPool::new(port_min, port_max)),
            bind_ip,
            workers,
            next_id: AtomicU64::new(0),
            lateness,
            dtls,
        }))
    }

    /// Binds a port pair for each leg and gives the call to the least loaded worker.
    /// `on_event` is called from that worker's thread.
    pub fn allocate(
        self: &Arc<Self>,
        call_label: String,
        on_event: EventSink,
    ) -> Result<MediaSession, MediaError> {
        self.allocate_with_endpoints(call_label, on_event, Box::new(|_| {}))
    }

    /// As [`MediaService::allocate`], with `on_endpoint` for what the endpoints attached by
    /// [`MediaSession::command`] report.
    pub fn allocate_with_endpoints(
        self: &Arc<Self>,
        call_label: String,
        on_event: EventSink,
        on_endpoint: EndpointSink,
    ) -> Result<MediaSession, MediaError> {
        // If the second pair fails, the first one's lease returns it on drop.
        let caller = self.pool.bind_pair(self.bind_ip)?;
        let callee = self.pool.bind_pair(self.bind_ip)?;
        let ports = [caller.lease.port(), callee.lease.port()];
        let sockets = worker::Sockets::new(caller, callee)?;
        let (stats_tx, stats_rx) = watch::channel(BridgeStats::default());
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let worker = self
            .workers
            .iter()
            .min_by_key(|w| w.load.load(Ordering::Relaxed))
            .cloned()
            .ok_or_else(|| std::io::Error::other("no relay worker"))?;
        worker.load.fetch_add(1, Ordering::Relaxed);
        worker.send(Command::Add(Box::new(CallMedia {
            id,
            label: call_label,
            sockets,
            stats: stats_tx,
            on_event,
            on_endpoint,
        })));
        Ok(MediaSession {
            ports,
            id,
            worker,
            stats: stats_rx,
        })
    }

    /// The one address media sockets are bound to, if not a wildcard: the only address a
    /// leg can send media to, so the SDP must name it (unless `[rtp] public_ip` is set).
    pub fn bound_ip(&self) -> Option<IpAddr> {
        (!self.bind_ip.is_unspecified()).then_some(self.bind_ip)
    }

    /// How the relay latches the plain RTP legs of calls allocated from now on (`[rtp]
    /// strict_rtp`, `rtp_probation`; strict by default, see
    /// [`pbx_media::relay::LatchPolicy`]).
    pub fn set_latching(&self, policy: pbx_media::relay::LatchPolicy) {
        for worker in &self.workers {
            worker.send(Command::Latching(policy));
        }
    }

    /// Asks every relay worker to move to real-time scheduling (`[rtp] realtime`); a worker
    /// that may not stays as it is, and one warning says why.
    pub fn use_realtime_priority(&self) {
        for worker in &self.workers {
            worker.send(Command::Realtime);
        }
    }

    /// How late the workers have handled their sessions' deadlines (a player's frames),
    /// as of their last housekeeping tick.
    pub fn timer_lateness(&self) -> LatenessSnapshot {
        self.lateness.snapshot()
    }

    /// The SHA-256 fingerprint of the PBX's DTLS certificate (`a=fingerprint`).
    pub fn dtls_fingerprint(&self) -> &Fingerprint {
        self.dtls.fingerprint()
    }

    /// UDP ports currently held by sessions (four per call).
    pub fn ports_in_use(&self) -> usize {
        self.pool.ports_in_use()
    }
}

/// The media of one call, owned by the call. Dropping it takes the call off its worker;
/// the sockets close and their ports return to the pool.
pub struct MediaSession {
    ports: [u16; 2],
    id: u64,
    worker: Arc<WorkerHandle>,
    stats: watch::Receiver<BridgeStats>,
}

impl MediaSession {
    /// The RTP port of `side`'s PBX socket (RTCP is the next port), for the SDP sent to
    /// that leg.
    pub fn port(&self, side: Side) -> u16 {
        self.ports[side.index()]
    }

    /// Hands a completed offer/answer to the relay. Never blocks; plans apply in order.
    pub fn apply(&self, plan: MediaPlan) {
        self.worker.send(Command::Apply(self.id, Box::new(plan)));
    }

    /// Hands a command to the session (connect or disconnect the relay, attach or stop a
    /// player, a recorder, a DTMF detector). Never blocks; commands apply in order with
    /// plans. A command the session refuses is logged.
    pub fn command(&self, command: pbx_media::session::Command) {
        self.worker
            .send(Command::Session(self.id, Box::new(command)));
    }

    /// The relay's counters as of its last report (about once a second).
    pub fn stats(&self) -> BridgeStats {
        self.stats.borrow().clone()
    }
}

impl Drop for MediaSession {
    fn drop(&mut self) {
        self.worker.load.fetch_sub(1, Ordering::Relaxed);
        self.worker.send(Command::Remove(self.id));
    }
}
