//! The client's side of SASL DIGEST-MD5 (RFC 2831) as ZooKeeper's Java client speaks it:
//! service `zookeeper`, server name `zk-sasl-md5`, quality of protection `auth`. Written from
//! the RFC for the differential tests; the server's side is `server/node/src/client/sasl.rs`.

use md5::{Digest, Md5};

/// The digest-uri ZooKeeper's client names (service and server name).
const DIGEST_URI: &str = "zookeeper/zk-sasl-md5";

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The value of `key` in a challenge's `key=value` or `key="value"` list.
fn field<'a>(challenge: &'a str, key: &str) -> Option<&'a str> {
    challenge.split(',').find_map(|part| {
        let (k, v) = part.split_once('=')?;
        (k.trim() == key).then(|| v.trim().trim_matches('"'))
    })
}

/// The response to a server's `challenge` for `user` and `password`, with the client nonce
/// `cnonce`; `None` if the challenge names no nonce.
pub fn digest_md5_response(
    challenge: &str,
    user: &str,
    password: &str,
    cnonce: &str,
) -> Option<String> {
    let nonce = field(challenge, "nonce")?;
    let realm = field(challenge, "realm").unwrap_or("zk-sasl-md5");
    let nc = "00000001";
    let secret = Md5::digest(format!("{user}:{realm}:{password}"));
    let mut a1 = secret.to_vec();
    a1.extend_from_slice(format!(":{nonce}:{cnonce}").as_bytes());
    let ha1 = hex(&Md5::digest(&a1));
    let ha2 = hex(&Md5::digest(format!("AUTHENTICATE:{DIGEST_URI}")));
    let response = hex(&Md5::digest(format!(
        "{ha1}:{nonce}:{nc}:{cnonce}:auth:{ha2}"
    )));
    Some(format!(
        "charset=utf-8,username=\"{user}\",realm=\"{realm}\",nonce=\"{nonce}\",nc={nc},\
         cnonce=\"{cnonce}\",digest-uri=\"{DIGEST_URI}\",maxbuf=65536,response={response},qop=auth"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 2831's own example (section 4), with its service and host in the digest-uri:
    /// the response the RFC gives.
    #[test]
    fn the_rfc_example_gives_its_response() {
        let nonce = "OA6MG9tEQGm2hh";
        let cnonce = "OA6MHXh6VqTrRk";
        let secret = Md5::digest("chris:elwood.innosoft.com:secret");
        let mut a1 = secret.to_vec();
        a1.extend_from_slice(format!(":{nonce}:{cnonce}").as_bytes());
        let ha1 = hex(&Md5::digest(&a1));
        let ha2 = hex(&Md5::digest("AUTHENTICATE:imap/elwood.innosoft.com"));
        let response = hex(&Md5::digest(format!(
            "{ha1}:{nonce}:00000001:{cnonce}:auth:{ha2}"
        )));
        assert_eq!(response, "d388dad90d4bbd760a152321f2143af7");
    }

    #[test]
    fn a_response_names_the_challenges_nonce_and_realm() {
        let r = digest_md5_response(
            "realm=\"zk-sasl-md5\",nonce=\"abc\",qop=\"auth\",charset=utf-8,algorithm=md5-sess",
            "alice",
            "pw",
            "xyz",
        )
        .unwrap();
        assert!(r.contains("nonce=\"abc\""), "{r}");
        assert!(r.contains("digest-uri=\"zookeeper/zk-sasl-md5\""), "{r}");
        assert_eq!(digest_md5_response("qop=auth", "a", "b", "c"), None);
    }
}
