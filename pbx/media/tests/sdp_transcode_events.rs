//! A caller that offers only Opus and `telephone-event/48000` (a browser, an Opus SIP
//! softphone) calling a G.711 phone: the phone is offered the voice codecs the PBX
//! transcodes to and a `telephone-event/8000` of the PBX's own; each leg keeps the event
//! clock it offered or answered, and the plan tells the transcoder to convert the events.

mod sdp_support;

use pbx_media::Side::{Callee, Caller};
use pbx_media::Transcoding;
use pbx_media::g711::Law;
use pbx_media::transcode::EventPts;
use pbx_media::voice::Voice;
use sdp_support::*;

/// A plain RTP offer with Opus and the events on its clock, as test_applications_opus.py's
/// caller and softphones set to Opus only send it.
fn opus_offer(events: &[&str]) -> Vec<u8> {
    let pts: Vec<&str> = events
        .iter()
        .filter_map(|l| l.strip_prefix("a=rtpmap:"))
        .filter_map(|l| l.split(' ').next())
        .collect();
    let mut l = vec![
        "v=0".to_owned(),
        "o=softphone 1 1 IN IP4 192.0.2.30".to_owned(),
        "s=-".to_owned(),
        "c=IN IP4 192.0.2.30".to_owned(),
        "t=0 0".to_owned(),
        format!("m=audio 4000 RTP/AVP 111 {}", pts.join(" ")),
        "a=rtpmap:111 opus/48000/2".to_owned(),
    ];
    l.extend(events.iter().map(|s| (*s).to_owned()));
    sdp(&l.iter().map(String::as_str).collect::<Vec<_>>())
}

const TE48: [&str; 2] = ["a=rtpmap:110 telephone-event/48000", "a=fmtp:110 0-16"];

fn transcoding(events: Option<EventPts>) -> Option<Transcoding> {
    Some(Transcoding {
        opus_pt: 111,
        voice: Voice::G711(Law::Mu),
        voice_pt: 0,
        events,
    })
}

#[test]
fn the_phone_gets_8k_events_and_the_caller_keeps_its_48k_ones() {
    let mut n = negotiator(plain(), plain());
    let offer = n.offer(Caller, &opus_offer(&TE48), &mut rng()).unwrap();
    assert_eq!(formats(&offer), ["111", "110", "0", "8", "9", "101"]);
    assert!(
        lines(&offer, "a=rtpmap:101").contains(&"a=rtpmap:101 telephone-event/8000".into()),
        "{}",
        text(&offer)
    );
    assert!(lines(&offer, "a=fmtp:101").contains(&"a=fmtp:101 0-16".into()));

    let phone = callee_answer(
        "0 101",
        &["a=rtpmap:101 telephone-event/8000", "a=fmtp:101 0-16"],
    );
    let (answer, plan) = n.answer(Callee, &phone, &mut rng()).unwrap();
    // The caller hears only of its own formats: Opus and its 48 kHz events.
    assert_eq!(formats(&answer), ["111", "110"]);
    assert!(lines(&answer, "a=rtpmap:110").contains(&"a=rtpmap:110 telephone-event/48000".into()));
    assert!(!text(&answer).contains("/8000"), "{}", text(&answer));
    assert_eq!(plan.codec, "opus/48000/2 <-> PCMU/8000");
    assert_eq!(
        plan.caller.transcode,
        transcoding(Some(EventPts {
            opus_pt: 110,
            voice_in: 101,
            voice_out: 101,
        }))
    );
    assert_eq!(plan.callee.transcode, None);
    // The phone's events are its 101; the caller's 48 kHz ones are no 8 kHz format.
    assert_eq!(n.telephone_event(Callee), Some(101));
    assert_eq!(n.telephone_event(Caller), None);
}

#[test]
fn a_phone_numbering_its_events_otherwise_gets_them_under_its_number() {
    let mut n = negotiator(plain(), plain());
    n.offer(Caller, &opus_offer(&TE48), &mut rng()).unwrap();
    let phone = callee_answer("0 96", &["a=rtpmap:96 telephone-event/8000"]);
    let (_, plan) = n.answer(Callee, &phone, &mut rng()).unwrap();
    // It sends under the number it was offered; what the transcoder writes for it becomes
    // its 96 in the phone leg's table.
    assert_eq!(
        plan.caller.transcode,
        transcoding(Some(EventPts {
            opus_pt: 110,
            voice_in: 101,
            voice_out: 101,
        }))
    );
    assert!(plan.callee.pt_map.contains(&(101, 96)), "{plan:?}");
    assert_eq!(n.telephone_event(Callee), Some(96));
}

#[test]
fn the_added_event_takes_a_number_the_caller_does_not_use() {
    let mut n = negotiator(plain(), plain());
    let offer = n
        .offer(
            Caller,
            &opus_offer(&["a=rtpmap:101 telephone-event/48000"]),
            &mut rng(),
        )
        .unwrap();
    assert_eq!(formats(&offer), ["111", "101", "0", "8", "9", "96"]);
    assert!(lines(&offer, "a=rtpmap:96").contains(&"a=rtpmap:96 telephone-event/8000".into()));
    let phone = callee_answer("0 96", &["a=rtpmap:96 telephone-event/8000"]);
    let (answer, plan) = n.answer(Callee, &phone, &mut rng()).unwrap();
    assert_eq!(formats(&answer), ["111", "101"]);
    assert_eq!(
        plan.caller.transcode,
        transcoding(Some(EventPts {
            opus_pt: 101,
            voice_in: 96,
            voice_out: 96,
        }))
    );
}

#[test]
fn a_caller_that_offers_8k_events_keeps_them_passed_through() {
    let mut n = negotiator(plain(), plain());
    let offer = n
        .offer(
            Caller,
            &opus_offer(&[
                "a=rtpmap:110 telephone-event/48000",
                "a=rtpmap:126 telephone-event/8000",
            ]),
            &mut rng(),
        )
        .unwrap();
    assert_eq!(formats(&offer), ["111", "110", "126", "0", "8", "9"]);
    let phone = callee_answer("0 126", &["a=rtpmap:126 telephone-event/8000"]);
    let (answer, plan) = n.answer(Callee, &phone, &mut rng()).unwrap();
    assert_eq!(formats(&answer), ["111", "126"]);
    assert_eq!(plan.caller.transcode, transcoding(None));
    assert_eq!(n.telephone_event(Caller), Some(126));
    assert_eq!(n.telephone_event(Callee), Some(126));
}

#[test]
fn without_events_from_the_phone_the_caller_is_answered_without_any() {
    let mut n = negotiator(plain(), plain());
    n.offer(Caller, &opus_offer(&TE48), &mut rng()).unwrap();
    let (answer, plan) = n
        .answer(Callee, &callee_answer("0", &[]), &mut rng())
        .unwrap();
    assert_eq!(formats(&answer), ["111"]);
    assert_eq!(plan.caller.transcode, transcoding(None));
    assert_eq!(n.telephone_event(Callee), None);
}

#[test]
fn a_phone_that_speaks_opus_keeps_opus_and_the_48k_events() {
    let mut n = negotiator(plain(), plain());
    n.offer(Caller, &opus_offer(&TE48), &mut rng()).unwrap();
    let phone = callee_answer(
        "111 110",
        &[
            "a=rtpmap:111 opus/48000/2",
            "a=rtpmap:110 telephone-event/48000",
        ],
    );
    let (answer, plan) = n.answer(Callee, &phone, &mut rng()).unwrap();
    assert_eq!(formats(&answer), ["111", "110"]);
    assert_eq!(plan.codec, "opus/48000/2");
    assert_eq!(plan.caller.transcode, None);
    assert_eq!(plan.callee.transcode, None);
}

#[test]
fn a_reoffer_from_the_caller_keeps_the_same_conversion() {
    let mut n = negotiator(plain(), plain());
    n.offer(Caller, &opus_offer(&TE48), &mut rng()).unwrap();
    let phone = callee_answer("0 101", &["a=rtpmap:101 telephone-event/8000"]);
    let (_, first) = n.answer(Callee, &phone, &mut rng()).unwrap();
    // Hold and resume: the same formats again; the relay keeps its transcoder when the
    // spec is unchanged (`relay::Bridge::apply`).
    let offer = n.offer(Caller, &opus_offer(&TE48), &mut rng()).unwrap();
    assert_eq!(formats(&offer), ["111", "110", "0", "8", "9", "101"]);
    let (_, again) = n.answer(Callee, &phone, &mut rng()).unwrap();
    assert_eq!(again.caller.transcode, first.caller.transcode);
    assert!(again.caller.transcode.is_some_and(|t| t.events.is_some()));
}

#[test]
fn with_dtmf_interworking_the_caller_is_not_answered_the_phones_8k_event() {
    // An `info` trunk on the other side: the PBX keeps events for offerers that have them,
    // but the 8 kHz one it added for the phone is not the caller's (RFC 3264 §6.1: an
    // answer lists only offered formats).
    let mut n = negotiator(plain(), plain()).with_dtmf_interworking();
    n.offer(Caller, &opus_offer(&TE48), &mut rng()).unwrap();
    let phone = callee_answer("0 101", &["a=rtpmap:101 telephone-event/8000"]);
    let (answer, plan) = n.answer(Callee, &phone, &mut rng()).unwrap();
    assert_eq!(formats(&answer), ["111", "110"], "{}", text(&answer));
    assert!(!text(&answer).contains("/8000"), "{}", text(&answer));
    assert!(plan.caller.transcode.is_some_and(|t| t.events.is_some()));
    assert_eq!(n.telephone_event(Caller), None);
}
