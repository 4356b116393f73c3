//! Read-only mode (`readonlymode.enabled`): a member cut off from its quorum serves the
//! clients that accept a read-only server, refuses their writes with NOTREADONLY, answers
//! `isro` with `ro`, and lets them go once it is back in the quorum.
#![allow(clippy::unwrap_used)]

mod common;

use common::ensemble::{self, mode, settled};
use common::{NoFrame, RawClient, Refused};
use std::time::Duration;
use zooid_e2e::wait::wait_until;
use zooid_proto::*;

#[test]
fn a_member_cut_off_serves_read_only_sessions_and_refuses_their_writes() {
    let root = tempfile::tempdir().unwrap();
    let layout = ensemble::Layout {
        voters: 3,
        observers: 0,
        proxied: true,
    };
    let (members, proxies) =
        ensemble::start_laid_out(root.path(), "readonlymode.enabled=true\n", layout);
    let proxies = proxies.unwrap();
    let leader = settled(&members, Duration::from_secs(10));
    let cut = &members[(leader + 1) % 3];
    let other = &members[(leader + 2) % 3];
    let mut setup = RawClient::connect(cut.client);
    setup.create("/ro", b"x", 0).unwrap();
    assert_eq!(common::four_letter(cut.client, "isro"), "rw");
    // A read-write server gives a client that accepts read-only a normal session.
    let rw = RawClient::connect_read_only(cut.client).unwrap();
    assert!(!rw.read_only);
    drop(rw);

    let all: Vec<u64> = members.iter().map(|m| m.id).collect();
    proxies.partition(&[cut.id], &all);
    wait_until("isro answering ro", Duration::from_secs(10), || {
        common::four_letter(cut.client, "isro") == "ro"
    });
    assert_eq!(mode(cut.client).as_deref(), Some("read-only"));
    // The session that was there is gone with its connection.
    assert!(setup.is_closed());

    // A client that needs a read-write server is refused (its connection closed unanswered).
    let refused = RawClient::try_connect_with(cut.client, 0, [0; 16], 30000, 0);
    assert!(
        matches!(
            refused,
            Err(Refused::Expired | Refused::NoAnswer(NoFrame::Closed))
        ),
        "a read-write client was taken: {:?}",
        refused.map(|c| c.session_id)
    );

    // A read-only client reads what the member has, and cannot change anything.
    let mut ro = RawClient::connect_read_only(cut.client).expect("a read-only session");
    assert!(ro.read_only, "the handshake must say read-only");
    let (data, _) = ro.get("/ro", false).unwrap();
    assert_eq!(data.as_deref(), Some(&b"x"[..]));
    for req in [
        Request::Create(CreateRequest {
            op: OpCode::Create,
            path: "/ro/new".into(),
            data: None,
            acl: Acl::open(),
            flags: 0,
            ttl: -1,
        }),
        Request::SetData {
            path: "/ro".into(),
            data: Some(b"y".to_vec()),
            version: -1,
        },
        Request::Delete {
            path: "/ro".into(),
            version: -1,
        },
        Request::Sync { path: "/ro".into() },
    ] {
        let (f, _) = ro.call(&req);
        assert_eq!(f.err, ErrorCode::NotReadOnly as i32, "{req:?}");
    }
    // The connection stays usable after the refusals.
    assert!(ro.get("/ro", false).is_ok());

    // The other two go on taking writes.
    let mut w = RawClient::connect(other.client);
    w.create("/after", b"", 0).unwrap();

    // Healed: the member serves read-write again and lets its read-only clients go.
    proxies.heal();
    wait_until("isro answering rw", Duration::from_secs(10), || {
        common::four_letter(cut.client, "isro") == "rw"
    });
    assert!(
        ro.is_closed(),
        "a read-only client stayed on a read-write server"
    );
    let mut back = None;
    wait_until("a read-write session", Duration::from_secs(10), || {
        back = RawClient::try_connect_with(cut.client, 0, [0; 16], 30000, 0).ok();
        back.is_some()
    });
    let mut back = back.unwrap();
    let (f, _) = back.call(&Request::Sync {
        path: "/after".into(),
    });
    assert_eq!(f.err, 0);
    assert!(back.get("/after", false).is_ok());
}
