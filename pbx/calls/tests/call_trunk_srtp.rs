//! Best-effort SRTP on a trunk's leg: under `optional` the trunk is offered SDES SRTP
//! (RTP/SAVP); one that refuses it with 488 gets one plain RTP/AVP offer in a new INVITE of
//! the same branch (CSeq one higher, same Call-ID, From and To, RFC 3261 §8.1.3.5), restricted
//! to the trunk's codecs and answerable to a new digest challenge; `required` never falls back;
//! and a 200 answering the SRTP offer with plain RTP/AVP is taken as plain (RFC 4568 §7.5).

mod support;

use pbx_calls::{Device, DialOutcome, Route, TrunkCredentials, TrunkLeg};
use pbx_media::sdp::Encryption::{self, Off, Optional, Required};
use pbx_sip::message::{HeaderName, Request};
use pbx_sip::method::Method;
use pbx_sip::status::StatusCode;
use std::time::Duration;
use support::{OFFER, Party, World, caller_invite, endpoint, media_setup};

const TRUNK: Party = "trunk";

const PLAIN_ANSWER: &str = "v=0
o=gw 7 7 IN IP4 10.0.0.9
s=-
c=IN IP4 10.0.0.9
t=0 0
m=audio 5000 RTP/AVP 8
a=rtpmap:8 PCMA/8000
a=sendrecv
";

/// A trunk reached over TLS (RFC 4568 §8.3: SDES keys only over a secure transport).
fn trunk_leg(credentials: bool, codecs: &[&str]) -> TrunkLeg<Party> {
    let mut tls = endpoint(TRUNK);
    tls.transport = "TLS";
    tls.reliable = true;
    tls.secure = true;
    TrunkLeg {
        device: Device {
            contact: "sip:4930555@trunk.example:5061;transport=tls"
                .parse()
                .unwrap_or_else(|_| unreachable!()),
            endpoint: tls,
        },
        trunk: "gw".into(),
        number: "4930555".into(),
        from: "<sip:+4930123@pbx.test>"
            .parse()
            .unwrap_or_else(|_| unreachable!()),
        to: "<sip:4930555@trunk.example>"
            .parse()
            .unwrap_or_else(|_| unreachable!()),
        headers: Vec::new(),
        credentials: credentials.then(|| TrunkCredentials {
            username: "acct".into(),
            password: "secret".into(),
        }),
        setup_timeout: Duration::from_secs(5),
        codecs: codecs.iter().map(|c| c.to_string()).collect(),
    }
}

/// A call from a plain phone dialled out through a trunk whose policy is `policy`.
fn dial(policy: Encryption, leg: TrunkLeg<Party>) -> World {
    let media = media_setup(Off, policy);
    let mut w = World::start_planned_with(caller_invite(Some(OFFER), 70), Route::Wait, Some(media));
    let now = w.now;
    w.call
        .ring_trunk(now, &mut w.layer, leg, Duration::from_secs(30), None);
    w.settle();
    w
}

fn body(request: &Request) -> String {
    String::from_utf8_lossy(&request.body).into_owned()
}

fn header(request: &Request, name: &HeaderName) -> String {
    request
        .headers
        .get_str(name)
        .unwrap_or_default()
        .to_string()
}

fn invites(w: &World) -> Vec<Request> {
    w.sent
        .iter()
        .filter_map(|(d, m)| match m {
            pbx_sip::message::Message::Request(r) if *d == TRUNK && r.method == Method::INVITE => {
                Some(r.clone())
            }
            _ => None,
        })
        .collect()
}

fn is_srtp(offer: &str) -> bool {
    offer.contains("RTP/SAVP") && offer.contains("a=crypto:")
}

fn is_plain(offer: &str) -> bool {
    offer.contains("RTP/AVP") && !offer.contains("a=crypto")
}

/// The trunk answers the latest INVITE it got.
fn trunk_answers(
    w: &mut World,
    status: u16,
    body: Option<&str>,
    extra: Option<(HeaderName, &'static str)>,
) {
    let invite = invites(w).pop().expect("the trunk got an INVITE");
    w.invites.insert(TRUNK, invite.clone());
    match extra {
        None => w.device_answers(TRUNK, status, body),
        Some((name, value)) => {
            let mut response = pbx_sip::message::Response::for_request(
                &invite,
                StatusCode(status),
                Some("tag-gw"),
            );
            response.headers.push(name, value);
            w.deliver_response(response);
        }
    }
}

#[test]
fn a_trunk_refusing_optional_srtp_gets_one_plain_offer_of_its_codecs() {
    let mut w = dial(Optional, trunk_leg(false, &["PCMA"]));
    let first = invites(&w).pop().expect("an INVITE to the trunk");
    assert!(is_srtp(&body(&first)), "{}", body(&first));

    trunk_answers(&mut w, 100, None, None);
    trunk_answers(&mut w, 488, None, None);
    let all = invites(&w);
    assert_eq!(all.len(), 2, "{:?}", w.summary(TRUNK));
    let second = &all[1];
    let offer = body(second);
    assert!(is_plain(&offer), "{offer}");
    // Only the trunk's codec (and the events) again.
    assert!(
        offer.contains("m=audio 10002 RTP/AVP 8 101"),
        "the plain offer keeps the trunk's codecs: {offer}"
    );
    // RFC 3261 §8.1.3.5: same Call-ID, From (with its tag) and To; CSeq one higher.
    for name in [HeaderName::CALL_ID, HeaderName::FROM, HeaderName::TO] {
        assert_eq!(header(&first, &name), header(second, &name), "{name:?}");
    }
    assert_eq!(second.uri.to_string(), first.uri.to_string());
    assert_eq!(header(second, &HeaderName::CSEQ), "2 INVITE");
    assert!(
        !w.summary("caller").iter().any(|s| s.starts_with('4')),
        "the caller keeps waiting: {:?}",
        w.summary("caller")
    );

    trunk_answers(&mut w, 200, Some(PLAIN_ANSWER), None);
    assert_eq!(w.last_to_caller().status, StatusCode::OK);
    let ack = w.last_request(TRUNK, &Method::ACK);
    assert_eq!(header(&ack, &HeaderName::CSEQ), "2 ACK");
    let plan = w.plans.last().expect("a media plan");
    assert!(plan.callee.srtp.is_none() && plan.caller.srtp.is_none());
    w.caller_acks();
    w.caller_request("BYE", 2, None);
    let bye = w.last_request(TRUNK, &Method::BYE);
    assert_eq!(header(&bye, &HeaderName::CSEQ), "3 BYE");
    assert_eq!(w.record().trunk.as_deref(), Some("gw"));
    assert!(!w.record().callee_encrypted);
}

#[test]
fn the_plain_offer_has_its_own_setup_time() {
    let mut w = dial(Optional, trunk_leg(false, &[]));
    trunk_answers(&mut w, 100, None, None);
    w.advance(Duration::from_secs(4));
    trunk_answers(&mut w, 488, None, None);
    assert_eq!(invites(&w).len(), 2);
    // 4 s after the first INVITE's setup time would have run out, the plain one still waits...
    w.advance(Duration::from_secs(4));
    assert!(w.dial_ends.is_empty(), "{:?}", w.dial_ends);
    // ...and fails as 408 once its own 5 s are over without a word from the trunk.
    w.advance(Duration::from_secs(2));
    let end = w.dial_ends.last().expect("the dial ended");
    assert_eq!(end.outcome, DialOutcome::Unavailable, "{end:?}");
    assert_eq!(end.status, StatusCode::REQUEST_TIMEOUT, "{end:?}");
}

#[test]
fn the_plain_offer_may_be_challenged_again() {
    let mut w = dial(Optional, trunk_leg(true, &[]));
    let challenge = (
        HeaderName::PROXY_AUTHENTICATE,
        "Digest realm=\"gw\", nonce=\"n1\", algorithm=MD5",
    );
    trunk_answers(&mut w, 407, None, Some(challenge.clone()));
    let all = invites(&w);
    assert_eq!(all.len(), 2);
    assert!(
        is_srtp(&body(&all[1])) && !header(&all[1], &HeaderName::PROXY_AUTHORIZATION).is_empty()
    );

    trunk_answers(&mut w, 488, None, None);
    let all = invites(&w);
    assert_eq!(all.len(), 3, "{:?}", w.summary(TRUNK));
    assert!(is_plain(&body(&all[2])), "{}", body(&all[2]));
    assert_eq!(header(&all[2], &HeaderName::CSEQ), "3 INVITE");

    // A proxy challenges every INVITE: the plain one is answered with the credentials too.
    trunk_answers(&mut w, 407, None, Some(challenge));
    let all = invites(&w);
    assert_eq!(all.len(), 4, "{:?}", w.summary(TRUNK));
    assert!(is_plain(&body(&all[3])));
    assert!(!header(&all[3], &HeaderName::PROXY_AUTHORIZATION).is_empty());
    assert_eq!(header(&all[3], &HeaderName::CSEQ), "4 INVITE");

    trunk_answers(&mut w, 200, Some(PLAIN_ANSWER), None);
    assert_eq!(w.last_to_caller().status, StatusCode::OK);
}

#[test]
fn required_srtp_on_a_trunk_never_falls_back() {
    let mut w = dial(Required, trunk_leg(false, &[]));
    assert!(is_srtp(&body(&invites(&w)[0])));
    trunk_answers(&mut w, 488, None, None);
    assert_eq!(invites(&w).len(), 1, "{:?}", w.summary(TRUNK));
    let end = w.dial_ends.last().expect("the dial ended");
    assert_eq!(end.status, StatusCode::NOT_ACCEPTABLE_HERE, "{end:?}");
}

#[test]
fn a_plain_answer_to_optional_srtp_is_taken_as_plain() {
    let mut w = dial(Optional, trunk_leg(false, &[]));
    assert!(is_srtp(&body(&invites(&w)[0])));
    trunk_answers(&mut w, 200, Some(PLAIN_ANSWER), None);
    assert_eq!(invites(&w).len(), 1);
    assert_eq!(w.last_to_caller().status, StatusCode::OK);
    let plan = w.plans.last().expect("a media plan");
    assert!(plan.callee.srtp.is_none() && plan.caller.srtp.is_none());
    // No BYE: the call stands.
    assert!(
        !w.summary(TRUNK).iter().any(|s| s.contains("BYE")),
        "{:?}",
        w.summary(TRUNK)
    );
    w.caller_acks();
    w.caller_request("BYE", 2, None);
    assert!(!w.record().callee_encrypted);
}

#[test]
fn a_plain_answer_to_required_srtp_is_refused() {
    let mut w = dial(Required, trunk_leg(false, &[]));
    trunk_answers(&mut w, 200, Some(PLAIN_ANSWER), None);
    assert!(
        w.summary(TRUNK).iter().any(|s| s.contains("BYE")),
        "{:?}",
        w.summary(TRUNK)
    );
    assert!(
        !w.summary("caller").iter().any(|s| s == "200"),
        "{:?}",
        w.summary("caller")
    );
    let end = w.dial_ends.last().expect("the dial ended");
    assert_eq!(end.status, StatusCode::NOT_ACCEPTABLE_HERE, "{end:?}");
}
