//! HEP version 3 (the Homer Encapsulation Protocol, <https://github.com/sipcapture/HEP>):
//! one captured SIP message as the packet a Homer or heplify-server capture server reads.
//!
//! A packet is `"HEP3"`, its total length (u16), then chunks. Each chunk is a vendor id
//! (u16, 0 = the generic chunks), a type (u16), its length including these 6 header bytes
//! (u16) and the value. Every integer is big-endian (network order).

use std::net::{IpAddr, SocketAddr};

/// The generic chunk types of HEP3 (vendor 0), as the specification numbers them.
pub mod chunk {
    pub const IP_FAMILY: u16 = 1;
    pub const IP_PROTOCOL: u16 = 2;
    pub const IPV4_SRC: u16 = 3;
    pub const IPV4_DST: u16 = 4;
    pub const IPV6_SRC: u16 = 5;
    pub const IPV6_DST: u16 = 6;
    pub const SRC_PORT: u16 = 7;
    pub const DST_PORT: u16 = 8;
    pub const TIME_SECONDS: u16 = 9;
    pub const TIME_MICROSECONDS: u16 = 10;
    pub const PROTOCOL_TYPE: u16 = 11;
    pub const CAPTURE_ID: u16 = 12;
    pub const AUTH_KEY: u16 = 14;
    pub const PAYLOAD: u16 = 15;
}

/// The IP family values HEP uses (those of Linux's `AF_INET`, `AF_INET6`).
pub const FAMILY_IPV4: u8 = 2;
pub const FAMILY_IPV6: u8 = 10;
/// The `protocol type` of a SIP payload.
pub const PROTOCOL_SIP: u8 = 1;
/// The vendor id of the generic chunks.
const VENDOR_GENERIC: u16 = 0;
const HEADER_LEN: usize = 6;
const CHUNK_HEADER_LEN: usize = 6;

/// The IP protocol the captured message travelled over (IANA protocol numbers). TLS is
/// TCP: HEP has no way to say more.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IpProtocol {
    Udp = 17,
    Tcp = 6,
}

/// One captured message.
#[derive(Clone, Copy, Debug)]
pub struct Capture<'a> {
    pub src: SocketAddr,
    pub dst: SocketAddr,
    pub protocol: IpProtocol,
    /// When the message was seen: unix seconds and the microseconds within that second.
    pub seconds: u32,
    pub micros: u32,
    /// The capture agent id (`[trace] hep_id`), which names this PBX in Homer.
    pub capture_id: u32,
    /// The capture server's password (`[trace] hep_password`), when it wants one.
    pub auth_key: Option<&'a str>,
    pub payload: &'a [u8],
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum HepError {
    #[error("source and destination are of different IP families")]
    MixedFamilies,
    #[error("the packet would be {0} bytes, more than HEP's 65535")]
    TooLarge(usize),
}

/// Encodes `capture` as one HEP3 packet.
pub fn encode(capture: &Capture<'_>) -> Result<Vec<u8>, HepError> {
    let auth_len = capture.auth_key.map_or(0, |k| CHUNK_HEADER_LEN + k.len());
    let address_len = match capture.src.ip() {
        IpAddr::V4(_) => 4,
        IpAddr::V6(_) => 16,
    };
    let total = HEADER_LEN
        + (CHUNK_HEADER_LEN + 1) * 3 // family, protocol, protocol type
        + (CHUNK_HEADER_LEN + address_len) * 2
        + (CHUNK_HEADER_LEN + 2) * 2 // ports
        + (CHUNK_HEADER_LEN + 4) * 3 // seconds, microseconds, capture id
        + auth_len
        + CHUNK_HEADER_LEN
        + capture.payload.len();
    let total_u16 = u16::try_from(total).map_err(|_| HepError::TooLarge(total))?;
    let mut out = Vec::with_capacity(total);
    out.extend_from_slice(b"HEP3");
    out.extend_from_slice(&total_u16.to_be_bytes());
    match (capture.src.ip(), capture.dst.ip()) {
        (IpAddr::V4(src), IpAddr::V4(dst)) => {
            put(&mut out, chunk::IP_FAMILY, &[FAMILY_IPV4]);
            put(&mut out, chunk::IP_PROTOCOL, &[capture.protocol as u8]);
            put(&mut out, chunk::IPV4_SRC, &src.octets());
            put(&mut out, chunk::IPV4_DST, &dst.octets());
        }
        (IpAddr::V6(src), IpAddr::V6(dst)) => {
            put(&mut out, chunk::IP_FAMILY, &[FAMILY_IPV6]);
            put(&mut out, chunk::IP_PROTOCOL, &[capture.protocol as u8]);
            put(&mut out, chunk::IPV6_SRC, &src.octets());
            put(&mut out, chunk::IPV6_DST, &dst.octets());
        }
        _ => return Err(HepError::MixedFamilies),
    }
    put(&mut out, chunk::SRC_PORT, &capture.src.port().to_be_bytes());
    put(&mut out, chunk::DST_PORT, &capture.dst.port().to_be_bytes());
    put(
        &mut out,
        chunk::TIME_SECONDS,
        &capture.seconds.to_be_bytes(),
    );
    put(
        &mut out,
        chunk::TIME_MICROSECONDS,
        &capture.micros.to_be_bytes(),
    );
    put(&mut out, chunk::PROTOCOL_TYPE, &[PROTOCOL_SIP]);
    put(
        &mut out,
        chunk::CAPTURE_ID,
        &capture.capture_id.to_be_bytes(),
    );
    if let Some(key) = capture.auth_key {
        put(&mut out, chunk::AUTH_KEY, key.as_bytes());
    }
    put(&mut out, chunk::PAYLOAD, capture.payload);
    debug_assert_eq!(out.len(), total);
    Ok(out)
}

/// Appends one generic chunk. Callers keep every value far below 65535 - 6 bytes (the
/// whole packet was checked against that).
fn put(out: &mut Vec<u8>, kind: u16, value: &[u8]) {
    let len = u16::try_from(CHUNK_HEADER_LEN + value.len()).unwrap_or(u16::MAX);
    out.extend_from_slice(&VENDOR_GENERIC.to_be_bytes());
    out.extend_from_slice(&kind.to_be_bytes());
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(value);
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    /// A decoder written from the specification, independent of the encoder: checks the
    /// header and every chunk's framing, returns the values by chunk type.
    fn decode(packet: &[u8]) -> BTreeMap<u16, Vec<u8>> {
        assert_eq!(packet.get(..4), Some(&b"HEP3"[..]));
        let total = u16::from_be_bytes([packet[4], packet[5]]) as usize;
        assert_eq!(total, packet.len(), "the header's length is the packet's");
        let mut chunks = BTreeMap::new();
        let mut at = 6;
        while at < packet.len() {
            let vendor = u16::from_be_bytes([packet[at], packet[at + 1]]);
            let kind = u16::from_be_bytes([packet[at + 2], packet[at + 3]]);
            let len = u16::from_be_bytes([packet[at + 4], packet[at + 5]]) as usize;
            assert_eq!(vendor, 0, "generic chunk");
            assert!(
                len >= 6 && at + len <= packet.len(),
                "chunk {kind} length {len}"
            );
            let old = chunks.insert(kind, packet[at + 6..at + len].to_vec());
            assert!(old.is_none(), "chunk {kind} twice");
            at += len;
        }
        assert_eq!(at, packet.len(), "chunks fill the packet exactly");
        chunks
    }

    fn capture<'a>(src: &str, dst: &str, payload: &'a [u8]) -> Capture<'a> {
        Capture {
            src: src.parse().unwrap_or_else(|e| panic!("{src}: {e}")),
            dst: dst.parse().unwrap_or_else(|e| panic!("{dst}: {e}")),
            protocol: IpProtocol::Udp,
            seconds: 1_700_000_000,
            micros: 123_456,
            capture_id: 2001,
            auth_key: None,
            payload,
        }
    }

    #[test]
    fn ipv4_udp_packet_decodes_field_by_field() {
        let payload = b"OPTIONS sip:pbx.test SIP/2.0\r\nContent-Length: 0\r\n\r\n";
        let packet = encode(&capture("192.0.2.7:5062", "198.51.100.1:5060", payload))
            .unwrap_or_else(|e| panic!("{e}"));
        let c = decode(&packet);
        assert_eq!(c[&chunk::IP_FAMILY], [2]);
        assert_eq!(c[&chunk::IP_PROTOCOL], [17]);
        assert_eq!(c[&chunk::IPV4_SRC], [192, 0, 2, 7]);
        assert_eq!(c[&chunk::IPV4_DST], [198, 51, 100, 1]);
        assert_eq!(c[&chunk::SRC_PORT], 5062u16.to_be_bytes());
        assert_eq!(c[&chunk::DST_PORT], 5060u16.to_be_bytes());
        assert_eq!(c[&chunk::TIME_SECONDS], 1_700_000_000u32.to_be_bytes());
        assert_eq!(c[&chunk::TIME_MICROSECONDS], 123_456u32.to_be_bytes());
        assert_eq!(c[&chunk::PROTOCOL_TYPE], [1]);
        assert_eq!(c[&chunk::CAPTURE_ID], 2001u32.to_be_bytes());
        assert_eq!(c[&chunk::PAYLOAD], payload);
        assert!(!c.contains_key(&chunk::AUTH_KEY));
        assert_eq!(c.len(), 11);
        // 6 header + 3 one-byte + 2 four-byte addresses + 2 ports + 3 u32 + payload chunks.
        assert_eq!(
            packet.len(),
            6 + 3 * 7 + 2 * 10 + 2 * 8 + 3 * 10 + 6 + payload.len()
        );
    }

    #[test]
    fn ipv6_tcp_packet_with_password() {
        let mut cap = capture(
            "[2001:db8::1]:5061",
            "[2001:db8::2]:40000",
            b"SIP/2.0 200 OK\r\n\r\n",
        );
        cap.protocol = IpProtocol::Tcp;
        cap.auth_key = Some("s3cret");
        let packet = encode(&cap).unwrap_or_else(|e| panic!("{e}"));
        let c = decode(&packet);
        assert_eq!(c[&chunk::IP_FAMILY], [10]);
        assert_eq!(c[&chunk::IP_PROTOCOL], [6]);
        let src: std::net::Ipv6Addr = "2001:db8::1".parse().unwrap_or_else(|_| panic!());
        assert_eq!(c[&chunk::IPV6_SRC], src.octets());
        assert_eq!(c[&chunk::IPV6_DST].len(), 16);
        assert_eq!(c[&chunk::SRC_PORT], 5061u16.to_be_bytes());
        assert_eq!(c[&chunk::DST_PORT], 40000u16.to_be_bytes());
        assert_eq!(c[&chunk::AUTH_KEY], b"s3cret");
        assert!(!c.contains_key(&chunk::IPV4_SRC));
    }

    #[test]
    fn mixed_families_and_oversized_payloads_are_refused() {
        let mixed = capture("192.0.2.7:5060", "[2001:db8::2]:5060", b"x");
        assert_eq!(encode(&mixed), Err(HepError::MixedFamilies));
        let big = vec![b'x'; 65_535];
        let cap = capture("192.0.2.7:5060", "192.0.2.8:5060", &big);
        assert!(matches!(encode(&cap), Err(HepError::TooLarge(n)) if n > 65_535));
        // The largest payload that fits makes a packet of exactly 65535 bytes.
        let overhead = 6 + 3 * 7 + 2 * 10 + 2 * 8 + 3 * 10 + 6;
        let fits = vec![b'x'; 65_535 - overhead];
        let cap = capture("192.0.2.7:5060", "192.0.2.8:5060", &fits);
        assert_eq!(encode(&cap).map(|p| p.len()), Ok(65_535));
    }
}
