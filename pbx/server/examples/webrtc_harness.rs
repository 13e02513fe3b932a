//! Browser ↔ phone harness for `pbx-media`'s `webrtc_load` generator: the PBX's real
//! `MediaService` (relay workers, sockets, ICE-lite, DTLS-SRTP, transcoding) in a process of
//! its own, so the generator can read this process's CPU time apart from its own.
//!
//! `webrtc_harness plain|dtls|opus CALLS GEN_BASE PORT_MIN PORT_MAX BROWSER_FINGERPRINT`
//!
//! Call i's caller leg is the browser at 127.0.0.1:GEN_BASE+4i, its callee leg the phone at
//! GEN_BASE+4i+2 (RTCP +3), plain RTP with PCMU. The browser leg is, by mode:
//! - `plain`: plain RTP with PCMU, as `relay_harness` (the baseline in the same run),
//! - `dtls`: a WebRTC leg (ICE-lite, DTLS server, rtcp-mux, the PBX's own outgoing stream),
//!   PCMU on both sides: the bridge re-encrypts, no transcoding,
//! - `opus`: the same with Opus (PT 111) on the browser side, transcoded to and from PCMU.
//!
//! ICE credentials: the PBX's ufrag is `pbxI`, its password [`ICE_PWD`]; the browser's ufrag is
//! `brwI`. BROWSER_FINGERPRINT is the generator's certificate's SHA-256 as colon-separated
//! hex (RFC 8122 §5), checked by the PBX as a browser's SDP fingerprint is.
//!
//! Protocol on stdin/stdout, as `relay_harness`: `STARTED`, wait for `GO`, `PORTS i caller
//! callee` per call, `READY`, then run until stdin closes.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use pbx_media::g711::Law;
use pbx_media::voice::Voice;
use pbx_media::{
    DtlsRole, Fingerprint, IceCredentials, LegPlan, MediaPlan, OutStreamPlan, Transcoding,
    WebRtcPlan,
};

#[path = "common/harness.rs"]
mod harness;

/// The PBX's ICE password on every call (RFC 8445 §5.3: at least 22 characters).
const ICE_PWD: &str = "pbx-ice-password-0123456";
const OPUS_PT: u8 = 111;

#[derive(Clone, Copy, PartialEq)]
enum Mode {
    Plain,
    Dtls,
    Opus,
}

fn phone(port: u16) -> LegPlan {
    let lo = IpAddr::V4(Ipv4Addr::LOCALHOST);
    LegPlan {
        remote_rtp: Some(SocketAddr::new(lo, port)),
        remote_rtcp: Some(SocketAddr::new(lo, port + 1)),
        ..LegPlan::default()
    }
}

fn browser(mode: Mode, i: u16, port: u16, fingerprint: &Fingerprint) -> LegPlan {
    if mode == Mode::Plain {
        return phone(port);
    }
    let lo = IpAddr::V4(Ipv4Addr::LOCALHOST);
    LegPlan {
        remote_rtp: Some(SocketAddr::new(lo, port)),
        remote_rtcp: Some(SocketAddr::new(lo, port)),
        rtcp_mux: true,
        webrtc: Some(Box::new(WebRtcPlan {
            role: DtlsRole::Server,
            remote_fingerprints: vec![fingerprint.clone()],
            local_ice: IceCredentials {
                ufrag: format!("pbx{i}"),
                pwd: ICE_PWD.into(),
            },
            remote_ice: IceCredentials {
                ufrag: format!("brw{i}"),
                pwd: "browser-ice-password-012".into(),
            },
        })),
        out_stream: Some(Box::new(OutStreamPlan {
            ssrc: 0x5000_0000 | u32::from(i),
            clock_rates: vec![(0, 8000), (OPUS_PT, 48_000)],
        })),
        transcode: (mode == Mode::Opus).then_some(Transcoding {
            opus_pt: OPUS_PT,
            voice: Voice::G711(Law::Mu),
            voice_pt: 0,
            events: None,
        }),
        ..LegPlan::default()
    }
}

fn parse_fingerprint(hex: &str) -> Result<Fingerprint, String> {
    let digest = hex
        .split(':')
        .map(|b| u8::from_str_radix(b, 16))
        .collect::<Result<Vec<u8>, _>>()
        .map_err(|e| format!("fingerprint {hex}: {e}"))?;
    Ok(Fingerprint {
        algorithm: "sha-256".into(),
        digest,
    })
}

#[tokio::main]
async fn main() -> Result<(), harness::Error> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [mode, calls, gen_base, port_min, port_max, fingerprint] = &args[..] else {
        return Err(
            "usage: webrtc_harness plain|dtls|opus CALLS GEN_BASE PORT_MIN PORT_MAX \
                    BROWSER_FINGERPRINT"
                .into(),
        );
    };
    let mode = match mode.as_str() {
        "plain" => Mode::Plain,
        "dtls" => Mode::Dtls,
        "opus" => Mode::Opus,
        other => return Err(format!("mode {other}: plain, dtls or opus").into()),
    };
    let (calls, gen_base): (u16, u16) = (calls.parse()?, gen_base.parse()?);
    let (port_min, port_max): (u16, u16) = (port_min.parse()?, port_max.parse()?);
    let fingerprint = parse_fingerprint(fingerprint)?;
    harness::relay_calls(
        "webrtc harness",
        calls,
        gen_base,
        port_min,
        port_max,
        |i, base| MediaPlan {
            caller: browser(mode, i, base, &fingerprint),
            callee: phone(base + 2),
            codec: "PCMU/8000".into(),
        },
    )
    .await
}
