//! One client connection: four-letter word or handshake, then a loop of request frames.
//!
//! Replies and notifications share one ordered, bounded outbound queue ([`Outbox`]). Before
//! each request the loop waits until the connection may take one: fewer than
//! `max-conn-outstanding` of its writes are waiting for ordering, fewer than
//! `global-outstanding-limit` across the server, and its outbound queue is within budget.
//! Until then its socket is not read, so a client cannot make the server queue without end.

use crate::connections::ConnHandle;
use crate::fourlw;
use crate::limits::Admitted;
use crate::metrics::Limit;
use crate::ops::{is_write, ReplyShape, WriteContext};
use crate::outbox::{self, Outbox};
use crate::reads;
use crate::reply::{Answer, Reply};
use crate::server::Shared;
use crate::state::Origin;
use crate::watches::ConnId;
use base64::Engine;
use bytes::{Bytes, BytesMut};
use sha1::{Digest, Sha1};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::Notify;
use tracing::{debug, info, warn};
use zooid_proto::*;

/// Why a connection ends early; logged at debug level only, as clients come and go.
#[derive(Debug, thiserror::Error)]
enum ConnError {
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
    #[error("frame: {0}")]
    Frame(#[from] FrameError),
    #[error("peer closed")]
    Eof,
    #[error("bad handshake: {0}")]
    Handshake(#[from] DecodeError),
    #[error("no handshake within {0:?}")]
    HandshakeTimeout(Duration),
    #[error("closed by server")]
    Closed,
    #[error("server stopping")]
    Stopping,
}

/// Serves one accepted socket until it closes. `_admitted` holds the connection's place
/// under the per-address limit until then.
pub async fn serve(shared: Arc<Shared>, stream: TcpStream, conn: ConnId, _admitted: Admitted) {
    let remote = stream
        .peer_addr()
        .unwrap_or_else(|_| SocketAddr::from(([0, 0, 0, 0], 0)));
    let _ = stream.set_nodelay(true);
    let (rd, wr) = stream.into_split();
    if let Err(e) = run(&shared, rd, wr, conn, remote).await {
        debug!(conn, %remote, "connection ended: {e}");
    }
    shared.state().detach(conn);
}

/// What the client opened the connection with.
enum Opening {
    Word(&'static str),
    Connect(ConnectRequest),
}

/// Reads the four-letter word or the ConnectRequest.
async fn opening<R: AsyncRead + Unpin>(
    rd: &mut R,
    buf: &mut BytesMut,
    max: usize,
) -> Result<Opening, ConnError> {
    while buf.len() < 4 {
        if rd.read_buf(buf).await? == 0 {
            return Err(ConnError::Eof);
        }
    }
    if let Some(word) = fourlw::recognize(&buf[..4]) {
        return Ok(Opening::Word(word));
    }
    let body = read_frame(rd, buf, max).await?;
    Ok(Opening::Connect(ConnectRequest::decode(&body)?))
}

async fn run<R, W>(
    shared: &Arc<Shared>,
    mut rd: R,
    mut wr: W,
    conn: ConnId,
    remote: SocketAddr,
) -> Result<(), ConnError>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin + Send + 'static,
{
    let config = &shared.config;
    let max = config.max_frame_bytes;
    let mut buf = BytesMut::with_capacity(8 * 1024);
    let wait = config.handshake_timeout();
    let creq = match tokio::time::timeout(wait, opening(&mut rd, &mut buf, max)).await {
        Err(_) => {
            shared.metrics.limited(Limit::Handshake);
            return Err(ConnError::HandshakeTimeout(wait));
        }
        Ok(Err(e)) => return Err(e),
        Ok(Ok(Opening::Word(word))) => {
            let text = fourlw::answer(word, config, &shared.state());
            wr.write_all(text.as_bytes()).await?;
            wr.shutdown().await?;
            return Ok(());
        }
        Ok(Ok(Opening::Connect(creq))) => creq,
    };

    let closed = Arc::new(Notify::new());
    let limits = outbox::Limits {
        budget: config.max_conn_outbound_bytes,
        hard_limit: config.outbound_hard_limit(),
        stall_timeout: config.slow_client_timeout(),
        metrics: shared.metrics.clone(),
    };
    let outbox = Outbox::start(wr, remote, limits, closed.clone());
    let write_done = Arc::new(Notify::new());
    let Some(session) = handshake(shared, conn, remote, &creq, &outbox, &write_done) else {
        // Expired / refused: the writer flushes the answer (if any) and closes.
        outbox.close();
        closed.notified().await;
        return Ok(());
    };

    let mut stopping = shared.stopping();
    let result = loop {
        let next = async {
            wait_for_capacity(shared, conn, &outbox, &write_done).await;
            read_frame(&mut rd, &mut buf, max).await
        };
        let body = tokio::select! {
            r = next => r,
            _ = closed.notified() => Err(ConnError::Closed),
            // Shutting down: read nothing more; the server closes the connection once the
            // writes already taken are answered.
            _ = stopping.wait_for(|s| *s) => Err(ConnError::Stopping),
        };
        if matches!(body, Err(ConnError::Stopping)) {
            closed.notified().await;
        }
        let body = match body {
            Ok(b) => b,
            Err(e) => break Err(e),
        };
        // Any request, pings first, shows the client alive: its session is touched on
        // receipt, not when the request's turn comes.
        let pending = {
            let mut state = shared.state();
            state.sessions.touch(session);
            state.pending_writes(conn)
        };
        // Anything but a write (and a ping, whose reply clients match by its own xid) waits
        // until this client's earlier writes are applied, so it sees them and its reply
        // cannot overtake theirs. Writes are ordered by the log.
        if pending != 0 && !is_write_frame(&body) && !is_ping_frame(&body) {
            wait_drained(shared, conn, &write_done).await;
        }
        // In an ensemble, `sync` waits until this member has applied everything acknowledged
        // anywhere before it (a read index from the leader). Nothing else of this client's is
        // read meanwhile, so its later requests stay in order behind it.
        let read_only = shared.state().conn_read_only(conn);
        let barrier = (is_sync_frame(&body) && !read_only)
            .then(|| shared.state().replicated_consensus())
            .flatten();
        if let Some(consensus) = barrier {
            let within = Duration::from_millis(u64::from(shared.config.max_session_timeout()));
            if let Err(e) = consensus.read_barrier(within).await {
                // No leader to vouch for the state: the client reconnects and tries again.
                debug!(%remote, "sync failed: {e}; closing the connection");
                shared.state().close_conn(conn);
                closed.notified().await;
                break Ok(());
            }
        }
        // A reconfig waits for the leader to change the membership and for this member to
        // apply it; like sync, it holds up this client's later requests meanwhile.
        if is_reconfig_frame(&body) && !read_only {
            if !reconfig(shared, conn, &body).await {
                closed.notified().await;
                break Ok(());
            }
            continue;
        }
        if !handle_request(shared, conn, session, &body) {
            break Ok(());
        }
    };
    shared.state().detach(conn);
    result
}

/// Waits until the connection may take another request (see the module comment).
async fn wait_for_capacity(shared: &Shared, conn: ConnId, outbox: &Outbox, write_done: &Notify) {
    let per_conn = shared.config.max_conn_outstanding;
    loop {
        if !outbox.has_room() {
            outbox.room().await;
            continue;
        }
        if shared.state().pending_writes(conn) >= per_conn {
            // notify_one keeps a permit, so a write applied since the check still wakes us.
            write_done.notified().await;
            continue;
        }
        shared.outstanding.wait_for_room().await;
        if outbox.has_room() && shared.state().pending_writes(conn) < per_conn {
            return;
        }
    }
}

/// Whether a request frame carries a write (by its opcode; the body is not decoded here).
fn is_write_frame(body: &[u8]) -> bool {
    body.get(4..8).is_some_and(|op| {
        OpCode::from_i32(i32::from_be_bytes([op[0], op[1], op[2], op[3]]))
            .is_some_and(crate::ops::is_write_op)
    })
}

fn is_sync_frame(body: &[u8]) -> bool {
    body.get(4..8) == Some(&(OpCode::Sync as i32).to_be_bytes()[..])
}

fn is_reconfig_frame(body: &[u8]) -> bool {
    body.get(4..8) == Some(&(OpCode::Reconfig as i32).to_be_bytes()[..])
}

/// Answers a reconfig: `/zookeeper/config` as it is after the change, or ZooKeeper's error
/// for it. Returns false when the connection is closed instead, because the outcome is not
/// known (no leader took it, or the leader failed part-way).
async fn reconfig(shared: &Shared, conn: ConnId, body: &[u8]) -> bool {
    let start = Instant::now();
    let mut r = Reader::new(body);
    let Ok(hdr) = RequestHeader::decode(&mut r) else {
        return false;
    };
    let consensus = {
        let mut state = shared.state();
        state.conns.received(conn);
        state.replicated_consensus()
    };
    let answer =
        match reconfigure(shared, conn, consensus, Request::decode(hdr.op, &body[8..])).await {
            Ok(answer) => answer,
            Err(Unknown) => {
                shared.state().close_conn(conn);
                return false;
            }
        };
    let mut state = shared.state();
    let answer = answer.and_then(|()| {
        state
            .tree
            .get_shared("/zookeeper/config")
            .map(Answer::Data)
            .ok_or(ErrorCode::NoNode)
    });
    let zxid = state.last_zxid();
    state.send_reply(
        conn,
        Reply {
            xid: hdr.xid,
            zxid,
            answer,
        },
    );
    state.record_request(OpCode::Reconfig, true, start.elapsed());
    true
}

/// The outcome of a reconfig could not be known (no leader took it, or the leader failed
/// part-way): the connection closes, as after ZooKeeper's CONNECTIONLOSS.
struct Unknown;

/// Carries out a decoded reconfig request: `Ok(Ok(()))` once this member applied the new
/// membership, `Ok(Err(code))` for ZooKeeper's refusal.
async fn reconfigure(
    shared: &Shared,
    conn: ConnId,
    consensus: Option<zooid_replication::Consensus>,
    req: Result<Request, RequestError>,
) -> Result<Result<(), ErrorCode>, Unknown> {
    let Ok(Request::Reconfig {
        joining,
        leaving,
        new_members,
        cur_config_id,
    }) = req
    else {
        return Ok(Err(ErrorCode::MarshallingError));
    };
    // ZooKeeper's order: disabled first, then a server that is not in an ensemble.
    let enabled = shared
        .config
        .ensemble
        .as_ref()
        .is_some_and(|e| e.reconfig_enabled);
    if !enabled {
        return Ok(Err(ErrorCode::ReconfigDisabled));
    }
    let Some(consensus) = consensus else {
        return Ok(Err(ErrorCode::Unimplemented));
    };
    let change = match crate::reconfig::change(
        joining.as_deref(),
        leaving.as_deref(),
        new_members.as_deref(),
    ) {
        Ok(change) => change,
        Err(why) => {
            debug!(conn, "reconfig refused: {why}");
            return Ok(Err(ErrorCode::BadArguments));
        }
    };
    let req = zooid_replication::Reconfig {
        change,
        from_version: (cur_config_id != -1).then_some(cur_config_id as u64),
    };
    let within = Duration::from_millis(u64::from(shared.config.max_session_timeout()));
    match consensus.reconfig(req, within).await {
        Ok(version) => {
            info!(conn, "membership changed, now at version {version:#x}");
            Ok(Ok(()))
        }
        Err(e) => match crate::reconfig::error_code(&e) {
            Some(code) => {
                info!(conn, "reconfig refused: {e}");
                Ok(Err(code))
            }
            None => {
                warn!(conn, "reconfig: {e}; closing the connection");
                Err(Unknown)
            }
        },
    }
}

fn is_ping_frame(body: &[u8]) -> bool {
    body.get(0..4) == Some(&XID_PING.to_be_bytes()[..])
}

/// Waits until the connection has no write in flight.
async fn wait_drained(shared: &Shared, conn: ConnId, write_done: &Notify) {
    while shared.state().pending_writes(conn) != 0 {
        // notify_one keeps a permit, so a write applied since the check still wakes us.
        write_done.notified().await;
    }
}

/// Reads one whole frame body, refusing lengths above `max` before buffering them.
async fn read_frame<R: AsyncRead + Unpin>(
    rd: &mut R,
    buf: &mut BytesMut,
    max: usize,
) -> Result<Bytes, ConnError> {
    loop {
        if let Some(range) = frame_bounds(buf, max)? {
            let frame = buf.split_to(range.end);
            return Ok(frame.freeze().slice(4..));
        }
        if rd.read_buf(buf).await? == 0 {
            return Err(ConnError::Eof);
        }
    }
}

/// Answers the ConnectRequest. Returns the session to serve, or `None` if the connection must
/// close (after whatever answer was queued).
fn handshake(
    shared: &Shared,
    conn: ConnId,
    remote: SocketAddr,
    creq: &ConnectRequest,
    outbox: &Outbox,
    write_done: &Arc<Notify>,
) -> Option<i64> {
    let config = &shared.config;
    let mut state = shared.state();
    // Cut off from the quorum, with read-only mode on: only clients that accept a read-only
    // server are taken (ZooKeeper closes the others' connections without an answer).
    let read_only = state.read_only() && creq.read_only == Some(true);
    if !state.serving() && !read_only {
        // Cut off from the quorum: this member cannot vouch for its state nor order writes;
        // the client tries another.
        debug!(conn, "refusing a client: not in a quorum");
        return None;
    }
    if creq.last_zxid_seen > state.last_zxid() {
        // The client has seen newer state than this server holds: it must try another.
        debug!(
            conn,
            "refusing client with lastZxidSeen 0x{:x}", creq.last_zxid_seen
        );
        return None;
    }
    let timeout = (creq.timeout_ms.max(0) as u32)
        .clamp(config.min_session_timeout(), config.max_session_timeout());
    let handle = |session| ConnHandle {
        outbox: outbox.clone(),
        session,
        remote,
        auth_ids: vec![Id {
            scheme: "ip".into(),
            id: remote.ip().to_string(),
        }],
        connected_at: Instant::now(),
        received: 0,
        sent: 0,
        pending_writes: 0,
        write_done: write_done.clone(),
        read_only,
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
    };
    let send = |resp: ConnectResponse| {
        let mut b = BytesMut::new();
        encode_frame(&mut b, |b| resp.encode(b));
        outbox.send(b.freeze());
    };
    let (session, passwd) = if read_only {
        // Nothing can be ordered: a new session is this member's alone; a known one resumes.
        let (session, passwd) = if creq.session_id == 0 {
            state.sessions.open_local()
        } else {
            match state.session_passwd(creq.session_id) {
                Some(p) if p[..] == creq.passwd[..] => (creq.session_id, p),
                _ => {
                    send(ConnectResponse::expired(creq.read_only));
                    return None;
                }
            }
        };
        state.attach(conn, handle(session), Duration::from_millis(timeout as u64));
        send(ConnectResponse {
            protocol_version: 0,
            timeout_ms: timeout as i32,
            session_id: session,
            passwd,
            read_only: Some(true),
        });
        return Some(session);
    } else if creq.session_id == 0 {
        // The answer goes out when the createSession entry is applied; requests pipelined
        // behind the handshake wait for it like reads wait for earlier writes.
        let id = state.sessions.new_id();
        let passwd: [u8; 16] = rand::random();
        state.attach(conn, handle(id), Duration::from_millis(timeout as u64));
        state.propose(
            id,
            zooid_tree::TxnOp::CreateSession {
                timeout_ms: timeout as i32,
                passwd,
            },
            Some(connect_origin()),
        );
        return Some(id);
    } else {
        // A session whose expiry is already on its way through the log is as good as gone.
        match state.session_passwd(creq.session_id) {
            Some(passwd) if passwd[..] == creq.passwd[..] => {
                let session = creq.session_id;
                state.attach(conn, handle(session), Duration::from_millis(timeout as u64));
                if state.must_move(session) {
                    // ZooKeeper's revalidation: the session is this server's once the move is
                    // ordered, and the answer waits for it, so that nothing the client sent
                    // through its former server can be ordered after what it sends here.
                    state.move_here(session, connect_origin());
                    return Some(session);
                }
                (session, passwd)
            }
            _ => {
                send(ConnectResponse::expired(creq.read_only));
                return None;
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
    Some(session)
}

/// Handles one request frame. Returns false when the connection must close.
fn handle_request(shared: &Shared, conn: ConnId, session: i64, body: &[u8]) -> bool {
    let start = Instant::now();
    let mut r = Reader::new(body);
    let Ok(hdr) = RequestHeader::decode(&mut r) else {
        // Without a header there is no xid to answer.
        return false;
    };
    let req = Request::decode(hdr.op, &body[8..]);
    let opcode = OpCode::from_i32(hdr.op).unwrap_or(OpCode::Error);
    // Pings are not traced: they would drown the requests.
    let span = if hdr.xid == XID_PING {
        tracing::Span::none()
    } else {
        tracing::debug_span!(
            target: crate::telemetry::TRACE_TARGET,
            "zooid.request",
            op = opcode.name(),
            session = format_args!("0x{session:x}"),
            xid = hdr.xid,
            zxid = tracing::field::Empty,
        )
    };
    let _entered = span.enter();
    let is_auth = matches!(req, Ok(Request::Auth { .. }));
    let mut state = shared.state();
    state.conns.received(conn);
    let mut keep_open = true;
    let refused_read_only = state.conn_read_only(conn)
        && OpCode::from_i32(hdr.op).is_some_and(crate::ops::needs_quorum);
    let result: Result<Answer, ErrorCode> = match req {
        // A read-only session changes nothing and cannot sync.
        Ok(_) if refused_read_only => Err(ErrorCode::NotReadOnly),
        Ok(Request::CloseSession) if state.conn_read_only(conn) => {
            state.expire_local(session);
            keep_open = false;
            Ok(Answer::Ready(Response::Empty))
        }
        Err(RequestError::Unimplemented(_)) => {
            keep_open = false;
            Err(ErrorCode::Unimplemented)
        }
        Err(RequestError::Malformed(_)) => Err(ErrorCode::MarshallingError),
        Ok(Request::Ping) => Ok(Answer::Ready(Response::Empty)),
        Ok(Request::Auth { scheme, auth, .. }) => {
            match authenticate(&scheme, &auth, &state, conn) {
                Some(id) => {
                    if let Some(h) = state.conns.get_mut(conn) {
                        if !h.auth_ids.contains(&id) {
                            h.auth_ids.push(id);
                        }
                    }
                    Ok(Answer::Ready(Response::Empty))
                }
                None => {
                    keep_open = false;
                    Err(ErrorCode::AuthFailed)
                }
            }
        }
        Ok(Request::Sasl { .. }) => {
            keep_open = false;
            Err(ErrorCode::AuthFailed)
        }
        Ok(req) if is_write(&req) => {
            let auth_ids = state
                .conns
                .get(conn)
                .map(|h| h.auth_ids.clone())
                .unwrap_or_default();
            let ctx = WriteContext {
                auth_ids: &auth_ids,
                extended_types: shared.config.extended_types,
            };
            let (op, shape) = ctx.to_txn(req);
            if shape == ReplyShape::CloseSession {
                // A reconnect from now on finds the session gone, as it will be.
                state.sessions.forget(session);
            }
            state.propose(
                session,
                op,
                Some(Origin {
                    conn,
                    xid: hdr.xid,
                    shape,
                    op: opcode,
                    received: start,
                    span: span.clone(),
                }),
            );
            return true;
        }
        Ok(req) => reads::execute(
            &mut state,
            conn,
            session,
            req,
            shared.config.max_reply_bytes,
        ),
    };
    // ZooKeeper stamps auth replies with zxid 0 and UNIMPLEMENTED ones with -1.
    let zxid = match &result {
        _ if is_auth => 0,
        Err(ErrorCode::Unimplemented) => -1,
        _ => state.last_zxid(),
    };
    span.record("zxid", format_args!("0x{zxid:x}"));
    state.send_reply(
        conn,
        Reply {
            xid: hdr.xid,
            zxid,
            answer: result,
        },
    );
    if hdr.xid != XID_PING {
        state.record_request(opcode, false, start.elapsed());
    }
    if !keep_open {
        state.close_conn(conn);
    }
    keep_open
}

/// The identity an AuthPacket yields, or `None` for an unknown scheme (AUTHFAILED + close).
fn authenticate(
    scheme: &str,
    auth: &[u8],
    state: &crate::state::State,
    conn: ConnId,
) -> Option<Id> {
    match scheme {
        "digest" => {
            let text = String::from_utf8_lossy(auth);
            let user = text.split(':').next().unwrap_or("");
            let hash = base64::engine::general_purpose::STANDARD.encode(Sha1::digest(auth));
            Some(Id {
                scheme: "digest".into(),
                id: format!("{user}:{hash}"),
            })
        }
        "ip" => state.conns.get(conn).map(|h| Id {
            scheme: "ip".into(),
            id: h.remote.ip().to_string(),
        }),
        _ => None,
    }
}
