//! TLS for connections the PBX opens (to trunks): the server's certificate is verified
//! against the system's roots plus an optional CA file (per trunk, or `[sip] tls_ca_file`),
//! for the trunk's host name (RFC 5922 §7: the name the PBX meant to reach, sent as SNI).
//! A trunk may turn verification off (`--tls-no-verify`); that is logged loudly each time
//! a connection is made without it.

use std::collections::HashMap;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use tokio_rustls::rustls::client::danger::{
    HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier,
};
use tokio_rustls::rustls::pki_types::{CertificateDer, ServerName, UnixTime, pem::PemObject};
use tokio_rustls::rustls::{self, ClientConfig, DigitallySignedStruct, RootCertStore};

/// Where Linux distributions keep the system's root certificates (Debian, Fedora, Alpine,
/// openSUSE); `SSL_CERT_FILE` first when set, as OpenSSL does.
const SYSTEM_BUNDLES: &[&str] = &[
    "/etc/ssl/certs/ca-certificates.crt",
    "/etc/pki/tls/certs/ca-bundle.crt",
    "/etc/ssl/ca-bundle.pem",
    "/etc/ssl/cert.pem",
];

/// How the PBX checks one TLS peer.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct TlsTarget {
    /// The name to ask for (SNI) and to find in the certificate: the trunk's host (or its
    /// outbound proxy's), or the address when no name is known.
    pub name: String,
    /// A CA file trusted besides the system's roots.
    pub ca_file: Option<PathBuf>,
    /// False: any certificate is accepted (the trunk's `--tls-no-verify`).
    pub verify: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum ClientTlsError {
    #[error("{path}: {detail}")]
    CaFile { path: String, detail: String },
    #[error("no certificate in {path}")]
    NoCertificate { path: String },
    #[error("{0} is not a name or an address a certificate can be checked against")]
    BadName(String),
    #[error(transparent)]
    Rustls(#[from] rustls::Error),
}

/// What a client configuration depends on: the CA file trusted, and whether to verify.
type ConfigKey = (Option<PathBuf>, bool);

/// The client configurations, made once per [`ConfigKey`] and shared.
pub struct TlsClients {
    /// `[sip] tls_ca_file`: trusted for every trunk without its own.
    default_ca: Option<PathBuf>,
    configs: Mutex<HashMap<ConfigKey, Arc<ClientConfig>>>,
}

impl TlsClients {
    pub fn new(default_ca: Option<PathBuf>) -> TlsClients {
        TlsClients {
            default_ca,
            configs: Mutex::new(HashMap::new()),
        }
    }

    /// The configuration to connect to `target` with, and the name to check.
    pub fn config_for(
        &self,
        target: &TlsTarget,
    ) -> Result<(Arc<ClientConfig>, ServerName<'static>), ClientTlsError> {
        let name = server_name(&target.name)?;
        let ca = target.ca_file.clone().or_else(|| self.default_ca.clone());
        let key: ConfigKey = (ca, target.verify);
        let mut configs = self.configs.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(config) = configs.get(&key) {
            return Ok((config.clone(), name));
        }
        let config = Arc::new(make_config(key.0.as_deref(), key.1)?);
        configs.insert(key, config.clone());
        Ok((config, name))
    }
}

/// A host name, or an IP address (checked against the certificate's IP entries).
pub fn server_name(name: &str) -> Result<ServerName<'static>, ClientTlsError> {
    let bare = name.trim_start_matches('[').trim_end_matches(']');
    ServerName::try_from(bare.to_string()).map_err(|_| ClientTlsError::BadName(name.to_string()))
}

fn make_config(ca_file: Option<&Path>, verify: bool) -> Result<ClientConfig, ClientTlsError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])?;
    let config = if verify {
        let mut roots = RootCertStore::empty();
        let (added, _) = roots.add_parsable_certificates(system_roots());
        tracing::debug!(roots = added, "system TLS roots loaded");
        if let Some(path) = ca_file {
            let extra = read_certificates(path)?;
            roots.add_parsable_certificates(extra);
        }
        builder.with_root_certificates(roots).with_no_client_auth()
    } else {
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AcceptAny(provider)))
            .with_no_client_auth()
    };
    Ok(config)
}

/// The system's roots; none when no bundle is found (a CA file may still be given).
fn system_roots() -> Vec<CertificateDer<'static>> {
    let from_env = std::env::var_os("SSL_CERT_FILE").map(PathBuf::from);
    let candidates = from_env
        .into_iter()
        .chain(SYSTEM_BUNDLES.iter().map(PathBuf::from));
    for path in candidates {
        if let Ok(found) = read_certificates(&path) {
            return found;
        }
    }
    tracing::warn!("no system CA bundle found: only a configured tls_ca_file is trusted");
    Vec::new()
}

fn read_certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>, ClientTlsError> {
    let shown = path.display().to_string();
    let found: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(path)
        .map_err(|e| ClientTlsError::CaFile {
            path: shown.clone(),
            detail: e.to_string(),
        })?
        .filter_map(Result::ok)
        .collect();
    if found.is_empty() {
        return Err(ClientTlsError::NoCertificate { path: shown });
    }
    Ok(found)
}

/// Whether a handshake failed on the certificate (as opposed to the network or the protocol).
pub fn is_certificate_error(error: &io::Error) -> bool {
    error
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>())
        .is_some_and(|e| {
            matches!(
                e,
                rustls::Error::InvalidCertificate(_) | rustls::Error::NoCertificatesPresented
            )
        })
}

/// Accepts any certificate (a trunk with `--tls-no-verify`); signatures are still checked,
/// so the handshake itself stays sound.
#[derive(Debug)]
struct AcceptAny(Arc<rustls::crypto::CryptoProvider>);

impl ServerCertVerifier for AcceptAny {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_addresses_are_names_to_check() {
        assert!(matches!(
            server_name("sip.example.net"),
            Ok(ServerName::DnsName(_))
        ));
        assert!(matches!(
            server_name("192.0.2.7"),
            Ok(ServerName::IpAddress(_))
        ));
        assert!(matches!(
            server_name("[2001:db8::1]"),
            Ok(ServerName::IpAddress(_))
        ));
        assert!(server_name("not a name").is_err());
    }

    #[test]
    fn configs_are_made_once_per_ca_and_verification() {
        let clients = TlsClients::new(None);
        let target = TlsTarget {
            name: "sip.example.net".into(),
            ca_file: None,
            verify: true,
        };
        let (a, _) = clients.config_for(&target).unwrap();
        let (b, _) = clients.config_for(&target).unwrap();
        assert!(Arc::ptr_eq(&a, &b));
        let loose = TlsTarget {
            verify: false,
            ..target.clone()
        };
        let (c, _) = clients.config_for(&loose).unwrap();
        assert!(!Arc::ptr_eq(&a, &c));
    }

    #[test]
    fn a_missing_ca_file_is_an_error_that_names_it() {
        let clients = TlsClients::new(None);
        let target = TlsTarget {
            name: "sip.example.net".into(),
            ca_file: Some("/nonexistent/ca.pem".into()),
            verify: true,
        };
        let error = clients.config_for(&target).err().unwrap().to_string();
        assert!(error.contains("/nonexistent/ca.pem"), "{error}");
    }
}
