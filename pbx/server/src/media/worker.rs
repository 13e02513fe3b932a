//! A relay worker: one OS thread that owns the sockets and media sessions of many calls and
//! sleeps on one level-triggered epoll set.
//!
//! Why not a tokio task per call: measured, each relayed packet cost about 11 µs of CPU
//! there, a quarter of it in the runtime (waking the task, polling its `select!` of six
//! branches, an extra `recvfrom` to see `EAGAIN`). Here a packet costs one `recvfrom`, the
//! bridge, and one `sendto`, and many packets share one `epoll_wait`
//! (docs/performance.md, "Media relay").
//!
//! Calls come and go through a command queue and an eventfd; the worker never blocks on
//! anything but `epoll_wait`, whose timeout is the earliest of the sessions' deadlines (a
//! player's next frame, a recorder's silence, the RTP timeout: a heap of `(deadline, call)`,
//! see [`Timers`]) and the next housekeeping tick (counters to the metrics and to each
//! session).

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::io;
use std::net::{SocketAddr, UdpSocket};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use pbx_media::relay::{BridgeStats, Component, DropReason, LatchPolicy, Verdict};
use pbx_media::session::{self, Event, MediaSession as Session};
use pbx_media::webrtc::DtlsIdentity;
use pbx_media::{MediaPlan, Side};
use tokio::sync::watch;

use super::lateness::{Lateness, LocalLateness};
use super::poller::{Poller, Waker};
use super::ports::{BoundPair, PortLease};
use super::{EndpointSink, EventSink, MediaEvent};

/// Receive buffer size. RTP on real networks stays under the 1500-byte MTU; the bridge
/// needs room after the datagram for an SRTP tag and SRTCP index (at most 20 bytes).
const BUF: usize = 2048;
/// Kept free after the datagram for that tag.
const SPARE: usize = 64;
/// Readiness events taken per `epoll_wait`.
const EVENTS: usize = 256;
/// The epoll key of the command eventfd (the poller keeps `u64::MAX - 1` for its timer);
/// socket keys are `slot << 2 | side << 1 | component`.
const WAKER_KEY: u64 = u64::MAX;

fn socket_key(slot: usize, side: Side, component: Component) -> u64 {
    (slot as u64) << 2 | (side.index() as u64) << 1 | component.index() as u64
}

fn socket_of(key: u64) -> (usize, Side, Component) {
    let side = if key & 2 == 0 {
        Side::Caller
    } else {
        Side::Callee
    };
    let component = if key & 1 == 0 {
        Component::Rtp
    } else {
        Component::Rtcp
    };
    ((key >> 2) as usize, side, component)
}

/// The four sockets of a call, `[leg][component]`, and their port leases. Field order
/// matters: the sockets close before the leases give the ports back.
pub(crate) struct Sockets {
    socks: [[UdpSocket; 2]; 2],
    _leases: [PortLease; 2],
}

impl Sockets {
    pub(crate) fn new(caller: BoundPair, callee: BoundPair) -> io::Result<Sockets> {
        for s in [&caller.rtp, &caller.rtcp, &callee.rtp, &callee.rtcp] {
            s.set_nonblocking(true)?;
        }
        Ok(Sockets {
            socks: [[caller.rtp, caller.rtcp], [callee.rtp, callee.rtcp]],
            _leases: [caller.lease, callee.lease],
        })
    }

    fn get(&self, side: Side, component: Component) -> &UdpSocket {
        &self.socks[side.index()][component.index()]
    }

    fn all(&self) -> impl Iterator<Item = (Side, Component, &UdpSocket)> {
        [Side::Caller, Side::Callee]
            .into_iter()
            .flat_map(move |side| {
                [Component::Rtp, Component::Rtcp]
                    .into_iter()
                    .map(move |c| (side, c, self.get(side, c)))
            })
    }
}

/// What a session hands its worker when it is allocated.
pub(crate) struct CallMedia {
    pub(crate) id: u64,
    pub(crate) label: String,
    pub(crate) sockets: Sockets,
    pub(crate) stats: watch::Sender<BridgeStats>,
    pub(crate) on_event: EventSink,
    pub(crate) on_endpoint: EndpointSink,
}

pub(crate) enum Command {
    Add(Box<CallMedia>),
    Apply(u64, Box<MediaPlan>),
    Session(u64, Box<session::Command>),
    Remove(u64),
    /// Run at real-time priority from now on (`[rtp] realtime`).
    Realtime,
    /// Latch the plain legs of calls added from now on this way (`[rtp] strict_rtp`).
    Latching(LatchPolicy),
    Stop,
}

/// The sending side of a worker. Shared by the service and its sessions; when the last one
/// goes, the worker stops.
pub(crate) struct WorkerHandle {
    commands: mpsc::Sender<Command>,
    waker: Arc<Waker>,
    /// Calls on this worker, for placing new ones on the least loaded.
    pub(crate) load: std::sync::atomic::AtomicUsize,
}

impl WorkerHandle {
    pub(crate) fn send(&self, command: Command) {
        if self.commands.send(command).is_ok() {
            self.waker.wake();
        }
    }
}

impl Drop for WorkerHandle {
    fn drop(&mut self) {
        self.send(Command::Stop);
    }
}

/// Starts worker `index` on a thread of its own.
pub(crate) fn spawn(
    index: usize,
    rtp_timeout: Duration,
    lateness: Arc<Lateness>,
    dtls: Arc<DtlsIdentity>,
) -> io::Result<Arc<WorkerHandle>> {
    let poller = Poller::new()?;
    let waker = Arc::new(Waker::new()?);
    poller.add(waker.fd(), WAKER_KEY)?;
    let (tx, rx) = mpsc::channel();
    let worker = Worker {
        poller,
        waker: Arc::clone(&waker),
        commands: rx,
        slots: Vec::new(),
        free: Vec::new(),
        by_id: HashMap::new(),
        timers: BinaryHeap::new(),
        rtp_timeout,
        latching: LatchPolicy::default(),
        buf: Box::new([0; BUF]),
        lateness: LocalLateness::default(),
        shared_lateness: lateness,
        dtls,
    };
    std::thread::Builder::new()
        .name(format!("pbx-media-{index}"))
        .spawn(move || worker.run())?;
    Ok(Arc::new(WorkerHandle {
        commands: tx,
        waker,
        load: Default::default(),
    }))
}

/// One call on a worker.
struct Slot {
    call: CallMedia,
    session: Session,
    /// Counters as of the last report, to turn totals into metric increments.
    reported: BridgeStats,
    /// The deadline this call has in the heap; entries that differ are stale.
    armed: Option<Instant>,
}

/// The calls' deadlines, earliest first. Entries are never removed, only outdated: a call
/// whose deadline moved earlier gets a new entry, and one that moved later (the RTP timeout,
/// after every packet) keeps its old one, which wakes the worker once to find nothing due and
/// re-arm. So a relayed packet never touches the heap.
type Timers = BinaryHeap<Reverse<(Instant, u64)>>;

struct Worker {
    poller: Poller,
    waker: Arc<Waker>,
    commands: mpsc::Receiver<Command>,
    slots: Vec<Option<Slot>>,
    free: Vec<usize>,
    by_id: HashMap<u64, usize>,
    timers: Timers,
    rtp_timeout: Duration,
    /// How new calls' plain legs latch (`[rtp] strict_rtp`, `rtp_probation`).
    latching: LatchPolicy,
    buf: Box<[u8; BUF]>,
    /// How late deadlines were handled since the last tick.
    lateness: LocalLateness,
    shared_lateness: Arc<Lateness>,
    /// The PBX's DTLS certificate, for the WebRTC legs of every session.
    dtls: Arc<DtlsIdentity>,
}

impl Worker {
    fn run(mut self) {
        let mut events = Vec::with_capacity(EVENTS);
        // Counters a few times per RTP timeout, at most once a second.
        let period =
            (self.rtp_timeout / 4).clamp(Duration::from_millis(50), Duration::from_secs(1));
        let epoch = Instant::now();
        let mut next_tick = epoch + period;
        loop {
            let now = Instant::now();
            if now >= next_tick {
                self.tick();
                next_tick = now + period;
            }
            self.run_timers(now);
            let wake = match self.timers.peek() {
                Some(Reverse((at, _))) => on_grid(next_tick.min(*at), epoch),
                None => next_tick,
            };
            if let Err(e) = self.poller.wait(&mut events, now, wake) {
                // Only a broken epoll fd gets here; nothing sensible is left to do.
                tracing::error!(error = %e, "media worker: epoll_wait failed, relay stopped");
                return;
            }
            let now = Instant::now();
            // Commands before sockets. The shell hands a call its plan before it sends the
            // 200 that makes a phone start sending (RFC 3264 §6), so a packet read in this
            // wake-up may well be the answer to a plan queued in it: applied first, it finds
            // the plan. The queue is drained even when the eventfd is not among the events
            // taken (more than `EVENTS` ready): a pending command costs nothing to find.
            if events.iter().any(|e| e.data.u64() == WAKER_KEY) {
                // Reset before the drain: a command queued after it wakes the next wait.
                self.waker.reset();
            }
            if !self.run_commands(now) {
                return;
            }
            for key in events.iter().map(|e| e.data.u64()) {
                if key != WAKER_KEY {
                    self.relay(key, now);
                }
            }
        }
    }

    /// Relays one datagram from the socket `key` names. Level-triggered polling reports the
    /// socket again if more are waiting.
    fn relay(&mut self, key: u64, now: Instant) {
        let (index, side, component) = socket_of(key);
        self.guarded(index, |slot, buf, timers| {
            relay_one(slot, side, component, buf, now);
            drain(slot, buf, timers, now);
        });
    }

    /// Runs `f` on slot `index`. A bug in a session must not take the other calls' audio
    /// with it: that call loses its media and is ended; the worker goes on.
    fn guarded(&mut self, index: usize, f: impl FnOnce(&mut Slot, &mut [u8; BUF], &mut Timers)) {
        // A slot removed earlier in this batch: its socket is closed, nothing to read.
        let Some(Some(slot)) = self.slots.get_mut(index) else {
            return;
        };
        let (buf, timers) = (&mut self.buf, &mut self.timers);
        if catch_unwind(AssertUnwindSafe(|| f(slot, buf, timers))).is_err() {
            tracing::error!(call = %slot.call.label, "media relay failed; ending the call");
            (slot.call.on_event)(MediaEvent::Failed);
            let id = slot.call.id;
            self.remove(id);
        }
    }

    /// Acts on the deadlines that are due: the sessions' timers, then what they send.
    fn run_timers(&mut self, now: Instant) {
        while let Some(&Reverse((at, id))) = self.timers.peek() {
            if at > now {
                return;
            }
            self.timers.pop();
            let Some(&index) = self.by_id.get(&id) else {
                continue; // the call ended
            };
            if matches!(self.slots.get(index), Some(Some(slot)) if slot.armed == Some(at)) {
                self.lateness.record(now.saturating_duration_since(at));
            }
            self.guarded(index, |slot, buf, timers| {
                if slot.armed != Some(at) {
                    return; // outdated entry
                }
                slot.armed = None;
                slot.session.handle_timeout(now);
                drain(slot, buf, timers, now);
            });
        }
    }

    /// Applies queued commands; false when the worker should stop.
    fn run_commands(&mut self, now: Instant) -> bool {
        loop {
            match self.commands.try_recv() {
                Ok(Command::Add(call)) => self.add(*call, now),
                Ok(Command::Apply(id, plan)) => self.with_call(id, now, |slot| {
                    if let Err(e) = slot.session.apply(now, &plan) {
                        tracing::warn!(call = %slot.call.label, error = %e, "media plan refused");
                    }
                }),
                Ok(Command::Session(id, command)) => self.with_call(id, now, |slot| {
                    if let Err(e) = slot.session.handle_command(now, *command) {
                        tracing::warn!(call = %slot.call.label, error = %e, "media command refused");
                    }
                }),
                Ok(Command::Remove(id)) => self.remove(id),
                Ok(Command::Realtime) => super::realtime::raise_current_thread(
                    std::thread::current().name().unwrap_or("pbx-media"),
                ),
                Ok(Command::Latching(policy)) => self.latching = policy,
                Ok(Command::Stop) | Err(mpsc::TryRecvError::Disconnected) => return false,
                Err(mpsc::TryRecvError::Empty) => return true,
            }
        }
    }

    fn add(&mut self, call: CallMedia, now: Instant) {
        let index = self.free.pop().unwrap_or(self.slots.len());
        for (side, component, sock) in call.sockets.all() {
            if let Err(e) = self.poller.add(sock, socket_key(index, side, component)) {
                // Out of kernel memory for epoll items: the call has no audio; say so.
                tracing::error!(call = %call.label, error = %e, "media socket not watched");
            }
        }
        self.by_id.insert(call.id, index);
        let mut slot = Slot {
            call,
            session: Session::relay(now)
                .with_rtp_timeout(self.rtp_timeout)
                .with_latching(self.latching)
                .with_webrtc(self.dtls.clone()),
            reported: BridgeStats::default(),
            armed: None,
        };
        arm(&mut slot, &mut self.timers);
        if index == self.slots.len() {
            self.slots.push(Some(slot));
        } else {
            self.slots[index] = Some(slot);
        }
    }

    fn remove(&mut self, id: u64) {
        let Some(index) = self.by_id.remove(&id) else {
            return;
        };
        let Some(mut slot) = self.slots.get_mut(index).and_then(Option::take) else {
            return;
        };
        // A recording in progress (the caller hung up on voicemail) ends here: its last
        // audio goes to the shell, which keeps the message.
        slot.session.stop_recorders();
        while let Some(event) = slot.session.poll_event() {
            if matches!(
                event,
                Event::RecorderAudio { .. } | Event::RecorderFinished { .. }
            ) {
                (slot.call.on_endpoint)(event);
            }
        }
        let mut totals = Totals::default();
        report(&mut slot, &mut totals);
        totals.flush();
        for (_, _, sock) in slot.call.sockets.all() {
            let _ = self.poller.remove(sock);
        }
        self.free.push(index);
        // Dropping the slot closes the sockets, then returns the ports.
    }

    /// Runs `f` on call `id`, then sends what it made the session send and re-arms.
    fn with_call(&mut self, id: u64, now: Instant, f: impl FnOnce(&mut Slot)) {
        let Some(&index) = self.by_id.get(&id) else {
            return;
        };
        self.guarded(index, |slot, buf, timers| {
            f(slot);
            drain(slot, buf, timers, now);
        });
    }

    /// Housekeeping: counters to the metrics and the sessions.
    fn tick(&mut self) {
        let mut totals = Totals::default();
        for slot in self.slots.iter_mut().flatten() {
            report(slot, &mut totals);
        }
        totals.flush();
        self.lateness.flush(&self.shared_lateness);
    }
}

/// Wake-ups fall on a 1 ms grid from the worker's start. Many sessions' deadlines then share
/// one wake-up (a worker with 500 players wakes at most 1,000 times a second, not 25,000),
/// and each player's frames, due every 20 ms, always meet the grid at the same offset: a
/// constant delay under 1 ms, no jitter (docs/performance.md, "Voicemail recordings and IVR
/// playback").
const GRID: Duration = Duration::from_millis(1);

fn on_grid(at: Instant, epoch: Instant) -> Instant {
    let since = at.saturating_duration_since(epoch).as_nanos();
    let grid = GRID.as_nanos();
    u64::try_from(since.div_ceil(grid) * grid).map_or(at, |ns| epoch + Duration::from_nanos(ns))
}

/// Sends what the session makes itself (a player's frames), hands its events to the call,
/// and puts its next deadline in the heap if it moved earlier. Cheap when there is nothing:
/// a relayed packet costs three empty polls and a comparison here.
fn drain(slot: &mut Slot, buf: &mut [u8; BUF], timers: &mut Timers, now: Instant) {
    while let Some(t) = slot.session.poll_transmit(now, &mut buf[..]) {
        send(&slot.call.sockets, t.side, t.component, &buf[..t.len], t.to);
    }
    while let Some(event) = slot.session.poll_event() {
        match event {
            Event::MediaTimeout { idle } => {
                tracing::info!(call = %slot.call.label, "no RTP for {idle:?}");
                (slot.call.on_event)(MediaEvent::Timeout);
            }
            // RFC 7675 §5.1: the browser is gone; the call ends as after a media timeout.
            Event::ConsentLost { side } => {
                tracing::info!(call = %slot.call.label, ?side, "WebRTC consent expired");
                (slot.call.on_event)(MediaEvent::Timeout);
            }
            // A certificate that does not match the SDP's fingerprint, or a failed
            // handshake: the leg can never carry media, so the call ends.
            Event::WebRtcFailed { side, reason } => {
                tracing::warn!(call = %slot.call.label, ?side, %reason, "WebRTC leg failed");
                (slot.call.on_event)(MediaEvent::Failed);
            }
            Event::SrtpFailures { total } => {
                tracing::debug!(call = %slot.call.label, total, "SRTP authentication failures");
            }
            other => (slot.call.on_endpoint)(other),
        }
    }
    arm(slot, timers);
}

fn arm(slot: &mut Slot, timers: &mut Timers) {
    if let Some(at) = slot.session.poll_timeout()
        && slot.armed.is_none_or(|armed| at < armed)
    {
        slot.armed = Some(at);
        timers.push(Reverse((at, slot.call.id)));
    }
}

fn send(sockets: &Sockets, side: Side, component: Component, bytes: &[u8], to: SocketAddr) {
    if let Err(e) = sockets.get(side, component).send_to(bytes, to) {
        // A full send buffer drops the packet rather than stalling the worker; RTP is
        // loss-tolerant, and a late packet is as good as lost.
        metrics::counter!("pbx_media_dropped_total", "reason" => "send_error").increment(1);
        tracing::trace!(%to, error = %e, "media send failed");
    }
}

/// Reads one datagram and sends it where the bridge says.
fn relay_one(slot: &mut Slot, side: Side, component: Component, buf: &mut [u8; BUF], now: Instant) {
    let sock = slot.call.sockets.get(side, component);
    let (len, source) = match sock.recv_from(&mut buf[..BUF - SPARE]) {
        Ok(got) => got,
        // WouldBlock (another reader cannot exist, but be safe) or an ICMP error surfacing
        // on the socket, which reading clears.
        Err(_) => return,
    };
    if let Verdict::Forward {
        side: to_side,
        component: to_component,
        to,
        len,
    } = slot
        .session
        .handle_datagram(now, side, component, source, buf, len)
    {
        send(&slot.call.sockets, to_side, to_component, &buf[..len], to);
    }
}

/// Metric increments gathered over the calls of one tick.
#[derive(Default)]
struct Totals {
    packets: u64,
    bytes: u64,
    dropped: [u64; DropReason::ALL.len()],
    srtp_failures: u64,
}

impl Totals {
    fn flush(&self) {
        metrics::counter!("pbx_media_packets_relayed_total").increment(self.packets);
        metrics::counter!("pbx_media_bytes_relayed_total").increment(self.bytes);
        for (reason, &n) in DropReason::ALL.iter().zip(&self.dropped) {
            if n > 0 {
                metrics::counter!("pbx_media_dropped_total", "reason" => reason.as_str())
                    .increment(n);
            }
        }
        if self.srtp_failures > 0 {
            metrics::counter!("pbx_media_srtp_failures_total").increment(self.srtp_failures);
        }
    }
}

/// Adds what changed since the last report to `totals` and publishes the counters to the
/// session.
fn report(slot: &mut Slot, totals: &mut Totals) {
    let now = slot.session.stats();
    let (a, b) = (now.relayed_total(), slot.reported.relayed_total());
    totals.packets += a.packets - b.packets;
    totals.bytes += a.bytes - b.bytes;
    for (i, reason) in DropReason::ALL.iter().enumerate() {
        totals.dropped[i] += now.dropped(*reason) - slot.reported.dropped(*reason);
    }
    totals.srtp_failures += now.srtp_auth_failures() - slot.reported.srtp_auth_failures();
    slot.reported = now.clone();
    slot.call.stats.send_replace(now.clone());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deadlines_round_up_to_the_grid_and_keep_their_offset() {
        let epoch = Instant::now();
        let at = |us: u64| epoch + Duration::from_micros(us);
        assert_eq!(on_grid(at(0), epoch), at(0));
        assert_eq!(on_grid(at(1), epoch), at(1_000));
        assert_eq!(on_grid(at(1_000), epoch), at(1_000));
        assert_eq!(on_grid(at(2_400), epoch), at(3_000));
        // A player's frames 20 ms apart are each delayed by the same 600 µs.
        for frame in 0..5 {
            let due = at(2_400 + frame * 20_000);
            assert_eq!(on_grid(due, epoch) - due, Duration::from_micros(600));
        }
        // A deadline already past is not moved earlier than itself.
        let before = epoch - Duration::from_millis(3);
        assert_eq!(on_grid(before, epoch), epoch);
    }
}
