//! Property tests: the parser and the framer never panic, and parse → serialize → parse is
//! stable.

use bytes::{Bytes, BytesMut};
use pbx_sip::framing::{StreamItem, next_item};
use pbx_sip::message::Message;
use pbx_sip::parse::parse_message;
use proptest::prelude::*;

/// Runs everything a server does with an incoming message; must never panic.
fn exercise(bytes: Bytes) {
    let Ok(msg) = parse_message(bytes) else {
        return;
    };
    let h = msg.headers();
    let _ = (
        h.vias(),
        h.top_via(),
        h.call_id(),
        h.cseq(),
        h.from(),
        h.to(),
        h.contacts(),
    );
    let _ = (h.expires(), h.max_forwards(), h.content_length());
    if let Message::Request(r) = &msg {
        let _ = (
            r.uri.user(),
            r.uri.host(),
            r.uri.port(),
            r.uri.transport_param(),
        );
        let _ = r.uri.equivalent(&r.uri);
    }
    let again = parse_message(msg.to_bytes()).expect("a parsed message re-parses");
    assert_eq!(again.to_bytes(), msg.to_bytes());
}

fn fixtures() -> &'static [Vec<u8>] {
    static ALL: std::sync::OnceLock<Vec<Vec<u8>>> = std::sync::OnceLock::new();
    ALL.get_or_init(|| {
        let dir = format!("{}/tests/fixtures/rfc4475", env!("CARGO_MANIFEST_DIR"));
        let mut out: Vec<Vec<u8>> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| std::fs::read(e.unwrap().path()).unwrap())
            .collect();
        out.sort();
        out
    })
}

fn token() -> impl Strategy<Value = String> {
    "[a-zA-Z0-9][a-zA-Z0-9.!%*_+`'~-]{0,8}"
}

fn host() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-z][a-z0-9-]{0,8}(\\.[a-z][a-z0-9]{0,5}){0,2}",
        (any::<u8>(), any::<u8>(), any::<u8>(), any::<u8>())
            .prop_map(|(a, b, c, d)| format!("{a}.{b}.{c}.{d}")),
        any::<u128>().prop_map(|v| format!("[{}]", std::net::Ipv6Addr::from(v))),
    ]
}

fn uri() -> impl Strategy<Value = String> {
    (
        prop_oneof![Just("sip"), Just("sips"), Just("SIP")],
        proptest::option::of("[a-zA-Z0-9_.!~*'()&=+$,;?/-]{1,10}|[a-z]{1,3}%[0-9A-F]{2}"),
        host(),
        proptest::option::of(any::<u16>()),
        proptest::collection::vec(
            (
                "[a-zA-Z0-9][a-zA-Z0-9._!~*'-]{0,8}",
                proptest::option::of("[a-zA-Z0-9:/+$&-]{1,6}"),
            ),
            0..3,
        ),
    )
        .prop_map(|(scheme, user, host, port, params)| {
            let mut s = format!("{scheme}:");
            if let Some(u) = user {
                s.push_str(&u);
                s.push('@');
            }
            s.push_str(&host);
            if let Some(p) = port {
                s.push_str(&format!(":{p}"));
            }
            for (n, v) in params {
                s.push(';');
                s.push_str(&n);
                if let Some(v) = v {
                    s.push('=');
                    s.push_str(&v);
                }
            }
            s
        })
}

fn ws() -> impl Strategy<Value = &'static str> {
    prop_oneof![
        Just(""),
        Just(" "),
        Just("\t"),
        Just("\r\n "),
        Just(" \r\n\t ")
    ]
}

/// A request built from random but valid parts, with random folding and compact names.
fn request() -> impl Strategy<Value = Vec<u8>> {
    (
        token(),
        uri(),
        uri(),
        uri(),
        (token(), token(), any::<u32>(), host(), token()),
        (ws(), ws(), ws(), any::<bool>()),
        proptest::collection::vec(("X-[A-Za-z]{1,6}", "[ -~]{0,20}"), 0..3),
        proptest::collection::vec(any::<u8>(), 0..40),
    )
        .prop_map(
            |(
                method,
                ruri,
                from,
                to,
                (tag, call_id, seq, via_host, branch),
                (w1, w2, w3, compact),
                extra,
                body,
            )| {
                let n =
                    |long: &'static str, short: &'static str| if compact { short } else { long };
                let mut m = format!("{method} {ruri} SIP/2.0\r\n");
                m += &format!(
                    "{}:{w1}SIP/2.0/UDP {via_host};branch=z9hG4bK{branch}\r\n",
                    n("Via", "v")
                );
                m += &format!("{}:{w2}\"Some One\" <{from}>;tag={tag}\r\n", n("From", "f"));
                m += &format!("{}: <{to}>\r\n", n("To", "t"));
                m += &format!("{}:{w3}{call_id}\r\n", n("Call-ID", "i"));
                m += &format!("CSeq: {seq}{w1} {method}\r\n");
                m += &format!(
                    "{}: <{from}>;expires={seq}, <{to}>;q=0.5\r\n",
                    n("Contact", "m")
                );
                for (name, value) in extra {
                    m += &format!("{name}: {value}\r\n");
                }
                m += &format!("{}: {}\r\n\r\n", n("Content-Length", "l"), body.len());
                let mut bytes = m.into_bytes();
                bytes.extend_from_slice(&body);
                bytes
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1000, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
        exercise(Bytes::from(bytes.clone()));
        let mut buf = BytesMut::from(&bytes[..]);
        while let Ok(Some(_)) = next_item(&mut buf, 300) {}
    }

    #[test]
    fn mutated_fixtures_never_panic(
        which in any::<prop::sample::Index>(),
        edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>(), 0u8..3), 1..8),
    ) {
        let all = fixtures();
        let mut bytes = all[which.index(all.len())].clone();
        for (at, byte, op) in edits {
            if bytes.is_empty() { break; }
            let i = at.index(bytes.len());
            match op {
                0 => bytes[i] = byte,
                1 => bytes.insert(i, byte),
                _ => { bytes.remove(i); }
            }
        }
        exercise(Bytes::from(bytes.clone()));
        let mut buf = BytesMut::from(&bytes[..]);
        while let Ok(Some(_)) = next_item(&mut buf, 4096) {}
    }

    #[test]
    fn generated_requests_parse_and_round_trip(req in request()) {
        let msg = parse_message(Bytes::from(req.clone()));
        prop_assert!(msg.is_ok(), "{:?}: {:?}", String::from_utf8_lossy(&req), msg.err());
        exercise(Bytes::from(req));
    }

    #[test]
    fn framing_any_split(reqs in proptest::collection::vec(request(), 1..4), cut in any::<prop::sample::Index>()) {
        let mut stream = Vec::new();
        for r in &reqs {
            stream.extend_from_slice(b"\r\n\r\n");
            stream.extend_from_slice(r);
        }
        let split = cut.index(stream.len());
        let mut buf = BytesMut::from(&stream[..split]);
        let mut items = Vec::new();
        while let Some(item) = next_item(&mut buf, 1 << 16).unwrap() { items.push(item); }
        buf.extend_from_slice(&stream[split..]);
        while let Some(item) = next_item(&mut buf, 1 << 16).unwrap() { items.push(item); }
        prop_assert!(buf.is_empty());
        let messages: Vec<Bytes> = items.into_iter().filter_map(|i| match i {
            StreamItem::Message(m) => Some(m),
            StreamItem::Ping | StreamItem::Pong => None,
        }).collect();
        prop_assert_eq!(messages.len(), reqs.len());
        for (m, r) in messages.iter().zip(&reqs) {
            prop_assert_eq!(&m[..], &r[..]);
            prop_assert!(parse_message(m.clone()).is_ok());
        }
    }
}
