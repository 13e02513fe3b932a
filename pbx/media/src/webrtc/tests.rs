//! The WebRTC leg against a browser-side DTLS stack (`rtc-dtls` in the other role, with a
//! certificate of its own), in virtual time: ICE first, then DTLS, then the keys.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use rtc_dtls::endpoint::Endpoint;
use rtc_shared::TransportProtocol;

use super::dtls::export_keys;
use super::ice::binding_request;
use super::*;
use crate::{DtlsRole, Fingerprint, IceCredentials};

const PBX: &str = "192.0.2.1:40000";
const BROWSER: &str = "198.51.100.20:51000";

/// The one real instant the tests read; everything after is virtual.
pub(super) fn base() -> Instant {
    #[allow(clippy::disallowed_methods)]
    Instant::now()
}

fn addr(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

fn plan(role: DtlsRole, fingerprint: &Fingerprint) -> WebRtcPlan {
    WebRtcPlan {
        role,
        remote_fingerprints: vec![fingerprint.clone()],
        local_ice: IceCredentials {
            ufrag: "pbx1".into(),
            pwd: "pbx-ice-password-0123456".into(),
        },
        remote_ice: IceCredentials {
            ufrag: "brw1".into(),
            pwd: "browser-ice-password-012".into(),
        },
    }
}

/// The browser: its DTLS endpoint in the role opposite the PBX's.
struct Browser {
    id: DtlsIdentity,
    dtls: Endpoint,
}

impl Browser {
    fn new() -> Browser {
        let id = DtlsIdentity::generate().unwrap();
        let server = Some(id.server.clone());
        Browser {
            dtls: Endpoint::new(addr(BROWSER), TransportProtocol::UDP, server),
            id,
        }
    }

    fn check(&self, leg: &mut WebRtcLeg, now: Instant, nominate: bool) -> Vec<Vec<u8>> {
        let crypto = self.id.provider().clone();
        let req = binding_request(
            "pbx1:brw1",
            "pbx-ice-password-0123456",
            nominate,
            crypto.crypto(),
        );
        leg.handle_datagram(now, addr(BROWSER), &req);
        std::iter::from_fn(|| leg.poll_transmit())
            .map(|(to, bytes)| {
                assert_eq!(to, addr(BROWSER));
                bytes
            })
            .collect()
    }
}

/// Steps both sides until neither has anything to send; returns the leg's events.
fn exchange(browser: &mut Browser, leg: &mut WebRtcLeg, now: Instant) -> Vec<LegEvent> {
    let mut events = Vec::new();
    for _ in 0..20 {
        let mut moved = false;
        while let Some(t) = browser.dtls.poll_transmit() {
            moved = true;
            leg.handle_datagram(now, addr(BROWSER), &t.message);
        }
        while let Some((to, bytes)) = leg.poll_transmit() {
            assert_eq!(to, addr(BROWSER));
            moved = true;
            let _ = browser
                .dtls
                .read(now, addr(PBX), None, BytesMut::from(&bytes[..]));
        }
        events.extend(std::iter::from_fn(|| leg.poll_event()));
        if !moved {
            break;
        }
    }
    events
}

fn browser_keys(browser: &Browser, role: DtlsRole) -> SrtpPair {
    let state = browser
        .dtls
        .get_connection_state(addr(PBX))
        .expect("association");
    export_keys(state, role).expect("keys")
}

#[test]
fn demultiplexes_by_the_first_byte_per_rfc_7983() {
    assert_eq!(demux(&[0, 1]), Demux::Stun);
    assert_eq!(demux(&[22, 254, 253]), Demux::Dtls);
    assert_eq!(demux(&[0x80, 0]), Demux::Rtp);
    assert_eq!(demux(&[0x80, 200]), Demux::Rtp, "RTCP shares RTP's range");
    assert_eq!(demux(&[16]), Demux::Other);
    assert_eq!(demux(&[64]), Demux::Other);
    assert_eq!(demux(&[]), Demux::Other);
}

#[test]
fn the_pbx_answering_passive_is_the_dtls_server_and_exports_the_browsers_keys() {
    let t0 = base();
    let pbx = Arc::new(DtlsIdentity::generate().unwrap());
    let mut browser = Browser::new();
    let mut leg = WebRtcLeg::new(t0, &plan(DtlsRole::Server, browser.id.fingerprint()), pbx);

    // DTLS before any ICE check: not from a proven address, no association.
    browser
        .dtls
        .connect(t0, addr(PBX), browser.id.client.clone(), None)
        .unwrap();
    let hello = browser.dtls.poll_transmit().unwrap();
    leg.handle_datagram(t0, addr(BROWSER), &hello.message);
    assert!(
        leg.poll_transmit().is_none(),
        "nothing said to an unchecked address"
    );

    let responses = browser.check(&mut leg, t0, true);
    assert_eq!(responses.len(), 1, "the Binding success response");
    assert!(matches!(leg.poll_event(), Some(LegEvent::Selected(a)) if a == addr(BROWSER)));
    assert_eq!(leg.selected(), Some(addr(BROWSER)));

    // The browser retransmits its ClientHello (RFC 6347 §4.2.4) now that ICE is up.
    leg.handle_datagram(t0, addr(BROWSER), &hello.message);
    let t1 = t0 + Duration::from_millis(50);
    let events = exchange(&mut browser, &mut leg, t1);
    let keys = events
        .into_iter()
        .find_map(|e| match e {
            LegEvent::Keys(k) => Some(k),
            _ => None,
        })
        .expect("keys after the handshake");
    let theirs = browser_keys(&browser, DtlsRole::Client);
    assert_eq!(
        keys.inbound, theirs.outbound,
        "the PBX decrypts what the browser sends"
    );
    assert_eq!(keys.outbound, theirs.inbound);
    assert_ne!(keys.inbound, keys.outbound);
}

#[test]
fn the_pbx_opens_the_association_when_the_browser_answered_passive() {
    let t0 = base();
    let pbx = Arc::new(DtlsIdentity::generate().unwrap());
    let mut browser = Browser::new();
    let mut leg = WebRtcLeg::new(t0, &plan(DtlsRole::Client, browser.id.fingerprint()), pbx);
    let sent = browser.check(&mut leg, t0, true);
    assert_eq!(sent.len(), 2, "the Binding response, then the ClientHello");
    assert_eq!(demux(&sent[1]), Demux::Dtls);
    let _ = browser
        .dtls
        .read(t0, addr(PBX), None, BytesMut::from(&sent[1][..]));
    let events = exchange(&mut browser, &mut leg, t0);
    let keys = events
        .into_iter()
        .find_map(|e| match e {
            LegEvent::Keys(k) => Some(k),
            _ => None,
        })
        .expect("keys");
    assert_eq!(
        keys.inbound,
        browser_keys(&browser, DtlsRole::Server).outbound
    );
}

#[test]
fn a_certificate_that_matches_no_fingerprint_is_refused_without_keys() {
    let t0 = base();
    let pbx = Arc::new(DtlsIdentity::generate().unwrap());
    let mut browser = Browser::new();
    let stranger = DtlsIdentity::generate().unwrap();
    let mut leg = WebRtcLeg::new(t0, &plan(DtlsRole::Server, stranger.fingerprint()), pbx);
    let _ = browser.check(&mut leg, t0, true);
    let _ = leg.poll_event();
    browser
        .dtls
        .connect(t0, addr(PBX), browser.id.client.clone(), None)
        .unwrap();
    let events = exchange(&mut browser, &mut leg, t0);
    assert!(
        events
            .iter()
            .any(|e| matches!(e, LegEvent::Failed(DtlsError::FingerprintMismatch))),
        "{events:?}"
    );
    assert!(!events.iter().any(|e| matches!(e, LegEvent::Keys(_))));
}

#[test]
fn fingerprints_match_by_their_own_hash_function() {
    let der = b"not really a certificate";
    use sha2::Digest;
    let sha256 = Fingerprint {
        algorithm: "sha-256".into(),
        digest: sha2::Sha256::digest(der).to_vec(),
    };
    let sha512 = Fingerprint {
        algorithm: "sha-512".into(),
        digest: sha2::Sha512::digest(der).to_vec(),
    };
    let wrong_alg = Fingerprint {
        algorithm: "sha-1".into(),
        digest: sha256.digest.clone(),
    };
    assert!(dtls::certificate_matches(
        der,
        &[wrong_alg.clone(), sha256.clone()]
    ));
    assert!(dtls::certificate_matches(der, &[sha512]));
    assert!(!dtls::certificate_matches(der, &[wrong_alg]));
    assert!(!dtls::certificate_matches(b"another", &[sha256]));
}

#[test]
fn consent_lost_after_30_s_without_checks_is_reported_once() {
    let t0 = base();
    let pbx = Arc::new(DtlsIdentity::generate().unwrap());
    let browser = Browser::new();
    let mut leg = WebRtcLeg::new(t0, &plan(DtlsRole::Server, browser.id.fingerprint()), pbx);
    let _ = browser.check(&mut leg, t0 + Duration::from_secs(5), true);
    while leg.poll_event().is_some() {}
    let due = leg.poll_timeout().unwrap();
    assert_eq!(due, t0 + Duration::from_secs(5) + CONSENT_TIMEOUT);
    leg.handle_timeout(due - Duration::from_millis(1));
    assert!(leg.poll_event().is_none());
    leg.handle_timeout(due);
    assert!(matches!(leg.poll_event(), Some(LegEvent::ConsentLost)));
    assert!(!leg.has_consent());
    leg.handle_timeout(due + CONSENT_TIMEOUT);
    assert!(leg.poll_event().is_none());
}

#[test]
fn the_fingerprint_attribute_round_trips() {
    let id = DtlsIdentity::generate().unwrap();
    let text = id.fingerprint().attribute();
    assert!(
        text.starts_with("sha-256 ") && text.len() == 8 + 32 * 3 - 1,
        "{text}"
    );
    assert_eq!(Fingerprint::parse(&text).as_ref(), Some(id.fingerprint()));
    assert_eq!(Fingerprint::parse("sha-256 zz:00"), None);
    assert_eq!(Fingerprint::parse("sha-256"), None);
}
