//! TLS test material: a CA, certificates it signs, written as PEM files.
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
use std::path::{Path, PathBuf};

pub struct Ca {
    issuer: Issuer<'static, KeyPair>,
    pub pem: String,
}

impl Ca {
    pub fn new(name: &str) -> Ca {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        let key = KeyPair::generate().unwrap();
        let pem = params.self_signed(&key).unwrap().pem();
        Ca {
            issuer: Issuer::new(params, key),
            pem,
        }
    }

    /// A certificate for `name` (and 127.0.0.1): its chain and key, as one PEM text.
    pub fn issue(&self, name: &str) -> String {
        self.issue_for(name, &[name, "127.0.0.1"])
    }

    /// A certificate for `name` valid for the hosts `sans`, with its key, as one PEM text.
    pub fn issue_for(&self, name: &str, sans: &[&str]) -> String {
        let (cert, key) = self.issue_der_for(name, sans);
        let pem = |tag: &str, der: &[u8]| {
            use base64::Engine;
            let b64 = base64::engine::general_purpose::STANDARD.encode(der);
            let lines: Vec<&str> = b64
                .as_bytes()
                .chunks(64)
                .map(|c| std::str::from_utf8(c).unwrap())
                .collect();
            format!(
                "-----BEGIN {tag}-----\n{}\n-----END {tag}-----\n",
                lines.join("\n")
            )
        };
        format!("{}{}", pem("CERTIFICATE", &cert), pem("PRIVATE KEY", &key))
    }

    /// [`Ca::issue`] as DER: the certificate and its PKCS#8 key.
    pub fn issue_der(&self, name: &str) -> (Vec<u8>, Vec<u8>) {
        self.issue_der_for(name, &[name, "127.0.0.1"])
    }

    /// A certificate for `name`, valid for the hosts `sans` (names or addresses), as DER.
    pub fn issue_der_for(&self, name: &str, sans: &[&str]) -> (Vec<u8>, Vec<u8>) {
        let sans = sans.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let mut params = CertificateParams::new(sans).unwrap();
        // rcgen writes the subject as CN=<name> then O=zooid: Java (RFC 2253, the last
        // first) writes it `O=zooid,CN=<name>`.
        params
            .distinguished_name
            .push(DnType::OrganizationName, "zooid");
        params.distinguished_name.push(DnType::CommonName, name);
        let key = KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        (cert.der().to_vec(), key.serialize_der())
    }

    /// This CA's certificate, DER.
    pub fn der(&self) -> Vec<u8> {
        rustls::pki_types::pem::PemObject::from_pem_slice(self.pem.as_bytes())
            .map(|c: rustls::pki_types::CertificateDer<'static>| c.to_vec())
            .unwrap()
    }
}

pub fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    // Written aside and renamed, as a secret mount or cert-manager replaces files.
    let tmp = dir.join(format!(".{name}.tmp"));
    std::fs::write(&tmp, text).unwrap();
    std::fs::rename(&tmp, &path).unwrap();
    path
}
