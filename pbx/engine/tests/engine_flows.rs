//! Whole flows through one sans-IO engine in virtual time (issue 11 part 4): no sockets, no
//! sleeping. A small simulator (quinn's `Pair::step`) feeds the engine SIP messages, answers
//! its requests (credentials from an in-memory SQLite store, media ports, local addresses)
//! and jumps the clock to `poll_timeout()`.

mod common;

use bytes::Bytes;
use common::{DOMAIN, Setup, World, peer};
use pbx_dialplan::{DbOutcome, DbRequest, HttpOutcome, HttpRequest};
use pbx_engine::location::BindingPeer;
use pbx_engine::location::Write;
use pbx_engine::qualify::{Schedule, Target};
use pbx_engine::security::guard::Ban;
use pbx_engine::{
    AppMedia, CallState, Core, Engine, Inbound, Input, MediaPorts, Now, Output, Peer, Security,
    VoicemailRequest,
};
use pbx_sip::auth::{Algorithm, ha1_hex};
use pbx_sip::message::{HeaderName, Message, Request, Response};
use pbx_store::{BindingChange, CredentialStore, NewCdr, Store};
use pbx_voicemail::{MailboxInfo, RecordEnd, Sound, StoreAnswer, StoreRequest};
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

const MAX_FAILURES: u32 = 3;

struct Sim {
    engine: Engine,
    /// The extensions' credentials, as the shell would load them.
    store: Arc<Store>,
    core: Arc<Core>,
    now: Now,
    /// What the engine sent, parsed, oldest first.
    sent: Vec<(Peer, Message)>,
    /// `http_lookup`s not answered yet: the test decides when and how.
    http: Vec<(u64, HttpRequest)>,
    cdrs: Vec<NewCdr>,
    bans: Vec<Ban>,
    /// The location table's changes, for the store.
    bindings: Vec<Write>,
    security: Vec<Security>,
    released: Vec<u64>,
    /// What the engine asked of the PBX's own endpoints, per call.
    app: Vec<(u64, AppMedia)>,
    /// What the live calls view was told, oldest first.
    states: Vec<CallState>,
    voicemail: Vec<VoicemailRequest>,
    db: Vec<DbRequest>,
    /// Media plans handed out: the call, and how many messages had been sent before it.
    plans: Vec<(u64, usize)>,
    seq: u32,
}

impl Sim {
    async fn new(plan: Option<&str>) -> Sim {
        Sim::with_voicemail(plan, Default::default()).await
    }

    async fn with_voicemail(plan: Option<&str>, voicemail: pbx_engine::VoicemailSettings) -> Sim {
        let World {
            engine,
            store,
            core,
            now,
        } = Setup {
            plan,
            max_failures: MAX_FAILURES,
            voicemail,
            seed: 11,
            ..Setup::default()
        }
        .build()
        .await;
        Sim {
            engine,
            store,
            core,
            now,
            sent: Vec::new(),
            http: Vec::new(),
            cdrs: Vec::new(),
            bans: Vec::new(),
            bindings: Vec::new(),
            security: Vec::new(),
            released: Vec::new(),
            app: Vec::new(),
            states: Vec::new(),
            voicemail: Vec::new(),
            db: Vec::new(),
            plans: Vec::new(),
            seq: 0,
        }
    }

    /// Feeds one input and everything the fakes answer, until the engine is idle.
    async fn input(&mut self, input: Input) {
        let mut queue = vec![input];
        while let Some(input) = queue.pop() {
            self.engine.handle(self.now, input);
            while let Some(output) = self.engine.poll_output() {
                match output {
                    Output::Transmit { peer, bytes, .. } => {
                        let message = pbx_sip::parse::parse_message(bytes).unwrap();
                        self.sent.push((peer, message));
                    }
                    Output::LoadCredentials { id, user } => {
                        let found = self.store.credentials(&user).await;
                        let lookup = found
                            .map(|found| self.core.credentials.remember(&user, found, self.now.at))
                            .map_err(|e| e.to_string());
                        queue.push(Input::Credentials { id, lookup });
                    }
                    Output::HttpLookup { call, request } => self.http.push((call, request)),
                    Output::DbLookup { call, request } => {
                        // The fake CRM: account 4711 with PIN 1234 has 250.
                        let outcome = if request.params == ["4711", "1234"] {
                            DbOutcome::Row(vec![("balance".into(), "250".into())])
                        } else {
                            DbOutcome::NoRow
                        };
                        self.db.push(request);
                        queue.push(Input::Db { call, outcome });
                    }
                    Output::MessageCounts { id, mailbox } => {
                        use pbx_store::MailboxStore;
                        let counts = self.store.message_counts(&mailbox).await;
                        let counts = counts.map_err(|e| e.to_string());
                        queue.push(Input::MessageCounts { id, counts });
                    }
                    Output::AllocateMedia { call } => {
                        let ports = Ok(MediaPorts {
                            caller: 40_000,
                            callee: 40_002,
                        });
                        queue.push(Input::MediaAllocated { call, ports });
                    }
                    Output::ApplyMedia { call, .. } => self.plans.push((call, self.sent.len())),
                    Output::DtmfMedia { .. }
                    | Output::ShutdownComplete
                    | Output::Authenticated { .. } => {}
                    Output::ReleaseMedia { call } => self.released.push(call),
                    Output::AppMedia { call, media } => self.app.push((call, media)),
                    Output::ResolveLocalAddress { toward } => {
                        let local = Some(IpAddr::from([127, 0, 0, 1]));
                        queue.push(Input::LocalAddress { toward, local });
                    }
                    Output::WriteCdr(cdr) => self.cdrs.push(cdr),
                    Output::SaveBan(ban) => self.bans.push(ban),
                    Output::Location(write) => self.bindings.push(write),
                    Output::Security(event) => self.security.push(event),
                    Output::CallState(state) => self.states.push(state),
                    Output::Voicemail { call, id, request } => {
                        if let Some(answer) = voicemail_store(&request) {
                            queue.push(Input::Voicemail { call, id, answer });
                        }
                        self.voicemail.push(request);
                    }
                }
            }
        }
    }

    /// Jumps to the engine's next timer and runs it; `false` when none is set.
    async fn step(&mut self) -> bool {
        match self.engine.poll_timeout() {
            Some(at) => {
                self.now = self.now.advanced_to(at.max(self.now.at));
                self.input(Input::Timeout).await;
                true
            }
            None => false,
        }
    }

    async fn receive(&mut self, from: &str, text: String) {
        let message = pbx_sip::parse::parse_message(Bytes::from(text)).unwrap();
        let inbound = Inbound {
            peer: peer(from),
            message,
        };
        self.input(Input::Sip(inbound, None)).await;
    }

    fn take(&mut self) -> Vec<(Peer, Message)> {
        std::mem::take(&mut self.sent)
    }

    /// The responses sent to `ip` so far (taken).
    fn responses_to(&mut self, ip: &str) -> Vec<Response> {
        let (to, rest): (Vec<_>, Vec<_>) = self
            .take()
            .into_iter()
            .partition(|(p, m)| p.remote.ip().to_string() == ip && is_response(m));
        self.sent = rest;
        to.into_iter()
            .filter_map(|(_, m)| match m {
                Message::Response(r) => Some(r),
                Message::Request(_) => None,
            })
            .collect()
    }

    /// The requests sent to `ip` so far (taken).
    fn requests_to(&mut self, ip: &str) -> Vec<Request> {
        let (to, rest): (Vec<_>, Vec<_>) = self
            .take()
            .into_iter()
            .partition(|(p, m)| p.remote.ip().to_string() == ip && !is_response(m));
        self.sent = rest;
        to.into_iter()
            .filter_map(|(_, m)| match m {
                Message::Request(r) => Some(r),
                Message::Response(_) => None,
            })
            .collect()
    }

    fn branch(&mut self) -> String {
        self.seq += 1;
        format!("z9hG4bKtest{}", self.seq)
    }
}

fn is_response(message: &Message) -> bool {
    matches!(message, Message::Response(_))
}

#[allow(clippy::too_many_arguments)] // a request's header values, spelled out
fn request_text(
    method: &str,
    uri: &str,
    from_ip: &str,
    user: &str,
    to_user: &str,
    call_id: &str,
    cseq: u32,
    branch: &str,
    extra: &str,
) -> String {
    format!(
        "{method} {uri} SIP/2.0\r\n\
         Via: SIP/2.0/UDP {from_ip}:5060;branch={branch}\r\n\
         Max-Forwards: 70\r\n\
         From: <sip:{user}@{DOMAIN}>;tag=from{user}\r\n\
         To: <sip:{to_user}@{DOMAIN}>\r\n\
         Call-ID: {call_id}\r\n\
         CSeq: {cseq} {method}\r\n\
         Contact: <sip:{user}@{from_ip}:5060>\r\n\
         {extra}\
         Content-Length: 0\r\n\r\n"
    )
}

/// The `Authorization` value answering `challenge` (RFC 2617 §3.2.2, MD5, qop=auth).
fn authorization(
    challenge: &str,
    user: &str,
    password: &str,
    method: &str,
    uri: &str,
    nc: u32,
) -> String {
    let param = |name: &str| {
        challenge
            .split(',')
            .find_map(|p| {
                p.trim()
                    .trim_start_matches("Digest ")
                    .strip_prefix(&format!("{name}="))
            })
            .map(|v| v.trim_matches('"').to_string())
            .unwrap_or_default()
    };
    let (nonce, opaque, qop) = (param("nonce"), param("opaque"), param("qop"));
    let ha1 = ha1_hex(Algorithm::Md5, user, DOMAIN, password);
    let ha2 = Algorithm::Md5.hash_hex(format!("{method}:{uri}").as_bytes());
    let nc = format!("{nc:08x}");
    let mut value = format!(
        "Digest username=\"{user}\", realm=\"{DOMAIN}\", nonce=\"{nonce}\", uri=\"{uri}\", algorithm=MD5"
    );
    let response = if qop.is_empty() {
        Algorithm::Md5.hash_hex(format!("{ha1}:{nonce}:{ha2}").as_bytes())
    } else {
        value.push_str(&format!(", qop=auth, nc={nc}, cnonce=\"c0ffee\""));
        Algorithm::Md5.hash_hex(format!("{ha1}:{nonce}:{nc}:c0ffee:auth:{ha2}").as_bytes())
    };
    value.push_str(&format!(", response=\"{response}\""));
    if !opaque.is_empty() {
        value.push_str(&format!(", opaque=\"{opaque}\""));
    }
    value
}

fn header(response: &Response, name: &HeaderName) -> String {
    response
        .headers
        .get_str(name)
        .unwrap_or_default()
        .to_string()
}

/// REGISTER with digest: 401, then 200 with Contact and Date.
async fn register(sim: &mut Sim, user: &str, ip: &str) -> Response {
    let uri = format!("sip:{DOMAIN}");
    let call_id = format!("reg-{user}");
    let branch = sim.branch();
    let text = request_text("REGISTER", &uri, ip, user, user, &call_id, 1, &branch, "");
    sim.receive(ip, text).await;
    let challenge = sim.responses_to(ip).pop().unwrap();
    assert_eq!(challenge.status.code(), 401);
    let www = header(&challenge, &HeaderName::WWW_AUTHENTICATE);
    let auth = authorization(&www, user, &format!("secret{user}"), "REGISTER", &uri, 1);
    let branch = sim.branch();
    let extra = format!("Authorization: {auth}\r\nExpires: 600\r\n");
    let text = request_text(
        "REGISTER", &uri, ip, user, user, &call_id, 2, &branch, &extra,
    );
    sim.receive(ip, text).await;
    sim.responses_to(ip).pop().unwrap()
}

/// An authenticated INVITE from 1001 at `ip` to `dialed`; returns its Call-ID, branch, CSeq.
async fn invite(sim: &mut Sim, ip: &str, dialed: &str) -> (String, String, u32) {
    let uri = format!("sip:{dialed}@{DOMAIN}");
    let call_id = format!("call-{dialed}-{}", sim.seq);
    let branch = sim.branch();
    let text = request_text("INVITE", &uri, ip, "1001", dialed, &call_id, 1, &branch, "");
    sim.receive(ip, text).await;
    let challenge = sim.responses_to(ip).pop().unwrap();
    assert_eq!(challenge.status.code(), 407);
    // The ACK of the 407 (RFC 3261 §17.1.1.3) is absorbed by the transaction.
    let proxy = header(&challenge, &HeaderName::PROXY_AUTHENTICATE);
    let auth = authorization(&proxy, "1001", "secret1001", "INVITE", &uri, 1);
    let branch = sim.branch();
    let extra = format!("Proxy-Authorization: {auth}\r\n");
    let text = request_text(
        "INVITE", &uri, ip, "1001", dialed, &call_id, 2, &branch, &extra,
    );
    sim.receive(ip, with_sdp(text, ip)).await;
    (call_id, branch, 2)
}

/// A G.711 offer or answer from `ip`.
fn sdp(ip: &str) -> String {
    format!(
        "v=0\r\no=- 1 1 IN IP4 {ip}\r\ns=-\r\nc=IN IP4 {ip}\r\nt=0 0\r\n\
         m=audio 4000 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n"
    )
}

/// The message with an SDP body instead of none.
fn with_sdp(text: String, ip: &str) -> String {
    let body = sdp(ip);
    text.replace(
        "Content-Length: 0\r\n\r\n",
        &format!(
            "Content-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        ),
    )
}

/// A device's final answer to an INVITE the PBX sent it.
fn answer(request: &Request, status: u16, reason: &str) -> String {
    let h = |name: &HeaderName| {
        request
            .headers
            .get_str(name)
            .unwrap_or_default()
            .to_string()
    };
    format!(
        "SIP/2.0 {status} {reason}\r\n\
         Via: {}\r\n\
         From: {}\r\n\
         To: {};tag=device\r\n\
         Call-ID: {}\r\n\
         CSeq: {}\r\n\
         Content-Length: 0\r\n\r\n",
        h(&HeaderName::VIA),
        h(&HeaderName::FROM),
        h(&HeaderName::TO),
        h(&HeaderName::CALL_ID),
        h(&HeaderName::CSEQ),
    )
}

#[tokio::test]
async fn register_with_digest_then_a_ban_after_repeated_failures() {
    let mut sim = Sim::new(None).await;
    let ok = register(&mut sim, "1000", "127.0.0.3").await;
    assert_eq!(ok.status.code(), 200);
    assert!(header(&ok, &HeaderName::CONTACT).contains("sip:1000@127.0.0.3:5060"));
    assert!(header(&ok, &HeaderName::DATE).ends_with("GMT"));
    assert_eq!(sim.core.location.lookup("1000", sim.now.unix()).len(), 1);
    // The new binding is an output for the shell to save.
    assert!(matches!(
        sim.bindings.as_slice(),
        [Write { seq: 1, change: BindingChange::Upsert(b) }] if b.aor == "1000"
    ));

    // Wrong passwords from one source: answered, until the limit bans it.
    let attacker = "127.0.0.9";
    let uri = format!("sip:{DOMAIN}");
    let branch = sim.branch();
    let text = request_text(
        "REGISTER", &uri, attacker, "1000", "1000", "guess", 1, &branch, "",
    );
    sim.receive(attacker, text).await;
    let challenge = sim.responses_to(attacker).pop().unwrap();
    let www = header(&challenge, &HeaderName::WWW_AUTHENTICATE);
    let mut last = None;
    for attempt in 1..=MAX_FAILURES {
        let auth = authorization(&www, "1000", "wrong", "REGISTER", &uri, attempt);
        let branch = sim.branch();
        let extra = format!("Authorization: {auth}\r\n");
        let cseq = attempt + 1;
        let text = request_text(
            "REGISTER", &uri, attacker, "1000", "1000", "guess", cseq, &branch, &extra,
        );
        sim.receive(attacker, text).await;
        last = sim.responses_to(attacker).pop();
    }
    assert_eq!(last.map(|r| r.status.code()), Some(403));
    assert_eq!(sim.bans.len(), 1);
    assert_eq!(sim.bans[0].address, attacker.parse::<IpAddr>().unwrap());
    assert!(
        sim.core
            .guard
            .is_banned(attacker.parse().unwrap(), sim.now.unix())
    );
}

const BRANCHES_PLAN: &str = r#"
[defaults]
context = "staff"

[context.staff]

[[context.staff.rule]]
pattern = "5000"
steps = [
    { http_lookup = { url = "http://127.0.0.1:9/route", timeout = "2s",
                      set = { target = "route.target" },
                      on_failure = [{ hangup = 503 }] } },
    { dial = "${target}" },
]

[[context.staff.rule]]
extension = true
steps = [
    { dial = { targets = ["${number}"], timeout = "3s",
               on_busy = [{ dial = "1002" }],
               on_no_answer = [{ hangup = { status = 408, reason = "Nobody answered" } }] } },
]
"#;

#[tokio::test]
async fn a_dialplan_call_takes_its_busy_and_no_answer_branches() {
    let mut sim = Sim::new(Some(BRANCHES_PLAN)).await;
    assert_eq!(
        register(&mut sim, "1000", "127.0.0.3").await.status.code(),
        200
    );
    assert_eq!(
        register(&mut sim, "1002", "127.0.0.4").await.status.code(),
        200
    );

    // Busy: 1000 answers 486, the plan rings 1002.
    invite(&mut sim, "127.0.0.2", "1000").await;
    let to_1000 = sim.requests_to("127.0.0.3");
    let ring = to_1000
        .iter()
        .find(|r| r.method.as_str() == "INVITE")
        .unwrap();
    sim.receive("127.0.0.3", answer(ring, 486, "Busy Here"))
        .await;
    let to_1002 = sim.requests_to("127.0.0.4");
    assert!(
        to_1002.iter().any(|r| r.method.as_str() == "INVITE"),
        "on_busy rings 1002"
    );

    // No answer: 1000 rings for the dial's 3 s (virtual), then the caller gets 408.
    sim.take();
    let started = sim.now.at;
    let (call_id, ..) = invite(&mut sim, "127.0.0.2", "1000").await;
    let to_1000 = sim.requests_to("127.0.0.3");
    let ring = to_1000
        .iter()
        .find(|r| r.method.as_str() == "INVITE")
        .unwrap();
    sim.receive("127.0.0.3", answer(ring, 180, "Ringing")).await;
    let mut final_status = None;
    while final_status.is_none() && sim.step().await {
        final_status = sim
            .responses_to("127.0.0.2")
            .into_iter()
            .find(|r| r.status.is_final() && r.headers.call_id() == Some(call_id.as_str()))
            .map(|r| {
                (
                    r.status.code(),
                    String::from_utf8_lossy(&r.reason).into_owned(),
                )
            });
    }
    assert_eq!(final_status, Some((408, "Nobody answered".to_string())));
    assert!(sim.now.at.duration_since(started) >= Duration::from_secs(3));
    // The ringing device was cancelled (RFC 3261 §9.1: after its provisional response).
    let to_1000 = sim.requests_to("127.0.0.3");
    assert!(to_1000.iter().any(|r| r.method.as_str() == "CANCEL"));
    let cdr = sim.cdrs.iter().find(|c| c.call_id == call_id).unwrap();
    assert_eq!(cdr.disposition, "failed");
}

#[tokio::test]
async fn cancel_during_an_http_lookup_ignores_its_late_answer() {
    let mut sim = Sim::new(Some(BRANCHES_PLAN)).await;
    assert_eq!(
        register(&mut sim, "1000", "127.0.0.3").await.status.code(),
        200
    );
    let caller = "127.0.0.2";
    let (call_id, branch, cseq) = invite(&mut sim, caller, "5000").await;
    assert_eq!(sim.http.len(), 1, "the plan asked its lookup");
    sim.take();
    let uri = format!("sip:5000@{DOMAIN}");
    let text = request_text(
        "CANCEL", &uri, caller, "1001", "5000", &call_id, cseq, &branch, "",
    );
    sim.receive(caller, text).await;
    let codes: Vec<u16> = sim
        .responses_to(caller)
        .iter()
        .map(|r| r.status.code())
        .collect();
    assert!(codes.contains(&200), "the CANCEL is answered: {codes:?}");
    assert!(codes.contains(&487), "the INVITE ends with 487: {codes:?}");

    let (call, _) = sim.http.remove(0);
    let outcome = HttpOutcome::Response {
        status: 200,
        body: r#"{"route": {"target": "1000"}}"#.into(),
    };
    sim.input(Input::Http { call, outcome }).await;
    assert!(
        sim.requests_to("127.0.0.3").is_empty(),
        "nothing is rung after the CANCEL"
    );
    assert_eq!(sim.engine.calls(), 0);
}

#[tokio::test]
async fn qualify_marks_a_silent_device_unreachable() {
    let mut sim = Sim::new(None).await;
    assert_eq!(
        register(&mut sim, "1000", "127.0.0.3").await.status.code(),
        200
    );
    let registration = sim.core.location.lookup("1000", sim.now.unix()).remove(0);
    let contact = registration.binding.contact.to_string();
    let target = Target {
        aor: "1000".into(),
        contact: contact.clone(),
        call_id: "qualify-1@pbx.test".into(),
        peer: registration.peer(),
    };
    let started = sim.now.at;
    sim.input(Input::Qualify(target)).await;
    let options = sim.requests_to("127.0.0.3");
    assert_eq!(options.first().map(|r| r.method.as_str()), Some("OPTIONS"));
    // Nobody answers: retransmissions (Timer E), then Timer F at 64*T1 (RFC 3261 §17.1.2.2).
    while sim.step().await {}
    assert!(sim.now.at.duration_since(started) >= Duration::from_secs(32));
    let reachable = sim
        .core
        .location
        .lookup("1000", sim.now.unix())
        .first()
        .and_then(|r| r.reachable);
    assert_eq!(reachable, Some(false));
    // What qualify learnt is saved too, after the registration, in table order.
    let saved: Vec<_> = sim.bindings.iter().map(|w| (w.seq, &w.change)).collect();
    assert!(matches!(
        saved.as_slice(),
        [
            (1, BindingChange::Upsert(_)),
            (
                2,
                BindingChange::Reachable {
                    reachable: false,
                    ..
                }
            )
        ]
    ));
}

#[tokio::test]
async fn qualify_rounds_come_from_the_engine_schedule() {
    let mut sim = Sim::new(None).await;
    assert_eq!(
        register(&mut sim, "1000", "127.0.0.3").await.status.code(),
        200
    );
    let interval = Duration::from_secs(30);
    let mut schedule = Schedule::new(interval, DOMAIN.into(), sim.now.at);
    assert_eq!(schedule.poll_timeout(), Some(sim.now.at + interval));
    assert!(
        schedule.due(sim.now, &sim.core.location).is_empty(),
        "not yet"
    );

    sim.now = sim.now.advanced_to(sim.now.at + interval);
    let round = schedule.due(sim.now, &sim.core.location);
    let [target] = round.as_slice() else {
        panic!("one registered device, one target: {}", round.len());
    };
    assert_eq!(target.aor, "1000");
    assert!(target.call_id.starts_with("qualify-"));
    assert!(target.call_id.ends_with(&format!("@{DOMAIN}")));
    let call_id = target.call_id.clone();
    assert!(
        schedule.due(sim.now, &sim.core.location).is_empty(),
        "one round per interval"
    );
    assert_eq!(schedule.poll_timeout(), Some(sim.now.at + interval));
    for target in round {
        sim.input(Input::Qualify(target)).await;
    }
    let options = sim.requests_to("127.0.0.3");
    assert_eq!(options.first().map(|r| r.method.as_str()), Some("OPTIONS"));

    // The next round names the device by the same Call-ID (its shard stays the same).
    sim.now = sim.now.advanced_to(sim.now.at + interval);
    let again = schedule.due(sim.now, &sim.core.location);
    assert_eq!(
        again.first().map(|t| t.call_id.as_str()),
        Some(call_id.as_str())
    );

    // Zero switches qualify off.
    let off = Schedule::new(Duration::ZERO, DOMAIN.into(), sim.now.at);
    assert_eq!(off.poll_timeout(), None);
}

#[tokio::test]
async fn without_a_dialplan_an_unknown_number_is_404() {
    let mut sim = Sim::new(None).await;
    invite(&mut sim, "127.0.0.2", "4711").await;
    let answers = sim.responses_to("127.0.0.2");
    let last = answers.iter().rfind(|r| r.status.is_final()).unwrap();
    assert_eq!(last.status.code(), 404);
    assert_eq!(&last.reason[..], b"Not Found (no such number)");
}

#[tokio::test]
async fn a_fixed_seed_gives_the_same_bytes() {
    let mut first = Sim::new(None).await;
    let mut second = Sim::new(None).await;
    second.now = first.now;
    for sim in [&mut first, &mut second] {
        let branch = sim.branch();
        let text = request_text(
            "OPTIONS",
            "sip:pbx.test",
            "127.0.0.2",
            "1001",
            "pbx",
            "o1",
            1,
            &branch,
            "",
        );
        sim.receive("127.0.0.2", text).await;
    }
    let bytes = |sim: &mut Sim| -> Vec<Bytes> {
        sim.take()
            .into_iter()
            .map(|(_, m)| match m {
                Message::Response(r) => r.to_bytes(),
                Message::Request(r) => Message::Request(r).to_bytes(),
            })
            .collect()
    };
    let (first, second) = (bytes(&mut first), bytes(&mut second));
    assert_eq!(first.len(), 1, "one 200 to the OPTIONS");
    assert_eq!(first, second);
}

#[tokio::test]
async fn the_media_plan_is_handed_out_before_the_200_to_the_caller() {
    // RFC 3264 §6 / RFC 3261 §13.2.1: the caller may send media the moment the 200 (the
    // answer) arrives, so the relay must have the plan first: the shell carries outputs out
    // in order, and the plan must come before the 200 among them.
    let mut sim = Sim::new(None).await;
    assert_eq!(
        register(&mut sim, "1000", "127.0.0.3").await.status.code(),
        200
    );
    invite(&mut sim, "127.0.0.2", "1000").await;
    let to_1000 = sim.requests_to("127.0.0.3");
    let ring = to_1000
        .iter()
        .find(|r| r.method.as_str() == "INVITE")
        .unwrap();
    sim.take();
    sim.plans.clear();
    sim.receive("127.0.0.3", with_sdp(answer(ring, 200, "OK"), "127.0.0.3"))
        .await;
    let ok_at = sim
        .sent
        .iter()
        .position(|(p, m)| {
            p.remote.ip().to_string() == "127.0.0.2"
                && matches!(m, Message::Response(r) if r.status.code() == 200)
        })
        .expect("a 200 to the caller");
    let (_, plan_at) = *sim.plans.first().expect("a media plan");
    assert!(
        plan_at <= ok_at,
        "the plan came after {plan_at} messages, the 200 was message {ok_at}"
    );
}

#[tokio::test]
async fn abandoning_a_failed_engine_ends_answered_calls_with_bye_and_a_cdr() {
    let mut sim = Sim::new(None).await;
    assert_eq!(
        register(&mut sim, "1000", "127.0.0.3").await.status.code(),
        200
    );
    let (call_id, ..) = invite(&mut sim, "127.0.0.2", "1000").await;
    let to_1000 = sim.requests_to("127.0.0.3");
    let ring = to_1000
        .iter()
        .find(|r| r.method.as_str() == "INVITE")
        .unwrap();
    sim.receive("127.0.0.3", with_sdp(answer(ring, 200, "OK"), "127.0.0.3"))
        .await;
    let ok = sim
        .responses_to("127.0.0.2")
        .into_iter()
        .find(|r| r.status.code() == 200)
        .unwrap();
    let to = header(&ok, &HeaderName::TO);
    let branch = sim.branch();
    let uri = "sip:1000@pbx.test";
    let ack = request_text(
        "ACK",
        uri,
        "127.0.0.2",
        "1001",
        "1000",
        &call_id,
        2,
        &branch,
        "",
    )
    .replace("To: <sip:1000@pbx.test>", &format!("To: {to}"));
    sim.receive("127.0.0.2", ack).await;
    assert_eq!(sim.engine.calls(), 1);
    sim.take();

    sim.engine.abandon_all(sim.now);
    sim.input(Input::Timeout).await;
    for side in ["127.0.0.2", "127.0.0.3"] {
        let byes = sim.requests_to(side);
        assert!(
            byes.iter().any(|r| r.method.as_str() == "BYE"),
            "BYE to {side}"
        );
    }
    let cdr = sim.cdrs.iter().find(|c| c.call_id == call_id).unwrap();
    assert_eq!(cdr.disposition, "answered");
    assert_eq!(cdr.hangup_side, "pbx");
    assert_eq!(cdr.hangup_cause, "internal error");
}

/// The live calls view learns who calls whom, the answer and the end; an admin's hang-up
/// (the web admin's button) ends an answered call with BYE to both legs and a CDR that says
/// the PBX hung up.
#[tokio::test]
async fn an_admin_hangs_up_a_live_call() {
    let mut sim = Sim::new(None).await;
    assert_eq!(
        register(&mut sim, "1000", "127.0.0.3").await.status.code(),
        200
    );
    let (call_id, ..) = invite(&mut sim, "127.0.0.2", "1000").await;
    let Some(CallState::Started {
        call,
        call_id: started_id,
        caller,
        called,
    }) = sim.states.first().cloned()
    else {
        panic!("no Started: {:?}", sim.states);
    };
    assert_eq!(
        (started_id.as_str(), caller.as_str(), called.as_str()),
        (call_id.as_str(), "1001", "1000")
    );
    let ring = sim
        .requests_to("127.0.0.3")
        .into_iter()
        .find(|r| r.method.as_str() == "INVITE")
        .unwrap();
    assert!(!sim.states.contains(&CallState::Answered { call }));
    sim.receive("127.0.0.3", with_sdp(answer(&ring, 200, "OK"), "127.0.0.3"))
        .await;
    assert!(sim.states.contains(&CallState::Answered { call }));
    assert!(!sim.states.contains(&CallState::Ended { call }));
    sim.take();

    // Another shard's number, or one that never was, changes nothing.
    sim.input(Input::HangUp { call: call + 100 }).await;
    assert_eq!(sim.engine.calls(), 1);
    assert!(sim.requests_to("127.0.0.2").is_empty());

    sim.input(Input::HangUp { call }).await;
    for side in ["127.0.0.2", "127.0.0.3"] {
        let byes = sim.requests_to(side);
        assert!(
            byes.iter().any(|r| r.method.as_str() == "BYE"),
            "BYE to {side}"
        );
    }
    assert!(sim.states.contains(&CallState::Ended { call }));
    let cdr = sim.cdrs.iter().find(|c| c.call_id == call_id).unwrap();
    assert_eq!(cdr.disposition, "answered");
    assert_eq!(cdr.hangup_side, "pbx");
    assert_eq!(cdr.hangup_cause, "hung up by the PBX");
}

const MENU_PLAN: &str = r#"
[defaults]
context = "staff"
[context.staff]
may_call = ["any"]
[[context.staff.rule]]
pattern = "700"
steps = ["answer", { menu = { prompt = "demo-menu", digits = 1, timeout = "4s", retries = 1,
    options = { "2" = [{ playback = "demo-goodbye" }, "hangup"] }, on_failure = ["hangup"] } }]
"#;

/// The prompts each `Play` asked for, in order.
fn played(app: &[(u64, AppMedia)]) -> Vec<String> {
    app.iter()
        .filter_map(|(_, m)| match m {
            AppMedia::Play { prompts, .. } => Some(
                prompts
                    .iter()
                    .map(|p| match p {
                        Sound::Prompt(name) => name.clone(),
                        Sound::File(path) => format!("file:{path}"),
                    })
                    .collect::<Vec<_>>()
                    .join("+"),
            ),
            _ => None,
        })
        .collect()
}

fn session(call: u64, event: pbx_media::session::Event) -> Input {
    Input::Session { call, event }
}

/// The caller's ACK for the PBX's 200 (RFC 3261 §13.2.2.4).
async fn ack(sim: &mut Sim, ip: &str, call_id: &str, cseq: u32, ok: &Response) {
    let to = header(ok, &HeaderName::TO);
    let branch = sim.branch();
    let text = request_text(
        "ACK",
        "sip:pbx@127.0.0.1",
        ip,
        "1001",
        "700",
        call_id,
        cseq,
        &branch,
        "",
    )
    .replace("To: <sip:700@pbx.test>", &format!("To: {to}"));
    sim.receive(ip, text).await;
}

#[tokio::test]
async fn the_pbx_answers_a_menu_and_a_key_takes_its_option() {
    use pbx_media::Side;
    use pbx_media::session::Event;
    let mut sim = Sim::new(Some(MENU_PLAN)).await;
    let caller = "127.0.0.2";
    let (call_id, _, cseq) = invite(&mut sim, caller, "700").await;
    let answers = sim.responses_to(caller);
    let ok = answers.last().unwrap();
    assert_eq!(ok.status.code(), 200, "{answers:?}");
    assert!(String::from_utf8_lossy(&ok.body).contains("m=audio 40000 RTP/AVP 0"));
    ack(&mut sim, caller, &call_id, cseq, ok).await;
    let call = sim.app.first().map(|(c, _)| *c).unwrap();
    assert_eq!(played(&sim.app), ["demo-menu"]);
    assert!(
        sim.app
            .iter()
            .any(|(_, m)| matches!(m, AppMedia::DetectDtmf { .. }))
    );

    // A key while the prompt plays stops it (barge-in) and chooses.
    sim.app.clear();
    let key = Event::Dtmf {
        side: Side::Caller,
        digit: '2',
        duration: Duration::from_millis(100),
    };
    sim.input(session(call, key)).await;
    assert_eq!(sim.app.first().map(|(_, m)| m), Some(&AppMedia::StopPlayer));
    assert_eq!(played(&sim.app), ["demo-goodbye"]);
    // The stopped menu prompt reports first: that does not end the goodbye.
    sim.input(session(call, Event::PlayerFinished { side: Side::Caller }))
        .await;
    assert!(
        sim.requests_to(caller).is_empty(),
        "nothing hangs up before the prompt ends"
    );
    sim.input(session(call, Event::PlayerFinished { side: Side::Caller }))
        .await;
    let bye = sim.requests_to(caller);
    assert_eq!(bye.len(), 1);
    assert_eq!(bye[0].method.as_str(), "BYE");
    assert_eq!(sim.cdrs.len(), 1);
    assert_eq!(sim.cdrs[0].disposition, "answered");
    assert_eq!(sim.cdrs[0].hangup_side, "pbx");
}

#[tokio::test]
async fn silence_after_the_menu_prompt_replays_it_then_takes_on_failure() {
    use pbx_media::Side;
    use pbx_media::session::Event;
    let mut sim = Sim::new(Some(MENU_PLAN)).await;
    let caller = "127.0.0.2";
    let (call_id, _, cseq) = invite(&mut sim, caller, "700").await;
    let ok = sim.responses_to(caller).pop().unwrap();
    ack(&mut sim, caller, &call_id, cseq, &ok).await;
    let call = sim.app.first().map(|(c, _)| *c).unwrap();
    let prompt_end = sim.now.at;
    sim.input(session(call, Event::PlayerFinished { side: Side::Caller }))
        .await;
    while played(&sim.app).len() < 2 && sim.step().await {}
    assert_eq!(
        played(&sim.app),
        ["demo-menu", "demo-menu"],
        "retries = 1: played twice"
    );
    assert_eq!(
        sim.now.at - prompt_end,
        Duration::from_secs(4),
        "the menu's timeout after the prompt"
    );
    sim.input(session(call, Event::PlayerFinished { side: Side::Caller }))
        .await;
    assert!(sim.requests_to(caller).is_empty());
    // The second silence: `on_failure` hangs up.
    while sim.cdrs.is_empty() && sim.step().await {}
    let requests = sim.requests_to(caller);
    assert!(
        requests.iter().any(|r| r.method.as_str() == "BYE"),
        "{requests:?}"
    );
    assert_eq!(sim.cdrs[0].disposition, "answered");
}

/// The fake store's answers to the voicemail machines: mailbox 1001 with PIN 1234 and no
/// greeting or message.
fn voicemail_store(request: &VoicemailRequest) -> Option<StoreAnswer> {
    let VoicemailRequest::Store(request) = request else {
        return None;
    };
    match request {
        StoreRequest::Mailbox { number } => {
            Some(StoreAnswer::Mailbox((number == "1001").then(|| {
                MailboxInfo {
                    number: number.clone(),
                    greetings: vec![],
                }
            })))
        }
        StoreRequest::CheckPin { number, pin } => {
            Some(StoreAnswer::Pin(number == "1001" && pin == "1234"))
        }
        StoreRequest::Messages { .. } => Some(StoreAnswer::Messages(vec![])),
        _ => None,
    }
}

const VOICEMAIL_PLAN: &str = r#"
[defaults]
context = "staff"
[context.staff]
may_call = ["any"]
[[context.staff.rule]]
pattern = "1001"
steps = [{ voicemail = "1001" }]
[[context.staff.rule]]
pattern = "*98"
steps = ["answer", "voicemail_menu"]
"#;

fn key(call: u64, digit: char) -> Input {
    session(
        call,
        pbx_media::session::Event::Dtmf {
            side: pbx_media::Side::Caller,
            digit,
            duration: Duration::from_millis(100),
        },
    )
}

fn player_finished(call: u64) -> Input {
    session(
        call,
        pbx_media::session::Event::PlayerFinished {
            side: pbx_media::Side::Caller,
        },
    )
}

#[tokio::test]
async fn a_message_is_recorded_with_its_envelope_then_the_pbx_says_goodbye() {
    let mut sim = Sim::new(Some(VOICEMAIL_PLAN)).await;
    let caller = "127.0.0.2";
    let (call_id, _, cseq) = invite(&mut sim, caller, "1001").await;
    let ok = sim.responses_to(caller).pop().unwrap();
    assert_eq!(ok.status.code(), 200);
    ack(&mut sim, caller, &call_id, cseq, &ok).await;
    let call = sim.app.first().map(|(c, _)| *c).unwrap();
    // The default greeting: no recorded one.
    assert_eq!(
        played(&sim.app),
        ["vm-theperson+digits/1+digits/0+digits/0+digits/1+vm-isunavail+vm-intro"]
    );
    sim.input(player_finished(call)).await;
    assert_eq!(played(&sim.app).last().map(String::as_str), Some("beep"));
    sim.input(player_finished(call)).await;
    let record = sim.app.iter().find_map(|(_, m)| match m {
        AppMedia::Record { path, message, .. } => Some((path.clone(), message.clone())),
        _ => None,
    });
    let (path, message) = record.expect("the recording starts after the beep");
    assert!(path.starts_with("data/voicemail/1001/msg-"), "{path}");
    let message = message.expect("a message, filed by the shell from its sidecar");
    assert_eq!(
        (message.mailbox.as_str(), message.caller_number.as_str()),
        ("1001", "1001")
    );
    assert_eq!(message.path, path);
    // `#` ends the recording; once on disk, "saved, goodbye" and BYE.
    sim.app.clear();
    sim.input(key(call, '#')).await;
    assert_eq!(
        sim.app.first().map(|(_, m)| m),
        Some(&AppMedia::StopRecorder)
    );
    sim.input(Input::Recorded {
        call,
        duration: Duration::from_secs(5),
        end: RecordEnd::Stopped,
    })
    .await;
    assert_eq!(played(&sim.app), ["vm-msgsaved+vm-goodbye"]);
    assert!(
        !sim.voicemail
            .iter()
            .any(|r| matches!(r, VoicemailRequest::Store(StoreRequest::AddMessage(_)))),
        "the machine's own filing request is not passed on"
    );
    sim.input(player_finished(call)).await;
    let bye = sim.requests_to(caller);
    assert_eq!(bye.last().map(|r| r.method.as_str()), Some("BYE"));
}

#[tokio::test]
async fn wrong_voicemail_pins_count_toward_the_ban_like_digest_failures() {
    let mut sim = Sim::new(Some(VOICEMAIL_PLAN)).await;
    let caller = "127.0.0.2";
    let (call_id, _, cseq) = invite(&mut sim, caller, "*98").await;
    let ok = sim.responses_to(caller).pop().unwrap();
    assert_eq!(ok.status.code(), 200);
    ack(&mut sim, caller, &call_id, cseq, &ok).await;
    let call = sim.app.first().map(|(c, _)| *c).unwrap();
    assert_eq!(played(&sim.app), ["vm-login"]);
    for d in "1001#".chars() {
        sim.input(key(call, d)).await;
    }
    assert_eq!(
        played(&sim.app).last().map(String::as_str),
        Some("vm-password")
    );
    let max = MAX_FAILURES as usize;
    let mut attempts = 0;
    let mut bye = false;
    while sim.bans.is_empty() && attempts < 10 {
        attempts += 1;
        for d in "9999#".chars() {
            sim.input(key(call, d)).await;
        }
        // The machine asks again ("login incorrect", "mailbox?") or hangs up after
        // `max_attempts` on this call: a new call keeps guessing from the same source.
        bye = sim
            .requests_to(caller)
            .iter()
            .any(|r| r.method.as_str() == "BYE");
        if bye {
            break;
        }
        sim.input(player_finished(call)).await;
        for d in "1001#".chars() {
            sim.input(key(call, d)).await;
        }
    }
    let failures = sim
        .voicemail
        .iter()
        .filter(|r| matches!(r, VoicemailRequest::Store(StoreRequest::CheckPin { .. })))
        .count();
    assert!(failures >= 1);
    assert!(
        failures <= max,
        "no more PINs checked than the ban limit: {failures} > {max}"
    );
    bye |= sim
        .requests_to(caller)
        .iter()
        .any(|r| r.method.as_str() == "BYE");
    assert!(bye, "banned or out of attempts: the PBX hangs up");
    assert_eq!(
        sim.bans.len(),
        1,
        "{} wrong PINs ban the source",
        MAX_FAILURES
    );
    assert_eq!(sim.bans[0].address, caller.parse::<IpAddr>().unwrap());
}

const IVR_PLAN: &str = r#"
[defaults]
context = "staff"
[context.staff]
may_call = ["any"]
[[context.staff.rule]]
pattern = "800"
steps = [
    "answer",
    { read = { var = "account", prompt = "enter-account", max_digits = 4, timeout = "3s" } },
    { read = { var = "pin", prompt = "enter-pin", max_digits = 4, timeout = "3s" } },
    { db_lookup = { database = "crm", query = "SELECT balance FROM accounts WHERE id = $1 AND pin = $2",
                    params = ["${account}", "${pin}"], set = { balance = "balance" },
                    on_failure = [{ playback = "invalid" }, "hangup"] } },
    { say = { number = "${balance}" } },
    "hangup",
]
"#;

#[tokio::test]
async fn read_digits_look_them_up_and_say_the_answer() {
    let mut sim = Sim::new(Some(IVR_PLAN)).await;
    let caller = "127.0.0.2";
    let (call_id, _, cseq) = invite(&mut sim, caller, "800").await;
    let ok = sim.responses_to(caller).pop().unwrap();
    assert_eq!(ok.status.code(), 200);
    ack(&mut sim, caller, &call_id, cseq, &ok).await;
    let call = sim.app.first().map(|(c, _)| *c).unwrap();
    assert_eq!(played(&sim.app), ["enter-account"]);
    // Four keys fill `account` at once (max_digits), barging into the prompt.
    for d in "4711".chars() {
        sim.input(key(call, d)).await;
    }
    assert_eq!(
        played(&sim.app).last().map(String::as_str),
        Some("enter-pin")
    );
    // The prompt the first key stopped reports its end late: it ends nothing.
    sim.input(player_finished(call)).await;
    assert_eq!(
        played(&sim.app).last().map(String::as_str),
        Some("enter-pin")
    );
    for d in "1234".chars() {
        sim.input(key(call, d)).await;
    }
    sim.input(player_finished(call)).await;
    assert_eq!(sim.db.len(), 1);
    assert_eq!(sim.db[0].params, ["4711", "1234"], "bound, in order");
    assert_eq!(
        played(&sim.app).last().map(String::as_str),
        Some("digits/2+digits/hundred+digits/50")
    );
    sim.input(player_finished(call)).await;
    let bye = sim.requests_to(caller);
    assert_eq!(bye.last().map(|r| r.method.as_str()), Some("BYE"));
}

#[tokio::test]
async fn zero_in_a_mailbox_rings_the_operator() {
    let settings = pbx_engine::VoicemailSettings {
        operator: Some("1000".into()),
        ..Default::default()
    };
    let mut sim = Sim::with_voicemail(Some(VOICEMAIL_PLAN), settings).await;
    let reception = "127.0.0.9";
    assert_eq!(
        register(&mut sim, "1000", reception).await.status.code(),
        200
    );
    let caller = "127.0.0.2";
    let (call_id, _, cseq) = invite(&mut sim, caller, "1001").await;
    let ok = sim.responses_to(caller).pop().unwrap();
    assert_eq!(ok.status.code(), 200);
    ack(&mut sim, caller, &call_id, cseq, &ok).await;
    let call = sim.app.first().map(|(c, _)| *c).unwrap();
    // `0` during the greeting: no message, the operator's phone rings, the caller hears
    // the ringing tone meanwhile.
    sim.input(key(call, '0')).await;
    sim.input(player_finished(call)).await;
    let rung = sim.requests_to(reception);
    assert!(
        rung.iter()
            .any(|r| r.method.as_str() == "INVITE" && r.uri.user() == Some("1000")),
        "{rung:?}"
    );
    assert!(played(&sim.app).iter().any(|p| p == pbx_engine::RINGBACK));
    assert!(
        !sim.app
            .iter()
            .any(|(_, m)| matches!(m, AppMedia::Record { .. })),
        "no message is recorded"
    );
}
