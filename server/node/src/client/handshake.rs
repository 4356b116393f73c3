//! The handshake: a ConnectRequest opens a new session (ordered through the log), resumes a
//! live one (moving it here if another member held it), or is refused.

use crate::runtime::outbox::Outbox;
use crate::runtime::Node;
use crate::runtime::StateGuard;
use crate::session::ConnId;
use crate::state::connections::Conn;
use crate::state::proposals::Origin;
use crate::state::writes::ReplyShape;
use bytes::BytesMut;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::Notify;
use tracing::{debug, info};
use zooid_proto::*;

/// What became of a ConnectRequest.
pub(super) enum Answered {
    /// The session to serve.
    Serve(i64),
    /// The connection closes (after whatever answer was queued).
    Close,
    /// The session is not known here: nothing was answered yet. A member may be behind
    /// (restarted, catching up): it must catch up with the leader before it tells a live
    /// client its session expired (ZooKeeper's followers ask their leader).
    Unknown,
}

/// Answers the ConnectRequest. `caught_up`: this member has just caught up with the leader,
/// so a session it does not know has expired.
pub(super) fn answer(
    node: &Node,
    conn: ConnId,
    remote: SocketAddr,
    creq: &ConnectRequest,
    outbox: &Outbox,
    write_done: &Arc<Notify>,
    caught_up: bool,
) -> Answered {
    let config = &node.config;
    let mut state = node.state();
    // Cut off from the quorum, with read-only mode on: only clients that accept a read-only
    // server are taken (ZooKeeper closes the others' connections without an answer).
    let read_only = state.read_only() && creq.read_only == Some(true);
    if !state.serving() && !read_only {
        // Cut off from the quorum: this member cannot vouch for its state nor order writes;
        // the client tries another.
        debug!(conn, "refusing a client: not in a quorum");
        return Answered::Close;
    }
    if creq.last_zxid_seen > state.last_zxid() {
        // The client has seen newer state than this server holds: it must try another.
        debug!(
            conn,
            "refusing client with lastZxidSeen 0x{:x}", creq.last_zxid_seen
        );
        return Answered::Close;
    }
    let timeout = (creq.timeout_ms.max(0) as u32)
        .clamp(config.min_session_timeout(), config.max_session_timeout());
    // The connection is the session's from now on: the state knows it, and its effects reach
    // the connection's socket.
    let attach = |state: &mut StateGuard, session| {
        state.link(conn, outbox.clone(), write_done.clone());
        let c = Conn::new(session, remote, read_only);
        state.attach(conn, c, Duration::from_millis(timeout as u64));
    };
    // Where the ConnectResponse goes when it waits for an entry (a new session, a move).
    let connect_origin = || Origin {
        conn,
        xid: 0,
        shape: ReplyShape::Connect {
            timeout_ms: timeout as i32,
            read_only: creq.read_only.map(|_| false),
        },
        op: OpCode::CreateSession,
        received: Instant::now(),
        span: tracing::Span::none(),
        trace: None,
    };
    let send = |resp: ConnectResponse| {
        let mut b = BytesMut::new();
        encode_frame(&mut b, |b| resp.encode(b));
        outbox.send(b.freeze());
    };
    let (session, passwd) = if read_only {
        // Nothing can be ordered: a new session is this member's alone; a known one resumes.
        let (session, passwd) = if creq.session_id == 0 {
            state.open_local_session()
        } else {
            match state.session_passwd(creq.session_id) {
                Some(p) if p[..] == creq.passwd[..] => (creq.session_id, p),
                _ => {
                    send(ConnectResponse::expired(creq.read_only));
                    return Answered::Close;
                }
            }
        };
        attach(&mut state, session);
        send(ConnectResponse {
            protocol_version: 0,
            timeout_ms: timeout as i32,
            session_id: session,
            passwd,
            read_only: Some(true),
        });
        return Answered::Serve(session);
    } else if creq.session_id == 0 {
        // The answer goes out when the createSession entry is applied; requests pipelined
        // behind the handshake wait for it like reads wait for earlier writes.
        let id = state.new_session_id();
        let passwd: [u8; 16] = rand::random();
        attach(&mut state, id);
        state.propose(
            id,
            zooid_tree::TxnOp::CreateSession {
                timeout_ms: timeout as i32,
                passwd,
            },
            Some(connect_origin()),
        );
        return Answered::Serve(id);
    } else {
        // A session whose expiry is already on its way through the log is as good as gone.
        match state.session_passwd(creq.session_id) {
            Some(passwd) if passwd[..] == creq.passwd[..] => {
                let session = creq.session_id;
                attach(&mut state, session);
                if state.must_move(session) {
                    // ZooKeeper's revalidation: the session is this server's once the move is
                    // ordered, and the answer waits for it, so that nothing the client sent
                    // through its former server can be ordered after what it sends here.
                    state.move_here(session, connect_origin());
                    return Answered::Serve(session);
                }
                (session, passwd)
            }
            // Not known here, or its password differs: any member may not have applied the
            // session's creation yet (a follower that had not learned it was committed, a
            // leader elected a moment ago that has yet to apply its log).
            _ if !caught_up && node.replicated_consensus().is_some() => {
                return Answered::Unknown;
            }
            known => {
                // ZooKeeper logs this too ("Invalid session ... probably expired").
                info!(
                    conn,
                    %remote,
                    "session 0x{:x} resumed but {}: answered expired",
                    creq.session_id,
                    if known.is_some() { "its password differs" } else { "not live here" },
                );
                send(ConnectResponse::expired(creq.read_only));
                return Answered::Close;
            }
        }
    };
    send(ConnectResponse {
        protocol_version: 0,
        timeout_ms: timeout as i32,
        session_id: session,
        passwd,
        read_only: creq.read_only.map(|_| false),
    });
    Answered::Serve(session)
}
