//! Digest authentication (RFC 3261 §22, RFC 7616 as used by RFC 8760), sans-IO.
//!
//! The store keeps [`ha1_hex`] values, never passwords. The shell asks a
//! [`DigestAuthenticator`] for [`challenge_values`](DigestAuthenticator::challenge_values),
//! parses the answer with [`Credentials::parse`], looks up the HA1 for its username and
//! algorithm, and calls [`verify`](DigestAuthenticator::verify).

mod algorithm;
mod authenticator;
mod challenge;
mod client;
mod credentials;
mod nonce;
mod params;
mod replay;
mod verify;

pub use algorithm::{Algorithm, UnknownAlgorithm, ha1_hex};
pub use authenticator::DigestAuthenticator;
pub use challenge::ChallengeKind;
pub use client::{Challenge, ChallengeError};
pub use credentials::{Credentials, CredentialsError, Qop};
pub use replay::DEFAULT_REPLAY_CAPACITY;
pub use verify::AuthFailure;
