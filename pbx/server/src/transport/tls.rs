//! TLS for `tls:` listeners: rustls with ring, TLS 1.2 and 1.3 only. When the configured
//! certificate or key is missing, a self-signed pair for the SIP domain is made on first
//! start so the PBX runs out of the box (an admin replaces it with a real one).

use std::fs;
use std::io;
use std::path::Path;
use std::sync::Arc;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer, pem::PemObject};
use tokio_rustls::rustls::{self, ServerConfig};

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("{path}: {source}")]
    Io { path: String, source: io::Error },
    #[error("{path}: no certificate found")]
    NoCertificate { path: String },
    #[error("{path}: no private key found ({detail})")]
    NoKey { path: String, detail: String },
    #[error("making the self-signed certificate: {0}")]
    Generate(#[from] rcgen::Error),
    #[error("the certificate and key do not fit together: {0}")]
    Rustls(#[from] rustls::Error),
}

/// Writes a self-signed certificate and key for `domain` when either file is missing.
/// Returns true when it made them.
pub fn ensure_certificate(cert: &Path, key: &Path, domain: &str) -> Result<bool, TlsError> {
    if cert.exists() && key.exists() {
        return Ok(false);
    }
    let names = vec![
        domain.to_string(),
        "localhost".to_string(),
        "127.0.0.1".to_string(),
    ];
    let certified = rcgen::generate_simple_self_signed(names)?;
    for path in [cert, key] {
        if let Some(dir) = path.parent() {
            fs::create_dir_all(dir).map_err(|source| io_error(dir, source))?;
        }
    }
    fs::write(cert, certified.cert.pem()).map_err(|source| io_error(cert, source))?;
    write_private(key, certified.signing_key.serialize_pem().as_bytes())?;
    tracing::warn!(cert = %cert.display(), "made a self-signed TLS certificate; replace it with a real one");
    Ok(true)
}

/// The key file is readable by its owner only.
fn write_private(path: &Path, data: &[u8]) -> Result<(), TlsError> {
    use std::io::Write;
    let mut options = fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options
        .open(path)
        .map_err(|source| io_error(path, source))?;
    file.write_all(data)
        .map_err(|source| io_error(path, source))
}

fn io_error(path: &Path, source: io::Error) -> TlsError {
    TlsError::Io {
        path: path.display().to_string(),
        source,
    }
}

/// Loads the certificate chain and key into an acceptor.
pub fn acceptor(cert: &Path, key: &Path) -> Result<TlsAcceptor, TlsError> {
    let cert_path = cert.display().to_string();
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .map_err(|e| TlsError::Io {
            path: cert_path.clone(),
            source: io::Error::other(e.to_string()),
        })?
        .filter_map(Result::ok)
        .collect();
    if chain.is_empty() {
        return Err(TlsError::NoCertificate { path: cert_path });
    }
    let key_der = PrivateKeyDer::from_pem_file(key).map_err(|e| TlsError::NoKey {
        path: key.display().to_string(),
        detail: e.to_string(),
    })?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])?
        .with_no_client_auth()
        .with_single_cert(chain, key_der)?;
    Ok(TlsAcceptor::from(Arc::new(config)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn makes_a_usable_self_signed_pair_once() {
        let dir = std::env::temp_dir().join(format!("pbx-tls-test-{}", std::process::id()));
        let cert = dir.join("tls/cert.pem");
        let key = dir.join("tls/key.pem");
        assert!(ensure_certificate(&cert, &key, "pbx.test").unwrap());
        assert!(
            !ensure_certificate(&cert, &key, "pbx.test").unwrap(),
            "kept on second start"
        );
        assert!(acceptor(&cert, &key).is_ok());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(&key).unwrap().permissions().mode();
            assert_eq!(mode & 0o077, 0, "key readable by owner only");
        }
        let _ = fs::remove_dir_all(dir);
    }
}
