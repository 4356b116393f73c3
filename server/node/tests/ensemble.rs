//! Three `zooid` processes started from one ZooKeeper zoo.cfg (each with its own data dir and
//! `myid`) form an ensemble on loopback: writes sent to any member are ordered once; the
//! leader is killed with SIGKILL under a write load, and every write acknowledged to a client
//! is then present on both survivors, which go on taking writes; a session whose server died
//! resumes on another member with its ephemeral node.
#![allow(clippy::unwrap_used)]

mod common;

use common::ensemble::{self, mode, settled, Member};
use common::writers::{try_create, Writers};
use common::RawClient;
use std::io::Read;
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use zooid_e2e::wait::{wait_for, wait_for_explained, wait_until};
use zooid_proto::*;

fn children(c: &mut RawClient, path: &str) -> Vec<String> {
    let (f, _) = c.call(&Request::GetChildren {
        path: path.into(),
        watch: false,
    });
    assert_eq!(f.err, 0);
    Reader::new(&f.body).vector(Reader::string).unwrap()
}

#[test]
fn kill_9_of_the_leader_under_writes_loses_no_acknowledged_write() {
    let root = tempfile::tempdir().unwrap();
    let mut members = ensemble::start(root.path());
    let leader = members
        .iter()
        .position(|m| mode(m.client).as_deref() == Some("leader"))
        .unwrap();

    // conf names each member and the ensemble as ZooKeeper's does.
    for m in &members {
        let conf = common::four_letter(m.client, "conf");
        assert!(
            conf.lines().any(|l| l == format!("serverId={}", m.id)),
            "{conf}"
        );
        assert_eq!(
            conf.lines().filter(|l| l.starts_with("server.")).count(),
            3,
            "{conf}"
        );
    }

    // A write sent to any member is ordered once and seen by all.
    let mut setup = RawClient::connect(members[(leader + 1) % 3].client);
    setup.create("/w", b"", 0).unwrap();
    for m in &members {
        let mut c = RawClient::connect(m.client);
        assert!(c.get("/w", false).is_ok(), "member {} lacks /w", m.id);
    }
    // sync makes a member catch up with a write acknowledged by another one. Followers learn
    // of commits with the leader's next message, so without it the read would lag.
    let mut on_a = RawClient::connect(members[(leader + 1) % 3].client);
    let mut on_b = RawClient::connect(members[(leader + 2) % 3].client);
    on_a.create("/synced", b"0", 0).unwrap();
    for i in 1..=30u32 {
        let (f, _) = on_a.call(&Request::SetData {
            path: "/synced".into(),
            data: Some(i.to_string().into_bytes()),
            version: -1,
        });
        assert_eq!(f.err, 0);
        let (f, _) = on_b.call(&Request::Sync {
            path: "/synced".into(),
        });
        assert_eq!(f.err, 0);
        let (data, _) = on_b.get("/synced", false).unwrap();
        assert_eq!(
            data.as_deref(),
            Some(i.to_string().as_bytes()),
            "a read after sync on another member missed write {i}"
        );
    }

    // A client of the leader holds an ephemeral node.
    let mut doomed = RawClient::connect(members[leader].client);
    doomed
        .create("/owned", b"", CreateMode::Ephemeral.flags())
        .unwrap();
    let (doomed_id, doomed_pw) = (doomed.session_id, doomed.passwd);

    // One writer per member, each creating its own sequence of nodes.
    let stop = Arc::new(AtomicBool::new(false));
    // (path, sent, acknowledged)
    let acked = Arc::new(Mutex::new(Vec::<(String, Instant, Instant)>::new()));
    let writers: Vec<_> = members
        .iter()
        .map(|m| {
            let (addr, id) = (m.client, m.id);
            let (stop, acked) = (stop.clone(), acked.clone());
            std::thread::spawn(move || {
                let mut c = RawClient::connect(addr);
                let mut i = 0;
                while !stop.load(Ordering::Relaxed) {
                    let path = format!("/w/m{id}-{i:06}");
                    i += 1;
                    let sent = Instant::now();
                    match try_create(&mut c, &path) {
                        Some(true) => acked.lock().unwrap().push((path, sent, Instant::now())),
                        Some(false) => {}
                        None => {
                            // Connection lost: resume the session on the same member, unless
                            // it is the one that died.
                            if TcpStream::connect(addr).is_err() {
                                return;
                            }
                            match RawClient::try_connect_with(
                                addr,
                                c.session_id,
                                c.passwd,
                                30000,
                                0,
                            ) {
                                Ok(again) => c = again,
                                Err(_) => return,
                            }
                        }
                    }
                }
            })
        })
        .collect();
    wait_until(
        "50 writes acknowledged before the kill",
        Duration::from_secs(10),
        || acked.lock().unwrap().len() > 50,
    );
    let before_kill = acked.lock().unwrap().len();
    members[leader].kill9();
    let killed_at = Instant::now();
    wait_until(
        "a write sent after the kill acknowledged",
        Duration::from_secs(15),
        || {
            acked
                .lock()
                .unwrap()
                .iter()
                .any(|(_, sent, _)| *sent > killed_at)
        },
    );
    stop.store(true, Ordering::Relaxed);
    for w in writers {
        w.join().unwrap();
    }
    let acked = acked.lock().unwrap().clone();
    // Writes sent after the kill: ordered by the new leader.
    let first_after = acked
        .iter()
        .filter(|(_, sent, _)| *sent > killed_at)
        .map(|(_, _, t)| *t - killed_at)
        .min()
        .expect("no write sent after the leader was killed was acknowledged");
    eprintln!(
        "{before_kill} writes acknowledged before the kill, {} in all; first write after the kill acknowledged {first_after:?} after it",
        acked.len()
    );

    // Every acknowledged write is on both survivors.
    let survivors: Vec<&Member> = members
        .iter()
        .enumerate()
        .filter(|(i, _)| *i != leader)
        .map(|(_, m)| m)
        .collect();
    for m in &survivors {
        let mut c = RawClient::connect(m.client);
        // sync: the member applies everything acknowledged anywhere before it.
        let (f, _) = c.call(&Request::Sync { path: "/w".into() });
        assert_eq!(f.err, 0, "sync on member {}", m.id);
        let have: std::collections::HashSet<String> = children(&mut c, "/w").into_iter().collect();
        let missing: Vec<_> = acked
            .iter()
            .filter(|(p, _, _)| !have.contains(&p["/w/".len()..]))
            .map(|(p, _, _)| p.clone())
            .collect();
        assert!(
            missing.is_empty(),
            "member {} lacks {} acknowledged writes after sync, e.g. {:?}",
            m.id,
            missing.len(),
            &missing[..missing.len().min(5)]
        );
    }

    // The dead leader's client resumes its session elsewhere and still owns its node.
    let mut resumed = RawClient::connect_with(survivors[0].client, doomed_id, doomed_pw, 30000, 0)
        .expect("the session of the dead member's client resumes on a survivor");
    let (_, stat) = resumed
        .get("/owned", false)
        .expect("its ephemeral node survived");
    assert_eq!(stat.ephemeral_owner, doomed_id);
}

#[test]
fn a_stopped_leader_is_replaced_and_a_leader_without_quorum_lets_its_clients_go() {
    let root = tempfile::tempdir().unwrap();
    let members = ensemble::start(root.path());
    let leader = settled(&members, Duration::from_secs(10));
    let follower = (leader + 1) % 3;
    RawClient::connect(members[follower].client)
        .create("/s", b"", 0)
        .unwrap();

    // SIGSTOP of the leader for longer than an election: a follower's client keeps writing.
    let stop = Arc::new(AtomicBool::new(false));
    let acked = Arc::new(Mutex::new(Vec::<(String, Instant)>::new()));
    let writer = {
        let addr = members[follower].client;
        let (stop, acked) = (stop.clone(), acked.clone());
        std::thread::spawn(move || {
            let mut c = RawClient::connect(addr);
            let mut i = 0;
            while !stop.load(Ordering::Relaxed) {
                let path = format!("/s/n{i:06}");
                i += 1;
                match try_create(&mut c, &path) {
                    Some(true) => acked.lock().unwrap().push((path, Instant::now())),
                    Some(false) => {}
                    None => {
                        // Let go as the leader changed: the session resumes on the same
                        // follower once it serves again, as a ZooKeeper client's does.
                        let session = Some((c.session_id, c.passwd));
                        c = ensemble::session_on(addr, session, Duration::from_secs(10))
                            .expect("the follower's client resumes its session");
                    }
                }
            }
        })
    };
    wait_until("the writer's first write", Duration::from_secs(10), || {
        !acked.lock().unwrap().is_empty()
    });
    members[leader].signal("-STOP");
    let stopped_at = Instant::now();
    // The others elect a leader and take writes while the old one is stopped.
    wait_until(
        "a write acknowledged while the leader is stopped",
        Duration::from_secs(15),
        || acked.lock().unwrap().iter().any(|(_, t)| *t > stopped_at),
    );
    let during = acked
        .lock()
        .unwrap()
        .iter()
        .filter(|(_, t)| *t > stopped_at)
        .count();
    members[leader].signal("-CONT");
    let leader = settled(&members, Duration::from_secs(10));
    stop.store(true, Ordering::Relaxed);
    writer.join().unwrap();
    let acked = acked.lock().unwrap().clone();
    for m in &members {
        // The member stopped for seconds finds itself deposed when it runs again, and lets
        // its clients go: a client tries again.
        let have: std::collections::HashSet<String> =
            ensemble::synced_children(m.client, "/s", Duration::from_secs(10))
                .into_iter()
                .collect();
        let missing = acked
            .iter()
            .filter(|(p, _)| !have.contains(&p["/s/".len()..]))
            .count();
        assert_eq!(missing, 0, "member {} lacks acknowledged writes", m.id);
    }
    eprintln!(
        "{during} writes acknowledged while the leader was stopped, {} in all",
        acked.len()
    );

    // Both followers stop: the leader has no quorum, closes its clients' connections after
    // the grace period and refuses new ones; when they come back, clients resume.
    let mut client = RawClient::connect(members[leader].client);
    let (id, pw) = (client.session_id, client.passwd);
    let others: Vec<usize> = (0..3).filter(|i| *i != leader).collect();
    for i in &others {
        members[*i].signal("-STOP");
    }
    let cut_at = Instant::now();
    client
        .stream
        .set_read_timeout(Some(Duration::from_secs(8)))
        .unwrap();
    let mut byte = [0u8; 1];
    let closed = matches!(client.stream.read(&mut byte), Ok(0) | Err(_))
        && cut_at.elapsed() < Duration::from_secs(8);
    let took = cut_at.elapsed();
    let refused = RawClient::connect_with(members[leader].client, 0, [0; 16], 30000, 0).is_none();
    let said = mode(members[leader].client);
    for i in &others {
        members[*i].signal("-CONT");
    }
    assert!(
        closed,
        "the leader kept its client for {took:?} without a quorum"
    );
    // The grace is syncLimit ticks: 1 s here.
    assert!(
        took >= Duration::from_millis(950),
        "closed after only {took:?}; LEADER LOG:\n{}",
        std::fs::read_to_string(&members[leader].log).unwrap_or_default()
    );
    assert!(refused, "a leader without a quorum took a new session");
    assert_eq!(said, None, "srvr without a quorum reports no mode");
    eprintln!("client let go {took:?} after the quorum was lost");
    settled(&members, Duration::from_secs(10));
    let mut back = wait_for("the session resumed", Duration::from_secs(10), || {
        members
            .iter()
            .find_map(|m| RawClient::try_connect_with(m.client, id, pw, 30000, 0).ok())
    });
    assert!(back.get("/s", false).is_ok());
}

#[test]
fn sessions_expire_by_the_leader_everywhere_and_pings_on_followers_keep_them() {
    let root = tempfile::tempdir().unwrap();
    let members = ensemble::start(root.path());
    let leader = settled(&members, Duration::from_secs(10));
    let follower = members[(leader + 1) % 3].client;

    // Two sessions of 1 s on a follower: one pings, one goes silent.
    let mut alive = RawClient::connect_with(follower, 0, [0; 16], 1000, 0).unwrap();
    let mut silent = RawClient::connect_with(follower, 0, [0; 16], 1000, 0).unwrap();
    assert_eq!((alive.timeout_ms, silent.timeout_ms), (1000, 1000));
    alive
        .create("/alive", b"", CreateMode::Ephemeral.flags())
        .unwrap();
    silent
        .create("/silent", b"", CreateMode::Ephemeral.flags())
        .unwrap();
    let silent_since = Instant::now();
    let watchers: Vec<_> = members
        .iter()
        .map(|m| {
            let mut w = RawClient::connect(m.client);
            let (f, _) = w.call(&Request::Exists {
                path: "/silent".into(),
                watch: true,
            });
            assert_eq!(f.err, 0);
            std::thread::spawn(move || {
                let e = w.next_event();
                let at = silent_since.elapsed();
                let (f, _) = w.call(&Request::Exists {
                    path: "/alive".into(),
                    watch: false,
                });
                (e, at, f.err)
            })
        })
        .collect();
    // The pinging client stays for three timeouts, though only its follower hears it.
    while silent_since.elapsed() < Duration::from_secs(3) {
        let (f, _) = alive.call(&Request::Ping);
        assert_eq!(f.err, 0, "the pinging session was expired");
        std::thread::sleep(Duration::from_millis(250));
    }
    for (i, w) in watchers.into_iter().enumerate() {
        let (e, at, alive_err) = w.join().unwrap();
        assert_eq!(
            (e.event_type, e.path.as_str()),
            (EventType::NodeDeleted as i32, "/silent"),
            "member {i}"
        );
        eprintln!("member {i}: the silent session's node deleted {at:?} after its last request");
        // Timeout 1 s, tick 200 ms; a little more for the close to be ordered and applied.
        assert!(
            at < Duration::from_millis(1000 + 200 + 150),
            "member {i} saw the expiry {at:?} after the last request"
        );
        assert_eq!(
            alive_err, 0,
            "the pinging session's node is gone on member {i}"
        );
    }
    assert!(
        RawClient::connect_with(follower, silent.session_id, silent.passwd, 1000, 0).is_none(),
        "an expired session was resumed"
    );
}

/// ZooKeeper's session ownership: once a client resumes its session on another server, what
/// it left in flight at the former one cannot change anything after what it does at the new
/// one (those requests fail with SESSIONMOVED, and the former server drops the connection).
#[test]
fn a_session_resumed_elsewhere_no_longer_counts_from_its_former_server() {
    let root = tempfile::tempdir().unwrap();
    let members = ensemble::start(root.path());
    let leader = settled(&members, Duration::from_secs(10));
    let (a, b) = (
        members[(leader + 1) % 3].client,
        members[(leader + 2) % 3].client,
    );
    let mut former = RawClient::connect(a);
    former.create("/moved", b"start", 0).unwrap();
    let set = |data: &str| Request::SetData {
        path: "/moved".into(),
        data: Some(data.as_bytes().to_vec()),
        version: -1,
    };
    // Writes pipelined on the former server, without waiting for their answers...
    let mut sent = 0;
    for i in 0..300 {
        former.send(&set(&format!("former {i}")));
        sent += 1;
    }
    // ...then the client goes on at another server and writes there...
    let mut now = ensemble::session_on(
        b,
        Some((former.session_id, former.passwd)),
        Duration::from_secs(10),
    )
    .expect("the session did not resume on the other member");
    let (f, _) = now.call(&set("now"));
    assert_eq!(f.err, 0);
    // ...while the old connection still carries requests the former server may have read.
    for i in 300..600 {
        if former.try_send(&set(&format!("former {i}"))).is_none() {
            break;
        }
        sent += 1;
    }
    let mut acked = 0;
    while let Ok(f) = former.recv() {
        assert_eq!(
            f.err, 0,
            "the former server answered {f:?} instead of closing"
        );
        acked += 1;
    }
    eprintln!("{sent} writes sent through the former server, {acked} acknowledged before it let the connection go");
    // Nothing the former server held was ordered after the write at the new one.
    let (data, stat) = now.get("/moved", false).unwrap();
    assert_eq!(data.as_deref(), Some(&b"now"[..]));
    assert!(
        stat.version as usize > acked,
        "{stat:?} after {acked} acknowledged"
    );
    for m in &members {
        wait_until(
            "every member has the last write",
            Duration::from_secs(10),
            || {
                let mut c = RawClient::connect(m.client);
                c.get("/moved", false).unwrap() == (data.clone(), stat)
            },
        );
    }
    // The session goes on where it is now.
    now.create("/moved/child", b"", CreateMode::Ephemeral.flags())
        .unwrap();
}

#[test]
fn a_member_behind_the_purged_log_catches_up_by_snapshot() {
    let root = tempfile::tempdir().unwrap();
    // A snapshot every 100 entries; the log before it is purged (openraft keeps the last 100
    // entries a snapshot covers).
    let mut members = ensemble::start_with(root.path(), "snapCount=100\n", 0);
    let leader = settled(&members, Duration::from_secs(10));
    let behind = (leader + 1) % 3;
    members[behind].kill9();
    // ZOOID_CATCH_UP_WRITES=100000 for the figure (docs/ensembles.md).
    let writes: usize = std::env::var("ZOOID_CATCH_UP_WRITES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1000);
    let mut c = RawClient::connect(members[leader].client);
    c.create("/c", b"", 0).unwrap();
    let started = Instant::now();
    // One write per entry (a client waiting for each answer), so that 1,000 writes fill
    // enough entries for the log to be purged; a long run pipelines 200 at a time (many writes
    // per entry, and still many entries).
    let window = if writes > 10_000 { 200 } else { 1 };
    let live: Vec<SocketAddr> = members
        .iter()
        .enumerate()
        .filter(|(i, _)| *i != behind)
        .map(|(_, m)| m.client)
        .collect();
    let mut next = 0;
    for window in (0..writes).collect::<Vec<_>>().chunks(window) {
        // On a loaded machine the two members left may change leader meanwhile, and let
        // their clients go: the window is sent again through either (a create that was
        // applied the first time is then NodeExists, which is as good).
        loop {
            let xids: Vec<Option<i32>> = window
                .iter()
                .map(|i| {
                    c.try_send(&Request::Create(CreateRequest {
                        op: OpCode::Create,
                        path: format!("/c/n{i:06}"),
                        data: Some(b"x".to_vec()),
                        acl: Acl::open(),
                        flags: 0,
                        ttl: -1,
                    }))
                })
                .collect();
            let answered = xids.iter().all(|xid| {
                xid.and_then(|xid| c.recv().ok().filter(|f| f.xid == xid))
                    .is_some_and(|f| f.err == 0 || f.err == ErrorCode::NodeExists as i32)
            });
            if answered {
                break;
            }
            next += 1;
            c = ensemble::session_on(live[next % 2], None, Duration::from_secs(10))
                .expect("a member left serves again");
        }
    }
    eprintln!(
        "{writes} writes while a member was down, in {:?}",
        started.elapsed()
    );
    members[behind].restart();
    let restarted = Instant::now();
    caught_up(&members, behind, writes);
    eprintln!(
        "caught up by snapshot {:?} after restarting",
        restarted.elapsed()
    );

    // A member whose data is lost (a new disk: only myid kept) catches up the same way.
    let wiped = (leader + 2) % 3;
    members[wiped].kill9();
    let dir = members[wiped].dir().to_path_buf();
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.file_name() != Some(std::ffi::OsStr::new("myid")) {
            std::fs::remove_dir_all(&path)
                .or_else(|_| std::fs::remove_file(&path))
                .unwrap();
        }
    }
    for i in writes..writes + 300 {
        c.create(&format!("/c/n{i:06}"), b"x", 0).unwrap();
    }
    members[wiped].restart();
    caught_up(&members, wiped, writes + 300);
}

/// Waits (two minutes at the most) until `m` serves `/c` with `n` children after sync,
/// having installed a snapshot.
/// On failure every member's log is shown (the others' say why it could not).
fn caught_up(members: &[Member], i: usize, n: usize) {
    let m = &members[i];
    wait_for_explained(
        &format!("member {} caught up to {n} children of /c", m.id),
        Duration::from_secs(120),
        || {
            RawClient::try_connect_with(m.client, 0, [0; 16], 30000, 0)
                .ok()
                .and_then(|mut r| ensemble::sync_then_children(&mut r, "/c"))
                .filter(|c| c.len() == n)
        },
        || {
            members
                .iter()
                .map(|o| {
                    let log = std::fs::read_to_string(&o.log).unwrap_or_default();
                    let lines: Vec<&str> = log.lines().collect();
                    let tail = lines[lines.len().saturating_sub(60)..].join("\n");
                    let panics: Vec<String> = lines
                        .iter()
                        .enumerate()
                        .filter(|(_, l)| l.contains("panicked at"))
                        .map(|(i, _)| lines[i..(i + 3).min(lines.len())].join("\n"))
                        .collect();
                    format!(
                        "--- member {} (panics: {panics:?}; last 60 lines)\n{tail}",
                        o.id
                    )
                })
                .collect::<Vec<_>>()
                .join("\n")
        },
    );
    let log = std::fs::read_to_string(&m.log).unwrap();
    assert!(
        log.contains("installed a snapshot from the leader"),
        "member {} caught up without a snapshot (was the log not purged?)",
        m.id
    );
}

#[test]
fn an_observer_serves_and_forwards_but_never_votes() {
    let root = tempfile::tempdir().unwrap();
    let mut members = ensemble::start_with(root.path(), "", 1);
    let leader = settled(&members, Duration::from_secs(10));
    let observer = 3;
    assert_eq!(mode(members[observer].client).as_deref(), Some("observer"));

    // Its clients' writes are forwarded, ordered once, and seen everywhere.
    let mut c = RawClient::connect(members[observer].client);
    c.create("/o", b"x", 0).unwrap();
    c.create("/o/e", b"", CreateMode::Ephemeral.flags())
        .unwrap();
    for m in &members {
        let mut r = RawClient::connect(m.client);
        let (f, _) = r.call(&Request::Sync { path: "/o".into() });
        assert_eq!(f.err, 0);
        assert!(r.get("/o/e", false).is_ok(), "member {} lacks /o/e", m.id);
    }

    // The leader's mntr counts its followers and the observer, all in sync.
    let mntr = common::four_letter(members[leader].client, "mntr");
    for line in [
        "zk_followers\t2",
        "zk_synced_followers\t2",
        "zk_synced_observers\t1",
        "zk_learners\t3",
        "zk_server_state\tleader",
    ] {
        assert!(mntr.lines().any(|l| l == line), "{line} not in:\n{mntr}");
    }

    // It does not count towards the quorum: with it and one follower gone, the leader and
    // the other follower (two of three voters) still order writes.
    let follower = (0..3).find(|i| *i != leader).unwrap();
    members[observer].kill9();
    members[follower].kill9();
    let mut w = RawClient::connect(members[leader].client);
    w.create("/after", b"", 0)
        .expect("two of three voters order writes without the observer");
}

/// Five members, their peer links through a fault-injecting proxy. The leader and one
/// follower are cut off from the other three: writes sent to the two are never acknowledged,
/// the three elect a leader and go on; once the links heal, all five hold the same nodes.
#[test]
fn a_partitioned_minority_cannot_commit_and_converges_after_healing() {
    let root = tempfile::tempdir().unwrap();
    let layout = ensemble::Layout {
        voters: 5,
        observers: 0,
        proxied: true,
    };
    let (members, proxies) = ensemble::start_laid_out(root.path(), "", layout);
    let proxies = proxies.unwrap();
    let leader = settled(&members, Duration::from_secs(10));
    let all: Vec<u64> = members.iter().map(|m| m.id).collect();
    let minority = [members[leader].id, members[(leader + 1) % 5].id];
    let (small, large): (Vec<&Member>, Vec<&Member>) =
        members.iter().partition(|m| minority.contains(&m.id));
    let mut setup = RawClient::connect(large[0].client);
    setup.create("/p", b"", 0).unwrap();
    for m in &members {
        // Every member has /p before the cut.
        let mut c = RawClient::connect(m.client);
        let (f, _) = c.call(&Request::Sync { path: "/p".into() });
        assert_eq!(f.err, 0);
    }
    let mut on_small: Vec<RawClient> = small.iter().map(|m| RawClient::connect(m.client)).collect();

    proxies.partition(&minority, &all);
    let cut_at = Instant::now();

    // The majority elects a leader among itself and takes writes, while the minority is tried.
    let large_addrs: Vec<(u64, std::net::SocketAddr)> =
        large.iter().map(|m| (m.id, m.client)).collect();
    let majority = std::thread::spawn(move || {
        let mut first_ok = None;
        let mut acked = Vec::new();
        let mut i = 0;
        wait_until(
            "50 writes taken by the majority",
            Duration::from_secs(15),
            || {
                let (_, addr) = large_addrs[i % large_addrs.len()];
                i += 1;
                if let Ok(mut c) = RawClient::try_connect_with(addr, 0, [0; 16], 30000, 0) {
                    let path = format!("/p/majority-{i:04}");
                    if try_create(&mut c, &path) == Some(true) {
                        first_ok.get_or_insert_with(|| cut_at.elapsed());
                        acked.push(path);
                    }
                }
                acked.len() >= 50
            },
        );
        (first_ok.unwrap(), acked)
    });

    // The minority: a write sent to either member is never acknowledged; the member lets its
    // client go instead (no quorum), or leaves it unanswered.
    let minority_writes: Vec<String> = on_small
        .iter_mut()
        .enumerate()
        .map(|(i, c)| {
            let path = format!("/p/minority-{i}");
            let xid = c.try_send(&Request::Create(CreateRequest {
                op: OpCode::Create,
                path: path.clone(),
                data: None,
                acl: Acl::open(),
                flags: 0,
                ttl: -1,
            }));
            if let Some(xid) = xid {
                while let Ok(f) = c.recv() {
                    assert!(
                        f.xid != xid || f.err != 0,
                        "{path} was acknowledged by a member cut off from the quorum at {:?}",
                        cut_at.elapsed()
                    );
                    if f.xid == xid {
                        eprintln!("{path}: error {} after {:?}", f.err, cut_at.elapsed());
                        break;
                    }
                }
            }
            eprintln!(
                "{path}: not acknowledged ({:?} after the cut)",
                cut_at.elapsed()
            );
            path
        })
        .collect();

    let (first_ok, majority_acked) = majority.join().expect("the majority's writer failed");
    // Cut off for longer than the grace period, the two stop serving: their clients move.
    wait_until(
        "the members cut off from the quorum no longer serving",
        Duration::from_secs(10),
        || small.iter().all(|m| mode(m.client).is_none()),
    );
    eprintln!(
        "partition: first write acknowledged by the majority {first_ok:?} after the cut; \
         {} writes there",
        majority_acked.len()
    );

    proxies.heal();
    let healed_at = Instant::now();
    // Every member serves again, and all five hold the same children of /p.
    let mut reference: Option<Vec<String>> = None;
    for m in &members {
        let mut names = ensemble::synced_children(m.client, "/p", Duration::from_secs(15));
        names.sort();
        for p in &majority_acked {
            assert!(
                names.contains(&p["/p/".len()..].to_string()),
                "server {} lacks {p}",
                m.id
            );
        }
        for p in &minority_writes {
            assert!(
                !names.contains(&p["/p/".len()..].to_string()),
                "server {} has {p}, never acknowledged by a quorum",
                m.id
            );
        }
        match &reference {
            None => reference = Some(names),
            Some(r) => assert_eq!(&names, r, "server {} differs", m.id),
        }
    }
    eprintln!("all five converged {:?} after healing", healed_at.elapsed());
}

/// A leader stopped with SIGTERM hands over to a follower with all of its log: writes sent
/// through the followers resume sooner than after a crash (the followers need not wait out
/// an election timeout), and none that was acknowledged is lost.
#[test]
fn a_leader_stopped_by_sigterm_hands_over() {
    let root = tempfile::tempdir().unwrap();
    let mut members = ensemble::start(root.path());
    let leader = settled(&members, Duration::from_secs(10));
    RawClient::connect(members[(leader + 1) % 3].client)
        .create("/w", b"", 0)
        .unwrap();
    let writers = Writers::start(&[&members[(leader + 1) % 3], &members[(leader + 2) % 3]]);
    while writers.count() < 200 {
        std::thread::sleep(Duration::from_millis(10));
    }
    members[leader].signal("-TERM");
    let termed = Instant::now();
    let exited = loop {
        if let Some(status) = members[leader].child.try_wait().unwrap() {
            break status;
        }
        assert!(
            termed.elapsed() < Duration::from_secs(20),
            "the leader did not stop"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(exited.success(), "the leader exited with {exited}");
    wait_until(
        "100 writes acknowledged after the SIGTERM",
        Duration::from_secs(10),
        || writers.acked_since(termed) >= 100,
    );
    let gap = writers.gap_since(termed);
    let (acked, _, lost) = writers.stop();
    assert_eq!(lost, 0, "a follower stopped serving its writer");
    let log = std::fs::read_to_string(&members[leader].log).unwrap();
    assert!(
        log.contains("handed the leadership over to server"),
        "no hand-over in the leader's log:\n{}",
        log.lines()
            .filter(|l| !l.contains("DEBUG"))
            .rev()
            .take(15)
            .collect::<Vec<_>>()
            .join("\n")
    );
    eprintln!(
        "SIGTERM of the leader: longest time without an acknowledged write {gap:?}, exited {:?} after the signal",
        termed.elapsed()
    );
    for (i, m) in members.iter().enumerate() {
        if i == leader {
            continue;
        }
        let mut c = RawClient::connect(m.client);
        let (f, _) = c.call(&Request::Sync { path: "/w".into() });
        assert_eq!(f.err, 0);
        let have: std::collections::HashSet<String> = children(&mut c, "/w").into_iter().collect();
        let missing = acked
            .iter()
            .filter(|p| !have.contains(&p["/w/".len()..]))
            .count();
        assert_eq!(missing, 0, "server {} lacks acknowledged writes", m.id);
    }
    // Within one election timeout (0.3-0.6 s), which a crash costs at least: 10-50 ms from a
    // leader that has led longer than its lease, 100-250 ms from a younger one (as here),
    // which refuses the first vote and grants the second.
    if gap >= Duration::from_millis(500) {
        for m in &members {
            let log = std::fs::read_to_string(&m.log).unwrap();
            eprintln!("=== {}", m.id);
            for l in log.lines().filter(|l| !l.contains("DEBUG")).rev().take(12) {
                eprintln!("{}", &l[..l.len().min(260)]);
            }
        }
    }
    assert!(
        gap < Duration::from_millis(500),
        "writes stalled for {gap:?}"
    );
}
