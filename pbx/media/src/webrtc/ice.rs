//! The ICE-lite responder (RFC 8445 §2.5, §7.3): the PBX has one host candidate per leg and
//! never checks; it answers the browser's Binding requests, learns from them where the
//! browser is, and watches them for consent (RFC 7675).
//!
//! A check is valid when its USERNAME starts with the PBX's ufrag (RFC 8445 §7.3.1.1 says
//! `<receiver ufrag>:<sender ufrag>`), its MESSAGE-INTEGRITY verifies with the PBX's password
//! (short-term credentials, RFC 8489 §9.1) and its FINGERPRINT is right (RFC 8445 §7.2.2).
//! Anything else gets no answer: an unauthenticated request must not teach the PBX an
//! address, and staying silent gives a scanner nothing.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use rtc_dtls::crypto_provider::RTCCrypto;
use rtc_stun::attributes::{ATTR_USE_CANDIDATE, ATTR_USERNAME};
use rtc_stun::fingerprint::FINGERPRINT;
use rtc_stun::integrity::MessageIntegrity;
use rtc_stun::message::{BINDING_REQUEST, BINDING_SUCCESS, Message, Setter};
use rtc_stun::textattrs::TextAttribute;
use rtc_stun::xoraddr::XorMappedAddress;

use crate::IceCredentials;

/// RFC 7675 §5.1: consent expires 30 s after the last authenticated check.
pub const CONSENT_TIMEOUT: Duration = Duration::from_secs(30);

/// What a datagram that looked like STUN came to.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Check {
    /// A valid Binding request from `from`: answer it with `response`. `nominated` is its
    /// USE-CANDIDATE (RFC 8445 §7.3.1.5): the browser picked this pair.
    Valid {
        from: SocketAddr,
        nominated: bool,
        response: Vec<u8>,
    },
    /// Not for us, or not authentic: no answer.
    Ignored,
}

/// One leg's ICE-lite state.
pub(crate) struct IceLite {
    local: IceCredentials,
    remote: IceCredentials,
    /// Where the browser's checks came from: the nominated pair once there is one, else the
    /// first valid check (RFC 8445 §7.3.1.5: a lite agent may use a pair before nomination).
    selected: Option<SocketAddr>,
    nominated: bool,
    /// The last valid check, or when the leg started: consent counts from here.
    consent_since: Instant,
    lost: bool,
}

impl IceLite {
    pub(crate) fn new(now: Instant, local: IceCredentials, remote: IceCredentials) -> IceLite {
        IceLite {
            local,
            remote,
            selected: None,
            nominated: false,
            consent_since: now,
            lost: false,
        }
    }

    /// The browser's address for media and DTLS, once a check proved it.
    pub(crate) fn selected(&self) -> Option<SocketAddr> {
        self.selected
    }

    /// Handles a datagram whose first byte says STUN (RFC 7983 §7: 0-3).
    pub(crate) fn handle_stun(
        &mut self,
        now: Instant,
        from: SocketAddr,
        pkt: &[u8],
        crypto: &dyn RTCCrypto,
    ) -> Check {
        let Some(response) = self.verify_and_answer(from, pkt, crypto) else {
            return Check::Ignored;
        };
        let nominated = response.1;
        // RFC 7675 §5.1: an authenticated check refreshes consent.
        self.consent_since = now;
        if nominated || self.selected.is_none() {
            // RFC 8445 §8.1.1: the nominated pair is the one media uses; a newer nomination
            // (the browser moved, an ICE restart of its side) replaces it.
            self.selected = Some(from);
        }
        self.nominated |= nominated;
        Check::Valid {
            from,
            nominated,
            response: response.0,
        }
    }

    fn verify_and_answer(
        &self,
        from: SocketAddr,
        pkt: &[u8],
        crypto: &dyn RTCCrypto,
    ) -> Option<(Vec<u8>, bool)> {
        let mut m = Message::new();
        m.unmarshal_binary(pkt).ok()?;
        // Indications (keepalives, RFC 8445 §11) and responses need no answer.
        if m.typ != BINDING_REQUEST {
            return None;
        }
        let username = TextAttribute::get_from_as(&m, ATTR_USERNAME).ok()?;
        let (receiver, sender) = username.text.split_once(':')?;
        if receiver != self.local.ufrag || sender != self.remote.ufrag {
            return None;
        }
        // RFC 8489 §14.7: FINGERPRINT is last and covers MESSAGE-INTEGRITY.
        FINGERPRINT.check(&m).ok()?;
        MessageIntegrity::check(&mut m, self.local.pwd.as_bytes(), crypto).ok()?;
        let nominated = m.contains(ATTR_USE_CANDIDATE);

        let mut out = Message::new();
        out.write_header();
        let integrity = MessageIntegrity::new_short_term_integrity_with_provider(
            self.local.pwd.clone(),
            crypto,
        );
        let mapped = XorMappedAddress {
            ip: from.ip(),
            port: from.port(),
        };
        // RFC 8445 §7.3.1.4: a success response with XOR-MAPPED-ADDRESS set to the source,
        // MESSAGE-INTEGRITY with the same password, then FINGERPRINT.
        let setters: [&dyn Setter; 5] = [&m, &BINDING_SUCCESS, &mapped, &integrity, &FINGERPRINT];
        for s in setters {
            s.add_to(&mut out).ok()?;
        }
        Some((out.raw, nominated))
    }

    /// When consent runs out, unless a check comes first.
    pub(crate) fn poll_timeout(&self) -> Option<Instant> {
        (!self.lost).then_some(self.consent_since + CONSENT_TIMEOUT)
    }

    /// True once, when consent has expired (RFC 7675 §5.1: stop sending; the call is dead).
    pub(crate) fn handle_timeout(&mut self, now: Instant) -> bool {
        if !self.lost && now >= self.consent_since + CONSENT_TIMEOUT {
            self.lost = true;
            return true;
        }
        false
    }

    /// Whether the browser still consents to receive (RFC 7675 §5.1).
    pub(crate) fn has_consent(&self) -> bool {
        !self.lost
    }
}

/// A Binding request as a browser sends it, for tests (here and in `webrtc.rs`).
#[cfg(test)]
pub(crate) fn binding_request(
    username: &str,
    pwd: &str,
    use_candidate: bool,
    crypto: &dyn RTCCrypto,
) -> Vec<u8> {
    use rtc_stun::attributes::RawAttribute;
    use rtc_stun::message::TransactionId;
    let mut m = Message::new();
    m.write_header();
    let user = TextAttribute::new(ATTR_USERNAME, username.to_owned());
    let integrity =
        MessageIntegrity::new_short_term_integrity_with_provider(pwd.to_owned(), crypto);
    let nominate = RawAttribute {
        typ: ATTR_USE_CANDIDATE,
        length: 0,
        value: Vec::new(),
    };
    let tid = TransactionId([7; 12]);
    let mut setters: Vec<&dyn Setter> = vec![&BINDING_REQUEST, &tid, &user];
    if use_candidate {
        setters.push(&nominate);
    }
    setters.push(&integrity);
    setters.push(&FINGERPRINT);
    for s in setters {
        s.add_to(&mut m).expect("test request");
    }
    m.raw
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::webrtc::tests::base;
    use rtc_stun::message::{CLASS_SUCCESS_RESPONSE, Getter};

    fn creds(u: &str, p: &str) -> IceCredentials {
        IceCredentials {
            ufrag: u.into(),
            pwd: p.into(),
        }
    }

    fn lite(now: Instant) -> IceLite {
        IceLite::new(
            now,
            creds("pbxu", "pbx-password-0123456789"),
            creds("brow", "browser-password-012345"),
        )
    }

    fn provider() -> std::sync::Arc<dyn rtc_dtls::crypto_provider::RTCCryptoProvider> {
        rtc_dtls::crypto_provider::default_provider().expect("ring")
    }

    #[test]
    fn answers_a_valid_check_with_integrity_and_the_source_address() {
        let p = provider();
        let t0 = base();
        let mut ice = lite(t0);
        let from: SocketAddr = "198.51.100.7:50000".parse().unwrap();
        let req = binding_request("pbxu:brow", "pbx-password-0123456789", false, p.crypto());
        let Check::Valid {
            nominated,
            response,
            ..
        } = ice.handle_stun(t0, from, &req, p.crypto())
        else {
            panic!("a valid check is answered");
        };
        assert!(!nominated);
        let mut m = Message::new();
        m.unmarshal_binary(&response).unwrap();
        assert_eq!(m.typ.class, CLASS_SUCCESS_RESPONSE);
        assert_eq!(m.transaction_id.0, [7; 12]);
        FINGERPRINT.check(&m).expect("fingerprint");
        MessageIntegrity::check(&mut m, b"pbx-password-0123456789", p.crypto())
            .expect("integrity with the PBX's password");
        let mut mapped = XorMappedAddress::default();
        mapped.get_from(&m).unwrap();
        assert_eq!(SocketAddr::new(mapped.ip, mapped.port), from);
        assert_eq!(ice.selected(), Some(from));
    }

    #[test]
    fn refuses_a_wrong_password_a_wrong_ufrag_and_garbage() {
        let p = provider();
        let t0 = base();
        let mut ice = lite(t0);
        let from: SocketAddr = "198.51.100.7:50000".parse().unwrap();
        let bad_pwd = binding_request("pbxu:brow", "not-the-password-at-all", true, p.crypto());
        assert_eq!(
            ice.handle_stun(t0, from, &bad_pwd, p.crypto()),
            Check::Ignored
        );
        let bad_user = binding_request("other:brow", "pbx-password-0123456789", true, p.crypto());
        assert_eq!(
            ice.handle_stun(t0, from, &bad_user, p.crypto()),
            Check::Ignored
        );
        assert_eq!(
            ice.handle_stun(t0, from, &[0, 1, 0, 0], p.crypto()),
            Check::Ignored
        );
        let mut tampered =
            binding_request("pbxu:brow", "pbx-password-0123456789", true, p.crypto());
        tampered[20 + 4] ^= 1; // inside USERNAME
        assert_eq!(
            ice.handle_stun(t0, from, &tampered, p.crypto()),
            Check::Ignored
        );
        assert_eq!(ice.selected(), None, "nothing unauthenticated is learnt");
    }

    #[test]
    fn the_nominated_pair_wins_and_consent_expires_after_30_s_without_checks() {
        let p = provider();
        let t0 = base();
        let mut ice = lite(t0);
        let a: SocketAddr = "198.51.100.7:50000".parse().unwrap();
        let b: SocketAddr = "203.0.113.9:40000".parse().unwrap();
        let plain = binding_request("pbxu:brow", "pbx-password-0123456789", false, p.crypto());
        let nominate = binding_request("pbxu:brow", "pbx-password-0123456789", true, p.crypto());
        let _ = ice.handle_stun(t0, a, &plain, p.crypto());
        let _ = ice.handle_stun(t0, b, &plain, p.crypto());
        assert_eq!(
            ice.selected(),
            Some(a),
            "first valid check until a nomination"
        );
        let _ = ice.handle_stun(t0 + Duration::from_secs(1), b, &nominate, p.crypto());
        assert_eq!(ice.selected(), Some(b));
        // Checks every few seconds keep consent (browsers send one every ~5 s).
        let t = t0 + Duration::from_secs(20);
        let _ = ice.handle_stun(t, b, &plain, p.crypto());
        assert!(!ice.handle_timeout(t + Duration::from_secs(29)));
        assert_eq!(ice.poll_timeout(), Some(t + CONSENT_TIMEOUT));
        assert!(ice.handle_timeout(t + CONSENT_TIMEOUT));
        assert!(!ice.has_consent());
        assert!(
            !ice.handle_timeout(t + CONSENT_TIMEOUT * 2),
            "reported once"
        );
        assert_eq!(ice.poll_timeout(), None);
    }
}
