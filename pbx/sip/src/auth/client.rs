//! The client side of digest (RFC 3261 §22.2, §22.3; RFC 7616 §3.4; RFC 8760): reading a
//! server's `WWW-Authenticate` / `Proxy-Authenticate`, choosing among several, and writing the
//! `Authorization` / `Proxy-Authorization` answer. Used when the PBX is the client: registering
//! to a provider, calling through a trunk that challenges.

use super::algorithm::Algorithm;
use super::params::{ParamSyntax, parse_params, quote, split_scheme};

/// One challenge as the server sent it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Challenge {
    pub realm: String,
    pub nonce: String,
    pub opaque: Option<String>,
    /// `MD5` when the parameter is absent (RFC 7616 §3.3).
    pub algorithm: Algorithm,
    /// Whether `qop` was offered at all; when it was, it included `auth` (else parsing fails:
    /// `auth-int` alone needs the body, which the PBX does not hash).
    pub qop_auth: bool,
    /// RFC 7616 §3.3: the previous credentials were right, only the nonce had expired.
    pub stale: bool,
}

/// Why a challenge header value could not be used.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ChallengeError {
    #[error("challenge scheme {0:?} is not Digest")]
    NotDigest(String),
    #[error("bad challenge syntax: {0}")]
    Syntax(&'static str),
    #[error("challenge without {0}")]
    Missing(&'static str),
    #[error("unsupported digest algorithm {0:?}")]
    UnknownAlgorithm(String),
    #[error("qop {0:?} offers no `auth`")]
    NoQopAuth(String),
}

impl From<ParamSyntax> for ChallengeError {
    fn from(e: ParamSyntax) -> ChallengeError {
        ChallengeError::Syntax(e.describe())
    }
}

impl Challenge {
    /// Parses one challenge header value.
    pub fn parse(value: &str) -> Result<Challenge, ChallengeError> {
        let (scheme, rest) = split_scheme(value);
        if !scheme.eq_ignore_ascii_case("Digest") {
            return Err(ChallengeError::NotDigest(scheme.to_owned()));
        }
        let (mut realm, mut nonce, mut opaque, mut algorithm, mut qop, mut stale) =
            (None, None, None, None, None, false);
        for param in parse_params(rest)? {
            // Parameter names are case-insensitive; unknown ones are ignored (RFC 7616 §3.3).
            match param.name.to_ascii_lowercase().as_str() {
                "realm" => realm = Some(param.value),
                "nonce" => nonce = Some(param.value),
                "opaque" => opaque = Some(param.value),
                "algorithm" => algorithm = Some(param.value),
                "qop" => qop = Some(param.value),
                "stale" => stale = param.value.eq_ignore_ascii_case("true"),
                _ => {}
            }
        }
        let algorithm = match algorithm {
            None => Algorithm::Md5,
            Some(token) => {
                Algorithm::from_token(&token).ok_or(ChallengeError::UnknownAlgorithm(token))?
            }
        };
        let qop_auth = match qop {
            None => false,
            Some(options) => {
                // RFC 7616 §3.3: a quoted, comma-separated list of options.
                if !options
                    .split(',')
                    .any(|o| o.trim().eq_ignore_ascii_case("auth"))
                {
                    return Err(ChallengeError::NoQopAuth(options));
                }
                true
            }
        };
        Ok(Challenge {
            realm: realm.ok_or(ChallengeError::Missing("realm"))?,
            nonce: nonce.ok_or(ChallengeError::Missing("nonce"))?,
            opaque,
            algorithm,
            qop_auth,
            stale,
        })
    }

    /// The challenge to answer among several header values: the strongest algorithm the PBX
    /// supports (RFC 8760 §2.4: SHA-256 before MD5), the first of equals; values it cannot use
    /// are skipped.
    pub fn pick<'a>(values: impl IntoIterator<Item = &'a str>) -> Option<Challenge> {
        values
            .into_iter()
            .filter_map(|v| Challenge::parse(v).ok())
            .fold(None, |best: Option<Challenge>, c| match best {
                Some(b) if rank(b.algorithm) >= rank(c.algorithm) => Some(b),
                _ => Some(c),
            })
    }

    /// The credentials header value answering this challenge for a request with `method` and
    /// Request-URI `uri`. `nc` is the nonce-count (1 for the first use of this nonce, one more
    /// for each reuse, RFC 7616 §3.4); `cnonce` the client's random nonce.
    pub fn answer(
        &self,
        username: &str,
        password: &str,
        method: &str,
        uri: &str,
        nc: u32,
        cnonce: &str,
    ) -> String {
        let alg = self.algorithm;
        let ha1 = super::algorithm::ha1_hex(alg, username, &self.realm, password);
        let ha2 = alg.hash_hex(format!("{method}:{uri}").as_bytes());
        let nc_text = format!("{nc:08x}");
        // RFC 7616 §3.4.1 (qop=auth); RFC 2069 form when the server offered no qop.
        let response = if self.qop_auth {
            alg.kd_hex(
                &ha1,
                &format!("{}:{nc_text}:{cnonce}:auth:{ha2}", self.nonce),
            )
        } else {
            alg.kd_hex(&ha1, &format!("{}:{ha2}", self.nonce))
        };
        let mut out = format!(
            "Digest username={}, realm={}, nonce={}, uri={}, response=\"{response}\", \
             algorithm={}",
            quote(username),
            quote(&self.realm),
            quote(&self.nonce),
            quote(uri),
            alg.name()
        );
        if self.qop_auth {
            out.push_str(&format!(
                ", qop=auth, nc={nc_text}, cnonce={}",
                quote(cnonce)
            ));
        }
        if let Some(opaque) = &self.opaque {
            out.push_str(&format!(", opaque={}", quote(opaque)));
        }
        out
    }
}

fn rank(alg: Algorithm) -> u8 {
    match alg {
        Algorithm::Sha256 => 2,
        Algorithm::Md5 => 1,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::{Credentials, DigestAuthenticator};

    #[test]
    fn parses_and_picks_the_strongest() {
        let md5 = "Digest realm=\"sip.example\", nonce=\"n1\", qop=\"auth,auth-int\"";
        let sha = "digest REALM=\"sip.example\", nonce=\"n2\", algorithm=SHA-256, \
                   qop=\"auth\", opaque=\"o\", stale=TRUE";
        let picked = Challenge::pick([md5, "Basic realm=\"x\"", sha]);
        assert_eq!(
            picked,
            Some(Challenge {
                realm: "sip.example".into(),
                nonce: "n2".into(),
                opaque: Some("o".into()),
                algorithm: Algorithm::Sha256,
                qop_auth: true,
                stale: true,
            })
        );
        let only_md5 = Challenge::pick([md5]).map(|c| (c.algorithm, c.qop_auth, c.stale));
        assert_eq!(only_md5, Some((Algorithm::Md5, true, false)));
        assert!(matches!(
            Challenge::parse("Digest realm=\"r\", nonce=\"n\", qop=\"auth-int\""),
            Err(ChallengeError::NoQopAuth(_))
        ));
        assert!(matches!(
            Challenge::parse("Digest realm=\"r\", nonce=\"n\", algorithm=SHA-512-256"),
            Err(ChallengeError::UnknownAlgorithm(_))
        ));
        assert!(matches!(
            Challenge::parse("Digest nonce=\"n\""),
            Err(ChallengeError::Missing("realm"))
        ));
        assert_eq!(Challenge::pick(["Digest realm=\"r\""]), None);
    }

    #[test]
    fn rfc_2617_example_response() {
        // RFC 2617 §3.5 (MD5, qop=auth): the well-known response 6629fae4...
        let c = Challenge {
            realm: "testrealm@host.com".into(),
            nonce: "dcd98b7102dd2f0e8b11d0f600bfb0c093".into(),
            opaque: Some("5ccc069c403ebaf9f0171e9517f40e41".into()),
            algorithm: Algorithm::Md5,
            qop_auth: true,
            stale: false,
        };
        let value = c.answer(
            "Mufasa",
            "Circle Of Life",
            "GET",
            "/dir/index.html",
            1,
            "0a4f113b",
        );
        assert!(
            value.contains("response=\"6629fae49393a05397450978507c4ef1\""),
            "{value}"
        );
        assert!(value.contains("nc=00000001"), "{value}");
        assert!(value.contains("cnonce=\"0a4f113b\""), "{value}");
        assert!(value.contains("opaque=\"5ccc069c403ebaf9f0171e9517f40e41\""));
    }

    /// The PBX's own server side accepts what its client side writes, for both algorithms,
    /// with the nonce-count counting up.
    #[test]
    fn the_server_side_accepts_the_answers() {
        for alg in [Algorithm::Sha256, Algorithm::Md5] {
            let mut server = DigestAuthenticator::new(
                "pbx.test".into(),
                [7; 32],
                std::time::Duration::from_secs(300),
                vec![alg],
            );
            let values = server.challenge_values(1_000, false);
            let challenge = Challenge::pick(values.iter().map(String::as_str));
            let Some(challenge) = challenge else {
                panic!("no challenge parsed from {values:?}")
            };
            let ha1 = super::super::ha1_hex(alg, "1001", "pbx.test", "pw");
            for nc in 1..=3 {
                let value = challenge.answer("1001", "pw", "REGISTER", "sip:pbx.test", nc, "c");
                let creds = Credentials::parse(&value).unwrap_or_else(|e| panic!("{e}: {value}"));
                assert_eq!(
                    server.verify(1_001, "REGISTER", &creds, Some(&ha1)),
                    Ok(()),
                    "{alg} nc {nc}"
                );
            }
            let wrong = challenge.answer("1001", "nope", "REGISTER", "sip:pbx.test", 4, "c");
            let creds = Credentials::parse(&wrong).unwrap_or_else(|e| panic!("{e}"));
            assert!(
                server
                    .verify(1_001, "REGISTER", &creds, Some(&ha1))
                    .is_err()
            );
        }
    }
}
