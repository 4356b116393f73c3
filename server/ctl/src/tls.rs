//! TLS to the servers' secure client port (ZooKeeper's `secureClientPort`), set once from
//! zooctl's flags for every connection it opens: the CA that signs the servers'
//! certificates, and the client's own chain and key if the servers ask for one.

use anyhow::{bail, Context};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::{ClientConfig, RootCertStore};
use std::path::Path;
use std::sync::{Arc, OnceLock};

static CONFIG: OnceLock<Arc<ClientConfig>> = OnceLock::new();

/// Connections from now on use TLS, trusting the certificates in `ca` (PEM) and showing the
/// chain and key in `identity` (one PEM file) if given.
pub fn configure(ca: &Path, identity: Option<&Path>) -> anyhow::Result<()> {
    let read = |p: &Path| std::fs::read(p).with_context(|| format!("reading {}", p.display()));
    let mut roots = RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(&read(ca)?) {
        roots.add(cert.with_context(|| format!("a certificate in {}", ca.display()))?)?;
    }
    if roots.is_empty() {
        bail!("{}: no certificate in it", ca.display());
    }
    // Named rather than left to rustls, which finds no default when a second provider is
    // linked into the same binary. Deprecated in rustls 0.23.48 for lacking post-quantum key
    // exchange, which ring does not offer.
    #[allow(deprecated)]
    let provider = rustls::crypto::CryptoProvider::get_default()
        .cloned()
        .unwrap_or_else(|| Arc::new(rustls::crypto::ring::default_provider()));
    let builder = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots);
    let config = match identity {
        None => builder.with_no_client_auth(),
        Some(p) => {
            let pem = read(p)?;
            let chain = CertificateDer::pem_slice_iter(&pem)
                .collect::<Result<Vec<_>, _>>()
                .with_context(|| format!("a certificate in {}", p.display()))?;
            let key = PrivateKeyDer::from_pem_slice(&pem)
                .with_context(|| format!("{}: no private key in it", p.display()))?;
            builder.with_client_auth_cert(chain, key)?
        }
    };
    let _ = CONFIG.set(Arc::new(config));
    Ok(())
}

/// The TLS configuration, if zooctl was asked to use TLS.
pub fn config() -> Option<Arc<ClientConfig>> {
    CONFIG.get().cloned()
}
