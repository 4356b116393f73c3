//! What an AuthPacket proves: the identity it adds to the connection.

use std::net::SocketAddr;
use zooid_proto::Id;

/// The identities an AuthPacket yields for a client at `remote`, or `None` for an unknown
/// scheme (AUTHFAILED, and the connection closes). A digest equal to `super_digest` makes the
/// client ZooKeeper's super user as well.
pub(super) fn authenticate(
    scheme: &str,
    auth: &[u8],
    remote: SocketAddr,
    super_digest: Option<&str>,
) -> Option<Vec<Id>> {
    match scheme {
        "digest" => {
            let digest = Id::digest(auth);
            let mut ids = Vec::with_capacity(2);
            if super_digest == Some(digest.id.as_str()) {
                ids.push(Id {
                    scheme: "super".into(),
                    id: String::new(),
                });
            }
            ids.push(digest);
            Some(ids)
        }
        "ip" => Some(vec![Id {
            scheme: "ip".into(),
            id: remote.ip().to_string(),
        }]),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_super_digest_adds_super_before_the_digest() {
        let remote: SocketAddr = "127.0.0.1:1".parse().unwrap();
        let sup = Id::digest(b"super:secret").id;
        let ids = authenticate("digest", b"super:secret", remote, Some(&sup)).unwrap();
        let schemes: Vec<&str> = ids.iter().map(|i| i.scheme.as_str()).collect();
        assert_eq!(schemes, ["super", "digest"]);
        let ids = authenticate("digest", b"super:wrong", remote, Some(&sup)).unwrap();
        assert_eq!(ids.len(), 1, "a wrong password is just another digest");
        assert!(authenticate("nosuch", b"x", remote, Some(&sup)).is_none());
    }
}
