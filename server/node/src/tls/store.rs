//! A port's TLS files (ZooKeeper's key store: certificate chain and key; trust store: the
//! certificates that vouch for the other side), PEM or PKCS#12, and the rustls
//! configurations made of them.

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::server::WebPkiClientVerifier;
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, ServerConfig, SignatureScheme};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::SystemTime;

/// Whether clients must show a certificate (ZooKeeper's `ssl.clientAuth`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientAuth {
    /// A certificate the trust store vouches for, or no connection.
    Need,
    /// Checked if shown; a client without one is served too.
    Want,
    /// Not asked for.
    None,
}

impl ClientAuth {
    pub fn parse(s: &str) -> ClientAuth {
        match s {
            "want" => ClientAuth::Want,
            "none" => ClientAuth::None,
            _ => ClientAuth::Need,
        }
    }
}

/// Why TLS material did not load; each names the file and the zoo.cfg key it came from.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("{key} {path}: {source}")]
    Read {
        key: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "{key} {path} is a JKS store: PEM and PKCS#12 are read; convert it with `keytool \
         -importkeystore -srckeystore store.jks -destkeystore store.p12 -deststoretype PKCS12`"
    )]
    Jks { key: &'static str, path: PathBuf },
    #[error("{key} {path}: {what}")]
    Content {
        key: &'static str,
        path: PathBuf,
        what: String,
    },
    #[error("the TLS material does not fit together: {0}")]
    Config(#[from] rustls::Error),
    #[error("the trust store cannot verify clients: {0}")]
    Verifier(String),
}

/// The zoo.cfg keys a port's files come from, named in every error about them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Keys {
    pub key_store: &'static str,
    pub trust_store: &'static str,
}

impl Keys {
    /// The client and admin ports' (`ssl.*`).
    pub const CLIENT: Keys = Keys {
        key_store: "ssl.keyStore.location",
        trust_store: "ssl.trustStore.location",
    };
    /// The peer port's (`ssl.quorum.*`).
    pub const QUORUM: Keys = Keys {
        key_store: "ssl.quorum.keyStore.location",
        trust_store: "ssl.quorum.trustStore.location",
    };
}

/// Where the TLS material comes from.
#[derive(Debug, Clone)]
pub struct TlsFiles {
    pub keys: Keys,
    pub key_store: PathBuf,
    /// For a PKCS#12 key store (`ssl.keyStore.password`).
    pub key_store_password: Option<String>,
    pub trust_store: Option<PathBuf>,
    /// For a PKCS#12 trust store (`ssl.trustStore.password`).
    pub trust_store_password: Option<String>,
    pub client_auth: ClientAuth,
}

/// What a store holds, PEM or PKCS#12 alike.
struct Store {
    certs: Vec<CertificateDer<'static>>,
    key: Option<PrivateKeyDer<'static>>,
}

impl Store {
    /// Reads the store at `path`: PEM text, or PKCS#12 opened with `password` (Java's JKS,
    /// recognized by its magic number, is refused with the command that converts it).
    fn read(
        key: &'static str,
        path: &Path,
        password: Option<&str>,
        is_key_store: bool,
    ) -> Result<Store, TlsError> {
        let read = |file: &Path| {
            std::fs::read(file).map_err(|source| TlsError::Read {
                key,
                path: file.to_path_buf(),
                source,
            })
        };
        let bytes = if path.is_dir() {
            // A Kubernetes TLS Secret mounted as a folder (cert-manager writes them so).
            let mut pem = Vec::new();
            for file in secret_files(path, is_key_store) {
                pem.extend(read(&file)?);
                pem.push(b'\n');
            }
            pem
        } else {
            read(path)?
        };
        let content = |what: String| TlsError::Content {
            key,
            path: path.to_path_buf(),
            what,
        };
        if bytes.starts_with(&[0xfe, 0xed, 0xfe, 0xed]) {
            return Err(TlsError::Jks {
                key,
                path: path.to_path_buf(),
            });
        }
        if bytes.first() == Some(&0x30) {
            let store = p12_keystore::KeyStore::from_pkcs12(
                &bytes,
                password.unwrap_or(""),
                p12_keystore::Pkcs12ImportPolicy::Relaxed,
            )
            .map_err(|e| {
                content(format!(
                    "PKCS#12 does not open ({e}); is the password right?"
                ))
            })?;
            let mut out = Store {
                certs: Vec::new(),
                key: None,
            };
            for (_, entry) in store.entries() {
                match entry {
                    p12_keystore::KeyStoreEntry::PrivateKeyChain(chain) if out.key.is_none() => {
                        out.key = Some(PrivateKeyDer::Pkcs8(chain.key().as_der().to_vec().into()));
                        let chain = chain.certs().iter();
                        out.certs = chain.map(|c| c.as_der().to_vec().into()).collect();
                    }
                    p12_keystore::KeyStoreEntry::Certificate(c) => {
                        out.certs.push(c.as_der().to_vec().into())
                    }
                    _ => {}
                }
            }
            return Ok(out);
        }
        if password.is_some_and(|p| !p.is_empty()) && is_key_store {
            return Err(content(
                "a password is given, but encrypted PEM keys are not read: decrypt the key \
                 (`openssl pkey -in key.pem -out plain.pem`) and drop the password"
                    .into(),
            ));
        }
        let certs = CertificateDer::pem_slice_iter(&bytes)
            .collect::<Result<_, _>>()
            .map_err(|e| content(format!("a certificate does not parse: {e}")))?;
        let key = PrivateKeyDer::from_pem_slice(&bytes).ok();
        Ok(Store { certs, key })
    }
}

/// The files of a TLS Secret mounted as a folder: `tls.crt` and `tls.key` for a key store,
/// `ca.crt` for a trust store.
fn secret_files(dir: &Path, is_key_store: bool) -> Vec<PathBuf> {
    let names: &[&str] = if is_key_store {
        &["tls.crt", "tls.key"]
    } else {
        &["ca.crt"]
    };
    names.iter().map(|n| dir.join(n)).collect()
}

impl TlsFiles {
    /// The key store's chain and key.
    fn identity(&self) -> Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>), TlsError> {
        let (key, path) = (self.keys.key_store, &self.key_store);
        let store = Store::read(key, path, self.key_store_password.as_deref(), true)?;
        let content = |what: &str| TlsError::Content {
            key,
            path: path.to_path_buf(),
            what: what.to_string(),
        };
        if store.certs.is_empty() {
            return Err(content("no certificate in it"));
        }
        let Some(private) = store.key else {
            return Err(content(
                "no private key in it (an encrypted PEM key must be decrypted first)",
            ));
        };
        Ok((store.certs, private))
    }

    /// The trust store's certificates, `None` if there is no trust store.
    fn roots(&self) -> Result<Option<Arc<RootCertStore>>, TlsError> {
        let Some(path) = &self.trust_store else {
            return Ok(None);
        };
        let key = self.keys.trust_store;
        let store = Store::read(key, path, self.trust_store_password.as_deref(), false)?;
        let mut roots = RootCertStore::empty();
        for cert in store.certs {
            roots.add(cert)?;
        }
        if roots.is_empty() {
            return Err(TlsError::Content {
                key,
                path: path.to_path_buf(),
                what: "no certificate in it".into(),
            });
        }
        Ok(Some(Arc::new(roots)))
    }

    /// Reads the files into the configuration of a port that accepts TLS.
    pub fn server_config(&self) -> Result<Arc<ServerConfig>, TlsError> {
        let (certs, key) = self.identity()?;
        let builder = ServerConfig::builder_with_provider(super::provider())
            .with_safe_default_protocol_versions()?;
        let builder = match (self.client_auth, self.roots()?) {
            (ClientAuth::None, _) | (_, None) => builder.with_no_client_auth(),
            (auth, Some(roots)) => {
                let verifier =
                    WebPkiClientVerifier::builder_with_provider(roots, super::provider());
                let verifier = if auth == ClientAuth::Want {
                    verifier.allow_unauthenticated()
                } else {
                    verifier
                };
                let verifier = verifier
                    .build()
                    .map_err(|e| TlsError::Verifier(e.to_string()))?;
                builder.with_client_cert_verifier(verifier)
            }
        };
        Ok(Arc::new(builder.with_single_cert(certs, key)?))
    }

    /// Reads the files into the configuration of a connection this server opens: its own
    /// certificate shown, the other side's checked against the trust store, and against the
    /// host it was reached at if `check_host`.
    pub fn client_config(&self, check_host: bool) -> Result<Arc<ClientConfig>, TlsError> {
        let (certs, key) = self.identity()?;
        let Some(roots) = self.roots()? else {
            return Err(TlsError::Verifier(format!(
                "{} is needed to check the other side's certificate",
                self.keys.trust_store
            )));
        };
        let verifier = WebPkiServerVerifier::builder_with_provider(roots, super::provider())
            .build()
            .map_err(|e| TlsError::Verifier(e.to_string()))?;
        let builder = ClientConfig::builder_with_provider(super::provider())
            .with_safe_default_protocol_versions()?;
        let builder = if check_host {
            builder.with_webpki_verifier(verifier)
        } else {
            builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(AnyHost(verifier)))
        };
        Ok(Arc::new(builder.with_client_auth_cert(certs, key)?))
    }

    pub(super) fn stamps(&self) -> Vec<Option<SystemTime>> {
        let stores = std::iter::once((&self.key_store, true))
            .chain(self.trust_store.iter().map(|t| (t, false)));
        stores
            .flat_map(|(p, is_key_store)| {
                if p.is_dir() {
                    secret_files(p, is_key_store)
                } else {
                    vec![p.clone()]
                }
            })
            .map(|p| std::fs::metadata(p).and_then(|m| m.modified()).ok())
            .collect()
    }
}

/// The trust store's verdict on a certificate, whatever host it names (ZooKeeper's
/// `ssl.quorum.hostnameVerification=false`): the chain is checked first, so a certificate
/// refused only for its name is one the trust store vouches for.
#[derive(Debug)]
struct AnyHost(Arc<WebPkiServerVerifier>);

impl ServerCertVerifier for AnyHost {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        use rustls::CertificateError::{NotValidForName, NotValidForNameContext};
        match self
            .0
            .verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
        {
            Err(rustls::Error::InvalidCertificate(
                NotValidForName | NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_verify_schemes()
    }
}

/// Whether `cert` is valid for `host` (a DNS name or an IP address).
pub fn valid_for(cert: &CertificateDer<'_>, host: &str) -> bool {
    let (Ok(parsed), Ok(name)) = (
        rustls::server::ParsedCertificate::try_from(cert),
        ServerName::try_from(host),
    ) else {
        return false;
    };
    rustls::client::verify_server_name(&parsed, &name).is_ok()
}
