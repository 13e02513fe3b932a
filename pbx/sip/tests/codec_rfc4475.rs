//! RFC 4475 torture tests: every message of the RFC, byte for byte (tests/fixtures/rfc4475).

use bytes::Bytes;
use pbx_sip::header::{Contacts, HeaderError};
use pbx_sip::message::{HeaderName, Message, Request, Response};
use pbx_sip::method::Method;
use pbx_sip::parse::{ParseErrorKind, parse_message};
use pbx_sip::status::StatusCode;
use pbx_sip::uri::{Host, Scheme};

fn load(name: &str) -> Bytes {
    let path = format!(
        "{}/tests/fixtures/rfc4475/{name}.dat",
        env!("CARGO_MANIFEST_DIR")
    );
    Bytes::from(std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}")))
}

fn parse(name: &str) -> Message {
    parse_message(load(name)).unwrap_or_else(|e| panic!("{name}: {e:?}"))
}

fn request(name: &str) -> Request {
    match parse(name) {
        Message::Request(r) => r,
        Message::Response(_) => panic!("{name}: expected a request"),
    }
}

fn response(name: &str) -> Response {
    match parse(name) {
        Message::Response(r) => r,
        Message::Request(_) => panic!("{name}: expected a response"),
    }
}

#[derive(Debug, Clone, Copy)]
enum Expect {
    /// `parse_message` accepts it (what the layers above do with it is theirs to decide).
    Accept,
    /// `parse_message` rejects it; `Some(code)`: `bad_request_response()` answers with that
    /// code; `None`: nothing can be answered (a response, or no readable Via/From/To/...).
    Reject(Option<u16>),
}
use Expect::{Accept, Reject};

/// Per file: what the parser does, and why (the RFC section's recommended handling).
const CASES: &[(&str, Expect, &str)] = &[
    // §3.1.1: valid messages.
    ("wsinv", Accept, "§3.1.1.1 folding, odd LWS, compact forms"),
    (
        "intmeth",
        Accept,
        "§3.1.1.2 unknown method with odd token characters",
    ),
    ("esc01", Accept, "§3.1.1.3 % escapes"),
    ("escnull", Accept, "§3.1.1.4 escaped NULs"),
    ("esc02", Accept, "§3.1.1.5 % that is not an escape"),
    ("lwsdisp", Accept, "§3.1.1.6 no LWS before <"),
    ("longreq", Accept, "§3.1.1.7 long values"),
    (
        "dblreq",
        Accept,
        "§3.1.1.8 extra octets after Content-Length are dropped",
    ),
    ("semiuri", Accept, "§3.1.1.9 ; in the user part"),
    ("transports", Accept, "§3.1.1.10 unknown transports"),
    ("mpart01", Accept, "§3.1.1.11 binary multipart body"),
    ("unreason", Accept, "§3.1.1.12 UTF-8 reason phrase"),
    ("noreason", Accept, "§3.1.1.13 empty reason phrase"),
    // §3.1.2: invalid messages.
    (
        "badinv01",
        Reject(None),
        "§3.1.2.1 extra separators; the top Via itself is unreadable",
    ),
    (
        "clerr",
        Reject(Some(400)),
        "§3.1.2.2 Content-Length larger than the datagram: 400",
    ),
    ("ncl", Reject(Some(400)), "§3.1.2.3 negative Content-Length"),
    (
        "scalar02",
        Reject(Some(400)),
        "§3.1.2.4 CSeq beyond 32 bits: 400",
    ),
    (
        "scalarlg",
        Reject(None),
        "§3.1.2.5 a response with overlarge values: discard",
    ),
    (
        "quotbal",
        Reject(Some(400)),
        "§3.1.2.6 unterminated quote: 400",
    ),
    (
        "ltgtruri",
        Reject(Some(400)),
        "§3.1.2.7 <> around the Request-URI: 400",
    ),
    (
        "lwsruri",
        Reject(Some(400)),
        "§3.1.2.8 LWS in the Request-URI: 400",
    ),
    (
        "lwsstart",
        Accept,
        "§3.1.2.9 extra SPs in the Request-Line: may accept, never forwarded",
    ),
    (
        "trws",
        Accept,
        "§3.1.2.10 trailing SPs: may accept, never forwarded",
    ),
    (
        "escruri",
        Reject(Some(400)),
        "§3.1.2.11 headers in the Request-URI: 400 is acceptable",
    ),
    (
        "baddate",
        Accept,
        "§3.1.2.12 bad Date: the PBX does not use Date, so ignore it",
    ),
    (
        "regbadct",
        Reject(Some(400)),
        "§3.1.2.13 URI with ? not in <>: 400",
    ),
    (
        "badaspec",
        Reject(Some(400)),
        "§3.1.2.14 spaces in addr-spec: 400",
    ),
    (
        "baddn",
        Reject(Some(400)),
        "§3.1.2.15 non-token display name: 400",
    ),
    ("badvers", Reject(Some(505)), "§3.1.2.16 SIP/7.0: 505"),
    (
        "mismatch01",
        Reject(Some(400)),
        "§3.1.2.17 CSeq method differs: 400",
    ),
    (
        "mismatch02",
        Reject(Some(400)),
        "§3.1.2.18 unknown method, CSeq differs: 400 (acceptable)",
    ),
    (
        "bigcode",
        Reject(None),
        "§3.1.2.19 status code > 699: drop the response",
    ),
    // §3.2 transaction layer.
    (
        "badbranch",
        Accept,
        "§3.2.1 branch is just the cookie: the transaction layer's business",
    ),
    // §3.3 application layer: valid syntax, the layers above answer.
    (
        "insuf",
        Reject(Some(400)),
        "§3.3.1 no Call-ID/From/To: answered 400 from its Via and CSeq",
    ),
    (
        "unkscm",
        Accept,
        "§3.3.2 unknown Request-URI scheme: the UAS answers 416",
    ),
    (
        "novelsc",
        Accept,
        "§3.3.3 atypical scheme: the UAS answers 416/404",
    ),
    (
        "unksm2",
        Accept,
        "§3.3.4 unknown schemes in headers: the registrar answers 400",
    ),
    ("bext01", Accept, "§3.3.5 Require: the UAS answers 420"),
    (
        "invut",
        Accept,
        "§3.3.6 unknown Content-Type: the UAS answers 415",
    ),
    (
        "regaut01",
        Accept,
        "§3.3.7 unknown auth scheme: the registrar challenges",
    ),
    (
        "multi01",
        Reject(None),
        "§3.3.8 two CSeq/Call-ID/To/From: which to copy is unknowable",
    ),
    (
        "mcl01",
        Reject(Some(400)),
        "§3.3.9 two Content-Lengths: error",
    ),
    ("bcast", Accept, "§3.3.10 parses; the proxy/UA drops it"),
    (
        "zeromf",
        Accept,
        "§3.3.11 Max-Forwards 0: the proxy answers 483",
    ),
    ("cparam01", Accept, "§3.3.12 contact parameter"),
    ("cparam02", Accept, "§3.3.13 URI parameter"),
    (
        "regescrt",
        Accept,
        "§3.3.14 escaped header in a Contact URI",
    ),
    (
        "sdp01",
        Accept,
        "§3.3.15 Accept without SDP: the UAS answers 406/400",
    ),
    // §3.4
    ("inv2543", Accept, "§3.4.1 RFC 2543 syntax: accept"),
];

#[test]
fn table_covers_every_fixture() {
    let dir = format!("{}/tests/fixtures/rfc4475", env!("CARGO_MANIFEST_DIR"));
    let mut files: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            e.unwrap()
                .file_name()
                .to_string_lossy()
                .trim_end_matches(".dat")
                .to_owned()
        })
        .collect();
    files.sort();
    let mut listed: Vec<String> = CASES.iter().map(|(n, _, _)| (*n).to_owned()).collect();
    listed.sort();
    assert_eq!(files, listed);
}

#[test]
fn every_message_gets_its_expected_outcome() {
    for &(name, expect, why) in CASES {
        let result = parse_message(load(name));
        match (expect, result) {
            (Accept, Ok(msg)) => {
                // parse → serialize → parse is stable.
                let once = msg.to_bytes();
                let again = parse_message(once.clone())
                    .unwrap_or_else(|e| panic!("{name} re-parse: {e:?}"));
                assert_eq!(again.to_bytes(), once, "{name}: unstable round trip");
            }
            (Reject(code), Err(err)) => {
                let answer = err.bad_request_response();
                assert_eq!(
                    answer.as_ref().map(|r| r.status.code()),
                    code,
                    "{name} ({why}): {err:?}"
                );
                if let Some(resp) = answer {
                    // The answer is a response; it may carry the broken header it copied (a
                    // bad CSeq or To), but nothing else is wrong with it.
                    match parse_message(resp.to_bytes()) {
                        Ok(reparsed) => assert!(matches!(reparsed, Message::Response(_))),
                        Err(e) => assert!(
                            matches!(e.kind(), ParseErrorKind::Header(_)),
                            "{name} answer: {e:?}"
                        ),
                    }
                    assert!(
                        resp.headers.to().map(|t| t.tag().is_some()).unwrap_or(true),
                        "{name}: To tag"
                    );
                }
            }
            (expect, result) => panic!("{name} ({why}): expected {expect:?}, got {result:?}"),
        }
    }
}

#[test]
fn wsinv_typed_headers() {
    let r = request("wsinv");
    assert_eq!(r.method, Method::INVITE);
    assert_eq!(r.uri.param("unknownparam"), Some(None));
    let to = r.headers.to().unwrap();
    assert_eq!(to.uri.to_string(), "sip:vivekg@chair-dnrc.example.com");
    assert_eq!(to.tag(), Some("1918181833n"));
    let from = r.headers.from().unwrap();
    assert_eq!(from.display_name.as_deref(), Some("J Rosenberg \\\""));
    assert_eq!(from.tag(), Some("98asjd8"));
    assert_eq!(r.headers.max_forwards(), Some(68));
    assert_eq!(r.headers.cseq().unwrap().seq, 9);
    assert_eq!(r.headers.cseq().unwrap().method, Method::INVITE);
    let vias = r.headers.vias().unwrap();
    let summary: Vec<_> = vias
        .iter()
        .map(|v| {
            (
                v.transport.as_str(),
                v.sent_by(),
                v.branch().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            ("UDP", "192.0.2.2".to_owned(), "390skdjuw".to_owned()),
            (
                "TCP",
                "spindle.example.com".to_owned(),
                "z9hG4bK9ikj8".to_owned()
            ),
            (
                "UDP",
                "192.168.255.111".to_owned(),
                "z9hG4bK30239".to_owned()
            ),
        ]
    );
    assert_eq!(
        r.headers
            .get_str(&HeaderName::from_static("NewFangledHeader")),
        Some("newfangled value continued newfangled value")
    );
    assert_eq!(
        r.headers
            .get_str(&HeaderName::from_static("UnknownHeaderWithUnusualValue")),
        Some(";;,,;;,;")
    );
    assert_eq!(r.headers.get_str(&HeaderName::SUBJECT), Some(""));
    let contacts = r.headers.contacts().unwrap();
    let c = &contacts.addresses()[0];
    assert_eq!(c.display_name.as_deref(), Some("Quoted string \"\""));
    assert_eq!(c.params.get("newparam"), Some(Some("newvalue")));
    assert_eq!(c.params.get("secondparam"), Some(None));
    assert_eq!(c.q_millis(), Some(330));
    assert_eq!(r.body.len(), 150);
}

#[test]
fn escapes_are_kept_and_compared_unescaped() {
    let r = request("esc01");
    assert_eq!(r.uri.user(), Some("sips%3Auser%40example.com"));
    assert_eq!(r.uri.user_unescaped().unwrap(), b"sips:user@example.com");
    assert_eq!(r.uri.host(), Some(&Host::Domain("example.net".into())));
    let to = r.headers.to().unwrap();
    assert!(to.uri.equivalent(&"sip:user@example.com".parse().unwrap()));
    let c = r.headers.contacts().unwrap();
    let uri = &c.addresses()[0].uri;
    assert_eq!(uri.param("%6C%72"), Some(None));
    assert!(
        uri.equivalent(
            &"sip:caller@host5.example.net;lr;name=value%2541"
                .parse()
                .unwrap()
        )
    );

    let r = request("escnull");
    let c = r.headers.contacts().unwrap();
    let users: Vec<_> = c
        .addresses()
        .iter()
        .map(|a| a.uri.user_unescaped().unwrap())
        .collect();
    assert_eq!(users, [vec![0u8], vec![0, 0]]);
    assert_eq!(
        r.headers.to().unwrap().uri.user_unescaped().unwrap(),
        b"null-\0-null"
    );

    // RE%47IST%45R is not REGISTER, and C%6Fntact is not Contact.
    let r = request("esc02");
    assert_ne!(r.method, Method::REGISTER);
    assert_eq!(r.method.as_str(), "RE%47IST%45R");
    assert_eq!(r.headers.contacts().unwrap().addresses().len(), 2);
}

#[test]
fn other_valid_messages() {
    let r = request("semiuri");
    assert_eq!(r.uri.user(), Some("user;par=u%40example.net"));
    assert_eq!(r.uri.host(), Some(&Host::Domain("example.com".into())));

    let r = request("transports");
    let t: Vec<_> = r
        .headers
        .vias()
        .unwrap()
        .into_iter()
        .map(|v| v.transport)
        .collect();
    assert_eq!(t, ["UDP", "SCTP", "TLS", "UNKNOWN", "TCP"]);

    let r = request("lwsdisp");
    assert_eq!(
        r.headers.from().unwrap().display_name.as_deref(),
        Some("caller")
    );

    let r = request("longreq");
    assert!(r.headers.to().unwrap().display_name.unwrap().len() > 90);
    assert!(r.headers.from().unwrap().uri.user().unwrap().len() > 100);
    assert_eq!(r.headers.vias().unwrap().len(), 34);

    // Only the REGISTER: the INVITE after its Content-Length is dropped.
    let r = request("dblreq");
    assert_eq!(r.method, Method::REGISTER);
    assert!(r.body.is_empty());

    let r = request("mpart01");
    assert_eq!(r.body.len(), r.headers.content_length().unwrap());
    assert!(r.body.contains(&0));

    let resp = response("unreason");
    assert_eq!(resp.status, StatusCode::OK);
    assert!(
        std::str::from_utf8(&resp.reason)
            .unwrap()
            .starts_with("= 2**3 * 5**2 но")
    );
    let resp = response("noreason");
    assert_eq!(resp.status, StatusCode::TRYING);
    assert!(resp.reason.is_empty());

    // Extra SPs are accepted and not written back.
    let r = request("lwsstart");
    assert!(
        Message::Request(r)
            .to_bytes()
            .starts_with(b"INVITE sip:user@example.com SIP/2.0\r\n")
    );
    let r = request("trws");
    assert!(
        Message::Request(r)
            .to_bytes()
            .starts_with(b"OPTIONS sip:remote-target@example.com SIP/2.0\r\n")
    );

    let r = request("unkscm");
    assert_eq!(
        r.uri.scheme(),
        Scheme::Other("nobodyknowsthisscheme".into())
    );
    assert_eq!(
        r.uri.to_string(),
        "nobodyKnowsThisScheme:totallyopaquecontent"
    );
    let r = request("novelsc");
    assert_eq!(r.uri.scheme(), Scheme::Other("soap.beep".into()));
    let r = request("unksm2");
    assert_eq!(
        r.headers.to().unwrap().uri.scheme(),
        Scheme::Other("isbn".into())
    );

    let r = request("cparam01");
    let c = r.headers.contacts().unwrap().addresses()[0].clone();
    assert_eq!(c.uri.param("unknownparam"), None);
    assert_eq!(c.params.get("unknownparam"), Some(None));
    let r = request("cparam02");
    let c = r.headers.contacts().unwrap().addresses()[0].clone();
    assert_eq!(c.uri.param("unknownparam"), Some(None));
    let r = request("regescrt");
    let c = r.headers.contacts().unwrap().addresses()[0].clone();
    assert_eq!(c.uri.headers(), Some("Route=%3Csip:sip.example.com%3E"));

    let r = request("zeromf");
    assert_eq!(r.headers.max_forwards(), Some(0));
    let resp = response("bcast");
    assert_eq!(
        resp.headers.vias().unwrap()[1].host,
        Host::Ipv4("255.255.255.255".parse().unwrap())
    );
    let r = request("badbranch");
    assert!(!r.headers.top_via().unwrap().has_rfc3261_branch());

    let r = request("inv2543");
    assert_eq!(r.headers.content_length(), None);
    assert_eq!(r.headers.max_forwards(), None);
    assert_eq!(r.headers.from().unwrap().tag(), None);
    assert!(r.body.starts_with(b"v=0"));
    assert!(matches!(r.headers.contacts().unwrap(), Contacts::List(l) if l.is_empty()));
}

#[test]
fn rejection_reasons() {
    let kind = |name: &str| parse_message(load(name)).unwrap_err().kind().clone();
    assert_eq!(kind("clerr"), ParseErrorKind::BodyTooShort);
    assert_eq!(kind("ncl"), ParseErrorKind::ContentLength);
    assert_eq!(kind("mcl01"), ParseErrorKind::MultipleContentLength);
    assert_eq!(kind("badvers"), ParseErrorKind::Version);
    assert_eq!(kind("mismatch01"), ParseErrorKind::CSeqMethod);
    assert_eq!(kind("bigcode"), ParseErrorKind::StatusCode);
    assert_eq!(kind("escruri"), ParseErrorKind::RequestUriHeaders);
    assert!(matches!(kind("ltgtruri"), ParseErrorKind::RequestUri(_)));
    assert!(matches!(
        kind("insuf"),
        ParseErrorKind::Header(HeaderError::Missing(_))
    ));
    assert!(matches!(
        kind("multi01"),
        ParseErrorKind::Header(HeaderError::Multiple(_))
    ));
    assert!(matches!(
        kind("baddn"),
        ParseErrorKind::Header(HeaderError::Multiple("From"))
    ));
    assert!(matches!(
        kind("quotbal"),
        ParseErrorKind::Header(HeaderError::Invalid { header: "To", .. })
    ));
    assert!(matches!(
        kind("scalar02"),
        ParseErrorKind::Header(HeaderError::Invalid { header: "CSeq", .. })
    ));
    assert!(matches!(
        kind("regbadct"),
        ParseErrorKind::Header(HeaderError::Invalid {
            header: "Contact",
            ..
        })
    ));

    // The 400 to clerr copies what RFC 3261 §8.2.6.2 asks for and says why.
    let resp = parse_message(load("clerr"))
        .unwrap_err()
        .bad_request_response()
        .unwrap();
    assert_eq!(
        &resp.reason[..],
        b"Bad Request (Content-Length larger than body)"
    );
    assert_eq!(
        resp.headers.call_id(),
        Some("clerr.0ha0isndaksdjweiafasdk3")
    );
    assert_eq!(
        resp.headers.top_via().unwrap().branch(),
        Some("z9hG4bK-39234-23523")
    );
    assert_eq!(resp.headers.cseq().unwrap().seq, 8);
    assert_eq!(resp.headers.from().unwrap().tag(), Some("93942939o2"));
    assert!(resp.headers.to().unwrap().tag().is_some());
    let resp = parse_message(load("badvers"))
        .unwrap_err()
        .bad_request_response()
        .unwrap();
    assert_eq!(resp.status, StatusCode::VERSION_NOT_SUPPORTED);
}
