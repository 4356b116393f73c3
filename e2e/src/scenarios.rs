//! Compatibility scenarios. Each one is a short client script; the differential test runs it
//! against Apache ZooKeeper and Zooid and requires identical transcripts.

use crate::transcript::Ctx;
use zooid_proto::*;

pub struct Scenario {
    pub name: &'static str,
    pub run: fn(&mut Ctx),
}

fn acl_open() -> Vec<Acl> {
    Acl::open()
}

fn mk(op: OpCode, path: &str, data: Option<&[u8]>, flags: i32, ttl: i64) -> Request {
    Request::Create(CreateRequest {
        op,
        path: path.into(),
        data: data.map(<[u8]>::to_vec),
        acl: acl_open(),
        flags,
        ttl,
    })
}

fn create(path: &str, data: &[u8], flags: i32) -> Request {
    mk(OpCode::Create, path, Some(data), flags, -1)
}

fn create2(path: &str, flags: i32) -> Request {
    mk(OpCode::Create2, path, Some(b"d"), flags, -1)
}

fn create_acl(path: &str, acl: Vec<Acl>) -> Request {
    Request::Create(CreateRequest {
        op: OpCode::Create2,
        path: path.into(),
        data: None,
        acl,
        flags: 0,
        ttl: -1,
    })
}

fn get(path: &str, watch: bool) -> Request {
    Request::GetData {
        path: path.into(),
        watch,
    }
}

fn exists(path: &str, watch: bool) -> Request {
    Request::Exists {
        path: path.into(),
        watch,
    }
}

fn set(path: &str, data: &[u8], version: i32) -> Request {
    Request::SetData {
        path: path.into(),
        data: Some(data.to_vec()),
        version,
    }
}

fn del(path: &str, version: i32) -> Request {
    Request::Delete {
        path: path.into(),
        version,
    }
}

fn ls2(path: &str, watch: bool) -> Request {
    Request::GetChildren2 {
        path: path.into(),
        watch,
    }
}

fn ls(path: &str, watch: bool) -> Request {
    Request::GetChildren {
        path: path.into(),
        watch,
    }
}

fn check(path: &str, version: i32) -> Request {
    Request::Check {
        path: path.into(),
        version,
    }
}

fn add_watch(path: &str, mode: AddWatchMode) -> Request {
    Request::AddWatch {
        path: path.into(),
        mode: mode as i32,
    }
}

fn remove_watches(path: &str, t: WatcherType) -> Request {
    Request::RemoveWatches {
        path: path.into(),
        watcher_type: t as i32,
    }
}

fn acl(perms: i32, scheme: &str, id: &str) -> Acl {
    Acl {
        perms,
        id: Id {
            scheme: scheme.into(),
            id: id.into(),
        },
    }
}

fn auth_digest(user_pass: &str) -> Request {
    Request::Auth {
        auth_type: 0,
        scheme: "digest".into(),
        auth: user_pass.as_bytes().to_vec(),
    }
}

fn set_acl(path: &str, acl: Vec<Acl>) -> Request {
    Request::SetAcl {
        path: path.into(),
        acl,
        version: -1,
    }
}

/// Every request that reads or changes `path` (or a child `path/x` of it), from client `i`:
/// what an ACL on `path` lets through and what it refuses.
fn every_op_on(c: &mut Ctx, i: usize, path: &str) {
    let child = format!("{path}/x");
    c.req(i, exists(path, false));
    c.req(i, get(path, false));
    c.req(i, ls(path, false));
    c.req(i, ls2(path, false));
    c.req(i, Request::GetAllChildrenNumber { path: path.into() });
    c.req(i, Request::GetAcl { path: path.into() });
    c.req(
        i,
        Request::MultiRead(vec![get(path, false), ls(path, false)]),
    );
    c.req(i, Request::Multi(vec![check(path, -1)]));
    c.req(i, set(path, b"v", -1));
    c.req(i, create(&child, b"", 0));
    c.req(
        i,
        Request::Multi(vec![create(&format!("{child}m"), b"", 0)]),
    );
    c.req(i, del(&format!("{path}/c"), -1));
    c.req(
        i,
        set_acl(
            path,
            vec![acl(31, "world", "anyone"), acl(31, "digest", "zooid:x")],
        ),
    );
}

const EPH: i32 = 1;
const PSEQ: i32 = 2;
const ESEQ: i32 = 3;

macro_rules! scenarios {
    ($($name:ident => $body:expr;)*) => {
        /// Every scenario, in the order they run.
        pub fn all() -> Vec<Scenario> {
            vec![$(Scenario { name: stringify!($name), run: $body }),*]
        }
    };
}

scenarios! {
    create_get_exists => |c| {
        c.req(0, create("/a", b"x", 0));
        c.req(0, get("/a", false));
        c.req(0, exists("/a", false));
    };
    create_null_and_empty_data => |c| {
        c.req(0, mk(OpCode::Create, "/n", None, 0, -1));
        c.req(0, mk(OpCode::Create, "/e", Some(b""), 0, -1));
        c.req(0, get("/n", false));
        c.req(0, get("/e", false));
    };
    create_existing => |c| {
        c.req(0, create("/a", b"", 0));
        c.req(0, create("/a", b"", 0));
        c.req(0, create("/zookeeper", b"", 0));
    };
    create_without_parent => |c| {
        c.req(0, create("/no/child", b"", 0));
        c.req(0, create("/no/child/deeper", b"", 0));
    };
    create_invalid_paths => |c| {
        for p in ["a", "", "/a/", "//a", "/a//b", "/.", "/..", "/a/.", "/a/../b", "/a\u{1}", "/\u{7f}", "/\u{fff5}"] {
            c.req(0, create(p, b"", 0));
        }
    };
    create_root => |c| {
        c.req(0, create("/", b"", 0));
    };
    create_under_zookeeper => |c| {
        c.req(0, create("/zookeeper/mine", b"", 0));
        c.req(0, ls2("/zookeeper", false));
        c.req(0, del("/zookeeper/mine", -1));
    };
    create_sequential => |c| {
        c.req(0, create("/q", b"", 0));
        for _ in 0..3 {
            c.req(0, create("/q/n-", b"", PSEQ));
        }
        c.req(0, ls2("/q", false));
    };
    create_sequential_trailing_slash => |c| {
        c.req(0, create("/q", b"", 0));
        c.req(0, create("/q/", b"", PSEQ));
        c.req(0, create("/q/", b"", 0));
    };
    sequence_counts_creates_not_deletes => |c| {
        c.req(0, create("/q", b"", 0));
        c.req(0, create("/q/a", b"", 0));
        c.req(0, del("/q/a", -1));
        c.req(0, create("/q/a", b"", 0));
        c.req(0, create("/q/a", b"", 0));
        c.req(0, create("/q/s", b"", PSEQ));
        c.req(0, ls2("/q", false));
    };
    sequential_under_root => |c| {
        c.req(0, create("/r", b"", PSEQ));
        c.req(0, ls2("/", false));
    };
    ephemeral_owner => |c| {
        c.req(0, create("/e", b"", EPH));
        c.req(1, exists("/e", false));
        c.req(0, create2("/e2", EPH));
    };
    no_children_for_ephemerals => |c| {
        c.req(0, create("/e", b"", EPH));
        c.req(0, create("/e/c", b"", 0));
        c.req(0, create("/e/s", b"", PSEQ));
    };
    ephemeral_sequential => |c| {
        c.req(0, create("/q", b"", 0));
        c.req(0, create("/q/l-", b"", ESEQ));
        c.req(1, create("/q/l-", b"", ESEQ));
        c.req(0, Request::GetEphemerals { prefix: "/q".into() });
        c.req(1, Request::GetEphemerals { prefix: "/".into() });
    };
    create2_returns_stat => |c| {
        c.req(0, create2("/c2", 0));
        c.req(0, create2("/c2/x", PSEQ));
        c.req(0, create2("/c2", 0));
    };
    create_container => |c| {
        c.req(0, mk(OpCode::CreateContainer, "/ct", Some(b""), 4, -1));
        c.req(0, create("/ct/child", b"", 0));
        c.req(0, exists("/ct", false));
        c.req(0, mk(OpCode::CreateContainer, "/ct2", Some(b""), 0, -1));
    };
    container_flag_on_plain_create => |c| {
        c.req(0, create("/pc", b"", 4));
        c.req(0, exists("/pc", false));
        c.req(0, create2("/pc2", 4));
    };
    create_ttl => |c| {
        c.req(0, mk(OpCode::CreateTtl, "/t", Some(b"x"), 5, 60_000));
        c.req(0, mk(OpCode::CreateTtl, "/t/s-", Some(b"x"), 6, 60_000));
        c.req(0, exists("/t", false));
    };
    create_ttl_bad_arguments => |c| {
        c.req(0, mk(OpCode::CreateTtl, "/t0", Some(b""), 5, 0));
        c.req(0, mk(OpCode::CreateTtl, "/t1", Some(b""), 5, -5));
        c.req(0, mk(OpCode::CreateTtl, "/t2", Some(b""), 0, 1000));
        c.req(0, mk(OpCode::CreateTtl, "/t3", Some(b""), 1, 1000));
        c.req(0, mk(OpCode::Create, "/t4", Some(b""), 5, -1));
        c.req(0, mk(OpCode::CreateTtl, "/t5", Some(b""), 5, 1 << 41));
    };
    create_bad_flags => |c| {
        c.req(0, create("/f", b"", 7));
        c.req(0, create("/f", b"", -1));
        c.req(0, create("/f", b"", 100));
    };
    create_invalid_acls => |c| {
        c.req(0, create_acl("/a1", vec![]));
        c.req(0, create_acl("/a2", vec![acl(31, "world", "someone")]));
        c.req(0, create_acl("/a3", vec![acl(31, "auth", "")]));
        c.req(0, create_acl("/a4", vec![acl(31, "nosuchscheme", "x")]));
        c.req(0, create_acl("/a5", vec![acl(31, "digest", "nocolon")]));
    };
    create_with_acls_and_get_acl => |c| {
        c.req(0, create_acl("/d", vec![acl(1, "digest", "u:hash"), acl(31, "world", "anyone")]));
        c.req(0, Request::GetAcl { path: "/d".into() });
        c.req(0, create_acl("/dup", vec![acl(31, "world", "anyone"), acl(31, "world", "anyone")]));
        c.req(0, Request::GetAcl { path: "/dup".into() });
        c.req(0, create_acl("/ip", vec![acl(31, "ip", "127.0.0.1")]));
        c.req(0, Request::GetAcl { path: "/ip".into() });
    };
    digest_auth_and_auth_acl => |c| {
        c.req(0, Request::Auth { auth_type: 0, scheme: "digest".into(), auth: b"alice:secret".to_vec() });
        c.req(0, create_acl("/mine", vec![acl(31, "auth", "")]));
        c.req(0, Request::GetAcl { path: "/mine".into() });
        c.req(0, Request::WhoAmI);
    };
    acl_each_permission_alone_against_every_op => |c| {
        // One node per permission taken away from world:anyone, each with a child /c, and
        // one that is its owner's alone. The last op of `every_op_on` opens the ACL again
        // where it may; the owner opens hers, so that cleanup can list and delete.
        c.req(0, auth_digest("owner:pw"));
        for (name, perms) in [("nr", 30), ("nw", 29), ("nc", 27), ("nd", 23), ("na", 15)] {
            let path = format!("/{name}");
            c.req(0, create(&path, b"d", 0));
            c.req(0, create(&format!("{path}/c"), b"", 0));
            c.req(0, set_acl(&path, vec![acl(perms, "world", "anyone")]));
        }
        c.req(0, create("/mine", b"d", 0));
        c.req(0, create("/mine/c", b"", 0));
        c.req(0, set_acl("/mine", vec![acl(31, "auth", "")]));
        for name in ["nr", "nw", "nc", "nd", "na", "mine"] {
            c.note(format!("-- {name}"));
            every_op_on(c, 1, &format!("/{name}"));
        }
        c.req(0, set_acl("/mine", acl_open()));
    };
    acl_read_refused_sets_no_watch => |c| {
        c.req(0, create("/w", b"d", 0));
        c.req(0, set_acl("/w", vec![acl(30, "world", "anyone")]));
        c.req(1, exists("/w", true));
        c.req(1, get("/w", true));
        c.req(1, ls("/w", true));
        c.req(0, set("/w", b"e", -1));
        c.req(0, create("/w/c", b"", 0));
        c.events(1);
        c.req(1, exists("/w", false));
        c.req(0, set_acl("/w", acl_open()));
    };
    acl_digest_users => |c| {
        c.req(0, auth_digest("alice:secret"));
        c.req(0, create_acl("/alice", vec![acl(31, "auth", "")]));
        c.req(0, create_acl("/shared", vec![acl(1, "world", "anyone"), acl(31, "auth", "")]));
        c.req(0, create("/alice/c", b"", 0));
        c.req(1, auth_digest("bob:secret"));
        every_op_on(c, 1, "/alice");
        c.req(1, Request::GetAcl { path: "/shared".into() });
        c.req(1, set("/shared", b"b", -1));
        c.req(2, auth_digest("alice:wrong"));
        c.req(2, get("/alice", false));
        c.req(3, auth_digest("alice:secret"));
        c.req(3, Request::GetAcl { path: "/shared".into() });
        every_op_on(c, 3, "/alice");
        // Two identities: either one may grant.
        c.req(1, auth_digest("alice:secret"));
        c.req(1, get("/alice", false));
    };
    acl_ip_addresses_and_prefixes => |c| {
        // IPv4 only: ZooKeeper 3.8 refuses IPv6 ip ACLs (INVALIDACL), which Zooid takes
        // (docs/security.md).
        for (name, id) in [("me", "127.0.0.1"), ("net", "127.0.0.0/8"), ("other", "10.0.0.0/8"),
                           ("host", "127.0.0.2"), ("all", "0.0.0.0/0")] {
            let path = format!("/{name}");
            c.req(0, create_acl(&path, vec![acl(1, "ip", id), acl(30, "world", "anyone")]));
            c.req(1, get(&path, false));
        }
        for (i, probe) in ["127.0.0.1/33", "127.0.0", "localhost", "1.2.3.4/x", "1.2.3.4/-1"]
            .into_iter()
            .enumerate()
        {
            c.req(0, create_acl(&format!("/probe{i}"), vec![acl(1, "ip", probe)]));
        }
    };
    who_am_i_anonymous => |c| {
        c.req(0, Request::WhoAmI);
    };
    children_of_ttl_node => |c| {
        c.req(0, mk(OpCode::CreateTtl, "/t", Some(b""), 5, 100_000));
        c.req(0, create("/t/c", b"", 0));
        c.req(0, ls2("/t", false));
    };
    delete_basic => |c| {
        c.req(0, create("/d", b"", 0));
        c.req(0, del("/d", 0));
        c.req(0, exists("/d", false));
    };
    delete_missing => |c| {
        c.req(0, del("/missing", -1));
        c.req(0, del("/missing/child", -1));
    };
    delete_bad_version => |c| {
        c.req(0, create("/d", b"", 0));
        c.req(0, del("/d", 1));
        c.req(0, set("/d", b"x", -1));
        c.req(0, del("/d", 0));
        c.req(0, del("/d", 1));
    };
    delete_not_empty => |c| {
        c.req(0, create("/d", b"", 0));
        c.req(0, create("/d/c", b"", 0));
        c.req(0, del("/d", -1));
        c.req(0, del("/d", 5));
    };
    delete_special_nodes => |c| {
        for p in ["/", "/zookeeper", "/zookeeper/config", "/zookeeper/quota"] {
            c.req(0, del(p, -1));
        }
    };
    delete_invalid_paths => |c| {
        for p in ["a", "/a/", "//a", "/a\u{0}"] {
            c.req(0, del(p, -1));
        }
    };
    delete_updates_parent => |c| {
        c.req(0, create("/p", b"", 0));
        c.req(0, create("/p/a", b"", 0));
        c.req(0, create("/p/b", b"", 0));
        c.req(0, del("/p/a", -1));
        c.req(0, ls2("/p", false));
        c.req(0, del("/p/b", -1));
        c.req(0, ls2("/p", false));
    };
    set_data_versions => |c| {
        c.req(0, create("/s", b"a", 0));
        c.req(0, set("/s", b"b", 0));
        c.req(0, set("/s", b"b", -1));
        c.req(0, set("/s", b"c", 1));
        c.req(0, get("/s", false));
    };
    set_data_missing_and_invalid => |c| {
        c.req(0, set("/missing", b"", -1));
        c.req(0, set("bad", b"", -1));
        c.req(0, set("/bad/", b"", -1));
    };
    set_data_null => |c| {
        c.req(0, create("/s", b"abc", 0));
        c.req(0, Request::SetData { path: "/s".into(), data: None, version: -1 });
        c.req(0, get("/s", false));
    };
    set_data_on_root => |c| {
        c.req(0, set("/", b"root", -1));
        c.req(0, get("/", false));
        c.req(0, set("/", b"", -1));
    };
    exists_missing => |c| {
        c.req(0, exists("/missing", false));
        c.req(0, exists("/missing/child", false));
    };
    get_children_of_root => |c| {
        c.req(0, ls("/", false));
        c.req(0, ls2("/", false));
    };
    special_node_stats => |c| {
        for p in ["/", "/zookeeper", "/zookeeper/config", "/zookeeper/quota"] {
            c.req(0, get(p, false));
        }
        c.req(0, ls2("/zookeeper", false));
    };
    get_children_missing => |c| {
        c.req(0, ls("/missing", false));
        c.req(0, ls2("/missing", false));
        c.req(0, get("/missing", false));
    };
    all_children_number => |c| {
        c.req(0, Request::GetAllChildrenNumber { path: "/".into() });
        c.req(0, Request::GetAllChildrenNumber { path: "/zookeeper".into() });
        c.req(0, create("/n", b"", 0));
        c.req(0, create("/n/a", b"", 0));
        c.req(0, create("/n/a/b", b"", 0));
        c.req(0, Request::GetAllChildrenNumber { path: "/n".into() });
        c.req(0, Request::GetAllChildrenNumber { path: "/missing".into() });
    };
    get_ephemerals_prefixes => |c| {
        c.req(0, create("/e1", b"", EPH));
        c.req(0, create("/e2", b"", EPH));
        c.req(0, create("/f1", b"", EPH));
        for p in ["", "/", "/e", "/e1", "/nope"] {
            c.req(0, Request::GetEphemerals { prefix: p.into() });
        }
        c.req(1, Request::GetEphemerals { prefix: "/".into() });
    };
    get_acl_special => |c| {
        c.req(0, Request::GetAcl { path: "/".into() });
        c.req(0, Request::GetAcl { path: "/zookeeper/config".into() });
        c.req(0, Request::GetAcl { path: "/missing".into() });
    };
    set_acl_versions => |c| {
        c.req(0, create("/a", b"x", 0));
        c.req(0, Request::SetAcl { path: "/a".into(), acl: acl_open(), version: 1 });
        c.req(0, Request::SetAcl { path: "/a".into(), acl: vec![acl(3, "world", "anyone")], version: 0 });
        c.req(0, Request::GetAcl { path: "/a".into() });
        c.req(0, get("/a", false));
    };
    set_acl_errors => |c| {
        c.req(0, Request::SetAcl { path: "/missing".into(), acl: acl_open(), version: -1 });
        c.req(0, create("/a", b"", 0));
        c.req(0, Request::SetAcl { path: "/a".into(), acl: vec![], version: -1 });
        c.req(0, Request::SetAcl { path: "/a/".into(), acl: acl_open(), version: -1 });
    };
    multi_creates => |c| {
        c.req(0, Request::Multi(vec![create("/m", b"", 0), create("/m/c", b"", 0), create("/m/s-", b"", PSEQ)]));
        c.req(0, ls2("/m", false));
    };
    multi_fails_in_the_middle => |c| {
        c.req(0, create("/m", b"", 0));
        c.req(0, Request::Multi(vec![create("/m/a", b"", 0), check("/m", 3), create("/m/b", b"", 0)]));
        c.req(0, ls2("/m", false));
    };
    multi_fails_on_last_op => |c| {
        c.req(0, Request::Multi(vec![create("/m", b"", 0), set("/m", b"x", 0), del("/missing", -1)]));
        c.req(0, exists("/m", false));
    };
    multi_empty => |c| {
        c.req(0, Request::Multi(vec![]));
    };
    multi_delete_then_create => |c| {
        c.req(0, create("/m", b"old", 0));
        c.req(0, Request::Multi(vec![del("/m", 0), create("/m", b"new", 0)]));
        c.req(0, get("/m", false));
    };
    multi_set_then_check => |c| {
        c.req(0, create("/m", b"", 0));
        c.req(0, Request::Multi(vec![set("/m", b"1", 0), check("/m", 1), set("/m", b"2", 1)]));
        c.req(0, get("/m", false));
    };
    multi_create2_and_container => |c| {
        c.req(0, Request::Multi(vec![
            create2("/m", 0),
            mk(OpCode::CreateContainer, "/m/ct", Some(b""), 4, -1),
            mk(OpCode::CreateTtl, "/m/t", Some(b""), 5, 10_000),
        ]));
    };
    multi_bad_path_first => |c| {
        c.req(0, Request::Multi(vec![create("bad", b"", 0), create("/ok", b"", 0)]));
        c.req(0, exists("/ok", false));
    };
    multi_child_of_new_ephemeral => |c| {
        c.req(0, Request::Multi(vec![create("/e", b"", EPH), create("/e/c", b"", 0)]));
        c.req(0, exists("/e", false));
    };
    multi_bad_flags => |c| {
        c.req(0, Request::Multi(vec![create("/ok", b"", 0), create("/bad", b"", 9)]));
        c.req(0, exists("/ok", false));
    };
    multi_check_missing => |c| {
        c.req(0, Request::Multi(vec![check("/missing", -1)]));
        c.req(0, Request::Multi(vec![check("/", -1), check("/zookeeper", 0)]));
    };
    multi_read => |c| {
        c.req(0, create("/r", b"data", 0));
        c.req(0, create("/r/c", b"", 0));
        c.req(0, Request::MultiRead(vec![get("/r", false), ls("/r", false), get("/missing", false), ls("/missing", false)]));
    };
    multi_fires_watches => |c| {
        c.req(1, exists("/m1", true));
        c.req(1, ls("/", true));
        c.req(0, Request::Multi(vec![create("/m1", b"", 0), create("/m2", b"", 0)]));
        c.events(1);
    };
    failed_multi_fires_nothing => |c| {
        c.req(1, exists("/m1", true));
        c.req(0, Request::Multi(vec![create("/m1", b"", 0), check("/m1", 9)]));
        c.req(0, create("/other", b"", 0));
        c.events(1);
    };
    data_watch_on_set => |c| {
        c.req(0, create("/w", b"", 0));
        c.req(1, get("/w", true));
        c.req(0, set("/w", b"x", -1));
        c.events(1);
        c.req(0, set("/w", b"y", -1));
        c.events(1);
    };
    data_watch_on_delete => |c| {
        c.req(0, create("/w", b"", 0));
        c.req(1, get("/w", true));
        c.req(0, del("/w", -1));
        c.events(1);
    };
    child_watch_on_create_and_delete => |c| {
        c.req(0, create("/w", b"", 0));
        c.req(1, ls("/w", true));
        c.req(0, create("/w/a", b"", 0));
        c.events(1);
        c.req(1, ls2("/w", true));
        c.req(0, del("/w/a", -1));
        c.events(1);
    };
    child_watch_on_node_delete => |c| {
        c.req(0, create("/w", b"", 0));
        c.req(1, ls("/w", true));
        c.req(1, get("/w", true));
        c.req(0, del("/w", -1));
        c.events(1);
    };
    exists_watch_on_missing_node => |c| {
        c.req(1, exists("/later", true));
        c.req(0, create("/later", b"", 0));
        c.events(1);
    };
    exists_watch_on_existing_node => |c| {
        c.req(0, create("/w", b"", 0));
        c.req(1, exists("/w", true));
        c.req(0, set("/w", b"1", -1));
        c.events(1);
    };
    get_data_watch_not_set_on_missing => |c| {
        c.req(1, get("/later", true));
        c.req(0, create("/later", b"", 0));
        c.events(1);
    };
    own_events_before_reply => |c| {
        c.req(0, create("/w", b"", 0));
        c.req(0, get("/w", true));
        c.req(0, ls("/w", true));
        c.req(0, create("/w/c", b"", 0));
        c.req(0, set("/w", b"x", -1));
    };
    watch_events_in_order => |c| {
        c.req(0, create("/w", b"", 0));
        c.req(1, get("/w", true));
        c.req(1, ls("/w", true));
        c.req(1, exists("/w/x", true));
        c.req(0, create("/w/x", b"", 0));
        c.req(0, set("/w", b"1", -1));
        c.events(1);
    };
    persistent_watch => |c| {
        c.req(0, create("/p", b"", 0));
        c.req(1, add_watch("/p", AddWatchMode::Persistent));
        c.req(0, set("/p", b"1", -1));
        c.req(0, create("/p/c", b"", 0));
        c.req(0, create("/p/c/d", b"", 0));
        c.req(0, set("/p", b"2", -1));
        c.req(0, del("/p/c/d", -1));
        c.req(0, del("/p/c", -1));
        c.req(0, del("/p", -1));
        c.req(0, create("/p", b"", 0));
        c.events(1);
    };
    persistent_recursive_watch => |c| {
        c.req(0, create("/r", b"", 0));
        c.req(1, add_watch("/r", AddWatchMode::PersistentRecursive));
        c.req(0, create("/r/a", b"", 0));
        c.req(0, create("/r/a/b", b"", 0));
        c.req(0, set("/r/a/b", b"x", -1));
        c.req(0, del("/r/a/b", -1));
        c.req(0, create("/rx", b"", 0));
        c.events(1);
    };
    persistent_watch_on_missing_node => |c| {
        c.req(1, add_watch("/later", AddWatchMode::Persistent));
        c.req(0, create("/later", b"", 0));
        c.req(0, del("/later", -1));
        c.events(1);
    };
    recursive_and_one_shot_same_connection => |c| {
        c.req(0, create("/r", b"", 0));
        c.req(1, add_watch("/", AddWatchMode::PersistentRecursive));
        c.req(1, get("/r", true));
        c.req(0, set("/r", b"1", -1));
        c.events(1);
    };
    remove_watches => |c| {
        c.req(0, create("/w", b"", 0));
        c.req(1, get("/w", true));
        c.req(1, ls("/w", true));
        c.req(1, Request::CheckWatches { path: "/w".into(), watcher_type: WatcherType::Data as i32 });
        c.req(1, remove_watches("/w", WatcherType::Data));
        c.req(1, remove_watches("/w", WatcherType::Data));
        c.req(1, Request::CheckWatches { path: "/w".into(), watcher_type: WatcherType::Children as i32 });
        c.req(0, set("/w", b"x", -1));
        c.req(0, create("/w/c", b"", 0));
        c.events(1);
    };
    remove_watches_any => |c| {
        c.req(0, create("/w", b"", 0));
        c.req(1, get("/w", true));
        c.req(1, ls("/w", true));
        c.req(1, remove_watches("/w", WatcherType::Any));
        c.req(1, remove_watches("/w", WatcherType::Any));
        c.req(0, del("/w", -1));
        c.events(1);
    };
    check_watches_without_watch => |c| {
        c.req(0, Request::CheckWatches { path: "/none".into(), watcher_type: WatcherType::Any as i32 });
        c.req(0, remove_watches("/none", WatcherType::Children));
    };
    remove_persistent_watches => |c| {
        c.req(0, create("/p", b"", 0));
        c.req(1, add_watch("/p", AddWatchMode::Persistent));
        c.req(1, remove_watches("/p", WatcherType::Any));
        c.req(0, set("/p", b"x", -1));
        c.events(1);
    };
    watch_on_two_connections => |c| {
        c.req(0, create("/w", b"", 0));
        c.req(1, get("/w", true));
        c.req(2, exists("/w", true));
        c.req(0, del("/w", -1));
        c.events(1);
        c.events(2);
    };
    close_session_deletes_ephemerals => |c| {
        c.req(0, create("/p", b"", 0));
        c.req(1, create("/p/e", b"", EPH));
        c.req(0, get("/p/e", true));
        c.req(0, ls("/p", true));
        c.req(1, Request::CloseSession);
        c.events(0);
        c.req(0, ls2("/p", false));
    };
    set_watches_catch_up => |c| {
        c.req(0, create("/changed", b"", 0));
        c.req(0, create("/same", b"", 0));
        c.req(0, create("/exists", b"", 0));
        let f = c.req(0, exists("/", false));
        let zxid = f.map_or(0, |f| f.zxid);
        c.req(0, set("/changed", b"x", -1));
        c.req(0, create("/same/child", b"", 0));
        c.req(1, Request::SetWatches(SetWatches {
            relative_zxid: zxid,
            data: vec!["/changed".into(), "/same".into(), "/gone".into()],
            exist: vec!["/exists".into(), "/notyet".into()],
            child: vec!["/same".into(), "/exists".into(), "/gone".into()],
            ..Default::default()
        }));
        c.events(1);
        c.req(0, set("/same", b"y", -1));
        c.req(0, create("/notyet", b"", 0));
        c.req(0, create("/exists/c", b"", 0));
        c.events(1);
    };
    set_watches2_persistent => |c| {
        c.req(0, create("/p", b"", 0));
        c.req(1, Request::SetWatches(SetWatches {
            relative_zxid: 0,
            persistent: vec!["/p".into()],
            persistent_recursive: vec!["/r".into()],
            ..Default::default()
        }));
        c.req(0, set("/p", b"1", -1));
        c.req(0, create("/r", b"", 0));
        c.req(0, create("/r/x", b"", 0));
        c.events(1);
    };
    sync_echoes_path => |c| {
        c.req(0, Request::Sync { path: "/".into() });
        c.req(0, Request::Sync { path: "/missing".into() });
    };
    reconfig_on_standalone => |c| {
        c.raw(0, 16, &[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]);
        c.req(0, exists("/", false));
    };
    unknown_opcode_closes => |c| {
        c.raw(0, 999, &[]);
        c.req(1, exists("/", false));
    };
    notification_opcode_closes => |c| {
        c.raw(0, 0, &[]);
    };
    malformed_get_data => |c| {
        c.raw(0, 4, &[0, 0, 0, 9, b'/']);
        c.req(0, exists("/", false));
    };
    malformed_create => |c| {
        c.raw(0, 1, &[0, 0, 0, 2, b'/', b'a', 0xff, 0xff, 0xff, 0xff]);
        c.req(0, exists("/a", false));
    };
    auth_unknown_scheme => |c| {
        c.req(0, Request::Auth { auth_type: 0, scheme: "nosuch".into(), auth: b"x".to_vec() });
        c.req(1, exists("/", false));
    };
    delete_container_from_client => |c| {
        c.req(0, create("/plain", b"", 0));
        c.req(0, Request::DeleteContainer { path: "/plain".into() });
        c.req(0, mk(OpCode::CreateContainer, "/ct", Some(b""), 4, -1));
        c.req(0, create("/ct/c", b"", 0));
        c.req(0, Request::DeleteContainer { path: "/ct".into() });
        c.req(0, Request::DeleteContainer { path: "/missing".into() });
    };
    stat_after_many_changes => |c| {
        c.req(0, create("/s", b"", 0));
        for i in 0..3 {
            c.req(0, create(&format!("/s/{i}"), b"", 0));
        }
        c.req(0, del("/s/1", -1));
        c.req(0, set("/s", b"abc", -1));
        c.req(0, Request::SetAcl { path: "/s".into(), acl: acl_open(), version: -1 });
        c.req(0, exists("/s", false));
    };
    grandchild_does_not_touch_grandparent => |c| {
        c.req(0, create("/g", b"", 0));
        c.req(0, create("/g/p", b"", 0));
        c.req(0, exists("/g", false));
        c.req(0, create("/g/p/c", b"", 0));
        c.req(0, set("/g/p", b"x", -1));
        c.req(0, exists("/g", false));
    };
    unicode_paths_and_data => |c| {
        c.req(0, create("/ünï", "dätä".as_bytes(), 0));
        c.req(0, get("/ünï", false));
        c.req(0, ls("/", false));
        c.req(0, create("/a b", b"", 0));
        c.req(0, create("/\u{fffd}", b"", 0));
    };
    large_data => |c| {
        c.req(0, create("/big", &vec![b'x'; 500_000], 0));
        c.req(0, get("/big", false));
    };
    container_collected_after_last_child => |c| {
        c.req(0, mk(OpCode::CreateContainer, "/ct", Some(b""), 4, -1));
        c.req(0, create("/ct/a", b"", 0));
        c.req(1, exists("/ct", true));
        c.req(0, del("/ct/a", -1));
        c.pause(1000);
        c.events(1);
        c.req(0, exists("/ct", false));
    };
    unused_container_is_kept => |c| {
        c.req(0, mk(OpCode::CreateContainer, "/ct", Some(b""), 4, -1));
        c.pause(500);
        c.req(0, exists("/ct", false));
    };
    ttl_node_expires => |c| {
        c.req(0, mk(OpCode::CreateTtl, "/t", Some(b"x"), 5, 100));
        c.req(1, get("/t", true));
        c.pause(1000);
        c.events(1);
        c.req(0, exists("/t", false));
    };
    ttl_node_with_a_child_is_kept => |c| {
        c.req(0, mk(OpCode::CreateTtl, "/t", Some(b"x"), 5, 100));
        c.req(0, create("/t/c", b"", 0));
        c.pause(700);
        c.req(0, exists("/t", false));
    };
    quota_stats_follow_creates_deletes_and_sets => |c| {
        const STATS: &str = "/zookeeper/quota/q/zookeeper_stats";
        c.req(0, create("/q", b"abc", 0));
        c.req(0, create("/q/a", b"12345", 0));
        c.req(0, create("/zookeeper/quota/q", b"", 0));
        c.req(0, create("/zookeeper/quota/q/zookeeper_limits", b"count=10,bytes=-1", 0));
        // Created with any data; the server counts the subtree into it.
        c.req(0, create(STATS, b"count=0,bytes=0", 0));
        c.req(0, get(STATS, false));
        c.req(0, create("/q/b", b"xy", 0));
        c.req(0, set("/q/a", b"1", -1));
        c.req(0, create("/q/a/deep", b"", 0));
        c.req(0, mk(OpCode::Create, "/q/null", None, 0, -1));
        // A sibling whose name starts like the quota'd path is outside it.
        c.req(0, create("/qq", b"zzz", 0));
        c.req(0, get(STATS, false));
        c.req(0, del("/q/b", -1));
        c.req(0, Request::Multi(vec![create("/q/m", b"mm", 0), del("/missing", -1)]));
        c.req(0, Request::Multi(vec![create("/q/m", b"mm", 0), set("/q", b"", -1)]));
        c.req(0, get(STATS, false));
        c.req(0, create("/q/e", b"eph", EPH));
        c.req(0, get(STATS, false));
        c.req(0, del("/zookeeper/quota/q/zookeeper_limits", -1));
        c.req(0, create("/q/after", b"zz", 0));
        c.req(0, get(STATS, false));
    };
    quota_stats_count_the_deepest_quota_only => |c| {
        c.req(0, create("/n", b"", 0));
        c.req(0, create("/n/in", b"", 0));
        for q in ["/n", "/n/in"] {
            c.req(0, create(&format!("/zookeeper/quota{q}"), b"", 0));
            c.req(0, create(&format!("/zookeeper/quota{q}/zookeeper_limits"), b"count=-1,bytes=100", 0));
            c.req(0, create(&format!("/zookeeper/quota{q}/zookeeper_stats"), b"", 0));
        }
        c.req(1, create("/n/in/x", b"1234", EPH));
        c.req(0, create("/n/y", b"12", 0));
        c.req(0, get("/zookeeper/quota/n/zookeeper_stats", false));
        c.req(0, get("/zookeeper/quota/n/in/zookeeper_stats", false));
        c.req(1, Request::CloseSession);
        c.req(0, get("/zookeeper/quota/n/in/zookeeper_stats", false));
        // A client's own data in a stats node is what later changes add to.
        c.req(0, set("/zookeeper/quota/n/zookeeper_stats", b"count=100,bytes=1000", -1));
        c.req(0, create("/n/z", b"123", 0));
        c.req(0, get("/zookeeper/quota/n/zookeeper_stats", false));
    };
    quota_hard_limits_refuse_what_would_cross_them => |c| {
        // Both servers run with enforceQuota: hard limits refuse, soft ones only count.
        c.req(0, create("/h", b"abc", 0));
        c.req(0, create("/zookeeper/quota/h", b"", 0));
        c.req(0, create("/zookeeper/quota/h/zookeeper_limits",
                        b"count=-1,bytes=-1=;byteHardLimit=10;countHardLimit=3", 0));
        c.req(0, create("/zookeeper/quota/h/zookeeper_stats", b"", 0));
        c.req(0, create("/h/a", b"12", 0));
        c.req(0, create("/h/b", b"", 0));
        // A fourth node, and bytes past ten, are refused, whatever else is wrong with them.
        c.req(0, create("/h/c", b"", 0));
        c.req(0, create("/h/a", b"", 0));
        c.req(0, set("/h/a", b"1234567", -1));
        c.req(0, set("/h/a", b"1234567", 5));
        c.req(0, set("/h/a", b"12345", -1));
        c.req(0, set("/h/a", b"", -1));
        c.req(0, Request::Multi(vec![del("/h/b", -1), create("/h/c", b"", 0)]));
        c.req(0, get("/zookeeper/quota/h/zookeeper_stats", false));
        // Soft limits only: nothing refused.
        c.req(0, create("/s", b"", 0));
        c.req(0, create("/zookeeper/quota/s", b"", 0));
        c.req(0, create("/zookeeper/quota/s/zookeeper_limits", b"count=1,bytes=1", 0));
        c.req(0, create("/zookeeper/quota/s/zookeeper_stats", b"", 0));
        c.req(0, create("/s/over", b"too much", 0));
    };
    ephemeral_of_other_session_watch => |c| {
        c.req(1, exists("/e", true));
        c.req(0, create("/e", b"", EPH));
        c.events(1);
        c.req(0, Request::CloseSession);
        c.events(1);
        c.req(1, exists("/e", false));
    };
}

/// The x509 identities of the identity scenarios' clients (their certificates' subjects as
/// ZooKeeper writes them): client 0 shows Alice's certificate, client 1 Bob's, the others
/// none.
pub const X509_ALICE: &str = "O=zooid,CN=alice";
pub const X509_BOB: &str = "O=zooid,CN=bob";

/// The SASL DIGEST-MD5 users (user, password) the identity scenarios' servers know.
pub const SASL_USERS: &[(&str, &str)] = &[("alice", "alice-secret"), ("bob", "bob-secret")];

/// Bob, holding `perms` alone on a node of its own that `owner` (an ACL entry granting the
/// owner everything) keeps, tries every op on it; one node per permission.
fn each_permission_alone(
    c: &mut Ctx,
    owner_client: usize,
    owner: Acl,
    bob_client: usize,
    bob: &Id,
) {
    for (name, perms) in [("r", 1), ("w", 2), ("c", 4), ("d", 8), ("a", 16)] {
        let path = format!("/perm-{name}");
        let acl = vec![
            Acl {
                perms,
                id: bob.clone(),
            },
            owner.clone(),
        ];
        c.req(owner_client, create_acl(&path, acl));
        c.req(owner_client, create(&format!("{path}/c"), b"", 0));
        c.note(format!("-- {name} alone"));
        every_op_on(c, bob_client, &path);
    }
}

/// The scenarios whose clients need identities of their own (TLS client certificates, SASL
/// logins): run against servers that serve TLS and know [`SASL_USERS`], the clients
/// connecting as the differential test's connector says (see [`X509_ALICE`]).
pub fn identities() -> Vec<Scenario> {
    vec![
        Scenario {
            name: "x509_identities_against_every_op",
            run: |c| {
                c.req(0, Request::WhoAmI);
                c.req(2, Request::WhoAmI);
                c.req(0, create_acl("/x", vec![acl(31, "x509", X509_ALICE)]));
                c.req(0, create("/x/c", b"", 0));
                c.req(0, Request::GetAcl { path: "/x".into() });
                c.note("-- bob on alice's node");
                every_op_on(c, 1, "/x");
                c.note("-- no certificate");
                every_op_on(c, 2, "/x");
                // `auth` takes the session's certificate identity.
                c.req(1, create_acl("/b", vec![acl(31, "auth", "")]));
                c.req(1, Request::GetAcl { path: "/b".into() });
                c.note("-- alice on bob's auth node");
                every_op_on(c, 0, "/b");
                // A watch of a node Bob may read, changed by Alice; one he may not read.
                c.req(
                    0,
                    create_acl(
                        "/seen",
                        vec![acl(1, "x509", X509_BOB), acl(31, "x509", X509_ALICE)],
                    ),
                );
                c.req(1, get("/seen", true));
                c.req(1, get("/x", true));
                c.req(0, set("/seen", b"changed", -1));
                c.req(0, set("/x", b"changed", -1));
                c.events(1);
                c.note("-- alice on her own node");
                every_op_on(c, 0, "/x");
            },
        },
        Scenario {
            name: "x509_each_permission_alone_against_every_op",
            run: |c| {
                let bob = Id {
                    scheme: "x509".into(),
                    id: X509_BOB.into(),
                };
                each_permission_alone(c, 0, acl(31, "x509", X509_ALICE), 1, &bob);
            },
        },
        Scenario {
            name: "sasl_identities_against_every_op",
            run: |c| {
                c.sasl(3, "alice", "alice-secret");
                c.req(3, Request::WhoAmI);
                c.req(3, create_acl("/s", vec![acl(31, "sasl", "alice")]));
                c.req(3, create("/s/c", b"", 0));
                c.sasl(4, "bob", "bob-secret");
                c.note("-- bob on alice's node");
                every_op_on(c, 4, "/s");
                c.req(4, create_acl("/sb", vec![acl(31, "auth", "")]));
                c.req(4, Request::GetAcl { path: "/sb".into() });
                c.note("-- a wrong password, an unknown user");
                c.sasl(5, "alice", "wrong");
                c.req(5, get("/s", false));
                c.sasl(6, "nobody", "x");
                c.note("-- alice on her own node");
                every_op_on(c, 3, "/s");
            },
        },
        Scenario {
            name: "sasl_each_permission_alone_against_every_op",
            run: |c| {
                c.sasl(3, "alice", "alice-secret");
                c.sasl(4, "bob", "bob-secret");
                let bob = Id {
                    scheme: "sasl".into(),
                    id: "bob".into(),
                };
                each_permission_alone(c, 3, acl(31, "sasl", "alice"), 4, &bob);
            },
        },
    ]
}
