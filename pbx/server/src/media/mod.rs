//! The media shell: RTP/RTCP sockets and one relay task per call around the sans-IO
//! [`pbx_media::relay::Bridge`].
//!
//! A call asks [`MediaService::allocate`] for a [`MediaSession`]: two port pairs (one per
//! leg, RTP even and RTCP + 1), bound, with a tokio task that relays between them. The call
//! puts `session.port(side)` in the SDP it sends to that leg and hands every completed
//! offer/answer to [`MediaSession::apply`]. Dropping the session ends the task and returns
//! the ports. Media never goes through the SIP engine (ARCHITECTURE.md "One way through").

mod ports;
mod task;

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use pbx_media::relay::BridgeStats;
use pbx_media::{MediaPlan, Side};
use tokio::sync::watch;

use ports::PortPool;

/// What a relay task tells its call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MediaEvent {
    /// No RTP from either leg for `rtp_timeout` while not on hold: the call is dead (a phone
    /// lost power or network without hanging up). Sent once per session.
    Timeout,
}

/// Why a session could not be allocated.
#[derive(Debug, thiserror::Error)]
pub enum MediaError {
    #[error("no free RTP port pair ({in_use} ports in use)")]
    PortsExhausted { in_use: usize },
    #[error("media sockets need a tokio runtime")]
    NoRuntime,
    #[error("media socket setup: {0}")]
    Io(#[from] std::io::Error),
}

/// Called from the relay task; it must not block (post to a queue).
pub type EventSink = Box<dyn Fn(MediaEvent) + Send + Sync>;

/// The RTP port pool and the relay tasks of all calls.
pub struct MediaService {
    pool: Arc<PortPool>,
    bind_ip: IpAddr,
    rtp_timeout: Duration,
}

impl MediaService {
    /// Ports come from `[port_min, port_max]` (`[rtp]` in the config), bound on `bind_ip`.
    pub fn new(
        port_min: u16,
        port_max: u16,
        bind_ip: IpAddr,
        rtp_timeout: Duration,
    ) -> Arc<MediaService> {
        Arc::new(MediaService {
            pool: Arc::new(PortPool::new(port_min, port_max)),
            bind_ip,
            rtp_timeout,
        })
    }

    /// Binds a port pair for each leg and starts the call's relay task. `on_event` is called
    /// from that task.
    pub fn allocate(
        self: &Arc<Self>,
        call_label: String,
        on_event: EventSink,
    ) -> Result<MediaSession, MediaError> {
        let runtime = tokio::runtime::Handle::try_current().map_err(|_| MediaError::NoRuntime)?;
        // If the second pair fails, the first one's lease returns it on drop.
        let caller = self.pool.bind_pair(self.bind_ip)?;
        let callee = self.pool.bind_pair(self.bind_ip)?;
        let ports = [caller.lease.port(), callee.lease.port()];
        let sockets = {
            let _enter = runtime.enter();
            task::Sockets::new(caller, callee)?
        };
        let (plan_tx, plan_rx) = watch::channel(None);
        let (stats_tx, stats_rx) = watch::channel(BridgeStats::default());
        let relay = task::Relay {
            label: call_label,
            sockets,
            plans: plan_rx,
            stats: stats_tx,
            on_event,
            rtp_timeout: self.rtp_timeout,
        };
        let handle = runtime.spawn(relay.run());
        Ok(MediaSession {
            ports,
            plan: plan_tx,
            stats: stats_rx,
            task: handle,
        })
    }

    /// UDP ports currently held by sessions (four per call).
    pub fn ports_in_use(&self) -> usize {
        self.pool.ports_in_use()
    }
}

/// The media of one call, owned by the call. Dropping it stops the relay task; the task's
/// sockets close and their ports return to the pool as it is torn down.
pub struct MediaSession {
    ports: [u16; 2],
    plan: watch::Sender<Option<MediaPlan>>,
    stats: watch::Receiver<BridgeStats>,
    task: tokio::task::JoinHandle<()>,
}

impl MediaSession {
    /// The RTP port of `side`'s PBX socket (RTCP is the next port), for the SDP sent to
    /// that leg.
    pub fn port(&self, side: Side) -> u16 {
        self.ports[side.index()]
    }

    /// Hands a completed offer/answer to the relay. Never blocks; only the latest plan
    /// matters, so a newer one replaces one not yet applied.
    pub fn apply(&self, plan: MediaPlan) {
        self.plan.send_replace(Some(plan));
    }

    /// The relay's counters as of its last report (about once a second).
    pub fn stats(&self) -> BridgeStats {
        self.stats.borrow().clone()
    }
}

impl Drop for MediaSession {
    fn drop(&mut self) {
        self.task.abort();
    }
}
