//! Trunk calls through one sans-IO engine in virtual time (issue 15, part 3): an INVITE
//! from a trunk's `allow` network, or from a registering trunk's host to the registered
//! user, starts in the trunk's context without a digest step; the same INVITE from anywhere
//! else is challenged like any caller.

use bytes::Bytes;
use pbx_dialplan::Plan;
use pbx_engine::credentials::CredentialCache;
use pbx_engine::location::Location;
use pbx_engine::plan::PlanHandle;
use pbx_engine::security::NoRateLimit;
use pbx_engine::security::acl::Acl;
use pbx_engine::security::guard::Guard;
use pbx_engine::trunk::{TrunkPeer, TrunkTable};
use pbx_engine::{CallState, Core, Engine, Inbound, Input, MediaPorts, Now, Output, Peer};
use pbx_engine::{Security, TransportKind};
use pbx_sip::auth::{Algorithm, Challenge, DigestAuthenticator};
use pbx_sip::message::{HeaderName, Message, Request, Response};
use pbx_sip::registrar::RegistrarPolicy;
use pbx_store::{CredentialStore, ExtensionStore, NewCdr, NewExtension, Store};
use rand::SeedableRng;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const DOMAIN: &str = "pbx.test";
const PBX: &str = "127.0.0.1:5060";
const PHONE: &str = "127.0.0.3";
const LEGACY: &str = "10.1.2.3";
const PROVIDER: &str = "203.0.113.5";
const STRANGER: &str = "198.51.100.66";

/// Staff may call extensions; the trunks' contexts map numbers of their own.
const PLAN: &str = r#"
[defaults]
context = "staff"

[context.staff]
[[context.staff.rule]]
extension = true
steps = [{ dial = "${number}" }]

[context.from-legacy]
may_call = ["2000"]
[[context.from-legacy.rule]]
pattern = "2000"
steps = [{ dial = "1000" }]

[context.from-provider]
may_call = ["4930123", "+4930123"]
[[context.from-provider.rule]]
pattern = "+4930123"
steps = [{ dial = "1000" }]
"#;

struct Sim {
    engine: Engine,
    store: Arc<Store>,
    core: Arc<Core>,
    now: Now,
    sent: Vec<(Peer, Message)>,
    cdrs: Vec<NewCdr>,
    states: Vec<CallState>,
    security: Vec<Security>,
    seq: u32,
}

fn peer(ip: &str) -> Peer {
    Peer {
        kind: TransportKind::Udp,
        remote: SocketAddr::new(ip.parse().unwrap(), 5060),
        local: PBX.parse().unwrap(),
        conn: None,
    }
}

fn trunks() -> Vec<TrunkPeer> {
    vec![
        TrunkPeer {
            name: "legacy".into(),
            context: "from-legacy".into(),
            allowed_networks: vec!["10.1.2.0/24".parse().unwrap()],
            registered_user: None,
            addresses: vec![],
            media_encryption: "off".into(),
            channels: 1,
        },
        TrunkPeer {
            name: "provider".into(),
            context: "from-provider".into(),
            allowed_networks: vec![],
            registered_user: Some("acct42".into()),
            addresses: vec![PROVIDER.parse().unwrap()],
            media_encryption: "optional".into(),
            channels: 0,
        },
    ]
}

impl Sim {
    async fn new() -> Sim {
        #[allow(clippy::disallowed_methods)] // one fixed base for virtual time
        let start = Instant::now();
        let store = Arc::new(Store::open("sqlite::memory:").await.unwrap());
        let ext = NewExtension {
            number: "1000".into(),
            password: "secret1000".into(),
            ..NewExtension::default()
        };
        store.add_extension(DOMAIN, ext).await.unwrap();
        let credentials = Arc::new(CredentialCache::new());
        let revision = store.extensions_revision().await.unwrap();
        credentials.replace(revision, store.all_credentials().await.unwrap(), start);
        let guard = Guard::new(
            Acl::new(vec!["0.0.0.0/0".parse().unwrap()], vec![]),
            5,
            Duration::from_secs(60),
            Duration::from_secs(600),
            NoRateLimit,
        );
        let digest = DigestAuthenticator::new(
            DOMAIN.into(),
            [7; 32],
            Duration::from_secs(300),
            vec![Algorithm::Sha256, Algorithm::Md5],
        );
        let plan = Arc::new(Plan::parse("test.toml", PLAN).unwrap());
        let core = Arc::new(Core {
            domain: DOMAIN.into(),
            user_agent: "pbx-test".into(),
            guard: Arc::new(guard),
            credentials,
            location: Arc::new(Location::new()),
            digest: Arc::new(Mutex::new(digest)),
            policy: RegistrarPolicy {
                min_expires: 60,
                max_expires: 3600,
                default_expires: 600,
                max_bindings_per_aor: 10,
            },
            md5_only_user_agents: vec![],
            public_ip: None,
            media_bind: None,
            dtls_fingerprint: None,
            sdes_over_insecure: false,
            ring_timeout: Duration::from_secs(30),
            plan: Arc::new(PlanHandle::new(Some(plan))),
            voicemail: Default::default(),
            trunks: Arc::new(TrunkTable::new(trunks())),
        });
        let engine = Engine::new(core.clone(), 0, rand::rngs::StdRng::seed_from_u64(5));
        Sim {
            engine,
            store,
            core,
            now: Now {
                at: start,
                unix_ms: 1_800_000_000_000,
            },
            sent: Vec::new(),
            cdrs: Vec::new(),
            states: Vec::new(),
            security: Vec::new(),
            seq: 0,
        }
    }

    /// Feeds one input and what the fakes answer, until the engine is idle.
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
                    Output::AllocateMedia { call } => {
                        let ports = Ok(MediaPorts {
                            caller: 40_000,
                            callee: 40_002,
                        });
                        queue.push(Input::MediaAllocated { call, ports });
                    }
                    Output::ResolveLocalAddress { toward } => {
                        let local = Some(IpAddr::from([127, 0, 0, 1]));
                        queue.push(Input::LocalAddress { toward, local });
                    }
                    Output::WriteCdr(cdr) => self.cdrs.push(cdr),
                    Output::CallState(state) => self.states.push(state),
                    Output::Security(event) => self.security.push(event),
                    _ => {}
                }
            }
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

    /// The messages sent to `ip` so far (taken), responses and requests apart.
    fn sent_to(&mut self, ip: &str) -> (Vec<Response>, Vec<Request>) {
        let (to, rest): (Vec<_>, Vec<_>) = std::mem::take(&mut self.sent)
            .into_iter()
            .partition(|(p, _)| p.remote.ip().to_string() == ip);
        self.sent = rest;
        let mut responses = Vec::new();
        let mut requests = Vec::new();
        for (_, message) in to {
            match message {
                Message::Response(r) => responses.push(r),
                Message::Request(r) => requests.push(r),
            }
        }
        (responses, requests)
    }

    fn branch(&mut self) -> String {
        self.seq += 1;
        format!("z9hG4bKtrunk{}", self.seq)
    }

    /// Extension 1000 registers from PHONE (digest answered by the PBX's own client side).
    async fn register_phone(&mut self) {
        let uri = format!("sip:{DOMAIN}");
        let branch = self.branch();
        let text = request(
            "REGISTER", &uri, PHONE, "1000", "1000", "reg-1000", 1, &branch, "",
        );
        self.receive(PHONE, text).await;
        let (responses, _) = self.sent_to(PHONE);
        let challenge = responses.last().unwrap();
        let values: Vec<&str> = challenge
            .headers
            .get_all(&HeaderName::WWW_AUTHENTICATE)
            .filter_map(|v| std::str::from_utf8(v).ok())
            .collect();
        let challenge = Challenge::pick(values).unwrap();
        let auth = challenge.answer("1000", "secret1000", "REGISTER", &uri, 1, "cafe");
        let extra = format!("Authorization: {auth}\r\nExpires: 600\r\n");
        let branch = self.branch();
        let text = request(
            "REGISTER", &uri, PHONE, "1000", "1000", "reg-1000", 2, &branch, &extra,
        );
        self.receive(PHONE, text).await;
        let (responses, _) = self.sent_to(PHONE);
        assert_eq!(responses.last().map(|r| r.status.code()), Some(200));
    }
}

#[allow(clippy::too_many_arguments)] // a request's header values, spelled out
fn request(
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
         From: \"Caller\" <sip:{user}@{from_ip}>;tag=from{cseq}\r\n\
         To: <sip:{to_user}@{DOMAIN}>\r\n\
         Call-ID: {call_id}\r\n\
         CSeq: {cseq} {method}\r\n\
         Contact: <sip:{user}@{from_ip}:5060>\r\n\
         {extra}\
         Content-Length: 0\r\n\r\n"
    )
}

/// An INVITE with a G.711 offer.
fn invite(
    uri: &str,
    from_ip: &str,
    caller: &str,
    to_user: &str,
    call_id: &str,
    branch: &str,
) -> String {
    let body = format!(
        "v=0\r\no=- 1 1 IN IP4 {from_ip}\r\ns=-\r\nc=IN IP4 {from_ip}\r\nt=0 0\r\n\
         m=audio 4000 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n"
    );
    request(
        "INVITE", uri, from_ip, caller, to_user, call_id, 1, branch, "",
    )
    .replace(
        "Content-Length: 0\r\n\r\n",
        &format!(
            "Content-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        ),
    )
}

/// Nothing but provisional answers so far: the call goes on, unchallenged.
fn ringing(responses: &[Response]) -> bool {
    responses.iter().all(|r| r.status.code() < 200)
}

fn codes(responses: &[Response]) -> Vec<u16> {
    responses.iter().map(|r| r.status.code()).collect()
}

#[tokio::test]
async fn an_invite_from_an_allowed_network_starts_in_the_trunks_context_without_digest() {
    let mut sim = Sim::new().await;
    sim.register_phone().await;
    let branch = sim.branch();
    let text = invite(
        "sip:2000@pbx.test",
        LEGACY,
        "+4930555",
        "2000",
        "legacy-1",
        &branch,
    );
    sim.receive(LEGACY, text).await;

    // No challenge (no final answer yet), and the phone of 1000 rings (from-legacy maps 2000).
    let (responses, _) = sim.sent_to(LEGACY);
    assert!(ringing(&responses), "{:?}", codes(&responses));
    let (_, to_phone) = sim.sent_to(PHONE);
    let ring = to_phone
        .iter()
        .find(|r| r.method.as_str() == "INVITE")
        .expect("1000 is rung");
    // The devices see the external caller.
    let from = ring.headers.from().unwrap();
    assert_eq!(from.uri.user(), Some("+4930555"));
    assert_eq!(from.display_name.as_deref(), Some("Caller"));
    assert!(matches!(
        sim.states.first(),
        Some(CallState::Started { caller, called, .. }) if caller == "+4930555" && called == "2000"
    ));
    assert!(sim.security.is_empty(), "{:?}", sim.security);

    // The phone is busy: the trunk hears 486, and the CDR names the external caller.
    let busy = format!(
        "SIP/2.0 486 Busy Here\r\nVia: {}\r\nFrom: {}\r\nTo: {};tag=dev\r\nCall-ID: {}\r\n\
         CSeq: {}\r\nContent-Length: 0\r\n\r\n",
        ring.headers.get_str(&HeaderName::VIA).unwrap(),
        ring.headers.get_str(&HeaderName::FROM).unwrap(),
        ring.headers.get_str(&HeaderName::TO).unwrap(),
        ring.headers.call_id().unwrap(),
        ring.headers.get_str(&HeaderName::CSEQ).unwrap(),
    );
    // The legacy trunk has one channel: a second call meanwhile is refused with 503.
    let branch = sim.branch();
    let text = invite(
        "sip:2000@pbx.test",
        LEGACY,
        "+4930556",
        "2000",
        "legacy-busy",
        &branch,
    );
    sim.receive(LEGACY, text).await;
    let (responses, _) = sim.sent_to(LEGACY);
    assert_eq!(codes(&responses), [503]);
    assert_eq!(sim.core.trunks.in_use("legacy"), 1);

    sim.receive(PHONE, busy).await;
    let (responses, _) = sim.sent_to(LEGACY);
    assert_eq!(codes(&responses), [486]);
    // The call is over: its channel is free again.
    assert_eq!(sim.core.trunks.in_use("legacy"), 0);
    assert_eq!(
        sim.cdrs
            .iter()
            .map(|c| c.caller.as_str())
            .collect::<Vec<_>>(),
        ["+4930555"]
    );
}

#[tokio::test]
async fn the_trunks_context_decides_what_its_callers_reach() {
    let mut sim = Sim::new().await;
    sim.register_phone().await;
    // 1000 is an extension, but from-legacy may only call 2000: the trunk cannot dial it
    // directly as staff could.
    let branch = sim.branch();
    let text = invite(
        "sip:1000@pbx.test",
        LEGACY,
        "+4930555",
        "1000",
        "legacy-2",
        &branch,
    );
    sim.receive(LEGACY, text).await;
    let (responses, _) = sim.sent_to(LEGACY);
    assert_eq!(codes(&responses).last(), Some(&403));
    let (_, to_phone) = sim.sent_to(PHONE);
    assert!(to_phone.is_empty());
}

#[tokio::test]
async fn the_same_invite_from_elsewhere_is_challenged_not_routed() {
    let mut sim = Sim::new().await;
    sim.register_phone().await;
    let branch = sim.branch();
    let text = invite(
        "sip:2000@pbx.test",
        STRANGER,
        "+4930555",
        "2000",
        "fake-1",
        &branch,
    );
    sim.receive(STRANGER, text).await;
    let (responses, _) = sim.sent_to(STRANGER);
    assert_eq!(codes(&responses), [407]);
    let (_, to_phone) = sim.sent_to(PHONE);
    assert!(to_phone.is_empty());
    assert!(sim.states.is_empty());
}

#[tokio::test]
async fn an_invite_to_the_registered_user_from_the_providers_host_is_the_providers_call() {
    let mut sim = Sim::new().await;
    sim.register_phone().await;
    // The provider sends the DID in To and the registered Contact as Request-URI.
    let branch = sim.branch();
    let text = invite(
        "sip:acct42@127.0.0.1:5060",
        PROVIDER,
        "+4940777",
        "+4930123",
        "prov-1",
        &branch,
    );
    // The number called is the To user (the DID) when the Request-URI is the registered
    // Contact.
    sim.receive(PROVIDER, text).await;
    let (responses, _) = sim.sent_to(PROVIDER);
    assert!(ringing(&responses), "{:?}", codes(&responses));
    let (_, to_phone) = sim.sent_to(PHONE);
    assert!(to_phone.iter().any(|r| r.method.as_str() == "INVITE"));
    assert!(matches!(
        sim.states.first(),
        Some(CallState::Started { caller, called, .. }) if caller == "+4940777" && called == "+4930123"
    ));

    // The DID in the Request-URI and the registered user in To: the provider's call too.
    let branch = sim.branch();
    let text = invite(
        "sip:+4930123@127.0.0.1:5060",
        PROVIDER,
        "+4940777",
        "acct42",
        "prov-2",
        &branch,
    );
    sim.receive(PROVIDER, text).await;
    let (responses, _) = sim.sent_to(PROVIDER);
    assert!(ringing(&responses), "{:?}", codes(&responses));
    let (_, to_phone) = sim.sent_to(PHONE);
    assert!(to_phone.iter().any(|r| r.method.as_str() == "INVITE"));

    // The registered user named from another address is no provider call.
    let branch = sim.branch();
    let text = invite(
        "sip:+4930123@127.0.0.1:5060",
        STRANGER,
        "+4940777",
        "acct42",
        "fake-2",
        &branch,
    );
    sim.receive(STRANGER, text).await;
    let (responses, _) = sim.sent_to(STRANGER);
    assert_eq!(codes(&responses), [407]);
}
