//! Load generator for the browser ↔ phone benchmark (docs/performance.md, issue 14): plays
//! both ends of N calls against the PBX's real media workers (`pbx/server/examples/
//! webrtc_harness.rs`, a process of its own) over UDP on loopback, and reads that process's
//! CPU time over a fixed window, as `bench/media-bench` does for the plain relay.
//!
//! Per call, the browser side is built from the same `rtc-*` crates as a browser's stack
//! (as in `tests/session_webrtc.rs`): an ICE connectivity check with USE-CANDIDATE (RFC 8445
//! §7.1), a DTLS client handshake with the SRTP extension (RFC 5764), then SRTP at 50 packets/s
//! (PCMU, or Opus in `opus` mode) with a consent check every 5 s (RFC 7675 §5.1); the phone
//! side is plain PCMU RTP at 50 packets/s. In `plain` mode both sides are plain RTP (the
//! relay's baseline, same harness, same run).
//!
//! ```text
//! webrtc_load --harness PATH --mode plain|dtls|opus --calls N [--seconds 10] [--warmup 3]
//!     [--gen-base 46000] [--port-min 30000] [--port-max 39999] [--harness-cpu CORE]
//! ```
//!
//! Prints one `RESULT key=value ...` line: the harness's CPU seconds in the window, its share
//! of one core per call, and what each side received (SRTP authenticated by the browser).

// A load generator runs in real time: the clock is its job (clippy.toml keeps it out of the
// sans-IO library).
#![allow(clippy::disallowed_methods)]

use std::error::Error;
use std::io::{BufRead, BufReader, ErrorKind, Write};
use std::net::{Ipv4Addr, SocketAddr, UdpSocket};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use bytes::BytesMut;
use opus_rs::{Application, OpusEncoder};
use pbx_media::g711::Law;
use pbx_media::webrtc::{DtlsIdentity, export_keys};
use pbx_media::{CryptoSuite, DtlsRole, SrtpKey};
use rtc_dtls::endpoint::{Endpoint, EndpointEvent};
use rtc_shared::TransportProtocol;
use rtc_srtp::context::Context;
use rtc_srtp::protection_profile::ProtectionProfile;
use rtc_stun::attributes::{ATTR_USE_CANDIDATE, ATTR_USERNAME, RawAttribute};
use rtc_stun::fingerprint::FINGERPRINT;
use rtc_stun::integrity::MessageIntegrity;
use rtc_stun::message::{BINDING_REQUEST, Message, Setter, TransactionId};
use rtc_stun::textattrs::TextAttribute;

type Res<T> = Result<T, Box<dyn Error>>;
/// 20 ms payloads, cycled.
type Frames = Vec<Vec<u8>>;

/// The harness's ICE password (`webrtc_harness.rs`).
const PBX_ICE_PWD: &str = "pbx-ice-password-0123456";
const OPUS_PT: u8 = 111;
const TICK: Duration = Duration::from_millis(20);
/// RFC 7675 §5.1: a consent check every 5 s on average (here 250 ticks, spread over calls).
const CONSENT_TICKS: u64 = 250;

#[derive(Clone, Copy, PartialEq, Debug)]
enum Mode {
    Plain,
    Dtls,
    Opus,
}

struct Args {
    harness: String,
    mode: Mode,
    calls: u16,
    seconds: u64,
    warmup: u64,
    gen_base: u16,
    port_min: u16,
    port_max: u16,
    harness_cpu: Option<String>,
}

fn parse_args() -> Res<Args> {
    let mut a = Args {
        harness: String::new(),
        mode: Mode::Plain,
        calls: 50,
        seconds: 10,
        warmup: 3,
        gen_base: 46_000,
        port_min: 30_000,
        port_max: 39_999,
        harness_cpu: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let v = it.next().ok_or_else(|| format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--harness" => a.harness = v,
            "--mode" => {
                a.mode = match v.as_str() {
                    "plain" => Mode::Plain,
                    "dtls" => Mode::Dtls,
                    "opus" => Mode::Opus,
                    _ => return Err(format!("--mode {v}: plain, dtls or opus").into()),
                }
            }
            "--calls" => a.calls = v.parse()?,
            "--seconds" => a.seconds = v.parse()?,
            "--warmup" => a.warmup = v.parse()?,
            "--gen-base" => a.gen_base = v.parse()?,
            "--port-min" => a.port_min = v.parse()?,
            "--port-max" => a.port_max = v.parse()?,
            "--harness-cpu" => a.harness_cpu = Some(v),
            _ => return Err(format!("unknown option {flag}").into()),
        }
    }
    if a.harness.is_empty() {
        return Err("--harness PATH (target/release/examples/webrtc_harness) is required".into());
    }
    Ok(a)
}

/// One call's two ends.
struct Call {
    browser: UdpSocket,
    phone: UdpSocket,
    pbx_browser: SocketAddr,
    pbx_phone: SocketAddr,
    /// The browser's SRTP contexts (outbound, inbound) once DTLS is done.
    srtp: Option<(Context, Context)>,
}

#[derive(Default, Debug)]
struct Counts {
    browser_rx: u64,
    browser_auth_fail: u64,
    phone_rx: u64,
    stun_rx: u64,
    other_rx: u64,
}

fn stun_check(i: u16, crypto: &dyn rtc_dtls::crypto_provider::RTCCrypto) -> Res<Vec<u8>> {
    let mut m = Message::new();
    m.write_header();
    let user = TextAttribute::new(ATTR_USERNAME, format!("pbx{i}:brw{i}"));
    let nominate = RawAttribute {
        typ: ATTR_USE_CANDIDATE,
        length: 0,
        value: Vec::new(),
    };
    let integrity =
        MessageIntegrity::new_short_term_integrity_with_provider(PBX_ICE_PWD.into(), crypto);
    let tid = TransactionId::new();
    let setters: [&dyn Setter; 6] = [
        &BINDING_REQUEST,
        &tid,
        &user,
        &nominate,
        &integrity,
        &FINGERPRINT,
    ];
    for s in setters {
        s.add_to(&mut m)?;
    }
    Ok(m.raw)
}

fn context(key: &SrtpKey) -> Res<Context> {
    let (k, s) = key.key_salt.split_at(key.suite.key_len());
    let profile = match key.suite {
        CryptoSuite::AeadAes128Gcm => ProtectionProfile::AeadAes128Gcm,
        CryptoSuite::AesCm128HmacSha1_32 => ProtectionProfile::Aes128CmHmacSha1_32,
        _ => ProtectionProfile::Aes128CmHmacSha1_80,
    };
    let provider = rtc_srtp::crypto::default_provider()?;
    Ok(Context::new(k, s, profile, None, None, provider.crypto())?)
}

fn rtp(pt: u8, seq: u16, ts: u32, ssrc: u32, payload: &[u8]) -> Vec<u8> {
    let mut p = Vec::with_capacity(12 + payload.len());
    p.extend_from_slice(&[0x80, pt]);
    p.extend_from_slice(&seq.to_be_bytes());
    p.extend_from_slice(&ts.to_be_bytes());
    p.extend_from_slice(&ssrc.to_be_bytes());
    p.extend_from_slice(payload);
    p
}

/// One second of a 700 Hz tone with a slow 3 Hz swell, 20 ms frames at 48 kHz.
fn tone() -> Vec<Vec<i16>> {
    (0..50)
        .map(|f| {
            (0..960)
                .map(|n| {
                    let t = f64::from(f * 960 + n) / 48_000.0;
                    let amp = 4000.0 + 3000.0 * (2.0 * std::f64::consts::PI * 3.0 * t).sin();
                    (amp * (2.0 * std::f64::consts::PI * 700.0 * t).sin()) as i16
                })
                .collect()
        })
        .collect()
}

/// The browser's payloads (PCMU or Opus) and the phone's (PCMU), made once and cycled: the
/// generator's own encoding must not compete with the harness for the CPU.
fn payloads(mode: Mode) -> Res<(Frames, Frames)> {
    let frames = tone();
    let ulaw: Frames = frames
        .iter()
        .map(|f| f.iter().step_by(6).map(|&x| Law::Mu.encode(x)).collect())
        .collect();
    if mode != Mode::Opus {
        return Ok((ulaw.clone(), ulaw));
    }
    let mut enc = OpusEncoder::new(48_000, 1, Application::Voip)?;
    enc.bitrate_bps = 32_000;
    let mut opus = Vec::with_capacity(frames.len());
    for f in &frames {
        let mut out = [0u8; 1500];
        let n = enc.encode_i16(f, 960, &mut out)?;
        opus.push(out[..n].to_vec());
    }
    Ok((opus, ulaw))
}

/// ICE check, then the DTLS handshake as client; the browser's SRTP contexts.
fn handshake(
    i: u16,
    call: &Call,
    id: &DtlsIdentity,
    crypto: &dyn rtc_dtls::crypto_provider::RTCCrypto,
) -> Res<(Context, Context)> {
    let sock = &call.browser;
    let pbx = call.pbx_browser;
    let mut buf = [0u8; 2048];
    sock.set_read_timeout(Some(Duration::from_millis(200)))?;
    let mut answered = false;
    for _ in 0..10 {
        sock.send_to(&stun_check(i, crypto)?, pbx)?;
        match sock.recv_from(&mut buf) {
            Ok((n, _)) if n > 0 && buf[0] < 4 => {
                answered = true;
                break;
            }
            Ok(_) => {}
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(e) => return Err(e.into()),
        }
    }
    if !answered {
        return Err(format!("call {i}: no answer to the ICE check").into());
    }

    let mut dtls = Endpoint::new(sock.local_addr()?, TransportProtocol::UDP, None);
    dtls.connect(
        Instant::now(),
        pbx,
        id.handshake_config(DtlsRole::Client),
        None,
    )?;
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut done = false;
    while !done {
        let now = Instant::now();
        if now > deadline {
            return Err(format!("call {i}: DTLS handshake timed out").into());
        }
        while let Some(t) = dtls.poll_transmit() {
            sock.send_to(&t.message, pbx)?;
        }
        let wait = dtls
            .poll_timeout(&pbx)
            .map_or(Duration::from_millis(100), |at| {
                at.saturating_duration_since(now)
            })
            .clamp(Duration::from_millis(1), Duration::from_millis(100));
        sock.set_read_timeout(Some(wait))?;
        match sock.recv_from(&mut buf) {
            Ok((n, from)) if from == pbx && (20..64).contains(&buf[0]) => {
                let events = dtls.read(Instant::now(), pbx, None, BytesMut::from(&buf[..n]))?;
                done = events
                    .iter()
                    .any(|e| matches!(e, EndpointEvent::HandshakeComplete));
            }
            Ok(_) => {}
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                dtls.handle_timeout(pbx, Instant::now())?;
            }
            Err(e) => return Err(e.into()),
        }
    }
    // The client's last flight may still be queued.
    while let Some(t) = dtls.poll_transmit() {
        sock.send_to(&t.message, pbx)?;
    }
    let state = dtls
        .get_connection_state(pbx)
        .ok_or_else(|| format!("call {i}: no DTLS state"))?;
    let keys = export_keys(state, DtlsRole::Client)?;
    Ok((context(&keys.outbound)?, context(&keys.inbound)?))
}

/// User + system CPU seconds of `pid` (Linux `/proc/PID/stat`, 100 Hz ticks).
fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
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

fn spawn_harness(a: &Args, fingerprint: &str) -> Res<Child> {
    let mode = match a.mode {
        Mode::Plain => "plain",
        Mode::Dtls => "dtls",
        Mode::Opus => "opus",
    };
    let args = [
        mode.to_owned(),
        a.calls.to_string(),
        a.gen_base.to_string(),
        a.port_min.to_string(),
        a.port_max.to_string(),
        fingerprint.to_owned(),
    ];
    let mut cmd = match &a.harness_cpu {
        Some(cpu) => {
            let mut c = Command::new("taskset");
            c.args(["-c", cpu, &a.harness]);
            c
        }
        None => Command::new(&a.harness),
    };
    Ok(cmd
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()?)
}

/// Drains what arrived on every socket (a few datagrams each, non-blocking).
fn receive(calls: &mut [Call], counts: &mut Counts, buf: &mut [u8]) {
    for call in calls.iter_mut() {
        for _ in 0..4 {
            let Ok(n) = call.browser.recv(buf) else { break };
            match buf.first() {
                Some(0..=3) => counts.stun_rx += 1,
                Some(128..=191) => match &mut call.srtp {
                    Some((_, inbound)) => match inbound.decrypt_rtp(&buf[..n]) {
                        Ok(_) => counts.browser_rx += 1,
                        Err(_) => counts.browser_auth_fail += 1,
                    },
                    None => counts.browser_rx += 1,
                },
                _ => counts.other_rx += 1,
            }
        }
        for _ in 0..4 {
            if call.phone.recv(buf).is_err() {
                break;
            }
            counts.phone_rx += 1;
        }
    }
}

fn main() -> Res<()> {
    let a = parse_args()?;
    let id = DtlsIdentity::generate()?;
    let fingerprint: Vec<String> = id
        .fingerprint()
        .digest
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect();
    let provider = rtc_dtls::crypto_provider::default_provider()?;
    let (browser_payloads, phone_payloads) = payloads(a.mode)?;

    // The generator's sockets first: the PBX may send as soon as a call exists.
    let lo = Ipv4Addr::LOCALHOST;
    let mut sockets = Vec::with_capacity(usize::from(a.calls));
    for i in 0..a.calls {
        let base = a.gen_base + 4 * i;
        sockets.push((
            UdpSocket::bind((lo, base))?,
            UdpSocket::bind((lo, base + 2))?,
        ));
    }

    let mut child = spawn_harness(&a, &fingerprint.join(":"))?;
    let pid = child.id();
    let mut stdin = child.stdin.take().ok_or("harness stdin")?;
    let mut lines = BufReader::new(child.stdout.take().ok_or("harness stdout")?).lines();
    let mut next = || -> Res<String> { Ok(lines.next().ok_or("harness exited")??) };
    while next()? != "STARTED" {}
    let rss_before = rss_kib(pid);
    writeln!(stdin, "GO")?;
    let mut calls = Vec::with_capacity(sockets.len());
    let mut sockets = sockets.into_iter();
    loop {
        let line = next()?;
        if line == "READY" {
            break;
        }
        let f: Vec<&str> = line.split_whitespace().collect();
        let (Some(&"PORTS"), Some(caller), Some(callee)) = (f.first(), f.get(2), f.get(3)) else {
            continue;
        };
        let (browser, phone) = sockets.next().ok_or("more PORTS than calls")?;
        calls.push(Call {
            browser,
            phone,
            pbx_browser: SocketAddr::from((lo, caller.parse::<u16>()?)),
            pbx_phone: SocketAddr::from((lo, callee.parse::<u16>()?)),
            srtp: None,
        });
    }

    let setup_start = Instant::now();
    if a.mode != Mode::Plain {
        for (i, call) in calls.iter_mut().enumerate() {
            let i = u16::try_from(i)?;
            call.srtp = Some(handshake(i, call, &id, provider.crypto())?);
        }
    }
    let setup = setup_start.elapsed();
    for call in &calls {
        call.browser.set_nonblocking(true)?;
        call.phone.set_nonblocking(true)?;
    }

    let browser_pt = if a.mode == Mode::Opus { OPUS_PT } else { 0 };
    let browser_ts_step = if a.mode == Mode::Opus { 960 } else { 160 };
    let warmup_ticks = a.warmup * 50;
    let total_ticks = warmup_ticks + a.seconds * 50;
    let mut counts = Counts::default();
    let mut buf = vec![0u8; 2048];
    let mut cpu_start = 0.0;
    let mut sent = 0u64;
    let mut late_ticks = 0u64;
    let mut last_second = (0u64, 0u64);
    let start = Instant::now();
    for tick in 0..total_ticks {
        if tick == warmup_ticks {
            cpu_start = cpu_seconds(pid);
            counts = Counts::default();
            last_second = (0, 0);
            sent = 0;
        }
        let frame = (tick % 50) as usize;
        let seq = tick as u16;
        for (i, call) in calls.iter_mut().enumerate() {
            let ssrc = 0x1000_0000 | i as u32;
            let pkt = rtp(
                browser_pt,
                seq,
                (tick * browser_ts_step) as u32,
                ssrc,
                &browser_payloads[frame],
            );
            let pkt = match &mut call.srtp {
                Some((outbound, _)) => outbound.encrypt_rtp(&pkt)?.to_vec(),
                None => pkt,
            };
            let _ = call.browser.send_to(&pkt, call.pbx_browser);
            let pkt = rtp(
                0,
                seq,
                (tick * 160) as u32,
                ssrc | 0x0800_0000,
                &phone_payloads[frame],
            );
            let _ = call.phone.send_to(&pkt, call.pbx_phone);
            sent += 2;
            if call.srtp.is_some() && tick % CONSENT_TICKS == i as u64 % CONSENT_TICKS {
                let i = u16::try_from(i)?;
                let _ = call
                    .browser
                    .send_to(&stun_check(i, provider.crypto())?, call.pbx_browser);
            }
        }
        receive(&mut calls, &mut counts, &mut buf);
        // Per-second deliveries on stderr: a stall shows as a hole, overload as a steady deficit.
        if tick >= warmup_ticks && (tick + 1 - warmup_ticks) % 50 == 0 {
            eprintln!(
                "second {}: browser_rx {} phone_rx {}",
                (tick + 1 - warmup_ticks) / 50,
                counts.browser_rx - last_second.0,
                counts.phone_rx - last_second.1
            );
            last_second = (counts.browser_rx, counts.phone_rx);
        }
        let due = start + TICK * (tick as u32 + 1);
        let now = Instant::now();
        if now < due {
            std::thread::sleep(due - now);
        } else {
            late_ticks += 1;
        }
    }
    let cpu = cpu_seconds(pid) - cpu_start;
    let rss_after = rss_kib(pid);
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    drop(stdin);
    let _ = child.wait();

    let per_call = cpu / a.seconds as f64 / f64::from(a.calls) * 100.0;
    let expected = a.seconds * 50 * u64::from(a.calls);
    println!(
        "RESULT mode={:?} calls={} seconds={} cpu_s={cpu:.2} cpu_pct_per_call={per_call:.4} \
         setup_s={:.2} sent={sent} expected_per_side={expected} browser_rx={} \
         browser_auth_fail={} phone_rx={} stun_rx={} other_rx={} late_ticks={late_ticks} \
         rss_kib_per_call={:.1} load=\"{}\"",
        a.mode,
        a.calls,
        a.seconds,
        setup.as_secs_f64(),
        counts.browser_rx,
        counts.browser_auth_fail,
        counts.phone_rx,
        counts.stun_rx,
        counts.other_rx,
        (rss_after.saturating_sub(rss_before)) as f64 / f64::from(a.calls),
        load.split_whitespace()
            .take(3)
            .collect::<Vec<_>>()
            .join(" "),
    );
    Ok(())
}

/// Resident set size of `pid` in KiB (`/proc/PID/status` VmRSS).
fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}
