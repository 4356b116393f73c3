//! Security settings end to end (the ACL rules themselves are proven against ZooKeeper by the
//! differential suite's `acl_*` scenarios).
#![allow(clippy::unwrap_used)]

mod common;

use common::{start, RawClient};
use zooid_proto::*;

/// A node only a user who does not exist may touch: anyone else is refused, unless the
/// server was started with ZooKeeper's `skipACL` (confirmed).
fn locked_node(c: &mut RawClient) {
    let (f, _) = c.call(&Request::Create(CreateRequest {
        op: OpCode::Create,
        path: "/locked".into(),
        data: Some(b"secret".to_vec()),
        acl: vec![Acl {
            perms: perms::ALL,
            id: Id::digest(b"nobody:unguessable"),
        }],
        flags: 0,
        ttl: -1,
    }));
    assert_eq!(f.err, 0);
}

fn read_and_write(c: &mut RawClient) -> (i32, i32) {
    let read = c.get("/locked", false).err().unwrap_or(0);
    let (f, _) = c.call(&Request::SetData {
        path: "/locked".into(),
        data: Some(b"changed".to_vec()),
        version: -1,
    });
    (read, f.err)
}

#[test]
fn skip_acl_turns_the_checks_off_and_only_then() {
    let checked = start(|_| {});
    let mut c = RawClient::connect(checked.addr);
    locked_node(&mut c);
    let no_auth = ErrorCode::NoAuth.code();
    assert_eq!(read_and_write(&mut c), (no_auth, no_auth));

    let open = start(|cfg| {
        cfg.skip_acl = "yes".into();
        cfg.skip_acl_confirmed = true;
    });
    let mut c = RawClient::connect(open.addr);
    locked_node(&mut c);
    assert_eq!(read_and_write(&mut c), (0, 0));
}
