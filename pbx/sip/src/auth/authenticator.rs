//! The server side of digest authentication: issues challenges (this file) and checks
//! credentials against them (`verify.rs`).

use super::algorithm::Algorithm;
use super::challenge::render;
use super::nonce::{NonceCodec, NonceKey};
use super::replay::{DEFAULT_REPLAY_CAPACITY, ReplayGuard};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

/// Challenges and verifies digest credentials for one realm. Holds no clock and draws no
/// randomness: the caller passes the time and a random 32-byte secret (fresh per process start
/// is fine; nonces from before a restart then fail as `BadNonce` and are re-challenged).
///
/// Share one instance (behind a lock) between everything that verifies, so the nonce-count
/// replay map sees every use of a nonce.
pub struct DigestAuthenticator {
    pub(crate) realm: String,
    pub(crate) algorithms: Vec<Algorithm>,
    pub(crate) lifetime: Duration,
    pub(crate) codec: NonceCodec,
    pub(crate) opaque: String,
    pub(crate) replay: ReplayGuard,
    /// Per algorithm, computed once so an unknown user costs no extra work at verify time.
    dummy_ha1: [(Algorithm, String); 2],
    serial: AtomicU32,
}

impl DigestAuthenticator {
    /// `algorithms` in preference order; duplicates are dropped, and an empty list means
    /// `[Sha256, Md5]` (RFC 8760 §2.4: the strongest first).
    pub fn new(
        realm: String,
        secret: [u8; 32],
        nonce_lifetime: Duration,
        algorithms: Vec<Algorithm>,
    ) -> DigestAuthenticator {
        let mut offered: Vec<Algorithm> = Vec::with_capacity(2);
        for alg in algorithms {
            if !offered.contains(&alg) {
                offered.push(alg);
            }
        }
        if offered.is_empty() {
            offered = vec![Algorithm::Sha256, Algorithm::Md5];
        }
        let lifetime_secs = nonce_lifetime.as_secs();
        let codec = NonceCodec::new(&secret, &realm, lifetime_secs);
        let dummy_ha1 = [Algorithm::Md5, Algorithm::Sha256].map(|a| (a, codec.dummy_ha1(a)));
        DigestAuthenticator {
            dummy_ha1,
            opaque: codec.opaque(),
            codec,
            realm,
            algorithms: offered,
            lifetime: nonce_lifetime,
            replay: ReplayGuard::new(DEFAULT_REPLAY_CAPACITY, lifetime_secs),
            serial: AtomicU32::new(0),
        }
    }

    /// Bounds the nonce-count map (default [`DEFAULT_REPLAY_CAPACITY`]).
    pub fn with_replay_capacity(mut self, capacity: usize) -> DigestAuthenticator {
        self.replay = ReplayGuard::new(capacity, self.codec.lifetime_secs());
        self
    }

    pub fn realm(&self) -> &str {
        &self.realm
    }

    /// The algorithms offered, most preferred first.
    pub fn algorithms(&self) -> &[Algorithm] {
        &self.algorithms
    }

    pub fn nonce_lifetime(&self) -> Duration {
        self.lifetime
    }

    /// The stand-in HA1 for users that do not exist.
    pub(crate) fn dummy_ha1(&self, alg: Algorithm) -> &str {
        self.dummy_ha1
            .iter()
            .find(|(a, _)| *a == alg)
            .map_or("", |(_, h)| h.as_str())
    }

    /// How many nonces the replay map tracks now.
    pub fn tracked_nonces(&self) -> usize {
        self.replay.len()
    }

    /// A fresh nonce. Each call gets its own serial, so no two clients share a nonce.
    pub fn new_nonce(&self, now_unix: u64) -> String {
        let serial = self.serial.fetch_add(1, Ordering::Relaxed);
        self.codec.issue(NonceKey {
            issued: now_unix,
            serial,
        })
    }

    /// One challenge header value per offered algorithm, in preference order, all with the same
    /// nonce (RFC 8760 §2.4). Send each as its own WWW-Authenticate / Proxy-Authenticate header.
    /// `stale` is set when the previous credentials were right but the nonce had expired
    /// (RFC 7616 §3.3), so the phone retries without asking its user.
    pub fn challenge_values(&self, now_unix: u64, stale: bool) -> Vec<String> {
        self.challenge_values_only(now_unix, stale, &self.algorithms)
    }

    /// The same, offering only the configured algorithms that are also in `only` (all of
    /// them when none is): for clients that fail when offered an algorithm they lack, such
    /// as those that answer only the first challenge or abort on an unknown one.
    pub fn challenge_values_only(
        &self,
        now_unix: u64,
        stale: bool,
        only: &[Algorithm],
    ) -> Vec<String> {
        let nonce = self.new_nonce(now_unix);
        let offered: Vec<Algorithm> = self
            .algorithms
            .iter()
            .copied()
            .filter(|alg| only.contains(alg))
            .collect();
        let offered = if offered.is_empty() {
            &self.algorithms
        } else {
            &offered
        };
        offered
            .iter()
            .map(|&alg| render(&self.realm, &nonce, &self.opaque, alg, stale))
            .collect()
    }
}
