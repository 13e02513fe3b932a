//! RFC 5118 IPv6 torture tests (tests/fixtures/rfc5118). The published files use bare LF
//! and three of them state a Content-Length that fits neither line ending (see the fixtures'
//! README); `wire()` converts to CRLF and, for those three, fixes Content-Length.

use bytes::Bytes;
use pbx_sip::message::{Message, Request};
use pbx_sip::parse::{ParseErrorKind, parse_message};
use pbx_sip::uri::Host;
use std::net::{IpAddr, Ipv6Addr};

fn raw(name: &str) -> Vec<u8> {
    let path = format!(
        "{}/tests/fixtures/rfc5118/{name}.dat",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// The message as it would be on the wire: CRLF line endings, Content-Length = body length.
fn wire(name: &str) -> Bytes {
    let text = String::from_utf8(raw(name)).unwrap().replace('\n', "\r\n");
    let Some((head, body)) = text.split_once("\r\n\r\n") else {
        return Bytes::from(text);
    };
    let head: Vec<String> = head
        .split("\r\n")
        .map(|line| match line.strip_prefix("Content-Length: ") {
            Some(_) => format!("Content-Length: {}", body.len()),
            None => line.to_owned(),
        })
        .collect();
    Bytes::from(format!("{}\r\n\r\n{body}", head.join("\r\n")))
}

fn request(name: &str) -> Request {
    match parse_message(wire(name)).unwrap_or_else(|e| panic!("{name}: {e:?}")) {
        Message::Request(r) => r,
        Message::Response(_) => panic!("{name}: expected a request"),
    }
}

fn v6(s: &str) -> Ipv6Addr {
    s.parse().unwrap()
}

#[test]
fn valid_messages_parse_and_round_trip() {
    for name in [
        "ipv6-good",
        "port-ambiguous",
        "port-unambiguous",
        "via-received-param-with-delim",
        "via-received-param-no-delim",
        "ipv6-in-sdp",
        "mult-ip-in-header",
        "mult-ip-in-sdp",
        "ipv4-mapped-ipv6",
        "ipv6-bug-abnf-3-colons",
        "ipv6-correct-abnf-2-colons",
    ] {
        let r = request(name);
        let once = Message::Request(r).to_bytes();
        let again = parse_message(once.clone()).unwrap_or_else(|e| panic!("{name}: {e:?}"));
        assert_eq!(again.to_bytes(), once, "{name}");
    }
}

#[test]
fn bare_lf_is_accepted_when_content_length_fits() {
    // These have a correct Content-Length for their LF form.
    for name in [
        "ipv6-good",
        "port-unambiguous",
        "mult-ip-in-header",
        "ipv4-mapped-ipv6",
    ] {
        parse_message(Bytes::from(raw(name))).unwrap_or_else(|e| panic!("{name}: {e:?}"));
    }
    // ipv6-in-sdp says 268 for a 242-byte body: as published it is short (RFC 4475 §3.1.2.2).
    let e = parse_message(Bytes::from(raw("ipv6-in-sdp"))).unwrap_err();
    assert_eq!(e.kind(), &ParseErrorKind::BodyTooShort);
}

#[test]
fn ipv6_hosts_come_out_right() {
    // §4.1
    let r = request("ipv6-good");
    assert_eq!(r.uri.host(), Some(&Host::Ipv6(v6("2001:db8::10"))));
    assert_eq!(r.uri.to_string(), "sip:[2001:db8::10]");
    assert_eq!(
        r.headers.top_via().unwrap().host,
        Host::Ipv6(v6("2001:db8::9:1"))
    );
    let contact = r.headers.contacts().unwrap().addresses()[0].clone();
    assert_eq!(contact.uri.host(), Some(&Host::Ipv6(v6("2001:db8::1"))));
    assert_eq!(contact.display_name.as_deref(), Some("Caller"));

    // §4.3: the "port" inside the brackets is part of the address.
    let r = request("port-ambiguous");
    assert_eq!(r.uri.host(), Some(&Host::Ipv6(v6("2001:db8::10:5070"))));
    assert_eq!(r.uri.port(), None);
    // §4.4
    let r = request("port-unambiguous");
    assert_eq!(r.uri.host(), Some(&Host::Ipv6(v6("2001:db8::10"))));
    assert_eq!(r.uri.port(), Some(5070));

    // §4.5: received with and without brackets.
    for name in [
        "via-received-param-with-delim",
        "via-received-param-no-delim",
    ] {
        let via = request(name).headers.top_via().unwrap();
        assert_eq!(
            via.received(),
            Some(IpAddr::V6(v6("2001:db8::9:255"))),
            "{name}"
        );
        assert_eq!(via.host, Host::Ipv6(v6("2001:db8::9:1")));
    }

    // §4.7: IPv4 and IPv6 Vias mixed.
    let vias = request("mult-ip-in-header").headers.vias().unwrap();
    assert_eq!(vias[0].host, Host::Ipv6(v6("2001:db8::9:1")));
    assert_eq!(vias[0].port, Some(6050));
    assert_eq!(vias[0].sent_by(), "[2001:db8::9:1]:6050");
    assert_eq!(vias[1].host, Host::Ipv4("192.0.2.1".parse().unwrap()));
    assert_eq!(vias[2].transport, "TCP");
    assert_eq!(vias[2].received(), Some("192.0.2.200".parse().unwrap()));

    // §4.9: IPv4-mapped addresses.
    let r = request("ipv4-mapped-ipv6");
    let vias = r.headers.vias().unwrap();
    assert_eq!(vias[0].host, Host::Ipv6(v6("::ffff:192.0.2.10")));
    assert_eq!(vias[0].port, Some(19823));
    let contact = r.headers.contacts().unwrap().addresses()[0].clone();
    assert_eq!(
        contact.uri.host(),
        Some(&Host::Ipv6(v6("::ffff:192.0.2.2")))
    );

    // §4.10: the three-colon form is tolerated, means the same address, and is kept as sent.
    let three = request("ipv6-bug-abnf-3-colons");
    let two = request("ipv6-correct-abnf-2-colons");
    assert_eq!(
        three.uri.host(),
        Some(&Host::Ipv6(v6("2001:db8::192.0.2.1")))
    );
    assert_eq!(three.uri.to_string(), "sip:user@[2001:db8:::192.0.2.1]");
    assert!(three.uri.equivalent(&two.uri));
    assert!(
        three
            .headers
            .to()
            .unwrap()
            .uri
            .equivalent(&two.headers.to().unwrap().uri)
    );
}

#[test]
fn ipv6_without_brackets_is_a_bad_request() {
    // §4.2
    let e = parse_message(wire("ipv6-bad")).unwrap_err();
    assert!(matches!(e.kind(), ParseErrorKind::RequestUri(_)));
    let resp = e.bad_request_response().unwrap();
    assert_eq!(resp.status.code(), 400);
    assert_eq!(
        resp.headers.top_via().unwrap().host,
        Host::Ipv6(v6("2001:db8::9:1"))
    );
}
