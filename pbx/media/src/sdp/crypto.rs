//! SDES `a=crypto` (RFC 4568 §9.1):
//! `a=crypto:<tag> <suite> inline:<base64 key||salt>[|<lifetime>][|<MKI>:<length>] [<session params>]`.

use base64::Engine;
use base64::alphabet::STANDARD;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};
use base64::engine::{DecodePaddingMode, general_purpose};

use crate::{CryptoSuite, SrtpKey};

/// Base64 as phones write it: some leave the `=` padding off.
const LENIENT: GeneralPurpose = GeneralPurpose::new(
    &STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// The suites the PBX offers, in its order of preference, with the tags it uses for them.
pub(crate) const OFFERED: [(u32, CryptoSuite); 2] = [
    (1, CryptoSuite::AesCm128HmacSha1_80),
    (2, CryptoSuite::AesCm128HmacSha1_32),
];

/// A usable `a=crypto` line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Crypto {
    pub tag: u32,
    pub key: SrtpKey,
}

/// Reads one `a=crypto` value; `None` when the PBX cannot use it (unknown suite, several
/// keys, an MKI, a session parameter other than WSH, a key of the wrong length), in which
/// case RFC 4568 §6.1 has the answerer try the next line.
pub(crate) fn parse_crypto(value: &str) -> Option<Crypto> {
    let mut tokens = value.split_ascii_whitespace();
    let tag = tokens
        .next()
        .filter(|t| t.len() <= 9)?
        .parse::<u32>()
        .ok()?;
    let suite = CryptoSuite::from_name(tokens.next()?)?;
    let key_params = tokens.next()?;
    // RFC 4568 §6.3.1: WSH (a window size hint) is advisory; KDR, UNENCRYPTED_*, FEC_* and
    // unknown parameters change the SRTP transform, which the relay does not do.
    if tokens.any(|p| !p.starts_with("WSH=")) {
        return None;
    }
    // Several keys (`;`-separated) only make sense with MKIs, which the relay does not use.
    if key_params.contains(';') {
        return None;
    }
    let inline = key_params.strip_prefix("inline:")?;
    let mut parts = inline.split('|');
    let b64 = parts.next()?;
    for part in parts {
        // `<n>` or `2^<n>` is a lifetime: the relay's contexts never get near it in one call.
        // `<mki>:<length>` is an MKI.
        if part.contains(':') {
            return None;
        }
    }
    let key_salt = LENIENT.decode(b64).ok()?;
    if key_salt.len() != suite.key_len() + suite.salt_len() {
        return None;
    }
    Some(Crypto {
        tag,
        key: SrtpKey { suite, key_salt },
    })
}

/// The first line of `lines` the PBX can use (RFC 4568 §6.1: the offerer's order is its
/// preference).
pub(crate) fn first_usable(lines: &[String]) -> Option<Crypto> {
    lines.iter().find_map(|l| parse_crypto(l))
}

/// The value of an `a=crypto` line for a key.
pub(crate) fn format_crypto(tag: u32, key: &SrtpKey) -> String {
    format!(
        "{tag} {} inline:{}",
        key.suite.name(),
        general_purpose::STANDARD.encode(&key.key_salt)
    )
}

/// A fresh master key and salt (RFC 3711 §8.1: random, never reused across sessions).
pub(crate) fn generate(suite: CryptoSuite, rng: &mut impl rand::RngCore) -> SrtpKey {
    let mut key_salt = vec![0; suite.key_len() + suite.salt_len()];
    rng.fill_bytes(&mut key_salt);
    SrtpKey { suite, key_salt }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz";

    #[test]
    fn reads_rfc_4568_examples() {
        let c = parse_crypto(&format!("1 AES_CM_128_HMAC_SHA1_80 inline:{KEY}|2^20")).unwrap();
        assert_eq!(c.tag, 1);
        assert_eq!(c.key.suite, CryptoSuite::AesCm128HmacSha1_80);
        assert_eq!(c.key.key_salt.len(), 30);
        assert_eq!(
            format_crypto(1, &c.key),
            format!("1 AES_CM_128_HMAC_SHA1_80 inline:{KEY}")
        );
        let gcm = general_purpose::STANDARD_NO_PAD.encode([7u8; 28]);
        assert!(parse_crypto(&format!("3 AEAD_AES_128_GCM inline:{gcm} WSH=64")).is_some());
    }

    #[test]
    fn skips_what_it_cannot_use() {
        for bad in [
            format!("1 AES_CM_128_HMAC_SHA1_80 inline:{KEY}|2^20|1:4"),
            format!("1 AES_CM_128_HMAC_SHA1_80 inline:{KEY} UNENCRYPTED_SRTP"),
            format!("1 AES_CM_128_HMAC_SHA1_80 inline:{KEY} KDR=1"),
            format!("1 AES_CM_128_HMAC_SHA1_80 inline:{KEY};inline:{KEY}"),
            format!("1 AES_256_CM_HMAC_SHA1_80 inline:{KEY}"),
            format!("1 AEAD_AES_128_GCM inline:{KEY}"),
            format!("1234567890 AES_CM_128_HMAC_SHA1_80 inline:{KEY}"),
            "1 AES_CM_128_HMAC_SHA1_80 inline:!!!".to_owned(),
            "1 AES_CM_128_HMAC_SHA1_80".to_owned(),
            String::new(),
        ] {
            assert_eq!(parse_crypto(&bad), None, "{bad}");
        }
    }
}
