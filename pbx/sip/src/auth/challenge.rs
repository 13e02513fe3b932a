//! Which challenge header a request gets, and how a challenge value is written.

use super::algorithm::Algorithm;
use super::params::quote;
use crate::status::StatusCode;

/// Registrar-style (401 + WWW-Authenticate) or proxy-style (407 + Proxy-Authenticate).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChallengeKind {
    Www,
    Proxy,
}

impl ChallengeKind {
    /// REGISTER is answered by the registrar with 401 (RFC 3261 §10.3 step 3, §22.2); every other
    /// request is challenged as the PBX's proxy role does, with 407 (§22.3).
    pub fn for_method(method: &str) -> ChallengeKind {
        if method == "REGISTER" {
            ChallengeKind::Www
        } else {
            ChallengeKind::Proxy
        }
    }

    pub fn status(self) -> StatusCode {
        match self {
            ChallengeKind::Www => StatusCode::UNAUTHORIZED,
            ChallengeKind::Proxy => StatusCode::PROXY_AUTHENTICATION_REQUIRED,
        }
    }

    /// The header that carries the challenge.
    pub fn challenge_header(self) -> &'static str {
        match self {
            ChallengeKind::Www => "WWW-Authenticate",
            ChallengeKind::Proxy => "Proxy-Authenticate",
        }
    }

    /// The header the client answers with.
    pub fn credentials_header(self) -> &'static str {
        match self {
            ChallengeKind::Www => "Authorization",
            ChallengeKind::Proxy => "Proxy-Authorization",
        }
    }
}

/// One challenge value. RFC 7616 §3.3: algorithm and stale are tokens, qop-options quoted.
pub(crate) fn render(
    realm: &str,
    nonce: &str,
    opaque: &str,
    alg: Algorithm,
    stale: bool,
) -> String {
    let mut out = format!(
        "Digest realm={}, nonce=\"{nonce}\", opaque=\"{opaque}\", algorithm={}, qop=\"auth\"",
        quote(realm),
        alg.name()
    );
    if stale {
        out.push_str(", stale=true");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn register_gets_401_others_407() {
        assert_eq!(
            ChallengeKind::for_method("REGISTER").status(),
            StatusCode(401)
        );
        assert_eq!(
            ChallengeKind::for_method("INVITE").status(),
            StatusCode(407)
        );
        assert_eq!(
            ChallengeKind::Proxy.challenge_header(),
            "Proxy-Authenticate"
        );
        assert_eq!(ChallengeKind::Www.credentials_header(), "Authorization");
    }

    #[test]
    fn renders_a_challenge() {
        assert_eq!(
            render("pbx.test", "N", "O", Algorithm::Sha256, true),
            "Digest realm=\"pbx.test\", nonce=\"N\", opaque=\"O\", algorithm=SHA-256, qop=\"auth\", stale=true"
        );
    }
}
