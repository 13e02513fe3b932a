//! A media session with a WebRTC leg, driven in virtual time by a browser built from the same
//! `rtc-*` crates (its own certificate, DTLS client, SRTP): ICE, DTLS and SRTP on the leg's one
//! RTP socket, then the echo endpoint sending the browser's audio back, re-encrypted.

mod relay_support;

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::BytesMut;
use pbx_media::relay::{Component, Verdict};
use pbx_media::session::{Command, Event, MediaSession};
use pbx_media::webrtc::{DtlsIdentity, export_keys};
use pbx_media::{DtlsRole, IceCredentials, LegPlan, MediaPlan, Side, SrtpKey, WebRtcPlan};
use relay_support::base;
use rtc_dtls::endpoint::Endpoint;
use rtc_shared::TransportProtocol;
use rtc_srtp::context::Context;
use rtc_srtp::protection_profile::ProtectionProfile;
use rtc_stun::attributes::{ATTR_USE_CANDIDATE, ATTR_USERNAME, RawAttribute};
use rtc_stun::fingerprint::FINGERPRINT;
use rtc_stun::integrity::MessageIntegrity;
use rtc_stun::message::{BINDING_REQUEST, Message, Setter, TransactionId};
use rtc_stun::textattrs::TextAttribute;

const PBX: &str = "192.0.2.1:40000";
const BROWSER: &str = "198.51.100.20:51000";
const PBX_PWD: &str = "pbx-ice-password-0123456";

fn addr(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

fn stun_check(crypto: &dyn rtc_dtls::crypto_provider::RTCCrypto) -> Vec<u8> {
    let mut m = Message::new();
    m.write_header();
    let user = TextAttribute::new(ATTR_USERNAME, "pbx1:brw1".to_owned());
    let nominate = RawAttribute {
        typ: ATTR_USE_CANDIDATE,
        length: 0,
        value: Vec::new(),
    };
    let integrity =
        MessageIntegrity::new_short_term_integrity_with_provider(PBX_PWD.into(), crypto);
    let tid = TransactionId([3; 12]);
    let setters: [&dyn Setter; 6] = [
        &BINDING_REQUEST,
        &tid,
        &user,
        &nominate,
        &integrity,
        &FINGERPRINT,
    ];
    for s in setters {
        s.add_to(&mut m).unwrap();
    }
    m.raw
}

fn context(key: &SrtpKey) -> Context {
    let (k, s) = key.key_salt.split_at(key.suite.key_len());
    let profile = match key.suite {
        pbx_media::CryptoSuite::AeadAes128Gcm => ProtectionProfile::AeadAes128Gcm,
        _ => ProtectionProfile::Aes128CmHmacSha1_80,
    };
    let provider = rtc_srtp::crypto::default_provider().unwrap();
    Context::new(k, s, profile, None, None, provider.crypto()).unwrap()
}

fn rtp(seq: u16) -> Vec<u8> {
    let mut p = vec![0x80, 0, 0, 0, 0, 0, 0, 0, 0xaa, 0xbb, 0xcc, 0xdd];
    p[2..4].copy_from_slice(&seq.to_be_bytes());
    p[4..8].copy_from_slice(&(u32::from(seq) * 160).to_be_bytes());
    p.extend((0..160).map(|i| (i as u8) ^ (seq as u8)));
    p
}

/// Hands a datagram from the browser to the session; returns what the session sends back to
/// the browser (forwarded or its own), in order.
/// The caller leg of a browser with `browser_id`'s certificate: ICE-lite, the PBX the DTLS
/// server, rtcp-mux.
fn browser_leg(browser_id: &DtlsIdentity) -> LegPlan {
    LegPlan {
        rtcp_mux: true,
        webrtc: Some(Box::new(WebRtcPlan {
            role: DtlsRole::Server,
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
    }
}

fn to_session(
    s: &mut MediaSession,
    now: std::time::Instant,
    pkt: &[u8],
) -> (Verdict, Vec<Vec<u8>>) {
    let mut buf = vec![0u8; 2048];
    buf[..pkt.len()].copy_from_slice(pkt);
    let v = s.handle_datagram(
        now,
        Side::Caller,
        Component::Rtp,
        addr(BROWSER),
        &mut buf,
        pkt.len(),
    );
    let mut out = Vec::new();
    if let Verdict::Forward { to, len, side, .. } = v {
        assert_eq!((to, side), (addr(BROWSER), Side::Caller));
        out.push(buf[..len].to_vec());
    }
    let mut tx = vec![0u8; 2048];
    while let Some(t) = s.poll_transmit(now, &mut tx) {
        assert_eq!(
            (t.to, t.side, t.component),
            (addr(BROWSER), Side::Caller, Component::Rtp)
        );
        out.push(tx[..t.len].to_vec());
    }
    (v, out)
}

#[test]
fn a_browser_hears_its_own_audio_back_through_ice_dtls_and_srtp() {
    let t0 = base();
    let pbx = Arc::new(DtlsIdentity::generate().unwrap());
    let browser_id = DtlsIdentity::generate().unwrap();
    let mut session = MediaSession::new(t0).with_webrtc(pbx.clone());
    session
        .handle_command(
            t0,
            Command::Echo {
                side: Side::Caller,
                spec: pbx_media::endpoint::echo::EchoSpec { ssrc: 0x0102_0304 },
            },
        )
        .unwrap();
    let plan = MediaPlan {
        caller: browser_leg(&browser_id),
        callee: LegPlan::default(),
        codec: "PCMU/8000".into(),
    };
    session.apply(t0, &plan).unwrap();

    // Plain RTP before DTLS: not media on a WebRTC leg.
    let (v, out) = to_session(&mut session, t0, &rtp(1));
    assert!(matches!(v, Verdict::Drop(_)) && out.is_empty(), "{v:?}");

    // ICE: the check is answered from the leg's RTP socket.
    let provider = rtc_dtls::crypto_provider::default_provider().unwrap();
    let (v, out) = to_session(&mut session, t0, &stun_check(provider.crypto()));
    assert_eq!((v, out.len()), (Verdict::Consumed, 1));

    // DTLS: the browser is the client.
    let mut browser = Endpoint::new(addr(BROWSER), TransportProtocol::UDP, None);
    browser
        .connect(
            t0,
            addr(PBX),
            browser_id.handshake_config(DtlsRole::Client),
            None,
        )
        .unwrap();
    for _ in 0..10 {
        let mut moved = false;
        while let Some(t) = browser.poll_transmit() {
            moved = true;
            let (_, replies) = to_session(&mut session, t0, &t.message);
            for r in replies {
                let _ = browser.read(t0, addr(PBX), None, BytesMut::from(&r[..]));
            }
        }
        if !moved {
            break;
        }
    }
    let keys = export_keys(
        browser.get_connection_state(addr(PBX)).unwrap(),
        DtlsRole::Client,
    )
    .expect("the browser's keys");
    let mut encrypt = context(&keys.outbound);
    let mut decrypt = context(&keys.inbound);

    // SRTP from the browser comes back, re-encrypted with the PBX's keys, under its SSRC.
    for seq in 10..15u16 {
        let sent = rtp(seq);
        let srtp = encrypt.encrypt_rtp(&sent).unwrap();
        let (v, out) = to_session(&mut session, t0, &srtp);
        assert!(matches!(v, Verdict::Forward { .. }), "{v:?}");
        let back = decrypt
            .decrypt_rtp(&out[0])
            .expect("authentic SRTP from the PBX");
        assert_eq!(&back[8..12], &[1, 2, 3, 4], "the PBX's SSRC");
        assert_eq!(&back[12..], &sent[12..], "the browser's own audio");
        assert_eq!(&back[2..4], &sent[2..4]);
    }
    assert!(
        std::iter::from_fn(|| session.poll_event())
            .all(|e| !matches!(e, Event::WebRtcFailed { .. }))
    );
}

#[test]
fn a_browser_that_stops_checking_loses_consent_after_30_s() {
    let t0 = base();
    let pbx = Arc::new(DtlsIdentity::generate().unwrap());
    let browser_id = DtlsIdentity::generate().unwrap();
    let mut session = MediaSession::new(t0).with_webrtc(pbx);
    let plan = MediaPlan {
        caller: browser_leg(&browser_id),
        ..MediaPlan::default()
    };
    session.apply(t0, &plan).unwrap();
    let provider = rtc_dtls::crypto_provider::default_provider().unwrap();
    let _ = to_session(&mut session, t0, &stun_check(provider.crypto()));
    let due = session.poll_timeout().expect("consent deadline");
    assert_eq!(due, t0 + pbx_media::webrtc::CONSENT_TIMEOUT);
    session.handle_timeout(due);
    let events: Vec<Event> = std::iter::from_fn(|| session.poll_event()).collect();
    assert_eq!(events, vec![Event::ConsentLost { side: Side::Caller }]);
}

#[test]
fn ice_checks_before_the_plan_are_dropped_not_kept_for_later() {
    // Media that comes before the plan is kept and relayed when it comes (session_early.rs);
    // ICE checks and DTLS records are not: the browser retransmits them, and a handshake
    // record replayed late can meet its own retransmission. A browser that rang for a few
    // seconds then failed its DTLS handshake and heard nothing.
    let t0 = base();
    let pbx = Arc::new(DtlsIdentity::generate().unwrap());
    let mut session = MediaSession::new(t0).with_webrtc(pbx);
    let provider = rtc_dtls::crypto_provider::default_provider().unwrap();
    let (v, out) = to_session(&mut session, t0, &stun_check(provider.crypto()));
    assert_eq!(
        v,
        Verdict::Drop(pbx_media::relay::DropReason::NoPlan),
        "a check before the plan"
    );
    assert!(out.is_empty());
    // Nothing of it comes out once the plan is there.
    let browser_id = DtlsIdentity::generate().unwrap();
    let plan = MediaPlan {
        caller: browser_leg(&browser_id),
        callee: LegPlan::default(),
        codec: "PCMU/8000".into(),
    };
    let later = t0 + std::time::Duration::from_millis(50);
    session.apply(later, &plan).unwrap();
    let mut tx = vec![0u8; 2048];
    assert!(
        session.poll_transmit(later, &mut tx).is_none(),
        "an old check answered"
    );
    // The browser's next check is answered as usual.
    let (v, out) = to_session(&mut session, later, &stun_check(provider.crypto()));
    assert_eq!((v, out.len()), (Verdict::Consumed, 1));
}
