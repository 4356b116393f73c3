//! Authentication input: AuthPacket and SASL bodies as they arrive, then what the server
//! does with their content (a SASL DIGEST-MD5 response checked against a user list, digest
//! and ip identities, ACL checks against them). Never panics; a SASL response that is not
//! computed from the user's password is never accepted.
#![no_main]

use libfuzzer_sys::fuzz_target;
use zooid_node::client::sasl::{verify, SaslUsers};
use zooid_proto::{Acl, Id, OpCode, Reader, Request};

fuzz_target!(|data: &[u8]| {
    let Some((&kind, body)) = data.split_first() else {
        return;
    };
    let users = SaslUsers::parse("Server { x required user_bob=\"secret\"; };");
    match kind % 3 {
        0 => {
            if let Ok(Request::Auth { scheme, auth, .. }) = Request::decode(OpCode::Auth as i32, body) {
                let ids = match scheme.as_str() {
                    "digest" => vec![Id::digest(&auth)],
                    _ => vec![Id {
                        scheme,
                        id: String::from_utf8_lossy(&auth).into_owned(),
                    }],
                };
                let acl = [Acl {
                    perms: 1,
                    id: Id::digest(b"bob:secret"),
                }];
                let _ = zooid_tree::acl::check(&acl, &ids, 1);
            }
        }
        1 => {
            if let Ok(Request::Sasl { token }) = Request::decode(OpCode::Sasl as i32, body) {
                // The fuzzer cannot know the password: a made-up response must be refused.
                if let Ok((user, _)) = verify(&users, "fixed-nonce", &token) {
                    panic!("a made-up SASL response was accepted for {user}");
                }
            }
        }
        _ => {
            // ACLs as setACL and create carry them, checked against ip identities.
            if let Ok(acls) = Acl::decode_list(&mut Reader::new(body)) {
                for acl in &acls {
                    if acl.id.scheme == "ip" {
                        let _ = zooid_tree::acl::valid_ip(&acl.id.id);
                        let _ = zooid_tree::acl::ip_matches("10.1.2.3", &acl.id.id);
                        let _ = zooid_tree::acl::ip_matches("2001:db8::1", &acl.id.id);
                    }
                }
                let ids = [Id {
                    scheme: "ip".into(),
                    id: "10.1.2.3".into(),
                }];
                let _ = zooid_tree::acl::check(&acls, &ids, 31);
            }
        }
    }
});
