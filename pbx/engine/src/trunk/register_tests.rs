//! The REGISTER machine in virtual time against a fake provider that checks digests with
//! the PBX's own server side (`DigestAuthenticator`), so a wrong digest would be refused.

#![allow(clippy::disallowed_methods)] // `Instant::now()`: one fixed base for virtual time

use super::register::{Event, Failure, RegisterConfig, Registration, State, Timer};
use bytes::Bytes;
use pbx_sip::auth::{Algorithm, Credentials, DigestAuthenticator, ha1_hex};
use pbx_sip::message::{HeaderName, Message, Request, Response};
use pbx_sip::status::StatusCode;
use rand::SeedableRng;
use rand::rngs::StdRng;
use std::collections::VecDeque;
use std::time::{Duration, Instant};

const REALM: &str = "sip.provider.test";
const PRIMARY: &str = "203.0.113.5:5060";
const SECONDARY: &str = "203.0.113.6:5060";

fn addr(text: &str) -> std::net::SocketAddr {
    text.parse().unwrap_or_else(|_| panic!("{text}"))
}
const SECS: fn(u64) -> Duration = Duration::from_secs;

fn config(expires: u64) -> RegisterConfig {
    RegisterConfig {
        registrar: "203.0.113.5:5060".into(),
        domain: "sip.provider.test".into(),
        username: "acct42".into(),
        password: "pr0vider-pass".into(),
        expires: SECS(expires),
        call_id: "trunk-provider-1@pbx.test".into(),
        targets: vec![addr(PRIMARY)],
        local: "192.0.2.10:5060".parse().unwrap_or_else(|_| panic!()),
        transport: "UDP",
        user_agent: "pbx-test".into(),
    }
}

/// What the provider does with the next REGISTER instead of its usual digest check.
enum Script {
    Status(u16, &'static str),
    Silence,
}

/// A registrar that challenges, checks digests with nonces that live `nonce_life`, and
/// grants what is asked; `script` overrides its next answers.
struct Provider {
    digest: DigestAuthenticator,
    password: String,
    proxy: bool,
    /// Answer the next credentials, right or not, with a `stale=true` challenge.
    stale_next: bool,
    script: VecDeque<Script>,
    /// Every REGISTER it saw.
    seen: Vec<Request>,
    t0: Instant,
}

impl Provider {
    fn new(algorithms: Vec<Algorithm>, nonce_life: u64, t0: Instant) -> Provider {
        Provider {
            digest: DigestAuthenticator::new(REALM.into(), [9; 32], SECS(nonce_life), algorithms),
            password: "pr0vider-pass".into(),
            proxy: false,
            stale_next: false,
            script: VecDeque::new(),
            seen: Vec::new(),
            t0,
        }
    }

    fn unix(&self, now: Instant) -> u64 {
        1_700_000_000 + now.duration_since(self.t0).as_secs()
    }

    fn answer(&mut self, now: Instant, request: &Request) -> Option<Response> {
        self.seen.push(request.clone());
        match self.script.pop_front() {
            Some(Script::Silence) => return None,
            Some(Script::Status(code, extra)) => return Some(reply(request, code, extra)),
            None => {}
        }
        let (challenge, credentials, code) = if self.proxy {
            ("Proxy-Authenticate", HeaderName::PROXY_AUTHORIZATION, 407)
        } else {
            ("WWW-Authenticate", HeaderName::AUTHORIZATION, 401)
        };
        let unix = self.unix(now);
        let creds = request
            .headers
            .get_str(&credentials)
            .map(|v| Credentials::parse(v).unwrap_or_else(|e| panic!("{e}: {v}")));
        let stale = match creds {
            None => false,
            Some(_) if self.stale_next => {
                self.stale_next = false;
                true
            }
            Some(creds) => {
                assert_eq!(
                    creds.uri, "sip:203.0.113.5:5060",
                    "digest-uri is the Request-URI"
                );
                let ha1 = ha1_hex(creds.algorithm, &creds.username, REALM, &self.password);
                match self.digest.verify(unix, "REGISTER", &creds, Some(&ha1)) {
                    Ok(()) => {
                        let expires = request.headers.expires().unwrap_or(3600);
                        let contact = format!(
                            "Contact: <sip:acct42@192.0.2.10:5060;transport=udp>;expires={expires}\r\n"
                        );
                        return Some(reply(request, 200, &contact));
                    }
                    Err(pbx_sip::auth::AuthFailure::Stale) => true,
                    Err(_) => false,
                }
            }
        };
        let values: String = self
            .digest
            .challenge_values(unix, stale)
            .iter()
            .map(|v| format!("{challenge}: {v}\r\n"))
            .collect();
        Some(reply(request, code, &values))
    }
}

/// A response to `request` with `extra` header lines.
pub(super) fn reply(request: &Request, code: u16, extra: &str) -> Response {
    let h = |name: &HeaderName| {
        request
            .headers
            .get_str(name)
            .unwrap_or_default()
            .to_string()
    };
    let text = format!(
        "SIP/2.0 {code} Whatever\r\nVia: {}\r\nFrom: {}\r\nTo: {};tag=prov\r\nCall-ID: {}\r\n\
         CSeq: {}\r\n{extra}Content-Length: 0\r\n\r\n",
        h(&HeaderName::VIA),
        h(&HeaderName::FROM),
        h(&HeaderName::TO),
        h(&HeaderName::CALL_ID),
        h(&HeaderName::CSEQ),
    );
    match pbx_sip::parse::parse_message(Bytes::from(text)) {
        Ok(Message::Response(r)) => r,
        other => panic!("bad test response: {:?}", other.err()),
    }
}

/// The machine and the provider, stepped together in virtual time.
struct Sim {
    now: Instant,
    reg: Registration,
    provider: Provider,
    events: Vec<(Duration, Event)>,
    t0: Instant,
    /// Addresses where nothing answers.
    dead: Vec<std::net::SocketAddr>,
    /// Where each REGISTER went, in order.
    sent_to: Vec<std::net::SocketAddr>,
}

impl Sim {
    fn new(expires: u64, algorithms: Vec<Algorithm>, nonce_life: u64) -> Sim {
        let t0 = Instant::now();
        Sim {
            now: t0,
            reg: Registration::new(config(expires), StdRng::seed_from_u64(7)),
            provider: Provider::new(algorithms, nonce_life, t0),
            events: Vec::new(),
            t0,
            dead: Vec::new(),
            sent_to: Vec::new(),
        }
    }

    /// Delivers every queued REGISTER (an unanswered one costs Timer F, 32 s).
    fn exchange(&mut self) {
        while let Some((request, to)) = self.reg.poll_request() {
            self.sent_to.push(to);
            let answer = if self.dead.contains(&to) {
                None
            } else {
                self.provider.answer(self.now, &request)
            };
            match answer {
                Some(response) => self.reg.handle_response(self.now, &response),
                None => {
                    self.now += SECS(32);
                    self.reg.handle_no_answer(self.now);
                }
            }
        }
        while let Some(event) = self.reg.poll_event() {
            self.events.push((self.now - self.t0, event));
        }
    }

    /// Advances to the machine's next timer and runs it.
    fn step(&mut self) -> Duration {
        let at = self
            .reg
            .poll_timeout()
            .unwrap_or_else(|| panic!("no timer set"));
        self.now = self.now.max(at);
        self.reg.handle_timeout(self.now);
        self.exchange();
        self.now - self.t0
    }

    fn start(&mut self) {
        self.reg.start();
        self.exchange();
    }

    fn last_event(&self) -> Option<&Event> {
        self.events.last().map(|(_, e)| e)
    }

    fn authorization(&self, index: usize) -> Option<Credentials> {
        let request = self.provider.seen.get(index)?;
        let value = request
            .headers
            .get_str(&HeaderName::AUTHORIZATION)
            .or_else(|| request.headers.get_str(&HeaderName::PROXY_AUTHORIZATION))?;
        Credentials::parse(value).ok()
    }
}

#[test]
fn registers_with_sha256_digest_and_refreshes_before_expiry_reusing_the_nonce() {
    let mut sim = Sim::new(300, vec![Algorithm::Sha256, Algorithm::Md5], 600);
    sim.start();
    // REGISTER (no credentials) → 401 → REGISTER with SHA-256 credentials → 200.
    assert_eq!(sim.provider.seen.len(), 2);
    assert!(sim.authorization(0).is_none());
    let first = sim
        .authorization(1)
        .unwrap_or_else(|| panic!("no credentials"));
    assert_eq!(first.algorithm, Algorithm::Sha256);
    assert_eq!(first.nc.as_deref(), Some("00000001"));
    assert_eq!(first.username, "acct42");
    assert!(matches!(sim.reg.state(), State::Registered { .. }));
    // 85% of 300 s is 255 s; 30 s before the end would be 270 s: the earlier wins.
    assert_eq!(
        sim.last_event(),
        Some(&Event::Registered {
            expires: SECS(300),
            refresh_at: sim.t0 + SECS(255)
        })
    );
    let first_request = sim.provider.seen.first().unwrap_or_else(|| panic!());
    assert_eq!(first_request.headers.expires(), Some(300));
    assert_eq!(first_request.uri.as_str(), "sip:203.0.113.5:5060");

    // The refresh reuses the nonce with nc 2: one REGISTER, no new challenge.
    assert_eq!(sim.step(), SECS(255));
    assert_eq!(sim.provider.seen.len(), 3);
    let refresh = sim.authorization(2).unwrap_or_else(|| panic!());
    assert_eq!(
        (refresh.nonce, refresh.nc.as_deref()),
        (first.nonce.clone(), Some("00000002"))
    );
    assert!(matches!(sim.reg.state(), State::Registered { .. }));
    // Every REGISTER of the run has the same Call-ID and a higher CSeq (RFC 3261 §10.2).
    let cseqs: Vec<u32> = sim
        .provider
        .seen
        .iter()
        .map(|r| r.headers.cseq().map(|c| c.seq).unwrap_or(0))
        .collect();
    assert_eq!(cseqs, [1, 2, 3]);
    assert!(
        sim.provider
            .seen
            .iter()
            .all(|r| r.headers.call_id() == Some("trunk-provider-1@pbx.test"))
    );
}

#[test]
fn md5_only_provider_gets_md5() {
    let mut sim = Sim::new(3600, vec![Algorithm::Md5], 600);
    sim.start();
    let creds = sim.authorization(1).unwrap_or_else(|| panic!());
    assert_eq!(creds.algorithm, Algorithm::Md5);
    assert!(matches!(sim.reg.state(), State::Registered { .. }));
    // 3600 s: refresh at 3060 s (85%).
    assert_eq!(sim.reg.poll_timeout(), Some(sim.t0 + SECS(3060)));
}

#[test]
fn stale_nonce_is_answered_at_once_and_is_no_failure() {
    let mut sim = Sim::new(300, vec![Algorithm::Sha256], 400);
    sim.start();
    sim.step(); // 255 s: nonce still fresh, nc 2.
    assert_eq!(sim.provider.seen.len(), 3);
    // 510 s: the nonce (400 s life) expired: 401 stale=true, answered with the new nonce.
    assert_eq!(sim.step(), SECS(510));
    assert_eq!(sim.provider.seen.len(), 5);
    let retry = sim.authorization(4).unwrap_or_else(|| panic!());
    let old = sim.authorization(3).unwrap_or_else(|| panic!());
    assert_ne!(retry.nonce, old.nonce);
    assert_eq!(retry.nc.as_deref(), Some("00000001"));
    assert!(matches!(sim.reg.state(), State::Registered { .. }));
    assert!(
        !sim.events
            .iter()
            .any(|(_, e)| matches!(e, Event::Failed { .. })),
        "{:?}",
        sim.events
    );
}

#[test]
fn stale_right_after_answering_a_fresh_challenge_is_answered_again() {
    let mut sim = Sim::new(3600, vec![Algorithm::Sha256], 600);
    sim.provider.stale_next = true;
    sim.start();
    // REGISTER, 401, credentials, 401 stale=true, credentials on the new nonce, 200.
    assert_eq!(sim.provider.seen.len(), 3);
    assert!(matches!(sim.reg.state(), State::Registered { .. }));
    assert!(
        !sim.events
            .iter()
            .any(|(_, e)| matches!(e, Event::Failed { .. }))
    );
}

#[test]
fn forbidden_fails_with_a_growing_back_off_then_recovers() {
    let mut sim = Sim::new(3600, vec![Algorithm::Sha256], 600);
    sim.provider.script.push_back(Script::Status(403, ""));
    sim.start();
    assert_eq!(
        sim.last_event(),
        Some(&Event::Failed {
            failure: Failure::Refused(StatusCode::FORBIDDEN),
            retry_in: SECS(300)
        })
    );
    assert!(matches!(sim.reg.state(), State::Failed { .. }));
    assert_eq!(sim.reg.timer(), Some(Timer::Retry));
    sim.provider.script.push_back(Script::Status(403, ""));
    assert_eq!(sim.step(), SECS(300));
    assert_eq!(
        sim.last_event(),
        Some(&Event::Failed {
            failure: Failure::Refused(StatusCode::FORBIDDEN),
            retry_in: SECS(600)
        })
    );
    // The retry starts over without credentials, and succeeds.
    assert_eq!(sim.step(), SECS(900));
    assert!(matches!(sim.reg.state(), State::Registered { .. }));
    let retry = sim.provider.seen.get(2).unwrap_or_else(|| panic!());
    assert!(retry.headers.get(&HeaderName::AUTHORIZATION).is_none());
}

#[test]
fn wrong_password_is_a_failure_not_a_loop() {
    let mut sim = Sim::new(3600, vec![Algorithm::Sha256], 600);
    sim.provider.password = "something-else".into();
    sim.start();
    // REGISTER, 401, REGISTER with credentials, 401 again: given up, not re-sent.
    assert_eq!(sim.provider.seen.len(), 2);
    assert_eq!(
        sim.last_event(),
        Some(&Event::Failed {
            failure: Failure::BadCredentials,
            retry_in: SECS(300)
        })
    );
}

#[test]
fn service_unavailable_honours_retry_after() {
    let mut sim = Sim::new(3600, vec![Algorithm::Sha256], 600);
    sim.provider
        .script
        .push_back(Script::Status(503, "Retry-After: 120 (maintenance)\r\n"));
    sim.start();
    assert_eq!(
        sim.last_event(),
        Some(&Event::Failed {
            failure: Failure::Unavailable(StatusCode::SERVICE_UNAVAILABLE),
            retry_in: SECS(120)
        })
    );
    // Nothing is sent before Retry-After has passed.
    sim.reg.handle_timeout(sim.t0 + SECS(119));
    assert!(sim.reg.poll_request().is_none());
    assert_eq!(sim.step(), SECS(120));
    assert!(matches!(sim.reg.state(), State::Registered { .. }));
}

#[test]
fn no_answer_backs_off_exponentially() {
    let mut sim = Sim::new(3600, vec![Algorithm::Sha256], 600);
    for _ in 0..3 {
        sim.provider.script.push_back(Script::Silence);
    }
    sim.start();
    // Timer F (32 s), then 30 s; again 32 s, then 60 s; again, then 120 s.
    let failed = |sim: &Sim| match sim.last_event() {
        Some(Event::Failed { failure, retry_in }) => Some((failure.clone(), *retry_in)),
        _ => None,
    };
    assert_eq!(failed(&sim), Some((Failure::NoAnswer, SECS(30))));
    sim.step();
    assert_eq!(failed(&sim), Some((Failure::NoAnswer, SECS(60))));
    sim.step();
    assert_eq!(failed(&sim), Some((Failure::NoAnswer, SECS(120))));
    let at = sim.step();
    assert_eq!(at, SECS(32 + 30 + 32 + 60 + 32 + 120));
    assert!(matches!(sim.reg.state(), State::Registered { .. }));
}

#[test]
fn a_server_error_after_registration_backs_off_then_registers_again() {
    let mut sim = Sim::new(300, vec![Algorithm::Sha256], 600);
    sim.start();
    sim.provider.script.push_back(Script::Status(500, ""));
    assert_eq!(sim.step(), SECS(255));
    assert!(matches!(sim.reg.state(), State::Failed { .. }));
    assert_eq!(sim.step(), SECS(285));
    assert!(matches!(sim.reg.state(), State::Registered { .. }));
}

#[test]
fn interval_too_brief_takes_min_expires() {
    let mut sim = Sim::new(60, vec![Algorithm::Sha256], 600);
    sim.provider
        .script
        .push_back(Script::Status(423, "Min-Expires: 600\r\n"));
    sim.start();
    let asked: Vec<Option<u32>> = sim
        .provider
        .seen
        .iter()
        .map(|r| r.headers.expires())
        .collect();
    assert_eq!(asked, [Some(60), Some(600), Some(600)]);
    assert!(matches!(sim.reg.state(), State::Registered { .. }));
}

#[test]
fn proxy_challenge_gets_proxy_authorization() {
    let mut sim = Sim::new(3600, vec![Algorithm::Sha256], 600);
    sim.provider.proxy = true;
    sim.start();
    let second = sim.provider.seen.get(1).unwrap_or_else(|| panic!());
    assert!(
        second
            .headers
            .get(&HeaderName::PROXY_AUTHORIZATION)
            .is_some()
    );
    assert!(second.headers.get(&HeaderName::AUTHORIZATION).is_none());
    assert!(matches!(sim.reg.state(), State::Registered { .. }));
}

#[test]
fn unregister_on_shutdown_sends_expires_zero_with_credentials() {
    let mut sim = Sim::new(3600, vec![Algorithm::Sha256], 600);
    sim.start();
    sim.now += SECS(10);
    sim.reg.unregister(sim.now);
    sim.exchange();
    let removal = sim.provider.seen.last().unwrap_or_else(|| panic!());
    assert_eq!(removal.headers.expires(), Some(0));
    assert!(removal.headers.get(&HeaderName::AUTHORIZATION).is_some());
    assert_eq!(sim.reg.state(), State::Idle);
    assert_eq!(sim.last_event(), Some(&Event::Unregistered));
    assert_eq!(sim.reg.poll_timeout(), None);
}

#[test]
fn unregister_gives_up_when_the_provider_is_silent() {
    let mut sim = Sim::new(3600, vec![Algorithm::Sha256], 600);
    sim.start();
    sim.reg.unregister(sim.now);
    // The transaction has not ended yet: the machine's own limit ends the wait.
    let _ = sim.reg.poll_request();
    assert_eq!(sim.reg.state(), State::Unregistering);
    assert_eq!(sim.step(), SECS(5));
    assert_eq!(sim.reg.state(), State::Idle);
}

#[test]
fn answers_to_older_requests_and_provisionals_are_ignored() {
    let mut sim = Sim::new(3600, vec![Algorithm::Sha256], 600);
    sim.reg.start();
    let (first, _) = sim.reg.poll_request().unwrap_or_else(|| panic!());
    sim.reg.handle_response(sim.now, &reply(&first, 100, ""));
    assert_eq!(sim.reg.state(), State::Registering);
    sim.reg.handle_response(
        sim.now,
        &reply(
            &first,
            401,
            "WWW-Authenticate: Digest realm=\"r\", nonce=\"n\"\r\n",
        ),
    );
    let (second, _) = sim.reg.poll_request().unwrap_or_else(|| panic!());
    // A retransmitted 401 to the first REGISTER changes nothing.
    sim.reg.handle_response(sim.now, &reply(&first, 403, ""));
    assert_eq!(sim.reg.state(), State::Registering);
    sim.reg
        .handle_response(sim.now, &reply(&second, 200, "Expires: 120\r\n"));
    assert!(matches!(sim.reg.state(), State::Registered { .. }));
    // 120 s: 85% is 102 s, 30 s before the end 90 s.
    assert_eq!(sim.reg.poll_timeout(), Some(sim.now + SECS(90)));
}

#[test]
fn a_challenge_it_cannot_answer_is_a_failure() {
    let t0 = Instant::now();
    let mut reg = Registration::new(config(3600), StdRng::seed_from_u64(1));
    reg.start();
    let (first, _) = reg.poll_request().unwrap_or_else(|| panic!());
    let challenge = "WWW-Authenticate: Digest realm=\"r\", nonce=\"n\", algorithm=SHA-512-256\r\n";
    reg.handle_response(t0, &reply(&first, 401, challenge));
    assert!(reg.poll_request().is_none());
    assert!(matches!(
        reg.poll_event(),
        Some(Event::Failed {
            failure: Failure::Unanswerable(_),
            ..
        })
    ));
}

#[test]
fn fails_over_across_the_addresses_in_order_before_backing_off() {
    let mut cfg = config(300);
    cfg.targets = vec![addr(PRIMARY), addr(SECONDARY)];
    let mut sim = Sim::new(300, vec![Algorithm::Sha256], 600);
    sim.reg = Registration::new(cfg, StdRng::seed_from_u64(7));
    sim.dead = vec![addr(PRIMARY)];
    sim.start();
    // The first address is silent (Timer F, 32 s): the REGISTER goes to the second, which
    // challenges and grants. No back-off, no failure.
    assert_eq!(
        sim.sent_to,
        [addr(PRIMARY), addr(SECONDARY), addr(SECONDARY)]
    );
    assert!(matches!(sim.reg.state(), State::Registered { .. }));
    assert!(matches!(
        sim.events.first(),
        Some((at, Event::FailedOver { from, to, failure: Failure::NoAnswer }))
            if *at == SECS(32) && *from == addr(PRIMARY) && *to == addr(SECONDARY)
    ));
    assert!(
        !sim.events
            .iter()
            .any(|(_, e)| matches!(e, Event::Failed { .. }))
    );

    // The refresh goes where the binding is; that address answers 503 now and the first
    // one is back: the REGISTER fails over to it.
    sim.dead.clear();
    sim.provider.script.push_back(Script::Status(503, ""));
    sim.sent_to.clear();
    sim.step();
    assert_eq!(sim.sent_to, [addr(SECONDARY), addr(PRIMARY), addr(PRIMARY)]);
    assert!(matches!(sim.reg.state(), State::Registered { .. }));

    // Every address silent: the attempt fails with the back-off, and the retry starts again
    // at the first address.
    sim.dead = vec![addr(PRIMARY), addr(SECONDARY)];
    sim.sent_to.clear();
    sim.step();
    assert_eq!(sim.sent_to, [addr(PRIMARY), addr(SECONDARY)]);
    assert!(matches!(
        sim.last_event(),
        Some(Event::Failed { failure: Failure::NoAnswer, retry_in }) if *retry_in == SECS(30)
    ));
    sim.dead.clear();
    sim.sent_to.clear();
    sim.step();
    assert_eq!(sim.sent_to.first(), Some(&addr(PRIMARY)));
    assert!(matches!(sim.reg.state(), State::Registered { .. }));
}

#[test]
fn new_addresses_after_a_failed_attempt_are_used_from_the_first() {
    let mut sim = Sim::new(3600, vec![Algorithm::Sha256], 600);
    sim.dead = vec![addr(PRIMARY)];
    sim.start();
    assert!(matches!(sim.last_event(), Some(Event::Failed { .. })));
    // DNS now says the provider moved; an empty answer keeps what there was.
    sim.reg.set_targets(Vec::new());
    sim.reg.set_targets(vec![addr(SECONDARY), addr(PRIMARY)]);
    sim.sent_to.clear();
    sim.step();
    assert_eq!(sim.sent_to.first(), Some(&addr(SECONDARY)));
    assert!(matches!(sim.reg.state(), State::Registered { .. }));
}

#[test]
fn refresh_points() {
    use super::register::refresh_after;
    assert_eq!(refresh_after(SECS(3600)), SECS(3060));
    assert_eq!(refresh_after(SECS(120)), SECS(90));
    assert_eq!(refresh_after(SECS(60)), SECS(30));
    assert_eq!(refresh_after(SECS(20)), SECS(10));
}

#[test]
fn the_binding_names_the_transport_and_is_a_sips_uri_over_tls() {
    for (transport, contact) in [
        ("UDP", "Contact: <sip:acct42@192.0.2.10:5060;transport=udp>"),
        ("TCP", "Contact: <sip:acct42@192.0.2.10:5060;transport=tcp>"),
        ("TLS", "Contact: <sips:acct42@192.0.2.10:5060>"),
    ] {
        let cfg = RegisterConfig {
            transport,
            ..config(3600)
        };
        let mut reg = Registration::new(cfg, StdRng::seed_from_u64(7));
        reg.start();
        let (request, _) = reg.poll_request().unwrap_or_else(|| panic!("a REGISTER"));
        let text = String::from_utf8_lossy(&request.to_bytes()).into_owned();
        assert!(text.contains(contact), "{transport}: {text}");
        assert!(
            text.contains(&format!("Via: SIP/2.0/{transport} ")),
            "{text}"
        );
    }
}
