//! DTLS-SRTP on one leg (RFC 5763, RFC 5764): the handshake in the role `a=setup` gave the
//! PBX, the peer's certificate checked against its `a=fingerprint`, and the SRTP keys
//! exported for the relay's `rtc-srtp` contexts.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use bytes::BytesMut;
use rtc_dtls::config::{ClientAuthType, ConfigBuilder, ExtendedMasterSecretType, HandshakeConfig};
use rtc_dtls::crypto::Certificate;
use rtc_dtls::crypto_provider::RTCCryptoProvider;
use rtc_dtls::endpoint::{Endpoint, EndpointEvent};
use rtc_dtls::extension::extension_use_srtp::SrtpProtectionProfile;
use rtc_shared::TransportProtocol;
use sha2::{Digest, Sha256, Sha384, Sha512};

use crate::{CryptoSuite, DtlsRole, Fingerprint, SrtpKey, SrtpPair};

/// RFC 5764 §4.2: the exporter label for DTLS-SRTP keys.
const EXPORTER_LABEL: &str = "EXTRACTOR-dtls_srtp";

/// Why a WebRTC leg could not get its keys.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DtlsError {
    #[error("the peer's certificate matches none of its a=fingerprint lines")]
    FingerprintMismatch,
    #[error("the peer sent no certificate")]
    NoCertificate,
    #[error("no SRTP protection profile in common")]
    NoSrtpProfile,
    #[error("DTLS: {0}")]
    Handshake(String),
}

/// The PBX's DTLS certificate and the configurations made from it, shared by every WebRTC
/// leg. Made once at start (docs/decisions.md "WebRTC media"); its fingerprint goes into every
/// WebRTC SDP.
pub struct DtlsIdentity {
    provider: Arc<dyn RTCCryptoProvider>,
    pub(crate) server: Arc<HandshakeConfig>,
    pub(crate) client: Arc<HandshakeConfig>,
    fingerprint: Fingerprint,
}

// The private key never prints.
impl std::fmt::Debug for DtlsIdentity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DtlsIdentity")
            .field("fingerprint", &self.fingerprint)
            .finish_non_exhaustive()
    }
}

impl DtlsIdentity {
    /// A fresh self-signed ECDSA P-256 certificate (randomness from the crypto provider: the
    /// shell calls this once, at start).
    pub fn generate() -> Result<DtlsIdentity, DtlsError> {
        let provider = rtc_dtls::crypto_provider::default_provider()
            .map_err(|e| DtlsError::Handshake(e.to_string()))?;
        let cert = Certificate::generate_self_signed(vec!["pbx".to_owned()], provider.crypto())
            .map_err(|e| DtlsError::Handshake(e.to_string()))?;
        let der = cert
            .certificate
            .first()
            .ok_or(DtlsError::NoCertificate)?
            .as_ref()
            .to_vec();
        let config = |is_client: bool| {
            ConfigBuilder::default()
                .with_crypto_provider(provider.clone())
                .with_certificates(vec![cert.clone()])
                .with_srtp_protection_profiles(vec![
                    SrtpProtectionProfile::Srtp_Aead_Aes_128_Gcm,
                    SrtpProtectionProfile::Srtp_Aes128_Cm_Hmac_Sha1_80,
                ])
                .with_extended_master_secret(ExtendedMasterSecretType::Request)
                // RFC 5763 §5: the certificate is self-signed and trusted through the
                // fingerprint in the SDP, checked once the handshake is done; the client's
                // is required so that there is one to check.
                .with_insecure_skip_verify(true)
                .with_client_auth(ClientAuthType::RequireAnyClientCert)
                .build(is_client, None)
                .map(Arc::new)
                .map_err(|e| DtlsError::Handshake(e.to_string()))
        };
        Ok(DtlsIdentity {
            server: config(false)?,
            client: config(true)?,
            fingerprint: Fingerprint {
                algorithm: "sha-256".to_owned(),
                digest: Sha256::digest(&der).to_vec(),
            },
            provider,
        })
    }

    /// The certificate's SHA-256 fingerprint, for `a=fingerprint`.
    pub fn fingerprint(&self) -> &Fingerprint {
        &self.fingerprint
    }

    /// The `rtc-dtls` configuration of this certificate in `role`: what a peer of the PBX
    /// built on `rtc-dtls` uses (tests, a load generator).
    pub fn handshake_config(&self, role: DtlsRole) -> Arc<HandshakeConfig> {
        match role {
            DtlsRole::Client => self.client.clone(),
            DtlsRole::Server => self.server.clone(),
        }
    }

    pub(crate) fn provider(&self) -> &Arc<dyn RTCCryptoProvider> {
        &self.provider
    }
}

/// RFC 8122 §5: the certificate matches when its hash under one of the listed functions
/// equals that line's digest. Functions we cannot compute never match.
pub(crate) fn certificate_matches(der: &[u8], fingerprints: &[Fingerprint]) -> bool {
    fingerprints.iter().any(|f| {
        let digest: Vec<u8> = match f.algorithm.as_str() {
            "sha-256" => Sha256::digest(der).to_vec(),
            "sha-384" => Sha384::digest(der).to_vec(),
            "sha-512" => Sha512::digest(der).to_vec(),
            _ => return false,
        };
        digest == f.digest
    })
}

/// What the handshake came to.
#[derive(Debug)]
pub(crate) enum DtlsOutcome {
    Keys(SrtpPair),
    Failed(DtlsError),
}

/// One DTLS association with the leg's browser.
pub(crate) struct Dtls {
    endpoint: Endpoint,
    role: DtlsRole,
    client_config: Arc<HandshakeConfig>,
    remote_fingerprints: Vec<crate::Fingerprint>,
    /// The address the association runs with (the ICE-selected one).
    peer: Option<SocketAddr>,
    done: bool,
    out: VecDeque<(SocketAddr, Vec<u8>)>,
}

impl Dtls {
    pub(crate) fn new(
        identity: &DtlsIdentity,
        role: DtlsRole,
        remote_fingerprints: Vec<Fingerprint>,
    ) -> Dtls {
        let unspecified = SocketAddr::from(([0, 0, 0, 0], 0));
        let server = (role == DtlsRole::Server).then(|| identity.server.clone());
        Dtls {
            endpoint: Endpoint::new(unspecified, TransportProtocol::UDP, server),
            role,
            client_config: identity.client.clone(),
            remote_fingerprints,
            peer: None,
            done: false,
            out: VecDeque::new(),
        }
    }

    /// ICE proved `peer`: as the client, open the association to it (RFC 5763 §5: after the
    /// ICE check succeeds); as the server, accept a ClientHello from it only.
    pub(crate) fn start(&mut self, now: Instant, peer: SocketAddr) -> Result<(), DtlsError> {
        if self.peer.is_some() {
            return Ok(());
        }
        self.peer = Some(peer);
        if self.role == DtlsRole::Client {
            self.endpoint
                .connect(now, peer, self.client_config.clone(), None)
                .map_err(|e| DtlsError::Handshake(e.to_string()))?;
            self.collect();
        }
        Ok(())
    }

    /// A DTLS record (RFC 7983 §7: first byte 20-63) from `from`.
    pub(crate) fn handle(
        &mut self,
        now: Instant,
        from: SocketAddr,
        pkt: &[u8],
    ) -> Option<DtlsOutcome> {
        // Only from the address ICE proved: anyone else could open associations at will.
        if self.peer != Some(from) || self.done {
            // After the handshake, a retransmitted final flight still needs an answer
            // (RFC 6347 §4.2.4); the endpoint handles that for the known peer.
            if !(self.done && self.peer == Some(from)) {
                return None;
            }
        }
        let result = self.endpoint.read(now, from, None, BytesMut::from(pkt));
        self.collect();
        let events = match result {
            Ok(events) => events,
            // After the handshake a stray or replayed record changes nothing.
            Err(_) if self.done => return None,
            Err(e) => {
                self.done = true;
                return Some(DtlsOutcome::Failed(DtlsError::Handshake(e.to_string())));
            }
        };
        let complete = events
            .iter()
            .any(|e| matches!(e, EndpointEvent::HandshakeComplete));
        if !complete || self.done {
            return None;
        }
        self.done = true;
        Some(self.finish(now, from))
    }

    fn finish(&mut self, now: Instant, peer: SocketAddr) -> DtlsOutcome {
        let outcome = match self.endpoint.get_connection_state(peer) {
            None => Err(DtlsError::Handshake("association vanished".into())),
            Some(state) => match state.peer_certificates.first() {
                None => Err(DtlsError::NoCertificate),
                Some(der) if !certificate_matches(der, &self.remote_fingerprints) => {
                    Err(DtlsError::FingerprintMismatch)
                }
                Some(_) => export_keys(state, self.role),
            },
        };
        match outcome {
            Ok(keys) => DtlsOutcome::Keys(keys),
            Err(e) => {
                // RFC 5763 §5: a certificate that does not match ends the association.
                let _ = self.endpoint.stop(now, peer);
                self.collect();
                DtlsOutcome::Failed(e)
            }
        }
    }

    fn collect(&mut self) {
        while let Some(t) = self.endpoint.poll_transmit() {
            self.out
                .push_back((t.transport.peer_addr, t.message.to_vec()));
        }
    }

    pub(crate) fn poll_transmit(&mut self) -> Option<(SocketAddr, Vec<u8>)> {
        self.out.pop_front()
    }

    /// The next handshake retransmission (RFC 6347 §4.2.4).
    pub(crate) fn poll_timeout(&self) -> Option<Instant> {
        self.peer.and_then(|p| self.endpoint.poll_timeout(&p))
    }

    /// Retransmits a flight when due; an error is a handshake that gave up.
    pub(crate) fn handle_timeout(&mut self, now: Instant) -> Option<DtlsOutcome> {
        let peer = self.peer?;
        if self.poll_timeout().is_none_or(|at| at > now) {
            return None;
        }
        let result = self.endpoint.handle_timeout(peer, now);
        self.collect();
        match result {
            Err(e) if !self.done => {
                self.done = true;
                Some(DtlsOutcome::Failed(DtlsError::Handshake(e.to_string())))
            }
            _ => None,
        }
    }
}

/// RFC 5764 §4.2: client key, server key, client salt, server salt. A side in `role` decrypts
/// with the other's and encrypts with its own.
pub fn export_keys(state: &rtc_dtls::state::State, role: DtlsRole) -> Result<SrtpPair, DtlsError> {
    let suite = match state.srtp_protection_profile() {
        SrtpProtectionProfile::Srtp_Aes128_Cm_Hmac_Sha1_80 => CryptoSuite::AesCm128HmacSha1_80,
        SrtpProtectionProfile::Srtp_Aes128_Cm_Hmac_Sha1_32 => CryptoSuite::AesCm128HmacSha1_32,
        SrtpProtectionProfile::Srtp_Aead_Aes_128_Gcm => CryptoSuite::AeadAes128Gcm,
        _ => return Err(DtlsError::NoSrtpProfile),
    };
    let (k, s) = (suite.key_len(), suite.salt_len());
    let material = state
        .export_keying_material(EXPORTER_LABEL, &[], 2 * (k + s))
        .map_err(|e| DtlsError::Handshake(e.to_string()))?;
    let m = material.as_ref();
    if m.len() != 2 * (k + s) {
        return Err(DtlsError::NoSrtpProfile);
    }
    let key_salt = |key: &[u8], salt: &[u8]| SrtpKey {
        suite,
        key_salt: [key, salt].concat(),
    };
    let client = key_salt(&m[..k], &m[2 * k..2 * k + s]);
    let server = key_salt(&m[k..2 * k], &m[2 * k + s..]);
    Ok(match role {
        DtlsRole::Server => SrtpPair {
            inbound: client,
            outbound: server,
        },
        DtlsRole::Client => SrtpPair {
            inbound: server,
            outbound: client,
        },
    })
}
