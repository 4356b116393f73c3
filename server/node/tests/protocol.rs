//! The server over real sockets, byte by byte: handshake, requests, watches, sessions, bad input.
#![allow(clippy::unwrap_used)]

mod common;

use bytes::BytesMut;
use common::*;
use std::io::Write;
use std::time::Duration;
use zooid_e2e::wait::wait_until;
use zooid_proto::*;

#[test]
fn handshake_answers_in_the_shape_received() {
    let srv = start(|_| {});
    for (with_ro, expected_len) in [(true, 37), (false, 36)] {
        let mut s = RawClient::tcp(srv.addr);
        let req = ConnectRequest {
            protocol_version: 0,
            last_zxid_seen: 0,
            timeout_ms: 100_000,
            session_id: 0,
            passwd: vec![0; 16],
            read_only: with_ro.then_some(false),
        };
        let mut b = BytesMut::new();
        encode_frame(&mut b, |b| req.encode(b));
        s.write_all(&b).unwrap();
        let mut len = [0u8; 4];
        std::io::Read::read_exact(&mut s, &mut len).unwrap();
        assert_eq!(i32::from_be_bytes(len), expected_len);
        let mut body = vec![0; expected_len as usize];
        std::io::Read::read_exact(&mut s, &mut body).unwrap();
        let resp = ConnectResponse::decode(&body).unwrap();
        assert_eq!(resp.timeout_ms, 40_000, "clamped to 20 ticks");
        assert_ne!(resp.session_id, 0);
    }
    let short = RawClient::connect_with(srv.addr, 0, [0; 16], 10, 0).unwrap();
    assert_eq!(short.timeout_ms, 4000, "clamped to 2 ticks");
}

#[test]
fn create_get_set_delete_children_over_the_wire() {
    let srv = start(|_| {});
    let mut c = RawClient::connect(srv.addr);
    assert_eq!(c.create("/a", b"one", 0), Ok("/a".into()));
    let (data, stat) = c.get("/a", false).unwrap();
    assert_eq!(data.as_deref(), Some(&b"one"[..]));
    assert_eq!(stat.czxid, stat.mzxid);
    let (f, _) = c.call(&Request::SetData {
        path: "/a".into(),
        data: Some(b"two".to_vec()),
        version: 0,
    });
    assert_eq!(f.err, 0);
    let s = Stat::decode(&mut Reader::new(&f.body)).unwrap();
    assert_eq!(s.version, 1);
    assert_eq!(f.zxid, s.mzxid, "reply zxid is the last applied zxid");
    let (f, _) = c.call(&Request::GetChildren2 {
        path: "/".into(),
        watch: false,
    });
    let mut r = Reader::new(&f.body);
    assert_eq!(r.vector(Reader::string).unwrap(), vec!["a", "zookeeper"]);
    let (f, _) = c.call(&Request::Delete {
        path: "/a".into(),
        version: 0,
    });
    assert_eq!(f.err, ErrorCode::BadVersion.code());
    assert!(f.body.is_empty(), "errors carry no body");
    let (f, _) = c.call(&Request::Delete {
        path: "/a".into(),
        version: 1,
    });
    assert_eq!(f.err, 0);
    assert_eq!(c.get("/a", false), Err(ErrorCode::NoNode.code()));
}

#[test]
fn null_data_reads_back_as_null() {
    let srv = start(|_| {});
    let mut c = RawClient::connect(srv.addr);
    let (f, _) = c.call(&Request::Create(CreateRequest {
        op: OpCode::Create2,
        path: "/n".into(),
        data: None,
        acl: Acl::open(),
        flags: 0,
        ttl: -1,
    }));
    assert_eq!(f.err, 0);
    let mut r = Reader::new(&f.body);
    assert_eq!(r.string().unwrap(), "/n");
    assert_eq!(Stat::decode(&mut r).unwrap().data_length, 0);
    assert_eq!(c.get("/n", false).unwrap().0, None);
}

#[test]
fn events_arrive_before_the_reply_that_caused_them() {
    let srv = start(|_| {});
    let mut c = RawClient::connect(srv.addr);
    c.create("/w", b"", 0).unwrap();
    c.get("/w", true).unwrap();
    let (f, ev) = c.call(&Request::Exists {
        path: "/missing".into(),
        watch: true,
    });
    assert_eq!(f.err, ErrorCode::NoNode.code());
    assert!(ev.is_empty());
    // Our own write: the notification must precede the reply.
    let (f, ev) = c.call(&Request::SetData {
        path: "/w".into(),
        data: None,
        version: -1,
    });
    assert_eq!(f.err, 0);
    assert_eq!(ev.len(), 1);
    assert_eq!(ev[0].event_type, EventType::NodeDataChanged as i32);
    assert_eq!(ev[0].path, "/w");
    assert_eq!(ev[0].state, STATE_SYNC_CONNECTED);
    // The exists watch on a missing node fires on create.
    let (_, ev) = c.call(&Request::Create(CreateRequest {
        op: OpCode::Create,
        path: "/missing".into(),
        data: None,
        acl: Acl::open(),
        flags: 0,
        ttl: -1,
    }));
    assert_eq!(ev.len(), 1);
    assert_eq!(ev[0].event_type, EventType::NodeCreated as i32);
    // One-shot: a second change fires nothing.
    let (_, ev) = c.call(&Request::SetData {
        path: "/w".into(),
        data: None,
        version: -1,
    });
    assert!(ev.is_empty());
}

#[test]
fn watches_on_other_connections_and_recursive_paths() {
    let srv = start(|_| {});
    let mut a = RawClient::connect(srv.addr);
    let mut b = RawClient::connect(srv.addr);
    a.create("/r", b"", 0).unwrap();
    let (f, _) = b.call(&Request::AddWatch {
        path: "/r".into(),
        mode: AddWatchMode::PersistentRecursive as i32,
    });
    assert_eq!((f.err, f.body.len()), (0, 4));
    let (f, _) = b.call(&Request::GetChildren {
        path: "/r".into(),
        watch: true,
    });
    assert_eq!(f.err, 0);
    a.create("/r/x", b"", 0).unwrap();
    a.create("/r/x/y", b"", 0).unwrap();
    let got: Vec<(i32, String)> = (0..3)
        .map(|_| {
            let e = b.next_event();
            (e.event_type, e.path)
        })
        .collect();
    assert_eq!(
        got,
        vec![
            (EventType::NodeCreated as i32, "/r/x".to_string()),
            (EventType::NodeChildrenChanged as i32, "/r".to_string()),
            (EventType::NodeCreated as i32, "/r/x/y".to_string()),
        ]
    );
    let (f, _) = b.call(&Request::RemoveWatches {
        path: "/r".into(),
        watcher_type: WatcherType::Any as i32,
    });
    assert_eq!(f.err, 0);
    let (f, _) = b.call(&Request::CheckWatches {
        path: "/r".into(),
        watcher_type: WatcherType::Any as i32,
    });
    assert_eq!(f.err, ErrorCode::NoWatcher.code());
}

#[test]
fn multi_results_and_atomicity() {
    let srv = start(|_| {});
    let mut c = RawClient::connect(srv.addr);
    let create = |path: &str| {
        Request::Create(CreateRequest {
            op: OpCode::Create,
            path: path.into(),
            data: None,
            acl: Acl::open(),
            flags: 0,
            ttl: -1,
        })
    };
    let (f, _) = c.call(&Request::Multi(vec![
        create("/m1"),
        Request::Check {
            path: "/m1".into(),
            version: 7,
        },
        create("/m2"),
    ]));
    assert_eq!(f.err, 0, "a failed multi still has header err 0");
    assert_eq!(
        OpResult::decode_all(&f.body).unwrap(),
        vec![
            OpResult::Error(0),
            OpResult::Error(ErrorCode::BadVersion.code()),
            OpResult::Error(ErrorCode::RuntimeInconsistency.code()),
        ]
    );
    assert_eq!(c.get("/m1", false), Err(ErrorCode::NoNode.code()));
    let (f, _) = c.call(&Request::Multi(vec![create("/m1"), create("/m1/c")]));
    let res = OpResult::decode_all(&f.body).unwrap();
    assert_eq!(
        res,
        vec![
            OpResult::Create { path: "/m1".into() },
            OpResult::Create {
                path: "/m1/c".into()
            }
        ]
    );
    // Bad flags inside a multi fail that op without ordering anything.
    let mut bad = create("/m3");
    if let Request::Create(c) = &mut bad {
        c.flags = 42;
    }
    let (f, _) = c.call(&Request::Multi(vec![create("/m4"), bad]));
    assert_eq!(
        OpResult::decode_all(&f.body).unwrap(),
        vec![
            OpResult::Error(0),
            OpResult::Error(ErrorCode::BadArguments.code())
        ]
    );
}

#[test]
fn unknown_opcode_and_standalone_check_close_only_that_connection() {
    let srv = start(|_| {});
    let mut other = RawClient::connect(srv.addr);
    for op in [13, 999, 0] {
        let mut c = RawClient::connect(srv.addr);
        c.send_with_xid(
            5,
            op,
            &Request::Check {
                path: "/".into(),
                version: 0,
            },
        );
        let f = c.recv().unwrap();
        assert_eq!((f.xid, f.err), (5, ErrorCode::Unimplemented.code()));
        assert!(c.is_closed(), "opcode {op} must close the connection");
    }
    assert!(other.get("/", false).is_ok());
}

#[test]
fn malformed_body_is_marshalling_error_and_connection_survives() {
    let srv = start(|_| {});
    let mut c = RawClient::connect(srv.addr);
    // getData whose path length lies.
    let mut b = BytesMut::new();
    encode_request_frame(&mut b, 9, OpCode::GetData as i32, |b| {
        b.extend_from_slice(&[0, 0, 0, 50, b'/'])
    });
    c.send_raw(&b);
    let f = c.recv().unwrap();
    assert_eq!((f.xid, f.err), (9, ErrorCode::MarshallingError.code()));
    assert!(c.get("/", false).is_ok());
}

#[test]
fn oversized_or_negative_frames_close_only_that_connection() {
    let srv = start(|cfg| cfg.max_frame_bytes = 4096);
    let mut other = RawClient::connect(srv.addr);
    for prefix in [4097i32, -5, i32::MAX] {
        let mut c = RawClient::connect(srv.addr);
        c.send_raw(&prefix.to_be_bytes());
        assert!(c.is_closed(), "length {prefix} must close");
    }
    // Data above the limit inside a well-formed frame also closes.
    let mut c = RawClient::connect(srv.addr);
    let big = vec![7u8; 5000];
    c.send(&Request::SetData {
        path: "/".into(),
        data: Some(big),
        version: -1,
    });
    assert!(c.is_closed());
    assert_eq!(other.create("/still", b"ok", 0), Ok("/still".into()));
}

#[test]
fn garbage_instead_of_a_handshake_is_closed() {
    let srv = start(|_| {});
    let mut s = RawClient::tcp(srv.addr);
    s.write_all(&[0, 0, 0, 3, 1, 2, 3]).unwrap();
    let mut b = [0u8; 1];
    match std::io::Read::read(&mut s, &mut b) {
        Ok(0) => {}
        Ok(_) => panic!("the server answered garbage"),
        Err(e) => assert!(
            !matches!(
                e.kind(),
                std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
            ),
            "the server kept a garbage connection open: {e}"
        ),
    }
    let mut c = RawClient::connect(srv.addr);
    assert!(c.get("/", false).is_ok());
}

#[test]
fn session_resume_wrong_password_and_zxid_ahead() {
    let srv = start(|_| {});
    let mut c = RawClient::connect(srv.addr);
    c.create("/e", b"", CreateMode::Ephemeral.flags()).unwrap();
    let (id, pw) = (c.session_id, c.passwd);
    let mut wrong = pw;
    wrong[0] ^= 1;
    assert!(
        RawClient::connect_with(srv.addr, id, wrong, 30000, 0).is_none(),
        "wrong password gets an expired session"
    );
    let mut resumed = RawClient::connect_with(srv.addr, id, pw, 30000, 0).unwrap();
    assert_eq!(resumed.session_id, id);
    assert!(
        c.is_closed(),
        "the old connection of a resumed session is closed"
    );
    assert!(resumed.get("/e", false).is_ok());
    assert!(
        RawClient::connect_with(srv.addr, 0, [0; 16], 30000, 1 << 40).is_none(),
        "a client that saw a newer zxid is refused"
    );
}

#[test]
fn close_and_expiry_delete_ephemerals_and_fire_watches() {
    let srv = start(|cfg| {
        cfg.tick_time_ms = 100;
    });
    let mut watcher = RawClient::connect(srv.addr);
    let mut c = RawClient::connect(srv.addr);
    c.create("/eph", b"", CreateMode::Ephemeral.flags())
        .unwrap();
    watcher.get("/eph", true).unwrap();
    let (f, _) = c.call(&Request::CloseSession);
    assert_eq!(f.err, 0);
    assert!(c.is_closed());
    let e = watcher.next_event();
    assert_eq!(
        (e.event_type, e.path.as_str()),
        (EventType::NodeDeleted as i32, "/eph")
    );

    // Expiry: a session that goes silent past its timeout (200 ms = 2 ticks).
    let mut d = RawClient::connect_with(srv.addr, 0, [0; 16], 200, 0).unwrap();
    assert_eq!(d.timeout_ms, 200);
    d.create("/eph2", b"", CreateMode::Ephemeral.flags())
        .unwrap();
    watcher.get("/eph2", true).unwrap();
    let (id, pw) = (d.session_id, d.passwd);
    drop(d);
    let e = watcher.next_event();
    assert_eq!(
        (e.event_type, e.path.as_str()),
        (EventType::NodeDeleted as i32, "/eph2")
    );
    assert!(RawClient::connect_with(srv.addr, id, pw, 200, 0).is_none());
}

/// This connection's `(recved, queued)` as `cons` reports them, if it is still open.
fn cons_counts(addr: std::net::SocketAddr, session: i64) -> Option<(u64, u64)> {
    let cons = four_letter(addr, "cons");
    let line = cons
        .lines()
        .find(|l| l.contains(&format!("sid=0x{session:x})")))?;
    let field = |name: &str| -> u64 {
        let rest = &line[line.find(&format!("{name}=")).unwrap() + name.len() + 1..];
        rest[..rest.find([',', ')']).unwrap()].parse().unwrap()
    };
    Some((field("recved"), field("queued")))
}

#[test]
fn a_session_whose_close_was_read_cannot_be_resumed() {
    let srv = start(|_| {});
    // The window is short: try until the resume is seen to land inside it.
    for _attempt in 0..5 {
        let mut watcher = RawClient::connect(srv.addr);
        let mut c = RawClient::connect(srv.addr);
        c.create("/held", b"", CreateMode::Ephemeral.flags())
            .unwrap();
        watcher.get("/held", true).unwrap();
        let (id, pw) = (c.session_id, c.passwd);
        // Writes pipelined ahead of the close (fewer than the connection's outstanding limit,
        // so the server reads the close at once) keep it waiting to be ordered.
        for _ in 0..100 {
            c.send(&Request::SetData {
                path: "/held".into(),
                data: Some(vec![1; 16 << 10]),
                version: -1,
            });
        }
        c.send(&Request::CloseSession);
        // In the window: the server has read the close (and everything before it), and
        // writes before it are still waiting.
        let in_window = loop {
            match cons_counts(srv.addr, id) {
                Some((recved, queued)) if recved >= 102 => break queued > 0,
                Some(_) => continue,
                None => break false,
            }
        };
        let resumed = RawClient::connect_with(srv.addr, id, pw, 30000, 0);
        assert!(
            resumed.is_none(),
            "a session was resumed after its closeSession was read"
        );
        // The close is ordered after the writes and deletes the ephemeral.
        wait_until(
            "the closed session's ephemeral deleted",
            Duration::from_secs(10),
            || watcher.get("/held", false).is_err(),
        );
        assert!(RawClient::connect_with(srv.addr, id, pw, 30000, 0).is_none());
        if in_window {
            return;
        }
    }
    panic!("the resume never arrived while the close was waiting to be ordered");
}

#[test]
fn pings_keep_a_session_alive() {
    let srv = start(|cfg| cfg.tick_time_ms = 100);
    let mut c = RawClient::connect_with(srv.addr, 0, [0; 16], 200, 0).unwrap();
    c.create("/alive", b"", CreateMode::Ephemeral.flags())
        .unwrap();
    for _ in 0..8 {
        std::thread::sleep(Duration::from_millis(60));
        c.send_with_xid(XID_PING, OpCode::Ping as i32, &Request::Ping);
        let f = c.recv().unwrap();
        assert_eq!((f.xid, f.err), (XID_PING, 0));
    }
    assert!(c.get("/alive", false).is_ok());
}

#[test]
fn four_letter_words_and_allow_list() {
    let srv = start(|cfg| cfg.four_letter_words = "ruok,srvr,mntr".into());
    assert_eq!(four_letter(srv.addr, "ruok"), "imok");
    let srvr = four_letter(srv.addr, "srvr");
    assert!(srvr.contains("Mode: standalone"), "{srvr}");
    assert!(srvr.starts_with("Zookeeper version: 3.9"), "{srvr}");
    let mntr = four_letter(srv.addr, "mntr");
    assert!(mntr.contains("zk_znode_count\t4\n"), "{mntr}");
    assert_eq!(
        four_letter(srv.addr, "envi"),
        "envi is not executed because it is not in the whitelist.\n"
    );
}

#[test]
fn mntr_reports_fsyncs_and_group_commit_batches_under_zookeepers_names() {
    let srv = start(|_| {});
    let mut c = RawClient::connect(srv.addr);
    for i in 0..10 {
        assert_eq!(c.create(&format!("/n{i}"), b"x", 0), Ok(format!("/n{i}")));
    }
    let mntr = four_letter(srv.addr, "mntr");
    let value = |key: &str| -> f64 {
        mntr.lines()
            .find_map(|l| l.strip_prefix(key)?.strip_prefix('\t'))
            .unwrap_or_else(|| panic!("{key} missing from mntr:\n{mntr}"))
            .parse()
            .unwrap_or_else(|e| panic!("{key} is not a number ({e}):\n{mntr}"))
    };
    // One session and ten creates, each waiting for the previous reply: at least eleven
    // commands, each entry on disk before its reply.
    let entries = value("zk_cnt_sync_processor_batch_size");
    let commands = value("zk_sum_sync_processor_batch_size");
    assert!(commands >= 11.0, "{mntr}");
    assert!(entries >= 1.0 && entries <= commands, "{mntr}");
    assert!(value("zk_min_sync_processor_batch_size") >= 1.0, "{mntr}");
    assert!(
        value("zk_max_sync_processor_batch_size") >= value("zk_min_sync_processor_batch_size"),
        "{mntr}"
    );
    let avg = value("zk_avg_sync_processor_batch_size");
    assert!((avg - commands / entries).abs() < 0.001, "{mntr}");
    assert!(value("zk_cnt_fsynctime") >= entries, "{mntr}");
    assert!(value("zk_avg_fsynctime") > 0.0, "{mntr}");
}

#[test]
fn sequential_ephemeral_and_get_ephemerals() {
    let srv = start(|_| {});
    let mut c = RawClient::connect(srv.addr);
    c.create("/q", b"", 0).unwrap();
    let a = c
        .create("/q/n-", b"", CreateMode::EphemeralSequential.flags())
        .unwrap();
    let b = c
        .create("/q/n-", b"", CreateMode::EphemeralSequential.flags())
        .unwrap();
    assert_eq!(
        (a.as_str(), b.as_str()),
        ("/q/n-0000000000", "/q/n-0000000001")
    );
    let (f, _) = c.call(&Request::GetEphemerals {
        prefix: "/q".into(),
    });
    let mut r = Reader::new(&f.body);
    assert_eq!(r.vector(Reader::string).unwrap(), vec![a, b]);
    assert_eq!(
        c.create("/q/n-0000000000/x", b"", 0),
        Err(ErrorCode::NoChildrenForEphemerals.code())
    );
}

#[test]
fn empty_containers_and_expired_ttl_nodes_are_collected() {
    let srv = start(|cfg| cfg.container_check_ms = 50);
    let mut c = RawClient::connect(srv.addr);
    let mk = |op: OpCode, path: &str, flags: i32, ttl: i64| {
        Request::Create(CreateRequest {
            op,
            path: path.into(),
            data: None,
            acl: Acl::open(),
            flags,
            ttl,
        })
    };
    let (f, _) = c.call(&mk(OpCode::CreateContainer, "/ct", 4, -1));
    assert_eq!(f.err, 0);
    let (f, _) = c.call(&mk(OpCode::CreateTtl, "/ttl", 5, 200));
    assert_eq!(f.err, 0);
    c.create("/ct/child", b"", 0).unwrap();
    // The TTL passes after 200 ms; the collector looks every 50 ms. Waiting for the outcome
    // instead of a fixed time keeps the test honest on a loaded machine.
    wait_until(
        "the expired TTL node collected",
        Duration::from_secs(10),
        || c.get("/ttl", false) == Err(ErrorCode::NoNode.code()),
    );
    assert!(
        c.get("/ct", false).is_ok(),
        "a container with a child stays, though collection ran"
    );
    c.get("/ct", true).unwrap();
    let (f, _) = c.call(&Request::Delete {
        path: "/ct/child".into(),
        version: -1,
    });
    assert_eq!(f.err, 0);
    let e = c.next_event();
    assert_eq!(
        (e.event_type, e.path.as_str()),
        (EventType::NodeDeleted as i32, "/ct")
    );
}

#[test]
fn garbage_after_the_handshake_never_hurts_other_sessions() {
    let srv = start(|_| {});
    let mut healthy = RawClient::connect(srv.addr);
    healthy.create("/keep", b"safe", 0).unwrap();
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    for round in 0..200 {
        let mut c = RawClient::connect(srv.addr);
        let len = (next() % 64) as usize;
        let mut body: Vec<u8> = (0..len).map(|_| next() as u8).collect();
        // Half the rounds keep a plausible header so the opcode decoders see the garbage.
        if round % 2 == 0 && body.len() >= 8 {
            let op = [1i32, 2, 4, 5, 7, 8, 12, 14, 22, 101, 105, 106][round % 12];
            body[4..8].copy_from_slice(&op.to_be_bytes());
        }
        let mut frame = BytesMut::new();
        encode_frame(&mut frame, |b| b.extend_from_slice(&body));
        c.send_raw(&frame);
        // Whatever the answer (error reply or closed connection), the server stays up.
        let _ = c.recv();
    }
    let (data, _) = healthy.get("/keep", false).unwrap();
    assert_eq!(data.as_deref(), Some(&b"safe"[..]));
    assert!(RawClient::connect(srv.addr).get("/keep", false).is_ok());
}

#[test]
fn pipelined_reads_see_the_same_clients_earlier_writes() {
    let srv = start(|_| {});
    let mut c = RawClient::connect(srv.addr);
    for round in 0..50 {
        let path = format!("/fifo-{round}");
        // Write, read, write, read, all sent before any reply arrives.
        let x1 = c.send(&Request::Create(CreateRequest {
            op: OpCode::Create,
            path: path.clone(),
            data: Some(b"1".to_vec()),
            acl: Acl::open(),
            flags: 0,
            ttl: -1,
        }));
        let x2 = c.send(&Request::GetData {
            path: path.clone(),
            watch: false,
        });
        let x3 = c.send(&Request::SetData {
            path: path.clone(),
            data: Some(b"2".to_vec()),
            version: 0,
        });
        let x4 = c.send(&Request::GetData {
            path: path.clone(),
            watch: false,
        });
        let replies: Vec<Frame> = (0..4).map(|_| c.recv().unwrap()).collect();
        assert_eq!(
            replies.iter().map(|f| f.xid).collect::<Vec<_>>(),
            vec![x1, x2, x3, x4],
            "replies in request order"
        );
        assert!(replies.iter().all(|f| f.err == 0), "{replies:?}");
        let data = |f: &Frame| Reader::new(&f.body).buffer().unwrap().unwrap();
        assert_eq!(data(&replies[1]), b"1");
        assert_eq!(data(&replies[3]), b"2");
        assert!(
            replies[3].zxid >= replies[2].zxid,
            "reply zxids never go back"
        );
    }
}

#[test]
fn every_four_letter_word_answers() {
    let srv = start(|_| {});
    let mut c = RawClient::connect(srv.addr);
    c.get("/", true).unwrap();
    let expect = [
        ("ruok", "imok"),
        ("isro", "rw"),
        ("srvr", "Node count: 4"),
        ("stat", "Clients:"),
        ("cons", &format!("sid=0x{:x}", c.session_id)),
        ("mntr", "zk_watch_count\t1"),
        ("conf", "tickTime=2000"),
        ("envi", "zookeeper.version=3.9.0-zooid"),
        ("wchs", "1 connections watching 1 paths\nTotal watches:1"),
    ];
    for (word, part) in expect {
        let out = four_letter(srv.addr, word);
        assert!(out.contains(part), "{word}: {out:?} lacks {part:?}");
    }
    // Not a word we know: read as a frame length far above the limit, so the connection closes.
    assert_eq!(four_letter(srv.addr, "dump"), "");
}
