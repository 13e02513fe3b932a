//! SDES-SRTP (RFC 4568) through the B2BUA: fresh keys per leg, mixed legs, policies.

mod sdp_support;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use pbx_media::Side::{Callee, Caller};
use pbx_media::sdp::Encryption::{Off, Optional, Required};
use pbx_media::sdp::{FirstOffer, LegPolicy, NegotiationError};
use pbx_media::{CryptoSuite, SrtpKey};
use sdp_support::*;

const ZOIPER_KEY: &str = "I2pzJbeBDDCncM7zSvo/KPqmwaEvdxOe2Lxzj6I5";
const CALLEE_KEY: &str = "J8WTunHRtt8tdXuF2H9Po1sVf09vNTTMOd+XoU3g";
/// baresip_srtp_mand.sdp's `a=crypto:2`.
const BARESIP_KEY: &str = "J8WTunHRtt8tdXuF2H9Po1sVf09vNTTMOd+XoU3g";

fn key(b64: &str, suite: CryptoSuite) -> SrtpKey {
    SrtpKey {
        suite,
        key_salt: STANDARD.decode(b64).unwrap(),
    }
}

/// The key of the PBX's `a=crypto:<tag>` line.
fn crypto_key(sdp: &[u8], tag: u32) -> String {
    let prefix = format!("a=crypto:{tag} ");
    let line = lines(sdp, &prefix).pop().unwrap();
    let inline = line.split("inline:").nth(1).unwrap();
    inline.to_owned()
}

fn savp_answer(tag: u32, suite: &str, key: &str) -> Vec<u8> {
    sdp(&[
        "v=0",
        "o=callee 1 1 IN IP4 198.51.100.20",
        "s=-",
        "c=IN IP4 198.51.100.20",
        "t=0 0",
        "m=audio 40000 RTP/SAVP 0 96",
        "a=rtpmap:96 telephone-event/8000",
        &format!("a=crypto:{tag} {suite} inline:{key}"),
    ])
}

#[test]
fn both_legs_srtp_with_fresh_keys() {
    let tls = policy(Optional, true);
    let mut n = negotiator(tls, tls);
    let offer = n
        .offer(Caller, &fixture("zoiper_srtp.sdp"), &mut rng())
        .unwrap();
    assert!(lines(&offer, "m=audio").contains(&"m=audio 30000 RTP/SAVP 106 0 8 96".to_owned()));
    let crypto = lines(&offer, "a=crypto:");
    assert_eq!(crypto.len(), 2);
    assert!(crypto[0].starts_with("a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:"));
    assert!(crypto[1].starts_with("a=crypto:2 AES_CM_128_HMAC_SHA1_32 inline:"));
    assert!(
        !text(&offer).contains(ZOIPER_KEY),
        "a leg's key never goes to the other leg"
    );
    let offered = crypto_key(&offer, 1);

    let answer = savp_answer(1, "AES_CM_128_HMAC_SHA1_80", CALLEE_KEY);
    let (answer, plan) = n.answer(Callee, &answer, &mut rng()).unwrap();
    assert!(lines(&answer, "m=audio").contains(&"m=audio 20000 RTP/SAVP 0 96".to_owned()));
    // RFC 4568 §6.1: the tag and suite of the offerer's chosen line, the PBX's own key.
    let reply = lines(&answer, "a=crypto:");
    assert_eq!(reply.len(), 1);
    assert!(reply[0].starts_with("a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:"));
    let answered = crypto_key(&answer, 1);
    assert!(!text(&answer).contains(CALLEE_KEY));
    assert_ne!(answered, offered, "one key per leg");

    let suite = CryptoSuite::AesCm128HmacSha1_80;
    let caller = plan.caller.srtp.clone().unwrap();
    assert_eq!(caller.inbound, key(ZOIPER_KEY, suite));
    assert_eq!(caller.outbound, key(&answered, suite));
    let callee = plan.callee.srtp.clone().unwrap();
    assert_eq!(callee.inbound, key(CALLEE_KEY, suite));
    assert_eq!(callee.outbound, key(&offered, suite));

    // Logs never carry keys (ARCHITECTURE.md rule 11).
    let debug = format!("{n:?} {plan:?}");
    for k in [ZOIPER_KEY, CALLEE_KEY, &offered, &answered] {
        assert!(!debug.contains(k));
    }
    assert!(!debug.contains(&format!("{:?}", caller.inbound.key_salt)));
}

#[test]
fn srtp_caller_plain_callee() {
    // The callee is not on TLS: Optional falls back to RTP towards it.
    let mut n = negotiator(policy(Optional, true), policy(Optional, false));
    let offer = n
        .offer(Caller, &fixture("zoiper_srtp.sdp"), &mut rng())
        .unwrap();
    assert!(lines(&offer, "m=audio")[0].contains(" RTP/AVP "));
    assert!(lines(&offer, "a=crypto").is_empty());
    let (answer, plan) = n
        .answer(Callee, &callee_answer("0", &[]), &mut rng())
        .unwrap();
    assert!(lines(&answer, "m=audio")[0].contains(" RTP/SAVP "));
    assert_eq!(
        lines(&answer, "a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:").len(),
        1
    );
    assert!(plan.caller.srtp.is_some() && plan.callee.srtp.is_none());
}

#[test]
fn plain_caller_srtp_callee() {
    let mut n = negotiator(plain(), policy(Required, true));
    let offer = n
        .offer(Caller, &fixture("sipp_uac.sdp"), &mut rng())
        .unwrap();
    assert!(lines(&offer, "m=audio")[0].contains(" RTP/SAVP "));
    let offered32 = crypto_key(&offer, 2);
    let answer = savp_answer(2, "AES_CM_128_HMAC_SHA1_32", CALLEE_KEY);
    let (answer, plan) = n.answer(Callee, &answer, &mut rng()).unwrap();
    assert!(lines(&answer, "a=crypto").is_empty());
    assert!(lines(&answer, "m=audio")[0].contains(" RTP/AVP "));
    assert!(plan.caller.srtp.is_none());
    let callee = plan.callee.srtp.unwrap();
    assert_eq!(
        callee.inbound,
        key(CALLEE_KEY, CryptoSuite::AesCm128HmacSha1_32)
    );
    assert_eq!(
        callee.outbound,
        key(&offered32, CryptoSuite::AesCm128HmacSha1_32)
    );
}

#[test]
fn optional_callee_mirrors_a_plain_caller() {
    let mut n = negotiator(plain(), policy(Optional, true));
    let offer = n
        .offer(Caller, &fixture("sipp_uac.sdp"), &mut rng())
        .unwrap();
    assert!(lines(&offer, "m=audio")[0].contains(" RTP/AVP "));
}

#[test]
fn first_offer_srtp_reaches_an_optional_callee_on_tls_only() {
    // A plain caller on UDP, an Optional callee on TLS: SRTP offered (the caller is not
    // mirrored), the answer's key taken, the caller's leg plain.
    let mut n =
        negotiator(plain(), policy(Optional, true)).with_first_offer(Callee, FirstOffer::Srtp);
    let offer = n
        .offer(Caller, &fixture("sipp_uac.sdp"), &mut rng())
        .unwrap();
    assert!(lines(&offer, "m=audio")[0].contains(" RTP/SAVP "));
    assert_eq!(lines(&offer, "a=crypto:").len(), 2);
    assert!(n.pending_offer_is_srtp());
    let (answer, plan) = n
        .answer(
            Callee,
            &savp_answer(1, "AES_CM_128_HMAC_SHA1_80", CALLEE_KEY),
            &mut rng(),
        )
        .unwrap();
    assert!(lines(&answer, "a=crypto").is_empty());
    assert!(plan.callee.srtp.is_some() && plan.caller.srtp.is_none());

    // The same callee on UDP: no keys in clear, plain RTP.
    let mut n = negotiator(plain(), plain()).with_first_offer(Callee, FirstOffer::Srtp);
    let offer = n
        .offer(Caller, &fixture("sipp_uac.sdp"), &mut rng())
        .unwrap();
    assert!(lines(&offer, "m=audio")[0].contains(" RTP/AVP "));
    assert!(lines(&offer, "a=crypto").is_empty());
    assert!(!n.pending_offer_is_srtp());

    // Off and Required are not affected.
    let mut n = negotiator(plain(), policy(Off, true)).with_first_offer(Callee, FirstOffer::Srtp);
    let offer = n
        .offer(Caller, &fixture("sipp_uac.sdp"), &mut rng())
        .unwrap();
    assert!(lines(&offer, "m=audio")[0].contains(" RTP/AVP "));
}

#[test]
fn first_offer_plain_after_a_refusal_even_from_an_srtp_caller() {
    let tls = policy(Optional, true);
    let mut n = negotiator(tls, tls).with_first_offer(Callee, FirstOffer::Plain);
    let offer = n
        .offer(Caller, &fixture("zoiper_srtp.sdp"), &mut rng())
        .unwrap();
    assert!(lines(&offer, "m=audio")[0].contains(" RTP/AVP "));
    assert!(lines(&offer, "a=crypto").is_empty());
    assert!(!n.pending_offer_is_srtp());
    // The caller keeps SRTP on its own leg.
    let (answer, plan) = n
        .answer(Callee, &callee_answer("0", &[]), &mut rng())
        .unwrap();
    assert_eq!(lines(&answer, "a=crypto:").len(), 1);
    assert!(plan.caller.srtp.is_some() && plan.callee.srtp.is_none());
    // A re-offer from the caller (hold) stays plain towards the callee.
    n.offer(Caller, &fixture("zoiper_srtp.sdp"), &mut rng())
        .map(|offer| assert!(lines(&offer, "a=crypto").is_empty()))
        .unwrap();

    // Required ignores it: SRTP or nothing.
    let mut n = negotiator(tls, policy(Required, true)).with_first_offer(Callee, FirstOffer::Plain);
    let offer = n
        .offer(Caller, &fixture("zoiper_srtp.sdp"), &mut rng())
        .unwrap();
    assert!(lines(&offer, "m=audio")[0].contains(" RTP/SAVP "));
}

#[test]
fn an_optional_leg_keeps_its_profile_on_re_offers() {
    // A plain caller on TLS and an SRTP callee on TLS: the callee's re-offer (hold) is not
    // mirrored as SRTP to the caller, whose session is plain.
    let tls = policy(Optional, true);
    let mut n = negotiator(tls, tls).with_first_offer(Callee, FirstOffer::Srtp);
    n.offer(Caller, &fixture("sipp_uac.sdp"), &mut rng())
        .unwrap();
    let (answer, _) = n
        .answer(
            Callee,
            &savp_answer(1, "AES_CM_128_HMAC_SHA1_80", CALLEE_KEY),
            &mut rng(),
        )
        .unwrap();
    assert!(lines(&answer, "m=audio")[0].contains(" RTP/AVP "));
    let reoffer = n
        .offer(
            Callee,
            &savp_answer(1, "AES_CM_128_HMAC_SHA1_80", CALLEE_KEY),
            &mut rng(),
        )
        .unwrap();
    assert!(
        lines(&reoffer, "m=audio")[0].contains(" RTP/AVP "),
        "{}",
        text(&reoffer)
    );
    assert!(lines(&reoffer, "a=crypto").is_empty());
    let (back, plan) = n
        .answer(Caller, &callee_answer("0", &[]), &mut rng())
        .unwrap();
    assert_eq!(lines(&back, "a=crypto:").len(), 1, "the callee keeps SRTP");
    assert!(plan.callee.srtp.is_some() && plan.caller.srtp.is_none());
}

#[test]
fn keys_in_clear_need_permission() {
    // Required towards a callee on UDP: no keys in clear.
    let mut n = negotiator(plain(), policy(Required, false));
    let e = n
        .offer(Caller, &fixture("sipp_uac.sdp"), &mut rng())
        .unwrap_err();
    assert_eq!(
        (e.clone(), e.status()),
        (NegotiationError::KeysInClear(Callee), 488)
    );

    let allowed = LegPolicy {
        allow_keys_in_clear: true,
        ..policy(Required, false)
    };
    let mut n = negotiator(plain(), allowed);
    let offer = n
        .offer(Caller, &fixture("sipp_uac.sdp"), &mut rng())
        .unwrap();
    assert_eq!(lines(&offer, "a=crypto").len(), 2);

    // An SRTP-only caller on UDP cannot be answered with keys.
    let mut n = negotiator(plain(), plain());
    let e = n
        .offer(Caller, &fixture("deskphone_savp.sdp"), &mut rng())
        .unwrap_err();
    assert_eq!(e, NegotiationError::KeysInClear(Caller));
    let allowed = LegPolicy {
        allow_keys_in_clear: true,
        ..plain()
    };
    let mut n = negotiator(allowed, plain());
    assert!(
        n.offer(Caller, &fixture("deskphone_savp.sdp"), &mut rng())
            .is_ok()
    );
}

#[test]
fn policy_refusals() {
    let mut n = negotiator(policy(Required, true), plain());
    let e = n
        .offer(Caller, &fixture("baresip.sdp"), &mut rng())
        .unwrap_err();
    assert_eq!(
        (e.clone(), e.status()),
        (NegotiationError::EncryptionRequired(Caller), 488)
    );
    assert_eq!(e.reason(), "SRTP required");

    let mut n = negotiator(policy(Off, true), plain());
    let e = n
        .offer(Caller, &fixture("zoiper_srtp.sdp"), &mut rng())
        .unwrap_err();
    assert_eq!(
        (e.clone(), e.status()),
        (NegotiationError::EncryptionDisabled(Caller), 488)
    );

    // A callee with SRTP off gets RTP even from a Required caller.
    let mut n = negotiator(policy(Required, true), policy(Off, true));
    let offer = n
        .offer(Caller, &fixture("zoiper_srtp.sdp"), &mut rng())
        .unwrap();
    assert!(lines(&offer, "a=crypto").is_empty());
}

#[test]
fn first_usable_crypto_line_wins() {
    // baresip offers AES_256 first: skipped (RFC 4568 §6.1), tag 2 answered.
    let mut n = negotiator(policy(Optional, true), plain());
    n.offer(Caller, &fixture("baresip_srtp_mand.sdp"), &mut rng())
        .unwrap();
    let (answer, plan) = n
        .answer(Callee, &callee_answer("0", &[]), &mut rng())
        .unwrap();
    let reply = lines(&answer, "a=crypto:");
    assert_eq!(reply.len(), 1);
    assert!(reply[0].starts_with("a=crypto:2 AES_CM_128_HMAC_SHA1_80 inline:"));
    let caller = plan.caller.srtp.unwrap();
    assert_eq!(
        caller.inbound,
        key(BARESIP_KEY, CryptoSuite::AesCm128HmacSha1_80)
    );

    // A lifetime (|2^31) is fine.
    let mut n = negotiator(policy(Optional, true), plain());
    n.offer(Caller, &fixture("deskphone_savp.sdp"), &mut rng())
        .unwrap();
    let (answer, _) = n
        .answer(Callee, &callee_answer("0", &[]), &mut rng())
        .unwrap();
    assert_eq!(
        lines(&answer, "a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:").len(),
        1
    );
}

#[test]
fn aead_gcm_has_a_shorter_salt() {
    let gcm = STANDARD.encode([9u8; 28]);
    let offer = sdp(&[
        "v=0",
        "c=IN IP4 10.0.0.40",
        "m=audio 11780 RTP/SAVP 0",
        &format!("a=crypto:7 AEAD_AES_128_GCM inline:{gcm}"),
    ]);
    let mut n = negotiator(policy(Optional, true), plain());
    n.offer(Caller, &offer, &mut rng()).unwrap();
    let (answer, plan) = n
        .answer(Callee, &callee_answer("0", &[]), &mut rng())
        .unwrap();
    let k = crypto_key(&answer, 7);
    assert_eq!(STANDARD.decode(k).unwrap().len(), 28);
    assert_eq!(
        plan.caller.srtp.unwrap().outbound.suite,
        CryptoSuite::AeadAes128Gcm
    );
}

#[test]
fn unusable_crypto() {
    let mki = sdp(&[
        "v=0",
        "c=IN IP4 10.0.0.40",
        "m=audio 11780 RTP/SAVP 0",
        &format!("a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:{ZOIPER_KEY}|2^20|1:4"),
        &format!("a=crypto:2 AES_CM_128_HMAC_SHA1_80 inline:{ZOIPER_KEY} UNENCRYPTED_SRTP"),
    ]);
    let mut n = negotiator(policy(Optional, true), plain());
    let e = n.offer(Caller, &mki, &mut rng()).unwrap_err();
    assert_eq!(
        (e.clone(), e.status()),
        (NegotiationError::NoAcceptableCrypto(Caller), 488)
    );

    // The callee answers a tag or suite the PBX did not offer.
    for (tag, suite) in [
        (3, "AES_CM_128_HMAC_SHA1_80"),
        (1, "AES_CM_128_HMAC_SHA1_32"),
    ] {
        let mut n = negotiator(plain(), policy(Required, true));
        n.offer(Caller, &fixture("sipp_uac.sdp"), &mut rng())
            .unwrap();
        let e = n
            .answer(Callee, &savp_answer(tag, suite, CALLEE_KEY), &mut rng())
            .unwrap_err();
        assert_eq!(e, NegotiationError::NoAcceptableCrypto(Callee));
    }
}

#[test]
fn best_effort_srtp_on_rtp_avp() {
    let offer = sdp(&[
        "v=0",
        "c=IN IP4 192.168.0.3",
        "m=audio 10328 RTP/AVP 0",
        &format!("a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:{ZOIPER_KEY}"),
    ]);
    // On TLS: answered with a key on RTP/AVP, mirrored as SRTP to an Optional TLS callee.
    let mut n = negotiator(policy(Optional, true), policy(Optional, true));
    let out = n.offer(Caller, &offer, &mut rng()).unwrap();
    assert!(lines(&out, "m=audio")[0].contains(" RTP/SAVP "));
    let answer = savp_answer(1, "AES_CM_128_HMAC_SHA1_80", CALLEE_KEY);
    let (answer, plan) = n.answer(Callee, &answer, &mut rng()).unwrap();
    assert!(lines(&answer, "m=audio")[0].contains(" RTP/AVP "));
    assert_eq!(lines(&answer, "a=crypto:1 ").len(), 1);
    assert!(plan.caller.srtp.is_some() && plan.callee.srtp.is_some());

    // On UDP: plain RTP, no key in clear.
    let mut n = negotiator(plain(), plain());
    n.offer(Caller, &offer, &mut rng()).unwrap();
    let (answer, plan) = n
        .answer(Callee, &callee_answer("0", &[]), &mut rng())
        .unwrap();
    assert!(lines(&answer, "a=crypto").is_empty());
    assert!(plan.caller.srtp.is_none());

    // SRTP off for the caller: the crypto is ignored.
    let mut n = negotiator(policy(Off, true), plain());
    n.offer(Caller, &offer, &mut rng()).unwrap();
    let (answer, _) = n
        .answer(Callee, &callee_answer("0", &[]), &mut rng())
        .unwrap();
    assert!(lines(&answer, "a=crypto").is_empty());
}

#[test]
fn a_plain_answer_to_an_optional_srtp_offer_is_taken_as_plain() {
    let avp_answer = sdp(&[
        "v=0",
        "o=callee 1 1 IN IP4 198.51.100.20",
        "s=-",
        "c=IN IP4 198.51.100.20",
        "t=0 0",
        "m=audio 40000 RTP/AVP 0",
    ]);
    // Optional: the SRTP offer was best effort; the plain answer stands, both legs plain.
    let mut n =
        negotiator(plain(), policy(Optional, true)).with_first_offer(Callee, FirstOffer::Srtp);
    n.offer(Caller, &fixture("sipp_uac.sdp"), &mut rng())
        .unwrap();
    assert!(n.pending_offer_is_srtp());
    let (answer, plan) = n.answer(Callee, &avp_answer, &mut rng()).unwrap();
    assert!(lines(&answer, "m=audio")[0].contains(" RTP/AVP "));
    assert!(plan.callee.srtp.is_none() && plan.caller.srtp.is_none());

    // Required: a plain answer is no answer to its offer.
    let mut n = negotiator(plain(), policy(Required, true));
    n.offer(Caller, &fixture("sipp_uac.sdp"), &mut rng())
        .unwrap();
    let e = n.answer(Callee, &avp_answer, &mut rng()).unwrap_err();
    assert_eq!(e, NegotiationError::NoAcceptableCrypto(Callee));
}
