//! What an AuthPacket proves: the identity it adds to the connection.

use base64::Engine;
use sha1::{Digest, Sha1};
use std::net::SocketAddr;
use zooid_proto::Id;

/// The identity an AuthPacket yields for a client at `remote`, or `None` for an unknown scheme
/// (AUTHFAILED, and the connection closes).
pub(super) fn authenticate(scheme: &str, auth: &[u8], remote: SocketAddr) -> Option<Id> {
    match scheme {
        "digest" => {
            let text = String::from_utf8_lossy(auth);
            let user = text.split(':').next().unwrap_or("");
            let hash = base64::engine::general_purpose::STANDARD.encode(Sha1::digest(auth));
            Some(Id {
                scheme: "digest".into(),
                id: format!("{user}:{hash}"),
            })
        }
        "ip" => Some(Id {
            scheme: "ip".into(),
            id: remote.ip().to_string(),
        }),
        _ => None,
    }
}
