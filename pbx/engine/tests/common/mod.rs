//! The engine in virtual time with fakes for the shell (store, media, local addresses): the
//! set-up every flow test builds its engine with ([`Setup`]), and the trunk flow tests' [`Sim`].
#![allow(dead_code)]

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
use pbx_engine::{Security, TransportKind, VoicemailSettings};
use pbx_sip::auth::{Algorithm, Challenge, DigestAuthenticator};
use pbx_sip::message::{HeaderName, Message, Request, Response};
use pbx_sip::registrar::RegistrarPolicy;
use pbx_store::{CredentialStore, ExtensionStore, NewCdr, NewExtension, Store};
use rand::SeedableRng;
use rand::rngs::StdRng;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub const DOMAIN: &str = "pbx.test";
pub const PBX: &str = "127.0.0.1:5060";
pub const PHONE: &str = "127.0.0.3";
pub const LEGACY: &str = "10.1.2.3";
pub const PROVIDER: &str = "203.0.113.5";
pub const STRANGER: &str = "198.51.100.66";

/// What a flow test's engine is built with: the store's extensions (password
/// `secret{number}`), the plan, the trunks, the digest algorithms offered, the failures before
/// a ban, the voicemail settings and the seed of the engine's randomness.
pub struct Setup<'a> {
    pub extensions: &'a [&'a str],
    pub plan: Option<&'a str>,
    pub trunks: Vec<TrunkPeer>,
    pub algorithms: Vec<Algorithm>,
    pub max_failures: u32,
    pub voicemail: VoicemailSettings,
    pub seed: u64,
}

impl Default for Setup<'_> {
    fn default() -> Self {
        Setup {
            extensions: &["1000", "1001", "1002"],
            plan: None,
            trunks: Vec::new(),
            algorithms: vec![Algorithm::Md5],
            max_failures: 3,
            voicemail: VoicemailSettings::default(),
            seed: 5,
        }
    }
}

/// A flow test's world: the engine, the store it reads through the fake shell, the tables
/// the shards share, and the start of virtual time.
pub struct World {
    pub engine: Engine,
    pub store: Arc<Store>,
    pub core: Arc<Core>,
    pub now: Now,
}

impl Setup<'_> {
    /// The store (in memory) with the extensions, the credential table loaded from it as the
    /// shell does, and one engine shard.
    pub async fn build(self) -> World {
        #[allow(clippy::disallowed_methods)] // one fixed base for virtual time
        let start = Instant::now();
        let store = Arc::new(Store::open("sqlite::memory:").await.unwrap());
        for number in self.extensions {
            let ext = NewExtension {
                number: number.to_string(),
                password: format!("secret{number}"),
                ..NewExtension::default()
            };
            store.add_extension(DOMAIN, ext).await.unwrap();
        }
        let credentials = Arc::new(CredentialCache::new());
        let revision = store.extensions_revision().await.unwrap();
        credentials.replace(revision, store.all_credentials().await.unwrap(), start);
        let guard = Guard::new(
            Acl::new(vec!["0.0.0.0/0".parse().unwrap()], vec![]),
            self.max_failures,
            Duration::from_secs(60),
            Duration::from_secs(600),
            NoRateLimit,
        );
        let digest = DigestAuthenticator::new(
            DOMAIN.into(),
            [7; 32],
            Duration::from_secs(300),
            self.algorithms,
        );
        let plan = self
            .plan
            .map(|text| Arc::new(Plan::parse("test.toml", text).unwrap()));
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
            plan: Arc::new(PlanHandle::new(plan)),
            voicemail: self.voicemail,
            trunks: Arc::new(TrunkTable::new(self.trunks)),
        });
        let engine = Engine::new(core.clone(), 0, StdRng::seed_from_u64(self.seed));
        let now = Now {
            at: start,
            unix_ms: 1_800_000_000_000,
        };
        World {
            engine,
            store,
            core,
            now,
        }
    }
}

pub struct Sim {
    pub engine: Engine,
    pub store: Arc<Store>,
    pub core: Arc<Core>,
    pub now: Now,
    pub sent: Vec<(Peer, Message)>,
    pub cdrs: Vec<NewCdr>,
    pub states: Vec<CallState>,
    pub security: Vec<Security>,
    pub seq: u32,
}

pub fn peer(ip: &str) -> Peer {
    Peer {
        kind: TransportKind::Udp,
        remote: SocketAddr::new(ip.parse().unwrap(), 5060),
        local: PBX.parse().unwrap(),
        conn: None,
    }
}

impl Sim {
    /// Extension 1000 (password secret1000) in the store, `plan` and `trunks`.
    pub async fn new(plan: &str, trunks: Vec<TrunkPeer>) -> Sim {
        let World {
            engine,
            store,
            core,
            now,
        } = Setup {
            extensions: &["1000"],
            plan: Some(plan),
            trunks,
            algorithms: vec![Algorithm::Sha256, Algorithm::Md5],
            max_failures: 5,
            seed: 5,
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
            cdrs: Vec::new(),
            states: Vec::new(),
            security: Vec::new(),
            seq: 0,
        }
    }

    /// Feeds one input and what the fakes answer, until the engine is idle.
    pub async fn input(&mut self, input: Input) {
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

    /// Moves virtual time on by `by`, running every timer due on the way.
    pub async fn advance(&mut self, by: Duration) {
        let until = self.now.at + by;
        while let Some(at) = self.engine.poll_timeout().filter(|at| *at <= until) {
            let step = at.saturating_duration_since(self.now.at);
            self.now.at = at.max(self.now.at);
            self.now.unix_ms += step.as_millis() as u64;
            self.input(Input::Timeout).await;
        }
        let step = until.saturating_duration_since(self.now.at);
        self.now.at = until;
        self.now.unix_ms += step.as_millis() as u64;
    }

    pub async fn receive(&mut self, from: &str, text: String) {
        let message = pbx_sip::parse::parse_message(Bytes::from(text)).unwrap();
        let inbound = Inbound {
            peer: peer(from),
            message,
        };
        self.input(Input::Sip(inbound, None)).await;
    }

    /// The messages sent to `ip` so far (taken), responses and requests apart.
    pub fn sent_to(&mut self, ip: &str) -> (Vec<Response>, Vec<Request>) {
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

    pub fn branch(&mut self) -> String {
        self.seq += 1;
        format!("z9hG4bKtrunk{}", self.seq)
    }

    /// Extension 1000 registers from PHONE (digest answered by the PBX's own client side).
    pub async fn register_phone(&mut self) {
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
pub fn request(
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
pub fn invite(
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
