//! The core without sockets: requests and committed entries go in, effects come out.

use super::*;
use crate::state::connections::Conn;
use crate::state::effect::Effect;
use crate::state::writes::WriteContext;
use std::net::SocketAddr;

const ME: u64 = 1;
const A: ConnId = 10;
const B: ConnId = 11;
const TIMEOUT: Duration = Duration::from_secs(10);

fn standalone() -> State {
    State::new(ME, DataTree::new(), Duration::from_millis(100), false)
}

fn remote() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 40000))
}

/// A connection holding a session of its own (the session's create already applied).
fn connect(st: &mut State, conn: ConnId, zxid: &mut i64) -> i64 {
    let session = st.new_session_id();
    st.attach(conn, Conn::new(session, remote(), false), TIMEOUT);
    st.propose(
        session,
        TxnOp::CreateSession {
            timeout_ms: TIMEOUT.as_millis() as i32,
            passwd: [7; 16],
        },
        None,
    );
    apply_proposed(st, zxid);
    session
}

/// Applies every command the state proposed, in order, at the next zxids; returns the other
/// effects, in order.
fn apply_proposed(st: &mut State, zxid: &mut i64) -> Vec<Effect> {
    let mut rest = Vec::new();
    let mut queue: Vec<Effect> = st.take_effects();
    while !queue.is_empty() {
        for e in std::mem::take(&mut queue) {
            match e {
                Effect::Propose(bytes) => {
                    *zxid += 1;
                    st.apply(*zxid, Command::decode(&bytes).expect("a command"));
                    queue.extend(st.take_effects());
                }
                other => rest.push(other),
            }
        }
    }
    rest
}

fn origin(conn: ConnId, xid: i32, shape: ReplyShape, op: OpCode) -> Origin {
    Origin {
        conn,
        xid,
        shape,
        op,
        received: Instant::now(),
        span: tracing::Span::none(),
        trace: None,
    }
}

fn create(st: &mut State, conn: ConnId, session: i64, xid: i32, path: &str) {
    let req = Request::Create(CreateRequest {
        op: OpCode::Create,
        path: path.into(),
        data: Some(b"x".to_vec()),
        acl: vec![Acl {
            perms: 31,
            id: Id {
                scheme: "world".into(),
                id: "anyone".into(),
            },
        }],
        flags: 0,
        ttl: -1,
    });
    let ctx = WriteContext {
        auth_ids: &[],
        extended_types: false,
    };
    let (op, shape) = ctx.to_txn(req);
    st.propose(session, op, Some(origin(conn, xid, shape, OpCode::Create)));
}

/// (xid, zxid, err) of a reply or notification frame.
fn header(frame: &[u8]) -> (i32, i64, i32) {
    let i32_at = |i: usize| i32::from_be_bytes(frame[i..i + 4].try_into().expect("4 bytes"));
    let zxid = i64::from_be_bytes(frame[8..16].try_into().expect("8 bytes"));
    (i32_at(4), zxid, i32_at(16))
}

#[test]
fn a_write_is_proposed_then_answered_when_applied() {
    let mut st = standalone();
    let mut zxid = 0;
    let session = connect(&mut st, A, &mut zxid);
    create(&mut st, A, session, 7, "/a");
    assert_eq!(st.pending_writes(A), 1);
    let effects = apply_proposed(&mut st, &mut zxid);
    match effects.as_slice() {
        [Effect::Frame { conn: A, frame }, Effect::Answered(a), Effect::WriteDone(A)] => {
            assert_eq!(header(frame), (7, zxid, 0));
            assert!(a.write && a.op == OpCode::Create && a.zxid == zxid);
        }
        other => panic!("unexpected effects: {other:?}"),
    }
    assert_eq!(st.pending_writes(A), 0);
    assert!(st.tree().get("/a").is_some());
}

#[test]
fn a_watch_event_goes_out_before_the_reply_of_the_write_that_fired_it() {
    let mut st = standalone();
    let mut zxid = 0;
    let _a = connect(&mut st, A, &mut zxid);
    let b = connect(&mut st, B, &mut zxid);
    let watch = Request::Exists {
        path: "/a".into(),
        watch: true,
    };
    assert!(reads::execute(&mut st, A, _a, watch, 1 << 20).is_err());
    create(&mut st, B, b, 3, "/a");
    let effects = apply_proposed(&mut st, &mut zxid);
    let frames: Vec<(ConnId, (i32, i64, i32))> = effects
        .iter()
        .filter_map(|e| match e {
            Effect::Frame { conn, frame } => Some((*conn, header(frame))),
            _ => None,
        })
        .collect();
    // The event (xid -1) to A, then B's reply.
    assert_eq!(frames, vec![(A, (-1, zxid, 0)), (B, (3, zxid, 0))]);
    // One-shot: a second change tells A nothing.
    st.propose(
        b,
        TxnOp::Delete {
            path: "/a".into(),
            version: -1,
        },
        None,
    );
    let effects = apply_proposed(&mut st, &mut zxid);
    assert!(!effects
        .iter()
        .any(|e| matches!(e, Effect::Frame { conn: A, .. })));
}

#[test]
fn another_members_write_changes_the_tree_and_answers_no_one_here() {
    let mut st = standalone();
    let mut zxid = 0;
    let session = connect(&mut st, A, &mut zxid);
    let cmd = Command {
        time: 1,
        session,
        origin_node: 2,
        proposal: 99,
        op: TxnOp::Create(zooid_tree::Create {
            path: "/elsewhere".into(),
            data: None,
            acl: vec![Acl {
                perms: 31,
                id: Id {
                    scheme: "world".into(),
                    id: "anyone".into(),
                },
            }],
            kind: zooid_tree::CreateKind::Persistent,
            sequential: false,
        }),
        trace: None,
        checks: zooid_tree::Checks::default(),
    };
    st.apply(zxid + 1, cmd);
    assert!(st.take_effects().is_empty());
    assert!(st.tree().get("/elsewhere").is_some());
}

#[test]
fn the_leader_expires_a_silent_session_and_drops_its_connection() {
    let mut st = standalone();
    let mut zxid = 0;
    let session = connect(&mut st, A, &mut zxid);
    let later = Instant::now() + TIMEOUT + Duration::from_secs(1);
    assert!(st.expire_due(later).is_empty());
    let effects = st.take_effects();
    assert!(
        matches!(effects.first(), Some(Effect::Kill(A))),
        "{effects:?}"
    );
    assert!(matches!(effects.get(1), Some(Effect::Propose(_))));
    for e in effects {
        if let Effect::Propose(bytes) = e {
            zxid += 1;
            st.apply(zxid, Command::decode(&bytes).expect("a command"));
        }
    }
    assert!(st.tree().session(session).is_none());
    assert_eq!(st.sessions_expired(), 1);
}

#[test]
fn a_follower_keeps_a_silent_session_for_the_leader_to_decide_and_reports_touches() {
    let mut st = State::new(2, DataTree::new(), Duration::from_millis(100), true);
    st.leader_changed(None, Some(1));
    assert!(!st.leads());
    let session = st.new_session_id();
    st.attach(A, Conn::new(session, remote(), false), TIMEOUT);
    // Created through the log: every member arms its deadline.
    st.apply(
        1,
        Command {
            time: 1,
            session,
            origin_node: 2,
            proposal: 0,
            op: TxnOp::CreateSession {
                timeout_ms: 10_000,
                passwd: [1; 16],
            },
            trace: None,
            checks: zooid_tree::Checks::default(),
        },
    );
    st.take_effects();
    st.received(A);
    assert_eq!(st.expire_due(Instant::now()), vec![session]);
    let later = Instant::now() + TIMEOUT + Duration::from_secs(1);
    st.expire_due(later);
    assert!(
        st.take_effects().is_empty(),
        "a follower proposes no expiry"
    );
    assert!(st.sessions().is_live(session));
    assert_eq!(st.sessions_expired(), 0, "the leader decides");
}

#[test]
fn losing_the_quorum_lets_every_client_go_and_refuses_new_ones() {
    let mut st = State::new(2, DataTree::new(), Duration::from_millis(100), true);
    st.leader_changed(None, Some(1));
    st.attach(A, Conn::new(5, remote(), false), TIMEOUT);
    st.attach(B, Conn::new(6, remote(), false), TIMEOUT);
    st.quorum_lost();
    let mut killed: Vec<ConnId> = st
        .take_effects()
        .into_iter()
        .map(|e| match e {
            Effect::Kill(c) => c,
            other => panic!("unexpected {other:?}"),
        })
        .collect();
    killed.sort_unstable();
    assert_eq!(killed, vec![A, B]);
    assert!(!st.serving());
    st.quorum_regained();
    assert!(st.serving() && st.mode() == "follower");
}

#[test]
fn a_stopping_server_closes_the_connection_of_a_new_write_instead_of_proposing_it() {
    let mut st = standalone();
    let mut zxid = 0;
    let session = connect(&mut st, A, &mut zxid);
    st.stop_taking_writes();
    create(&mut st, A, session, 1, "/late");
    let effects = st.take_effects();
    assert!(
        matches!(effects.as_slice(), [Effect::Close(A)]),
        "{effects:?}"
    );
}

#[test]
fn a_write_the_log_lost_closes_its_connection() {
    let mut st = standalone();
    let mut zxid = 0;
    let session = connect(&mut st, A, &mut zxid);
    create(&mut st, A, session, 1, "/lost");
    let Some(Effect::Propose(bytes)) = st.take_effects().pop() else {
        panic!("a proposal");
    };
    st.lost(&[&bytes]);
    assert!(matches!(st.take_effects().as_slice(), [Effect::Close(A)]));
    assert_eq!(st.outstanding(), 0);
}
