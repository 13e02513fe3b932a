//! Stateless nonces: the server remembers nothing to validate one, it recomputes the HMAC.
//!
//! Layout before base64url: issue time (u64 BE, unix seconds) ‖ serial (u32 BE) ‖
//! HMAC-SHA256(secret, "nonce" ‖ time ‖ serial ‖ realm) truncated to 128 bits. The serial makes
//! nonces issued in the same second differ, so the nonce-count replay map can be keyed by nonce
//! without two clients colliding.

use super::algorithm::Algorithm;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::digest::{Key, KeyInit};
use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

type HmacSha256 = Hmac<Sha256>;

const TIME_LEN: usize = 8;
const SERIAL_LEN: usize = 4;
/// 128 bits of MAC: forging needs 2^128 work; longer only lengthens every challenge.
const MAC_LEN: usize = 16;
const NONCE_LEN: usize = TIME_LEN + SERIAL_LEN + MAC_LEN;

/// What identifies a nonce this server issued; ordered by age.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) struct NonceKey {
    pub issued: u64,
    pub serial: u32,
}

/// The outcome of checking a nonce the client sent back.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum NonceCheck {
    Fresh(NonceKey),
    Expired,
    /// Not issued with this secret and realm (forged, garbled, or from before a restart).
    Forged,
}

/// Issues and checks nonces, and derives the other secret-dependent values.
pub(crate) struct NonceCodec {
    mac: HmacSha256,
    realm: String,
    lifetime_secs: u64,
}

impl NonceCodec {
    pub(crate) fn new(secret: &[u8; 32], realm: &str, lifetime_secs: u64) -> NonceCodec {
        // HMAC zero-pads keys shorter than the block (RFC 2104 §2), so this is HMAC(secret).
        let mut key = Key::<HmacSha256>::default();
        for (dst, src) in key.iter_mut().zip(secret.iter()) {
            *dst = *src;
        }
        NonceCodec {
            mac: <HmacSha256 as KeyInit>::new(&key),
            realm: realm.to_owned(),
            lifetime_secs,
        }
    }

    fn tag(&self, label: &[u8], data: &[&[u8]]) -> [u8; 32] {
        let mut mac = self.mac.clone();
        mac.update(label);
        for part in data {
            mac.update(part);
        }
        mac.update(self.realm.as_bytes());
        mac.finalize().into_bytes().into()
    }

    fn nonce_mac(&self, key: NonceKey) -> [u8; MAC_LEN] {
        let full = self.tag(
            b"nonce",
            &[&key.issued.to_be_bytes(), &key.serial.to_be_bytes()],
        );
        let mut out = [0u8; MAC_LEN];
        out.copy_from_slice(&full[..MAC_LEN]);
        out
    }

    pub(crate) fn lifetime_secs(&self) -> u64 {
        self.lifetime_secs
    }

    pub(crate) fn issue(&self, key: NonceKey) -> String {
        let mut raw = [0u8; NONCE_LEN];
        raw[..TIME_LEN].copy_from_slice(&key.issued.to_be_bytes());
        raw[TIME_LEN..TIME_LEN + SERIAL_LEN].copy_from_slice(&key.serial.to_be_bytes());
        raw[TIME_LEN + SERIAL_LEN..].copy_from_slice(&self.nonce_mac(key));
        URL_SAFE_NO_PAD.encode(raw)
    }

    pub(crate) fn check(&self, nonce: &str, now_unix: u64) -> NonceCheck {
        let Ok(raw) = URL_SAFE_NO_PAD.decode(nonce) else {
            return NonceCheck::Forged;
        };
        let Ok(raw) = <[u8; NONCE_LEN]>::try_from(raw.as_slice()) else {
            return NonceCheck::Forged;
        };
        let (time, rest) = raw.split_at(TIME_LEN);
        let (serial, mac) = rest.split_at(SERIAL_LEN);
        let (Ok(time), Ok(serial)) = (<[u8; 8]>::try_from(time), <[u8; 4]>::try_from(serial))
        else {
            return NonceCheck::Forged;
        };
        let key = NonceKey {
            issued: u64::from_be_bytes(time),
            serial: u32::from_be_bytes(serial),
        };
        if !bool::from(self.nonce_mac(key).ct_eq(mac)) {
            return NonceCheck::Forged;
        }
        // A nonce from the future means the caller's clock stepped back; it is still ours.
        if now_unix.saturating_sub(key.issued) > self.lifetime_secs {
            NonceCheck::Expired
        } else {
            NonceCheck::Fresh(key)
        }
    }

    /// The `opaque` value: constant per secret and realm, so it needs no state either.
    pub(crate) fn opaque(&self) -> String {
        let tag = self.tag(b"opaque", &[]);
        URL_SAFE_NO_PAD.encode(&tag[..12])
    }

    /// An HA1 no user has, so an unknown username costs the same work as a known one.
    pub(crate) fn dummy_ha1(&self, alg: Algorithm) -> String {
        alg.hash_hex(&self.tag(b"dummy-ha1", &[alg.name().as_bytes()]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn codec() -> NonceCodec {
        NonceCodec::new(&[7u8; 32], "pbx.test", 300)
    }

    #[test]
    fn issued_nonces_check_until_they_expire() {
        let c = codec();
        let key = NonceKey {
            issued: 1_000,
            serial: 3,
        };
        let nonce = c.issue(key);
        assert_eq!(nonce.len(), 38);
        assert!(
            nonce
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        );
        assert_eq!(c.check(&nonce, 1_000), NonceCheck::Fresh(key));
        assert_eq!(c.check(&nonce, 1_300), NonceCheck::Fresh(key));
        assert_eq!(c.check(&nonce, 1_301), NonceCheck::Expired);
        assert_eq!(c.check(&nonce, 900), NonceCheck::Fresh(key));
    }

    #[test]
    fn forged_or_foreign_nonces_fail() {
        let c = codec();
        let nonce = c.issue(NonceKey {
            issued: 1_000,
            serial: 0,
        });
        let other_secret = NonceCodec::new(&[8u8; 32], "pbx.test", 300);
        let other_realm = NonceCodec::new(&[7u8; 32], "other.test", 300);
        assert_eq!(other_secret.check(&nonce, 1_000), NonceCheck::Forged);
        assert_eq!(other_realm.check(&nonce, 1_000), NonceCheck::Forged);
        // Moving the timestamp forward to extend the nonce's life breaks the MAC.
        let mut raw = URL_SAFE_NO_PAD.decode(&nonce).unwrap();
        raw[7] ^= 1;
        assert_eq!(
            c.check(&URL_SAFE_NO_PAD.encode(&raw), 1_000),
            NonceCheck::Forged
        );
        for junk in ["", "x", "!!!!", &nonce[..30], &format!("{nonce}AA")] {
            assert_eq!(c.check(junk, 1_000), NonceCheck::Forged, "{junk}");
        }
    }

    #[test]
    fn opaque_and_dummy_depend_on_the_secret() {
        let a = codec();
        let b = NonceCodec::new(&[8u8; 32], "pbx.test", 300);
        assert_eq!(a.opaque(), codec().opaque());
        assert_ne!(a.opaque(), b.opaque());
        assert_eq!(a.dummy_ha1(Algorithm::Md5).len(), 32);
        assert_eq!(a.dummy_ha1(Algorithm::Sha256).len(), 64);
        assert_ne!(a.dummy_ha1(Algorithm::Md5), b.dummy_ha1(Algorithm::Md5));
    }
}
