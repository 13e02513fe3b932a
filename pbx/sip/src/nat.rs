//! Where a request really came from, and where its responses go (RFC 3261 §18.2.1, §18.2.2;
//! RFC 3581 symmetric response routing). A phone behind NAT writes its private address into
//! Via; the server records the public source so that responses reach the phone.

use crate::header::Via;
use crate::header::lex::{split_commas, trim_ws};
use crate::message::{HeaderName, Request};
use std::net::SocketAddr;

/// Stamps the top Via of a request received from `source`:
/// - RFC 3261 §18.2.1: `received=` when the sent-by host is not the source address;
/// - RFC 3581 §4: when the client asked with an empty `rport`, `rport=<source port>` and
///   `received=` always.
///
/// Returns the address responses go to over an unreliable transport (RFC 3581 §4: the source
/// when rport was asked; RFC 3261 §18.2.2: otherwise the received address and the sent-by
/// port, default 5060). `None` when the top Via is unreadable (the request is then answered
/// to its source, if at all).
pub fn stamp_received(request: &mut Request, source: SocketAddr) -> Option<SocketAddr> {
    let line = request.headers.get_str(&HeaderName::VIA)?.to_owned();
    let values = split_commas(&line).ok()?;
    let (top_text, rest) = values.split_first()?;
    let mut top = Via::parse(trim_ws(top_text)).ok()?;
    let source_ip = crate::uri::Host::from(source.ip());
    let asked_rport = matches!(top.rport(), Some(None));
    let target = if asked_rport {
        top.set_received(source.ip());
        top.set_rport(source.port());
        source
    } else {
        if !top.host.matches(&source_ip) {
            top.set_received(source.ip());
        }
        SocketAddr::new(source.ip(), top.port.unwrap_or(default_port(&top)))
    };
    let mut rewritten = top.to_string();
    for value in rest {
        rewritten.push_str(", ");
        rewritten.push_str(trim_ws(value));
    }
    if let Some(first) = request.headers.first_mut(&HeaderName::VIA) {
        first.value = rewritten.into();
    }
    Some(target)
}

fn default_port(via: &Via) -> u16 {
    // RFC 3261 §18.2.2 / §19.1.2: 5061 for TLS, else 5060.
    if via.transport.eq_ignore_ascii_case("TLS") {
        5061
    } else {
        5060
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::Message;
    use bytes::Bytes;

    fn request(via: &str) -> Request {
        let text = format!(
            "OPTIONS sip:pbx.test SIP/2.0\r\nVia: {via}\r\nVia: SIP/2.0/UDP proxy.example;branch=z9hG4bKp\r\n\
             From: <sip:a@pbx.test>;tag=1\r\nTo: <sip:pbx.test>\r\nCall-ID: c\r\nCSeq: 1 OPTIONS\r\n\
             Max-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
        );
        match crate::parse::parse_message(Bytes::from(text)) {
            Ok(Message::Request(r)) => r,
            other => panic!("not a request: {other:?}"),
        }
    }

    #[test]
    fn rport_asked_answers_to_the_source() {
        let mut r = request("SIP/2.0/UDP 10.0.0.5:5062;rport;branch=z9hG4bKa");
        let source: SocketAddr = "203.0.113.9:40001".parse().unwrap();
        assert_eq!(stamp_received(&mut r, source), Some(source));
        let top = r.headers.top_via().unwrap();
        assert_eq!(top.rport(), Some(Some(40001)));
        assert_eq!(top.received(), Some(source.ip()));
        assert_eq!(top.branch(), Some("z9hG4bKa"));
        assert_eq!(r.headers.vias().unwrap().len(), 2, "the other Via is kept");
    }

    #[test]
    fn without_rport_answers_to_received_and_sent_by_port() {
        let mut r = request("SIP/2.0/UDP 10.0.0.5:5062;branch=z9hG4bKa");
        let source: SocketAddr = "203.0.113.9:40001".parse().unwrap();
        assert_eq!(
            stamp_received(&mut r, source),
            Some("203.0.113.9:5062".parse().unwrap())
        );
        let top = r.headers.top_via().unwrap();
        assert_eq!(top.received(), Some(source.ip()));
        assert_eq!(top.rport(), None);
    }

    #[test]
    fn same_host_gets_no_received() {
        let mut r =
            request("SIP/2.0/UDP 127.0.0.1;branch=z9hG4bKa, SIP/2.0/UDP 10.1.1.1;branch=z9hG4bKb");
        let source: SocketAddr = "127.0.0.1:5060".parse().unwrap();
        assert_eq!(stamp_received(&mut r, source), Some(source));
        let vias = r.headers.vias().unwrap();
        assert_eq!(vias.len(), 3);
        assert_eq!(vias[0].received(), None);
        assert_eq!(vias[1].branch(), Some("z9hG4bKb"));
    }
}
