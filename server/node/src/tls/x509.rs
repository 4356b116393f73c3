//! The `x509` scheme's identity: a client certificate's subject, as ZooKeeper writes it.

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
    use rustls::pki_types::CertificateDer;

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
