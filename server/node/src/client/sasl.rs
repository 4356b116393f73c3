//! SASL DIGEST-MD5 (RFC 2831) as ZooKeeper's server speaks it to kazoo and the Java client:
//! realm `zk-sasl-md5`, quality of protection `auth`, users and passwords from a JAAS-style
//! file (`user_<name>="<password>"` in its `Server` section, as ZooKeeper's
//! DigestLoginModule reads them). A client that proves its password gets the identity
//! `sasl:<name>`.

use md5::{Digest, Md5};
use std::collections::HashMap;
use std::path::Path;

/// ZooKeeper's fixed realm for DIGEST-MD5.
pub const REALM: &str = "zk-sasl-md5";

/// The users a JAAS file names, with their passwords.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SaslUsers(HashMap<String, String>);

/// Why a JAAS file was not taken.
#[derive(Debug, thiserror::Error)]
pub enum JaasError {
    #[error("reading {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("{path}: no Server section with user_<name>=\"<password>\" entries")]
    NoUsers { path: String },
}

impl SaslUsers {
    /// Reads the `Server { ... };` section of a JAAS configuration file.
    pub fn read(path: &Path) -> Result<SaslUsers, JaasError> {
        let shown = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| JaasError::Read {
            path: shown.clone(),
            source,
        })?;
        let users = Self::parse(&text);
        if users.0.is_empty() {
            return Err(JaasError::NoUsers { path: shown });
        }
        Ok(users)
    }

    /// The `user_<name>="<password>"` options of the `Server` section.
    pub fn parse(text: &str) -> SaslUsers {
        let mut users = HashMap::new();
        let Some(start) = text.find("Server") else {
            return SaslUsers(users);
        };
        let body = &text[start..];
        let body = &body[body.find('{').map_or(body.len(), |i| i + 1)..];
        let body = &body[..body.find("};").unwrap_or(body.len())];
        let mut rest = body;
        while let Some(i) = rest.find("user_") {
            rest = &rest[i + 5..];
            let Some((name, after)) = rest.split_once('=') else {
                break;
            };
            let after = after.trim_start();
            let Some(quoted) = after.strip_prefix('"') else {
                continue;
            };
            let Some(end) = quoted.find('"') else {
                break;
            };
            users.insert(name.trim().to_string(), quoted[..end].to_string());
            rest = &quoted[end + 1..];
        }
        SaslUsers(users)
    }

    fn password(&self, user: &str) -> Option<&str> {
        self.0.get(user).map(String::as_str)
    }
}

/// The server's first message: the challenge, with a fresh `nonce`.
pub fn challenge(nonce: &str) -> Vec<u8> {
    format!("realm=\"{REALM}\",nonce=\"{nonce}\",qop=\"auth\",charset=utf-8,algorithm=md5-sess")
        .into_bytes()
}

/// A fresh nonce for [`challenge`].
pub fn new_nonce() -> String {
    let bytes: [u8; 24] = rand::random();
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// Checks the client's response to the challenge of `nonce`: the user's name and the
/// server's `rspauth` answer, or why not.
pub fn verify(users: &SaslUsers, nonce: &str, token: &[u8]) -> Result<(String, Vec<u8>), String> {
    let text = std::str::from_utf8(token).map_err(|_| "the response is not UTF-8".to_string())?;
    let fields = directives(text);
    let get = |k: &str| {
        fields
            .get(k)
            .map(String::as_str)
            .ok_or_else(|| format!("the response has no {k}"))
    };
    let user = get("username")?;
    if get("nonce")? != nonce {
        return Err("the response answers another challenge".into());
    }
    let (cnonce, nc, qop, uri) = (get("cnonce")?, get("nc")?, get("qop")?, get("digest-uri")?);
    if qop != "auth" {
        return Err(format!("quality of protection {qop:?} is not offered"));
    }
    let realm = fields.get("realm").map_or(REALM, String::as_str);
    let password = users
        .password(user)
        .ok_or_else(|| format!("no user {user:?}"))?;
    let authzid = fields.get("authzid").map(String::as_str);
    let mut a1 = Md5::digest(format!("{user}:{realm}:{password}").as_bytes()).to_vec();
    a1.extend_from_slice(format!(":{nonce}:{cnonce}").as_bytes());
    if let Some(z) = authzid {
        a1.extend_from_slice(format!(":{z}").as_bytes());
    }
    let ha1 = hex(&Md5::digest(&a1));
    let answer = |a2: String| {
        let ha2 = hex(&Md5::digest(a2.as_bytes()));
        hex(&Md5::digest(
            format!("{ha1}:{nonce}:{nc}:{cnonce}:{qop}:{ha2}").as_bytes(),
        ))
    };
    if answer(format!("AUTHENTICATE:{uri}")) != get("response")? {
        return Err(format!("wrong password for {user:?}"));
    }
    let rspauth = format!("rspauth={}", answer(format!(":{uri}")));
    Ok((authzid.unwrap_or(user).to_string(), rspauth.into_bytes()))
}

/// `key=value` and `key="quoted value"` directives, comma separated.
fn directives(text: &str) -> HashMap<String, String> {
    let mut out = HashMap::new();
    let mut rest = text.trim();
    while !rest.is_empty() {
        let Some((key, after)) = rest.split_once('=') else {
            break;
        };
        let key = key
            .trim()
            .trim_start_matches(',')
            .trim()
            .to_ascii_lowercase();
        let (value, after) = if let Some(q) = after.strip_prefix('"') {
            let mut value = String::new();
            let mut chars = q.char_indices();
            let mut end = q.len();
            while let Some((i, c)) = chars.next() {
                match c {
                    '\\' => {
                        if let Some((_, n)) = chars.next() {
                            value.push(n);
                        }
                    }
                    '"' => {
                        end = i + 1;
                        break;
                    }
                    _ => value.push(c),
                }
            }
            (value, &q[end..])
        } else {
            let end = after.find(',').unwrap_or(after.len());
            (after[..end].trim().to_string(), &after[end..])
        };
        out.insert(key, value);
        rest = after.trim_start_matches(',').trim();
    }
    out
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn users_come_from_the_server_section_of_a_jaas_file() {
        let users = SaslUsers::parse(
            "Client {\n  org.apache.zookeeper.server.auth.DigestLoginModule required\n  \
             username=\"bob\" password=\"x\";\n};\nServer {\n  \
             org.apache.zookeeper.server.auth.DigestLoginModule required\n  \
             user_super=\"adminsecret\"\n  user_bob=\"bobsecret\";\n};\n",
        );
        assert_eq!(users.password("bob"), Some("bobsecret"));
        assert_eq!(users.password("super"), Some("adminsecret"));
        assert_eq!(users.0.len(), 2);
    }

    /// RFC 2831's own example (section 4), with the realm and the URI it uses.
    #[test]
    fn the_rfc_example_verifies() {
        let users = SaslUsers(HashMap::from([("chris".into(), "secret".into())]));
        let nonce = "OA6MG9tEQGm2hh";
        let response = "charset=utf-8,username=\"chris\",realm=\"elwood.innosoft.com\",\
                        nonce=\"OA6MG9tEQGm2hh\",nc=00000001,cnonce=\"OA6MHXh6VqTrRk\",\
                        digest-uri=\"imap/elwood.innosoft.com\",\
                        response=d388dad90d4bbd760a152321f2143af7,qop=auth";
        let (user, rspauth) = verify(&users, nonce, response.as_bytes()).unwrap();
        assert_eq!(user, "chris");
        assert_eq!(rspauth, b"rspauth=ea40f60335c427b5527b84dbabcdfffd");
        let wrong = SaslUsers(HashMap::from([("chris".into(), "guess".into())]));
        assert!(verify(&wrong, nonce, response.as_bytes()).is_err());
        assert!(verify(&users, "another", response.as_bytes()).is_err());
    }
}
