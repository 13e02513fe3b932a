//! Digest hash algorithms (RFC 7616 §3.2, RFC 8760 §2.1) and the HA1 the credential store keeps.

use md5::Md5;
use sha2::{Digest, Sha256};
use std::fmt;
use std::str::FromStr;

/// A digest algorithm the PBX can challenge with. Only the non-`-sess` variants: RFC 8760 §2.1
/// uses the plain forms for SIP, and `-sess` would need per-client server state.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Algorithm {
    Md5,
    Sha256,
}

/// The algorithm token is not one the PBX supports.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("unsupported digest algorithm {0:?}")]
pub struct UnknownAlgorithm(pub String);

impl Algorithm {
    /// The token as it appears in the `algorithm=` parameter.
    pub fn name(self) -> &'static str {
        match self {
            Algorithm::Md5 => "MD5",
            Algorithm::Sha256 => "SHA-256",
        }
    }

    /// Parses the `algorithm=` token; RFC 7616 §3.3 compares it case-insensitively.
    pub fn from_token(token: &str) -> Option<Algorithm> {
        if token.eq_ignore_ascii_case("MD5") {
            Some(Algorithm::Md5)
        } else if token.eq_ignore_ascii_case("SHA-256") {
            Some(Algorithm::Sha256)
        } else {
            None
        }
    }

    /// Lower-case hex of H(data) (RFC 7616 §3.4.1).
    pub fn hash_hex(self, data: &[u8]) -> String {
        match self {
            Algorithm::Md5 => hex::encode(Md5::digest(data)),
            Algorithm::Sha256 => hex::encode(Sha256::digest(data)),
        }
    }

    /// Length in hex characters of this algorithm's digests.
    pub fn hex_len(self) -> usize {
        match self {
            Algorithm::Md5 => 32,
            Algorithm::Sha256 => 64,
        }
    }

    /// KD(secret, data) = H(secret ":" data) (RFC 7616 §3.4.1).
    pub(crate) fn kd_hex(self, secret: &str, data: &str) -> String {
        let mut buf = String::with_capacity(secret.len() + 1 + data.len());
        buf.push_str(secret);
        buf.push(':');
        buf.push_str(data);
        self.hash_hex(buf.as_bytes())
    }
}

impl FromStr for Algorithm {
    type Err = UnknownAlgorithm;

    fn from_str(s: &str) -> Result<Algorithm, UnknownAlgorithm> {
        Algorithm::from_token(s).ok_or_else(|| UnknownAlgorithm(s.to_owned()))
    }
}

impl fmt::Display for Algorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Lower-case hex of H(username ":" realm ":" password) (RFC 7616 §3.4.2): what the credential
/// store keeps instead of the password.
pub fn ha1_hex(alg: Algorithm, username: &str, realm: &str, password: &str) -> String {
    let a1 = format!("{username}:{realm}:{password}");
    alg.hash_hex(a1.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_case_insensitively() {
        for alg in [Algorithm::Md5, Algorithm::Sha256] {
            assert_eq!(Algorithm::from_token(alg.name()), Some(alg));
            assert_eq!(alg.name().to_lowercase().parse::<Algorithm>(), Ok(alg));
        }
        assert_eq!(Algorithm::from_token("sha-256"), Some(Algorithm::Sha256));
        assert_eq!(Algorithm::from_token("MD5-sess"), None);
        assert!("SHA-512-256".parse::<Algorithm>().is_err());
    }

    #[test]
    fn ha1_matches_known_digests() {
        // md5("Mufasa:testrealm@host.com:Circle Of Life"), RFC 2617 §3.5.
        assert_eq!(
            ha1_hex(
                Algorithm::Md5,
                "Mufasa",
                "testrealm@host.com",
                "Circle Of Life"
            ),
            "939e7578ed9e3c518a452acee763bce9"
        );
        let sha = ha1_hex(Algorithm::Sha256, "a", "b", "c");
        assert_eq!(sha.len(), 64);
        assert_eq!(sha, hex::encode(Sha256::digest(b"a:b:c")));
        assert!(
            sha.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        );
    }
}
