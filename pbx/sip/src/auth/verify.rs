//! Checking digest credentials (RFC 3261 §22.4, RFC 7616 §3.4.1).
//!
//! Order matters for security:
//! 1. checks that depend only on the request (realm, algorithm, syntax) come first; they reveal
//!    nothing about the user;
//! 2. the digest is computed for every request, against a dummy HA1 when the user is unknown,
//!    and compared in constant time, so an unknown user and a wrong password look the same;
//! 3. only a correct digest learns about the nonce (stale, forged, replayed). A wrong password
//!    on a stale or forged nonce is `Rejected`, which counts towards a ban, and a forger cannot
//!    advance a real client's nonce-count.
//!
//! The RFC 2069 form (no qop) is accepted, because RFC 3261 §22.4 requires compatibility with
//! it, but each such nonce is single-use: without nc there is no other replay protection.
//! The `uri` parameter is not compared with the Request-URI here; the caller may.

use super::authenticator::DigestAuthenticator;
use super::challenge::ChallengeKind;
use super::credentials::{Credentials, CredentialsError, Qop};
use super::nonce::NonceCheck;
use super::replay::NcCheck;
use crate::status::StatusCode;
use subtle::{Choice, ConstantTimeEq};

/// Why credentials were not accepted.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum AuthFailure {
    /// Wrong password or unknown user; the two are indistinguishable on purpose.
    #[error("credentials rejected")]
    Rejected,
    /// Right credentials, expired nonce.
    #[error("nonce expired")]
    Stale,
    /// Right credentials, but the nonce-count did not increase.
    #[error("nonce-count replayed")]
    Replay,
    /// The credentials are for another realm.
    #[error("credentials are for another realm")]
    WrongRealm,
    /// The credentials cannot be checked as sent.
    #[error("malformed credentials: {0}")]
    Malformed(String),
    /// Right credentials, but a nonce this server did not issue with its current secret.
    #[error("nonce not issued by this server")]
    BadNonce,
}

impl From<CredentialsError> for AuthFailure {
    fn from(e: CredentialsError) -> AuthFailure {
        AuthFailure::Malformed(e.to_string())
    }
}

impl AuthFailure {
    /// Whether this counts towards the per-address ban: only a wrong password (or unknown user)
    /// is a guess. Expired, replayed and foreign nonces carry a correct digest.
    pub fn counts_as_failure(&self) -> bool {
        matches!(self, AuthFailure::Rejected)
    }

    /// The status to answer with: 400 for `Malformed`; otherwise a new challenge, 401 or 407
    /// as `kind` says. A wrong password is re-challenged (RFC 3261 §22.2, §22.3) with
    /// `stale=false`, which tells the phone its credentials are wrong (RFC 7616 §3.3).
    pub fn status(&self, kind: ChallengeKind) -> StatusCode {
        match self {
            AuthFailure::Malformed(_) => StatusCode::BAD_REQUEST,
            _ => kind.status(),
        }
    }

    /// For answers that carry a challenge, whether it has `stale=true`; `None` when no
    /// challenge is sent (400).
    pub fn challenge_stale(&self) -> Option<bool> {
        match self {
            AuthFailure::Stale | AuthFailure::Replay | AuthFailure::BadNonce => Some(true),
            AuthFailure::Rejected | AuthFailure::WrongRealm => Some(false),
            AuthFailure::Malformed(_) => None,
        }
    }
}

fn malformed(reason: &str) -> AuthFailure {
    AuthFailure::Malformed(reason.to_owned())
}

fn is_hex_of_len(text: &str, len: usize) -> bool {
    text.len() == len && text.bytes().all(|b| b.is_ascii_hexdigit())
}

impl DigestAuthenticator {
    /// Verifies `creds` for a request with `method`. `ha1` is the stored HA1 (hex) for
    /// `creds.username` and `creds.algorithm`, or `None` when there is no such user or no HA1
    /// for that algorithm.
    pub fn verify(
        &mut self,
        now_unix: u64,
        method: &str,
        creds: &Credentials,
        ha1: Option<&str>,
    ) -> Result<(), AuthFailure> {
        let alg = creds.algorithm;
        if creds.realm != self.realm {
            return Err(AuthFailure::WrongRealm);
        }
        if !self.algorithms.contains(&alg) {
            return Err(malformed("algorithm not offered"));
        }
        if creds.qop == Some(Qop::AuthInt) {
            return Err(malformed("qop auth-int not offered"));
        }
        if !is_hex_of_len(&creds.response, alg.hex_len()) {
            return Err(malformed(
                "response is not a digest of the algorithm's length",
            ));
        }
        // With qop, parse guaranteed nc and cnonce; without, the nonce is single-use (nc 1).
        let (nc, qop_part) = match (creds.qop, creds.nc_value(), &creds.nc, &creds.cnonce) {
            (Some(_), Some(0), _, _) => return Err(malformed("nonce-count 0")),
            (Some(_), Some(nc), Some(nc_text), Some(cnonce)) => {
                (nc, Some(format!("{nc_text}:{cnonce}:auth")))
            }
            (Some(_), _, _, _) => return Err(malformed("qop without nc and cnonce")),
            (None, _, _, _) => (1, None),
        };

        let nonce = self.codec.check(&creds.nonce, now_unix);
        let (ha1, known) = match ha1 {
            Some(h) if is_hex_of_len(h, alg.hex_len()) => (h.to_ascii_lowercase(), true),
            _ => (self.dummy_ha1(alg).to_owned(), false),
        };
        // RFC 7616 §3.4.1 (qop=auth) and RFC 2069 (no qop): KD(HA1, nonce[:nc:cnonce:qop]:HA2).
        let ha2 = alg.hash_hex(format!("{method}:{}", creds.uri).as_bytes());
        let data = match qop_part {
            Some(q) => format!("{}:{q}:{ha2}", creds.nonce),
            None => format!("{}:{ha2}", creds.nonce),
        };
        let expected = alg.kd_hex(&ha1, &data);
        let given = creds.response.to_ascii_lowercase();
        let matches = expected.as_bytes().ct_eq(given.as_bytes()) & Choice::from(u8::from(known));
        if !bool::from(matches) {
            return Err(AuthFailure::Rejected);
        }
        // The opaque is ours to check; a wrong one means the challenge came from elsewhere.
        if creds.opaque.as_deref().is_some_and(|o| o != self.opaque) {
            return Err(AuthFailure::BadNonce);
        }
        match nonce {
            NonceCheck::Forged => Err(AuthFailure::BadNonce),
            NonceCheck::Expired => Err(AuthFailure::Stale),
            NonceCheck::Fresh(key) => match self.replay.check_and_record(key, nc, now_unix) {
                NcCheck::Accepted => Ok(()),
                NcCheck::Replayed => Err(AuthFailure::Replay),
                NcCheck::Evicted => Err(AuthFailure::Stale),
            },
        }
    }
}
