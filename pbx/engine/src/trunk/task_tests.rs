//! A trunk's task in virtual time: where its requests go, what it reports, and when it
//! asks DNS again.

#![allow(clippy::disallowed_methods)] // `Instant::now()`: one fixed base for virtual time

use super::ping::Reachability;
use super::register::{Event, RegisterConfig, Registration};
use super::register_tests::reply;
use super::task::{PingConfig, Target, TaskOutput, TrunkTask};
use crate::peer::{Peer, TransportKind};
use pbx_sip::message::{HeaderName, Message, Request};
use pbx_sip::method::Method;
use rand::SeedableRng;
use rand::rngs::StdRng;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

const PING_EVERY: Duration = Duration::from_secs(30);
/// Timer F over UDP (64 × T1): a request nobody answers has failed by then.
const TIMER_F: Duration = Duration::from_secs(33);

fn addr(text: &str) -> SocketAddr {
    text.parse().unwrap_or_else(|_| panic!("{text}"))
}

fn target(remote: &str, local: &str) -> Target {
    Target {
        remote: addr(remote),
        local: addr(local),
    }
}

fn base(first: Target) -> Peer {
    Peer {
        kind: TransportKind::Udp,
        remote: first.remote,
        local: first.local,
        conn: None,
    }
}

/// What a step produced, taken apart.
#[derive(Default)]
struct Outputs {
    sent: Vec<(Request, Peer)>,
    events: Vec<Event>,
    pings: Vec<(Reachability, Reachability, String)>,
    relocate: bool,
}

fn drain(task: &mut TrunkTask) -> Outputs {
    let mut out = Outputs::default();
    while let Some(output) = task.poll_output() {
        match output {
            TaskOutput::Transmit(t) => match t.message {
                Message::Request(request) => out.sent.push((request, t.to)),
                Message::Response(_) => panic!("a task sends requests only"),
            },
            TaskOutput::Registration(event) => out.events.push(event),
            TaskOutput::Ping { before, state, why } => out.pings.push((before, state, why)),
            TaskOutput::Relocate => out.relocate = true,
        }
    }
    out
}

/// Runs the task's timers up to `until`, gathering what it produced.
fn run_until(task: &mut TrunkTask, until: Instant) -> Outputs {
    let mut all = Outputs::default();
    while let Some(due) = task.poll_timeout().filter(|due| *due <= until) {
        task.handle_timeout(due);
        let out = drain(task);
        all.sent.extend(out.sent);
        all.events.extend(out.events);
        all.pings.extend(out.pings);
        all.relocate |= out.relocate;
    }
    all
}

/// Runs the task's timers one by one until it sends something to `remote`; that request and
/// the time it went.
fn run_until_sent(task: &mut TrunkTask, remote: SocketAddr) -> (Request, Instant) {
    for _ in 0..1000 {
        let due = task
            .poll_timeout()
            .unwrap_or_else(|| panic!("nothing more to do"));
        task.handle_timeout(due);
        if let Some((request, _)) = sent_to(&drain(task), remote).into_iter().next() {
            return (request, due);
        }
    }
    panic!("nothing sent to {remote}");
}

/// The requests of `out` sent to `remote`.
fn sent_to(out: &Outputs, remote: SocketAddr) -> Vec<(Request, Peer)> {
    out.sent
        .iter()
        .filter(|(_, to)| to.remote == remote)
        .cloned()
        .collect()
}

fn pinger(targets: Vec<Target>, t0: Instant) -> TrunkTask {
    let config = PingConfig {
        name: "carrier".into(),
        contact: "sip:gw.carrier.test".into(),
        domain: "pbx.test".into(),
        user_agent: "pbx-test".into(),
    };
    let first = targets[0];
    TrunkTask::ping(
        config,
        PING_EVERY,
        base(first),
        targets,
        "trunkreg-carrier-1@pbx.test".into(),
        StdRng::seed_from_u64(7),
        t0,
    )
}

fn via(request: &Request) -> String {
    request
        .headers
        .get_str(&HeaderName::VIA)
        .unwrap_or_default()
        .to_string()
}

#[test]
fn an_answered_ping_is_up_and_the_next_waits_its_interval() {
    let t0 = Instant::now();
    let a = target("198.51.100.1:5060", "192.0.2.10:5060");
    let mut task = pinger(vec![a], t0);
    let out = drain(&mut task);
    assert_eq!(out.sent.len(), 1, "the first ping goes at once");
    let (options, to) = &out.sent[0];
    assert_eq!(options.method, Method::OPTIONS);
    assert_eq!(to.remote, a.remote);
    assert!(via(options).contains("192.0.2.10:5060"), "{}", via(options));

    task.handle_response(t0, reply(options, 200, ""));
    let out = drain(&mut task);
    assert_eq!(out.pings.len(), 1);
    assert_eq!(out.pings[0].1, Reachability::Up);
    assert!(!out.relocate);
    // Nothing more until the interval has passed.
    task.handle_timeout(t0 + PING_EVERY - Duration::from_secs(1));
    assert!(drain(&mut task).sent.is_empty());
    let due = task.poll_timeout().unwrap_or_else(|| panic!("a next ping"));
    task.handle_timeout(due.max(t0 + PING_EVERY));
    assert_eq!(drain(&mut task).sent.len(), 1, "the next ping");
}

#[test]
fn unanswered_pings_try_every_address_then_ask_dns_again() {
    let t0 = Instant::now();
    let a = target("198.51.100.1:5060", "192.0.2.10:5060");
    let b = target("[2001:db8::1]:5060", "[2001:db8::10]:5060");
    let mut task = pinger(vec![a, b], t0);
    let first = drain(&mut task);
    assert_eq!(first.sent[0].1.remote, a.remote);

    // RFC 3263 §4.3: no answer from the first (Timer F), the next at once, from its own
    // local address.
    let out = run_until(&mut task, t0 + TIMER_F);
    let to_b = sent_to(&out, b.remote);
    assert!(!to_b.is_empty(), "the second address is pinged at once");
    assert!(
        to_b.iter().all(|(r, _)| via(r) == via(&to_b[0].0)),
        "one ping (and its retransmissions)"
    );
    let (options, to) = &to_b[0];
    assert_eq!(to.local, b.local);
    assert!(
        via(options).contains("[2001:db8::10]:5060"),
        "{}",
        via(options)
    );
    assert!(!out.relocate, "one address is left");

    // The last one fails too: down, and DNS is asked again.
    let out = run_until(&mut task, t0 + TIMER_F * 2);
    let (_, state, why) = out.pings.last().unwrap_or_else(|| panic!("a report"));
    assert_eq!(*state, Reachability::Down);
    assert_eq!(why, "no answer to OPTIONS");
    assert!(
        out.relocate,
        "every address failed: the shell is to ask DNS"
    );

    // DNS names a new address: the next round pings it.
    let c = target("198.51.100.9:5060", "192.0.2.10:5060");
    task.set_targets(t0 + TIMER_F * 2, vec![c]);
    let (options, at) = run_until_sent(&mut task, c.remote);
    assert_eq!(options.method, Method::OPTIONS);
    assert!(
        at >= t0 + TIMER_F * 2,
        "the next round, not a retransmission of the last"
    );
}

#[test]
fn a_failed_connection_moves_the_ping_on_at_once() {
    let t0 = Instant::now();
    let a = target("198.51.100.1:5061", "192.0.2.10:5061");
    let b = target("198.51.100.2:5061", "192.0.2.10:5061");
    let mut task = pinger(vec![a, b], t0);
    let mut first = drain(&mut task);
    let key = {
        // The key the shell gets with the message, to report a failed send.
        let (request, _) = first.sent.remove(0);
        pbx_sip::transaction::TransactionKey::client(&request)
            .unwrap_or_else(|e| panic!("a client key: {e:?}"))
    };
    task.handle_transport_error(t0, &key);
    let out = drain(&mut task);
    assert_eq!(out.sent.len(), 1);
    assert_eq!(out.sent[0].1.remote, b.remote, "no wait for Timer F");
}

fn registering(targets: Vec<Target>, t0: Instant) -> TrunkTask {
    let first = targets[0];
    let cfg = RegisterConfig {
        registrar: "sip.provider.test".into(),
        domain: "sip.provider.test".into(),
        username: "acct42".into(),
        password: "pr0vider-pass".into(),
        expires: Duration::from_secs(3600),
        call_id: "trunkreg-provider-1@pbx.test".into(),
        targets: targets.iter().map(|t| t.remote).collect(),
        local: first.local,
        transport: "UDP",
        user_agent: "pbx-test".into(),
    };
    let registration = Registration::new(cfg, StdRng::seed_from_u64(1));
    TrunkTask::register(
        registration,
        base(first),
        targets,
        StdRng::seed_from_u64(2),
        t0,
    )
}

#[test]
fn a_registration_fails_over_then_asks_dns_and_unregisters_when_stopped() {
    let t0 = Instant::now();
    let a = target("203.0.113.5:5060", "192.0.2.10:5060");
    let b = target("203.0.113.6:5060", "192.0.2.10:5060");
    let mut task = registering(vec![a, b], t0);
    assert_eq!(task.call_id(), "trunkreg-provider-1@pbx.test");
    let out = drain(&mut task);
    assert_eq!(out.sent.len(), 1);
    let (register, to) = &out.sent[0];
    assert_eq!(register.method, Method::REGISTER);
    assert_eq!(to.remote, a.remote);

    // 503 from the first address: the same REGISTER to the next (RFC 3263 §4.3).
    task.handle_response(t0, reply(register, 503, ""));
    let out = drain(&mut task);
    assert!(
        matches!(out.events.as_slice(), [Event::FailedOver { .. }]),
        "{:?}",
        out.events
    );
    assert_eq!(out.sent.len(), 1);
    let (register, to) = &out.sent[0];
    assert_eq!(to.remote, b.remote);
    assert!(!out.relocate);

    // The last address fails too: the attempt failed, DNS is asked before the retry.
    task.handle_response(t0, reply(register, 503, ""));
    let out = drain(&mut task);
    assert!(
        out.events.iter().any(|e| matches!(e, Event::Failed { .. })),
        "{:?}",
        out.events
    );
    assert!(out.relocate);
    let c = target("203.0.113.7:5060", "192.0.2.10:5060");
    task.set_targets(t0, vec![c]);
    // The retry goes where DNS says now.
    let (register, retry) = run_until_sent(&mut task, c.remote);
    task.handle_response(
        retry,
        reply(
            &register,
            200,
            "Contact: <sip:acct42@192.0.2.10:5060>;expires=3600\r\n",
        ),
    );
    let out = drain(&mut task);
    assert!(
        out.events
            .iter()
            .any(|e| matches!(e, Event::Registered { .. })),
        "{:?}",
        out.events
    );

    // Stopping removes the binding first; the task ends with the answer.
    task.stop(retry);
    assert!(!task.is_done());
    let out = drain(&mut task);
    let (unregister, _) = out
        .sent
        .first()
        .unwrap_or_else(|| panic!("Expires: 0 sent"));
    let contact = unregister
        .headers
        .get_str(&HeaderName::CONTACT)
        .unwrap_or_default()
        .to_string();
    let expires = unregister
        .headers
        .get_str(&HeaderName::EXPIRES)
        .unwrap_or_default()
        .to_string();
    assert!(
        contact.contains("expires=0") || expires == "0",
        "{contact} / {expires}"
    );
    task.handle_response(retry, reply(unregister, 200, ""));
    let out = drain(&mut task);
    assert!(
        out.events.contains(&Event::Unregistered),
        "{:?}",
        out.events
    );
    assert!(task.is_done());
}

#[test]
fn a_stopped_pinger_ends_at_once() {
    let t0 = Instant::now();
    let mut task = pinger(vec![target("198.51.100.1:5060", "192.0.2.10:5060")], t0);
    let _ = drain(&mut task);
    task.stop(t0);
    assert!(task.is_done());
}
