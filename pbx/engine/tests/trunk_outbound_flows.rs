//! Calls out through trunks in virtual time (issue 15, parts 4 and 5): the INVITE a trunk
//! gets (Request-URI, caller ID, digest on 401), failover to the next trunk on 503, on
//! silence past the setup time, on a trunk marked down, and none on 486 or 404; early media
//! passed to the caller before the 200.

mod common;

use common::{DOMAIN, LEGACY, PHONE, PROVIDER, Sim, invite};
use pbx_engine::trunk::{Outbound, TrunkPeer};
use pbx_sip::auth::{Challenge, Credentials};
use pbx_sip::message::{HeaderName, Request};
use std::time::Duration;

/// Staff dial 0 + a national number: the provider with +49, else the legacy PBX; 2XXX are
/// the legacy PBX's own phones.
const PLAN: &str = r#"
[defaults]
context = "staff"

[context.staff]
may_call = ["extensions", "_0.", "_2XXX"]
[[context.staff.rule]]
extension = true
steps = [{ dial = "${number}" }]
[[context.staff.rule]]
pattern = "_0."
steps = [{ dial = { targets = ["trunk:provider/+49${number:1}", "trunk:legacy/${number}"],
                    strategy = "in_order", timeout = "60s" } }]
[[context.staff.rule]]
pattern = "_2XXX"
steps = [{ dial = "trunk:legacy/${number}" }]

[context.from-legacy]
may_call = ["extensions"]
[[context.from-legacy.rule]]
extension = true
steps = [{ dial = "${number}" }]
"#;

fn trunk(name: &str, ip: &str, mode: &str) -> TrunkPeer {
    TrunkPeer {
        name: name.into(),
        context: format!("from-{name}"),
        allowed_networks: Vec::new(),
        registered_user: None,
        addresses: vec![ip.parse().unwrap()],
        media_encryption: "off".into(),
        channels: 1,
        dtmf: Default::default(),
        outbound: Outbound {
            host: ip.into(),
            port: Some(5060),
            targets: vec![(
                format!("{ip}:5060").parse().unwrap(),
                common::PBX.parse().unwrap(),
            )],
            caller_id_mode: mode.into(),
            setup_timeout: Duration::from_secs(5),
            ..Outbound::default()
        },
    }
}

fn trunks() -> Vec<TrunkPeer> {
    let mut provider = trunk("provider", PROVIDER, "trunk");
    provider.outbound.caller_id = "4930123".into();
    provider.outbound.username = "acct42".into();
    provider.outbound.password = "s3cret".into();
    provider.outbound.codecs = vec!["PCMA".into(), "PCMU".into()];
    vec![provider, trunk("legacy", LEGACY, "extension")]
}

async fn sim() -> Sim {
    let mut sim = Sim::new(PLAN, trunks()).await;
    sim.register_phone().await;
    sim
}

/// Extension 1000 calls `number` from its phone, answering the PBX's 407.
async fn place_call(sim: &mut Sim, number: &str, call_id: &str) {
    let uri = format!("sip:{number}@{DOMAIN}");
    let branch = sim.branch();
    let text = invite(&uri, PHONE, "1000", number, call_id, &branch);
    sim.receive(PHONE, text.clone()).await;
    let (responses, _) = sim.sent_to(PHONE);
    let challenge = responses.last().unwrap();
    assert_eq!(challenge.status.code(), 407);
    let values: Vec<&str> = challenge
        .headers
        .get_all(&HeaderName::PROXY_AUTHENTICATE)
        .filter_map(|v| std::str::from_utf8(v).ok())
        .collect();
    let auth =
        Challenge::pick(values)
            .unwrap()
            .answer("1000", "secret1000", "INVITE", &uri, 1, "cafe");
    let branch2 = sim.branch();
    let text = text
        .replace(&branch, &branch2)
        .replace("CSeq: 1 INVITE", "CSeq: 2 INVITE")
        .replace(
            "Content-Type:",
            &format!("Proxy-Authorization: {auth}\r\nContent-Type:"),
        );
    sim.receive(PHONE, text).await;
}

/// The INVITEs sent to `ip` so far (taken).
fn invites_to(sim: &mut Sim, ip: &str) -> Vec<Request> {
    let (_, requests) = sim.sent_to(ip);
    requests
        .into_iter()
        .filter(|r| r.method.as_str() == "INVITE")
        .collect()
}

/// The final and provisional codes the phone got so far (taken).
fn phone_codes(sim: &mut Sim) -> Vec<u16> {
    let (responses, _) = sim.sent_to(PHONE);
    responses.iter().map(|r| r.status.code()).collect()
}

/// A response to `request` from the trunk at `ip`.
fn answer(request: &Request, status: &str, extra: &str, body: &str) -> String {
    let content = if body.is_empty() {
        "Content-Length: 0\r\n".to_string()
    } else {
        format!(
            "Content-Type: application/sdp\r\nContent-Length: {}\r\n",
            body.len()
        )
    };
    format!(
        "SIP/2.0 {status}\r\nVia: {}\r\nFrom: {}\r\nTo: {};tag=far\r\nCall-ID: {}\r\n\
         CSeq: {}\r\nContact: <sip:far@{}:5060>\r\n{extra}{content}\r\n{body}",
        request.headers.get_str(&HeaderName::VIA).unwrap(),
        request.headers.get_str(&HeaderName::FROM).unwrap(),
        request.headers.get_str(&HeaderName::TO).unwrap(),
        request.headers.call_id().unwrap(),
        request.headers.get_str(&HeaderName::CSEQ).unwrap(),
        PROVIDER,
    )
}

fn sdp(ip: &str) -> String {
    format!(
        "v=0\r\no=- 7 7 IN IP4 {ip}\r\ns=-\r\nc=IN IP4 {ip}\r\nt=0 0\r\n\
         m=audio 30000 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n"
    )
}

#[tokio::test]
async fn the_trunk_gets_its_number_and_caller_id_and_its_challenge_is_answered() {
    let mut sim = sim().await;
    place_call(&mut sim, "0301234", "out-1").await;
    let sent = invites_to(&mut sim, PROVIDER);
    assert_eq!(sent.len(), 1);
    let first = &sent[0];
    assert_eq!(
        first.uri.to_string(),
        format!("sip:+49301234@{PROVIDER}:5060")
    );
    let from = first.headers.from().unwrap();
    assert_eq!(from.uri.user(), Some("4930123"), "the trunk's caller ID");
    assert_eq!(
        first.headers.to().unwrap().uri.to_string(),
        format!("sip:+49301234@{PROVIDER}")
    );
    assert!(
        String::from_utf8_lossy(&first.body).contains("PCMU"),
        "the offer keeps a codec the trunk takes"
    );

    // 401: the INVITE again with credentials, CSeq one higher, same From tag and Call-ID.
    let challenge = "WWW-Authenticate: Digest realm=\"provider\", nonce=\"n1\", qop=\"auth\", \
                     algorithm=SHA-256\r\n";
    sim.receive(PROVIDER, answer(first, "401 Unauthorized", challenge, ""))
        .await;
    let sent = invites_to(&mut sim, PROVIDER);
    assert_eq!(sent.len(), 1);
    let second = &sent[0];
    assert_eq!(second.headers.cseq().unwrap().seq, 2);
    assert_eq!(second.headers.call_id(), first.headers.call_id());
    assert_eq!(
        second.headers.from().unwrap().tag(),
        first.headers.from().unwrap().tag()
    );
    let authorization = second.headers.get_str(&HeaderName::AUTHORIZATION).unwrap();
    let credentials = Credentials::parse(authorization).unwrap();
    assert_eq!(credentials.username, "acct42");
    let expected = Challenge::parse(
        "Digest realm=\"provider\", nonce=\"n1\", qop=\"auth\", algorithm=SHA-256",
    )
    .unwrap()
    .answer(
        "acct42",
        "s3cret",
        "INVITE",
        &second.uri.to_string(),
        1,
        credentials.cnonce.as_deref().unwrap_or_default(),
    );
    assert_eq!(authorization, expected);
    // The caller has heard no final answer meanwhile.
    assert!(phone_codes(&mut sim).iter().all(|c| *c < 200));

    // Early media, then the 200 without a new offer: the caller gets both, with SDP.
    sim.receive(
        PROVIDER,
        answer(second, "183 Session Progress", "", &sdp(PROVIDER)),
    )
    .await;
    let (responses, _) = sim.sent_to(PHONE);
    let early = responses.iter().find(|r| r.status.code() == 183).unwrap();
    assert!(!early.body.is_empty(), "the caller gets the early SDP");
    sim.receive(PROVIDER, answer(second, "200 OK", "", ""))
        .await;
    let (responses, _) = sim.sent_to(PHONE);
    let ok = responses.iter().find(|r| r.status.code() == 200).unwrap();
    assert_eq!(ok.body, early.body, "the 200 repeats the early answer");
    assert_eq!(sim.core.trunks.in_use("provider"), 1);
}

/// Calls 0301234 and has the provider answer its INVITE with `status`.
async fn provider_answers(sim: &mut Sim, status: &str, call_id: &str) {
    place_call(sim, "0301234", call_id).await;
    let sent = invites_to(sim, PROVIDER);
    assert_eq!(sent.len(), 1);
    sim.receive(PROVIDER, answer(&sent[0], status, "", ""))
        .await;
}

#[tokio::test]
async fn a_503_fails_over_to_the_next_trunk() {
    let mut sim = sim().await;
    provider_answers(&mut sim, "503 Service Unavailable", "fo-503").await;
    let sent = invites_to(&mut sim, LEGACY);
    assert_eq!(sent.len(), 1, "the legacy PBX is tried next");
    // The legacy trunk presents the extension's own number, with the number as dialed.
    assert_eq!(
        sent[0].uri.to_string(),
        format!("sip:0301234@{LEGACY}:5060")
    );
    assert_eq!(sent[0].headers.from().unwrap().uri.user(), Some("1000"));
    assert_eq!(sim.core.trunks.in_use("provider"), 0, "its channel is back");
    assert!(phone_codes(&mut sim).iter().all(|c| *c < 200));
    // The last trunk fails too: the caller hears its answer, the CDR names it.
    sim.receive(LEGACY, answer(&sent[0], "500 Server Error", "", ""))
        .await;
    assert_eq!(phone_codes(&mut sim).last(), Some(&500));
    let cdr = sim.cdrs.last().unwrap();
    assert_eq!(
        (cdr.trunk.as_str(), cdr.called.as_str()),
        ("legacy", "0301234")
    );
}

#[tokio::test]
async fn a_trunk_silent_past_its_setup_time_fails_over() {
    let mut sim = sim().await;
    place_call(&mut sim, "0301234", "fo-silent").await;
    assert_eq!(invites_to(&mut sim, PROVIDER).len(), 1);
    sim.advance(Duration::from_secs(4)).await;
    assert!(invites_to(&mut sim, LEGACY).is_empty(), "not before 5 s");
    sim.advance(Duration::from_secs(2)).await;
    // One INVITE (and its UDP retransmissions: the same Via branch).
    let sent = invites_to(&mut sim, LEGACY);
    assert!(!sent.is_empty());
    let via = |r: &Request| r.headers.get_str(&HeaderName::VIA).map(str::to_owned);
    assert!(sent.iter().all(|r| via(r) == via(&sent[0])));
}

#[tokio::test]
async fn a_trunk_that_answered_100_is_not_given_up_at_the_setup_time() {
    let mut sim = sim().await;
    place_call(&mut sim, "0301234", "alive").await;
    let sent = invites_to(&mut sim, PROVIDER);
    sim.receive(PROVIDER, answer(&sent[0], "100 Trying", "", ""))
        .await;
    sim.advance(Duration::from_secs(10)).await;
    assert!(invites_to(&mut sim, LEGACY).is_empty());
}

#[tokio::test]
async fn busy_and_not_found_end_the_dial_without_failover() {
    for (status, code, call_id) in [
        ("486 Busy Here", 486, "no-fo-486"),
        ("404 Not Found", 404, "no-fo-404"),
        ("603 Decline", 603, "no-fo-603"),
    ] {
        let mut sim = sim().await;
        provider_answers(&mut sim, status, call_id).await;
        assert!(invites_to(&mut sim, LEGACY).is_empty(), "{status}");
        assert_eq!(phone_codes(&mut sim).last(), Some(&code), "{status}");
        let cdr = sim.cdrs.last().unwrap();
        assert_eq!(cdr.trunk, "provider");
        assert_eq!(cdr.called, "+49301234");
    }
}

#[tokio::test]
async fn wrong_credentials_fail_over() {
    let mut sim = sim().await;
    place_call(&mut sim, "0301234", "bad-auth").await;
    let challenge = "WWW-Authenticate: Digest realm=\"provider\", nonce=\"n1\"\r\n";
    let first = invites_to(&mut sim, PROVIDER).remove(0);
    sim.receive(PROVIDER, answer(&first, "401 Unauthorized", challenge, ""))
        .await;
    let second = invites_to(&mut sim, PROVIDER).remove(0);
    // A second challenge after the credentials: they are wrong.
    sim.receive(PROVIDER, answer(&second, "401 Unauthorized", challenge, ""))
        .await;
    assert!(
        invites_to(&mut sim, PROVIDER).is_empty(),
        "answered once only"
    );
    assert_eq!(invites_to(&mut sim, LEGACY).len(), 1);
}

#[tokio::test]
async fn a_trunk_marked_down_is_skipped_at_once() {
    let mut sim = sim().await;
    sim.core.trunks.set_up("provider", false);
    place_call(&mut sim, "0301234", "down").await;
    assert!(invites_to(&mut sim, PROVIDER).is_empty());
    assert_eq!(invites_to(&mut sim, LEGACY).len(), 1);
}

#[tokio::test]
async fn a_full_trunk_is_refused_like_a_busy_one_and_the_caller_hears_503() {
    let mut sim = sim().await;
    // The legacy trunk's one channel is taken by a call to its phone 2001...
    place_call(&mut sim, "2001", "first").await;
    assert_eq!(invites_to(&mut sim, LEGACY).len(), 1);
    assert_eq!(sim.core.trunks.in_use("legacy"), 1);
    // ...so a second call to it gets 503 at once, nothing sent.
    place_call(&mut sim, "2002", "second").await;
    assert!(invites_to(&mut sim, LEGACY).is_empty());
    assert_eq!(phone_codes(&mut sim).last(), Some(&503));
}

#[tokio::test]
async fn anonymous_caller_id_and_an_outbound_proxy_in_the_invite() {
    let mut trunks = trunks();
    trunks[0].outbound.caller_id_mode = "anonymous".into();
    trunks[0].outbound.proxy = Some("proxy.example.net".into());
    let mut sim = Sim::new(PLAN, trunks).await;
    sim.register_phone().await;
    place_call(&mut sim, "0301234", "anon").await;
    let sent = invites_to(&mut sim, PROVIDER);
    let invite = &sent[0];
    let from = invite.headers.from().unwrap();
    assert_eq!(from.uri.to_string(), "sip:anonymous@anonymous.invalid");
    assert_eq!(from.display_name.as_deref(), Some("Anonymous"));
    let header = |name: &str| {
        invite
            .headers
            .get_str(&HeaderName::from_bytes(name.to_string().into()))
            .map(str::to_owned)
    };
    assert_eq!(header("Privacy").as_deref(), Some("id"));
    assert_eq!(
        header("P-Asserted-Identity"),
        Some(format!("<sip:4930123@{PROVIDER}>"))
    );
    assert_eq!(
        header("Route").as_deref(),
        Some("<sip:proxy.example.net;lr>")
    );
}

#[tokio::test]
async fn a_trunks_next_address_before_the_next_trunk() {
    const SPARE: &str = "203.0.113.6";
    let mut trunks = trunks();
    let spare = (
        format!("{SPARE}:5060").parse().unwrap(),
        common::PBX.parse().unwrap(),
    );
    trunks[0].outbound.targets.push(spare);
    let mut sim = Sim::new(PLAN, trunks).await;
    sim.register_phone().await;
    // 503 from the first address: the provider's second address, same number and caller ID.
    place_call(&mut sim, "0301234", "next-addr").await;
    let first = invites_to(&mut sim, PROVIDER).remove(0);
    sim.receive(PROVIDER, answer(&first, "503 Service Unavailable", "", ""))
        .await;
    let sent = invites_to(&mut sim, SPARE);
    assert_eq!(sent.len(), 1, "the provider's next address");
    assert_eq!(sent[0].uri, first.uri);
    assert!(invites_to(&mut sim, LEGACY).is_empty());
    assert_eq!(
        sim.core.trunks.in_use("provider"),
        1,
        "one channel for both addresses"
    );
    // Silent there too: now the next trunk.
    sim.advance(Duration::from_secs(6)).await;
    assert!(!invites_to(&mut sim, LEGACY).is_empty());
    assert_eq!(sim.core.trunks.in_use("provider"), 0);
}

#[tokio::test]
async fn each_trunk_has_its_own_setup_time() {
    // The provider's own 2 s (`pbx trunk add --setup-timeout 2`); the legacy PBX keeps 5 s.
    let mut trunks = trunks();
    trunks[0].outbound.setup_timeout = Duration::from_secs(2);
    let mut sim = Sim::new(PLAN, trunks).await;
    sim.register_phone().await;
    place_call(&mut sim, "0301234", "own-setup").await;
    assert_eq!(invites_to(&mut sim, PROVIDER).len(), 1);
    sim.advance(Duration::from_millis(1500)).await;
    assert!(
        invites_to(&mut sim, LEGACY).is_empty(),
        "not before its 2 s"
    );
    sim.advance(Duration::from_secs(1)).await;
    assert!(
        !invites_to(&mut sim, LEGACY).is_empty(),
        "the provider's own 2 s, not 5 s"
    );
}

/// The order DNS gave (RFC 3263: SRV priority 10, then 20) is the order a call fails over
/// in: the targets come from [`Locate`] run over fixture records, as the shell runs it.
#[tokio::test]
async fn a_call_fails_over_in_the_dns_order() {
    use pbx_engine::peer::TransportKind;
    use pbx_engine::trunk::locate::{Answer, Locate, Naptr, Query, Srv};
    const SECOND: &str = "203.0.113.7";
    let mut locate = Locate::new("provider.example", None, &[TransportKind::Udp]);
    while let Some(query) = locate.poll_query() {
        let answer = match query {
            Query::Naptr(_) => Answer::Naptr(
                vec![Naptr {
                    order: 10,
                    preference: 10,
                    flags: "S".into(),
                    services: "SIP+D2U".into(),
                    replacement: "_sip._udp.provider.example.".into(),
                }],
                Some(300),
            ),
            Query::Srv(_) => Answer::Srv(
                vec![
                    Srv {
                        priority: 20,
                        weight: 0,
                        port: 5060,
                        target: "b.provider.example.".into(),
                    },
                    Srv {
                        priority: 10,
                        weight: 0,
                        port: 5060,
                        target: "a.provider.example.".into(),
                    },
                ],
                Some(60),
            ),
            Query::Address(name) if name == "a.provider.example" => {
                Answer::Address(vec![PROVIDER.parse().unwrap()], Some(60))
            }
            Query::Address(_) => Answer::Address(vec![SECOND.parse().unwrap()], Some(60)),
        };
        locate.handle_answer(answer, &mut |_| 0);
    }
    let mut trunks = trunks();
    trunks[0].outbound.targets = locate
        .targets()
        .iter()
        .map(|t| {
            (
                std::net::SocketAddr::new(t.ip, t.port),
                common::PBX.parse().unwrap(),
            )
        })
        .collect();
    let mut sim = Sim::new(PLAN, trunks).await;
    sim.register_phone().await;
    place_call(&mut sim, "0301234", "dns-order").await;
    let first = invites_to(&mut sim, PROVIDER);
    assert_eq!(first.len(), 1, "priority 10 first");
    assert!(invites_to(&mut sim, SECOND).is_empty());
    sim.receive(
        PROVIDER,
        answer(&first[0], "503 Service Unavailable", "", ""),
    )
    .await;
    assert_eq!(invites_to(&mut sim, SECOND).len(), 1, "then priority 20");
    assert!(
        invites_to(&mut sim, LEGACY).is_empty(),
        "before the next trunk"
    );
}

#[tokio::test]
async fn the_callers_did_in_from_and_the_asserted_identity() {
    use pbx_store::{CredentialStore, ExtensionChanges, ExtensionStore};
    let mut sim = Sim::new(PLAN, trunks()).await;
    // `pbx extension set 1000 --did ...`, then the reload the server does on a new revision.
    let did = ExtensionChanges {
        did: Some("+15551230001".into()),
        ..Default::default()
    };
    assert!(
        sim.store
            .update_extension(DOMAIN, "1000", &did)
            .await
            .unwrap()
    );
    let revision = sim.store.extensions_revision().await.unwrap();
    let all = sim.store.all_credentials().await.unwrap();
    sim.core.credentials.replace(revision, all, sim.now.at);
    sim.register_phone().await;
    // The legacy trunk presents the extension (`--caller-id-mode extension`).
    place_call(&mut sim, "2001", "did-1").await;
    let sent = invites_to(&mut sim, LEGACY);
    assert_eq!(sent.len(), 1);
    let invite = &sent[0];
    let from = invite.headers.from().unwrap();
    assert_eq!(from.uri.to_string(), format!("sip:+15551230001@{LEGACY}"));
    assert_eq!(
        invite
            .headers
            .get_str(&HeaderName::from_bytes("P-Asserted-Identity".into())),
        Some(format!("<sip:+15551230001@{LEGACY}>").as_str())
    );
    // The provider presents its own number whatever the extension's DID.
    place_call(&mut sim, "0301234", "did-2").await;
    let sent = invites_to(&mut sim, PROVIDER);
    assert_eq!(sent[0].headers.from().unwrap().uri.user(), Some("4930123"));
}

#[tokio::test]
async fn without_a_did_the_extension_number_and_no_asserted_identity() {
    let mut sim = sim().await;
    place_call(&mut sim, "2001", "no-did").await;
    let sent = invites_to(&mut sim, LEGACY);
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].headers.from().unwrap().uri.user(), Some("1000"));
    assert!(
        sent[0]
            .headers
            .get_str(&HeaderName::from_bytes("P-Asserted-Identity".into()))
            .is_none()
    );
}
