//! Hostile SDP never panics: arbitrary bytes, and SDP-shaped line soup, through the parser and
//! both halves of the negotiation. Also the fuzzer's findings, kept as regressions.

mod sdp_support;

use pbx_media::Side::{Callee, Caller};
use pbx_media::sdp::parse;
use proptest::prelude::*;
use sdp_support::*;

/// Lines that look like SDP, including the ones negotiation reads, in any order.
fn sdp_line() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("v=0".to_owned()),
        "[a-z]=[ -~]{0,20}",
        "c=IN IP[46] [0-9a-f:.]{0,16}(/[0-9]{1,3})?",
        "m=(audio|video) [0-9]{1,6}(/2)? (RTP/AVP|RTP/SAVP|RTP/SAVPF|UDP/TLS/RTP/SAVPF)( [0-9]{1,3}){0,5}",
        "a=rtpmap:[0-9]{1,3} (PCMU|opus|telephone-event|[A-Za-z]{1,5})/[0-9]{1,6}(/[0-9]{1,3})?",
        "a=fmtp:[0-9]{1,3} [ -~]{0,10}",
        "a=(sendrecv|sendonly|recvonly|inactive|rtcp-mux|rtcp:[0-9]{1,6}( IN IP4 [0-9.]{1,15})?)",
        "a=crypto:[0-9]{1,10} (AES_CM_128_HMAC_SHA1_80|AES_CM_128_HMAC_SHA1_32|AEAD_AES_128_GCM|X) inline:[A-Za-z0-9+/=]{0,44}(\\|2\\^[0-9]{1,2})?(\\|[0-9]:[0-9])?( WSH=64| KDR=1)?",
        "a=ptime:[0-9]{1,5}",
    ]
}

fn sdp_soup() -> impl Strategy<Value = Vec<u8>> {
    (prop::collection::vec(sdp_line(), 0..24), prop::bool::ANY).prop_map(|(lines, crlf)| {
        let eol = if crlf { "\r\n" } else { "\n" };
        let mut s = String::from("v=0");
        for l in lines {
            s.push_str(eol);
            s.push_str(&l);
        }
        s.into_bytes()
    })
}

fn exercise(offer: &[u8], answer: &[u8]) {
    let _ = parse(offer);
    for (caller, callee) in [
        (plain(), plain()),
        (
            policy(pbx_media::sdp::Encryption::Required, true),
            policy(pbx_media::sdp::Encryption::Required, true),
        ),
    ] {
        let mut n = negotiator(caller, callee);
        if let Ok(out) = n.offer(Caller, offer, &mut rng()) {
            // What the PBX writes is SDP it can read back.
            parse(&out).expect("the PBX's own offer parses");
            if let Ok((reply, _)) = n.answer(Callee, answer, &mut rng()) {
                parse(&reply).expect("the PBX's own answer parses");
            }
        }
        let _ = n.offer(Callee, answer, &mut rng());
        let _ = n.answer(Caller, offer, &mut rng());
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1000))]

    #[test]
    fn arbitrary_bytes_never_panic(offer in prop::collection::vec(any::<u8>(), 0..400),
                                   answer in prop::collection::vec(any::<u8>(), 0..400)) {
        exercise(&offer, &answer);
    }

    #[test]
    fn sdp_soup_never_panics(offer in sdp_soup(), answer in sdp_soup()) {
        exercise(&offer, &answer);
    }
}

/// The PBX's offer echoed back as the answer always negotiates (codecs, tags and keys match).
#[test]
fn own_offer_as_answer() {
    for name in [
        "sipp_uac.sdp",
        "baresip.sdp",
        "linphone.sdp",
        "zoiper.sdp",
        "zoiper_srtp.sdp",
        "deskphone_savp.sdp",
        "baresip_srtp_mand.sdp",
    ] {
        let tls = policy(pbx_media::sdp::Encryption::Optional, true);
        let mut n = negotiator(tls, tls);
        let offer = n.offer(Caller, &fixture(name), &mut rng()).unwrap();
        let (answer, plan) = n.answer(Callee, &offer, &mut rng()).unwrap();
        assert!(parse(&answer).is_ok(), "{name}");
        assert!(!plan.codec.is_empty());
    }
}

/// Fuzzer findings (pbx/media/fuzz, target `sdp`), minimized by hand.
#[test]
fn fuzz_regressions() {
    // `a=rtpmap:0 PCMU/822/0000`: zero channels were written back as one, so the PBX's own
    // offer did not answer itself. Zero channels or clock now void the rtpmap line.
    let offer = sdp(&[
        "v=0",
        "c=IN IP4 127.0.0.1",
        "m=audio 6000 RTP/AVP 0 96",
        "a=rtpmap:0 PCMU/822/0000",
        "a=rtpmap:96 opus/0",
    ]);
    let mut n = negotiator(plain(), plain());
    let out = n.offer(Caller, &offer, &mut rng()).unwrap();
    assert_eq!(formats(&out), ["0"]);
    assert!(text(&out).contains("a=rtpmap:0 PCMU/8000\r\n"));
    let (_, plan) = n.answer(Callee, &out, &mut rng()).unwrap();
    assert_eq!(plan.codec, "PCMU/8000");
}
