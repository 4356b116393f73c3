//! The history checker under faults: clients on every member of an ensemble write
//! and conditionally write a few znodes while the leader is killed with SIGKILL and restarted,
//! and while a leader is stopped with SIGSTOP; every client's operations are recorded with
//! their send and answer times, reads after `sync` on every member close the history, and the
//! whole is checked for linearizability per znode (`zooid_e2e::history`). An acknowledged
//! write that was lost, or two writes ordered differently on two members, make it fail.
//!
//! A second run has five members whose peer links go through a fault-injecting proxy
//! (`common::proxy`): partitions of a minority holding the leader, of a single follower, and
//! a leader killed.
//!
//! Each run lasts about `ZOOID_HISTORY_SECS` seconds (default 10, the faults spread over it); a
//! longer run: `ZOOID_HISTORY_SECS=120 cargo test -p zooid-node --test history --release`.
#![allow(clippy::unwrap_used)]

mod common;

use common::ensemble::{self, settled};
use common::{RawClient, Refused};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use zooid_e2e::history::{check, Event, Op, Outcome};
use zooid_e2e::wait::wait_for;
use zooid_proto::*;

const KEYS: usize = 3;
const CLIENTS_PER_MEMBER: usize = 2;

fn key(k: usize) -> String {
    format!("/k{k}")
}

/// A small deterministic generator per client, so a failing run can be replayed.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        self.0 >> 33
    }
}

/// Connects to `preferred`, or resumes `session` there; falls back on the other members.
fn connect(addrs: &[SocketAddr], preferred: usize, session: Option<(i64, [u8; 16])>) -> RawClient {
    wait_for("a member taking a client", Duration::from_secs(30), || {
        for i in 0..addrs.len() {
            let addr = addrs[(preferred + i) % addrs.len()];
            if std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_err() {
                continue;
            }
            let (id, pw) = session.unwrap_or((0, [0; 16]));
            match RawClient::try_connect_with(addr, id, pw, 4000, 0) {
                Ok(c) => return Some(c),
                // Expired: a new session will do.
                Err(Refused::Expired) if session.is_some() => {
                    if let Ok(c) = RawClient::try_connect_with(addr, 0, [0; 16], 4000, 0) {
                        return Some(c);
                    }
                }
                Err(_) => {}
            }
        }
        None
    })
}

/// Sends a setData and waits for its answer; `None` if the connection was lost first.
fn set_data(c: &mut RawClient, path: &str, value: u64, version: i32) -> Option<(i32, Stat)> {
    let xid = c.try_send(&Request::SetData {
        path: path.into(),
        data: Some(value.to_string().into_bytes()),
        version,
    })?;
    // A closed connection, or a read timeout (a member stopped with SIGSTOP holds the
    // connection), is an unknown outcome; the client moves on.
    loop {
        let f = c.recv().ok()?;
        if f.xid == xid {
            let stat = if f.err == 0 {
                Stat::decode(&mut Reader::new(&f.body)).unwrap()
            } else {
                Stat::default()
            };
            return Some((f.err, stat));
        }
    }
}

#[test]
fn writes_stay_linearizable_under_kill_and_stop() {
    let layout = ensemble::Layout {
        voters: 3,
        observers: 0,
        proxied: false,
    };
    run(layout, |members, _, step| {
        std::thread::sleep(step);
        let leader = settled(members, Duration::from_secs(10));
        members[leader].kill9();
        std::thread::sleep(step);
        members[leader].restart();
        let leader = settled(members, Duration::from_secs(20));
        std::thread::sleep(step);
        members[leader].signal("-STOP");
        std::thread::sleep(step);
        members[leader].signal("-CONT");
        settled(members, Duration::from_secs(20));
        std::thread::sleep(step);
    });
}

/// Five members whose peer links run through a fault-injecting proxy: the leader and one
/// follower are cut off from the other three, then a single follower, then the leader is
/// killed; the links heal between the faults.
#[test]
fn writes_stay_linearizable_across_partitions_of_five() {
    let layout = ensemble::Layout {
        voters: 5,
        observers: 0,
        proxied: true,
    };
    run(layout, |members, proxies, step| {
        let proxies = proxies.unwrap();
        let all: Vec<u64> = members.iter().map(|m| m.id).collect();
        std::thread::sleep(step);
        let leader = settled(members, Duration::from_secs(10));
        proxies.partition(&[all[leader], all[(leader + 1) % 5]], &all);
        std::thread::sleep(step);
        proxies.heal();
        let leader = settled(members, Duration::from_secs(20));
        proxies.partition(&[all[(leader + 2) % 5]], &all);
        std::thread::sleep(step);
        proxies.heal();
        let leader = settled(members, Duration::from_secs(20));
        members[leader].kill9();
        std::thread::sleep(step);
        members[leader].restart();
        settled(members, Duration::from_secs(20));
    });
}

/// Clients on every member write and conditionally write while `faults` runs (given the
/// members, the proxies if any, and a fifth of the run); then the history is checked.
fn run(
    layout: ensemble::Layout,
    faults: impl FnOnce(&mut [ensemble::Member], Option<&ensemble::Proxies>, Duration),
) {
    let secs: u64 = std::env::var("ZOOID_HISTORY_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(10);
    let root = tempfile::tempdir().unwrap();
    let (mut members, proxies) = ensemble::start_laid_out(root.path(), "", layout);
    let addrs: Vec<SocketAddr> = members.iter().map(|m| m.client).collect();
    {
        let mut c = RawClient::connect(addrs[0]);
        for k in 0..KEYS {
            c.create(&key(k), b"0", 0).unwrap();
        }
    }
    let t0 = Instant::now();
    let now = move || t0.elapsed().as_nanos() as u64;
    let stop = Arc::new(AtomicBool::new(false));
    let history = Arc::new(Mutex::new(Vec::<Event>::new()));
    let clients: Vec<_> = (0..addrs.len() * CLIENTS_PER_MEMBER)
        .map(|n| {
            let (addrs, stop, history) = (addrs.clone(), stop.clone(), history.clone());
            std::thread::spawn(move || {
                let mut home = n % addrs.len();
                let mut rng = Lcg(n as u64 + 1);
                let mut c = connect(&addrs, home, None);
                // The last version this client saw of each znode: what its conditional
                // writes expect.
                let mut seen = [0i32; KEYS];
                let mut counter = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    let k = rng.next() as usize % KEYS;
                    counter += 1;
                    let value = (n as u64 + 1) * 1_000_000_000 + counter;
                    let op = if rng.next().is_multiple_of(2) {
                        Op::Write { value }
                    } else {
                        Op::Cas {
                            expect: seen[k],
                            value,
                        }
                    };
                    let version = match op {
                        Op::Cas { expect, .. } => expect,
                        _ => -1,
                    };
                    let sent = now();
                    let answer = set_data(&mut c, &key(k), value, version);
                    let answered = now();
                    let (outcome, answered) = match answer {
                        Some((0, stat)) => {
                            seen[k] = stat.version;
                            (
                                Outcome::Done {
                                    version: stat.version,
                                },
                                Some(answered),
                            )
                        }
                        Some((e, _)) if e == ErrorCode::BadVersion.code() => {
                            (Outcome::BadVersion, Some(answered))
                        }
                        Some((e, _)) => panic!("setData answered {e}"),
                        None => (Outcome::Unknown, None),
                    };
                    history.lock().unwrap().push(Event {
                        key: key(k),
                        op,
                        outcome,
                        sent,
                        answered,
                    });
                    if answer.is_none() {
                        // As ZooKeeper's clients do after losing a connection: another member
                        // next, after a pause, rather than hammering one that lets its clients
                        // go (each try would add an operation of unknown outcome).
                        home = (home + 1) % addrs.len();
                        std::thread::sleep(Duration::from_millis(100));
                        let session = Some((c.session_id, c.passwd));
                        c = connect(&addrs, home, session);
                    }
                }
            })
        })
        .collect();

    // The faults, spread over the run.
    let step = Duration::from_millis(secs * 1000 / 5);
    faults(&mut members, proxies.as_ref(), step);
    stop.store(true, Ordering::Relaxed);
    for c in clients {
        c.join().unwrap();
    }

    // Reads after sync on every member end the history.
    let mut history = history.lock().unwrap().clone();
    for addr in &addrs {
        // A member back from a fault may take a moment to serve again.
        let mut c = ensemble::session_on(*addr, None, Duration::from_secs(20))
            .unwrap_or_else(|| panic!("{addr} does not serve after the faults"));
        for k in 0..KEYS {
            let sent = now();
            let (f, _) = c.call(&Request::Sync { path: key(k) });
            assert_eq!(f.err, 0);
            let (data, stat) = c.get(&key(k), false).unwrap();
            let value = String::from_utf8(data.unwrap()).unwrap().parse().unwrap();
            history.push(Event {
                key: key(k),
                op: Op::Read,
                outcome: Outcome::Read {
                    value,
                    version: stat.version,
                },
                sent,
                answered: Some(now()),
            });
        }
    }
    let acknowledged = history
        .iter()
        .filter(|e| matches!(e.outcome, Outcome::Done { .. }))
        .count();
    let unknown = history
        .iter()
        .filter(|e| e.outcome == Outcome::Unknown)
        .count();
    eprintln!(
        "{} operations in {secs} s: {acknowledged} writes acknowledged, {unknown} without answer",
        history.len()
    );
    assert!(
        acknowledged > 100,
        "only {acknowledged} writes acknowledged"
    );
    // Where the faults were: operations answered and unanswered per half second.
    let mut per_half_second = std::collections::BTreeMap::<u64, (usize, usize)>::new();
    for e in &history {
        let slot = per_half_second.entry(e.sent / 500_000_000).or_default();
        if e.outcome == Outcome::Unknown {
            slot.1 += 1
        } else {
            slot.0 += 1
        }
    }
    eprintln!("per half second (answered, unanswered): {per_half_second:?}");
    let started = Instant::now();
    if let Err(v) = check(&history, (0, 0)) {
        panic!("{v}");
    }
    eprintln!("linearizable: checked in {:?}", started.elapsed());
}
