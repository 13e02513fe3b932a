//! SRTP <-> plain through the bridge, checked against independent `rtc-srtp` contexts made
//! from the same SDES keys, for every suite the PBX offers.

mod relay_support;

use pbx_media::relay::{Component, DropReason, Verdict};
use pbx_media::session::MediaSession;
use pbx_media::{CryptoSuite, LegPlan, MediaPlan, Side, SrtpKey, SrtpPair};
use relay_support::{addr, base, feed, leg, plan, rtcp_rr, rtp};
use rtc_srtp::context::Context;
use rtc_srtp::protection_profile::ProtectionProfile;

const CALLER: &str = "192.0.2.10:4000";
const CALLER_RTCP: &str = "192.0.2.10:4001";
const CALLEE: &str = "198.51.100.20:6000";

const SUITES: [CryptoSuite; 3] = [
    CryptoSuite::AesCm128HmacSha1_80,
    CryptoSuite::AesCm128HmacSha1_32,
    CryptoSuite::AeadAes128Gcm,
];

fn key(suite: CryptoSuite, fill: u8) -> SrtpKey {
    let len = suite.key_len() + suite.salt_len();
    SrtpKey {
        suite,
        key_salt: (0..len as u8).map(|i| i.wrapping_mul(31) ^ fill).collect(),
    }
}

fn pair(suite: CryptoSuite, inbound: u8, outbound: u8) -> SrtpPair {
    SrtpPair {
        inbound: key(suite, inbound),
        outbound: key(suite, outbound),
    }
}

/// A context of our own, as the phone would have.
fn phone_ctx(k: &SrtpKey) -> Context {
    let profile = match k.suite {
        CryptoSuite::AesCm128HmacSha1_80 => ProtectionProfile::Aes128CmHmacSha1_80,
        CryptoSuite::AesCm128HmacSha1_32 => ProtectionProfile::Aes128CmHmacSha1_32,
        CryptoSuite::AeadAes128Gcm => ProtectionProfile::AeadAes128Gcm,
    };
    let (master_key, salt) = k.key_salt.split_at(k.suite.key_len());
    let provider = rtc_srtp::crypto::default_provider().expect("ring provider");
    Context::new(master_key, salt, profile, None, None, provider.crypto()).expect("context")
}

/// Caller on SRTP, callee plain, with a PT rewrite toward the callee.
fn srtp_caller_plan(suite: CryptoSuite) -> (MediaPlan, SrtpPair) {
    let keys = pair(suite, 0x11, 0x22);
    let caller = LegPlan {
        srtp: Some(keys.clone()),
        pt_map: vec![(8, 0)],
        ..leg(CALLER)
    };
    let callee = LegPlan {
        pt_map: vec![(0, 8)],
        ..leg(CALLEE)
    };
    (plan(caller, callee), keys)
}

#[test]
fn srtp_caller_to_plain_callee_and_back() {
    for suite in SUITES {
        let now = base();
        let (p, keys) = srtp_caller_plan(suite);
        let mut b = MediaSession::relay(now);
        b.apply(now, &p).expect("plan");
        let mut phone_tx = phone_ctx(&keys.inbound);
        let mut phone_rx = phone_ctx(&keys.outbound);

        for seq in 0..5u16 {
            // Caller -> callee: the callee gets the exact plain packet, PT 0 -> 8.
            let plain = rtp(
                0,
                seq == 0,
                1000 + seq,
                160 * u32::from(seq),
                0xca11,
                &[seq as u8; 160],
            );
            let wire = phone_tx.encrypt_rtp(&plain).expect("encrypt");
            assert!(wire.len() > plain.len());
            let (v, out) = feed(
                &mut b,
                now,
                Side::Caller,
                Component::Rtp,
                addr(CALLER),
                &wire,
            );
            assert!(
                matches!(
                    v,
                    Verdict::Forward {
                        side: Side::Callee,
                        ..
                    }
                ),
                "{suite:?}: {v:?}"
            );
            let expected = rtp(
                8,
                seq == 0,
                1000 + seq,
                160 * u32::from(seq),
                0xca11,
                &[seq as u8; 160],
            );
            assert_eq!(out, expected, "{suite:?}");

            // Callee -> caller: the bridge encrypts with the caller's outbound key.
            let plain = rtp(8, false, 7 + seq, 99, 0xbeef, &[0x5a ^ seq as u8; 160]);
            let (v, out) = feed(
                &mut b,
                now,
                Side::Callee,
                Component::Rtp,
                addr(CALLEE),
                &plain,
            );
            assert!(
                matches!(
                    v,
                    Verdict::Forward {
                        side: Side::Caller,
                        ..
                    }
                ),
                "{suite:?}"
            );
            assert_ne!(
                &out[12..],
                &plain[12..],
                "{suite:?}: payload must be encrypted"
            );
            let decrypted = phone_rx.decrypt_rtp(&out).expect("phone decrypts");
            assert_eq!(
                &decrypted[..],
                &rtp(0, false, 7 + seq, 99, 0xbeef, &[0x5a ^ seq as u8; 160])[..]
            );
        }
        assert_eq!(b.stats().relayed_total().packets, 10);
        assert_eq!(b.stats().srtp_auth_failures(), 0);
    }
}

#[test]
fn srtcp_both_ways() {
    for suite in SUITES {
        let now = base();
        let (p, keys) = srtp_caller_plan(suite);
        let mut b = MediaSession::relay(now);
        b.apply(now, &p).expect("plan");
        let mut phone_tx = phone_ctx(&keys.inbound);
        let mut phone_rx = phone_ctx(&keys.outbound);

        let rr = rtcp_rr(0xca11);
        let wire = phone_tx.encrypt_rtcp(&rr).expect("encrypt");
        let (v, out) = feed(
            &mut b,
            now,
            Side::Caller,
            Component::Rtcp,
            addr(CALLER_RTCP),
            &wire,
        );
        assert!(
            matches!(
                v,
                Verdict::Forward {
                    component: Component::Rtcp,
                    ..
                }
            ),
            "{suite:?} {v:?}"
        );
        assert_eq!(out, rr, "{suite:?}");

        let rr = rtcp_rr(0xbeef);
        let (v, out) = feed(
            &mut b,
            now,
            Side::Callee,
            Component::Rtcp,
            addr("198.51.100.20:6001"),
            &rr,
        );
        assert_eq!(
            v,
            Verdict::Forward {
                side: Side::Caller,
                component: Component::Rtcp,
                to: addr(CALLER_RTCP),
                len: out.len()
            }
        );
        let decrypted = phone_rx.decrypt_rtcp(&out).expect("phone decrypts SRTCP");
        assert_eq!(&decrypted[..], &rr[..], "{suite:?}");
    }
}

#[test]
fn srtp_on_both_legs_with_their_own_keys() {
    let now = base();
    let caller_keys = pair(CryptoSuite::AesCm128HmacSha1_80, 1, 2);
    let callee_keys = pair(CryptoSuite::AeadAes128Gcm, 3, 4);
    let caller = LegPlan {
        srtp: Some(caller_keys.clone()),
        ..leg(CALLER)
    };
    let callee = LegPlan {
        srtp: Some(callee_keys.clone()),
        ..leg(CALLEE)
    };
    let mut b = MediaSession::relay(now);
    b.apply(now, &plan(caller, callee)).expect("plan");
    let plain = rtp(0, false, 1, 2, 3, &[0x42; 160]);
    let wire = phone_ctx(&caller_keys.inbound)
        .encrypt_rtp(&plain)
        .expect("encrypt");
    let (_, out) = feed(
        &mut b,
        now,
        Side::Caller,
        Component::Rtp,
        addr(CALLER),
        &wire,
    );
    let got = phone_ctx(&callee_keys.outbound)
        .decrypt_rtp(&out)
        .expect("callee decrypts");
    assert_eq!(&got[..], &plain[..]);
}

#[test]
fn authentication_failure_is_dropped_counted_and_does_not_latch() {
    for suite in SUITES {
        let now = base();
        let (p, keys) = srtp_caller_plan(suite);
        let mut b = MediaSession::relay(now);
        b.apply(now, &p).expect("plan");
        let mut phone_tx = phone_ctx(&keys.inbound);
        let plain = rtp(0, false, 1, 2, 3, &[7; 160]);
        let mut wire = phone_tx.encrypt_rtp(&plain).expect("encrypt").to_vec();
        let last = wire.len() - 1;
        wire[last] ^= 1;
        let attacker = addr("203.0.113.66:4000");
        let (v, _) = feed(&mut b, now, Side::Caller, Component::Rtp, attacker, &wire);
        assert_eq!(v, Verdict::Drop(DropReason::SrtpAuth), "{suite:?}");
        assert_eq!(b.stats().srtp_auth_failures(), 1);
        assert_eq!(
            b.latched(Side::Caller, Component::Rtp),
            None,
            "forged packets must not latch"
        );

        // A key from someone else fails the same way; plain RTP too.
        let forged = phone_ctx(&key(suite, 0x99))
            .encrypt_rtp(&plain)
            .expect("encrypt");
        let (v, _) = feed(&mut b, now, Side::Caller, Component::Rtp, attacker, &forged);
        assert_eq!(v, Verdict::Drop(DropReason::SrtpAuth));
        let (v, _) = feed(&mut b, now, Side::Caller, Component::Rtp, attacker, &plain);
        assert!(
            matches!(
                v,
                Verdict::Drop(DropReason::SrtpAuth | DropReason::SrtpError)
            ),
            "{v:?}"
        );
        assert_eq!(b.stats().relayed_total().packets, 0);

        // The real phone still gets through and latches.
        let wire = phone_tx
            .encrypt_rtp(&rtp(0, false, 2, 2, 3, &[7; 160]))
            .expect("encrypt");
        let (v, _) = feed(
            &mut b,
            now,
            Side::Caller,
            Component::Rtp,
            addr(CALLER),
            &wire,
        );
        assert!(matches!(v, Verdict::Forward { .. }), "{suite:?} {v:?}");
        assert_eq!(b.latched(Side::Caller, Component::Rtp), Some(addr(CALLER)));
    }
}

#[test]
fn replays_are_dropped_and_contexts_survive_a_replan() {
    let now = base();
    let (p, keys) = srtp_caller_plan(CryptoSuite::AesCm128HmacSha1_80);
    let mut b = MediaSession::relay(now);
    b.apply(now, &p).expect("plan");
    let wire = phone_ctx(&keys.inbound)
        .encrypt_rtp(&rtp(0, false, 10, 2, 3, &[7; 160]))
        .expect("encrypt");
    let (v, _) = feed(
        &mut b,
        now,
        Side::Caller,
        Component::Rtp,
        addr(CALLER),
        &wire,
    );
    assert!(matches!(v, Verdict::Forward { .. }));
    let (v, _) = feed(
        &mut b,
        now,
        Side::Caller,
        Component::Rtp,
        addr(CALLER),
        &wire,
    );
    assert_eq!(v, Verdict::Drop(DropReason::SrtpReplay));

    // Same keys in a new plan: the context (and its replay window) is kept.
    b.apply(now, &p).expect("replan");
    let (v, _) = feed(
        &mut b,
        now,
        Side::Caller,
        Component::Rtp,
        addr(CALLER),
        &wire,
    );
    assert_eq!(v, Verdict::Drop(DropReason::SrtpReplay));
    assert_eq!(b.stats().dropped(DropReason::SrtpReplay), 2);
}

#[test]
fn unencrypted_srtcp_is_refused() {
    // RFC 3711 §3.4 E=0: rtc-srtp would not check the tag, so the bridge refuses it.
    let now = base();
    let (p, _) = srtp_caller_plan(CryptoSuite::AesCm128HmacSha1_80);
    let mut b = MediaSession::relay(now);
    b.apply(now, &p).expect("plan");
    let mut pkt = rtcp_rr(0xca11);
    pkt.extend_from_slice(&[0, 0, 0, 1]); // E=0, index 1
    pkt.extend_from_slice(&[0; 10]); // a tag nobody checks
    let (v, _) = feed(
        &mut b,
        now,
        Side::Caller,
        Component::Rtcp,
        addr(CALLER_RTCP),
        &pkt,
    );
    assert_eq!(v, Verdict::Drop(DropReason::SrtpError));
}

#[test]
fn a_bad_key_is_refused_and_the_old_plan_stays() {
    let now = base();
    let (good, keys) = srtp_caller_plan(CryptoSuite::AesCm128HmacSha1_80);
    let mut b = MediaSession::relay(now);
    b.apply(now, &good).expect("plan");
    let mut bad = good.clone();
    if let Some(k) = bad.caller.srtp.as_mut() {
        k.inbound.key_salt.truncate(20);
    }
    let err = b.apply(now, &bad).expect_err("short key");
    assert!(err.to_string().contains("30"), "{err}");
    // Still relaying with the old contexts.
    let wire = phone_ctx(&keys.inbound)
        .encrypt_rtp(&rtp(0, false, 1, 2, 3, &[1; 20]))
        .expect("encrypt");
    let (v, _) = feed(
        &mut b,
        now,
        Side::Caller,
        Component::Rtp,
        addr(CALLER),
        &wire,
    );
    assert!(matches!(v, Verdict::Forward { .. }));
}

#[test]
fn forged_ssrcs_cannot_lock_the_phone_out() {
    let now = base();
    let (p, keys) = srtp_caller_plan(CryptoSuite::AesCm128HmacSha1_80);
    let mut b = MediaSession::relay(now);
    b.apply(now, &p).expect("plan");
    let mut forged = phone_ctx(&key(CryptoSuite::AesCm128HmacSha1_80, 0x77));
    let attacker = addr("203.0.113.66:4000");
    for ssrc in 0..1000u32 {
        let wire = forged
            .encrypt_rtp(&rtp(0, false, 1, 2, ssrc, &[1; 20]))
            .expect("encrypt");
        let (v, _) = feed(&mut b, now, Side::Caller, Component::Rtp, attacker, &wire);
        assert_eq!(v, Verdict::Drop(DropReason::SrtpAuth));
    }
    assert_eq!(b.stats().srtp_auth_failures(), 1000);
    // The real phone, with an SSRC never seen, still gets through and latches.
    let wire = phone_ctx(&keys.inbound)
        .encrypt_rtp(&rtp(0, false, 1, 2, 0xca11, &[1; 20]))
        .expect("encrypt");
    let (v, _) = feed(
        &mut b,
        now,
        Side::Caller,
        Component::Rtp,
        addr(CALLER),
        &wire,
    );
    assert!(matches!(v, Verdict::Forward { .. }), "{v:?}");
    // From then on the attacker is not even decrypted.
    let wire = forged
        .encrypt_rtp(&rtp(0, false, 9, 2, 5, &[1; 20]))
        .expect("encrypt");
    let (v, _) = feed(&mut b, now, Side::Caller, Component::Rtp, attacker, &wire);
    assert_eq!(v, Verdict::Drop(DropReason::UnexpectedSource));
}

#[test]
fn overrunning_header_extensions_are_refused_toward_srtp() {
    // Found by the `relay` fuzz target: an RFC 8285 element longer than its block made
    // rtc-srtp 0.21.1 panic in encrypt_rtp. Plain RTP carrying one toward an SRTP leg is
    // dropped instead.
    let now = base();
    let (p, _) = srtp_caller_plan(CryptoSuite::AesCm128HmacSha1_80);
    let mut b = MediaSession::relay(now);
    b.apply(now, &p).expect("plan");
    let mut pkt = rtp(
        0,
        false,
        1,
        2,
        3,
        &[0xbe, 0xde, 0, 1, 0x1f, 0, 0, 0, 9, 9, 9, 9],
    );
    pkt[0] |= 0x10;
    let (v, _) = feed(
        &mut b,
        now,
        Side::Callee,
        Component::Rtp,
        addr(CALLEE),
        &pkt,
    );
    assert_eq!(v, Verdict::Drop(DropReason::SrtpError));
}

#[test]
fn srtp_sent_before_the_plan_is_decrypted_with_the_plan_keys() {
    // The SRTP caller's first packet came before its keys reached the relay (the plan): it
    // is kept as it came and authenticated, decrypted and relayed once they are there.
    for suite in SUITES {
        let t0 = base();
        let (p, keys) = srtp_caller_plan(suite);
        let mut b = MediaSession::relay(t0);
        let mut phone_tx = phone_ctx(&keys.inbound);
        let plain = rtp(0, true, 1, 0, 0xca11, &[0x42; 160]);
        let wire = phone_tx.encrypt_rtp(&plain).expect("encrypt");
        let (v, _) = feed(
            &mut b,
            t0,
            Side::Caller,
            Component::Rtp,
            addr(CALLER),
            &wire,
        );
        assert_eq!(v, Verdict::Held, "{suite:?}");
        b.apply(t0, &p).expect("plan");
        let mut buf = [0u8; 2048];
        let t = b
            .poll_transmit(t0, &mut buf)
            .expect("the held packet is relayed");
        assert_eq!((t.side, t.to), (Side::Callee, addr(CALLEE)), "{suite:?}");
        // Decrypted, PT 0 -> 8 as for any packet of this plan.
        assert_eq!(
            buf[..t.len],
            rtp(8, true, 1, 0, 0xca11, &[0x42; 160]),
            "{suite:?}"
        );
        assert!(b.poll_transmit(t0, &mut buf).is_none(), "{suite:?}");
        assert_eq!(b.stats().srtp_auth_failures(), 0, "{suite:?}");
    }
}

#[test]
fn strict_rtp_leaves_srtp_legs_to_authentication() {
    // The default (strict) policy: probation is for plain legs. An SRTP phone behind NAT
    // latches on its first authentic packet, from wherever it comes.
    let now = base();
    let (p, keys) = srtp_caller_plan(CryptoSuite::AesCm128HmacSha1_80);
    let mut b = MediaSession::relay(now);
    b.apply(now, &p).expect("plan");
    let nat = addr("203.0.113.7:30000");
    let wire = phone_ctx(&keys.inbound)
        .encrypt_rtp(&rtp(0, false, 1, 2, 0xca11, &[1; 20]))
        .expect("encrypt");
    let (v, _) = feed(&mut b, now, Side::Caller, Component::Rtp, nat, &wire);
    assert!(matches!(v, Verdict::Forward { .. }), "{v:?}");
    assert_eq!(b.latched(Side::Caller, Component::Rtp), Some(nat));
    assert_eq!(b.stats().dropped(DropReason::Probation), 0);
}
