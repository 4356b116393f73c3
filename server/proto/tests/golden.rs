#![allow(clippy::unwrap_used)]
//! Golden byte tests: the exact bytes ZooKeeper clients send and expect, written out by hand from
//! the jute definitions (big-endian, -1 = null, no padding).

use bytes::{Bytes, BytesMut};
use zooid_proto::*;

fn hex(s: &str) -> Vec<u8> {
    let s: String = s.split_whitespace().collect();
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

#[test]
fn connect_request_with_and_without_read_only_byte() {
    // protocolVersion 0, lastZxidSeen 0x10, timeout 30000, session 0, 16 zero bytes, readOnly 0.
    let with = hex(
        "00000000 0000000000000010 00007530 0000000000000000 00000010
         00000000000000000000000000000000 00",
    );
    assert_eq!(with.len(), 45);
    let req = ConnectRequest::decode(&with).unwrap();
    assert_eq!(req.last_zxid_seen, 0x10);
    assert_eq!(req.timeout_ms, 30000);
    assert_eq!(req.passwd, vec![0; 16]);
    assert_eq!(req.read_only, Some(false));
    let mut b = BytesMut::new();
    req.encode(&mut b);
    assert_eq!(&b[..], &with[..]);

    let without = &with[..44];
    let req = ConnectRequest::decode(without).unwrap();
    assert_eq!(req.read_only, None);
}

#[test]
fn connect_response_is_37_bytes_or_36_without_read_only() {
    let resp = ConnectResponse {
        protocol_version: 0,
        timeout_ms: 4000,
        session_id: 0x0100_0000_0000_0001,
        passwd: [0xab; 16],
        read_only: Some(false),
    };
    let mut b = BytesMut::new();
    resp.encode(&mut b);
    assert_eq!(
        &b[..],
        &hex("00000000 00000fa0 0100000000000001 00000010
              abababababababababababababababab 00")[..]
    );
    assert_eq!(b.len(), 37);
    let mut b = BytesMut::new();
    ConnectResponse::expired(None).encode(&mut b);
    assert_eq!(b.len(), 36);
    assert_eq!(&b[4..8], &[0, 0, 0, 0], "timeout 0 means expired");
}

#[test]
fn create_request_with_null_data_and_open_acl() {
    // xid 1, op 1 | path "/a" | data null | acl [31 world anyone] | flags 3 (ephemeral sequential)
    let frame = hex("00000001 00000001 00000002 2f61 ffffffff 00000001 0000001f
         00000005 776f726c64 00000006 616e796f6e65 00000003");
    let mut r = Reader::new(&frame);
    let h = RequestHeader::decode(&mut r).unwrap();
    assert_eq!(h, RequestHeader { xid: 1, op: 1 });
    let req = Request::decode(h.op, &frame[8..]).unwrap();
    let expected = Request::Create(CreateRequest {
        op: OpCode::Create,
        path: "/a".into(),
        data: None,
        acl: Acl::open(),
        flags: 3,
        ttl: -1,
    });
    assert_eq!(req, expected);
    let mut b = BytesMut::new();
    expected.encode(&mut b);
    assert_eq!(&b[..], &frame[8..]);
}

#[test]
fn create_ttl_carries_a_trailing_long() {
    let req = Request::Create(CreateRequest {
        op: OpCode::CreateTtl,
        path: "/t".into(),
        data: Some(b"x".to_vec()),
        acl: Acl::open(),
        flags: 5,
        ttl: 1000,
    });
    let mut b = BytesMut::new();
    req.encode(&mut b);
    assert_eq!(&b[b.len() - 12..], &hex("00000005 00000000000003e8")[..]);
    assert_eq!(Request::decode(21, &b).unwrap(), req);
}

#[test]
fn stat_is_68_bytes_in_declared_order() {
    let s = Stat {
        czxid: 1,
        mzxid: 2,
        ctime: 3,
        mtime: 4,
        version: 5,
        cversion: -1,
        aversion: 7,
        ephemeral_owner: 8,
        data_length: 9,
        num_children: 10,
        pzxid: 11,
    };
    let mut b = BytesMut::new();
    s.encode(&mut b);
    assert_eq!(
        &b[..],
        &hex(
            "0000000000000001 0000000000000002 0000000000000003 0000000000000004
              00000005 ffffffff 00000007 0000000000000008 00000009 0000000a
              000000000000000b"
        )[..]
    );
    assert_eq!(b.len(), Stat::WIRE_LEN);
    assert_eq!(Stat::decode(&mut Reader::new(&b)).unwrap(), s);
}

#[test]
fn error_reply_is_header_only() {
    let mut b = BytesMut::new();
    encode_reply(&mut b, 7, 0x20, Err(ErrorCode::NoNode));
    assert_eq!(
        &b[..],
        &hex("00000010 00000007 0000000000000020 ffffff9b")[..]
    );
}

#[test]
fn ping_reply_and_notification_frames() {
    let mut b = BytesMut::new();
    encode_reply(&mut b, XID_PING, 5, Ok(&Response::Empty));
    assert_eq!(
        &b[..],
        &hex("00000010 fffffffe 0000000000000005 00000000")[..]
    );

    let mut b = BytesMut::new();
    encode_notification(
        &mut b,
        -1,
        &WatcherEvent {
            event_type: EventType::NodeDataChanged as i32,
            state: STATE_SYNC_CONNECTED,
            path: "/a".into(),
        },
    );
    assert_eq!(
        &b[..],
        &hex("0000001e ffffffff ffffffffffffffff 00000000 00000003 00000003 00000002 2f61")[..]
    );
}

#[test]
fn failed_multi_reply_encodes_zero_code_and_minus_two() {
    let mut b = BytesMut::new();
    let results = vec![
        OpResult::Error(0),
        OpResult::Error(ErrorCode::NodeExists.code()),
        OpResult::Error(ErrorCode::RuntimeInconsistency.code()),
    ];
    Response::Multi(results.clone()).encode(&mut b);
    assert_eq!(
        &b[..],
        &hex("ffffffff 00 00000000 00000000
              ffffffff 00 ffffff92 ffffff92
              ffffffff 00 fffffffe fffffffe
              ffffffff 01 ffffffff")[..]
    );
    assert_eq!(OpResult::decode_all(&b).unwrap(), results);
}

#[test]
fn multi_request_round_trips_and_rejects_reads_in_writes() {
    let ops = vec![
        Request::Check {
            path: "/a".into(),
            version: 3,
        },
        Request::Delete {
            path: "/a".into(),
            version: -1,
        },
    ];
    let mut b = BytesMut::new();
    Request::Multi(ops.clone()).encode(&mut b);
    assert_eq!(
        &b[..],
        &hex("0000000d 00 ffffffff 00000002 2f61 00000003
              00000002 00 ffffffff 00000002 2f61 ffffffff
              ffffffff 01 ffffffff")[..]
    );
    assert_eq!(Request::decode(14, &b).unwrap(), Request::Multi(ops));

    let mut b = BytesMut::new();
    Request::Multi(vec![Request::GetData {
        path: "/a".into(),
        watch: false,
    }])
    .encode(&mut b);
    assert!(matches!(
        Request::decode(14, &b),
        Err(RequestError::Malformed(_))
    ));
}

#[test]
fn add_watch_reply_is_a_four_byte_error_response() {
    let mut b = BytesMut::new();
    encode_reply(&mut b, 3, 9, Ok(&Response::Int(0)));
    assert_eq!(
        &b[..],
        &hex("00000014 00000003 0000000000000009 00000000 00000000")[..]
    );
}

#[test]
fn set_watches2_carries_persistent_lists() {
    let w = SetWatches {
        relative_zxid: 0x42,
        data: vec!["/d".into()],
        exist: vec![],
        child: vec![],
        persistent: vec!["/p".into()],
        persistent_recursive: vec![],
    };
    let mut b = BytesMut::new();
    Request::SetWatches(w.clone()).encode(&mut b);
    assert_eq!(
        &b[..],
        &hex("0000000000000042 00000001 00000002 2f64 00000000 00000000
              00000001 00000002 2f70 00000000")[..]
    );
    assert_eq!(Request::decode(105, &b).unwrap(), Request::SetWatches(w));
}

#[test]
fn standalone_check_and_unknown_opcodes_are_unimplemented() {
    assert_eq!(
        Request::decode(13, &hex("00000002 2f61 00000000")),
        Err(RequestError::Unimplemented(13))
    );
    assert_eq!(Request::decode(0, &[]), Err(RequestError::Unimplemented(0)));
    assert_eq!(
        Request::decode(999, &[]),
        Err(RequestError::Unimplemented(999))
    );
    assert!(matches!(
        Request::decode(4, &hex("00000005 2f")),
        Err(RequestError::Malformed(_))
    ));
}

#[test]
fn every_client_opcode_decodes_what_it_encodes() {
    let reqs = vec![
        Request::Delete {
            path: "/x".into(),
            version: 2,
        },
        Request::Exists {
            path: "/x".into(),
            watch: true,
        },
        Request::GetData {
            path: "/x".into(),
            watch: false,
        },
        Request::SetData {
            path: "/x".into(),
            data: Some(vec![1, 2]),
            version: -1,
        },
        Request::GetAcl { path: "/x".into() },
        Request::SetAcl {
            path: "/x".into(),
            acl: Acl::read_only(),
            version: 0,
        },
        Request::GetChildren {
            path: "/x".into(),
            watch: true,
        },
        Request::GetChildren2 {
            path: "/x".into(),
            watch: false,
        },
        Request::Sync { path: "/x".into() },
        Request::Ping,
        Request::MultiRead(vec![Request::GetChildren {
            path: "/".into(),
            watch: false,
        }]),
        Request::CheckWatches {
            path: "/x".into(),
            watcher_type: 3,
        },
        Request::RemoveWatches {
            path: "/x".into(),
            watcher_type: 1,
        },
        Request::DeleteContainer { path: "/x".into() },
        Request::Auth {
            auth_type: 0,
            scheme: "digest".into(),
            auth: b"u:p".to_vec(),
        },
        Request::SetWatches(SetWatches {
            relative_zxid: 1,
            child: vec!["/c".into()],
            ..Default::default()
        }),
        Request::Sasl { token: vec![9] },
        Request::GetEphemerals { prefix: "/".into() },
        Request::GetAllChildrenNumber { path: "/".into() },
        Request::AddWatch {
            path: "/x".into(),
            mode: 1,
        },
        Request::WhoAmI,
        Request::CloseSession,
    ];
    for req in reqs {
        let mut b = BytesMut::new();
        req.encode(&mut b);
        assert_eq!(Request::decode(req.opcode() as i32, &b).unwrap(), req);
    }
}

#[test]
fn spliced_reply_sends_the_same_bytes_without_copying_large_data() {
    let big = Bytes::from(vec![7u8; 5000]);
    let resp = Response::Multi(vec![
        OpResult::GetData {
            data: Some(Bytes::from_static(b"small")),
            stat: Stat::default(),
        },
        OpResult::GetData {
            data: Some(big.clone()),
            stat: Stat::default(),
        },
        OpResult::GetData {
            data: None,
            stat: Stat::default(),
        },
        OpResult::GetChildren(vec!["a".into(), "bc".into()]),
        OpResult::GetData {
            data: Some(big.clone()),
            stat: Stat::default(),
        },
    ]);
    for result in [Ok(&resp), Err(ErrorCode::NoNode)] {
        let mut whole = BytesMut::new();
        encode_reply(&mut whole, 9, 42, result);
        let mut out = BytesMut::new();
        let mut pieces = Vec::new();
        encode_reply_spliced(&mut out, &mut pieces, 1024, 9, 42, result);
        let shared = pieces.iter().filter(|p| p.as_ptr() == big.as_ptr()).count();
        assert_eq!(shared, if result.is_ok() { 2 } else { 0 });
        let mut joined = Vec::new();
        for p in &pieces {
            joined.extend_from_slice(p);
        }
        joined.extend_from_slice(&out);
        assert_eq!(joined, &whole[..]);
    }
}
