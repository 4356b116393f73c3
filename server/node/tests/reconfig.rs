//! Dynamic reconfiguration: ZooKeeper's `reconfig` request grows and shrinks a running
//! ensemble of `zooid` processes on loopback, under a write load, and `/zookeeper/config`
//! shows the members as ZooKeeper writes them.
#![allow(clippy::unwrap_used)]

mod common;

use common::ensemble::{self, mode, settled, spawn_joiner, Member};
use common::writers::Writers;
use common::RawClient;
use std::collections::HashSet;
use std::time::{Duration, Instant};
use zooid_e2e::wait::wait_until;
use zooid_proto::*;

/// Sends a reconfig; returns the error code and, on success, `/zookeeper/config`'s text.
fn reconfig(
    c: &mut RawClient,
    joining: Option<&str>,
    leaving: Option<&str>,
    new_members: Option<&str>,
    from: i64,
) -> (i32, String, Option<Stat>) {
    // Adding members waits for them to catch up: longer than a plain request.
    c.stream
        .set_read_timeout(Some(Duration::from_secs(40)))
        .unwrap();
    let (f, _) = c.call(&Request::Reconfig {
        joining: joining.map(str::to_string),
        leaving: leaving.map(str::to_string),
        new_members: new_members.map(str::to_string),
        cur_config_id: from,
    });
    c.stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    if f.err != 0 {
        return (f.err, String::new(), None);
    }
    let mut r = Reader::new(&f.body);
    let data = r.buffer().unwrap().unwrap_or_default();
    let stat = Stat::decode(&mut r).unwrap();
    (0, String::from_utf8(data).unwrap(), Some(stat))
}

fn config(c: &mut RawClient) -> (String, Stat) {
    let (data, stat) = c.get("/zookeeper/config", false).unwrap();
    (String::from_utf8(data.unwrap_or_default()).unwrap(), stat)
}

/// The `version=` of a config text.
fn version(text: &str) -> i64 {
    let v = text
        .lines()
        .find_map(|l| l.strip_prefix("version="))
        .unwrap_or_else(|| panic!("no version line in {text:?}"));
    i64::from_str_radix(v, 16).unwrap()
}

fn ids(text: &str) -> Vec<(u64, String)> {
    text.lines()
        .filter_map(|l| l.strip_prefix("server."))
        .map(|l| {
            let (id, rest) = l.split_once('=').unwrap();
            let role = rest.split(';').next().unwrap().rsplit(':').next().unwrap();
            (id.parse().unwrap(), role.to_string())
        })
        .collect()
}

/// Waits until `m` reports `want` as its mode.
fn wait_mode(m: &Member, want: &[&str], within: Duration) {
    let what = format!("server {} as {want:?}", m.id);
    wait_until(&what, within, || {
        mode(m.client).is_some_and(|g| want.contains(&g.as_str()))
    });
}

fn assert_has_all(m: &Member, acked: &[String]) {
    let mut c = RawClient::connect(m.client);
    let (f, _) = c.call(&Request::Sync { path: "/w".into() });
    assert_eq!(f.err, 0, "sync on server {}", m.id);
    let (f, _) = c.call(&Request::GetChildren {
        path: "/w".into(),
        watch: false,
    });
    assert_eq!(f.err, 0);
    let have: HashSet<String> = Reader::new(&f.body)
        .vector(Reader::string)
        .unwrap()
        .into_iter()
        .collect();
    let missing: Vec<&String> = acked
        .iter()
        .filter(|p| !have.contains(&p["/w/".len()..]))
        .collect();
    assert!(
        missing.is_empty(),
        "server {} lacks {} acknowledged writes, e.g. {:?}",
        m.id,
        missing.len(),
        &missing[..missing.len().min(5)]
    );
}

#[test]
fn grow_three_to_five_and_shrink_back_under_writes() {
    let root = tempfile::tempdir().unwrap();
    let cfg = format!("reconfigEnabled=true\n{}", zooid_e2e::super_digest_line());
    let mut members = ensemble::start_with(root.path(), &cfg, 0);
    let leader = settled(&members, Duration::from_secs(10));
    let mut admin = RawClient::connect(members[(leader + 1) % 3].client);
    admin.create("/w", b"", 0).unwrap();
    // As in ZooKeeper, only the super user may change the membership (WRITE on
    // /zookeeper/config, whose ACL gives everyone READ alone).
    let (err, ..) = reconfig(&mut admin, None, Some("3"), None, -1);
    assert_eq!(err, ErrorCode::NoAuth as i32);
    admin.auth_digest(zooid_e2e::SUPER_USER);

    // The configured members, as ZooKeeper writes them.
    let (text, stat) = config(&mut admin);
    assert_eq!(
        ids(&text),
        vec![
            (1, "participant".to_string()),
            (2, "participant".to_string()),
            (3, "participant".to_string())
        ],
        "{text}"
    );
    assert_eq!(stat.version, -1);
    assert_eq!(stat.mzxid, version(&text), "{text}");
    let first = version(&text);

    // A watch on the config fires when it changes.
    let mut watcher = RawClient::connect(members[(leader + 2) % 3].client);
    watcher.get("/zookeeper/config", true).unwrap();

    let writers = Writers::start(&[&members[0], &members[1], &members[2]]);
    while writers.count() < 100 {
        std::thread::sleep(Duration::from_millis(20));
    }

    // Grow: two new participants, started with the current members' lines and their own.
    let (four, line4) = spawn_joiner(root.path(), &members, 4, false);
    let (five, line5) = spawn_joiner(root.path(), &members, 5, false);
    members.push(four);
    members.push(five);
    // As ZooKeeper's, a reconfig adds only servers that are up and reachable.
    for m in &members[3..] {
        wait_until(
            &format!("server {} listening", m.id),
            Duration::from_secs(10),
            || std::net::TcpStream::connect(m.client).is_ok(),
        );
    }
    let started = Instant::now();
    let (err, text, stat) = reconfig(
        &mut admin,
        Some(&format!("{line4},{line5}")),
        None,
        None,
        first,
    );
    assert_eq!(err, 0, "growing to five");
    let grew_in = started.elapsed();
    assert_eq!(ids(&text).len(), 5, "{text}");
    assert!(ids(&text).iter().all(|(_, r)| r == "participant"), "{text}");
    assert!(
        text.contains(&line4[line4.find('=').unwrap() + 1..]),
        "{text}"
    );
    let grown = version(&text);
    assert!(grown > first);
    assert_eq!(stat.unwrap().mzxid, grown);
    let ev = watcher.next_event();
    assert_eq!(ev.path, "/zookeeper/config");
    assert_eq!(ev.event_type, EventType::NodeDataChanged as i32);
    for m in &members[3..] {
        wait_mode(m, &["follower"], Duration::from_secs(10));
    }
    // The new members serve the same config.
    let mut on_four = RawClient::connect(members[3].client);
    on_four.call(&Request::Sync { path: "/".into() });
    assert_eq!(config(&mut on_four).0, text);

    // A reconfig against a version that is gone is refused.
    let (err, ..) = reconfig(&mut admin, None, Some("5"), None, first);
    assert_eq!(err, ErrorCode::BadVersion as i32);
    // So is removing a server that is not a member.
    let (err, ..) = reconfig(&mut admin, None, Some("9"), None, -1);
    assert_eq!(err, ErrorCode::BadArguments as i32);

    // Shrink back to three, removing the leader itself and one of the new members. The
    // writers on the leader move: their member stops serving once it is out.
    let leader = members
        .iter()
        .position(|m| mode(m.client).as_deref() == Some("leader"))
        .expect("a leader among five");
    let gone = [members[leader].id, 5];
    let stay: Vec<usize> = (0..5).filter(|i| !gone.contains(&members[*i].id)).collect();
    let mut admin = RawClient::connect(members[stay[0]].client);
    admin.auth_digest(zooid_e2e::SUPER_USER);
    let before_shrink = writers.count();
    let started = Instant::now();
    let (err, text, _) = reconfig(
        &mut admin,
        None,
        Some(&format!("{},{}", gone[0], gone[1])),
        None,
        -1,
    );
    assert_eq!(err, 0, "shrinking to three");
    let shrank_in = started.elapsed();
    let left: Vec<u64> = ids(&text).into_iter().map(|(id, _)| id).collect();
    let want: Vec<u64> = stay.iter().map(|i| members[*i].id).collect();
    assert_eq!(left, want, "{text}");
    // A leader among the three left, and writes still go through.
    wait_until(
        "200 more writes after the shrink",
        Duration::from_secs(10),
        || writers.count() >= before_shrink + 200,
    );
    // The writer on the removed leader may have lost its connection.
    let (acked, gap, lost) = writers.stop();
    assert!(
        lost <= 1,
        "{lost} writers lost their member; only the removed leader's may"
    );
    eprintln!(
        "grew 3->5 in {grew_in:?}, shrank 5->3 (leader removed) in {shrank_in:?}; {} writes \
         acknowledged, longest time without one {gap:?}",
        acked.len()
    );
    // Unavailability at most about one election (timeouts of 0.3-0.6 s, then a new term).
    assert!(gap < Duration::from_secs(3), "writes stalled for {gap:?}");
    for i in &stay {
        wait_mode(
            &members[*i],
            &["leader", "follower"],
            Duration::from_secs(10),
        );
        assert_has_all(&members[*i], &acked);
    }
    // Nobody tells a removed member (the leader stops replicating to it): it finds itself
    // without a leader and stops serving, so its clients move to the members that remain.
    for m in members.iter().filter(|m| gone.contains(&m.id)) {
        wait_until(
            &format!("removed server {} no longer serving", m.id),
            Duration::from_secs(10),
            || mode(m.client).is_none(),
        );
    }
}

/// kazoo's `reconfig` and its errors, against an ensemble; the observer it adds does not run
/// (ZooKeeper allows that), the participant it tries to add does not either (refused with
/// NEWCONFIGNOQUORUM after initLimit ticks).
#[test]
fn kazoo_reconfig_calls_work() {
    let root = tempfile::tempdir().unwrap();
    let cfg = format!("reconfigEnabled=true\n{}", zooid_e2e::super_digest_line());
    let members = ensemble::start_with(root.path(), &cfg, 0);
    settled(&members, Duration::from_secs(10));
    let port = || zooid_e2e::apache::free_port().unwrap();
    let observer = format!(
        "server.4=127.0.0.1:{}:{}:observer;127.0.0.1:{}",
        port(),
        port(),
        port()
    );
    let participant = format!(
        "server.5=127.0.0.1:{}:{}:participant;127.0.0.1:{}",
        port(),
        port(),
        port()
    );
    let hosts: Vec<String> = members.iter().map(|m| m.client.to_string()).collect();
    common::run_client_script(
        "kazoo_reconfig.py",
        &[
            &hosts.join(","),
            &observer,
            &participant,
            zooid_e2e::SUPER_USER,
        ],
    );
}

/// Without reconfigEnabled (ZooKeeper's default since 3.5.3) a reconfig is refused with
/// RECONFIGDISABLED and the membership stays as it is.
#[test]
fn reconfig_is_refused_unless_enabled() {
    let root = tempfile::tempdir().unwrap();
    let members = ensemble::start(root.path());
    let leader = settled(&members, Duration::from_secs(10));
    let mut c = RawClient::connect(members[(leader + 1) % 3].client);
    let (err, ..) = reconfig(&mut c, None, Some("1"), None, -1);
    assert_eq!(err, ErrorCode::ReconfigDisabled as i32);
    assert_eq!(ids(&config(&mut c).0).len(), 3);
}
