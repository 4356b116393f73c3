#![allow(clippy::unwrap_used)]
//! Stat rules and apply semantics, checked against what ZooKeeper computes.

use bytes::{Bytes, BytesMut};
use zooid_proto::{Acl, ErrorCode, EventType};
use zooid_tree::*;

struct T {
    tree: DataTree,
    zxid: i64,
}

const S1: i64 = 0x100;
/// The server the harness's txns come from.
const SERVER: u64 = 1;

impl T {
    fn new() -> Self {
        let mut t = T {
            tree: DataTree::new(),
            zxid: 0,
        };
        t.run(
            S1,
            TxnOp::CreateSession {
                timeout_ms: 4000,
                passwd: [1; 16],
            },
        )
        .unwrap();
        t
    }

    fn run(&mut self, session: i64, op: TxnOp) -> Result<OpOutput, ErrorCode> {
        self.apply(session, op).result
    }

    fn apply(&mut self, session: i64, op: TxnOp) -> Applied {
        self.apply_from(session, Some(SERVER), op)
    }

    fn apply_from(&mut self, session: i64, origin: Option<u64>, op: TxnOp) -> Applied {
        self.zxid += 1;
        self.tree.apply(Txn {
            zxid: self.zxid,
            time: 1000 * self.zxid,
            session,
            origin,
            checks: Checks::default(),
            op,
        })
    }

    fn delete(&mut self, path: &str) -> Result<OpOutput, ErrorCode> {
        self.run(
            S1,
            TxnOp::Delete {
                path: path.into(),
                version: -1,
            },
        )
    }

    fn create(&mut self, path: &str, kind: CreateKind, seq: bool) -> Result<String, ErrorCode> {
        match self.run(S1, create_op(path, kind, seq))? {
            OpOutput::Created { path, .. } => Ok(path),
            other => panic!("unexpected {other:?}"),
        }
    }
}

fn create_op(path: &str, kind: CreateKind, seq: bool) -> TxnOp {
    TxnOp::Create(Create {
        path: path.into(),
        data: Some(Bytes::from_static(b"v")),
        acl: Acl::open(),
        kind,
        sequential: seq,
    })
}

use CreateKind::*;

#[test]
fn fresh_tree_shows_zookeepers_special_nodes() {
    let t = DataTree::new();
    let root = t.stat("/").unwrap();
    assert_eq!(root.cversion, -1, "stored 0, one child");
    assert_eq!(root.num_children, 1);
    assert_eq!(t.stat("/zookeeper").unwrap().cversion, -2);
    assert_eq!(
        t.get("/zookeeper/config").unwrap().acl[..],
        Acl::read_only()[..]
    );
    assert!(t.get("/zookeeper/quota").is_some());
    assert_eq!(t.descendant_count("/"), Some(3));
}

#[test]
fn create_sets_stat_and_parent_fields() {
    let mut t = T::new();
    t.create("/a", Persistent, false).unwrap();
    let s = t.tree.stat("/a").unwrap();
    assert_eq!((s.czxid, s.mzxid, s.pzxid), (2, 2, 2));
    assert_eq!((s.ctime, s.mtime), (2000, 2000));
    assert_eq!((s.version, s.cversion, s.aversion), (0, 0, 0));
    assert_eq!(
        (s.data_length, s.num_children, s.ephemeral_owner),
        (1, 0, 0)
    );
    t.create("/a/b", Persistent, false).unwrap();
    let p = t.tree.stat("/a").unwrap();
    assert_eq!((p.cversion, p.num_children, p.pzxid, p.mzxid), (1, 1, 3, 2));
    t.delete("/a/b").unwrap();
    let p = t.tree.stat("/a").unwrap();
    assert_eq!((p.cversion, p.num_children, p.pzxid), (2, 0, 4));
}

#[test]
fn set_data_bumps_version_even_for_identical_bytes() {
    let mut t = T::new();
    t.create("/a", Persistent, false).unwrap();
    for expect in 1..=2 {
        let out = t
            .run(
                S1,
                TxnOp::SetData {
                    path: "/a".into(),
                    data: Some(Bytes::from_static(b"v")),
                    version: -1,
                },
            )
            .unwrap();
        let OpOutput::Stat(s) = out else { panic!() };
        assert_eq!(s.version, expect);
        assert_eq!(s.mzxid, t.zxid);
        assert_eq!(s.czxid, 2);
    }
    assert_eq!(
        t.run(
            S1,
            TxnOp::SetData {
                path: "/a".into(),
                data: None,
                version: 0
            }
        ),
        Err(ErrorCode::BadVersion)
    );
    t.run(
        S1,
        TxnOp::SetData {
            path: "/a".into(),
            data: None,
            version: 2,
        },
    )
    .unwrap();
    let n = t.tree.get("/a").unwrap();
    assert_eq!(n.data, None, "null data stays null");
    assert_eq!(n.stat().data_length, 0);
}

#[test]
fn sequential_names_count_creates_not_deletes() {
    let mut t = T::new();
    t.create("/q", Persistent, false).unwrap();
    assert_eq!(
        t.create("/q/n-", Persistent, true).unwrap(),
        "/q/n-0000000000"
    );
    assert_eq!(t.create("/q/x", Persistent, false).unwrap(), "/q/x");
    t.run(
        S1,
        TxnOp::Delete {
            path: "/q/x".into(),
            version: -1,
        },
    )
    .unwrap();
    assert_eq!(t.create("/q/", Persistent, true).unwrap(), "/q/0000000002");
    // Failed creates do not count either.
    assert_eq!(
        t.create("/q/n-0000000000", Persistent, false),
        Err(ErrorCode::NodeExists)
    );
    assert_eq!(
        t.create("/q/n-", Ephemeral, true).unwrap(),
        "/q/n-0000000003"
    );
}

#[test]
fn create_errors_in_zookeeper_order() {
    let mut t = T::new();
    assert_eq!(
        t.create("a", Persistent, false),
        Err(ErrorCode::BadArguments)
    );
    assert_eq!(t.create("/a/b", Persistent, false), Err(ErrorCode::NoNode));
    assert_eq!(t.create("/a/", Persistent, false), Err(ErrorCode::NoNode));
    assert_eq!(t.create("/a/.", Persistent, false), Err(ErrorCode::NoNode));
    assert_eq!(
        t.create("/.", Persistent, false),
        Err(ErrorCode::BadArguments)
    );
    assert_eq!(t.create("/", Persistent, false), Err(ErrorCode::NodeExists));
    assert_eq!(
        t.create("/zookeeper", Persistent, false),
        Err(ErrorCode::NodeExists)
    );
    t.create("/e", Ephemeral, false).unwrap();
    assert_eq!(
        t.create("/e/c", Persistent, false),
        Err(ErrorCode::NoChildrenForEphemerals)
    );
    let bad_acl = TxnOp::Create(Create {
        path: "/x".into(),
        data: None,
        acl: vec![],
        kind: Persistent,
        sequential: false,
    });
    assert_eq!(t.run(S1, bad_acl), Err(ErrorCode::InvalidAcl));
    assert_eq!(t.create("/t", Ttl(0), false), Err(ErrorCode::BadArguments));
    assert_eq!(
        t.create("/t", Ttl(MAX_TTL_MS + 1), false),
        Err(ErrorCode::BadArguments)
    );
}

#[test]
fn delete_rules() {
    let mut t = T::new();
    for special in ["/", "/zookeeper", "/zookeeper/config", "/zookeeper/quota"] {
        assert_eq!(
            t.run(
                S1,
                TxnOp::Delete {
                    path: special.into(),
                    version: -1
                }
            ),
            Err(ErrorCode::BadArguments)
        );
    }
    t.create("/a", Persistent, false).unwrap();
    t.create("/a/b", Persistent, false).unwrap();
    assert_eq!(
        t.run(
            S1,
            TxnOp::Delete {
                path: "/a".into(),
                version: -1
            }
        ),
        Err(ErrorCode::NotEmpty)
    );
    assert_eq!(
        t.run(
            S1,
            TxnOp::Delete {
                path: "/a/b".into(),
                version: 3
            }
        ),
        Err(ErrorCode::BadVersion)
    );
    assert_eq!(
        t.run(
            S1,
            TxnOp::Delete {
                path: "/nope/x".into(),
                version: -1
            }
        ),
        Err(ErrorCode::NoNode)
    );
    assert_eq!(
        t.run(
            S1,
            TxnOp::Delete {
                path: "/a/b".into(),
                version: 0
            }
        ),
        Ok(OpOutput::Deleted)
    );
}

#[test]
fn closing_a_session_deletes_its_ephemerals_with_events() {
    let mut t = T::new();
    t.create("/p", Persistent, false).unwrap();
    t.create("/p/e1", Ephemeral, false).unwrap();
    t.create("/p/e2", Ephemeral, false).unwrap();
    assert_eq!(t.tree.stat("/p/e1").unwrap().ephemeral_owner, S1);
    assert_eq!(t.tree.ephemerals(S1, "/p/e"), vec!["/p/e1", "/p/e2"]);
    assert_eq!(t.tree.ephemerals(S1, "/"), vec!["/p/e1", "/p/e2"]);
    let applied = t.apply(S1, TxnOp::CloseSession);
    assert_eq!(
        applied.result,
        Ok(OpOutput::SessionClosed {
            deleted: vec!["/p/e1".into(), "/p/e2".into()]
        })
    );
    let kinds: Vec<_> = applied
        .events
        .iter()
        .map(|e| (e.kind, e.path.as_str()))
        .collect();
    assert_eq!(
        kinds,
        vec![
            (EventType::NodeDeleted, "/p/e1"),
            (EventType::NodeChildrenChanged, "/p"),
            (EventType::NodeDeleted, "/p/e2"),
            (EventType::NodeChildrenChanged, "/p"),
        ]
    );
    assert_eq!(t.tree.stat("/p").unwrap().pzxid, t.zxid);
    assert!(t.tree.session(S1).is_none());
    assert_eq!(
        t.create("/p/e3", Ephemeral, false),
        Err(ErrorCode::SessionExpired)
    );
}

#[test]
fn failed_multi_changes_nothing_and_reports_the_failing_op() {
    let mut t = T::new();
    t.create("/a", Persistent, false).unwrap();
    let before = t.tree.stat("/a").unwrap();
    let applied = t.apply(
        S1,
        TxnOp::Multi(vec![
            create_op("/a/x", Persistent, false),
            TxnOp::SetData {
                path: "/a".into(),
                data: None,
                version: -1,
            },
            create_op("/a/s-", Ephemeral, true),
            TxnOp::Delete {
                path: "/a/x".into(),
                version: -1,
            },
            TxnOp::Check {
                path: "/a".into(),
                version: 0,
            },
            TxnOp::Create(Create {
                path: "/b".into(),
                data: None,
                acl: Acl::open(),
                kind: Persistent,
                sequential: false,
            }),
        ]),
    );
    assert_eq!(
        applied.result,
        Ok(OpOutput::Multi(MultiOutput::Aborted {
            index: 4,
            code: ErrorCode::BadVersion
        }))
    );
    assert!(applied.events.is_empty());
    assert_eq!(t.tree.stat("/a").unwrap(), before);
    assert_eq!(t.tree.get("/a").unwrap().stored_cversion, 0);
    assert!(t.tree.get("/a/x").is_none());
    assert!(t.tree.ephemerals(S1, "/").is_empty());
    assert_eq!(
        t.tree.last_zxid(),
        t.zxid,
        "a failed multi still takes its zxid"
    );
}

#[test]
fn committed_multi_shares_one_zxid_and_sees_earlier_ops() {
    let mut t = T::new();
    let applied = t.apply(
        S1,
        TxnOp::Multi(vec![
            create_op("/m", Persistent, false),
            create_op("/m/c", Persistent, false),
            TxnOp::SetData {
                path: "/m".into(),
                data: None,
                version: 0,
            },
            TxnOp::Check {
                path: "/m".into(),
                version: 1,
            },
        ]),
    );
    let Ok(OpOutput::Multi(MultiOutput::Committed(outs))) = applied.result else {
        panic!()
    };
    assert_eq!(outs.len(), 4);
    let s = t.tree.stat("/m").unwrap();
    assert_eq!((s.czxid, s.mzxid, s.pzxid, s.version), (2, 2, 2, 1));
    assert_eq!(applied.events.len(), 5);
}

#[test]
fn set_acl_uses_aversion_and_leaves_data_alone() {
    let mut t = T::new();
    t.create("/a", Persistent, false).unwrap();
    let op = |v| TxnOp::SetAcl {
        path: "/a".into(),
        acl: Acl::read_only(),
        version: v,
    };
    assert_eq!(t.run(S1, op(1)), Err(ErrorCode::BadVersion));
    let Ok(OpOutput::Stat(s)) = t.run(S1, op(0)) else {
        panic!()
    };
    assert_eq!((s.aversion, s.version, s.mzxid), (1, 0, 2));
    let world_bad = TxnOp::SetAcl {
        path: "/a".into(),
        acl: vec![Acl {
            perms: 31,
            id: zooid_proto::Id {
                scheme: "world".into(),
                id: "x".into(),
            },
        }],
        version: -1,
    };
    assert_eq!(t.run(S1, world_bad), Err(ErrorCode::InvalidAcl));
}

#[test]
fn containers_and_ttl_nodes_are_collected_only_when_due() {
    let mut t = T::new();
    t.create("/c", Container, false).unwrap();
    t.create("/t", Ttl(500), false).unwrap();
    assert_eq!(t.tree.stat("/c").unwrap().ephemeral_owner, 0);
    assert_eq!(t.tree.stat("/t").unwrap().ephemeral_owner, 0);
    let now = 1000 * t.zxid;
    assert!(
        t.tree.expired_containers(now).is_empty(),
        "never-used container is kept"
    );
    t.create("/c/x", Persistent, false).unwrap();
    t.run(
        S1,
        TxnOp::Delete {
            path: "/c/x".into(),
            version: -1,
        },
    )
    .unwrap();
    let mut due = t.tree.expired_containers(1000 * (t.zxid + 1));
    due.sort();
    assert_eq!(due, vec!["/c", "/t"]);
    assert_eq!(
        t.run(S1, TxnOp::DeleteContainer { path: "/c".into() }),
        Ok(OpOutput::Deleted)
    );
    assert_eq!(
        t.run(S1, TxnOp::DeleteContainer { path: "/t".into() }),
        Ok(OpOutput::Deleted)
    );
    t.create("/p", Persistent, false).unwrap();
    assert_eq!(
        t.run(S1, TxnOp::DeleteContainer { path: "/p".into() }),
        Err(ErrorCode::BadVersion)
    );
}

/// The tree and the events a fixed history of txns gives, as text: nodes in path order with
/// their data and Stat, then sessions.
fn canonical_history() -> String {
    let mut t = T::new();
    let mut out = String::new();
    let mut log = |a: Applied| out.push_str(&format!("{:?} {:?}\n", a.result, a.events));
    const S2: i64 = 0x200;
    log(t.apply(
        S2,
        TxnOp::CreateSession {
            timeout_ms: 6000,
            passwd: [2; 16],
        },
    ));
    for (session, path, kind, seq) in [
        (S1, "/a", Persistent, false),
        (S1, "/a/s", Ephemeral, true),
        (S2, "/a/s", Ephemeral, true),
        (S2, "/c", Container, false),
        (S2, "/c/x", Ephemeral, false),
        (S1, "/t", Ttl(5000), true),
    ] {
        log(t.apply(session, create_op(path, kind, seq)));
    }
    log(t.apply(
        S1,
        TxnOp::SetData {
            path: "/a".into(),
            data: None,
            version: -1,
        },
    ));
    log(t.apply(
        S1,
        TxnOp::Multi(vec![
            create_op("/a/m", Persistent, false),
            TxnOp::Delete {
                path: "/nope".into(),
                version: -1,
            },
        ]),
    ));
    log(t.apply(S2, TxnOp::CloseSession));
    let mut paths: Vec<&String> = t.tree.paths().collect();
    paths.sort();
    for p in paths {
        let n = t.tree.get(p).unwrap();
        out.push_str(&format!("{p} {:?} {:?} {:?}\n", n.data, n.stat(), n.acl));
    }
    for (id, m) in t.tree.sessions() {
        out.push_str(&format!("session {id:x} {m:?}\n"));
    }
    out
}

/// Replicas apply the same txns in different processes, where hash maps iterate in different
/// orders: the same history must give the same tree and the same events. This test runs the
/// history here and in a second process (this test binary again) and compares the two.
#[test]
fn applying_the_same_txns_gives_the_same_tree() {
    const CHILD: &str = "ZOOID_TEST_PRINT_HISTORY";
    let here = canonical_history();
    if std::env::var_os(CHILD).is_some() {
        println!("<<<{here}>>>");
        return;
    }
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "applying_the_same_txns_gives_the_same_tree",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD, "1")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "child run failed:\n{stdout}");
    let there = stdout
        .split_once("<<<")
        .and_then(|(_, rest)| rest.split_once(">>>"))
        .map(|(h, _)| h)
        .expect("the child printed its history");
    assert!(here.lines().count() > 15, "history too short:\n{here}");
    assert_eq!(
        here, there,
        "two processes applied the same txns differently"
    );
}

#[test]
fn ops_round_trip_through_the_log_encoding() {
    let ops = vec![
        TxnOp::CreateSession {
            timeout_ms: 4000,
            passwd: [7; 16],
        },
        TxnOp::CloseSession,
        create_op("/a", Ttl(99), true),
        create_op("/b", Ephemeral, false),
        TxnOp::Delete {
            path: "/a".into(),
            version: 3,
        },
        TxnOp::SetData {
            path: "/a".into(),
            data: None,
            version: -1,
        },
        TxnOp::SetAcl {
            path: "/a".into(),
            acl: Acl::read_only(),
            version: 1,
        },
        TxnOp::Multi(vec![
            TxnOp::Check {
                path: "/".into(),
                version: 0,
            },
            create_op("/c", Container, false),
        ]),
        TxnOp::DeleteContainer { path: "/c".into() },
        TxnOp::Error(ErrorCode::BadArguments),
        TxnOp::RestoreChunk {
            id: -5,
            offset: 1 << 40,
            bytes: Bytes::from_static(b"chunk"),
        },
        TxnOp::Restore { id: 9, len: 77 },
        TxnOp::CancelRestore { id: 9 },
    ];
    for op in ops {
        let mut b = bytes::BytesMut::new();
        encode_op(&op, &mut b);
        let mut r = zooid_proto::Reader::new(&b);
        assert_eq!(decode_op(&mut r).unwrap(), op);
        assert_eq!(r.remaining(), 0);
        // Every truncation is an error, never a panic.
        for cut in 0..b.len() {
            assert!(decode_op(&mut zooid_proto::Reader::new(&b[..cut])).is_err());
        }
    }
}

#[test]
fn snapshot_round_trip_preserves_everything() {
    let mut t = T::new();
    t.create("/a", Persistent, false).unwrap();
    t.create("/a/e", Ephemeral, true).unwrap();
    t.create("/c", Container, false).unwrap();
    t.create("/t", Ttl(1000), false).unwrap();
    t.run(
        S1,
        TxnOp::Delete {
            path: "/t".into(),
            version: -1,
        },
    )
    .unwrap();
    t.run(
        S1,
        TxnOp::SetAcl {
            path: "/a".into(),
            acl: Acl::read_only(),
            version: -1,
        },
    )
    .unwrap();
    let mut b = bytes::BytesMut::new();
    t.tree.encode_snapshot(&mut b);
    let restored = DataTree::decode_snapshot(&b).unwrap();
    let mut b2 = bytes::BytesMut::new();
    restored.encode_snapshot(&mut b2);
    assert_eq!(b, b2, "encoding is deterministic and lossless");
    for p in ["/", "/a", "/a/e0000000000", "/c", "/zookeeper/config"] {
        assert_eq!(restored.get(p), t.tree.get(p), "{p}");
    }
    assert_eq!(restored.last_zxid(), t.tree.last_zxid());
    assert_eq!(restored.ephemerals(S1, "/"), vec!["/a/e0000000000"]);
    assert!(restored.session(S1).is_some());
    for cut in [0, 3, b.len() / 2, b.len() - 1] {
        assert!(DataTree::decode_snapshot(&b[..cut]).is_err());
    }
}

#[test]
fn a_frozen_tree_keeps_its_moment_while_the_tree_moves_on() {
    let mut t = T::new();
    t.create("/a", CreateKind::Persistent, false).unwrap();
    t.create("/a/b", CreateKind::Persistent, false).unwrap();
    let mut before = bytes::BytesMut::new();
    t.tree.encode_snapshot(&mut before);
    let frozen = t.tree.freeze();
    // Change data, children and stats of nodes the frozen copy shares.
    t.run(
        S1,
        TxnOp::SetData {
            path: "/a".into(),
            data: Some(Bytes::from_static(b"changed")),
            version: -1,
        },
    )
    .unwrap();
    t.create("/a/c", CreateKind::Persistent, false).unwrap();
    t.delete("/a/b").unwrap();
    let mut from_frozen = bytes::BytesMut::new();
    frozen.encode(&mut from_frozen);
    assert_eq!(from_frozen, before, "the frozen copy saw later changes");
    let mut now = bytes::BytesMut::new();
    t.tree.encode_snapshot(&mut now);
    assert_ne!(now, before);
    let restored = DataTree::decode_snapshot(&from_frozen).unwrap();
    assert!(restored.get("/a/b").is_some() && restored.get("/a/c").is_none());
}

/// Hands out a stream a few bytes at a time, as a decompressor may.
struct Trickle<'a> {
    bytes: &'a [u8],
    step: usize,
}

impl std::io::Read for Trickle<'_> {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        self.step = self.step % 7 + 1;
        let n = self.step.min(out.len()).min(self.bytes.len());
        out[..n].copy_from_slice(&self.bytes[..n]);
        self.bytes = &self.bytes[n..];
        Ok(n)
    }
}

#[test]
fn a_snapshot_streamed_in_small_pieces_restores_the_same_tree() {
    let mut t = T::new();
    t.create("/a", CreateKind::Persistent, false).unwrap();
    // Larger than what a restore reads at a time, so one record spans several reads.
    let big = Bytes::from(vec![7u8; 300 * 1024]);
    t.run(
        S1,
        TxnOp::SetData {
            path: "/a".into(),
            data: Some(big.clone()),
            version: -1,
        },
    )
    .unwrap();
    for i in 0..50 {
        t.create(&format!("/a/n{i}"), CreateKind::Persistent, false)
            .unwrap();
    }
    t.create("/a/e", CreateKind::Ephemeral, false).unwrap();
    let mut b = bytes::BytesMut::new();
    t.tree.encode_snapshot(&mut b);

    let restored = DataTree::read_snapshot(&mut Trickle { bytes: &b, step: 0 }).unwrap();
    let mut again = bytes::BytesMut::new();
    restored.encode_snapshot(&mut again);
    assert_eq!(again, b);
    assert_eq!(restored.get("/a").unwrap().data.as_ref(), Some(&big));
    assert_eq!(restored.get("/a").unwrap().children.len(), 51);
    assert_eq!(restored.ephemerals(S1, "/"), vec!["/a/e"]);

    for cut in [5, b.len() / 3, b.len() - 1] {
        let short = DataTree::read_snapshot(&mut Trickle {
            bytes: &b[..cut],
            step: 0,
        });
        assert!(short.is_err(), "a stream cut at {cut} must not restore");
    }
}

/// The totals monitoring reads are kept as nodes change; they must equal a walk of the tree
/// after creates, data changes, deletes, a multi that rolls back, a session close and a restore.
#[test]
fn kept_totals_equal_a_walk_of_the_tree() {
    fn walked(tree: &DataTree) -> (u64, usize, usize) {
        let mut bytes = 0;
        let mut ephemerals = 0;
        let mut collectable = 0;
        for p in tree.paths() {
            let n = tree.get(p).unwrap();
            bytes += (p.len() + n.data.as_ref().map_or(0, |d| d.len())) as u64;
            ephemerals += usize::from(n.stat().ephemeral_owner != 0);
            collectable += usize::from(matches!(
                n.kind,
                zooid_tree::NodeKind::Container | zooid_tree::NodeKind::Ttl(_)
            ));
        }
        (bytes, ephemerals, collectable)
    }
    let check = |tree: &DataTree, when: &str| {
        assert_eq!(
            (
                tree.approximate_data_size(),
                tree.ephemeral_count(),
                tree.collection_view().candidates()
            ),
            walked(tree),
            "{when}"
        );
    };
    let mut t = T::new();
    check(&t.tree, "fresh");
    t.create("/a", Persistent, false).unwrap();
    t.create("/a/e", Ephemeral, false).unwrap();
    t.create("/a/s", Persistent, true).unwrap();
    t.create("/a/c", Container, false).unwrap();
    t.create("/a/t", Ttl(1000), false).unwrap();
    check(&t.tree, "after creates");
    t.run(
        S1,
        TxnOp::SetData {
            path: "/a".into(),
            data: Some(Bytes::from(vec![1u8; 1000])),
            version: -1,
        },
    )
    .unwrap();
    check(&t.tree, "after setData");
    let failed = t.run(
        S1,
        TxnOp::Multi(vec![
            create_op("/a/m", Ephemeral, false),
            create_op("/a/mc", Container, false),
            TxnOp::Delete {
                path: "/a/t".into(),
                version: -1,
            },
            TxnOp::SetData {
                path: "/a".into(),
                data: None,
                version: -1,
            },
            TxnOp::Delete {
                path: "/a/e".into(),
                version: -1,
            },
            TxnOp::Delete {
                path: "/missing".into(),
                version: -1,
            },
        ]),
    );
    assert!(matches!(
        failed,
        Ok(OpOutput::Multi(MultiOutput::Aborted { .. }))
    ));
    check(&t.tree, "after a multi rolled back");
    t.delete("/a/s0000000001").unwrap();
    t.delete("/a/c").unwrap();
    check(&t.tree, "after a delete");
    assert_eq!(t.tree.collection_view().candidates(), 1);
    let mut b = Vec::new();
    t.tree.freeze().encode_to(&mut b).unwrap();
    let restored = DataTree::read_snapshot(&mut b.as_slice()).unwrap();
    check(&restored, "after a restore");
    t.run(S1, TxnOp::CloseSession).unwrap();
    check(&t.tree, "after the session closed");
    assert_eq!(t.tree.ephemeral_count(), 0);
}

#[test]
fn a_moved_session_counts_only_from_its_new_server() {
    let mut t = T::new();
    t.create("/a", Persistent, false).unwrap();
    assert_eq!(t.tree.session(S1).unwrap().owner, SERVER);
    let set = |v: i32| TxnOp::SetData {
        path: "/a".into(),
        data: Some(Bytes::from(vec![v as u8])),
        version: v,
    };
    let moved = t.apply_from(S1, Some(2), TxnOp::MoveSession { to: 2 });
    assert_eq!(moved.result, Ok(OpOutput::SessionMoved));
    assert_eq!(t.tree.session(S1).unwrap().owner, 2);
    // What the former server still sends changes nothing.
    let stale = t.apply_from(S1, Some(SERVER), set(0));
    assert_eq!(stale.result, Err(ErrorCode::SessionMoved));
    assert!(stale.events.is_empty());
    assert_eq!(t.tree.get("/a").unwrap().stat().version, 0);
    assert_eq!(
        t.apply_from(S1, Some(SERVER), TxnOp::Multi(vec![set(0)]))
            .result,
        Ok(OpOutput::Multi(MultiOutput::Aborted {
            index: 0,
            code: ErrorCode::SessionMoved
        }))
    );
    assert_eq!(
        t.apply_from(S1, Some(SERVER), TxnOp::CloseSession).result,
        Err(ErrorCode::SessionMoved)
    );
    // The new server's requests count.
    assert!(t.apply_from(S1, Some(2), set(0)).result.is_ok());
    // Moving back is a move like any other.
    t.apply_from(S1, Some(SERVER), TxnOp::MoveSession { to: SERVER });
    assert!(t.apply_from(S1, Some(SERVER), set(1)).result.is_ok());
    // The ensemble's own expiry comes from no server in particular.
    assert!(matches!(
        t.apply_from(S1, None, TxnOp::CloseSession).result,
        Ok(OpOutput::SessionClosed { .. })
    ));
    assert_eq!(
        t.apply_from(S1, Some(2), TxnOp::MoveSession { to: 2 })
            .result,
        Err(ErrorCode::SessionExpired)
    );
    // Sessions are opened and moved by whole txns only.
    assert_eq!(
        t.run(S1, TxnOp::Multi(vec![TxnOp::MoveSession { to: 2 }])),
        Ok(OpOutput::Multi(MultiOutput::Aborted {
            index: 0,
            code: ErrorCode::BadArguments
        }))
    );
}

/// Snapshots written before session owners were recorded (encoding version 1) still restore:
/// their sessions are held by no server in particular.
#[test]
fn a_snapshot_without_session_owners_restores() {
    let mut t = T::new();
    t.create("/a", Ephemeral, false).unwrap();
    let mut now = BytesMut::new();
    t.tree.encode_snapshot(&mut now);
    // Version 4 has the tree's digest after the last zxid; version 3 is the rest.
    let mut b = 3i32.to_be_bytes().to_vec();
    b.extend_from_slice(&now[4..12]);
    b.extend_from_slice(&now[20..]);
    let restored = DataTree::decode_snapshot(&b).unwrap();
    assert_eq!(restored.digest(), t.tree.digest());
    // Version 2: version, last zxid, session count, then per session: id, timeout, password
    // (length + 16 bytes) and the owner, last.
    const HEADER: usize = 4 + 8 + 4;
    const SESSION_V1: usize = 8 + 4 + 4 + 16;
    let mut v1 = 1i32.to_be_bytes().to_vec();
    v1.extend_from_slice(&b[4..HEADER + SESSION_V1]);
    v1.extend_from_slice(&b[HEADER + SESSION_V1 + 8..]);
    let restored = DataTree::decode_snapshot(&v1).unwrap();
    assert_eq!(restored.session(S1).unwrap().owner, 0);
    assert_eq!(restored.session(S1).unwrap().passwd, [1; 16]);
    assert_eq!(restored.ephemerals(S1, "/"), vec!["/a".to_string()]);
    // Version 2: as now without the staged restore's flag, the last byte.
    let mut v2 = b[..b.len() - 1].to_vec();
    v2[..4].copy_from_slice(&2i32.to_be_bytes());
    let restored = DataTree::decode_snapshot(&v2).unwrap();
    assert_eq!(restored.session(S1).unwrap().owner, SERVER);
    assert!(restored.staged_restore().is_none());
    let mut v5 = now.to_vec();
    v5[..4].copy_from_slice(&5i32.to_be_bytes());
    assert!(DataTree::decode_snapshot(&v5).is_err());
}

/// A snapshot carries its tree's digest, and a tree read back that does not match it is
/// refused: a snapshot restores exactly or not at all.
#[test]
fn a_snapshot_restores_to_the_digest_it_was_written_with() {
    let mut t = T::new();
    t.create("/a", Persistent, false).unwrap();
    let set = |data: &'static [u8]| TxnOp::SetData {
        path: "/a".into(),
        data: Some(Bytes::from_static(data)),
        version: -1,
    };
    t.run(S1, set(b"hello")).unwrap();
    let mut b = BytesMut::new();
    t.tree.encode_snapshot(&mut b);
    let head = DataTree::snapshot_head(&mut &b[..]).unwrap();
    assert_eq!(head.digest, Some(t.tree.digest()));
    let restored = DataTree::decode_snapshot(&b).unwrap();
    assert_eq!(restored.digest(), t.tree.digest());
    // The digest moves with any change to data or stat.
    t.run(S1, set(b"hellp")).unwrap();
    assert_ne!(t.tree.digest(), restored.digest());
    // One byte of /a's data changed in the encoding: refused.
    let at = b.windows(5).position(|w| w == b"hello").unwrap();
    let mut corrupt = b.to_vec();
    corrupt[at + 4] = b'p';
    let err = DataTree::decode_snapshot(&corrupt).err().unwrap();
    assert!(
        matches!(err, zooid_tree::SnapshotError::Digest { .. }),
        "{err}"
    );
}

/// The snapshot encoding of `tree`, cut into chunks of `size` bytes, each compressed.
fn chunks_of(tree: &DataTree, size: usize) -> Vec<Bytes> {
    let mut b = BytesMut::new();
    tree.encode_snapshot(&mut b);
    b.chunks(size).map(restore::compress_chunk).collect()
}

fn stage(t: &mut T, id: i64, offset: usize, chunk: &Bytes) -> Result<OpOutput, ErrorCode> {
    t.apply_from(
        0,
        None,
        TxnOp::RestoreChunk {
            id,
            offset: offset as i64,
            bytes: chunk.clone(),
        },
    )
    .result
}

/// A backup restored through ordered chunks replaces the nodes and sessions at once, on the
/// restore's zxid, keeping the ensemble's own config; chunks out of order are refused, and a
/// snapshot taken half-way carries the staged chunks.
#[test]
fn a_backup_restores_through_ordered_chunks() {
    let mut backup = T::new();
    backup.create("/kept", Persistent, false).unwrap();
    backup.create("/kept/e", Ephemeral, false).unwrap();
    for i in 0..50 {
        backup
            .create(&format!("/kept/n{i}"), Persistent, false)
            .unwrap();
    }
    let chunks = chunks_of(&backup.tree, 300);
    assert!(chunks.len() > 3);
    let len: usize = chunks.iter().map(Bytes::len).sum();

    let mut t = T::new();
    t.create("/gone", Persistent, false).unwrap();
    t.tree
        .set_config(Bytes::from_static(b"server.1=a:1:2"), t.zxid, 0);
    let config = t.tree.get("/zookeeper/config").unwrap().clone();
    t.zxid = 1000;
    // Not the start of a restore; then a chunk of another restore, or at the wrong offset.
    assert_eq!(
        stage(&mut t, 7, 10, &chunks[0]),
        Err(ErrorCode::BadArguments)
    );
    assert_eq!(
        stage(&mut t, 7, 0, &chunks[0]),
        Ok(OpOutput::RestoreStaged {
            len: chunks[0].len() as u64
        })
    );
    assert_eq!(
        stage(&mut t, 8, 300, &chunks[1]),
        Err(ErrorCode::BadArguments)
    );
    assert_eq!(
        stage(&mut t, 7, 299, &chunks[1]),
        Err(ErrorCode::BadArguments)
    );
    let mut offset = chunks[0].len();
    for (i, chunk) in chunks.iter().enumerate().skip(1) {
        if i == chunks.len() / 2 {
            // A replica that restarts or catches up from a snapshot taken now has the chunks.
            let mut b = BytesMut::new();
            t.tree.encode_snapshot(&mut b);
            let copy = DataTree::decode_snapshot(&b).unwrap();
            assert_eq!(copy.staged_restore(), t.tree.staged_restore());
            assert_eq!(copy.staged_restore().unwrap().len(), offset as u64);
            t.tree = copy;
        }
        stage(&mut t, 7, offset, chunk).unwrap();
        offset += chunk.len();
    }
    // The wrong length or id changes nothing; the right ones swap the state in.
    let swap = |t: &mut T, id, len: usize| {
        t.apply_from(
            0,
            None,
            TxnOp::Restore {
                id,
                len: len as i64,
            },
        )
    };
    assert_eq!(swap(&mut t, 8, len).result, Err(ErrorCode::NoNode));
    assert!(t.tree.get("/gone").is_some());
    let applied = swap(&mut t, 7, len);
    assert_eq!(
        applied.result,
        Ok(OpOutput::Restored {
            last_zxid: backup.tree.last_zxid(),
            nodes: backup.tree.node_count(),
            digest: backup.tree.digest(),
        })
    );
    assert!(t.tree.get("/gone").is_none());
    assert!(t.tree.get("/kept/n49").is_some());
    assert_eq!(t.tree.last_zxid(), t.zxid, "the order goes on, never back");
    assert_eq!(t.tree.get("/zookeeper/config"), Some(&config));
    assert_eq!(t.tree.session(S1).unwrap().owner, 0, "held by no server");
    assert_eq!(t.tree.ephemerals(S1, "/"), vec!["/kept/e".to_string()]);
    assert!(t.tree.staged_restore().is_none());
    assert_eq!(swap(&mut t, 7, len).result, Err(ErrorCode::NoNode));
    // Restore ops are whole txns, never a multi's.
    let multi = t.run(S1, TxnOp::Multi(vec![TxnOp::CancelRestore { id: 7 }]));
    assert!(matches!(
        multi,
        Ok(OpOutput::Multi(MultiOutput::Aborted {
            code: ErrorCode::BadArguments,
            ..
        }))
    ));
}

/// A cancelled restore, and one whose state does not decode, leave the tree as it was.
#[test]
fn a_cancelled_or_undecodable_restore_changes_nothing() {
    let mut t = T::new();
    t.create("/here", Persistent, false).unwrap();
    let junk = Bytes::from_static(b"not a snapshot at all");
    stage(&mut t, 1, 0, &junk).unwrap();
    let cancel = |t: &mut T, id| t.apply_from(0, None, TxnOp::CancelRestore { id }).result;
    assert_eq!(cancel(&mut t, 2), Err(ErrorCode::NoNode));
    assert_eq!(cancel(&mut t, 1), Ok(OpOutput::RestoreCancelled));
    assert!(t.tree.staged_restore().is_none());
    stage(&mut t, 3, 0, &junk).unwrap();
    let restored = t.apply_from(
        0,
        None,
        TxnOp::Restore {
            id: 3,
            len: junk.len() as i64,
        },
    );
    assert_eq!(restored.result, Err(ErrorCode::BadArguments));
    assert!(t.tree.get("/here").is_some());
    assert!(t.tree.staged_restore().is_none());
}

#[test]
fn a_session_id_in_use_is_refused_and_keeps_its_password() {
    let mut t = T::new();
    let again = TxnOp::CreateSession {
        timeout_ms: 9000,
        passwd: [9; 16],
    };
    assert_eq!(t.run(S1, again), Err(ErrorCode::RuntimeInconsistency));
    let meta = t.tree.session(S1).unwrap();
    assert_eq!((meta.passwd, meta.timeout_ms), ([1; 16], 4000));
}

/// ACL checks made by the apply, for the identities a txn carries, in ZooKeeper's order.
mod acl_checks {
    use super::*;
    use zooid_proto::{perms, Id};

    fn id(scheme: &str, id: &str) -> Id {
        Id {
            scheme: scheme.into(),
            id: id.into(),
        }
    }

    fn entry(perms: i32, scheme: &str, i: &str) -> Acl {
        Acl {
            perms,
            id: id(scheme, i),
        }
    }

    fn as_ids(t: &mut T, ids: &[Id], op: TxnOp) -> Result<OpOutput, ErrorCode> {
        t.zxid += 1;
        t.tree
            .apply(Txn {
                zxid: t.zxid,
                time: 1000 * t.zxid,
                session: S1,
                origin: Some(SERVER),
                checks: Checks {
                    ids: Some(ids.into()),
                    quota: false,
                },
                op,
            })
            .result
    }

    fn with_acl(path: &str, acl: Vec<Acl>) -> TxnOp {
        TxnOp::Create(Create {
            path: path.into(),
            data: None,
            acl,
            kind: Persistent,
            sequential: false,
        })
    }

    fn set(path: &str, version: i32) -> TxnOp {
        TxnOp::SetData {
            path: path.into(),
            data: None,
            version,
        }
    }

    /// `/r` readable by anyone and nothing else, `/r/c` open; `/alice` all Alice's.
    fn tree() -> T {
        let mut t = T::new();
        t.run(
            S1,
            with_acl("/r", vec![entry(perms::READ, "world", "anyone")]),
        )
        .unwrap();
        t.run(S1, with_acl("/r/c", Acl::open())).unwrap();
        t.run(
            S1,
            with_acl("/alice", vec![entry(perms::ALL, "digest", "alice:h")]),
        )
        .unwrap();
        t
    }

    #[test]
    fn each_write_needs_its_permission_on_the_node_or_its_parent() {
        let mut t = tree();
        let anon = [id("ip", "127.0.0.1")];
        let nope = Err(ErrorCode::NoAuth);
        assert_eq!(as_ids(&mut t, &anon, with_acl("/r/d", Acl::open())), nope);
        assert_eq!(
            as_ids(
                &mut t,
                &anon,
                TxnOp::Delete {
                    path: "/r/c".into(),
                    version: -1
                }
            ),
            nope
        );
        assert_eq!(as_ids(&mut t, &anon, set("/r", -1)), nope);
        let admin = TxnOp::SetAcl {
            path: "/r".into(),
            acl: Acl::open(),
            version: -1,
        };
        assert_eq!(as_ids(&mut t, &anon, admin.clone()), nope);
        // The child's own ACL is open: WRITE on it does not need the parent's.
        assert!(as_ids(&mut t, &anon, set("/r/c", -1)).is_ok());
        // Alice may do everything on hers; someone else nothing; super anything.
        let alice = [id("ip", "127.0.0.1"), id("digest", "alice:h")];
        assert!(as_ids(&mut t, &alice, set("/alice", -1)).is_ok());
        assert_eq!(
            as_ids(&mut t, &[id("digest", "bob:h")], set("/alice", -1)),
            nope
        );
        assert!(as_ids(&mut t, &[id("super", "")], admin).is_ok());
        // The server's own txns (no identities) are not checked.
        assert!(t.run(S1, set("/alice", -1)).is_ok());
    }

    #[test]
    fn the_checks_come_where_zookeeper_makes_them() {
        let mut t = tree();
        let anon = [id("ip", "127.0.0.1")];
        // A missing parent is NONODE before any permission is looked at...
        assert_eq!(
            as_ids(&mut t, &anon, with_acl("/missing/x", Acl::open())),
            Err(ErrorCode::NoNode)
        );
        let delete = |path: &str| TxnOp::Delete {
            path: path.into(),
            version: -1,
        };
        assert_eq!(
            as_ids(&mut t, &anon, delete("/missing/x")),
            Err(ErrorCode::NoNode)
        );
        // ...but the parent's permission comes before the node's existence (a delete of a
        // child that is not there, under a parent that refuses DELETE: NOAUTH, as ZooKeeper
        // answers, the differential identity scenarios show), versions and children.
        assert_eq!(
            as_ids(&mut t, &anon, delete("/r/gone")),
            Err(ErrorCode::NoAuth)
        );
        assert_eq!(
            as_ids(&mut t, &anon, with_acl("/r/c", Acl::open())),
            Err(ErrorCode::NoAuth)
        );
        assert_eq!(
            as_ids(&mut t, &anon, set("/alice", 7)),
            Err(ErrorCode::NoAuth)
        );
        // A malformed ACL is INVALIDACL before the parent's permission.
        assert_eq!(
            as_ids(&mut t, &anon, with_acl("/r/e", vec![])),
            Err(ErrorCode::InvalidAcl)
        );
    }

    #[test]
    fn a_multi_stops_at_its_first_op_not_permitted_and_changes_nothing() {
        let mut t = tree();
        let anon = [id("ip", "127.0.0.1")];
        let ops = vec![
            with_acl("/new", Acl::open()),
            TxnOp::Check {
                path: "/r".into(),
                version: -1,
            },
            set("/alice", -1),
        ];
        let out = as_ids(&mut t, &anon, TxnOp::Multi(ops)).unwrap();
        assert_eq!(
            out,
            OpOutput::Multi(MultiOutput::Aborted {
                index: 2,
                code: ErrorCode::NoAuth
            })
        );
        assert!(t.tree.get("/new").is_none(), "rolled back");
        // check needs READ.
        let ops = vec![TxnOp::Check {
            path: "/alice".into(),
            version: -1,
        }];
        let out = as_ids(&mut t, &anon, TxnOp::Multi(ops)).unwrap();
        assert_eq!(
            out,
            OpOutput::Multi(MultiOutput::Aborted {
                index: 0,
                code: ErrorCode::NoAuth
            })
        );
    }
}

#[test]
fn hard_quotas_refuse_only_writes_that_ask_for_enforcement() {
    let mut t = T::new();
    for path in ["/h", "/zookeeper/quota/h"] {
        t.run(S1, create_op(path, Persistent, false)).unwrap();
    }
    let limits = TxnOp::Create(Create {
        path: "/zookeeper/quota/h/zookeeper_limits".into(),
        data: Some(Bytes::from_static(b"count=-1,bytes=-1=;countHardLimit=2")),
        acl: Acl::open(),
        kind: Persistent,
        sequential: false,
    });
    t.run(S1, limits).unwrap();
    t.run(
        S1,
        create_op("/zookeeper/quota/h/zookeeper_stats", Persistent, false),
    )
    .unwrap();
    t.run(S1, create_op("/h/a", Persistent, false)).unwrap();
    let enforced = |t: &mut T, op: TxnOp| {
        t.zxid += 1;
        t.tree
            .apply(Txn {
                zxid: t.zxid,
                time: 0,
                session: S1,
                origin: Some(SERVER),
                checks: Checks {
                    ids: None,
                    quota: true,
                },
                op,
            })
            .result
    };
    // /h and /h/a count 2: a third node is refused where enforcement is asked for...
    let third = create_op("/h/b", Persistent, false);
    assert_eq!(
        enforced(&mut t, third.clone()),
        Err(ErrorCode::QuotaExceeded)
    );
    // ...and, in a multi, against the figures before it, as ZooKeeper checks them.
    let multi = TxnOp::Multi(vec![
        TxnOp::Delete {
            path: "/h/a".into(),
            version: -1,
        },
        third.clone(),
    ]);
    assert_eq!(
        enforced(&mut t, multi),
        Ok(OpOutput::Multi(MultiOutput::Aborted {
            index: 1,
            code: ErrorCode::QuotaExceeded
        }))
    );
    // Unchecked (the server's own txns, or enforceQuota off): counted, not refused.
    assert!(t.run(S1, third).is_ok());
}
