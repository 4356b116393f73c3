//! The super user the operator acts as: ZooKeeper asks for one for reconfig, and the admin
//! API for snapshots. Taken from the Secret the spec names, or made once by the operator.

use super::names::Names;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use serde_json::json;

/// ZooKeeper's digest of `user:password`: `user:base64(sha1(user:password))`.
pub fn digest(user_password: &str) -> String {
    use base64::Engine;
    use sha1::Digest;
    let user = user_password.split(':').next().unwrap_or_default();
    let hash = sha1::Sha1::digest(user_password.as_bytes());
    format!(
        "{user}:{}",
        base64::engine::general_purpose::STANDARD.encode(hash)
    )
}

/// The operator's Secret: the credentials and their digest.
pub fn secret(names: &Names, owner: &OwnerReference, user_password: &str) -> Secret {
    let value = json!({
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {
            "name": names.credentials_secret(),
            "namespace": names.namespace,
            "labels": names.selector(),
            "ownerReferences": [owner],
        },
        "stringData": {"credentials": user_password, "digest": digest(user_password)},
    });
    serde_json::from_value(value).unwrap_or_else(|e| unreachable!("a well-formed Secret: {e}"))
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_digest_is_zookeepers() {
        // `zooctl digest super:zooid-tests` and ZooKeeper's DigestAuthenticationProvider agree
        // on this form; the value is SHA-1 of the whole `user:password`.
        let d = super::digest("super:secret");
        assert!(d.starts_with("super:"));
        assert_eq!(d.len(), "super:".len() + 28);
    }
}
