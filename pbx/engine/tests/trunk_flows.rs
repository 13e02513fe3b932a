//! Trunk calls through one sans-IO engine in virtual time (issue 15, part 3): an INVITE
//! from a trunk's `allow` network, or from a registering trunk's host to the registered
//! user, starts in the trunk's context without a digest step; the same INVITE from anywhere
//! else is challenged like any caller.

mod common;

use common::{LEGACY, PHONE, PROVIDER, STRANGER, Sim, invite};
use pbx_engine::CallState;
use pbx_engine::trunk::{Outbound, TrunkPeer};
use pbx_sip::message::{HeaderName, Response};

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
            dtmf: Default::default(),
            outbound: Outbound::default(),
        },
        TrunkPeer {
            name: "provider".into(),
            context: "from-provider".into(),
            allowed_networks: vec![],
            registered_user: Some("acct42".into()),
            addresses: vec![PROVIDER.parse().unwrap()],
            media_encryption: "optional".into(),
            channels: 0,
            dtmf: Default::default(),
            outbound: Outbound::default(),
        },
    ]
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
    let mut sim = Sim::new(PLAN, trunks()).await;
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
    let mut sim = Sim::new(PLAN, trunks()).await;
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
    let mut sim = Sim::new(PLAN, trunks()).await;
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
    let mut sim = Sim::new(PLAN, trunks()).await;
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

#[tokio::test]
async fn a_trunk_whose_context_the_plan_lacks_is_forbidden_not_told_not_found() {
    // The context is the caller's permission to reach anything: without it the number may
    // well exist (1000 does), the caller may not reach it. RFC 3261 §21.4.3 (403), not
    // §21.4.4 (404: the user does not exist), as for an extension whose context is missing.
    let orphan_net = "10.9.9.9";
    let mut peers = trunks();
    peers.push(TrunkPeer {
        name: "orphan".into(),
        context: "from-nowhere".into(),
        allowed_networks: vec!["10.9.9.0/24".parse().unwrap()],
        registered_user: None,
        addresses: vec![],
        media_encryption: "off".into(),
        channels: 0,
        dtmf: Default::default(),
        outbound: Outbound::default(),
    });
    let mut sim = Sim::new(PLAN, peers).await;
    sim.register_phone().await;
    let branch = sim.branch();
    let text = invite(
        "sip:1000@pbx.test",
        orphan_net,
        "+4930555",
        "1000",
        "orphan-1",
        &branch,
    );
    sim.receive(orphan_net, text).await;
    let (responses, _) = sim.sent_to(orphan_net);
    let last = responses.last().expect("a final answer");
    assert_eq!(last.status.code(), 403, "{:?}", codes(&responses));
    // The wire says no more than that; the CDR names the missing context.
    assert_eq!(&last.reason[..], b"Forbidden");
    let (_, to_phone) = sim.sent_to(PHONE);
    assert!(to_phone.is_empty());
    let cdr = sim.cdrs.last().expect("a CDR");
    assert!(
        cdr.hangup_cause.contains("no context named from-nowhere"),
        "{cdr:?}"
    );
}
