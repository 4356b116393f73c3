//! TLS on the client port (ZooKeeper's `secureClientPort`): the key store (certificate chain
//! and key) and the trust store (for client certificates), PEM or PKCS#12 files read again
//! when they change on disk. New connections get the new material; established ones go on with theirs;
//! a new file that does not load leaves the old material in place and says why.

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, ServerConfig};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

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

const KEY_STORE: &str = "ssl.keyStore.location";
const TRUST_STORE: &str = "ssl.trustStore.location";

/// Where the TLS material comes from.
#[derive(Debug, Clone)]
pub struct TlsFiles {
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
    fn read(key: &'static str, path: &Path, password: Option<&str>) -> Result<Store, TlsError> {
        let bytes = std::fs::read(path).map_err(|source| TlsError::Read {
            key,
            path: path.to_path_buf(),
            source,
        })?;
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
        if password.is_some_and(|p| !p.is_empty()) && key == KEY_STORE {
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

impl TlsFiles {
    /// Reads the files into a server configuration.
    pub fn load(&self) -> Result<Arc<ServerConfig>, TlsError> {
        let key_store = Store::read(
            KEY_STORE,
            &self.key_store,
            self.key_store_password.as_deref(),
        )?;
        let content = |key: &'static str, path: &Path, what: &str| TlsError::Content {
            key,
            path: path.to_path_buf(),
            what: what.to_string(),
        };
        if key_store.certs.is_empty() {
            return Err(content(KEY_STORE, &self.key_store, "no certificate in it"));
        }
        let Some(key) = key_store.key else {
            return Err(content(
                KEY_STORE,
                &self.key_store,
                "no private key in it (an encrypted PEM key must be decrypted first)",
            ));
        };
        let builder = ServerConfig::builder();
        let builder = match (self.client_auth, &self.trust_store) {
            (ClientAuth::None, _) | (_, None) => builder.with_no_client_auth(),
            (auth, Some(path)) => {
                let store = Store::read(TRUST_STORE, path, self.trust_store_password.as_deref())?;
                let mut roots = RootCertStore::empty();
                for cert in store.certs {
                    roots.add(cert)?;
                }
                if roots.is_empty() {
                    return Err(content(TRUST_STORE, path, "no certificate in it"));
                }
                let verifier = WebPkiClientVerifier::builder(Arc::new(roots));
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
        Ok(Arc::new(builder.with_single_cert(key_store.certs, key)?))
    }

    fn stamps(&self) -> Vec<Option<SystemTime>> {
        std::iter::once(&self.key_store)
            .chain(&self.trust_store)
            .map(|p| std::fs::metadata(p).and_then(|m| m.modified()).ok())
            .collect()
    }
}

/// The TLS material in use, read again when its files change.
pub struct Reloading {
    files: TlsFiles,
    current: Mutex<Current>,
}

struct Current {
    config: Arc<ServerConfig>,
    /// The files' modification times the configuration was read at (or refused at, so that
    /// a bad file is reported once, not at every connection).
    stamps: Vec<Option<SystemTime>>,
    looked: Instant,
}

/// How often the files are looked at, at most: once per second, on a new connection.
const LOOK_EVERY: Duration = Duration::from_secs(1);

/// What a look at the files found.
#[derive(Debug)]
pub enum Reloaded {
    Unchanged,
    Loaded,
    /// The new files did not load; the old material stays.
    Refused(TlsError),
}

impl Reloading {
    /// Loads the files once; an error here stops the start.
    pub fn start(files: TlsFiles) -> Result<Reloading, TlsError> {
        let stamps = files.stamps();
        let config = files.load()?;
        Ok(Reloading {
            files,
            current: Mutex::new(Current {
                config,
                stamps,
                looked: Instant::now(),
            }),
        })
    }

    /// The configuration for a new connection, having looked at the files if it is time.
    pub fn config(&self) -> (Arc<ServerConfig>, Reloaded) {
        let mut cur = self.current.lock().unwrap_or_else(|p| p.into_inner());
        if cur.looked.elapsed() < LOOK_EVERY {
            return (cur.config.clone(), Reloaded::Unchanged);
        }
        cur.looked = Instant::now();
        let stamps = self.files.stamps();
        if stamps == cur.stamps {
            return (cur.config.clone(), Reloaded::Unchanged);
        }
        cur.stamps = stamps;
        match self.files.load() {
            Ok(config) => {
                cur.config = config;
                (cur.config.clone(), Reloaded::Loaded)
            }
            Err(e) => (cur.config.clone(), Reloaded::Refused(e)),
        }
    }
}

/// ZooKeeper's `x509` identity of a client certificate: its subject as Java's
/// `X500Principal.getName()` writes it (RFC 2253: the last RDN first, `,` between RDNs, `+`
/// within one, the standard keywords, any other attribute as its OID and `#` with the hex of
/// its DER). `None` if the certificate does not parse.
pub fn x509_identity(cert_der: &[u8]) -> Option<String> {
    use x509_parser::prelude::{FromDer, X509Certificate};
    let (_, cert) = X509Certificate::from_der(cert_der).ok()?;
    let mut rdns: Vec<String> = cert
        .subject()
        .iter_rdn()
        .map(|rdn| {
            rdn.iter()
                .map(|atv| {
                    let oid = atv.attr_type().to_id_string();
                    match (keyword(&oid), atv.as_str()) {
                        (Some(k), Ok(v)) => format!("{k}={}", escape(v)),
                        _ => {
                            let value = atv.attr_value();
                            let mut der = vec![value.tag().0 as u8];
                            let len = value.data.len();
                            if len < 0x80 {
                                der.push(len as u8);
                            } else {
                                let bytes = len.to_be_bytes();
                                let skip = bytes.iter().take_while(|b| **b == 0).count();
                                der.push(0x80 | (bytes.len() - skip) as u8);
                                der.extend_from_slice(&bytes[skip..]);
                            }
                            der.extend_from_slice(value.data);
                            let hex: String = der.iter().map(|b| format!("{b:02x}")).collect();
                            format!("{oid}=#{hex}")
                        }
                    }
                })
                .collect::<Vec<_>>()
                .join("+")
        })
        .collect();
    rdns.reverse();
    Some(rdns.join(","))
}

/// RFC 2253's keywords, as Java writes them.
fn keyword(oid: &str) -> Option<&'static str> {
    Some(match oid {
        "2.5.4.3" => "CN",
        "2.5.4.6" => "C",
        "2.5.4.7" => "L",
        "2.5.4.8" => "ST",
        "2.5.4.9" => "STREET",
        "2.5.4.10" => "O",
        "2.5.4.11" => "OU",
        "0.9.2342.19200300.100.1.25" => "DC",
        "0.9.2342.19200300.100.1.1" => "UID",
        _ => return None,
    })
}

/// RFC 2253's escaping of an attribute value.
fn escape(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    let last = v.chars().count().saturating_sub(1);
    for (i, c) in v.chars().enumerate() {
        let special = matches!(c, ',' | '+' | '"' | '\\' | '<' | '>' | ';')
            || (i == 0 && (c == '#' || c == ' '))
            || (i == last && c == ' ');
        if special {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A certificate made by `openssl req -x509 -subj "/C=DE/O=zooid, inc/OU=ops/CN=client/
    /// emailAddress=ops@example.com"`, which openssl prints (`-nameopt RFC2253`) as
    /// `emailAddress=ops@example.com,CN=client,OU=ops,O=zooid\, inc,C=DE`; Java has no
    /// keyword for emailAddress and writes its OID and DER instead.
    const OPENSSL_CERT: &str = "-----BEGIN CERTIFICATE-----
MIICGTCCAb+gAwIBAgIUMdj7EguYreBdFfByFVtD+3ILo7MwCgYIKoZIzj0EAwIw
YTELMAkGA1UEBhMCREUxEzARBgNVBAoMCnpvb2lkLCBpbmMxDDAKBgNVBAsMA29w
czEPMA0GA1UEAwwGY2xpZW50MR4wHAYJKoZIhvcNAQkBFg9vcHNAZXhhbXBsZS5j
b20wIBcNMjYxMjA3MDM1ODQ2WhgPMjEyNjExMTMwMzU4NDZaMGExCzAJBgNVBAYT
AkRFMRMwEQYDVQQKDAp6b29pZCwgaW5jMQwwCgYDVQQLDANvcHMxDzANBgNVBAMM
BmNsaWVudDEeMBwGCSqGSIb3DQEJARYPb3BzQGV4YW1wbGUuY29tMFkwEwYHKoZI
zj0CAQYIKoZIzj0DAQcDQgAEDM8TKNxZjsILrkTh1srjsuT3eKh4greed3IDXHJo
eM1pRy9FofmsdnP9WXDTrD7WUyELi4FIpOoS8j1yuQyf46NTMFEwHQYDVR0OBBYE
FKz+5VbOkIQVFdMBsl47lnxsDwCRMB8GA1UdIwQYMBaAFKz+5VbOkIQVFdMBsl47
lnxsDwCRMA8GA1UdEwEB/wQFMAMBAf8wCgYIKoZIzj0EAwIDSAAwRQIgP7cpdupo
yUE2Z6ek99ThMXD2ySG1D7V4efipw7z1RyACIQDDKpg8pcYbeEJFS9KOLpGKXS1x
EqibEzue1Hg1m6Xvgg==
-----END CERTIFICATE-----";

    #[test]
    fn the_x509_identity_is_the_subject_as_java_writes_it() {
        use rustls::pki_types::pem::PemObject;
        let der = CertificateDer::from_pem_slice(OPENSSL_CERT.as_bytes()).unwrap();
        assert_eq!(
            x509_identity(&der).as_deref(),
            Some("1.2.840.113549.1.9.1=#160f6f7073406578616d706c652e636f6d,CN=client,OU=ops,O=zooid\\, inc,C=DE")
        );
    }

    #[test]
    fn values_are_escaped_as_rfc_2253_says() {
        assert_eq!(escape("plain"), "plain");
        assert_eq!(escape("a,b+c"), "a\\,b\\+c");
        assert_eq!(escape("#x "), "\\#x\\ ");
        assert_eq!(escape("say \"hi\""), "say \\\"hi\\\"");
    }
}
