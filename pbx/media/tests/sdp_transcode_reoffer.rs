//! Re-offers on a transcoded call (an Opus-only caller, a G.711 phone): hold, resume and
//! codec changes from either leg. RFC 3264 §8: a re-offer keeps the session's formats, so
//! the Opus leg is re-offered its own Opus (and its `telephone-event/48000`) whatever the
//! phone offers, the phone is answered in its own codec, and the plan keeps transcoding.

mod sdp_support;

use pbx_media::Side::{Callee, Caller};
use pbx_media::g711::Law;
use pbx_media::transcode::EventPts;
use pbx_media::voice::Voice;
use pbx_media::{Direction, MediaPlan, Transcoding};
use sdp_support::*;

/// The Opus-only caller's SDP (a SIP softphone set to Opus only), with a direction line.
fn opus_sdp(direction: &str) -> Vec<u8> {
    sdp(&[
        "v=0",
        "o=softphone 1 1 IN IP4 192.0.2.30",
        "s=-",
        "c=IN IP4 192.0.2.30",
        "t=0 0",
        "m=audio 4000 RTP/AVP 111 110",
        "a=rtpmap:111 opus/48000/2",
        "a=fmtp:111 useinbandfec=1",
        "a=rtpmap:110 telephone-event/48000",
        "a=fmtp:110 0-16",
        &format!("a={direction}"),
    ])
}

/// The PCMU phone's SDP (offer or answer) with its events and a direction line.
fn phone_sdp(pts: &str, direction: &str) -> Vec<u8> {
    callee_answer(
        pts,
        &[
            "a=rtpmap:8 PCMA/8000",
            "a=rtpmap:101 telephone-event/8000",
            "a=fmtp:101 0-16",
            &format!("a={direction}"),
        ],
    )
}

fn transcoding(voice: Voice, voice_pt: u8) -> Option<Transcoding> {
    Some(Transcoding {
        opus_pt: 111,
        voice,
        voice_pt,
        events: Some(EventPts {
            opus_pt: 110,
            voice_in: 101,
            voice_out: 101,
        }),
    })
}

const PCMU: Voice = Voice::G711(Law::Mu);

/// The call as test_calls_opus.py sets it up: the Opus caller's INVITE, the phone's answer.
fn transcoded_call() -> (pbx_media::sdp::Negotiator, MediaPlan) {
    let mut n = negotiator(plain(), plain());
    n.offer(Caller, &opus_sdp("sendrecv"), &mut rng()).unwrap();
    let (_, plan) = n
        .answer(Callee, &phone_sdp("0 101", "sendrecv"), &mut rng())
        .unwrap();
    assert_eq!(plan.caller.transcode, transcoding(PCMU, 0));
    (n, plan)
}

#[test]
fn the_phone_holds_and_the_opus_leg_is_offered_its_own_opus() {
    let (mut n, first) = transcoded_call();
    let offer = n
        .offer(Callee, &phone_sdp("0 8 101", "sendonly"), &mut rng())
        .unwrap();
    // The caller's Opus and 48 kHz events under its own numbers, none of the phone's
    // formats, and the phone's direction (RFC 3264 §8.4).
    assert_eq!(formats(&offer), ["111", "110"], "{}", text(&offer));
    assert!(lines(&offer, "a=rtpmap:111").contains(&"a=rtpmap:111 opus/48000/2".into()));
    assert!(lines(&offer, "a=rtpmap:110").contains(&"a=rtpmap:110 telephone-event/48000".into()));
    assert_eq!(audio(&offer).direction, Some(Direction::SendOnly));

    let (answer, plan) = n.answer(Caller, &opus_sdp("recvonly"), &mut rng()).unwrap();
    // The phone is answered in its own codec and events.
    assert_eq!(formats(&answer), ["0", "101"], "{}", text(&answer));
    assert!(!text(&answer).contains("opus"), "{}", text(&answer));
    assert_eq!(audio(&answer).direction, Some(Direction::RecvOnly));
    assert_eq!(plan.codec, "opus/48000/2 <-> PCMU/8000");
    // The same stage: the relay keeps its transcoder (`relay::Bridge::apply`).
    assert_eq!(plan.caller.transcode, first.caller.transcode);
    assert_eq!(plan.callee.transcode, None);
    assert_eq!(plan.caller.direction, Direction::RecvOnly);
    assert_eq!(plan.callee.direction, Direction::SendOnly);
    assert!(plan.on_hold());
    assert_eq!(n.telephone_event(Callee), Some(101));
    assert_eq!(n.telephone_event(Caller), None);

    // Resume: both ways again, still transcoded.
    let offer = n
        .offer(Callee, &phone_sdp("0 8 101", "sendrecv"), &mut rng())
        .unwrap();
    assert_eq!(formats(&offer), ["111", "110"]);
    assert_eq!(audio(&offer).direction, Some(Direction::SendRecv));
    let (answer, plan) = n.answer(Caller, &opus_sdp("sendrecv"), &mut rng()).unwrap();
    assert_eq!(formats(&answer), ["0", "101"]);
    assert_eq!(plan.caller.transcode, first.caller.transcode);
    assert!(!plan.on_hold());
    assert_eq!(plan.caller.pt_map, first.caller.pt_map);
    assert_eq!(plan.callee.pt_map, first.callee.pt_map);
}

#[test]
fn an_old_style_hold_from_the_phone_is_offered_as_sendonly() {
    let (mut n, _) = transcoded_call();
    let hold = String::from_utf8(phone_sdp("0 101", "sendrecv"))
        .unwrap()
        .replace("c=IN IP4 198.51.100.20", "c=IN IP4 0.0.0.0");
    let offer = n.offer(Callee, hold.as_bytes(), &mut rng()).unwrap();
    assert_eq!(formats(&offer), ["111", "110"]);
    assert_eq!(audio(&offer).direction, Some(Direction::SendOnly));
    let (answer, plan) = n.answer(Caller, &opus_sdp("recvonly"), &mut rng()).unwrap();
    assert_eq!(formats(&answer), ["0", "101"]);
    assert!(plan.caller.transcode.is_some());
    assert_eq!(plan.callee.remote_rtp, None);
}

#[test]
fn a_phone_switching_to_pcma_is_transcoded_to_pcma() {
    let (mut n, _) = transcoded_call();
    let offer = n
        .offer(Callee, &phone_sdp("8 101", "sendrecv"), &mut rng())
        .unwrap();
    assert_eq!(formats(&offer), ["111", "110"]);
    let (answer, plan) = n.answer(Caller, &opus_sdp("sendrecv"), &mut rng()).unwrap();
    assert_eq!(formats(&answer), ["8", "101"]);
    assert_eq!(plan.codec, "opus/48000/2 <-> PCMA/8000");
    assert_eq!(plan.caller.transcode, transcoding(Voice::G711(Law::A), 8));
}

#[test]
fn a_phone_reoffer_without_events_keeps_the_voice_only() {
    let (mut n, _) = transcoded_call();
    let offer = n
        .offer(Callee, &callee_answer("0", &["a=sendonly"]), &mut rng())
        .unwrap();
    assert_eq!(formats(&offer), ["111"]);
    let (answer, plan) = n.answer(Caller, &opus_sdp("recvonly"), &mut rng()).unwrap();
    assert_eq!(formats(&answer), ["0"]);
    let t = plan.caller.transcode.expect("still transcoded");
    assert_eq!(
        (t.opus_pt, t.voice, t.voice_pt, t.events),
        (111, PCMU, 0, None)
    );
}

#[test]
fn an_opus_leg_that_refuses_opus_fails_the_reoffer() {
    let (mut n, _) = transcoded_call();
    n.offer(Callee, &phone_sdp("0 101", "sendonly"), &mut rng())
        .unwrap();
    assert!(
        n.answer(Caller, &callee_answer("9", &[]), &mut rng())
            .is_err()
    );
}

#[test]
fn the_opus_leg_holds_and_the_phone_is_offered_g711() {
    let (mut n, first) = transcoded_call();
    let offer = n.offer(Caller, &opus_sdp("sendonly"), &mut rng()).unwrap();
    assert_eq!(formats(&offer), ["111", "110", "0", "8", "9", "101"]);
    assert_eq!(audio(&offer).direction, Some(Direction::SendOnly));
    let (answer, plan) = n
        .answer(Callee, &phone_sdp("0 101", "recvonly"), &mut rng())
        .unwrap();
    assert_eq!(formats(&answer), ["111", "110"]);
    assert_eq!(audio(&answer).direction, Some(Direction::RecvOnly));
    assert_eq!(plan.caller.transcode, first.caller.transcode);
    // Resume.
    n.offer(Caller, &opus_sdp("sendrecv"), &mut rng()).unwrap();
    let (_, plan) = n
        .answer(Callee, &phone_sdp("0 101", "sendrecv"), &mut rng())
        .unwrap();
    assert_eq!(plan.caller.transcode, first.caller.transcode);
    assert!(!plan.on_hold());
}

#[test]
fn after_a_phone_reoffer_the_opus_leg_can_reoffer_too() {
    let (mut n, first) = transcoded_call();
    n.offer(Callee, &phone_sdp("0 101", "sendonly"), &mut rng())
        .unwrap();
    n.answer(Caller, &opus_sdp("recvonly"), &mut rng()).unwrap();
    // The Opus leg now offers (its own hold, then the phone's resume later).
    let offer = n.offer(Caller, &opus_sdp("inactive"), &mut rng()).unwrap();
    assert_eq!(formats(&offer), ["111", "110", "0", "8", "9", "101"]);
    let (_, plan) = n
        .answer(Callee, &phone_sdp("0 101", "inactive"), &mut rng())
        .unwrap();
    assert_eq!(plan.caller.transcode, first.caller.transcode);
    // And the phone again.
    let offer = n
        .offer(Callee, &phone_sdp("0 101", "sendrecv"), &mut rng())
        .unwrap();
    assert_eq!(formats(&offer), ["111", "110"]);
    let (_, plan) = n.answer(Caller, &opus_sdp("sendrecv"), &mut rng()).unwrap();
    assert_eq!(plan.caller.transcode, first.caller.transcode);
}

#[test]
fn a_call_bridged_without_transcoding_passes_the_phones_formats_on() {
    let mut n = negotiator(plain(), plain());
    n.offer(Caller, &phone_sdp("0 101", "sendrecv"), &mut rng())
        .unwrap();
    n.answer(Callee, &phone_sdp("0 101", "sendrecv"), &mut rng())
        .unwrap();
    let offer = n
        .offer(Callee, &phone_sdp("0 101", "sendonly"), &mut rng())
        .unwrap();
    assert_eq!(formats(&offer), ["0", "101"]);
}

/// Chromium's offer cut down to Opus and its `telephone-event/8000` (a browser told to
/// send only Opus), as in sdp_webrtc.rs.
fn chromium_opus_only() -> Vec<u8> {
    let path = format!(
        "{}/tests/fixtures/webrtc/chromium-156-audio-offer.sdp",
        env!("CARGO_MANIFEST_DIR")
    );
    String::from_utf8(std::fs::read(&path).unwrap())
        .unwrap()
        .replace(
            "m=audio 9 UDP/TLS/RTP/SAVPF 111 63 9 0 8 13 110 126",
            "m=audio 9 UDP/TLS/RTP/SAVPF 111 126",
        )
        .into_bytes()
}

#[test]
fn a_webrtc_opus_leg_is_reoffered_opus_over_the_same_ice_and_dtls() {
    let fingerprint = pbx_media::Fingerprint {
        algorithm: "sha-256".into(),
        digest: (0u8..32).collect(),
    };
    let mut n = negotiator(plain(), plain()).with_webrtc(fingerprint);
    n.offer(Caller, &chromium_opus_only(), &mut rng()).unwrap();
    let (first_answer, first) = n
        .answer(Callee, &phone_sdp("0 101", "sendrecv"), &mut rng())
        .unwrap();
    let ssrc = first.caller.out_stream.as_ref().map(|o| o.ssrc);
    assert!(first.caller.transcode.is_some());

    let offer = n
        .offer(Callee, &phone_sdp("0 101", "sendonly"), &mut rng())
        .unwrap();
    let t = text(&offer);
    // Opus, and the browser's 8 kHz events passed through under its number.
    assert!(
        t.contains("m=audio 20000 UDP/TLS/RTP/SAVPF 111 126\r\n"),
        "{t}"
    );
    assert_eq!(audio(&offer).direction, Some(Direction::SendOnly));
    assert_eq!(
        audio(&offer).webrtc.ice_pwd,
        audio(&first_answer).webrtc.ice_pwd,
        "not an ICE restart"
    );
    // The browser's answer to it: the same offer turned round, receiving only.
    let browser = String::from_utf8(chromium_opus_only())
        .unwrap()
        .replace("a=sendrecv", "a=recvonly")
        .replace("a=setup:actpass", "a=setup:active");
    let (answer, plan) = n.answer(Caller, browser.as_bytes(), &mut rng()).unwrap();
    assert_eq!(formats(&answer), ["0", "101"], "{}", text(&answer));
    assert_eq!(plan.caller.transcode, first.caller.transcode);
    assert_eq!(plan.caller.out_stream.as_ref().map(|o| o.ssrc), ssrc);
    assert_eq!(plan.callee.pt_map, first.callee.pt_map);
    assert_eq!(plan.caller.direction, Direction::RecvOnly);
}
