//! The PBX registering to a provider: a UAC REGISTER machine (RFC 3261 §10.2), sans-IO in
//! the shape of quinn-proto: [`Registration::start`], then feed it the final responses of
//! its REGISTERs ([`Registration::handle_response`]), the transaction layer's timeouts
//! ([`Registration::handle_no_answer`]) and the time ([`Registration::handle_timeout`]);
//! drain [`Registration::poll_request`] (hand each to a client transaction) and
//! [`Registration::poll_event`], and wake it at [`Registration::poll_timeout`].
//!
//! What it does: REGISTER with `Expires`; digest on 401/407 (MD5 or SHA-256, qop=auth, the
//! nonce-count counting up as the nonce is reused on refreshes); a `stale=true` challenge is
//! answered at once and is no failure; 403 (and other refusals, or a second challenge after
//! credentials) fails with a long back-off; 5xx, 408 and no answer back off as `Retry-After`
//! says, else exponentially; 423 takes the `Min-Expires`; the binding is refreshed at 85% of
//! its life (at most 30 s before it ends); [`Registration::unregister`] removes it on
//! shutdown. The registrar's addresses (what DNS gave, in order) are tried one after the
//! other when one does not answer or answers 5xx/408 (RFC 3263 §4.3), before any back-off;
//! a binding is refreshed at the address that granted it. Timers are data ([`Timer`]); the machine reads no clock and draws its branches,
//! tags and cnonces from the random source it is given.

use bytes::Bytes;
use pbx_sip::auth::Challenge;
use pbx_sip::message::{HeaderName, Message, Request, Response};
use pbx_sip::method::Method;
use pbx_sip::status::StatusCode;
use rand::RngCore;
use rand::rngs::StdRng;
use std::collections::VecDeque;
use std::fmt;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// Back-off after a refusal (403, 404, wrong credentials): a person must fix something.
const REFUSED_FIRST: Duration = Duration::from_secs(300);
/// Back-off after no answer or a 5xx without Retry-After: the provider may be back soon.
const UNAVAILABLE_FIRST: Duration = Duration::from_secs(30);
/// No back-off grows past this.
const BACKOFF_MAX: Duration = Duration::from_secs(1800);
/// A `Retry-After` is honoured up to this (a typo of a day should not silence a trunk).
const RETRY_AFTER_MAX: Duration = Duration::from_secs(3600);
/// How long a removal may take on shutdown before the machine gives up waiting.
const UNREGISTER_WAIT: Duration = Duration::from_secs(5);

/// What the machine needs to know about the trunk and this host.
#[derive(Clone)]
pub struct RegisterConfig {
    /// The registrar's host (`host` or `[v6]`) and port: the Request-URI is `sip:host:port`
    /// (RFC 3261 §10.2: the registrar's domain, no user part).
    pub registrar: String,
    /// The domain of the address of record: `sip:username@domain` in From and To.
    pub domain: String,
    pub username: String,
    pub password: String,
    /// The binding's life asked for.
    pub expires: Duration,
    /// The same for every REGISTER of this trunk in this run (RFC 3261 §10.2: SHOULD).
    pub call_id: String,
    /// Where to send, in the order to try them (at least one).
    pub targets: Vec<SocketAddr>,
    /// This host's address for Via and Contact, and the transport's Via token.
    pub local: SocketAddr,
    pub transport: &'static str,
    pub user_agent: String,
}

// Hand-written so that the password never reaches a log through `{:?}`.
impl fmt::Debug for RegisterConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RegisterConfig")
            .field("registrar", &self.registrar)
            .field("username", &self.username)
            .field("expires", &self.expires)
            .finish_non_exhaustive()
    }
}

/// Where the registration stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum State {
    /// Not started, or removed after [`Registration::unregister`].
    Idle,
    /// A REGISTER is out and no binding is known yet.
    Registering,
    /// The provider holds the binding until `until`.
    Registered { until: Instant },
    /// The last attempt failed; the next is at `retry_at`.
    Failed { retry_at: Instant },
    /// The removal is out ([`Registration::unregister`]).
    Unregistering,
}

/// Why an attempt failed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Failure {
    /// A final refusal (403, 404, 4xx/6xx other than a challenge).
    Refused(StatusCode),
    /// The credentials were answered with another challenge that was not `stale`: wrong
    /// user name or password.
    BadCredentials,
    /// 5xx or 408: the provider cannot now.
    Unavailable(StatusCode),
    /// No answer at all within the transaction's time (RFC 3261 §17.1.2.2 Timer F).
    NoAnswer,
    /// A challenge the PBX cannot answer (no credentials, unknown algorithm...).
    Unanswerable(String),
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Failure::Refused(s) | Failure::Unavailable(s) => {
                write!(f, "{} {}", s.0, s.canonical_reason())
            }
            Failure::BadCredentials => f.write_str("credentials refused"),
            Failure::NoAnswer => f.write_str("no answer"),
            Failure::Unanswerable(why) => write!(f, "cannot answer the challenge: {why}"),
        }
    }
}

/// What happened, for the log, the metrics and the trunk's state.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// The provider holds the binding for `expires`; a refresh follows at `refresh_at`.
    Registered {
        expires: Duration,
        refresh_at: Instant,
    },
    /// `from` failed (`failure`): the same REGISTER goes to the next address, `to`.
    FailedOver {
        from: SocketAddr,
        to: SocketAddr,
        failure: Failure,
    },
    /// An attempt failed; the next one is in `retry_in`.
    Failed {
        failure: Failure,
        retry_in: Duration,
    },
    /// The binding is removed (or the removal gave up); the machine is idle.
    Unregistered,
}

/// The machine's timers (quinn-proto style: data, not callbacks).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Timer {
    /// Refresh the binding before it ends (RFC 3261 §10.2.1: the UA refreshes it).
    Refresh,
    /// Try again after a failure.
    Retry,
    /// Stop waiting for the removal's answer.
    GiveUp,
}

pub struct Registration {
    cfg: RegisterConfig,
    rng: StdRng,
    state: State,
    cseq: u32,
    from_tag: String,
    /// The CSeq of the REGISTER out, so a late answer to an earlier one is ignored.
    in_flight: Option<u32>,
    /// The last challenge and which header it came in (401 or 407), reused on refreshes
    /// with the nonce-count one higher each time (RFC 7616 §3.4).
    challenge: Option<(Challenge, HeaderName)>,
    nc: u32,
    /// Whether the REGISTER out answers a challenge received for this very attempt (a
    /// second challenge then means wrong credentials), rather than reusing an older nonce.
    answering_fresh: bool,
    expires: Duration,
    timer: Option<(Instant, Timer)>,
    /// Consecutive failures, for the back-off.
    failures: u32,
    /// The index in `cfg.targets` of the address in use, and how many this attempt tried.
    target: usize,
    tried: usize,
    requests: VecDeque<(Request, SocketAddr)>,
    events: VecDeque<Event>,
}

impl Registration {
    pub fn new(cfg: RegisterConfig, mut rng: StdRng) -> Registration {
        let from_tag = format!("{:016x}", rng.next_u64());
        let expires = cfg.expires;
        Registration {
            cfg,
            rng,
            state: State::Idle,
            cseq: 0,
            from_tag,
            in_flight: None,
            challenge: None,
            nc: 0,
            answering_fresh: false,
            expires,
            timer: None,
            failures: 0,
            target: 0,
            tried: 1,
            requests: VecDeque::new(),
            events: VecDeque::new(),
        }
    }

    pub fn state(&self) -> State {
        self.state
    }

    /// The Call-ID every REGISTER carries (the shell routes answers by it).
    pub fn call_id(&self) -> &str {
        &self.cfg.call_id
    }

    /// Sends the first REGISTER.
    pub fn start(&mut self) {
        self.state = State::Registering;
        self.send(self.expires, false);
    }

    /// Removes the binding (on shutdown): a REGISTER with `Expires: 0`, with credentials
    /// when a challenge is known. A machine that holds no binding is idle at once.
    pub fn unregister(&mut self, now: Instant) {
        match self.state {
            State::Registered { .. } | State::Registering => {
                self.state = State::Unregistering;
                self.timer = Some((now + UNREGISTER_WAIT, Timer::GiveUp));
                self.send(Duration::ZERO, self.challenge.is_some());
            }
            State::Failed { .. } | State::Idle => self.idle(),
            State::Unregistering => {}
        }
    }

    /// A final response to one of the machine's REGISTERs (provisional ones are ignored).
    pub fn handle_response(&mut self, now: Instant, response: &Response) {
        let seq = response.headers.cseq().ok().map(|c| c.seq);
        if seq.is_none() || seq != self.in_flight || !response.status.is_final() {
            return;
        }
        self.in_flight = None;
        let status = response.status;
        if status == StatusCode::UNAUTHORIZED || status == StatusCode::PROXY_AUTHENTICATION_REQUIRED
        {
            return self.challenged(now, response);
        }
        if self.state == State::Unregistering {
            // RFC 3261 §10.2.2: whatever the answer, this run is done with the binding.
            return self.idle();
        }
        if status.is_success() {
            return self.registered(now, response);
        }
        if status == StatusCode::INTERVAL_TOO_BRIEF
            && let Some(min) = response
                .headers
                .get_str(&HeaderName::MIN_EXPIRES)
                .and_then(|v| v.trim().parse::<u64>().ok())
            && Duration::from_secs(min) > self.expires
        {
            // RFC 3261 §10.2.8: ask again with at least Min-Expires.
            self.expires = Duration::from_secs(min);
            return self.send(self.expires, self.challenge.is_some());
        }
        let retry_after = retry_after(response);
        let failure = if status.class() == 5 || status == StatusCode::REQUEST_TIMEOUT {
            Failure::Unavailable(status)
        } else {
            Failure::Refused(status)
        };
        if matches!(failure, Failure::Unavailable(_)) && self.fail_over(failure.clone()) {
            return;
        }
        self.fail(now, failure, retry_after);
    }

    /// The client transaction of the REGISTER out ended without a final response (Timer F,
    /// or the transport failed).
    pub fn handle_no_answer(&mut self, now: Instant) {
        if self.in_flight.take().is_none() {
            return;
        }
        if self.state == State::Unregistering {
            return self.idle();
        }
        if self.fail_over(Failure::NoAnswer) {
            return;
        }
        self.fail(now, Failure::NoAnswer, None);
    }

    /// RFC 3263 §4.3: the next address not tried in this attempt gets the REGISTER (anew:
    /// a challenge is the failed server's); `false` when every one has been tried.
    fn fail_over(&mut self, failure: Failure) -> bool {
        let count = self.cfg.targets.len();
        if self.tried >= count {
            return false;
        }
        let from = self.destination();
        self.target = (self.target + 1) % count;
        self.tried += 1;
        let to = self.destination();
        self.events
            .push_back(Event::FailedOver { from, to, failure });
        self.challenge = None;
        self.send(self.expires, false);
        true
    }

    fn destination(&self) -> SocketAddr {
        self.cfg
            .targets
            .get(self.target)
            .or_else(|| self.cfg.targets.first())
            .copied()
            .unwrap_or(self.cfg.local)
    }

    /// Runs the timer due at `now`, if any.
    pub fn handle_timeout(&mut self, now: Instant) {
        let Some((at, timer)) = self.timer else {
            return;
        };
        if at > now {
            return;
        }
        self.timer = None;
        match timer {
            Timer::Refresh => {
                // Reuse the nonce (nc+1): most registrars accept it and spare a round trip.
                self.send(self.expires, self.challenge.is_some());
            }
            Timer::Retry => {
                // A new attempt starts again at the first address.
                self.state = State::Registering;
                self.challenge = None;
                self.target = 0;
                self.tried = 1;
                self.send(self.expires, false);
            }
            Timer::GiveUp => self.idle(),
        }
    }

    /// Replaces the addresses to try (the host resolved again after a failed attempt); the
    /// next attempt starts at the first. An empty list keeps the old one.
    pub fn set_targets(&mut self, targets: Vec<SocketAddr>) {
        if targets.is_empty() || targets == self.cfg.targets {
            return;
        }
        self.cfg.targets = targets;
        self.target = 0;
        self.tried = 1;
    }

    /// The next REGISTER to hand to a client transaction, and where it goes.
    #[must_use]
    pub fn poll_request(&mut self) -> Option<(Request, SocketAddr)> {
        self.requests.pop_front()
    }

    #[must_use]
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// When to call [`Registration::handle_timeout`] next.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.timer.map(|(at, _)| at)
    }

    /// Which timer is set, for tests and logs.
    pub fn timer(&self) -> Option<Timer> {
        self.timer.map(|(_, t)| t)
    }

    fn idle(&mut self) {
        self.state = State::Idle;
        self.timer = None;
        self.in_flight = None;
        self.events.push_back(Event::Unregistered);
    }

    fn registered(&mut self, now: Instant, response: &Response) {
        let granted = granted_expires(response, &self.cfg).unwrap_or(self.expires);
        let refresh_in = refresh_after(granted);
        let until = now + granted;
        self.state = State::Registered { until };
        self.failures = 0;
        // Refreshes go to this address; when it fails, the others are tried again.
        self.tried = 1;
        self.timer = Some((now + refresh_in, Timer::Refresh));
        self.events.push_back(Event::Registered {
            expires: granted,
            refresh_at: now + refresh_in,
        });
    }

    fn challenged(&mut self, now: Instant, response: &Response) {
        let header = if response.status == StatusCode::UNAUTHORIZED {
            HeaderName::WWW_AUTHENTICATE
        } else {
            HeaderName::PROXY_AUTHENTICATE
        };
        let values: Vec<&str> = response
            .headers
            .get_all(&header)
            .filter_map(|v| std::str::from_utf8(v).ok())
            .collect();
        let Some(challenge) = Challenge::pick(values.iter().copied()) else {
            let why = "no Digest challenge with MD5 or SHA-256 and qop auth".to_string();
            return self.fail_or_idle(now, Failure::Unanswerable(why));
        };
        if self.cfg.username.is_empty() {
            let why = "the trunk has no credentials".to_string();
            return self.fail_or_idle(now, Failure::Unanswerable(why));
        }
        // RFC 7616 §3.3: stale means the digest was right and only the nonce old: answer
        // the new nonce at once, no failure. A fresh challenge right after our answer to a
        // fresh one means the credentials are wrong.
        if self.answering_fresh && !challenge.stale {
            return self.fail_or_idle(now, Failure::BadCredentials);
        }
        self.challenge = Some((challenge, header));
        self.nc = 0;
        let expires = if self.state == State::Unregistering {
            Duration::ZERO
        } else {
            self.expires
        };
        self.send(expires, true);
        self.answering_fresh = true;
    }

    fn fail_or_idle(&mut self, now: Instant, failure: Failure) {
        if self.state == State::Unregistering {
            return self.idle();
        }
        self.fail(now, failure, None);
    }

    fn fail(&mut self, now: Instant, failure: Failure, retry_after: Option<Duration>) {
        self.failures = self.failures.saturating_add(1);
        let first = match failure {
            Failure::Unavailable(_) | Failure::NoAnswer => UNAVAILABLE_FIRST,
            _ => REFUSED_FIRST,
        };
        // RFC 3261 §20.33, §21.5.4: Retry-After says when to try again; else double each time.
        let retry_in = retry_after.unwrap_or_else(|| backoff(first, self.failures));
        let retry_at = now + retry_in;
        self.state = State::Failed { retry_at };
        self.challenge = None;
        self.timer = Some((retry_at, Timer::Retry));
        self.events.push_back(Event::Failed { failure, retry_in });
    }

    /// Queues a REGISTER asking for `expires`, with credentials when `authenticate` and a
    /// challenge is known.
    fn send(&mut self, expires: Duration, authenticate: bool) {
        self.cseq = self.cseq.wrapping_add(1);
        self.in_flight = Some(self.cseq);
        self.answering_fresh = false;
        let authorization = match (&self.challenge, authenticate) {
            (Some((challenge, header)), true) => {
                self.nc = self.nc.wrapping_add(1);
                let cnonce = format!("{:016x}", self.rng.next_u64());
                let value = challenge.answer(
                    &self.cfg.username,
                    &self.cfg.password,
                    "REGISTER",
                    &self.request_uri(),
                    self.nc,
                    &cnonce,
                );
                // RFC 3261 §22.2/§22.3: Authorization answers 401, Proxy-Authorization 407.
                let name = if *header == HeaderName::WWW_AUTHENTICATE {
                    "Authorization"
                } else {
                    "Proxy-Authorization"
                };
                format!("{name}: {value}\r\n")
            }
            _ => String::new(),
        };
        let cfg = &self.cfg;
        let host = match cfg.local.ip() {
            std::net::IpAddr::V6(v6) => format!("[{v6}]"),
            std::net::IpAddr::V4(v4) => v4.to_string(),
        };
        // RFC 5630 §3.1.3: over TLS the binding is a SIPS URI (the provider must reach it
        // over TLS too), not the deprecated `transport=tls`.
        let contact = match cfg.transport {
            "TLS" => format!("sips:{}@{host}:{}", cfg.username, cfg.local.port()),
            other => format!(
                "sip:{}@{host}:{};transport={}",
                cfg.username,
                cfg.local.port(),
                other.to_ascii_lowercase()
            ),
        };
        let text = format!(
            "REGISTER {uri} SIP/2.0\r\n\
             Via: SIP/2.0/{transport} {host}:{port};branch=z9hG4bK{branch:016x};rport\r\n\
             Max-Forwards: 70\r\n\
             From: <sip:{user}@{domain}>;tag={tag}\r\n\
             To: <sip:{user}@{domain}>\r\n\
             Call-ID: {call_id}\r\n\
             CSeq: {cseq} REGISTER\r\n\
             Contact: <{contact}>\r\n\
             Expires: {expires}\r\n\
             {authorization}\
             User-Agent: {agent}\r\n\
             Content-Length: 0\r\n\r\n",
            uri = self.request_uri(),
            transport = cfg.transport,
            port = cfg.local.port(),
            branch = self.rng.next_u64(),
            user = cfg.username,
            domain = cfg.domain,
            tag = self.from_tag,
            call_id = cfg.call_id,
            cseq = self.cseq,
            expires = expires.as_secs(),
            agent = cfg.user_agent,
        );
        match pbx_sip::parse::parse_message(Bytes::from(text)) {
            Ok(Message::Request(request)) if request.method == Method::REGISTER => {
                let to = self.destination();
                self.requests.push_back((request, to))
            }
            // Only a user name or domain a URI cannot carry gets here (the store refuses them).
            _ => {
                tracing::warn!(registrar = %cfg.registrar, "cannot build a REGISTER for this trunk")
            }
        }
    }

    fn request_uri(&self) -> String {
        format!("sip:{}", self.cfg.registrar)
    }
}

/// When to refresh a binding granted for `expires`: at 85% of its life, but at least 30 s
/// before it ends, and never sooner than half of it.
pub fn refresh_after(expires: Duration) -> Duration {
    let at_85 = expires * 85 / 100;
    let margin = expires.saturating_sub(Duration::from_secs(30));
    at_85.min(margin).max(expires / 2)
}

fn backoff(first: Duration, failures: u32) -> Duration {
    let doublings = failures.saturating_sub(1).min(16);
    first.saturating_mul(1 << doublings).min(BACKOFF_MAX)
}

/// RFC 3261 §20.33: `Retry-After: 120 (comment);duration=...`: the seconds before any comment.
fn retry_after(response: &Response) -> Option<Duration> {
    let value = response.headers.get_str(&HeaderName::RETRY_AFTER)?;
    let digits: String = value
        .trim()
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    let secs = digits.parse::<u64>().ok()?;
    Some(Duration::from_secs(secs).clamp(Duration::from_secs(1), RETRY_AFTER_MAX))
}

/// The life the registrar gave our binding: our Contact's `expires` parameter, else the
/// `Expires` header (RFC 3261 §10.2.4).
fn granted_expires(response: &Response, cfg: &RegisterConfig) -> Option<Duration> {
    let ours = response.headers.contacts().ok().and_then(|contacts| {
        contacts
            .addresses()
            .iter()
            .find(|c| {
                c.uri.user() == Some(cfg.username.as_str())
                    && c.uri.port() == Some(cfg.local.port())
            })
            .and_then(|c| c.expires())
    });
    ours.or_else(|| response.headers.expires())
        .map(|secs| Duration::from_secs(u64::from(secs)))
        .filter(|d| !d.is_zero())
}
