//! Offer/answer through the B2BUA with real clients' SDP: codecs, payload types, m-lines,
//! rtcp-mux, errors.

mod sdp_support;

use pbx_media::Side::{Callee, Caller};
use pbx_media::sdp::{NegotiationError, ParseError};
use sdp_support::*;

#[test]
fn sipp_uac_to_a_pcmu_callee() {
    let mut n = negotiator(plain(), plain());
    let offer = n
        .offer(Caller, &fixture("sipp_uac.sdp"), &mut rng())
        .unwrap();
    let t = text(&offer);
    assert!(
        t.starts_with(
            "v=0\r\no=- 4242 1 IN IP4 203.0.113.5\r\ns=-\r\nc=IN IP4 203.0.113.5\r\nt=0 0\r\n"
        ),
        "{t}"
    );
    assert!(
        t.contains("m=audio 30000 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n"),
        "{t}"
    );
    assert!(t.ends_with("a=sendrecv\r\n"));
    assert!(
        !t.contains("127.0.0.1"),
        "the caller's address never reaches the callee"
    );

    let (answer, plan) = n
        .answer(
            Callee,
            &callee_answer("0", &["a=rtpmap:0 PCMU/8000"]),
            &mut rng(),
        )
        .unwrap();
    let t = text(&answer);
    assert!(t.contains("o=- 4242 1 IN IP4 203.0.113.5\r\n"));
    assert!(t.contains("m=audio 20000 RTP/AVP 0\r\n"), "{t}");
    assert_eq!(plan.codec, "PCMU/8000");
    assert_eq!(plan.caller.remote_rtp, addr("127.0.0.1:6000"));
    assert_eq!(plan.caller.remote_rtcp, addr("127.0.0.1:6001"));
    assert_eq!(plan.callee.remote_rtp, addr("198.51.100.20:40000"));
    assert_eq!(plan.callee.remote_rtcp, addr("198.51.100.20:40001"));
    assert!(plan.caller.pt_map.is_empty() && plan.callee.pt_map.is_empty());
    assert!(plan.caller.srtp.is_none() && plan.callee.srtp.is_none());
    assert!(!plan.on_hold());
    assert_eq!(n.plan(), Some(&plan));
}

#[test]
fn answer_keeps_the_callee_order_with_the_caller_numbers() {
    let mut n = negotiator(plain(), plain());
    let offer = n
        .offer(Caller, &fixture("baresip.sdp"), &mut rng())
        .unwrap();
    assert_eq!(formats(&offer), ["96", "9", "0", "8", "101"]);
    assert!(text(&offer).contains(
        "a=rtpmap:96 opus/48000/2\r\na=fmtp:96 stereo=1;sprop-stereo=1;maxaveragebitrate=128000\r\n"
    ));
    assert!(text(&offer).contains("a=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-15\r\n"));
    assert!(text(&offer).contains("a=ptime:20\r\n"));
    let answer = callee_answer(
        "8 0 101 13",
        &[
            "a=rtpmap:101 telephone-event/8000",
            "a=fmtp:101 0-16",
            "a=ptime:30",
        ],
    );
    let (answer, plan) = n.answer(Callee, &answer, &mut rng()).unwrap();
    // CN (13) was not offered: left out.
    assert_eq!(formats(&answer), ["8", "0", "101"]);
    // The answerer's format parameters and ptime (what it receives).
    assert!(text(&answer).contains("a=fmtp:101 0-16\r\n"));
    assert!(text(&answer).contains("a=ptime:30\r\n"));
    assert_eq!(plan.codec, "PCMA/8000");
}

#[test]
fn static_types_match_by_name_whatever_their_number() {
    // The callee answers with a dynamic number for G722 and lower-case names.
    let mut n = negotiator(plain(), plain());
    n.offer(Caller, &fixture("baresip.sdp"), &mut rng())
        .unwrap();
    let answer = callee_answer(
        "100 110",
        &[
            "a=rtpmap:100 g722/8000",
            "a=rtpmap:110 TELEPHONE-EVENT/8000",
        ],
    );
    let (answer, plan) = n.answer(Callee, &answer, &mut rng()).unwrap();
    assert_eq!(formats(&answer), ["9", "101"]);
    assert_eq!(plan.codec, "G722/8000");
    // To the callee: caller's 9 → 100, 101 → 110. To the caller: what the PBX offered the
    // callee (9, 101) is already the caller's numbering.
    assert_eq!(plan.callee.pt_map, [(9, 100), (101, 110)]);
    assert!(plan.caller.pt_map.is_empty());
}

#[test]
fn telephone_event_numbers_differ_per_leg() {
    // Zoiper calls with telephone-event/8000 on 96; later the callee re-offers it on 101.
    let mut n = negotiator(plain(), plain());
    n.offer(Caller, &fixture("zoiper.sdp"), &mut rng()).unwrap();
    let answer = callee_answer("0 96", &["a=rtpmap:96 telephone-event/8000"]);
    let (_, plan) = n.answer(Callee, &answer, &mut rng()).unwrap();
    assert!(plan.callee.pt_map.is_empty());

    let reoffer = callee_answer(
        "0 101",
        &["a=rtpmap:101 telephone-event/8000", "a=fmtp:101 0-16"],
    );
    let offer = n.offer(Callee, &reoffer, &mut rng()).unwrap();
    // RFC 3264 §8.3.2: the caller keeps its own numbers for formats it already used.
    assert_eq!(formats(&offer), ["0", "96"]);
    let caller_answer = sdp(&[
        "v=0",
        "o=Z 1608292844058 2 IN IP4 192.168.1.30",
        "s=Z",
        "c=IN IP4 192.168.1.30",
        "t=0 0",
        "m=audio 52376 RTP/AVP 0 96",
        "a=rtpmap:96 telephone-event/8000",
        "a=rtcp-mux",
    ]);
    let (answer, plan) = n.answer(Caller, &caller_answer, &mut rng()).unwrap();
    assert_eq!(formats(&answer), ["0", "101"]);
    assert_eq!(plan.caller.pt_map, [(101, 96)]);
    assert_eq!(plan.callee.pt_map, [(96, 101)]);
}

#[test]
fn two_telephone_event_rates_map_by_clock() {
    let mut n = negotiator(plain(), plain());
    let offer = n
        .offer(Caller, &fixture("linphone.sdp"), &mut rng())
        .unwrap();
    assert_eq!(
        formats(&offer),
        ["96", "97", "98", "0", "8", "18", "101", "99", "100"]
    );
    assert!(text(&offer).contains("a=rtpmap:18 G729/8000\r\na=fmtp:18 annexb=yes\r\n"));
    let answer = callee_answer("0 120", &["a=rtpmap:120 telephone-event/8000"]);
    let (answer, plan) = n.answer(Callee, &answer, &mut rng()).unwrap();
    assert_eq!(formats(&answer), ["0", "100"]);
    assert_eq!(plan.callee.pt_map, [(100, 120)]);
}

#[test]
fn video_is_rejected_with_port_zero_in_place() {
    let mut n = negotiator(plain(), plain());
    let offer = n
        .offer(Caller, &fixture("linphone.sdp"), &mut rng())
        .unwrap();
    let media = parsed(&offer).media;
    assert_eq!(media.len(), 2);
    assert_eq!((media[1].kind.as_str(), media[1].port), ("video", 0));
    assert!(lines(&offer, "m=video").contains(&"m=video 0 RTP/AVP 96 97".to_owned()));
    // No attributes of the rejected stream travel.
    assert!(!text(&offer).contains("VP8"));

    let answer = callee_answer("0", &["m=video 0 RTP/AVP 96"]);
    let (answer, plan) = n.answer(Callee, &answer, &mut rng()).unwrap();
    let media = parsed(&answer).media;
    assert_eq!(media.len(), 2, "RFC 3264 §6: as many m-lines as the offer");
    assert_eq!((media[0].port, media[1].port), (CALLER_PORT, 0));
    assert_eq!(lines(&answer, "m=video"), ["m=video 0 RTP/AVP 96 97"]);
    // a=rtcp of Linphone (RFC 3605).
    assert_eq!(plan.caller.remote_rtcp, addr("192.168.1.20:7079"));
}

#[test]
fn audio_second_after_video() {
    let offer = sdp(&[
        "v=0",
        "o=- 1 1 IN IP4 10.1.1.1",
        "s=-",
        "c=IN IP4 10.1.1.1",
        "t=0 0",
        "m=video 5000 RTP/AVP 96",
        "a=rtpmap:96 H264/90000",
        "m=audio 5002 RTP/AVP 8",
        "m=audio 5004 RTP/AVP 0",
    ]);
    let mut n = negotiator(plain(), plain());
    let out = n.offer(Caller, &offer, &mut rng()).unwrap();
    let ports: Vec<u16> = parsed(&out).media.iter().map(|m| m.port).collect();
    assert_eq!(ports, [0, CALLEE_PORT, 0]);
    let answer = sdp(&[
        "v=0",
        "o=- 1 1 IN IP4 10.2.2.2",
        "s=-",
        "c=IN IP4 10.2.2.2",
        "t=0 0",
        "m=video 0 RTP/AVP 96",
        "m=audio 7000 RTP/AVP 8",
        "m=audio 0 RTP/AVP 0",
    ]);
    let (answer, plan) = n.answer(Callee, &answer, &mut rng()).unwrap();
    let ports: Vec<u16> = parsed(&answer).media.iter().map(|m| m.port).collect();
    assert_eq!(ports, [0, CALLER_PORT, 0]);
    assert_eq!(plan.caller.remote_rtp, addr("10.1.1.1:5002"));
    assert_eq!(plan.callee.remote_rtp, addr("10.2.2.2:7000"));
}

#[test]
fn rtcp_mux_is_per_leg() {
    let mut n = negotiator(plain(), plain());
    let offer = n
        .offer(Caller, &fixture("baresip.sdp"), &mut rng())
        .unwrap();
    assert_eq!(
        lines(&offer, "a=rtcp-mux").len(),
        1,
        "RFC 5761: offered on as the offerer did"
    );
    let (answer, plan) = n
        .answer(Callee, &callee_answer("0", &[]), &mut rng())
        .unwrap();
    assert_eq!(
        lines(&answer, "a=rtcp-mux").len(),
        1,
        "the caller offered it: answered"
    );
    assert!(plan.caller.rtcp_mux && !plan.callee.rtcp_mux);
    assert_eq!(plan.caller.remote_rtcp, plan.caller.remote_rtp);
    assert_eq!(plan.callee.remote_rtcp, addr("198.51.100.20:40001"));

    let mut n = negotiator(plain(), plain());
    n.offer(Caller, &fixture("baresip.sdp"), &mut rng())
        .unwrap();
    let (_, plan) = n
        .answer(Callee, &callee_answer("0", &["a=rtcp-mux"]), &mut rng())
        .unwrap();
    assert!(plan.caller.rtcp_mux && plan.callee.rtcp_mux);
    assert_eq!(plan.callee.remote_rtcp, addr("198.51.100.20:40000"));

    // Not offered: a callee's a=rtcp-mux means nothing.
    let mut n = negotiator(plain(), plain());
    let offer = n
        .offer(Caller, &fixture("sipp_uac.sdp"), &mut rng())
        .unwrap();
    assert!(lines(&offer, "a=rtcp-mux").is_empty());
    let (answer, plan) = n
        .answer(Callee, &callee_answer("0", &["a=rtcp-mux"]), &mut rng())
        .unwrap();
    assert!(lines(&answer, "a=rtcp-mux").is_empty());
    assert!(!plan.caller.rtcp_mux && !plan.callee.rtcp_mux);
}

#[test]
fn ipv6_relay_address() {
    let mut n = pbx_media::sdp::Negotiator::new(
        pbx_media::sdp::LocalEndpoint {
            ip: ip("2001:db8::5"),
            rtp_port: 20000,
        },
        plain(),
        endpoint(CALLEE_PORT),
        plain(),
        1,
    );
    n.offer(Caller, &fixture("sipp_uac.sdp"), &mut rng())
        .unwrap();
    let (answer, _) = n
        .answer(Callee, &callee_answer("0", &[]), &mut rng())
        .unwrap();
    assert!(text(&answer).contains("o=- 1 1 IN IP6 2001:db8::5\r\n"));
    assert!(text(&answer).contains("c=IN IP6 2001:db8::5\r\n"));
}

#[test]
fn not_acceptable_here() {
    let only_video = sdp(&[
        "v=0",
        "c=IN IP4 10.0.0.1",
        "m=video 5000 RTP/AVP 96",
        "a=rtpmap:96 VP8/90000",
    ]);
    let dtls = sdp(&[
        "v=0",
        "c=IN IP4 10.0.0.1",
        "m=audio 9 UDP/TLS/RTP/SAVPF 111",
        "a=rtpmap:111 opus/48000/2",
    ]);
    let port_zero = sdp(&["v=0", "c=IN IP4 10.0.0.1", "m=audio 0 RTP/AVP 0"]);
    let dtmf_only = sdp(&[
        "v=0",
        "c=IN IP4 10.0.0.1",
        "m=audio 5000 RTP/AVP 101",
        "a=rtpmap:101 telephone-event/8000",
    ]);
    let unknown = sdp(&["v=0", "c=IN IP4 10.0.0.1", "m=audio 5000 RTP/AVP 96 97"]);
    for (body, err) in [
        (only_video, NegotiationError::NoAudio),
        (dtls, NegotiationError::NoAudio),
        (port_zero, NegotiationError::NoAudio),
        (dtmf_only, NegotiationError::NoCommonCodec),
        (unknown, NegotiationError::NoCommonCodec),
    ] {
        let mut n = negotiator(plain(), plain());
        let e = n.offer(Caller, &body, &mut rng()).unwrap_err();
        assert_eq!(e, err);
        assert_eq!(e.status(), 488);
        assert_eq!(n.pending_offer_from(), None);
    }

    // The callee answers with nothing the caller offered, with only DTMF, or rejects audio.
    for answer in [
        callee_answer("18", &[]),
        callee_answer("101", &["a=rtpmap:101 telephone-event/8000"]),
        sdp(&["v=0", "c=IN IP4 10.0.0.2", "m=audio 0 RTP/AVP 0"]),
        sdp(&["v=0", "c=IN IP4 10.0.0.2"]),
    ] {
        let mut n = negotiator(plain(), plain());
        n.offer(Caller, &fixture("baresip.sdp"), &mut rng())
            .unwrap();
        let e = n.answer(Callee, &answer, &mut rng()).unwrap_err();
        assert_eq!(
            (e.clone(), e.status()),
            (NegotiationError::NoCommonCodec, 488)
        );
        assert_eq!(
            n.pending_offer_from(),
            None,
            "a failed answer ends the exchange"
        );
        assert!(n.plan().is_none());
    }
}

#[test]
fn malformed_is_bad_request() {
    for (body, err) in [
        (&b""[..], ParseError::Empty),
        (b"INVITE sip:x SIP/2.0", ParseError::NoVersion),
        (b"v=0\r\nm=audio x RTP/AVP 0\r\n", ParseError::BadMedia),
        (
            b"v=0\r\nm=audio 5000 RTP/AVP 0\r\nc=IN IP4\r\n",
            ParseError::BadConnection,
        ),
        (b"v=0\r\nthis is not sdp\r\n", ParseError::BadLine),
        (
            b"v=0\r\nm=audio 5000 RTP/AVP 0\rX\r\n",
            ParseError::BadMedia,
        ),
    ] {
        let mut n = negotiator(plain(), plain());
        let e = n.offer(Caller, body, &mut rng()).unwrap_err();
        assert_eq!(e, NegotiationError::Malformed(err));
        assert_eq!(e.status(), 400);
        assert_eq!(e.reason(), "Malformed SDP");
    }
    let mut n = negotiator(plain(), plain());
    n.offer(Caller, &fixture("sipp_uac.sdp"), &mut rng())
        .unwrap();
    let e = n
        .answer(Callee, b"\xff\xfe garbage", &mut rng())
        .unwrap_err();
    assert_eq!(e.status(), 400);
}

#[test]
fn one_exchange_at_a_time() {
    let mut n = negotiator(plain(), plain());
    let e = n
        .answer(Callee, &callee_answer("0", &[]), &mut rng())
        .unwrap_err();
    assert_eq!(
        (e.clone(), e.status()),
        (NegotiationError::UnexpectedAnswer, 500)
    );

    n.offer(Caller, &fixture("sipp_uac.sdp"), &mut rng())
        .unwrap();
    assert_eq!(n.pending_offer_from(), Some(Caller));
    let e = n
        .offer(Callee, &fixture("sipp_uac.sdp"), &mut rng())
        .unwrap_err();
    assert_eq!(
        (e.clone(), e.status()),
        (NegotiationError::OfferPending, 491)
    );
    // The answer must come from the other leg; the offer stays pending meanwhile.
    let e = n
        .answer(Caller, &callee_answer("0", &[]), &mut rng())
        .unwrap_err();
    assert_eq!(e, NegotiationError::UnexpectedAnswer);
    assert_eq!(n.pending_offer_from(), Some(Caller));

    // The callee refused (e.g. 488 to the INVITE): forget it, the callee may offer next.
    n.cancel_offer();
    let offer = n
        .offer(Callee, &callee_answer("0", &[]), &mut rng())
        .unwrap();
    assert!(text(&offer).contains("m=audio 20000 RTP/AVP 0\r\n"));
    let (answer, plan) = n
        .answer(Caller, &fixture("sipp_uac.sdp"), &mut rng())
        .unwrap();
    assert!(text(&answer).contains("m=audio 30000 RTP/AVP 0\r\n"));
    assert_eq!(plan.caller.remote_rtp, addr("127.0.0.1:6000"));
    assert_eq!(plan.callee.remote_rtp, addr("198.51.100.20:40000"));
}
