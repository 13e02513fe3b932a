//! Drive one bridge with arbitrary datagrams on arbitrary sockets from arbitrary sources,
//! with and without SRTP, interleaved with re-plans. Nothing may panic, a forwarded length
//! must fit the buffer, and plain-to-plain RTP must keep its length.
//!
//! Input: a config byte, then records `[selector, len, bytes...]`. The selector picks the
//! leg, the socket, one of four sources (each leg's SDP address among them), whether to
//! encrypt the bytes first with the leg's real key (so the fuzzer reaches the code behind
//! authentication), and re-plans. The config byte also picks how plain legs latch: first
//! packet, or strict RTP with a probation of 1, 2 or 4 packets (the fuzzer can send the
//! consecutive sequence numbers a candidate needs).
#![no_main]

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use libfuzzer_sys::fuzz_target;
use pbx_media::relay::{Bridge, Component, LatchPolicy, Verdict};
use pbx_media::{CryptoSuite, Direction, LegPlan, MediaPlan, Side, SrtpKey, SrtpPair};
use rtc_srtp::context::Context;
use rtc_srtp::protection_profile::ProtectionProfile;

const SUITES: [CryptoSuite; 3] = [
    CryptoSuite::AesCm128HmacSha1_80,
    CryptoSuite::AesCm128HmacSha1_32,
    CryptoSuite::AeadAes128Gcm,
];

fn key(suite: CryptoSuite, fill: u8) -> SrtpKey {
    SrtpKey {
        suite,
        key_salt: vec![fill; suite.key_len() + suite.salt_len()],
    }
}

fn ctx(k: &SrtpKey) -> Option<Context> {
    let profile = match k.suite {
        CryptoSuite::AesCm128HmacSha1_80 => ProtectionProfile::Aes128CmHmacSha1_80,
        CryptoSuite::AesCm128HmacSha1_32 => ProtectionProfile::Aes128CmHmacSha1_32,
        CryptoSuite::AeadAes128Gcm => ProtectionProfile::AeadAes128Gcm,
    };
    let (master, salt) = k.key_salt.split_at(k.suite.key_len());
    let provider = rtc_srtp::crypto::default_provider().ok()?;
    Context::new(master, salt, profile, None, None, provider.crypto()).ok()
}

fn addr(i: u8) -> SocketAddr {
    SocketAddr::from(([192, 0, 2, 1 + (i & 3)], 4000 + u16::from(i & 3) * 2))
}

fn leg(config: u8, n: u8) -> LegPlan {
    let rtp = addr(n);
    let mut rtcp = rtp;
    rtcp.set_port(rtp.port() + 1);
    let mux = config & 1 != 0;
    LegPlan {
        remote_rtp: (config & 8 == 0).then_some(rtp),
        remote_rtcp: Some(if mux { rtp } else { rtcp }),
        rtcp_mux: mux,
        srtp: (config & 2 != 0).then(|| SrtpPair {
            inbound: key(SUITES[usize::from(config >> 4) % 3], n),
            outbound: key(SUITES[usize::from(config >> 6) % 3], n ^ 0x55),
        }),
        pt_map: vec![(0, 8), (8, 0), (101, 96), (u8::from(config), 127)],
        direction: if config & 4 != 0 {
            Direction::SendOnly
        } else {
            Direction::SendRecv
        },
        webrtc: None,
        out_stream: None,
        transcode: None,
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&config, mut rest)) = data.split_first() else {
        return;
    };
    #[allow(clippy::disallowed_methods)]
    let mut now = Instant::now();
    let mut bridge = Bridge::new(now);
    bridge.set_latching(match config.count_ones() % 4 {
        0 => LatchPolicy::OFF,
        n => LatchPolicy::sequence(1 << (n - 1)),
    });
    let mut plan = MediaPlan {
        caller: leg(config, 0),
        callee: leg(config.rotate_left(3), 1),
        codec: String::new(),
    };
    let _ = bridge.apply(now, &plan);
    let mut phones = [
        plan.caller.srtp.as_ref().and_then(|p| ctx(&p.inbound)),
        plan.callee.srtp.as_ref().and_then(|p| ctx(&p.inbound)),
    ];
    let mut buf = [0u8; 2048];
    while let [sel, len, tail @ ..] = rest {
        let len = usize::from(*len).min(tail.len());
        let (pkt, next) = tail.split_at(len);
        rest = next;
        now += Duration::from_millis(20);
        let side = if sel & 1 == 0 {
            Side::Caller
        } else {
            Side::Callee
        };
        if sel & 0xf0 == 0xf0 {
            // Re-plan: flip mux/hold/address on this leg, keep the keys.
            let l = if side == Side::Caller {
                &mut plan.caller
            } else {
                &mut plan.callee
            };
            l.rtcp_mux ^= sel & 2 != 0;
            l.direction = if sel & 4 != 0 {
                Direction::Inactive
            } else {
                Direction::SendRecv
            };
            if sel & 8 != 0 {
                l.remote_rtp = Some(addr(sel >> 2));
            }
            let _ = bridge.apply(now, &plan);
            let _ = bridge.idle_for(now);
            continue;
        }
        let component = if sel & 2 == 0 {
            Component::Rtp
        } else {
            Component::Rtcp
        };
        let source = addr(sel >> 2);
        let mut n = pkt.len();
        buf[..n].copy_from_slice(pkt);
        if sel & 0x40 != 0 {
            if let Some(phone) = phones[side.index()].as_mut() {
                // Our "phone" is rtc-srtp too, which panics on RFC 8285 extensions that
                // overrun their block (the bridge refuses those): send without extensions.
                if component == Component::Rtp && n > 0 {
                    buf[0] &= !0x10;
                }
                let sealed = if component == Component::Rtp {
                    phone.encrypt_rtp(&buf[..n])
                } else {
                    phone.encrypt_rtcp(&buf[..n])
                };
                if let Ok(sealed) = sealed {
                    n = sealed.len();
                    buf[..n].copy_from_slice(&sealed);
                }
            }
        }
        let plain_pair = plan.caller.srtp.is_none() && plan.callee.srtp.is_none();
        match bridge.handle_packet(now, side, component, source, &mut buf, n) {
            Verdict::Forward { len, side: to, .. } => {
                assert!(len <= buf.len());
                assert_eq!(to, side.other());
                if plain_pair {
                    assert_eq!(len, n);
                }
            }
            Verdict::Drop(_) | Verdict::Consumed | Verdict::Held => {}
        }
    }
    let s = bridge.stats();
    assert!(s.srtp_auth_failures() <= s.dropped_total());
    let _ = &mut phones;
});
