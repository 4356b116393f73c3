//! The admin HTTP API: ZooKeeper's AdminServer commands as JSON, the Kubernetes probes, and
//! Prometheus metrics whose values follow the workload. Against one server, then against an
//! ensemble whose members are stopped and cut off.
#![allow(clippy::unwrap_used)]

mod common;

use common::ensemble::{self, Layout};
use common::RawClient;
use serde_json::Value;
use std::net::SocketAddr;
use std::time::Duration;
use zooid_e2e::http::{self, sample};
use zooid_e2e::wait::wait_until;
use zooid_proto::*;

fn json(addr: SocketAddr, path: &str) -> (u16, Value) {
    let a = http::get(addr, path).unwrap_or_else(|| panic!("no answer to {path}"));
    let v = serde_json::from_str(&a.body).unwrap_or_else(|e| panic!("{path}: {e}: {}", a.body));
    (a.status, v)
}

/// [`json`] with the admin token.
fn json_admin(addr: SocketAddr, path: &str) -> (u16, Value) {
    let a = http::request_with(
        addr,
        "GET",
        path,
        &[("Authorization", "Bearer s3cret")],
        &[],
    )
    .unwrap_or_else(|| panic!("no answer to {path}"));
    let v = serde_json::from_str(&a.body).unwrap_or_else(|e| panic!("{path}: {e}: {}", a.body));
    (a.status, v)
}

/// `hash`'s one digest: `{"zxid", "digestVersion", "digest"}`.
fn hash(addr: SocketAddr) -> Value {
    let (status, v) = json(addr, "/commands/hash");
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["command"], "hash", "{v}");
    assert_eq!(v["digests"][0]["digestVersion"], 2, "{v}");
    v["digests"][0].clone()
}

fn metrics(addr: SocketAddr) -> String {
    let a = http::get(addr, "/metrics").expect("no answer to /metrics");
    assert_eq!(a.status, 200);
    a.body
}

fn metric(addr: SocketAddr, series: &str) -> f64 {
    let text = metrics(addr);
    sample(&text, series).unwrap_or_else(|| panic!("no {series} in\n{text}"))
}

#[test]
fn commands_probes_and_metrics_of_one_server() {
    let server = common::start(|c| {
        c.admin_token = Some("s3cret".into());
        c.super_digest = Some(zooid_e2e::super_digest());
    });
    let admin = server.admin.unwrap();

    assert_eq!(
        json(admin, "/healthz"),
        (200, serde_json::json!({"status": "ok"}))
    );
    let (status, ready) = json(admin, "/readyz");
    assert_eq!(
        (status, &ready["ready"], &ready["mode"]),
        (200, &Value::Bool(true), &"standalone".into())
    );

    // Commands by any of their names, answered under the primary one.
    let (status, ruok) = json(admin, "/commands/ruok");
    assert_eq!(
        (status, ruok),
        (200, serde_json::json!({"command": "ruok", "error": null}))
    );
    let (_, listed) = json(admin, "/commands");
    assert!(
        listed["commands"].as_array().unwrap().len() >= 14,
        "{listed}"
    );
    let (status, srvr) = json(admin, "/commands/srvr");
    assert_eq!(status, 200);
    assert_eq!(srvr["command"], "server_stats");
    assert_eq!(srvr["server_stats"]["server_state"], "standalone");
    // Bad requests: a JSON error and a status.
    let (status, unknown) = json(admin, "/commands/nosuch");
    assert_eq!(
        (status, &unknown["error"]),
        (404, &"Unknown command: nosuch".into())
    );
    let (status, _) = json(admin, "/nowhere");
    assert_eq!(status, 404);
    let (status, wrong) = json(admin, "/commands/restore");
    assert_eq!(status, 405);
    assert_eq!(
        wrong["error"],
        "GET is not allowed on /commands/restore: use POST"
    );
    let (status, list) = json(admin, "/commands");
    assert_eq!(status, 200);
    for name in ["ruok", "monitor", "snapshot", "restore"] {
        assert!(
            list["commands"].as_array().unwrap().contains(&name.into()),
            "{list}"
        );
    }

    let nodes_before = metric(admin, "znode_count");
    let watches_before = metric(admin, "watch_count");
    let mut c = RawClient::connect(server.addr);
    for i in 0..5 {
        c.create(&format!("/m{i}"), b"x", 0).unwrap();
    }
    c.create("/eph", b"", CreateMode::Ephemeral.flags())
        .unwrap();
    c.get("/m0", true).unwrap();
    c.get("/m1", true).unwrap();

    let text = metrics(admin);
    assert_eq!(
        sample(&text, "znode_count"),
        Some(nodes_before + 6.0),
        "{text}"
    );
    assert_eq!(
        sample(&text, "watch_count"),
        Some(watches_before + 2.0),
        "{text}"
    );
    assert_eq!(sample(&text, "ephemerals_count"), Some(1.0), "{text}");
    assert_eq!(sample(&text, "global_sessions"), Some(1.0), "{text}");
    assert_eq!(sample(&text, "num_alive_connections"), Some(1.0), "{text}");
    assert_eq!(
        sample(&text, "zooid_request_duration_seconds_count{op=\"create\"}"),
        Some(6.0),
        "{text}"
    );
    assert_eq!(
        sample(
            &text,
            "zooid_request_duration_seconds_count{op=\"getData\"}"
        ),
        Some(2.0),
        "{text}"
    );
    assert_eq!(sample(&text, "updatelatency_count"), Some(6.0), "{text}");
    assert_eq!(sample(&text, "readlatency_count"), Some(2.0), "{text}");
    assert!(sample(&text, "fsynctime_count").unwrap() >= 1.0, "{text}");
    assert!(
        sample(&text, "zooid_raft_applied_index").unwrap() >= 6.0,
        "{text}"
    );
    assert_eq!(sample(&text, "zooid_ready"), Some(1.0), "{text}");
    assert_eq!(
        sample(
            &text,
            "zooid_connections_limited_total{limit=\"max_client_cnxns\"}"
        ),
        Some(0.0),
        "{text}"
    );

    // The JSON commands say the same as the metrics.
    let (_, mntr) = json(admin, "/commands/mntr");
    assert_eq!(mntr["command"], "monitor");
    assert_eq!(mntr["znode_count"].as_f64(), Some(nodes_before + 6.0));
    let session = c.session_id.to_string();
    // What shows clients' sessions, addresses and paths answers an admin identity only: the
    // token, or the super user as ZooKeeper 3.9's AdminServer takes it.
    for path in [
        "/commands/wchc",
        "/commands/dump",
        "/commands/cons",
        "/commands/stat",
    ] {
        assert_eq!(json(admin, path).0, 401, "{path}");
    }
    let su = format!("digest {}", zooid_e2e::SUPER_USER);
    let a = http::request_with(
        admin,
        "GET",
        "/commands/dump",
        &[("Authorization", &su)],
        &[],
    )
    .unwrap();
    assert_eq!(a.status, 200, "{}", a.body);
    let wrong = http::request_with(
        admin,
        "GET",
        "/commands/dump",
        &[("Authorization", "digest super:wrong")],
        &[],
    )
    .unwrap();
    assert_eq!(wrong.status, 401, "{}", wrong.body);
    let (_, wchc) = json_admin(admin, "/commands/wchc");
    assert_eq!(
        wchc["session_id_to_watched_paths"][&session],
        serde_json::json!(["/m0", "/m1"])
    );
    let (_, wchp) = json_admin(admin, "/commands/watches_by_path");
    assert_eq!(
        wchp["path_to_session_ids"]["/m1"],
        serde_json::json!([c.session_id])
    );
    let (_, wchs) = json(admin, "/commands/wchs");
    assert_eq!(wchs["num_total_watches"], 2);
    let (_, dump) = json_admin(admin, "/commands/dump");
    assert_eq!(
        dump["session_id_to_ephemeral_paths"][&session],
        serde_json::json!(["/eph"])
    );
    let (_, cons) = json_admin(admin, "/commands/cons");
    assert_eq!(
        cons["connections"][0]["session_id"],
        format!("0x{:x}", c.session_id)
    );
    let (_, conf) = json(admin, "/commands/conf");
    assert_eq!(conf["command"], "configuration");
    assert_eq!(conf["tick_time"], 2000);
    assert_eq!(conf["max_session_timeout"], 40000);
    let (_, isro) = json(admin, "/commands/isro");
    assert_eq!(isro["read_only"], false);
    let (_, lead) = json(admin, "/commands/leader");
    assert_eq!(lead["error"], "server is not initialized");
}

/// A follower stopped with SIGSTOP falls behind in the leader's metrics and catches up once
/// let go; a member cut off from the others is not ready until it is back and caught up.
#[test]
fn an_ensemble_reports_lag_and_readiness() {
    let root = tempfile::tempdir().unwrap();
    let (members, proxies) = ensemble::start_laid_out(
        root.path(),
        "",
        Layout {
            voters: 3,
            observers: 0,
            proxied: true,
        },
    );
    let proxies = proxies.unwrap();
    let leader = ensemble::settled(&members, Duration::from_secs(10));
    let (lead, other) = (&members[leader], &members[(leader + 1) % 3]);
    let stopped = &members[(leader + 2) % 3];
    for m in &members {
        wait_until("every member ready", Duration::from_secs(10), || {
            http::get(m.admin, "/readyz").is_some_and(|a| a.status == 200)
        });
    }
    // Members that applied the same writes have the same tree, and say so in `hash`.
    let before = hash(lead.admin);
    let mut c = RawClient::connect(lead.client);
    for i in 0..20 {
        c.create(&format!("/h{i}"), format!("{i}").as_bytes(), 0)
            .unwrap();
    }
    wait_until(
        "every member's digest equal",
        Duration::from_secs(10),
        || members.iter().all(|m| hash(m.admin) == hash(lead.admin)),
    );
    assert_ne!(hash(lead.admin)["digest"], before["digest"]);
    let text = metrics(lead.admin);
    assert_eq!(sample(&text, "quorum_size"), Some(3.0), "{text}");
    assert_eq!(sample(&text, "zooid_is_leader"), Some(1.0), "{text}");
    assert_eq!(sample(&text, "synced_followers"), Some(2.0), "{text}");
    assert!(sample(&text, "leader_uptime").is_some(), "{text}");
    assert_eq!(metric(other.admin, "zooid_is_leader"), 0.0);
    let (_, lj) = json(other.admin, "/commands/leader");
    assert_eq!(
        (&lj["is_leader"], lj["leader_id"].as_u64()),
        (&Value::Bool(false), Some(lead.id))
    );
    let (_, view) = json(other.admin, "/commands/voting_view");
    assert_eq!(
        view["current_config"].as_object().unwrap().len(),
        3,
        "{view}"
    );

    let lag = format!("zooid_follower_lag{{server_id=\"{}\"}}", stopped.id);
    stopped.signal("-STOP");
    let mut c = RawClient::connect(lead.client);
    for i in 0..100 {
        c.create(&format!("/lag{i}"), b"", 0).unwrap();
    }
    let behind = metric(lead.admin, &lag);
    assert!(behind >= 1.0, "the stopped follower is {behind} behind");
    stopped.signal("-CONT");
    wait_until("the follower catches up", Duration::from_secs(10), || {
        metric(lead.admin, &lag) == 0.0
    });

    // Cut off alone: not ready (and says why); back: ready once caught up.
    let all: Vec<u64> = members.iter().map(|m| m.id).collect();
    proxies.partition(&[stopped.id], &all);
    wait_until(
        "the cut-off member not ready",
        Duration::from_secs(10),
        || http::get(stopped.admin, "/readyz").is_some_and(|a| a.status == 503),
    );
    let (_, why) = json(stopped.admin, "/readyz");
    assert_eq!(why["ready"], false, "{why}");
    assert_eq!(metric(stopped.admin, "zooid_ready"), 0.0);
    for i in 0..50 {
        c.create(&format!("/away{i}"), b"", 0).unwrap();
    }
    proxies.heal();
    wait_until("the member ready again", Duration::from_secs(15), || {
        http::get(stopped.admin, "/readyz").is_some_and(|a| a.status == 200)
    });
    let mut back = RawClient::connect(stopped.client);
    assert!(
        back.get("/away49", false).is_ok(),
        "ready before it caught up"
    );
}

/// ZooKeeper 3.9's `snapshot` command: a backup of the whole state, behind the admin token.
#[test]
fn a_snapshot_streams_a_consistent_backup_to_the_token_holder() {
    let server = common::start(|c| c.admin_token = Some("s3cret".into()));
    let admin = server.admin.unwrap();
    let mut c = RawClient::connect(server.addr);
    for i in 0..200 {
        c.create(&format!("/b{i}"), &[i as u8; 100], 0).unwrap();
    }
    let get = |headers: &[(&str, &str)]| {
        http::request_with(admin, "GET", "/commands/snapshot", headers, b"").unwrap()
    };
    let refused = get(&[]);
    assert_eq!(refused.status, 401, "{}", refused.body);
    assert_eq!(refused.header("www-authenticate"), Some("Bearer"));
    assert_eq!(get(&[("Authorization", "Bearer wrong")]).status, 401);

    let backup = get(&[("Authorization", "Bearer s3cret")]);
    assert_eq!(backup.status, 200, "{}", backup.body);
    let last = backup.header("last_zxid").unwrap().to_string();
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), &backup.bytes).unwrap();
    let checked = zooid_replication::snapshot_file::check(file.path()).unwrap();
    let mut state = checked.state(file.path()).unwrap();
    let tree = zooid_tree::DataTree::read_snapshot(&mut state).unwrap();
    assert_eq!(
        tree.get("/b199").unwrap().data.as_deref(),
        Some(&[199u8; 100][..])
    );
    assert_eq!(format!("0x{:x}", tree.last_zxid()), last);
    // Everything acknowledged before the request is in it.
    let (_, stat) = c.get("/b199", false).unwrap();
    assert!(tree.last_zxid() >= stat.mzxid);

    // The same short name; and no token configured refuses it outright.
    let short = http::request_with(
        admin,
        "GET",
        "/commands/snap",
        &[("Authorization", "Bearer s3cret")],
        b"",
    )
    .unwrap();
    assert_eq!(short.status, 200);
    let open = common::start(|_| {});
    let forbidden = http::get(open.admin.unwrap(), "/commands/snapshot").unwrap();
    assert_eq!(forbidden.status, 403, "{}", forbidden.body);
}

/// A token written to the data dir (or to `--admin-token-file`) after the start is taken at
/// the next request: finding out at backup time that none was set costs no restart.
#[test]
fn an_admin_token_added_after_the_start_is_taken_without_a_restart() {
    let server = common::start(|_| {});
    let admin = server.admin.unwrap();
    let snapshot = |headers: &[(&str, &str)]| {
        http::request_with(admin, "GET", "/commands/snapshot", headers, b"").unwrap()
    };
    let none = snapshot(&[]);
    assert_eq!(none.status, 403, "{}", none.body);
    let file = server.data_dir().join("admin-token");
    assert!(
        none.body.contains(&file.display().to_string()),
        "the refusal says where a token goes: {}",
        none.body
    );
    std::fs::write(&file, "fresh-token\n").unwrap();
    assert_eq!(snapshot(&[]).status, 401);
    let taken = snapshot(&[("Authorization", "Bearer fresh-token")]);
    assert_eq!(taken.status, 200, "{}", taken.body);
    // Changed: the old one no longer opens it.
    std::fs::write(&file, "rotated").unwrap();
    assert_eq!(
        snapshot(&[("Authorization", "Bearer fresh-token")]).status,
        401
    );
    assert_eq!(snapshot(&[("Authorization", "Bearer rotated")]).status, 200);
}

/// ZooKeeper 3.9's `restore`: a backup replaces everything, its sessions included, and the
/// clients are let go; uploads that are not a whole backup, or too large, or without the
/// token, are refused and change nothing.
#[test]
fn a_restore_brings_back_a_backup_and_refuses_bad_uploads() {
    let server = common::start(|c| c.admin_token = Some("s3cret".into()));
    let admin = server.admin.unwrap();
    let auth = [("Authorization", "Bearer s3cret")];
    let mut a = RawClient::connect(server.addr);
    a.create("/kept", b"", 0).unwrap();
    a.create("/kept/e", b"", 1).unwrap();
    // About 1.5 MB of state: more than one chunk.
    for i in 0..1500 {
        a.create(&format!("/kept/n{i}"), &[(i % 251) as u8; 1000], 0)
            .unwrap();
    }
    let backup = http::request_with(admin, "GET", "/commands/snapshot", &auth, b"").unwrap();
    assert_eq!(backup.status, 200, "{}", backup.body);
    // The backup's digest is the tree's at its zxid (nothing was written since).
    let digest_then = hash(admin);
    assert_eq!(
        backup.header("digest"),
        Some(digest_then["digest"].to_string().as_str())
    );
    let mut b = RawClient::connect(server.addr);
    b.create("/after", b"", 0).unwrap();
    let (f, _) = b.call(&Request::Delete {
        path: "/kept/n0".into(),
        version: -1,
    });
    assert_eq!(f.err, 0);

    let post = |headers: &[(&str, &str)], body: &[u8]| {
        http::request_with(admin, "POST", "/commands/restore", headers, body).unwrap()
    };
    assert_eq!(post(&[], &backup.bytes).status, 401);
    let junk = post(&auth, b"not a backup");
    assert_eq!(junk.status, 400, "{}", junk.body);
    assert!(
        junk.body
            .contains("neither a Zooid backup nor a ZooKeeper snapshot"),
        "{}",
        junk.body
    );
    let mut damaged = backup.bytes.clone();
    let middle = damaged.len() / 2;
    damaged[middle] ^= 1;
    let refused = post(&auth, &damaged);
    assert_eq!(refused.status, 400, "{}", refused.body);
    assert!(refused.body.contains("checksum"), "{}", refused.body);
    assert!(
        b.get("/after", false).is_ok(),
        "a refused restore changed the state"
    );
    // ZooKeeper's metric names: the two bad uploads failed (the missing token is no failure).
    assert_eq!(metric(admin, "restore_error_count"), 2.0);

    let done = post(&auth, &backup.bytes);
    assert_eq!(done.status, 200, "{}", done.body);
    let v: Value = serde_json::from_str(&done.body).unwrap();
    assert_eq!(v["command"], "restore");
    assert_eq!(
        Some(format!("0x{:x}", v["last_zxid"].as_i64().unwrap())).as_deref(),
        backup.header("last_zxid")
    );
    // The root, /zookeeper and its two children, /kept, its ephemeral and 1500 nodes.
    assert_eq!(v["nodes"], 1506, "{v}");
    // Exactly the backup's tree: its digest, in the answer and from `hash`, which the writes
    // after the backup had moved.
    assert_eq!(v["digest"], digest_then["digest"], "{v}");
    assert_eq!(hash(admin)["digest"], digest_then["digest"]);
    assert_eq!(metric(admin, "restore_time_count"), 1.0);
    assert_eq!(metric(admin, "restore_error_count"), 2.0);
    wait_until("the clients let go", Duration::from_secs(5), || {
        a.is_closed() && b.is_closed()
    });
    // The backup's session comes back with its ephemeral; one opened after it is gone.
    let mut again = RawClient::connect_with(server.addr, a.session_id, a.passwd, 30000, 0)
        .expect("the backup's session resumes");
    assert!(again.get("/kept/e", false).is_ok());
    assert_eq!(
        again.get("/kept/n0", false).unwrap().0,
        Some(vec![0u8; 1000])
    );
    assert_eq!(again.get("/after", false).unwrap_err(), -101);
    assert!(RawClient::connect_with(server.addr, b.session_id, b.passwd, 30000, 0).is_none());
    // The order goes on from where it was, not from the backup's zxid.
    let created = again.create("/later", b"", 0);
    assert!(created.is_ok());
    let (_, stat) = again.get("/later", false).unwrap();
    assert!(stat.czxid > v["last_zxid"].as_i64().unwrap());

    let small = common::start(|c| {
        c.admin_token = Some("s3cret".into());
        c.max_restore_bytes = 1000;
    });
    let too_large = http::request_with(
        small.admin.unwrap(),
        "POST",
        "/commands/restore",
        &auth,
        &backup.bytes[..4000],
    )
    .unwrap();
    assert_eq!(too_large.status, 413, "{}", too_large.body);
    assert!(
        too_large.body.contains("--max-restore-bytes"),
        "{}",
        too_large.body
    );
}

/// The admin token of the ensembles below, as a request header.
const AUTH: [(&str, &str); 1] = [("Authorization", "Bearer t0k3n")];

/// `len` bytes that do not compress (a xorshift stream), so that a restore's chunks stay as
/// large in the log as the state they carry.
fn noise(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// A settled 3-member ensemble (admin token `t0k3n`) holding `/kept` with `n` children of
/// `size` bytes ([`noise`]), a backup of it from a follower that had applied them all, and
/// `/after`, created after the backup.
struct BackedUp {
    members: Vec<ensemble::Member>,
    /// The leader, the follower the backup came from, the other follower.
    l: usize,
    f: usize,
    z: usize,
    backup: http::Answer,
}

fn backed_up(root: &std::path::Path, extra_cfg: &str, n: usize, size: usize) -> BackedUp {
    let env = [("ZOOID_ADMIN_TOKEN".to_string(), "t0k3n".to_string())];
    let layout = Layout {
        voters: 3,
        observers: 0,
        proxied: false,
    };
    let (members, _) = ensemble::start_with_env(root, extra_cfg, layout, &env);
    let mut leader = ensemble::settled(&members, Duration::from_secs(10));
    let mut c = RawClient::connect(members[leader].client);
    // As a client does: a connection let go (a leader change on a machine busy with other
    // tests) is opened again where the leader now is, and the write tried again (one that
    // had been applied answers NodeExists).
    let mut create = |path: &str, data: &[u8]| loop {
        match c.try_call(&zooid_e2e::raw::create_request(path, data, 0)) {
            Ok((f, _)) if f.err == 0 || f.err == -110 => return,
            Ok((f, _)) => panic!("create {path}: error {}", f.err),
            Err(why) => {
                eprintln!("create {path}: {why:?}; again through the leader");
                leader = ensemble::settled(&members, Duration::from_secs(10));
                c = RawClient::connect(members[leader].client);
            }
        }
    };
    create("/kept", b"");
    for i in 0..n {
        create(&format!("/kept/n{i}"), &noise(i as u64, size));
    }
    let (l, f, z) = (leader, (leader + 1) % 3, (leader + 2) % 3);
    let kept = ensemble::synced_children(members[f].client, "/kept", Duration::from_secs(20));
    assert_eq!(kept.len(), n);
    let backup =
        http::request_with(members[f].admin, "GET", "/commands/snapshot", &AUTH, b"").unwrap();
    assert_eq!(backup.status, 200, "{}", backup.body);
    c.create("/after", b"", 0).unwrap();
    BackedUp {
        members,
        l,
        f,
        z,
        backup,
    }
}

/// Whether `/after` is there, and how many children `/kept` has, on a member after a sync.
fn contents(m: &ensemble::Member) -> (bool, usize) {
    let within = Duration::from_secs(20);
    let top = ensemble::synced_children(m.client, "/", within);
    let kept = ensemble::synced_children(m.client, "/kept", within);
    (top.contains(&"after".to_string()), kept.len())
}

/// Posts `backup` to `admin`'s restore from a thread of its own.
fn restore_from_thread(
    admin: SocketAddr,
    backup: Vec<u8>,
) -> std::thread::JoinHandle<Option<http::Answer>> {
    std::thread::spawn(move || {
        http::request_with(admin, "POST", "/commands/restore", &AUTH, &backup)
    })
}

/// A restore sent to one member restores every member at the same point in the order: one
/// that was down meanwhile catches up to the restored state, and one restarted afterwards
/// comes back with it.
#[test]
fn a_restore_through_one_member_restores_the_ensemble() {
    let root = tempfile::tempdir().unwrap();
    // Snapshots every 512 KiB of log: some are taken while the backup's chunks are staged,
    // and members restart from them.
    let BackedUp {
        mut members,
        l,
        f,
        z,
        backup,
    } = backed_up(root.path(), "snapshotEveryBytes=524288\n", 1200, 1000);
    members[z].kill9();
    let done = restore_from_thread(members[f].admin, backup.bytes)
        .join()
        .unwrap()
        .expect("no answer to the restore");
    assert_eq!(done.status, 200, "{}", done.body);
    for m in [l, f] {
        let id = members[m].id;
        assert_eq!(contents(&members[m]), (false, 1200), "member {id}");
    }
    // Down during the restore: catches up to it.
    members[z].restart();
    assert_eq!(
        contents(&members[z]),
        (false, 1200),
        "the member that was down"
    );
    // Restarted after it: replays it, or starts from a snapshot that has it.
    members[f].kill9();
    members[f].restart();
    assert_eq!(contents(&members[f]), (false, 1200), "the restarted member");
    let within = Duration::from_secs(20);
    let mut c = ensemble::session_on(members[z].client, None, within).unwrap();
    assert_eq!(
        c.get("/kept/n1199", false).unwrap().0,
        Some(noise(1199, 1000))
    );
}

/// The leader killed while a backup is being restored through a follower: the restore is
/// applied everywhere or nowhere (the answer says which, or that it cannot tell), the staged
/// chunks are dropped, the old leader comes back to the same state, and a second attempt
/// restores.
#[test]
fn a_restore_interrupted_by_the_leaders_death_is_all_or_nothing() {
    let root = tempfile::tempdir().unwrap();
    // 30 MB of state: 30 chunks, long enough to be caught half-way.
    let BackedUp {
        mut members,
        l,
        f,
        z,
        backup,
    } = backed_up(root.path(), "", 50, 600_000);
    let staged = |admin| metric(admin, "zooid_restore_staged_bytes");
    let first = restore_from_thread(members[f].admin, backup.bytes.clone());
    let within = Duration::from_secs(20);
    wait_until("the restore seen half-way", within, || {
        assert!(
            !first.is_finished(),
            "the restore ended before it was seen half-way"
        );
        staged(members[l].admin) != 0.0
    });
    members[l].kill9();
    let answer = first.join().unwrap().expect("no answer to the restore");
    assert!(
        answer.status == 200 || answer.status == 503,
        "{} {}",
        answer.status,
        answer.body
    );
    // The two left agree, and hold no staged chunks once the restore is over either way.
    let seen = contents(&members[f]);
    assert_eq!(contents(&members[z]), seen);
    assert!(seen == (true, 50) || seen == (false, 50), "{seen:?}");
    if answer.status == 200 {
        assert_eq!(seen, (false, 50), "answered restored, but not restored");
    } else if answer.body.contains("nothing was restored") {
        assert_eq!(seen, (true, 50), "{}", answer.body);
    }
    for m in [f, z] {
        wait_until("the staged chunks dropped", within, || {
            staged(members[m].admin) == 0.0
        });
    }
    members[l].restart();
    assert_eq!(contents(&members[l]), seen, "the old leader, back");

    let answer = restore_from_thread(members[z].admin, backup.bytes)
        .join()
        .unwrap()
        .expect("no answer to the second restore");
    assert_eq!(answer.status, 200, "{}", answer.body);
    for m in &members {
        assert_eq!(contents(m), (false, 50), "member {}", m.id);
    }
}

/// A node as a client sees it: path, data, Stat and ACL (its reply bytes).
type Seen = (String, Option<Vec<u8>>, Stat, Vec<u8>);

/// Every node under `path`, parents first, children in name order.
fn walk(c: &mut RawClient, path: &str, out: &mut Vec<Seen>) {
    let (data, stat) = c.get(path, false).unwrap();
    let (acl, _) = c.call(&Request::GetAcl { path: path.into() });
    assert_eq!(acl.err, 0, "getACL {path}");
    out.push((path.to_string(), data, stat, acl.body));
    let (f, _) = c.call(&Request::GetChildren {
        path: path.into(),
        watch: false,
    });
    assert_eq!(f.err, 0, "children of {path}");
    let mut children = Reader::new(&f.body).vector(Reader::string).unwrap();
    children.sort();
    for child in children {
        let p = if path == "/" {
            format!("/{child}")
        } else {
            format!("{path}/{child}")
        };
        walk(c, &p, out);
    }
}

/// Nodes of every kind through `a`: sequential children (one deleted), an ephemeral, a
/// container with a child, a TTL node, an ACL of two entries, data set twice.
fn populate(a: &mut RawClient) {
    let create = |c: &mut RawClient, op, path: &str, acl: Vec<Acl>, flags, ttl| {
        let (f, _) = c.call(&Request::Create(CreateRequest {
            op,
            path: path.into(),
            data: Some(path.as_bytes().to_vec()),
            acl,
            flags,
            ttl,
        }));
        assert_eq!(f.err, 0, "create {path}");
    };
    create(a, OpCode::Create, "/app", Acl::open(), 0, -1);
    for _ in 0..3 {
        create(a, OpCode::Create, "/app/seq-", Acl::open(), 2, -1);
    }
    let (f, _) = a.call(&Request::Delete {
        path: "/app/seq-0000000001".into(),
        version: -1,
    });
    assert_eq!(f.err, 0);
    create(a, OpCode::Create, "/app/e", Acl::open(), 1, -1);
    create(a, OpCode::CreateContainer, "/box", Acl::open(), 4, -1);
    create(a, OpCode::Create, "/box/in", Acl::open(), 0, -1);
    create(a, OpCode::CreateTtl, "/ttl", Acl::open(), 5, 600_000);
    let guarded = vec![
        Acl {
            perms: perms::READ,
            id: Id {
                scheme: "world".into(),
                id: "anyone".into(),
            },
        },
        Acl {
            perms: perms::ALL,
            id: Id {
                scheme: "ip".into(),
                id: "127.0.0.1".into(),
            },
        },
    ];
    create(a, OpCode::Create, "/guarded", guarded, 0, -1);
    for v in 0..2 {
        let (f, _) = a.call(&Request::SetData {
            path: "/app".into(),
            data: Some(vec![v; 300]),
            version: v as i32,
        });
        assert_eq!(f.err, 0);
    }
}

/// An Apache ZooKeeper's data moves to Zooid: the newest snapshot file of its data dir,
/// restored through the admin API, gives every node the data, Stat and ACL ZooKeeper serves,
/// and a client's ZooKeeper session resumes on Zooid with its ephemeral.
#[test]
fn a_zookeeper_snapshot_restores_with_its_nodes_and_sessions() {
    let mut zk = zooid_e2e::apache::ApacheZk::start(2000).unwrap();
    let mut a = RawClient::connect(zk.addr);
    populate(&mut a);
    // ZooKeeper writes a snapshot of everything it loaded when it starts; the session lives on.
    zk.restart().unwrap();
    let snapshot = std::fs::read(zk.newest_snapshot().unwrap()).unwrap();
    let mut expected = Vec::new();
    walk(&mut RawClient::connect(zk.addr), "/", &mut expected);
    assert!(expected.len() >= 10, "{expected:?}");
    assert_eq!(
        zooid_tree::zookeeper_snapshot::session_passwd(a.session_id),
        a.passwd,
        "ZooKeeper's session password"
    );

    let server = common::start(|c| c.admin_token = Some("s3cret".into()));
    let auth = [("Authorization", "Bearer s3cret")];
    let done = http::request_with(
        server.admin.unwrap(),
        "POST",
        "/commands/restore",
        &auth,
        &snapshot,
    )
    .unwrap();
    assert_eq!(done.status, 200, "{}", done.body);
    let mut restored = Vec::new();
    walk(&mut RawClient::connect(server.addr), "/", &mut restored);
    assert_eq!(restored.len(), expected.len());
    for (z, e) in restored.iter().zip(&expected) {
        assert_eq!(z, e, "{}", e.0);
    }
    // The client of ZooKeeper resumes its session here; closing it takes its ephemeral.
    let mut resumed = RawClient::connect_with(server.addr, a.session_id, a.passwd, 30000, 0)
        .expect("the ZooKeeper session resumes");
    let (_, stat) = resumed.get("/app/e", false).unwrap();
    assert_eq!(stat.ephemeral_owner, a.session_id);
    resumed.call(&Request::CloseSession);
    let mut c = RawClient::connect(server.addr);
    assert_eq!(c.get("/app/e", false).unwrap_err(), -101);

    // Damaged or compressed: refused, naming why.
    let mut damaged = snapshot.clone();
    let at = damaged.len() / 2;
    damaged[at] ^= 0x40;
    let refused = http::request_with(
        server.admin.unwrap(),
        "POST",
        "/commands/restore",
        &auth,
        &damaged,
    )
    .unwrap();
    assert_eq!(refused.status, 400, "{}", refused.body);
    assert!(
        refused.body.contains("ZooKeeper snapshot"),
        "{}",
        refused.body
    );
    let gz = http::request_with(
        server.admin.unwrap(),
        "POST",
        "/commands/restore",
        &auth,
        &[0x1f, 0x8b, 8, 0, 0, 0, 0, 0],
    )
    .unwrap();
    assert_eq!(gz.status, 415, "{}", gz.body);
}

/// The way back: `snapshot?format=zookeeper` gives a file an Apache ZooKeeper starts from
/// (`version-2/snapshot.<zxid>`), serving every node with the data, Stat and ACL Zooid served.
#[test]
fn a_snapshot_in_zookeepers_format_starts_apache_zookeeper_with_the_same_tree() {
    let server = common::start(|c| {
        c.admin_token = Some("s3cret".into());
        c.extended_types = true;
    });
    let admin = server.admin.unwrap();
    let mut a = RawClient::connect(server.addr);
    populate(&mut a);
    let auth = [("Authorization", "Bearer s3cret")];
    let get = |path: &str| http::request_with(admin, "GET", path, &auth, b"").unwrap();
    let snapshot = get("/commands/snapshot?format=zookeeper");
    assert_eq!(snapshot.status, 200, "{}", snapshot.body);
    let zxid = snapshot.header("last_zxid").unwrap();
    let zxid = i64::from_str_radix(zxid.trim_start_matches("0x"), 16).unwrap();
    let mut expected = Vec::new();
    walk(&mut RawClient::connect(server.addr), "/", &mut expected);
    assert!(expected.len() >= 10, "{expected:?}");

    let zk = zooid_e2e::apache::ApacheZk::start_from_snapshot(2000, &snapshot.bytes, zxid).unwrap();
    let mut served = Vec::new();
    walk(&mut RawClient::connect(zk.addr), "/", &mut served);
    assert_eq!(served.len(), expected.len());
    for (z, e) in served.iter().zip(&expected) {
        assert_eq!(z, e, "{}", e.0);
    }
    let unknown = get("/commands/snapshot?format=xml");
    assert_eq!(unknown.status, 400, "{}", unknown.body);
}
