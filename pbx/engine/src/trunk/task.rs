//! One trunk's background task, sans-IO: its registration ([`Registration`]) or its OPTIONS
//! pings ([`Pinger`]), its own client transactions, and the trunk's addresses in the order
//! RFC 3263 gave them. The shell feeds it time, responses, failed sends and fresh DNS
//! answers, and carries out what [`TrunkTask::poll_output`] returns: messages to send, what
//! to report, and when to ask DNS again.

use super::ping::{Pinger, Reachability};
use super::register::{Event, Registration, State};
use crate::peer::Peer;
use crate::qualify;
use pbx_sip::message::{Request, Response};
use pbx_sip::transaction::{TransactionEvent, TransactionKey, TransactionLayer, Transmit};
use rand::rngs::StdRng;
use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::Instant;

/// One address of the trunk, and this host's address toward it (Via and Contact name it).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Target {
    pub remote: SocketAddr,
    pub local: SocketAddr,
}

/// What the pings need to build an OPTIONS (the qualify request, aimed at the trunk).
#[derive(Clone, Debug)]
pub struct PingConfig {
    /// The trunk's name (the OPTIONS' target label in logs).
    pub name: String,
    /// `sip:host[:port]` of the trunk: the Request-URI and To.
    pub contact: String,
    pub domain: String,
    pub user_agent: String,
}

/// What the shell is to do.
#[derive(Debug)]
pub enum TaskOutput {
    /// Send this; a send that fails later is reported back with
    /// [`TrunkTask::handle_transport_error`] and the key.
    Transmit(Box<Transmit<Peer>>),
    /// The registration learnt something (log, metrics, the trunk's state).
    Registration(Event),
    /// A ping had its answer (or none): the trunk's reachability `before` and now.
    Ping {
        before: Reachability,
        state: Reachability,
        why: String,
    },
    /// Every address failed: ask DNS again and hand the answer to [`TrunkTask::set_targets`]
    /// (a provider may have moved).
    Relocate,
}

enum Machine {
    Register(Box<Registration>),
    Ping(Pinger, PingConfig),
}

pub struct TrunkTask {
    machine: Machine,
    layer: TransactionLayer<Peer>,
    targets: Vec<Target>,
    /// The transport and the first target's addresses: where a request goes when its
    /// target is not (or no longer) in `targets`.
    base: Peer,
    call_id: String,
    rng: StdRng,
    stopping: bool,
    outputs: VecDeque<TaskOutput>,
}

impl TrunkTask {
    /// A task that registers with `registration` (already built with the same targets).
    pub fn register(
        mut registration: Registration,
        base: Peer,
        targets: Vec<Target>,
        rng: StdRng,
        now: Instant,
    ) -> TrunkTask {
        registration.start();
        let call_id = registration.call_id().to_string();
        let mut task = TrunkTask::new(
            Machine::Register(Box::new(registration)),
            base,
            targets,
            call_id,
            rng,
        );
        task.drive(now);
        task
    }

    /// A task that pings the trunk every `interval`, the first ping at `now`.
    pub fn ping(
        config: PingConfig,
        interval: std::time::Duration,
        base: Peer,
        targets: Vec<Target>,
        call_id: String,
        rng: StdRng,
        now: Instant,
    ) -> TrunkTask {
        let mut pinger = Pinger::new(interval, now);
        pinger.set_targets(targets.len());
        let mut task = TrunkTask::new(Machine::Ping(pinger, config), base, targets, call_id, rng);
        task.drive(now);
        task
    }

    fn new(
        machine: Machine,
        base: Peer,
        targets: Vec<Target>,
        call_id: String,
        rng: StdRng,
    ) -> TrunkTask {
        TrunkTask {
            machine,
            layer: TransactionLayer::new(Default::default()),
            targets,
            base,
            call_id,
            rng,
            stopping: false,
            outputs: VecDeque::new(),
        }
    }

    /// The Call-ID of every request of this task (responses are routed to it by it).
    pub fn call_id(&self) -> &str {
        &self.call_id
    }

    pub fn handle_timeout(&mut self, now: Instant) {
        self.layer.handle_timeout(now);
        if let Machine::Register(reg) = &mut self.machine {
            reg.handle_timeout(now);
        }
        self.drive(now);
    }

    pub fn handle_response(&mut self, now: Instant, response: Response) {
        let _ = self.layer.handle_response(now, response);
        self.drive(now);
    }

    /// A send failed after it was handed over (a connection that could not be made):
    /// RFC 3261 §17.1.4, as a failed UDP send.
    pub fn handle_transport_error(&mut self, now: Instant, key: &TransactionKey) {
        self.layer.handle_transport_error(now, key);
        self.drive(now);
    }

    /// The PBX stops: a registration removes its binding (`Expires: 0`) first.
    pub fn stop(&mut self, now: Instant) {
        if self.stopping {
            return;
        }
        self.stopping = true;
        if let Machine::Register(reg) = &mut self.machine {
            reg.unregister(now);
        }
        self.drive(now);
    }

    /// What DNS says now ([`TaskOutput::Relocate`]). An empty or unchanged answer keeps the
    /// addresses; a new one starts again at its first.
    pub fn set_targets(&mut self, now: Instant, fresh: Vec<Target>) {
        if fresh.is_empty() || fresh == self.targets {
            return;
        }
        match &mut self.machine {
            Machine::Register(reg) => reg.set_targets(fresh.iter().map(|t| t.remote).collect()),
            Machine::Ping(pinger, _) => pinger.set_targets(fresh.len()),
        }
        self.targets = fresh;
        self.drive(now);
    }

    pub fn is_stopping(&self) -> bool {
        self.stopping
    }

    /// Whether the task has ended (stopped, and a registration's removal done).
    pub fn is_done(&self) -> bool {
        self.stopping
            && match &self.machine {
                Machine::Register(reg) => reg.state() == State::Idle,
                Machine::Ping(..) => true,
            }
    }

    #[must_use]
    pub fn poll_output(&mut self) -> Option<TaskOutput> {
        self.outputs.pop_front()
    }

    /// When to call [`TrunkTask::handle_timeout`] next.
    #[must_use]
    pub fn poll_timeout(&mut self) -> Option<Instant> {
        let machine = match &self.machine {
            Machine::Register(reg) => reg.poll_timeout(),
            Machine::Ping(_, _) if self.stopping => None,
            Machine::Ping(pinger, _) => pinger.poll_timeout(),
        };
        [machine, self.layer.poll_timeout()]
            .into_iter()
            .flatten()
            .min()
    }

    /// The peer for `remote`: its own local address when it is one of the targets.
    fn peer_toward(&self, remote: SocketAddr) -> Peer {
        let local = self
            .targets
            .iter()
            .find(|t| t.remote == remote)
            .map_or(self.base.local, |t| t.local);
        Peer {
            remote,
            local,
            ..self.base.clone()
        }
    }

    /// Moves requests from the machine to the transactions, messages out, the transactions'
    /// events back to the machine and what the machine learnt out, until nothing moves.
    fn drive(&mut self, now: Instant) {
        loop {
            let mut busy = false;
            for (request, to) in self.requests(now) {
                busy = true;
                let reliable = to.kind.is_reliable();
                if let Err(error) = self.layer.send_request(now, request, to, reliable) {
                    tracing::debug!(%error, "request to a trunk not sent");
                }
            }
            while let Some(transmit) = self.layer.poll_transmit() {
                busy = true;
                self.outputs
                    .push_back(TaskOutput::Transmit(Box::new(transmit)));
            }
            while let Some((_, event)) = self.layer.poll_event() {
                busy = true;
                self.transaction_event(now, event);
            }
            if let Machine::Register(reg) = &mut self.machine {
                while let Some(event) = reg.poll_event() {
                    busy = true;
                    // The next attempt uses what DNS says then (a provider may move).
                    let failed = matches!(event, Event::Failed { .. });
                    self.outputs.push_back(TaskOutput::Registration(event));
                    if failed {
                        self.outputs.push_back(TaskOutput::Relocate);
                    }
                }
            }
            if !busy {
                return;
            }
        }
    }

    /// The requests the machine has for the transactions now.
    fn requests(&mut self, now: Instant) -> Vec<(Request, Peer)> {
        let mut requests = Vec::new();
        match &mut self.machine {
            Machine::Register(reg) => {
                let mut pending = Vec::new();
                while let Some(next) = reg.poll_request() {
                    pending.push(next);
                }
                for (request, to) in pending {
                    requests.push((request, self.peer_toward(to)));
                }
            }
            Machine::Ping(pinger, config) => {
                if self.stopping || !pinger.handle_timeout(now) {
                    return requests;
                }
                // The target the pinger is at (it moves on after a failed ping).
                let to = match self.targets.get(pinger.target()) {
                    Some(target) => target.remote,
                    None => self.base.remote,
                };
                let config = config.clone();
                let to = self.peer_toward(to);
                let target = qualify::Target {
                    aor: config.name.clone(),
                    contact: config.contact.clone(),
                    call_id: self.call_id.clone(),
                    peer: to.clone(),
                };
                if let Some(options) = qualify::options_request(
                    &target,
                    &config.domain,
                    &config.user_agent,
                    &mut self.rng,
                ) {
                    requests.push((options, to));
                }
            }
        }
        requests
    }

    fn transaction_event(&mut self, now: Instant, event: TransactionEvent) {
        match (event, &mut self.machine) {
            (TransactionEvent::Response(response), Machine::Register(reg)) => {
                reg.handle_response(now, &response)
            }
            (TransactionEvent::Response(response), Machine::Ping(pinger, _)) => {
                if response.status.is_final() {
                    let before = pinger.state();
                    let state = pinger.handle_response(now, response.status);
                    let why = format!("OPTIONS answered {}", response.status.0);
                    self.ping_report(before, state, why);
                }
            }
            (
                TransactionEvent::Timeout | TransactionEvent::TransportError,
                Machine::Register(reg),
            ) => reg.handle_no_answer(now),
            (
                TransactionEvent::Timeout | TransactionEvent::TransportError,
                Machine::Ping(pinger, _),
            ) => {
                let before = pinger.state();
                let state = pinger.handle_no_answer(now);
                self.ping_report(before, state, "no answer to OPTIONS".to_string());
            }
            (TransactionEvent::Terminated, _) => {}
        }
    }

    /// Reports a ping's outcome; after every target failed, the next round uses what DNS
    /// says then.
    fn ping_report(&mut self, before: Reachability, state: Reachability, why: String) {
        self.outputs
            .push_back(TaskOutput::Ping { before, state, why });
        if let Machine::Ping(pinger, _) = &self.machine
            && pinger.state() == Reachability::Down
            && pinger.target() == 0
        {
            self.outputs.push_back(TaskOutput::Relocate);
        }
    }
}
