//! OPTIONS qualify (the "qualify" of Asterisk, the "nathelper ping" of Kamailio): every
//! `[sip] qualify_interval`, each registered device is sent an OPTIONS over the flow it
//! registered from (which also keeps its NAT binding open); a device that never answers is
//! marked unreachable.

use crate::peer::Peer;
use bytes::Bytes;
use pbx_sip::message::{Message, Request};
use std::net::IpAddr;

/// One device to qualify, routed to the shard its Call-ID hashes to so that the answer
/// (dispatched by Call-ID too) finds the transaction.
pub struct Target {
    pub aor: String,
    pub contact: String,
    pub call_id: String,
    pub peer: Peer,
}

/// The OPTIONS request for a target (RFC 3261 §11.1), with a fresh branch and From tag.
pub fn options_request(
    target: &Target,
    domain: &str,
    user_agent: &str,
    rng: &mut impl rand::RngCore,
) -> Option<Request> {
    let local = target.peer.local;
    // A wildcard listener has no address of its own to put in Via; the domain then stands in.
    let host = match local.ip() {
        ip if ip.is_unspecified() => domain.to_string(),
        IpAddr::V6(v6) => format!("[{v6}]"),
        IpAddr::V4(v4) => v4.to_string(),
    };
    let text = format!(
        "OPTIONS {contact} SIP/2.0\r\n\
         Via: SIP/2.0/{transport} {host}:{port};branch=z9hG4bK{branch:016x};rport\r\n\
         Max-Forwards: 70\r\n\
         From: <sip:pbx@{domain}>;tag={tag:016x}\r\n\
         To: <{contact}>\r\n\
         Call-ID: {call_id}\r\n\
         CSeq: 1 OPTIONS\r\n\
         User-Agent: {user_agent}\r\n\
         Content-Length: 0\r\n\r\n",
        contact = target.contact,
        transport = target.peer.kind.via_token(),
        port = local.port(),
        branch = rng.next_u64(),
        tag = rng.next_u64(),
        call_id = target.call_id,
    );
    match pbx_sip::parse::parse_message(Bytes::from(text)) {
        Ok(Message::Request(request)) => Some(request),
        _ => None,
    }
}
