//! SDP for WebRTC legs, with real browsers' offers (tests/fixtures/webrtc, byte-exact):
//! parsing their ICE, DTLS and BUNDLE attributes, the PBX's ICE-lite answers, bridging a
//! browser to a plain RTP phone without transcoding, and offering WebRTC to a browser.

mod sdp_support;

use pbx_media::Side::{Callee, Caller};
use pbx_media::sdp::{NegotiationError, Negotiator};
use pbx_media::{DtlsRole, Fingerprint, Setup};
use sdp_support::*;

fn webrtc_fixture(name: &str) -> Vec<u8> {
    let path = format!(
        "{}/tests/fixtures/webrtc/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn chromium() -> Vec<u8> {
    webrtc_fixture("chromium-156-audio-offer.sdp")
}

fn firefox() -> Vec<u8> {
    webrtc_fixture("firefox-153esr-audio-offer.sdp")
}

/// The PBX's certificate fingerprint in these tests.
fn pbx_fingerprint() -> Fingerprint {
    Fingerprint {
        algorithm: "sha-256".into(),
        digest: (0u8..32).collect(),
    }
}

fn webrtc_negotiator() -> Negotiator {
    negotiator(plain(), plain()).with_webrtc(pbx_fingerprint())
}

const PHONE_PCMU: &[&str] = &[
    "v=0",
    "o=- 1 1 IN IP4 192.0.2.44",
    "s=-",
    "c=IN IP4 192.0.2.44",
    "t=0 0",
    "m=audio 7078 RTP/AVP 0 101",
    "a=rtpmap:0 PCMU/8000",
    "a=rtpmap:101 telephone-event/8000",
    "a=fmtp:101 0-16",
];

#[test]
fn chromiums_offer_is_read_with_its_ice_dtls_and_bundle() {
    let sdp = parsed(&chromium());
    assert_eq!(sdp.bundle, vec!["0".to_owned()]);
    let m = &sdp.media[0];
    assert!(m.is_dtls() && !m.is_rtp() && m.rtcp_mux);
    assert_eq!(m.webrtc.ice_ufrag.as_deref(), Some("uoLW"));
    assert_eq!(
        m.webrtc.ice_pwd.as_deref(),
        Some("Pq7H7gOXX+IXOuR97chDClrU")
    );
    assert_eq!(m.webrtc.setup, Some(Setup::ActPass));
    assert_eq!(m.webrtc.mid.as_deref(), Some("0"));
    assert_eq!(m.webrtc.candidates, 2);
    let fp = &m.webrtc.fingerprints[0];
    assert_eq!((fp.algorithm.as_str(), fp.digest.len()), ("sha-256", 32));
    assert!(fp.attribute().starts_with("sha-256 4E:F7:A0:9B"));
    assert!(
        !format!("{m:?}").contains("Pq7H7gOXX"),
        "Debug hides the ICE password"
    );
}

#[test]
fn firefoxs_offer_has_its_fingerprint_at_session_level() {
    let sdp = parsed(&firefox());
    assert_eq!(sdp.webrtc.fingerprints.len(), 1);
    let m = &sdp.media[0];
    assert!(m.webrtc.fingerprints.is_empty());
    assert_eq!(m.webrtc.ice_ufrag.as_deref(), Some("6804b16c"));
    assert_eq!(m.webrtc.setup, Some(Setup::ActPass));
    assert_eq!(m.webrtc.candidates, 8);
    assert_eq!(sdp.bundle, vec!["0".to_owned()]);
}

/// The lines every WebRTC answer of the PBX carries.
fn assert_ice_lite_answer(t: &str, port: u16, mid: &str) {
    for line in [
        "a=ice-lite\r\n".to_owned(),
        format!("a=group:BUNDLE {mid}\r\n"),
        format!("m=audio {port} UDP/TLS/RTP/SAVPF "),
        format!("a=mid:{mid}\r\n"),
        "a=rtcp-mux\r\n".to_owned(),
        format!("a=fingerprint:{}\r\n", pbx_fingerprint().attribute()),
        "a=setup:passive\r\n".to_owned(),
        format!("a=candidate:1 1 udp 2130706431 {PBX_IP} {port} typ host\r\n"),
        "a=end-of-candidates\r\n".to_owned(),
        "a=msid:pbx pbx-audio\r\n".to_owned(),
    ] {
        assert!(t.contains(&line), "missing {line:?} in\n{t}");
    }
    assert!(!t.contains("a=crypto"), "no SDES beside DTLS: {t}");
    let m = audio(t.as_bytes());
    let ufrag = m.webrtc.ice_ufrag.expect("ufrag");
    let pwd = m.webrtc.ice_pwd.expect("pwd");
    assert!(ufrag.len() >= 4 && pwd.len() >= 22, "RFC 8839 §5.4 lengths");
}

#[test]
fn the_pbx_answers_chromium_itself_as_an_ice_lite_dtls_server() {
    for offer in [chromium(), firefox()] {
        let mut n = webrtc_negotiator();
        let (answer, plan, local) = n.answer_locally(Caller, &offer, &mut rng()).unwrap();
        let t = text(&answer);
        assert_ice_lite_answer(&t, CALLER_PORT, "0");
        // Both browsers list G.722 before G.711; the PBX's endpoints speak it.
        assert_eq!(plan.codec, "G722/8000", "{t}");
        assert_eq!(local.payload_type, 9);
        let leg = &plan.caller;
        let webrtc = leg.webrtc.as_ref().expect("a WebRTC leg");
        assert_eq!(webrtc.role, DtlsRole::Server);
        assert!(leg.rtcp_mux && leg.srtp.is_none());
        assert_eq!(
            leg.remote_rtp, None,
            "ICE, not c=0.0.0.0, says where media goes"
        );
        assert!(!leg.direction.is_hold(), "c=0.0.0.0 with ICE is not a hold");
        let offered = parsed(&offer);
        let ufrag = offered.media[0].webrtc.ice_ufrag.clone();
        assert_eq!(Some(webrtc.remote_ice.ufrag.clone()), ufrag);
        assert_eq!(webrtc.remote_fingerprints.len(), 1);
        let ours = audio(&answer);
        assert_eq!(ours.webrtc.ice_ufrag, Some(webrtc.local_ice.ufrag.clone()));
        assert_eq!(ours.webrtc.ice_pwd, Some(webrtc.local_ice.pwd.clone()));
    }
}

#[test]
fn without_a_certificate_a_webrtc_offer_has_no_usable_audio() {
    let mut n = negotiator(plain(), plain());
    let got = n.answer_locally(Caller, &chromium(), &mut rng());
    assert!(matches!(got, Err(NegotiationError::NoAudio)), "{got:?}");
}

#[test]
fn a_browser_calling_a_g711_phone_is_answered_in_g711_without_transcoding() {
    let mut n = webrtc_negotiator();
    let offer = n.offer(Caller, &chromium(), &mut rng()).unwrap();
    let t = text(&offer);
    assert!(
        t.contains("m=audio 30000 RTP/AVP "),
        "plain RTP to the phone: {t}"
    );
    assert!(!t.contains("ice-") && !t.contains("fingerprint"), "{t}");
    assert!(t.contains("a=rtpmap:0 PCMU/8000\r\n") && t.contains("a=rtpmap:8 PCMA/8000\r\n"));
    let (answer, plan) = n.answer(Callee, &sdp(PHONE_PCMU), &mut rng()).unwrap();
    let a = text(&answer);
    assert_ice_lite_answer(&a, CALLER_PORT, "0");
    assert_eq!(plan.codec, "PCMU/8000");
    // The browser's own numbers: PCMU 0, and its telephone-event/8000 (126).
    assert!(
        a.contains("m=audio 20000 UDP/TLS/RTP/SAVPF 0 126\r\n"),
        "{a}"
    );
    assert!(a.contains("a=rtpmap:126 telephone-event/8000\r\n"), "{a}");
    assert_eq!(
        plan.caller.webrtc.as_ref().map(|w| w.role),
        Some(DtlsRole::Server)
    );
    assert!(plan.callee.webrtc.is_none() && plan.callee.srtp.is_none());
    // telephone-event crosses: the phone sends the PBX's offered number (the browser's 126,
    // RFC 3264 §6.1) and receives under its own 101.
    assert!(plan.caller.pt_map.is_empty(), "{:?}", plan.caller.pt_map);
    assert_eq!(plan.callee.pt_map, vec![(126, 101)]);
    // The browser gets one stream of the PBX's own; the phone keeps the pass-through.
    assert_eq!(plan.callee.out_stream, None);
    let stream = plan
        .caller
        .out_stream
        .as_ref()
        .expect("the browser's own stream");
    assert!(stream.clock_rates.contains(&(0, 8000)));
    assert!(stream.clock_rates.contains(&(126, 8000)));
}

#[test]
fn a_browser_device_is_offered_webrtc_and_its_answer_sets_the_dtls_role() {
    let mut n = webrtc_negotiator().with_webrtc_leg(Callee);
    let offer = n.offer(Caller, &sdp(PHONE_PCMU), &mut rng()).unwrap();
    let t = text(&offer);
    for line in [
        "a=ice-lite\r\n",
        "a=group:BUNDLE 0\r\n",
        "m=audio 30000 UDP/TLS/RTP/SAVPF 0 101\r\n",
        "a=setup:actpass\r\n",
        "a=rtcp-mux\r\n",
        "a=mid:0\r\n",
    ] {
        assert!(t.contains(line), "missing {line:?} in\n{t}");
    }
    // The browser answers active (as Chromium and Firefox do): the PBX is the DTLS server.
    let browser_answer = String::from_utf8(chromium())
        .unwrap()
        .replace("a=setup:actpass", "a=setup:active");
    let (to_phone, plan) = n
        .answer(Callee, browser_answer.as_bytes(), &mut rng())
        .unwrap();
    assert!(text(&to_phone).contains("m=audio 20000 RTP/AVP 0 101\r\n"));
    let webrtc = plan.callee.webrtc.as_ref().expect("WebRTC callee");
    assert_eq!(webrtc.role, DtlsRole::Server);
    assert_eq!(webrtc.remote_ice.ufrag, "uoLW");
    // The credentials the PBX offered are the ones it checks.
    let ours = audio(&offer);
    assert_eq!(ours.webrtc.ice_ufrag, Some(webrtc.local_ice.ufrag.clone()));

    // A browser answering passive makes the PBX the DTLS client.
    let mut n = webrtc_negotiator().with_webrtc_leg(Callee);
    let _ = n.offer(Caller, &sdp(PHONE_PCMU), &mut rng()).unwrap();
    let passive = String::from_utf8(chromium())
        .unwrap()
        .replace("a=setup:actpass", "a=setup:passive");
    let (_, plan) = n.answer(Callee, passive.as_bytes(), &mut rng()).unwrap();
    assert_eq!(plan.callee.webrtc.map(|w| w.role), Some(DtlsRole::Client));
}

#[test]
fn a_browser_answer_without_a_fingerprint_is_refused() {
    let mut n = webrtc_negotiator().with_webrtc_leg(Callee);
    let _ = n.offer(Caller, &sdp(PHONE_PCMU), &mut rng()).unwrap();
    let stripped: String = String::from_utf8(chromium())
        .unwrap()
        .split_inclusive("\r\n")
        .filter(|l| !l.starts_with("a=fingerprint"))
        .collect();
    let got = n.answer(Callee, stripped.as_bytes(), &mut rng());
    assert_eq!(got.err(), Some(NegotiationError::NoDtls(Callee)));
    assert_eq!(NegotiationError::NoDtls(Callee).status(), 488);
}

#[test]
fn a_reoffer_keeps_the_pbxs_ice_credentials() {
    let mut n = webrtc_negotiator();
    let (first, _, _) = n.answer_locally(Caller, &chromium(), &mut rng()).unwrap();
    let hold = String::from_utf8(chromium())
        .unwrap()
        .replace("a=sendrecv", "a=sendonly");
    let (second, plan, _) = n
        .answer_locally(Caller, hold.as_bytes(), &mut rng())
        .unwrap();
    assert_eq!(audio(&first).webrtc.ice_pwd, audio(&second).webrtc.ice_pwd);
    assert!(text(&second).contains("a=recvonly"));
    assert!(plan.caller.direction.is_hold());
}

#[test]
fn every_plan_of_a_call_keeps_the_browsers_outgoing_ssrc() {
    let mut n = webrtc_negotiator();
    let (_, first, _) = n.answer_locally(Caller, &chromium(), &mut rng()).unwrap();
    let ssrc_of = |p: &pbx_media::MediaPlan| p.caller.out_stream.as_ref().map(|o| o.ssrc);
    let ssrc = ssrc_of(&first).expect("an SSRC of the PBX's own");
    let (_, again, _) = n.answer_locally(Caller, &chromium(), &mut rng()).unwrap();
    assert_eq!(ssrc_of(&again), Some(ssrc));
    // Then bridged to a phone: the same stream goes on.
    let _ = n.offer(Caller, &chromium(), &mut rng()).unwrap();
    let (_, bridged) = n.answer(Callee, &sdp(PHONE_PCMU), &mut rng()).unwrap();
    assert_eq!(ssrc_of(&bridged), Some(ssrc));
}

/// Chromium's offer cut down to Opus and telephone-event/8000, as a browser told to send
/// only Opus offers it.
fn opus_only() -> Vec<u8> {
    String::from_utf8(chromium())
        .unwrap()
        .replace(
            "m=audio 9 UDP/TLS/RTP/SAVPF 111 63 9 0 8 13 110 126",
            "m=audio 9 UDP/TLS/RTP/SAVPF 111 126",
        )
        .into_bytes()
}

#[test]
fn an_opus_only_browser_calling_a_g711_phone_is_transcoded() {
    let mut n = webrtc_negotiator();
    let offer = n.offer(Caller, &opus_only(), &mut rng()).unwrap();
    let t = text(&offer);
    // The phone is offered the browser's formats and the voice codecs the PBX transcodes to.
    assert!(t.contains("m=audio 30000 RTP/AVP 111 126 0 8 9\r\n"), "{t}");
    assert!(t.contains("a=rtpmap:0 PCMU/8000\r\n") && t.contains("a=rtpmap:9 G722/8000\r\n"));
    let (answer, plan) = n.answer(Callee, &sdp(PHONE_PCMU), &mut rng()).unwrap();
    let a = text(&answer);
    // The browser hears only of what it offered: Opus and its telephone-event.
    assert!(
        a.contains("m=audio 20000 UDP/TLS/RTP/SAVPF 111 126\r\n"),
        "{a}"
    );
    assert!(a.contains("a=rtpmap:111 opus/48000/2\r\n"), "{a}");
    assert!(!a.contains("PCMU"), "{a}");
    assert_eq!(plan.codec, "opus/48000/2 <-> PCMU/8000");
    assert_eq!(
        plan.caller.transcode,
        Some(pbx_media::Transcoding {
            opus_pt: 111,
            voice: pbx_media::voice::Voice::G711(pbx_media::g711::Law::Mu),
            voice_pt: 0,
            events: None,
        })
    );
    assert_eq!(plan.callee.transcode, None);
    let stream = plan
        .caller
        .out_stream
        .as_ref()
        .expect("the browser's own stream");
    assert!(stream.clock_rates.contains(&(111, 48_000)));
    // telephone-event still crosses by payload type.
    assert_eq!(plan.callee.pt_map, vec![(126, 101)]);
}

#[test]
fn a_browser_with_g711_is_never_transcoded() {
    let mut n = webrtc_negotiator();
    let offer = n.offer(Caller, &chromium(), &mut rng()).unwrap();
    assert!(
        !text(&offer).contains("opus/48000/2\r\na=rtpmap:0"),
        "nothing added"
    );
    let (_, plan) = n.answer(Callee, &sdp(PHONE_PCMU), &mut rng()).unwrap();
    assert_eq!(plan.caller.transcode, None);
    assert_eq!(plan.codec, "PCMU/8000");
}

#[test]
fn browser_to_browser_keeps_opus_end_to_end() {
    let mut n = webrtc_negotiator().with_webrtc_leg(Callee);
    let offer = n.offer(Caller, &opus_only(), &mut rng()).unwrap();
    let t = text(&offer);
    assert!(
        t.contains("m=audio 30000 UDP/TLS/RTP/SAVPF 111 126\r\n"),
        "no codec added towards a browser: {t}"
    );
    let browser_answer = String::from_utf8(opus_only())
        .unwrap()
        .replace("a=setup:actpass", "a=setup:active");
    let (answer, plan) = n
        .answer(Callee, browser_answer.as_bytes(), &mut rng())
        .unwrap();
    assert!(
        text(&answer).contains("m=audio 20000 UDP/TLS/RTP/SAVPF 111 126\r\n"),
        "{}",
        text(&answer)
    );
    assert_eq!(plan.codec, "opus/48000/2");
    assert_eq!((plan.caller.transcode, plan.callee.transcode), (None, None));
    assert!(plan.caller.out_stream.is_some() && plan.callee.out_stream.is_some());
}
