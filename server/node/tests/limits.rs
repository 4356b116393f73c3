//! The limits that keep one client from taking the server's memory or stalling others: each
//! test drives a client past one limit and checks the server's answer, and that other clients
//! are still served.
#![allow(clippy::unwrap_used)]

mod common;

use common::{closed_within, four_letter, start, Proc, RawClient, TestServer};
use std::io::Write;
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};
use zooid_e2e::wait::wait_until;
use zooid_proto::*;

fn alive_connections(addr: SocketAddr) -> usize {
    let mntr = four_letter(addr, "mntr");
    mntr.lines()
        .find_map(|l| l.strip_prefix("zk_num_alive_connections\t"))
        .unwrap()
        .parse()
        .unwrap()
}

#[test]
fn a_connection_without_handshake_is_closed_after_the_timeout() {
    let srv = start(|c| c.handshake_timeout_ms = 300);
    let mut idle = TcpStream::connect(srv.addr).unwrap();
    let took = closed_within(&mut idle, Duration::from_secs(5)).unwrap();
    assert!(
        took >= Duration::from_millis(250),
        "closed too early: {took:?}"
    );
    // A half-sent ConnectRequest is no better than none.
    let mut partial = TcpStream::connect(srv.addr).unwrap();
    partial.write_all(&[0, 0, 0, 44, 0, 0]).unwrap();
    closed_within(&mut partial, Duration::from_secs(5)).unwrap();
    assert!(RawClient::connect(srv.addr).get("/", false).is_ok());
}

/// With room for three connections: two sessions and an idle socket (connections count before
/// their handshake too) are held, the fourth is closed at once, and a closed connection's
/// place comes back once the server has seen it go.
fn three_are_admitted_and_the_fourth_refused(srv: &TestServer) {
    let mut held: Vec<RawClient> = (0..2).map(|_| RawClient::connect(srv.addr)).collect();
    let _idle = TcpStream::connect(srv.addr).unwrap();
    let mut refused = TcpStream::connect(srv.addr).unwrap();
    closed_within(&mut refused, Duration::from_secs(5)).expect("the 4th connection is refused");
    for c in &mut held {
        assert!(c.get("/", false).is_ok(), "admitted clients are served");
    }
    drop(held.pop());
    wait_until("the freed place back", Duration::from_secs(5), || {
        let mut s = TcpStream::connect(srv.addr).unwrap();
        closed_within(&mut s, Duration::from_millis(200)).is_err()
    });
}

#[test]
fn connections_per_address_are_limited() {
    three_are_admitted_and_the_fourth_refused(&start(|c| c.max_client_cnxns = 3));
}

#[test]
fn connections_in_all_are_limited() {
    // No limit per address: the limit in all refuses the fourth.
    three_are_admitted_and_the_fourth_refused(&start(|c| {
        c.max_client_cnxns = 0;
        c.max_cnxns = 3;
    }));
}

#[test]
fn a_multiread_whose_reply_is_too_large_is_refused() {
    let srv = start(|c| {
        c.max_frame_bytes = 64 << 10;
        c.max_reply_bytes = 128 << 10;
    });
    let mut c = RawClient::connect(srv.addr);
    c.create("/big", &vec![7u8; 60 << 10], 0).unwrap();
    let get = || Request::GetData {
        path: "/big".into(),
        watch: false,
    };
    let (f, _) = c.call(&Request::MultiRead(vec![get(), get()]));
    assert_eq!(f.err, 0, "two reads fit in 128 KiB");
    let (f, _) = c.call(&Request::MultiRead(vec![get(), get(), get()]));
    assert_eq!(f.err, ErrorCode::MarshallingError.code());
    assert!(f.body.is_empty());
    assert!(c.get("/big", false).is_ok(), "the connection goes on");
    // One that would be far past the connection's whole outbound allowance (12 MB against
    // 4 MiB + 128 KiB) is refused the same way, not taken for a client that stopped reading.
    let (f, _) = c.call(&Request::MultiRead((0..200).map(|_| get()).collect()));
    assert_eq!(f.err, ErrorCode::MarshallingError.code());
    assert!(c.get("/big", false).is_ok(), "the connection goes on");
}

#[test]
fn many_pipelined_writes_on_one_connection_all_complete_in_order() {
    let srv = start(|c| {
        c.max_conn_outstanding = 2;
        c.global_outstanding_limit = 3;
    });
    let mut c = RawClient::connect(srv.addr);
    let mut other = RawClient::connect(srv.addr);
    let xids: Vec<i32> = (0..500)
        .map(|i| {
            c.send(&Request::Create(CreateRequest {
                op: OpCode::Create,
                path: format!("/p-{i}"),
                data: Some(vec![]),
                acl: Acl::open(),
                flags: 0,
                ttl: -1,
            }))
        })
        .collect();
    assert!(other.get("/", false).is_ok(), "others served meanwhile");
    for xid in xids {
        let f = c.recv().expect("a reply to every write");
        assert_eq!((f.xid, f.err), (xid, 0));
    }
}

/// A client that asks for hundreds of MB of replies and reads none: the server stops reading it at
/// its 1 MiB budget, cuts it after the 500 ms stall timeout, and its peak memory stays far
/// below what the client asked for. Another client is served throughout.
#[test]
fn a_client_that_never_reads_is_cut_and_memory_stays_bounded() {
    let dir = tempfile::tempdir().unwrap();
    let p = Proc::spawn(
        dir.path(),
        &[
            "--max-conn-outbound-bytes",
            "1048576",
            "--slow-client-timeout-ms",
            "500",
        ],
        None,
    );
    // Long names make each request 4 KiB, so the client's writes block (the server stops
    // reading) after the socket buffers hold a few MB, not after a million requests.
    let name = |i: usize| format!("/v{i}{}", "x".repeat(4000));
    let mut setup = RawClient::connect(p.addr);
    for i in 0..4 {
        setup
            .create(&name(i), &vec![i as u8; 256 << 10], 0)
            .unwrap();
    }
    let before = p.peak_rss_kib();

    let mut hog = RawClient::connect(p.addr);
    hog.stream
        .set_write_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let started = Instant::now();
    let mut requested = 0usize;
    let cut = loop {
        let mut b = bytes::BytesMut::new();
        Request::GetData {
            path: name(requested % 4),
            watch: false,
        }
        .encode_frame(&mut b, requested as i32 + 1);
        match hog.stream.write_all(&b) {
            Ok(()) => requested += 1,
            Err(e) => break e,
        }
        assert!(
            requested < 20_000,
            "20,000 requests of 256 KiB replies taken unread"
        );
    };
    assert!(
        !matches!(
            cut.kind(),
            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
        ),
        "the server kept the connection open for 20 s without it reading: {cut}"
    );
    let took = started.elapsed();
    assert!(
        setup.get(&name(0), false).is_ok(),
        "another client is served after the hog"
    );
    let grown_mib = p.peak_rss_kib().saturating_sub(before) / 1024;
    eprintln!("requested {requested}, cut after {took:?}, peak RSS +{grown_mib} MiB");
    assert!(
        grown_mib < 48,
        "peak RSS grew {grown_mib} MiB for a client cut after {requested} requests ({took:?})"
    );
    assert!(
        requested > 400,
        "cut after {requested} requests: too few to have tested the budget"
    );
    wait_until(
        "the hog's connection no longer counted",
        Duration::from_secs(5),
        || alive_connections(p.addr) <= 1,
    );
}

#[test]
fn a_client_flooded_with_notifications_it_never_reads_is_cut() {
    let dir = tempfile::tempdir().unwrap();
    let p = Proc::spawn(
        dir.path(),
        &[
            "--max-conn-outbound-bytes",
            "1048576",
            "--max-reply-bytes",
            "1048576",
            // Long enough that only the queue's hard limit can be what cuts the client.
            "--slow-client-timeout-ms",
            "60000",
        ],
        None,
    );
    // 8,000 watched nodes with 4 KiB names: 32 MiB of notifications, far more than the
    // socket buffers between the server and the client can hold.
    const NODES: usize = 8000;
    let name = |i: usize| format!("/n{i:05}{}", "x".repeat(4000));
    let op = |i: usize, create: bool| {
        if create {
            Request::Create(CreateRequest {
                op: OpCode::Create,
                path: name(i),
                data: None,
                acl: Acl::open(),
                flags: 0,
                ttl: -1,
            })
        } else {
            Request::Delete {
                path: name(i),
                version: -1,
            }
        }
    };
    let mut writer = RawClient::connect(p.addr);
    let mut round = |create: bool| {
        for batch in (0..NODES).step_by(100) {
            let (f, _) = writer.call(&Request::Multi(
                (batch..batch + 100).map(|i| op(i, create)).collect(),
            ));
            assert_eq!(f.err, 0, "the writer is served");
        }
    };
    // Two floods, one after the other. The peak the first leaves includes the allocator's
    // pages on every thread and the log; a second flood of the same size reuses them, so
    // it grows the peak again only by what the server keeps for its unread notifications.
    let mut growth = Vec::new();
    for _ in 0..2 {
        round(true);
        let mut flooded = RawClient::connect(p.addr);
        for i in 0..NODES {
            flooded.get(&name(i), true).unwrap();
        }
        let before = p.peak_rss_kib();
        // The flooded client reads nothing from here on; every delete notifies it.
        round(false);
        closed_within(&mut flooded.stream, Duration::from_secs(10))
            .expect("the flooded client's connection is closed");
        growth.push(p.peak_rss_kib().saturating_sub(before) / 1024);
    }
    eprintln!("peak RSS growth per flood: {growth:?} MiB");
    assert!(
        growth[0] < 40 && growth[1] < 8,
        "peak RSS grew {growth:?} MiB in two floods of 32 MiB of unread notifications"
    );
    assert!(writer.get("/", false).is_ok());
}

/// New sessions are writes too, and wait for room under the outstanding limit: with the limit
/// at one and a client's pipelined writes holding it, a crowd of handshakes is not refused
/// nor left hanging: every one gets a session of its own, and the writes all complete.
#[test]
fn a_crowd_of_new_sessions_past_the_outstanding_limit_all_open() {
    let srv = start(|c| c.global_outstanding_limit = 1);
    let mut writer = RawClient::connect(srv.addr);
    let xids: Vec<i32> = (0..300)
        .map(|i| {
            writer.send(&Request::Create(CreateRequest {
                op: OpCode::Create,
                path: format!("/w-{i}"),
                data: Some(vec![]),
                acl: Acl::open(),
                flags: 0,
                ttl: -1,
            }))
        })
        .collect();
    let addr = srv.addr;
    let newcomers: Vec<_> = (0..40)
        .map(|_| std::thread::spawn(move || RawClient::connect(addr).session_id))
        .collect();
    let mut ids: Vec<i64> = newcomers.into_iter().map(|t| t.join().unwrap()).collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), 40, "every newcomer got a session of its own");
    assert!(ids.iter().all(|id| *id != 0));
    for xid in xids {
        let f = writer.recv().expect("a reply to every write");
        assert_eq!((f.xid, f.err), (xid, 0));
    }
}
