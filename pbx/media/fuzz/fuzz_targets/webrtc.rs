//! Drive a media session whose caller leg is a browser's (ICE-lite, DTLS-SRTP, RFC 7983
//! demultiplexing on one socket) with arbitrary datagrams from the browser's address and from
//! strangers, interleaved with time passing (consent freshness, DTLS retransmissions). Nothing
//! may panic and nothing sent may exceed the buffer.
//!
//! Input: a config byte (with its top bit, the plan comes only after the first 1 to 8
//! records), then records `[selector, len, bytes...]`. The selector picks the
//! source, whether the bytes follow a valid ICE check (so the fuzzer reaches the DTLS and SRTP
//! code behind ICE), and how much time passes first.
#![no_main]

use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use libfuzzer_sys::fuzz_target;
use pbx_media::relay::Component;
use pbx_media::session::MediaSession;
use pbx_media::webrtc::DtlsIdentity;
use pbx_media::{DtlsRole, IceCredentials, LegPlan, MediaPlan, Side, WebRtcPlan};
use rtc_stun::attributes::{ATTR_USE_CANDIDATE, ATTR_USERNAME, RawAttribute};
use rtc_stun::fingerprint::FINGERPRINT;
use rtc_stun::integrity::MessageIntegrity;
use rtc_stun::message::{BINDING_REQUEST, Message, Setter, TransactionId};
use rtc_stun::textattrs::TextAttribute;

const PBX_PWD: &str = "pbx-ice-password-0123456";

fn browser() -> SocketAddr {
    SocketAddr::from(([198, 51, 100, 20], 51000))
}

fn stranger(i: u8) -> SocketAddr {
    SocketAddr::from(([203, 0, 113, 1 + (i & 7)], 40000))
}

/// Certificates are slow to make: one for the PBX, one whose fingerprint the SDP names.
fn identities() -> &'static (Arc<DtlsIdentity>, DtlsIdentity) {
    static IDS: OnceLock<(Arc<DtlsIdentity>, DtlsIdentity)> = OnceLock::new();
    IDS.get_or_init(|| {
        let pbx = DtlsIdentity::generate().expect("a certificate");
        let browser = DtlsIdentity::generate().expect("a certificate");
        (Arc::new(pbx), browser)
    })
}

/// A valid connectivity check from the browser (RFC 8445 §7.2.2: USERNAME "ours:theirs",
/// short-term MESSAGE-INTEGRITY with our password, FINGERPRINT).
fn ice_check(tid: u8) -> Option<Vec<u8>> {
    let provider = rtc_dtls::crypto_provider::default_provider().ok()?;
    let mut m = Message::new();
    m.write_header();
    let user = TextAttribute::new(ATTR_USERNAME, "pbx1:brw1".to_owned());
    let nominate = RawAttribute {
        typ: ATTR_USE_CANDIDATE,
        length: 0,
        value: Vec::new(),
    };
    let integrity =
        MessageIntegrity::new_short_term_integrity_with_provider(PBX_PWD.into(), provider.crypto());
    let id = TransactionId([tid; 12]);
    let setters: [&dyn Setter; 6] = [
        &BINDING_REQUEST,
        &id,
        &user,
        &nominate,
        &integrity,
        &FINGERPRINT,
    ];
    for s in setters {
        s.add_to(&mut m).ok()?;
    }
    Some(m.raw)
}

fn plan(config: u8) -> MediaPlan {
    let (_, browser_id) = identities();
    MediaPlan {
        caller: LegPlan {
            rtcp_mux: true,
            webrtc: Some(Box::new(WebRtcPlan {
                role: if config & 1 == 0 {
                    DtlsRole::Server
                } else {
                    DtlsRole::Client
                },
                remote_fingerprints: vec![browser_id.fingerprint().clone()],
                local_ice: IceCredentials {
                    ufrag: "pbx1".into(),
                    pwd: PBX_PWD.into(),
                },
                remote_ice: IceCredentials {
                    ufrag: "brw1".into(),
                    pwd: "browser-ice-password-012".into(),
                },
            })),
            ..LegPlan::default()
        },
        callee: LegPlan {
            remote_rtp: (config & 2 != 0).then(|| SocketAddr::from(([192, 0, 2, 9], 4000))),
            ..LegPlan::default()
        },
        codec: "PCMU/8000".into(),
    }
}

fn drain(s: &mut MediaSession, now: Instant, tx: &mut [u8]) {
    for _ in 0..64 {
        match s.poll_transmit(now, tx) {
            Some(t) => assert!(t.len <= tx.len(), "a transmit longer than the buffer"),
            None => break,
        }
    }
    while s.poll_event().is_some() {}
}

fuzz_target!(|data: &[u8]| {
    let Some((&config, mut rest)) = data.split_first() else {
        return;
    };
    #[allow(clippy::disallowed_methods)]
    let mut now = Instant::now();
    let (pbx, _) = identities();
    let mut s = MediaSession::new(now).with_webrtc(pbx.clone());
    // With the config's top bit, the plan comes only after the first few datagrams: what
    // arrives before it is kept (media) or dropped (ICE, DTLS), then handled when it comes.
    let mut plan_after = if config & 0x80 != 0 {
        usize::from(config >> 4 & 7) + 2
    } else {
        0
    };
    if plan_after == 0 && s.apply(now, &plan(config)).is_err() {
        return;
    }
    let mut buf = vec![0u8; 2048];
    let mut tx = vec![0u8; 2048];
    while let [selector, len, tail @ ..] = rest {
        if plan_after > 0 {
            plan_after -= 1;
            if plan_after == 0 {
                if s.apply(now, &plan(config)).is_err() {
                    return;
                }
                drain(&mut s, now, &mut tx);
            }
        }
        let len = usize::from(*len).min(tail.len());
        let (bytes, next) = tail.split_at(len);
        rest = next;
        now += Duration::from_millis(u64::from(selector >> 5) * 700);
        s.handle_timeout(now);
        let from = if selector & 1 == 0 {
            browser()
        } else {
            stranger(*selector)
        };
        if selector & 2 != 0 {
            if let Some(check) = ice_check(*selector) {
                buf[..check.len()].copy_from_slice(&check);
                let _ = s.handle_datagram(
                    now,
                    Side::Caller,
                    Component::Rtp,
                    from,
                    &mut buf,
                    check.len(),
                );
                drain(&mut s, now, &mut tx);
            }
        }
        let component = if selector & 4 == 0 {
            Component::Rtp
        } else {
            Component::Rtcp
        };
        let side = if selector & 8 == 0 {
            Side::Caller
        } else {
            Side::Callee
        };
        buf[..bytes.len()].copy_from_slice(bytes);
        let _ = s.handle_datagram(now, side, component, from, &mut buf, bytes.len());
        drain(&mut s, now, &mut tx);
        if let Some(at) = s.poll_timeout() {
            if selector & 16 != 0 && at > now {
                now = at;
                s.handle_timeout(now);
                drain(&mut s, now, &mut tx);
            }
        }
    }
});
