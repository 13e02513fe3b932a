//! Message-waiting indication (RFC 3842, RFC 6665) through one sans-IO engine in virtual
//! time: a phone subscribes (digest), gets 200 and a NOTIFY, refreshes, unsubscribes, lets
//! the subscription expire, refuses a NOTIFY; the shell reports mailbox changes; flagged
//! extensions get unsolicited NOTIFYs. Counts come from an in-memory SQLite store, as the
//! shell would read them.

mod common;

use bytes::Bytes;
use common::{DOMAIN, Setup, World};
use pbx_engine::{Core, Engine, Inbound, Input, Now, Output, Peer, TransportKind};
use pbx_sip::auth::{Algorithm, ha1_hex};
use pbx_sip::message::{HeaderName, Message, Request, Response};
use pbx_sip::status::StatusCode;
use pbx_store::{
    CredentialStore, ExtensionChanges, ExtensionStore, Folder, MailboxStore, MessageCounts,
    NewMessage, Store,
};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

const PHONE: &str = "10.0.0.1";
const STATE: HeaderName = HeaderName::from_static("Subscription-State");

struct Sim {
    engine: Engine,
    store: Arc<Store>,
    core: Arc<Core>,
    now: Now,
    sent: Vec<(Peer, Message)>,
    branch: u32,
    /// The listener messages arrive on (`0.0.0.0:5060` for a wildcard one).
    listener: SocketAddr,
}

fn peer(ip: &str, listener: SocketAddr) -> Peer {
    Peer {
        kind: TransportKind::Udp,
        remote: SocketAddr::new(ip.parse().unwrap(), 5060),
        local: listener,
        conn: None,
    }
}

impl Sim {
    async fn new() -> Sim {
        let World {
            engine,
            store,
            core,
            now,
        } = Setup::default().build().await;
        Sim {
            engine,
            store,
            core,
            now,
            sent: Vec::new(),
            branch: 0,
            listener: "127.0.0.1:5060".parse().unwrap(),
        }
    }

    /// The shell's periodic re-read of the credential table.
    async fn reload_credentials(&mut self) {
        let revision = self.store.extensions_revision().await.unwrap();
        let all = self.store.all_credentials().await.unwrap();
        self.core.credentials.replace(revision, all, self.now.at);
    }

    /// Feeds one input and what the fake shell answers, in order (as the driver: answers it
    /// has at once, like the local address, come before the store's), until idle.
    async fn input(&mut self, input: Input) {
        let mut queue = std::collections::VecDeque::from([input]);
        while let Some(input) = queue.pop_front() {
            self.engine.handle(self.now, input);
            while let Some(output) = self.engine.poll_output() {
                match output {
                    Output::Transmit { peer, bytes, .. } => {
                        let message = pbx_sip::parse::parse_message(bytes).unwrap();
                        self.sent.push((peer, message));
                    }
                    Output::MessageCounts { id, mailbox } => {
                        let counts = self.store.message_counts(&mailbox).await;
                        let counts = counts.map_err(|e| e.to_string());
                        queue.push_back(Input::MessageCounts { id, counts });
                    }
                    Output::LoadCredentials { id, user } => {
                        let found = self.store.credentials(&user).await;
                        let lookup = found
                            .map(|f| self.core.credentials.remember(&user, f, self.now.at))
                            .map_err(|e| e.to_string());
                        queue.push_back(Input::Credentials { id, lookup });
                    }
                    Output::ResolveLocalAddress { toward } => {
                        let local = Some(IpAddr::from([127, 0, 0, 1]));
                        queue.push_back(Input::LocalAddress { toward, local });
                    }
                    _ => {}
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

    /// Runs the timers until `at` (virtual time).
    async fn run_until(&mut self, at: Instant) {
        while self.engine.poll_timeout().is_some_and(|t| t <= at) {
            self.step().await;
        }
        self.now = self.now.advanced_to(at.max(self.now.at));
    }

    async fn receive(&mut self, from: &str, text: &str) {
        let message = pbx_sip::parse::parse_message(Bytes::from(text.to_string())).unwrap();
        let inbound = Inbound {
            peer: peer(from, self.listener),
            message,
        };
        self.input(Input::Sip(inbound, None)).await;
    }

    /// Everything sent so far, split into responses and requests (taken).
    fn take(&mut self) -> (Vec<Response>, Vec<Request>) {
        let mut responses = Vec::new();
        let mut requests = Vec::new();
        for (_, message) in std::mem::take(&mut self.sent) {
            match message {
                Message::Response(r) => responses.push(r),
                Message::Request(r) => requests.push(r),
            }
        }
        (responses, requests)
    }

    /// Answers a request the PBX sent, as the phone at `from`.
    async fn answer(&mut self, from: &str, request: &Request, status: StatusCode) {
        let response = Response::for_request(request, status, Some("phone"));
        let message = Message::Response(response);
        let inbound = Inbound {
            peer: peer(from, self.listener),
            message,
        };
        self.input(Input::Sip(inbound, None)).await;
    }

    fn next_branch(&mut self) -> String {
        self.branch += 1;
        format!("z9hG4bKmwi{}", self.branch)
    }

    async fn changed(&mut self, mailbox: &str, unsolicited: bool) {
        let counts = self.store.message_counts(mailbox).await.unwrap();
        let input = Input::MailboxChanged {
            mailbox: mailbox.into(),
            counts,
            unsolicited,
        };
        self.input(input).await;
    }

    async fn leave_message(&self, mailbox: &str) -> i64 {
        let message = NewMessage {
            mailbox: mailbox.into(),
            caller_number: "2000".into(),
            caller_name: String::new(),
            received_at: 1,
            duration_ms: 3000,
            path: "m.wav".into(),
        };
        self.store.add_message(&message).await.unwrap()
    }
}

/// A SUBSCRIBE from `user` at PHONE for `mailbox`; `to_tag` for one in the dialog.
#[derive(Clone, Copy)]
struct Subscribe<'a> {
    user: &'a str,
    mailbox: &'a str,
    call_id: &'a str,
    cseq: u32,
    to_tag: Option<&'a str>,
    extra: &'a str,
}

impl Subscribe<'_> {
    fn text(&self, branch: &str, authorization: Option<String>) -> String {
        let uri = format!("sip:{}@{DOMAIN}", self.mailbox);
        let to_tag = self.to_tag.map(|t| format!(";tag={t}")).unwrap_or_default();
        let auth = authorization
            .map(|a| format!("Authorization: {a}\r\n"))
            .unwrap_or_default();
        format!(
            "SUBSCRIBE {uri} SIP/2.0\r\n\
             Via: SIP/2.0/UDP {PHONE}:5060;branch={branch}\r\n\
             Max-Forwards: 70\r\n\
             From: <sip:{user}@{DOMAIN}>;tag=sub{user}\r\n\
             To: <{uri}>{to_tag}\r\n\
             Call-ID: {call_id}\r\n\
             CSeq: {cseq} SUBSCRIBE\r\n\
             Contact: <sip:{user}@{PHONE}:5060>\r\n\
             {extra}{auth}\
             Content-Length: 0\r\n\r\n",
            user = self.user,
            call_id = self.call_id,
            cseq = self.cseq,
            extra = self.extra,
        )
    }
}

/// Sends a SUBSCRIBE, answers a 401 with the user's credentials; returns what the engine
/// sent after the (last) SUBSCRIBE.
async fn subscribe(sim: &mut Sim, sub: Subscribe<'_>) -> (Vec<Response>, Vec<Request>) {
    let branch = sim.next_branch();
    sim.receive(PHONE, &sub.text(&branch, None)).await;
    let (responses, requests) = sim.take();
    let challenge = match responses.first() {
        Some(r) if r.status == StatusCode::UNAUTHORIZED => r
            .headers
            .get_str(&HeaderName::WWW_AUTHENTICATE)
            .unwrap_or_default()
            .to_string(),
        _ => return (responses, requests),
    };
    let uri = format!("sip:{}@{DOMAIN}", sub.mailbox);
    let password = format!("secret{}", sub.user);
    let auth = authorization(&challenge, sub.user, &password, "SUBSCRIBE", &uri);
    let again = Subscribe {
        cseq: sub.cseq + 1,
        ..sub
    };
    let branch = sim.next_branch();
    sim.receive(PHONE, &again.text(&branch, Some(auth))).await;
    sim.take()
}

/// The `Authorization` answering `challenge` (MD5, qop=auth).
fn authorization(challenge: &str, user: &str, password: &str, method: &str, uri: &str) -> String {
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
    let (nonce, opaque) = (param("nonce"), param("opaque"));
    let ha1 = ha1_hex(Algorithm::Md5, user, DOMAIN, password);
    let ha2 = Algorithm::Md5.hash_hex(format!("{method}:{uri}").as_bytes());
    let response =
        Algorithm::Md5.hash_hex(format!("{ha1}:{nonce}:00000001:c0ffee:auth:{ha2}").as_bytes());
    format!(
        "Digest username=\"{user}\", realm=\"{DOMAIN}\", nonce=\"{nonce}\", uri=\"{uri}\", \
         algorithm=MD5, qop=auth, nc=00000001, cnonce=\"c0ffee\", response=\"{response}\", \
         opaque=\"{opaque}\""
    )
}

fn header(headers: &pbx_sip::message::Headers, name: &HeaderName) -> String {
    headers.get_str(name).unwrap_or_default().to_string()
}

fn body(request: &Request) -> String {
    String::from_utf8_lossy(&request.body).into_owned()
}

fn tag_of(value: &str) -> String {
    value
        .split(";tag=")
        .nth(1)
        .map(|t| t.split(';').next().unwrap_or_default().to_string())
        .unwrap_or_default()
}

/// Subscribes 1000 to its own mailbox and checks the 200 and the first NOTIFY; answers it
/// 200. Returns the PBX's tag (the subscription's To tag).
async fn subscribed(sim: &mut Sim, call_id: &str) -> String {
    let sub = Subscribe {
        user: "1000",
        mailbox: "1000",
        call_id,
        cseq: 1,
        to_tag: None,
        extra: "Event: message-summary\r\nExpires: 600\r\n\
                Accept: application/simple-message-summary\r\n",
    };
    let (responses, notifies) = subscribe(sim, sub).await;
    assert_eq!(responses.len(), 1, "{responses:?}");
    let ok = &responses[0];
    assert_eq!(ok.status, StatusCode::OK);
    assert_eq!(header(&ok.headers, &HeaderName::EXPIRES), "600");
    assert!(header(&ok.headers, &HeaderName::CONTACT).contains("127.0.0.1:5060"));
    let tag = tag_of(&header(&ok.headers, &HeaderName::TO));
    assert!(!tag.is_empty(), "the 200 makes the dialog: To tag");
    assert_eq!(notifies.len(), 1, "a NOTIFY at once (RFC 6665 §4.2.1.2)");
    let notify = &notifies[0];
    assert_eq!(notify.uri.to_string(), format!("sip:1000@{PHONE}:5060"));
    assert_eq!(notify.headers.call_id(), Some(call_id));
    assert_eq!(tag_of(&header(&notify.headers, &HeaderName::FROM)), tag);
    assert_eq!(tag_of(&header(&notify.headers, &HeaderName::TO)), "sub1000");
    assert_eq!(
        header(&notify.headers, &HeaderName::EVENT),
        "message-summary"
    );
    assert_eq!(header(&notify.headers, &STATE), "active;expires=600");
    assert_eq!(
        header(&notify.headers, &HeaderName::CONTENT_TYPE),
        "application/simple-message-summary"
    );
    assert_eq!(
        body(notify),
        "Messages-Waiting: no\r\nMessage-Account: sip:1000@pbx.test\r\nVoice-Message: 0/0 (0/0)\r\n"
    );
    sim.answer(PHONE, notify, StatusCode::OK).await;
    tag
}

#[tokio::test]
async fn subscribe_gets_200_and_a_notify_then_each_change() {
    let mut sim = Sim::new().await;
    subscribed(&mut sim, "mwi-a").await;

    // A message arrives, another is saved: the lamp goes on with 1 new and 1 old.
    sim.leave_message("1000").await;
    let saved = sim.leave_message("1000").await;
    sim.store.move_message(saved, Folder::Saved).await.unwrap();
    sim.changed("1000", false).await;
    let (_, notifies) = sim.take();
    assert_eq!(notifies.len(), 1);
    let notify = &notifies[0];
    assert!(body(notify).starts_with("Messages-Waiting: yes\r\n"));
    assert!(body(notify).contains("Voice-Message: 1/1 (0/0)"));
    assert_eq!(
        notify.headers.cseq().unwrap().seq,
        2,
        "the dialog's CSeq goes on"
    );
    sim.answer(PHONE, notify, StatusCode::OK).await;

    // The same counts again (a change seen twice) send nothing; another mailbox neither.
    sim.changed("1000", false).await;
    sim.changed("1001", false).await;
    assert!(sim.take().1.is_empty());
}

#[tokio::test]
async fn changes_wait_for_the_notify_on_its_way() {
    let mut sim = Sim::new().await;
    subscribed(&mut sim, "mwi-order").await;
    sim.leave_message("1000").await;
    sim.changed("1000", false).await;
    let (_, first) = sim.take();
    assert_eq!(first.len(), 1);
    sim.leave_message("1000").await;
    sim.changed("1000", false).await;
    assert!(sim.take().1.is_empty(), "one NOTIFY at a time");
    sim.answer(PHONE, &first[0], StatusCode::OK).await;
    let (_, second) = sim.take();
    assert_eq!(second.len(), 1, "the newer state follows the answer");
    assert!(body(&second[0]).contains("Voice-Message: 2/0 (0/0)"));
}

#[tokio::test]
async fn refresh_unsubscribe_and_refusals() {
    let mut sim = Sim::new().await;
    let tag = subscribed(&mut sim, "mwi-r").await;

    // Refresh in the dialog: no new challenge, a shorter duration, a NOTIFY again.
    let refresh = Subscribe {
        user: "1000",
        mailbox: "1000",
        call_id: "mwi-r",
        cseq: 5,
        to_tag: Some(&tag),
        extra: "Event: message-summary\r\nExpires: 300\r\n",
    };
    let branch = sim.next_branch();
    sim.receive(PHONE, &refresh.text(&branch, None)).await;
    let (responses, notifies) = sim.take();
    assert_eq!(responses[0].status, StatusCode::OK);
    assert_eq!(header(&responses[0].headers, &HeaderName::EXPIRES), "300");
    assert_eq!(header(&notifies[0].headers, &STATE), "active;expires=300");
    sim.answer(PHONE, &notifies[0], StatusCode::OK).await;

    // Too brief: 423 with Min-Expires; a stale CSeq: 500.
    let brief = Subscribe {
        cseq: 6,
        extra: "Event: message-summary\r\nExpires: 10\r\n",
        ..refresh
    };
    let branch = sim.next_branch();
    sim.receive(PHONE, &brief.text(&branch, None)).await;
    let (responses, _) = sim.take();
    assert_eq!(responses[0].status, StatusCode::INTERVAL_TOO_BRIEF);
    assert_eq!(
        header(&responses[0].headers, &HeaderName::MIN_EXPIRES),
        "60"
    );
    let stale = Subscribe { cseq: 4, ..refresh };
    let branch = sim.next_branch();
    sim.receive(PHONE, &stale.text(&branch, None)).await;
    assert_eq!(sim.take().0[0].status, StatusCode::SERVER_INTERNAL_ERROR);

    // Unsubscribe: 200 with Expires 0, then the final NOTIFY with the state.
    let bye = Subscribe {
        cseq: 7,
        extra: "Event: message-summary\r\nExpires: 0\r\n",
        ..refresh
    };
    let branch = sim.next_branch();
    sim.receive(PHONE, &bye.text(&branch, None)).await;
    let (responses, notifies) = sim.take();
    assert_eq!(responses[0].status, StatusCode::OK);
    assert_eq!(header(&responses[0].headers, &HeaderName::EXPIRES), "0");
    assert_eq!(
        header(&notifies[0].headers, &STATE),
        "terminated;reason=timeout"
    );
    assert!(body(&notifies[0]).starts_with("Messages-Waiting: no"));
    // Gone: changes send nothing, a refresh gets 481.
    sim.leave_message("1000").await;
    sim.changed("1000", false).await;
    assert!(sim.take().1.is_empty());
    let late = Subscribe { cseq: 8, ..refresh };
    let branch = sim.next_branch();
    sim.receive(PHONE, &late.text(&branch, None)).await;
    assert_eq!(sim.take().0[0].status, StatusCode::CALL_DOES_NOT_EXIST);
}

#[tokio::test]
async fn wrong_event_brief_interval_and_another_mailbox_are_refused() {
    let mut sim = Sim::new().await;
    let presence = Subscribe {
        user: "1000",
        mailbox: "1000",
        call_id: "mwi-e",
        cseq: 1,
        to_tag: None,
        extra: "Event: presence\r\nExpires: 600\r\n",
    };
    let (responses, _) = subscribe(&mut sim, presence).await;
    assert_eq!(
        responses[0].status.code(),
        489,
        "Bad Event before any challenge"
    );
    assert_eq!(
        header(&responses[0].headers, &HeaderName::ALLOW_EVENTS),
        "message-summary"
    );
    let brief = Subscribe {
        call_id: "mwi-b",
        extra: "Event: message-summary\r\nExpires: 5\r\n",
        ..presence
    };
    let (responses, _) = subscribe(&mut sim, brief).await;
    assert_eq!(responses[0].status, StatusCode::INTERVAL_TOO_BRIEF);
    assert_eq!(
        header(&responses[0].headers, &HeaderName::MIN_EXPIRES),
        "60"
    );

    // 1001 authenticates fine but may not watch 1000's mailbox.
    let snoop = Subscribe {
        user: "1001",
        call_id: "mwi-s",
        extra: "Event: message-summary\r\n",
        ..presence
    };
    let (responses, notifies) = subscribe(&mut sim, snoop).await;
    assert_eq!(responses[0].status, StatusCode::FORBIDDEN);
    assert!(notifies.is_empty());

    // A wrong password is a failed authentication like any other (401 again).
    let branch = sim.next_branch();
    let wrong = Subscribe {
        call_id: "mwi-w",
        extra: "Event: message-summary\r\n",
        ..presence
    };
    sim.receive(PHONE, &wrong.text(&branch, None)).await;
    let challenge = header(&sim.take().0[0].headers, &HeaderName::WWW_AUTHENTICATE);
    let auth = authorization(
        &challenge,
        "1000",
        "wrong",
        "SUBSCRIBE",
        "sip:1000@pbx.test",
    );
    let branch = sim.next_branch();
    sim.receive(PHONE, &wrong.text(&branch, Some(auth))).await;
    assert_eq!(sim.take().0[0].status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn the_subscription_expires_in_virtual_time() {
    let mut sim = Sim::new().await;
    let tag = subscribed(&mut sim, "mwi-x").await;
    let start = sim.now.at;
    sim.run_until(start + Duration::from_secs(599)).await;
    assert!(sim.take().1.is_empty(), "not before its time");
    sim.run_until(start + Duration::from_secs(601)).await;
    let (_, notifies) = sim.take();
    // The final NOTIFY, and its retransmissions while the phone does not answer.
    assert!(!notifies.is_empty());
    for notify in &notifies {
        assert_eq!(header(&notify.headers, &STATE), "terminated;reason=timeout");
        assert_eq!(notify.headers.cseq().unwrap().seq, 2);
    }
    let refresh = Subscribe {
        user: "1000",
        mailbox: "1000",
        call_id: "mwi-x",
        cseq: 9,
        to_tag: Some(&tag),
        extra: "Event: message-summary\r\nExpires: 600\r\n",
    };
    let branch = sim.next_branch();
    sim.receive(PHONE, &refresh.text(&branch, None)).await;
    assert_eq!(sim.take().0[0].status, StatusCode::CALL_DOES_NOT_EXIST);
}

#[tokio::test]
async fn a_481_or_no_answer_to_notify_ends_the_subscription() {
    let mut sim = Sim::new().await;
    subscribed(&mut sim, "mwi-481").await;
    sim.leave_message("1000").await;
    sim.changed("1000", false).await;
    let (_, notifies) = sim.take();
    sim.answer(PHONE, &notifies[0], StatusCode::CALL_DOES_NOT_EXIST)
        .await;
    assert!(
        sim.take().1.is_empty(),
        "no final NOTIFY to a dialog it denies"
    );
    sim.leave_message("1000").await;
    sim.changed("1000", false).await;
    assert!(sim.take().1.is_empty(), "481 ended it (RFC 6665 §4.2.2)");

    // A phone that stops answering: Timer F ends the subscription.
    let mut sim = Sim::new().await;
    subscribed(&mut sim, "mwi-gone").await;
    sim.leave_message("1000").await;
    sim.changed("1000", false).await;
    assert_eq!(sim.take().1.len(), 1);
    let start = sim.now.at;
    sim.run_until(start + Duration::from_secs(40)).await;
    let retransmitted = sim.take().1;
    assert!(retransmitted.len() > 3, "Timer E retransmits over UDP");
    sim.leave_message("1000").await;
    sim.changed("1000", false).await;
    assert!(sim.take().1.is_empty(), "the timeout ended it");
}

#[tokio::test]
async fn unsolicited_notifies_go_to_flagged_extensions_only() {
    let mut sim = Sim::new().await;
    let on = ExtensionChanges {
        mwi_unsolicited: Some(true),
        ..Default::default()
    };
    sim.store
        .update_extension(DOMAIN, "1002", &on)
        .await
        .unwrap();
    sim.reload_credentials().await;
    sim.leave_message("1002").await;
    sim.leave_message("1001").await;
    for (user, ip) in [("1002", "10.0.0.2"), ("1001", "10.0.0.3")] {
        register(&mut sim, user, ip).await;
    }
    let (_, requests) = sim.take();
    assert_eq!(
        requests.len(),
        1,
        "only the flagged extension: {requests:?}"
    );
    let notify = &requests[0];
    assert_eq!(notify.uri.to_string(), "sip:1002@10.0.0.2:5060");
    assert_eq!(
        header(&notify.headers, &HeaderName::EVENT),
        "message-summary"
    );
    assert!(body(notify).contains("Message-Account: sip:1002@pbx.test"));
    assert!(body(notify).contains("Voice-Message: 1/0 (0/0)"));
    assert!(
        notify.headers.call_id().unwrap().starts_with("pbx0-"),
        "its answer routes back to this shard"
    );
    sim.answer("10.0.0.2", notify, StatusCode::OK).await;

    // A change, on the shard the shell picks for unsolicited NOTIFYs.
    let id = sim.leave_message("1002").await;
    sim.changed("1002", false).await;
    assert!(sim.take().1.is_empty(), "another shard sends them");
    sim.changed("1002", true).await;
    let (_, requests) = sim.take();
    assert_eq!(requests.len(), 1);
    assert!(body(&requests[0]).contains("Voice-Message: 2/0 (0/0)"));
    sim.changed("1002", true).await;
    assert!(sim.take().1.is_empty(), "nothing new");
    sim.store.move_message(id, Folder::Old).await.unwrap();
    sim.changed("1002", true).await;
    let (_, requests) = sim.take();
    assert!(body(&requests[0]).contains("Voice-Message: 1/1 (0/0)"));
    let counts = sim.store.message_counts("1002").await.unwrap();
    assert_eq!(
        counts,
        MessageCounts {
            new: 1,
            old: 1,
            saved: 0
        }
    );
}

/// Registers `user` from `ip` (answering the 401).
async fn register(sim: &mut Sim, user: &str, ip: &str) {
    let text = |branch: &str, cseq: u32, auth: &str| {
        format!(
            "REGISTER sip:{DOMAIN} SIP/2.0\r\nVia: SIP/2.0/UDP {ip}:5060;branch={branch}\r\n\
             Max-Forwards: 70\r\nFrom: <sip:{user}@{DOMAIN}>;tag=r{user}\r\n\
             To: <sip:{user}@{DOMAIN}>\r\nCall-ID: reg-{user}\r\nCSeq: {cseq} REGISTER\r\n\
             Contact: <sip:{user}@{ip}:5060>\r\nExpires: 600\r\n{auth}Content-Length: 0\r\n\r\n"
        )
    };
    // What was sent before stays for the test to see.
    let earlier = std::mem::take(&mut sim.sent);
    let branch = sim.next_branch();
    sim.receive(ip, &text(&branch, 1, "")).await;
    let (responses, _) = sim.take();
    let challenge = header(&responses[0].headers, &HeaderName::WWW_AUTHENTICATE);
    let uri = format!("sip:{DOMAIN}");
    let password = format!("secret{user}");
    let auth = authorization(&challenge, user, &password, "REGISTER", &uri);
    let branch = sim.next_branch();
    sim.receive(ip, &text(&branch, 2, &format!("Authorization: {auth}\r\n")))
        .await;
    let responses: Vec<Response> = sim
        .sent
        .iter()
        .filter_map(|(_, m)| match m {
            Message::Response(r) => Some(r.clone()),
            Message::Request(_) => None,
        })
        .collect();
    assert_eq!(responses.last().map(|r| r.status), Some(StatusCode::OK));
    sim.sent.retain(|(_, m)| matches!(m, Message::Request(_)));
    sim.sent.splice(0..0, earlier);
}

#[tokio::test]
async fn behind_a_wildcard_listener_the_200_and_notify_name_a_real_address() {
    let mut sim = Sim::new().await;
    sim.listener = "0.0.0.0:5060".parse().unwrap();
    let sub = Subscribe {
        user: "1000",
        mailbox: "1000",
        call_id: "mwi-any",
        cseq: 1,
        to_tag: None,
        extra: "Event: message-summary\r\n",
    };
    let (responses, notifies) = subscribe(&mut sim, sub).await;
    assert_eq!(responses[0].status, StatusCode::OK);
    // The fake shell says 127.0.0.1 routes toward the phone.
    let contact = header(&responses[0].headers, &HeaderName::CONTACT);
    assert_eq!(contact, "<sip:pbx@127.0.0.1:5060>");
    let via = header(&notifies[0].headers, &HeaderName::VIA);
    assert!(via.starts_with("SIP/2.0/UDP 127.0.0.1:5060;"), "{via}");
}
