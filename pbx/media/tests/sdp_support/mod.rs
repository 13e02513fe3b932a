//! Shared helpers of the SDP tests.
#![allow(dead_code)]

use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};

use pbx_media::sdp::{
    Encryption, LegPolicy, LocalEndpoint, MediaDescription, Negotiator, SessionDescription, parse,
};
use rand::SeedableRng;
use rand::rngs::StdRng;

pub const PBX_IP: &str = "203.0.113.5";
pub const CALLER_PORT: u16 = 20000;
pub const CALLEE_PORT: u16 = 30000;

pub fn fixture(name: &str) -> Vec<u8> {
    let path = format!("{}/tests/fixtures/sdp/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// An SDP from lines, CRLF-terminated.
pub fn sdp(lines: &[&str]) -> Vec<u8> {
    lines
        .iter()
        .flat_map(|l| format!("{l}\r\n").into_bytes())
        .collect()
}

/// A deterministic generator, seeded differently on every call so that keys made with two
/// calls differ as they would with the one generator of a real call.
pub fn rng() -> StdRng {
    static SEED: AtomicU64 = AtomicU64::new(7);
    StdRng::seed_from_u64(SEED.fetch_add(1, Ordering::Relaxed))
}

pub fn policy(encryption: Encryption, tls: bool) -> LegPolicy {
    LegPolicy {
        encryption,
        secure_signaling: tls,
        allow_keys_in_clear: false,
    }
}

pub fn plain() -> LegPolicy {
    policy(Encryption::Optional, false)
}

pub fn endpoint(port: u16) -> LocalEndpoint {
    LocalEndpoint {
        ip: PBX_IP.parse().unwrap(),
        rtp_port: port,
    }
}

pub fn negotiator(caller: LegPolicy, callee: LegPolicy) -> Negotiator {
    Negotiator::new(
        endpoint(CALLER_PORT),
        caller,
        endpoint(CALLEE_PORT),
        callee,
        4242,
    )
}

pub fn text(sdp: &[u8]) -> String {
    String::from_utf8(sdp.to_vec()).unwrap()
}

pub fn parsed(sdp: &[u8]) -> SessionDescription {
    parse(sdp).unwrap()
}

/// The first audio m-line of an SDP the PBX wrote.
pub fn audio(sdp: &[u8]) -> MediaDescription {
    parsed(sdp)
        .media
        .into_iter()
        .find(|m| m.is_audio() && m.port != 0)
        .unwrap()
}

/// The `m=` line's format list.
pub fn formats(sdp: &[u8]) -> Vec<String> {
    audio(sdp).formats
}

pub fn addr(s: &str) -> Option<SocketAddr> {
    Some(s.parse().unwrap())
}

pub fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

/// The `o=` line's version.
pub fn version(sdp: &[u8]) -> u64 {
    let t = text(sdp);
    let o = t.lines().find(|l| l.starts_with("o=")).unwrap();
    o.split(' ').nth(2).unwrap().parse().unwrap()
}

/// Lines of `sdp` that start with `prefix`.
pub fn lines(sdp: &[u8], prefix: &str) -> Vec<String> {
    text(sdp)
        .lines()
        .filter(|l| l.starts_with(prefix))
        .map(str::to_owned)
        .collect()
}

/// A plain answer from the callee: `m=audio <port> RTP/AVP <pts>` plus extra lines.
pub fn callee_answer(pts: &str, extra: &[&str]) -> Vec<u8> {
    let mut l = vec![
        "v=0".to_owned(),
        "o=callee 1 1 IN IP4 198.51.100.20".to_owned(),
        "s=-".to_owned(),
        "c=IN IP4 198.51.100.20".to_owned(),
        "t=0 0".to_owned(),
        format!("m=audio 40000 RTP/AVP {pts}"),
    ];
    l.extend(extra.iter().map(|s| (*s).to_owned()));
    sdp(&l.iter().map(String::as_str).collect::<Vec<_>>())
}
