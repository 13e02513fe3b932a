//! The relay task of one call: its sockets, its bridge, one receive buffer.

use std::io;
use std::time::{Duration, Instant};

use pbx_media::relay::{Bridge, BridgeStats, Component, DropReason, Verdict};
use pbx_media::{MediaPlan, Side};
use tokio::net::UdpSocket;
use tokio::sync::watch;

use super::ports::{BoundPair, PortLease};
use super::{EventSink, MediaEvent};

/// Receive buffer size. RTP on real networks stays under the 1500-byte MTU; the bridge
/// needs room after the datagram for an SRTP tag and SRTCP index (at most 20 bytes).
const BUF: usize = 2048;
/// Kept free after the datagram for that tag.
const SPARE: usize = 64;
/// Datagrams read from one socket per wake-up before the others get a turn.
const BATCH: usize = 32;

/// The four sockets of a call, `[leg][component]`, and their port leases. Field order
/// matters: the sockets close before the leases give the ports back.
pub(crate) struct Sockets {
    socks: [[UdpSocket; 2]; 2],
    _leases: [PortLease; 2],
}

impl Sockets {
    /// Needs a runtime context (tokio registers the sockets with its reactor).
    pub(crate) fn new(caller: BoundPair, callee: BoundPair) -> io::Result<Sockets> {
        let BoundPair {
            rtp: a_rtp,
            rtcp: a_rtcp,
            lease: a_lease,
        } = caller;
        let BoundPair {
            rtp: b_rtp,
            rtcp: b_rtcp,
            lease: b_lease,
        } = callee;
        let tokio_socket = |s: std::net::UdpSocket| {
            s.set_nonblocking(true)?;
            UdpSocket::from_std(s)
        };
        Ok(Sockets {
            socks: [
                [tokio_socket(a_rtp)?, tokio_socket(a_rtcp)?],
                [tokio_socket(b_rtp)?, tokio_socket(b_rtcp)?],
            ],
            _leases: [a_lease, b_lease],
        })
    }

    fn get(&self, side: Side, component: Component) -> &UdpSocket {
        &self.socks[side.index()][component.index()]
    }
}

pub(crate) struct Relay {
    pub(crate) label: String,
    pub(crate) sockets: Sockets,
    pub(crate) plans: watch::Receiver<Option<MediaPlan>>,
    pub(crate) stats: watch::Sender<BridgeStats>,
    pub(crate) on_event: EventSink,
    pub(crate) rtp_timeout: Duration,
}

/// The bridge with what was last reported from it. Reporting on drop means the counters
/// reach the metrics even when the task is aborted (the session was dropped) mid-sleep.
struct Reported {
    bridge: Bridge,
    last: BridgeStats,
    out: watch::Sender<BridgeStats>,
}

impl Reported {
    fn report(&mut self) {
        let now = self.bridge.stats();
        let (a, b) = (now.relayed_total(), self.last.relayed_total());
        metrics::counter!("pbx_media_packets_relayed_total").increment(a.packets - b.packets);
        metrics::counter!("pbx_media_bytes_relayed_total").increment(a.bytes - b.bytes);
        for reason in DropReason::ALL {
            let d = now.dropped(reason) - self.last.dropped(reason);
            if d > 0 {
                metrics::counter!("pbx_media_dropped_total", "reason" => reason.as_str())
                    .increment(d);
            }
        }
        let d = now.srtp_auth_failures() - self.last.srtp_auth_failures();
        if d > 0 {
            metrics::counter!("pbx_media_srtp_failures_total").increment(d);
        }
        self.last = now.clone();
        self.out.send_replace(now.clone());
    }
}

impl Drop for Reported {
    fn drop(&mut self) {
        self.report();
    }
}

impl Relay {
    pub(crate) async fn run(self) {
        let Relay {
            label,
            sockets,
            mut plans,
            stats,
            on_event,
            rtp_timeout,
        } = self;
        let mut state = Reported {
            bridge: Bridge::new(Instant::now()),
            last: BridgeStats::default(),
            out: stats,
        };
        let mut buf = [0u8; BUF];
        // Check the timeout a few times per period, at most once a second.
        let period = (rtp_timeout / 4).clamp(Duration::from_millis(50), Duration::from_secs(1));
        let mut tick = tokio::time::interval(period);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut timed_out = false;
        let s = &sockets;
        loop {
            let (ready, side, component) = tokio::select! {
                r = s.get(Side::Caller, Component::Rtp).readable() => (r, Side::Caller, Component::Rtp),
                r = s.get(Side::Caller, Component::Rtcp).readable() => (r, Side::Caller, Component::Rtcp),
                r = s.get(Side::Callee, Component::Rtp).readable() => (r, Side::Callee, Component::Rtp),
                r = s.get(Side::Callee, Component::Rtcp).readable() => (r, Side::Callee, Component::Rtcp),
                changed = plans.changed() => {
                    if changed.is_err() {
                        break; // the session is gone
                    }
                    let plan = plans.borrow_and_update().clone();
                    if let Some(plan) = plan
                        && let Err(e) = state.bridge.apply(Instant::now(), &plan)
                    {
                        tracing::warn!(call = %label, error = %e, "media plan refused");
                    }
                    continue;
                }
                _ = tick.tick() => {
                    let idle = state.bridge.idle_for(Instant::now());
                    if !timed_out && idle.is_some_and(|d| d >= rtp_timeout) {
                        timed_out = true;
                        tracing::info!(call = %label, "no RTP for {rtp_timeout:?}");
                        on_event(MediaEvent::Timeout);
                    }
                    state.report();
                    continue;
                }
            };
            if ready.is_err() {
                break; // the runtime's reactor is gone
            }
            relay_batch(s, &mut state.bridge, &mut buf, side, component);
        }
    }
}

/// Reads what is waiting on one socket (up to [`BATCH`]) and relays it.
fn relay_batch(
    sockets: &Sockets,
    bridge: &mut Bridge,
    buf: &mut [u8; BUF],
    side: Side,
    component: Component,
) {
    let sock = sockets.get(side, component);
    let now = Instant::now();
    for _ in 0..BATCH {
        let (len, source) = match sock.try_recv_from(&mut buf[..BUF - SPARE]) {
            Ok(got) => got,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
            // ICMP errors surfacing on the socket and the like: skip, keep reading.
            Err(_) => continue,
        };
        if let Verdict::Forward {
            side: to_side,
            component: to_component,
            to,
            len,
        } = bridge.handle_packet(now, side, component, source, buf, len)
            && let Err(e) = sockets
                .get(to_side, to_component)
                .try_send_to(&buf[..len], to)
        {
            // A full send buffer drops the packet rather than stalling both directions;
            // RTP is loss-tolerant, and a late packet is as good as lost.
            metrics::counter!("pbx_media_dropped_total", "reason" => "send_error").increment(1);
            tracing::trace!(%to, error = %e, "media send failed");
        }
    }
}
