//! Helpers shared by the relay tests: packet builders, plans, and a one-call driver (the
//! relay runs inside a `MediaSession`, as the server drives it).
#![allow(dead_code)] // each test file uses a different subset

use std::net::SocketAddr;
use std::time::Instant;

use pbx_media::relay::{Component, Verdict};
use pbx_media::session::MediaSession;
use pbx_media::{LegPlan, MediaPlan, Side};

/// Room the shell guarantees beyond the datagram for SRTP tags.
pub const SPARE: usize = 64;

pub fn addr(s: &str) -> SocketAddr {
    s.parse().expect("test address")
}

/// An RTP packet: V=2, no CSRC, no extension.
pub fn rtp(pt: u8, marker: bool, seq: u16, ts: u32, ssrc: u32, payload: &[u8]) -> Vec<u8> {
    let mut p = vec![0x80, (u8::from(marker) << 7) | pt];
    p.extend_from_slice(&seq.to_be_bytes());
    p.extend_from_slice(&ts.to_be_bytes());
    p.extend_from_slice(&ssrc.to_be_bytes());
    p.extend_from_slice(payload);
    p
}

/// An RTCP receiver report with no report blocks (RFC 3550 §6.4.2).
pub fn rtcp_rr(ssrc: u32) -> Vec<u8> {
    let mut p = vec![0x80, 201, 0, 1];
    p.extend_from_slice(&ssrc.to_be_bytes());
    p
}

/// A plain sendrecv leg with RTCP on port + 1.
pub fn leg(rtp: &str) -> LegPlan {
    let rtp = addr(rtp);
    let mut rtcp = rtp;
    rtcp.set_port(rtp.port() + 1);
    LegPlan {
        remote_rtp: Some(rtp),
        remote_rtcp: Some(rtcp),
        ..LegPlan::default()
    }
}

pub fn plan(caller: LegPlan, callee: LegPlan) -> MediaPlan {
    MediaPlan {
        caller,
        callee,
        codec: "PCMU/8000".into(),
    }
}

/// Feeds one datagram; returns the verdict and the bytes the shell would send.
pub fn feed(
    bridge: &mut MediaSession,
    now: Instant,
    side: Side,
    component: Component,
    source: SocketAddr,
    pkt: &[u8],
) -> (Verdict, Vec<u8>) {
    let mut buf = vec![0u8; pkt.len() + SPARE];
    buf[..pkt.len()].copy_from_slice(pkt);
    let v = bridge.handle_datagram(now, side, component, source, &mut buf, pkt.len());
    let out = match v {
        Verdict::Forward { len, .. } => buf[..len].to_vec(),
        Verdict::Drop(_) | Verdict::Consumed | Verdict::Held => Vec::new(),
    };
    (v, out)
}

/// The one real instant the tests read; everything after is virtual.
pub fn base() -> Instant {
    #[allow(clippy::disallowed_methods)]
    Instant::now()
}
