//! Durability: acknowledged writes survive restarts, kill -9, torn log tails, and a member
//! that lost its disk.
#![allow(clippy::unwrap_used)]

mod common;

use common::ensemble::{self, mode, settled, synced_children};
use common::{NoFrame, Proc, RawClient};
use std::io::Read;
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;
use zooid_e2e::wait::{poll_for, wait_for, wait_until};
use zooid_proto::*;

/// zooid as a process, snapshotting every 500 entries.
fn start_proc(dir: &Path) -> Proc {
    Proc::spawn(dir, &["--snapshot-every", "500"], None)
}

fn create(path: &str, data: &[u8]) -> Request {
    zooid_e2e::raw::create_request(path, data, 0)
}

/// Writes /k-0, /k-1, ... pipelined `depth` deep until killed or `limit` is reached; returns
/// the acknowledged indexes.
fn write_stream(c: &mut RawClient, limit: usize, depth: usize) -> Vec<usize> {
    let mut acked = Vec::new();
    let mut in_flight = std::collections::VecDeque::new();
    let mut next = 0;
    loop {
        while in_flight.len() < depth && next < limit {
            // A server that stops (SIGTERM) may close the socket under a send: the writes
            // already sent are still read back below.
            let Some(xid) = c.try_send(&create(
                &format!("/k-{next}"),
                format!("v{next}").as_bytes(),
            )) else {
                break;
            };
            in_flight.push_back((xid, next));
            next += 1;
        }
        let Some((xid, i)) = in_flight.pop_front() else {
            return acked;
        };
        match c.recv() {
            Ok(f) => {
                assert_eq!(f.xid, xid);
                assert_eq!(f.err, 0, "create /k-{i} failed");
                acked.push(i);
            }
            Err(NoFrame::Closed) => return acked,
            Err(NoFrame::TimedOut) => panic!("no answer and no close within 5 s"),
        }
    }
}

fn present(addr: SocketAddr, n: usize) -> Vec<usize> {
    let mut c = RawClient::connect(addr);
    (0..n)
        .filter(|i| {
            let (f, _) = c.call(&Request::GetData {
                path: format!("/k-{i}"),
                watch: false,
            });
            if f.err == 0 {
                let mut r = Reader::new(&f.body);
                assert_eq!(r.buffer().unwrap().unwrap(), format!("v{i}").into_bytes());
            }
            f.err == 0
        })
        .collect()
}

#[test]
fn restart_keeps_data_sessions_and_snapshots() {
    let dir = tempfile::tempdir().unwrap();
    let p = start_proc(dir.path());
    let mut c = RawClient::connect(p.addr);
    // Enough writes to cross a snapshot (every 500 log entries), then some after it. One at a
    // time, so that each write is its own entry.
    assert_eq!(write_stream(&mut c, 1200, 1).len(), 1200);
    c.create("/eph", b"", CreateMode::Ephemeral.flags())
        .unwrap();
    let (session, passwd) = (c.session_id, c.passwd);
    let before = c.get("/k-7", false).unwrap().1;
    p.kill9();
    let snaps: Vec<PathBuf> = std::fs::read_dir(dir.path().join("snapshots"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert!(!snaps.is_empty(), "no snapshot was written");

    let p = start_proc(dir.path());
    assert_eq!(present(p.addr, 1200).len(), 1200);
    let mut resumed = RawClient::connect_with(p.addr, session, passwd, 30000, 0)
        .expect("the session survives a restart within its timeout");
    assert_eq!(
        resumed.get("/k-7", false).unwrap().1,
        before,
        "Stat is restored exactly"
    );
    assert!(resumed.get("/eph", false).is_ok());
    assert!(resumed.create("/k-after", b"", 0).is_ok());
}

#[test]
fn kill_9_during_writes_loses_no_acknowledged_write() {
    let dir = tempfile::tempdir().unwrap();
    for round in 0..3 {
        let p = start_proc(dir.path());
        let addr = p.addr;
        let writer = std::thread::spawn(move || {
            let mut c = RawClient::connect(addr);
            write_stream(&mut c, 100_000, 16)
        });
        std::thread::sleep(Duration::from_millis(300 + 200 * round));
        p.kill9();
        let acked = writer.join().unwrap();
        assert!(
            !acked.is_empty(),
            "no write was acknowledged before the kill"
        );
        let p = start_proc(dir.path());
        let found = present(p.addr, acked.len() + 64);
        for i in &acked {
            assert!(found.contains(i), "acknowledged /k-{i} lost after kill -9");
        }
        // Clean up for the next round through the server itself.
        let mut c = RawClient::connect(p.addr);
        for i in found {
            let (f, _) = c.call(&Request::Delete {
                path: format!("/k-{i}"),
                version: -1,
            });
            assert_eq!(f.err, 0);
        }
    }
}

#[test]
fn sigterm_during_writes_finishes_them_and_exits_zero() {
    let dir = tempfile::tempdir().unwrap();
    let logs = tempfile::tempdir().unwrap();
    let log_path = logs.path().join("zooid.log");
    let mut p = Proc::spawn(dir.path(), &["--snapshot-every", "500"], Some(&log_path));
    let addr = p.addr;
    let writer = std::thread::spawn(move || {
        let mut c = RawClient::connect(addr);
        write_stream(&mut c, 1_000_000, 16)
    });
    // Wait until writes flow, so the signal lands among writes in flight.
    let mut probe = RawClient::connect(addr);
    wait_until("200 writes", Duration::from_secs(10), || {
        probe.get("/k-200", false).is_ok()
    });
    let pid = p.child.id().to_string();
    assert!(Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap()
        .success());
    let status = wait_for("zooid exiting on SIGTERM", Duration::from_secs(30), || {
        p.child.try_wait().unwrap()
    });
    assert!(status.success(), "zooid exited with {status} on SIGTERM");
    let acked = writer.join().unwrap();
    assert!(
        acked.len() > 200,
        "only {} writes acknowledged",
        acked.len()
    );
    let log = std::fs::read_to_string(&log_path).unwrap();
    for want in ["zooid serving clients", "SIGTERM received", "zooid stopped"] {
        assert!(log.contains(want), "log lacks {want:?}:\n{log}");
    }
    assert!(
        !log.contains("\x1b["),
        "colours in a log that is not a terminal"
    );

    let p = start_proc(dir.path());
    let found = present(p.addr, acked.len() + 64);
    for i in &acked {
        assert!(found.contains(i), "acknowledged /k-{i} lost after SIGTERM");
    }
}

#[test]
fn torn_log_tail_restarts_cleanly_with_a_prefix_of_the_writes() {
    let dir = tempfile::tempdir().unwrap();
    let p = start_proc(dir.path());
    let mut c = RawClient::connect(p.addr);
    assert_eq!(write_stream(&mut c, 300, 4).len(), 300);
    p.kill9();
    let log_dir = dir.path().join("log");
    let mut chunks: Vec<PathBuf> = std::fs::read_dir(&log_dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    chunks.sort();
    let last = chunks.pop().expect("a log chunk");
    let full = std::fs::read(&last).unwrap();
    let pristine = tempfile::tempdir().unwrap();
    copy_dir(dir.path(), pristine.path());
    // Cut the newest chunk at several offsets, each time from the pristine copy.
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    for _ in 0..4 {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let cut = (seed % full.len() as u64) as usize;
        let work = tempfile::tempdir().unwrap();
        copy_dir(pristine.path(), work.path());
        let chunk = work.path().join("log").join(last.file_name().unwrap());
        std::fs::OpenOptions::new()
            .write(true)
            .open(&chunk)
            .unwrap()
            .set_len(cut as u64)
            .unwrap();
        let p = start_proc(work.path());
        let found = present(p.addr, 300);
        eprintln!("cut {cut} of {}: {} writes kept", full.len(), found.len());
        let prefix: Vec<usize> = (0..found.len()).collect();
        assert_eq!(
            found, prefix,
            "after a cut at {cut}, the writes kept are not a prefix"
        );
        // And the server keeps working on the cut log.
        let mut c = RawClient::connect(p.addr);
        assert!(c.create("/after-cut", b"", 0).is_ok());
    }
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let dest = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &dest);
        } else {
            std::fs::copy(e.path(), dest).unwrap();
        }
    }
}

#[test]
fn bad_configuration_is_refused_with_a_clear_message() {
    for (args, message) in [
        (vec!["--tick-time-ms", "0"], "tick-time-ms must be positive"),
        (
            vec![
                "--min-session-timeout-ms",
                "9000",
                "--max-session-timeout-ms",
                "100",
            ],
            "min-session-timeout-ms (9000) is above max-session-timeout-ms (100)",
        ),
        (
            vec!["--four-letter-words", "ruok,nope"],
            "unknown four-letter word \"nope\"",
        ),
        (
            vec!["--client-addr", "not-an-address"],
            "invalid value 'not-an-address'",
        ),
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_zooid"))
            .args(&args)
            .output()
            .unwrap();
        assert!(!out.status.success(), "{args:?} accepted");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(message), "{args:?}: {err}");
    }
}

#[test]
fn when_consensus_fails_clients_are_disconnected_instead_of_left_waiting() {
    let srv = common::start(|_| {});
    let mut c = RawClient::connect(srv.addr);
    assert_eq!(c.create("/before", b"x", 0), Ok("/before".into()));
    let reason = srv.break_consensus();
    // Stopped underneath the server: openraft's fatal "stopped".
    assert!(
        matches!(reason, Some(zooid_replication::Failure::Fatal(_))),
        "the server must notice that it cannot order writes: {reason:?}"
    );
    // The open connection is closed rather than left without replies...
    assert!(
        c.is_closed(),
        "connection stays open after consensus failed"
    );
    // ...and nobody can connect any more: clients go to another server.
    wait_until(
        "the client port closed after consensus failed",
        Duration::from_secs(5),
        || TcpStream::connect(srv.addr).is_err(),
    );
}

/// Every file under `dir` with its bytes, to show that a refused start changed nothing.
fn snapshot_files(dir: &Path) -> std::collections::BTreeMap<PathBuf, Vec<u8>> {
    let mut out = std::collections::BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.insert(p.clone(), std::fs::read(&p).unwrap());
            }
        }
    }
    out
}

/// Starts zooid on `dir` and expects it to refuse within 20 s; returns what it printed.
fn refused_start(dir: &Path) -> String {
    let mut child = Command::new(env!("CARGO_BIN_EXE_zooid"))
        .args([
            "--client-addr",
            "127.0.0.1:0",
            "--admin-addr",
            "127.0.0.1:0",
            "--data-dir",
        ])
        .arg(dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let status = poll_for(Duration::from_secs(20), || child.try_wait().unwrap());
    let Some(status) = status else {
        let _ = child.kill();
        panic!("zooid started on a damaged log instead of refusing");
    };
    let mut out = String::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut out)
        .unwrap();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut out)
        .unwrap();
    assert!(!status.success(), "zooid exited 0 on a damaged log:\n{out}");
    out
}

#[test]
fn damage_in_the_middle_of_the_log_refuses_to_start_and_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let p = start_proc(dir.path());
    let mut c = RawClient::connect(p.addr);
    assert_eq!(write_stream(&mut c, 300, 4).len(), 300);
    p.kill9();
    let mut chunks: Vec<PathBuf> = std::fs::read_dir(dir.path().join("log"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "wal"))
        .collect();
    chunks.sort();
    let last = chunks.pop().expect("a log chunk");
    let bytes = std::fs::read(&last).unwrap();
    let appends: Vec<_> = zooid_replication::wal_check::records(&bytes)
        .into_iter()
        .filter(|r| r.is_append)
        .collect();
    assert!(appends.len() > 40, "only {} entries", appends.len());
    let victim = appends[appends.len() - 30];
    // An entry record: type (4), log id (24), payload tag (1), payload length (4), payload.
    let length_at = victim.offset + 4 + 24 + 1;
    type Damage<'a> = Box<dyn Fn(&mut Vec<u8>) + 'a>;
    let damages: [(&str, Damage); 2] = [
        (
            "length",
            Box::new(|b: &mut Vec<u8>| {
                b[length_at..length_at + 4].copy_from_slice(&0x00ff_ffffu32.to_be_bytes())
            }),
        ),
        (
            "payload",
            Box::new(|b: &mut Vec<u8>| b[victim.offset + victim.len - 8] ^= 0x40),
        ),
    ];
    for (what, damage) in damages {
        let work = tempfile::tempdir().unwrap();
        copy_dir(dir.path(), work.path());
        let chunk = work.path().join("log").join(last.file_name().unwrap());
        let mut b = bytes.clone();
        damage(&mut b);
        std::fs::write(&chunk, &b).unwrap();
        let before = snapshot_files(work.path());
        let out = refused_start(work.path());
        for want in [
            last.file_name().unwrap().to_str().unwrap().to_string(),
            format!("offset {}", victim.offset),
        ] {
            assert!(
                out.contains(&want),
                "damaged {what}: message lacks {want:?}:\n{out}"
            );
        }
        assert!(
            before == snapshot_files(work.path()),
            "damaged {what}: a refused start changed files"
        );
    }
}

#[test]
fn a_damaged_newest_snapshot_falls_back_to_the_older_one_and_the_log() {
    let dir = tempfile::tempdir().unwrap();
    let p = start_proc(dir.path());
    let mut c = RawClient::connect(p.addr);
    // One write at a time: one entry each, so `--snapshot-every 500` takes several snapshots.
    assert_eq!(write_stream(&mut c, 2000, 1).len(), 2000);
    p.kill9();
    // Finished snapshots only: one being written at the kill is a `.tmp`, removed at start.
    let mut snaps: Vec<PathBuf> = std::fs::read_dir(dir.path().join("snapshots"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "zsnap"))
        .collect();
    snaps.sort();
    assert!(snaps.len() >= 2, "snapshots: {snaps:?}");
    let newest = snaps.pop().unwrap();
    let mut b = std::fs::read(&newest).unwrap();
    let mid = b.len() / 2;
    b[mid] ^= 0x01;
    std::fs::write(&newest, &b).unwrap();
    let logs = tempfile::tempdir().unwrap();
    let log_path = logs.path().join("zooid.log");
    let p = Proc::spawn(dir.path(), &["--snapshot-every", "500"], Some(&log_path));
    let found = present(p.addr, 2000);
    let log = std::fs::read_to_string(&log_path).unwrap();
    let name = newest.file_name().unwrap().to_str().unwrap();
    assert!(
        log.contains("skipping snapshot") && log.contains(name),
        "the damaged snapshot was not reported:\n{log}"
    );
    let missing: Vec<usize> = (0..2000).filter(|i| !found.contains(i)).collect();
    assert!(
        missing.is_empty(),
        "{} writes lost falling back from a damaged snapshot, first /k-{}; log:\n{log}",
        missing.len(),
        missing[0]
    );
}

/// Whether a member's log (stdout, across restarts) says `what`.
fn logged(log: &Path, what: &str) -> bool {
    std::fs::read_to_string(log).is_ok_and(|l| l.contains(what))
}

/// A member comes back without its data (its disk lost, its volume replaced) while the only
/// other member up missed the last acknowledged write: together they are a quorum, and the
/// empty member would vote for the other (its log is not behind an empty one), electing a
/// leader without that write. It votes for nobody until it has caught up with a leader: the
/// two wait for the third member, which has the write and leads; nothing is lost.
#[test]
fn a_member_back_without_its_data_votes_for_nobody_until_caught_up() {
    let root = tempfile::tempdir().unwrap();
    let mut members = ensemble::start(root.path());
    let leader = settled(&members, Duration::from_secs(10));
    let (behind, wiped) = ((leader + 1) % 3, (leader + 2) % 3);
    let mut c = RawClient::connect(members[leader].client);
    c.create("/before", b"", 0).unwrap();
    members[behind].kill9();
    // Acknowledged by the leader and `wiped` alone.
    c.create("/acked", b"", 0).unwrap();
    drop(c);
    members[wiped].kill9();
    members[leader].kill9();
    for entry in std::fs::read_dir(members[wiped].dir()).unwrap() {
        let path = entry.unwrap().path();
        if path.file_name() == Some(std::ffi::OsStr::new("myid")) {
            continue;
        } else if path.is_dir() {
            std::fs::remove_dir_all(&path).unwrap();
        } else {
            std::fs::remove_file(&path).unwrap();
        }
    }
    members[behind].restart();
    members[wiped].restart();

    let log = members[wiped].log.clone();
    wait_until(
        "the empty member knowing it came back without its data",
        Duration::from_secs(10),
        || logged(&log, "votes for nobody until it has caught up"),
    );
    wait_until(
        "the empty member refusing the other's vote",
        Duration::from_secs(10),
        || logged(&log, "refusing to vote"),
    );
    for m in [&members[behind], &members[wiped]] {
        assert_ne!(mode(m.client).as_deref(), Some("leader"), "server {}", m.id);
    }

    members[leader].restart();
    settled(&members, Duration::from_secs(20));
    for m in &members {
        let children = synced_children(m.client, "/", Duration::from_secs(10));
        for want in ["before", "acked"] {
            assert!(
                children.iter().any(|c| c == want),
                "server {}: /{want} missing from {children:?}",
                m.id
            );
        }
    }
    wait_until(
        "the empty member voting again once caught up",
        Duration::from_secs(10),
        || logged(&log, "votes again"),
    );
}
