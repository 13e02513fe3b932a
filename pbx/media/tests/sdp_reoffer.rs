//! Re-offers: hold and resume (RFC 3264 §8.4), `o=` versions (§8), stable keys, m-line count.

mod sdp_support;

use pbx_media::Direction;
use pbx_media::Side::{Callee, Caller};
use pbx_media::sdp::Encryption::Optional;
use pbx_media::sdp::Negotiator;
use sdp_support::*;

/// Zoiper's SRTP offer with another direction line and o= version.
fn zoiper(direction: &str, version: u32, conn: &str) -> Vec<u8> {
    let t = text(&fixture("zoiper_srtp.sdp"))
        .replace("a=sendrecv", &format!("a={direction}"))
        .replace("1608293001771 1 IN", &format!("1608293001771 {version} IN"))
        .replace("c=IN IP4 192.168.1.30", &format!("c=IN IP4 {conn}"));
    t.into_bytes()
}

fn callee_savp(direction: &str, key: &str) -> Vec<u8> {
    sdp(&[
        "v=0",
        "o=callee 1 1 IN IP4 198.51.100.20",
        "s=-",
        "c=IN IP4 198.51.100.20",
        "t=0 0",
        "m=audio 40000 RTP/SAVP 0",
        &format!("a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:{key}"),
        &format!("a={direction}"),
    ])
}

const CALLEE_KEY: &str = "J8WTunHRtt8tdXuF2H9Po1sVf09vNTTMOd+XoU3g";
const NEW_CALLEE_KEY: &str = "FZ5CTi7g0k2FlDTzEuruhqqrMbifIjMbEpRcEAb3";

fn established() -> (Negotiator, Vec<u8>, Vec<u8>) {
    let tls = policy(Optional, true);
    let mut n = negotiator(tls, tls);
    let offer = n
        .offer(Caller, &zoiper("sendrecv", 1, "192.168.1.30"), &mut rng())
        .unwrap();
    let (answer, _) = n
        .answer(Callee, &callee_savp("sendrecv", CALLEE_KEY), &mut rng())
        .unwrap();
    (n, offer, answer)
}

#[test]
fn hold_and_resume_from_the_caller() {
    let (mut n, offer1, answer1) = established();
    assert_eq!((version(&offer1), version(&answer1)), (1, 1));
    let plan1 = n.plan().unwrap().clone();

    // Hold: a=sendonly passes to the callee, which answers recvonly.
    let offer2 = n
        .offer(Caller, &zoiper("sendonly", 2, "192.168.1.30"), &mut rng())
        .unwrap();
    assert_eq!(version(&offer2), 2);
    assert_eq!(audio(&offer2).direction, Some(Direction::SendOnly));
    // The PBX keeps its keys: the relay's SRTP contexts survive the hold.
    assert_eq!(lines(&offer2, "a=crypto"), lines(&offer1, "a=crypto"));
    let (answer2, plan2) = n
        .answer(Callee, &callee_savp("recvonly", CALLEE_KEY), &mut rng())
        .unwrap();
    assert_eq!(version(&answer2), 2);
    assert_eq!(audio(&answer2).direction, Some(Direction::RecvOnly));
    assert_eq!(lines(&answer2, "a=crypto"), lines(&answer1, "a=crypto"));
    assert_eq!(plan2.caller.direction, Direction::SendOnly);
    assert_eq!(plan2.callee.direction, Direction::RecvOnly);
    assert!(plan2.on_hold());
    assert_eq!(plan2.caller.srtp, plan1.caller.srtp);
    assert_eq!(plan2.callee.srtp, plan1.callee.srtp);

    // Resume.
    let offer3 = n
        .offer(Caller, &zoiper("sendrecv", 3, "192.168.1.30"), &mut rng())
        .unwrap();
    assert_eq!(version(&offer3), 3);
    assert_eq!(audio(&offer3).direction, Some(Direction::SendRecv));
    let (answer3, plan3) = n
        .answer(Callee, &callee_savp("sendrecv", CALLEE_KEY), &mut rng())
        .unwrap();
    assert_eq!(version(&answer3), 3);
    assert!(!plan3.on_hold());
    assert_eq!(plan3, plan1);
}

#[test]
fn session_refresh_keeps_the_version() {
    let (mut n, offer1, answer1) = established();
    // RFC 3264 §8: an unchanged description keeps its version.
    let offer2 = n
        .offer(Caller, &zoiper("sendrecv", 1, "192.168.1.30"), &mut rng())
        .unwrap();
    assert_eq!(offer2, offer1);
    let (answer2, _) = n
        .answer(Callee, &callee_savp("sendrecv", CALLEE_KEY), &mut rng())
        .unwrap();
    assert_eq!(answer2, answer1);
}

#[test]
fn old_style_hold_with_zero_address() {
    let (mut n, _, _) = established();
    // RFC 3264 §8.4 / RFC 2543: c=0.0.0.0 means "do not send to me".
    let offer = n
        .offer(Caller, &zoiper("sendrecv", 2, "0.0.0.0"), &mut rng())
        .unwrap();
    assert!(
        !text(&offer).contains("0.0.0.0"),
        "the PBX always writes its own address"
    );
    assert_eq!(audio(&offer).direction, Some(Direction::SendOnly));
    let (answer, plan) = n
        .answer(Callee, &callee_savp("sendrecv", CALLEE_KEY), &mut rng())
        .unwrap();
    assert_eq!(
        audio(&answer).direction,
        Some(Direction::RecvOnly),
        "clamped to the offer"
    );
    assert_eq!(plan.caller.remote_rtp, None);
    assert_eq!(plan.caller.remote_rtcp, None);
    assert_eq!(plan.caller.direction, Direction::SendOnly);
    assert!(plan.on_hold());
}

#[test]
fn hold_from_the_callee_and_its_new_key() {
    let (mut n, _, answer1) = established();
    let plan1 = n.plan().unwrap().clone();
    // The callee holds with a re-INVITE and a new key of its own.
    let reoffer = callee_savp("sendonly", NEW_CALLEE_KEY);
    let offer = n.offer(Callee, &reoffer, &mut rng()).unwrap();
    // Second SDP to the caller: version 2, the same PBX key as in the first answer.
    assert_eq!(version(&offer), 2);
    assert!(text(&offer).contains("m=audio 20000 RTP/SAVP 0\r\n"));
    assert_eq!(audio(&offer).direction, Some(Direction::SendOnly));
    let ours = |sdp: &[u8]| {
        lines(sdp, "a=crypto:1 ")
            .pop()
            .unwrap()
            .split("inline:")
            .nth(1)
            .unwrap()
            .to_owned()
    };
    assert_eq!(ours(&offer), ours(&answer1));

    let (answer, plan) = n
        .answer(Caller, &zoiper("recvonly", 2, "192.168.1.30"), &mut rng())
        .unwrap();
    assert_eq!(version(&answer), 2, "second SDP to the callee");
    assert_eq!(audio(&answer).direction, Some(Direction::RecvOnly));
    assert_eq!(plan.callee.direction, Direction::SendOnly);
    assert_eq!(plan.caller.direction, Direction::RecvOnly);
    // Keys: the callee's new inbound key, everything else as before.
    let callee = plan.callee.srtp.clone().unwrap();
    assert_ne!(
        Some(&callee.inbound),
        plan1.callee.srtp.as_ref().map(|s| &s.inbound)
    );
    assert_eq!(
        Some(&callee.outbound),
        plan1.callee.srtp.as_ref().map(|s| &s.outbound)
    );
    assert_eq!(plan.caller.srtp, plan1.caller.srtp);
}

#[test]
fn a_later_offer_keeps_every_m_line() {
    // Linphone offered audio + video; the callee later re-offers audio only.
    let mut n = negotiator(plain(), plain());
    n.offer(Caller, &fixture("linphone.sdp"), &mut rng())
        .unwrap();
    let (answer, _) = n
        .answer(
            Callee,
            &callee_answer("0", &["m=video 0 RTP/AVP 96"]),
            &mut rng(),
        )
        .unwrap();
    assert_eq!(parsed(&answer).media.len(), 2);

    let offer = n
        .offer(Callee, &callee_answer("0", &["a=sendonly"]), &mut rng())
        .unwrap();
    let media = parsed(&offer).media;
    assert_eq!(media.len(), 2, "RFC 3264 §8: m-lines are never removed");
    assert_eq!((media[1].kind.as_str(), media[1].port), ("video", 0));
    // The caller answers with both lines; the callee gets one, as it offered.
    let caller_answer = text(&fixture("linphone.sdp"))
        .replace(
            "m=audio 7078 RTP/AVP 96 97 98 0 8 18 101 99 100",
            "m=audio 7078 RTP/AVP 0",
        )
        .replace("m=video 9078", "m=video 0")
        + "a=recvonly\r\n";
    let (answer, plan) = n
        .answer(Caller, caller_answer.as_bytes(), &mut rng())
        .unwrap();
    assert_eq!(parsed(&answer).media.len(), 1);
    assert_eq!(plan.codec, "PCMU/8000");
}
