//! In-process CPU cost of one call's media path (a measurement, not a test; no sockets): a
//! 20 ms packet each way through a `MediaSession`, for
//!
//! - `plain`: RTP ↔ RTP (the relay of two desk phones),
//! - `srtp`: SRTP (AES_CM_128_HMAC_SHA1_80, the suite DTLS-SRTP gives browsers) with the
//!   browser's own outgoing stream ↔ RTP: a browser ↔ phone bridge minus ICE and DTLS, which
//!   only act at setup and every few seconds,
//! - `transcode`: the same with Opus on the browser side and µ-law on the phone's.
//!
//! The generator's own SRTP and Opus work is done before the clock starts. Prints CPU time
//! (process user + system, `/proc/self/stat`) per second of call, i.e. the share of one core
//! one call takes in the relay's packet path, syscalls excluded.
//!
//! `cargo run --release -p pbx-media --example relay_cost [seconds of call, 3600]`

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use opus_rs::{Application, OpusEncoder};
use pbx_media::g711::Law;
use pbx_media::relay::{Component, Verdict};
use pbx_media::session::MediaSession;
use pbx_media::voice::Voice;
use pbx_media::{
    CryptoSuite, LegPlan, MediaPlan, OutStreamPlan, Side, SrtpKey, SrtpPair, Transcoding,
};
use rtc_srtp::context::Context;
use rtc_srtp::protection_profile::ProtectionProfile;

const BROWSER: &str = "192.0.2.10:4000";
const PHONE: &str = "198.51.100.20:6000";

fn addr(s: &str) -> SocketAddr {
    s.parse().expect("address")
}

fn key(fill: u8) -> SrtpKey {
    SrtpKey {
        suite: CryptoSuite::AesCm128HmacSha1_80,
        key_salt: (0..30u8).map(|i| i.wrapping_mul(31) ^ fill).collect(),
    }
}

fn ctx(k: &SrtpKey) -> Context {
    let (master, salt) = k.key_salt.split_at(16);
    let provider = rtc_srtp::crypto::default_provider().expect("ring");
    Context::new(
        master,
        salt,
        ProtectionProfile::Aes128CmHmacSha1_80,
        None,
        None,
        provider.crypto(),
    )
    .expect("context")
}

fn leg(a: &str) -> LegPlan {
    let rtp = addr(a);
    LegPlan {
        remote_rtp: Some(rtp),
        remote_rtcp: Some(rtp),
        rtcp_mux: true,
        ..LegPlan::default()
    }
}

fn rtp(pt: u8, seq: u16, ts: u32, ssrc: u32, payload: &[u8]) -> Vec<u8> {
    let mut p = vec![0x80, pt];
    p.extend_from_slice(&seq.to_be_bytes());
    p.extend_from_slice(&ts.to_be_bytes());
    p.extend_from_slice(&ssrc.to_be_bytes());
    p.extend_from_slice(payload);
    p
}

#[derive(Clone, Copy, PartialEq)]
enum Mode {
    Plain,
    Srtp,
    Transcode,
}

fn run(mode: Mode, seconds: u32) -> f64 {
    let browser_keys = SrtpPair {
        inbound: key(1),
        outbound: key(2),
    };
    let mut browser = leg(BROWSER);
    if mode != Mode::Plain {
        browser.srtp = Some(browser_keys.clone());
        browser.out_stream = Some(Box::new(OutStreamPlan {
            ssrc: 0x0b0b,
            clock_rates: vec![(0, 8000), (111, 48_000)],
        }));
    }
    if mode == Mode::Transcode {
        browser.transcode = Some(Transcoding {
            opus_pt: 111,
            voice: Voice::G711(Law::Mu),
            voice_pt: 0,
            events: None,
        });
    }
    let plan = MediaPlan {
        caller: browser,
        callee: leg(PHONE),
        codec: String::new(),
    };
    #[allow(clippy::disallowed_methods)]
    let t0 = Instant::now();
    let mut s = MediaSession::relay(t0);
    s.apply(t0, &plan).expect("plan");

    // What the browser and the phone send, made beforehand.
    let frames = (seconds * 50) as usize;
    let mut enc = OpusEncoder::new(48_000, 1, Application::Voip).expect("encoder");
    enc.bitrate_bps = 32_000;
    let mut browser_ctx = ctx(&browser_keys.inbound);
    let mut from_browser = Vec::with_capacity(frames);
    let mut from_phone = Vec::with_capacity(frames);
    for i in 0..frames {
        let pcm: Vec<i16> = (0..960)
            .map(|n| {
                let t = (i * 960 + n) as f64 / 48_000.0;
                (6000.0 * (2.0 * std::f64::consts::PI * 700.0 * t).sin()) as i16
            })
            .collect();
        let ulaw: Vec<u8> = pcm.iter().step_by(6).map(|&x| Law::Mu.encode(x)).collect();
        let plain = match mode {
            Mode::Transcode => {
                let mut out = [0u8; 1500];
                let n = enc.encode_i16(&pcm, 960, &mut out).expect("encode");
                rtp(111, i as u16, (i * 960) as u32, 0xb1, &out[..n])
            }
            _ => rtp(0, i as u16, (i * 160) as u32, 0xb1, &ulaw),
        };
        from_browser.push(match mode {
            Mode::Plain => plain,
            _ => browser_ctx.encrypt_rtp(&plain).expect("srtp").to_vec(),
        });
        from_phone.push(rtp(0, i as u16, (i * 160) as u32, 0xf1, &ulaw));
    }

    let before = cpu_seconds();
    let mut buf = vec![0u8; 2048];
    let mut forwarded = 0u64;
    for (i, (b, p)) in from_browser.iter().zip(&from_phone).enumerate() {
        let now = t0 + Duration::from_millis(20 * i as u64);
        for (side, source, pkt) in [(Side::Caller, BROWSER, b), (Side::Callee, PHONE, p)] {
            buf[..pkt.len()].copy_from_slice(pkt);
            let v = s.handle_datagram(now, side, Component::Rtp, addr(source), &mut buf, pkt.len());
            if matches!(v, Verdict::Forward { .. }) {
                forwarded += 1;
            }
        }
    }
    let cpu = cpu_seconds() - before;
    assert!(
        forwarded as usize >= 2 * frames - 2,
        "{forwarded} forwarded"
    );
    cpu / f64::from(seconds) * 100.0
}

fn main() {
    // The relay's path is cheap: an hour of call for the 10 ms CPU ticks to resolve it.
    let seconds: u32 = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(3600);
    for round in 1..=3 {
        let plain = run(Mode::Plain, seconds);
        let srtp = run(Mode::Srtp, seconds);
        let transcode = run(Mode::Transcode, seconds / 10);
        println!(
            "round {round}: plain {plain:.4} %, SRTP + own stream {srtp:.4} %, Opus transcoding + SRTP {transcode:.4} % of a core per call"
        );
    }
}

/// User + system CPU seconds of this process so far (Linux `/proc/self/stat`, 100 Hz ticks).
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let after = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    (ticks(11) + ticks(12)) / 100.0
}
