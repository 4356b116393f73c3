//! One client connection: four-letter word or handshake, then a loop of request frames.
//!
//! Replies and notifications share one ordered, bounded outbound queue ([`Outbox`]). Before
//! each request the loop waits until the connection may take one: fewer than
//! `max-conn-outstanding` of its writes are waiting for ordering, fewer than
//! `global-outstanding-limit` across the server, and its outbound queue is within budget.
//! Until then its socket is not read, so a client cannot make the server queue without end.

use super::handshake::Answered;
use super::{dispatch, handshake, reconfig};
use crate::observe::fourlw;
use crate::observe::metrics::Limit;
use crate::runtime::limits::Admitted;
use crate::runtime::outbox::{self, Carrier, Outbox};
use crate::runtime::Node;
use crate::session::ConnId;
use crate::tls;
use bytes::{Bytes, BytesMut};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::Notify;
use tracing::debug;
use zooid_proto::*;

/// A connection's first read buffer: a handshake and most requests fit. Every connection has
/// one for its whole life, so it is small: with 50,000 sessions, each KiB is 50 MB.
const READ_BUF_START: usize = 1024;

/// A read buffer grown past this by a large frame is given back once the frame is read.
const READ_BUF_KEEP: usize = 64 * 1024;

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
    #[error("no room for a new session within {0:?} (global-outstanding-limit)")]
    NoRoom(Duration),
    #[error("closed by server")]
    Closed,
    #[error("server stopping")]
    Stopping,
}

/// Serves one accepted socket until it closes. `_admitted` holds the connection's place
/// under the per-address limit until then.
pub async fn serve(node: Arc<Node>, stream: TcpStream, conn: ConnId, _admitted: Admitted) {
    let remote = stream
        .peer_addr()
        .unwrap_or_else(|_| SocketAddr::from(([0, 0, 0, 0], 0)));
    let _ = stream.set_nodelay(true);
    let (rd, wr) = stream.into_split();
    if let Err(e) = run(&node, rd, wr, Carrier::Plain, conn, remote, Vec::new()).await {
        debug!(conn, %remote, "connection ended: {e}");
    }
    node.state().unlink(conn);
}

/// Serves one TLS connection, its handshake done, as [`serve`] serves a plain one.
pub async fn serve_tls(
    node: Arc<Node>,
    stream: tokio_rustls::server::TlsStream<tls::Socket>,
    remote: SocketAddr,
    conn: ConnId,
    _admitted: Admitted,
) {
    // ZooKeeper's x509 scheme: the client certificate's subject is an identity of the
    // connection from its first request (and the super user's, if configured so).
    let mut ids = Vec::new();
    let cert = stream
        .get_ref()
        .1
        .peer_certificates()
        .and_then(|c| c.first());
    if let Some(dn) = cert.and_then(|c| tls::x509_identity(c)) {
        if node.config.x509_super_user.as_deref() == Some(dn.as_str()) {
            ids.push(Id {
                scheme: "super".into(),
                id: String::new(),
            });
        }
        ids.push(Id {
            scheme: "x509".into(),
            id: dn,
        });
    }
    let (rd, wr) = tokio::io::split(stream);
    if let Err(e) = run(&node, rd, wr, Carrier::Tls, conn, remote, ids).await {
        debug!(conn, %remote, "TLS connection ended: {e}");
    }
    node.state().unlink(conn);
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
    node: &Arc<Node>,
    mut rd: R,
    mut wr: W,
    carrier: Carrier,
    conn: ConnId,
    remote: SocketAddr,
    ids: Vec<Id>,
) -> Result<(), ConnError>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin + Send + 'static,
{
    let config = &node.config;
    let max = config.max_frame_bytes;
    let mut buf = BytesMut::with_capacity(READ_BUF_START);
    let wait = config.handshake_timeout();
    let creq = match tokio::time::timeout(wait, opening(&mut rd, &mut buf, max)).await {
        Err(_) => {
            node.metrics.limited(Limit::Handshake);
            return Err(ConnError::HandshakeTimeout(wait));
        }
        Ok(Err(e)) => return Err(e),
        Ok(Ok(Opening::Word(word))) => {
            let text = node.with_view(|view| fourlw::answer(word, config, view));
            wr.write_all(text.as_bytes()).await?;
            wr.shutdown().await?;
            return Ok(());
        }
        Ok(Ok(Opening::Connect(creq))) => creq,
    };

    if creq.session_id == 0 {
        // A new session is one more write to order: under load it waits, as requests do,
        // for room under `global-outstanding-limit` (its connection meanwhile not served),
        // so that a crowd of newcomers slows down rather than swamps the log. A resumed
        // session never waits: reconnects and revalidation come first.
        match tokio::time::timeout(wait, room_for_new_session(node, &mut rd, &mut buf)).await {
            Ok(r) => r?,
            Err(_) => {
                node.metrics.limited(Limit::GlobalOutstanding);
                return Err(ConnError::NoRoom(wait));
            }
        }
    }
    let closed = Arc::new(Notify::new());
    let limits = outbox::Limits {
        budget: config.max_conn_outbound_bytes,
        hard_limit: config.outbound_hard_limit(),
        stall_timeout: config.slow_client_timeout(),
        metrics: node.metrics.clone(),
        carrier,
    };
    let outbox = Outbox::start(wr, remote, limits, closed.clone());
    let write_done = Arc::new(Notify::new());
    let mut answered = handshake::answer(node, conn, remote, &creq, &outbox, &write_done, false);
    if let Answered::Unknown = answered {
        // Caught up with the leader first (a read index), then the session is known or gone.
        let within = Duration::from_millis(creq.timeout_ms.clamp(1000, 60_000) as u64);
        let caught_up = match node.replicated_consensus() {
            Some(c) => Box::pin(c.read_barrier(within)).await.is_ok(),
            None => true,
        };
        answered = if caught_up {
            handshake::answer(node, conn, remote, &creq, &outbox, &write_done, true)
        } else {
            // No leader to ask: the client tries another server, its session untouched.
            Answered::Close
        };
    }
    let Answered::Serve(session) = answered else {
        // Expired / refused: the writer flushes the answer (if any) and closes.
        outbox.close();
        closed.notified().await;
        return Ok(());
    };
    if !ids.is_empty() {
        let mut state = node.state();
        for id in ids {
            state.add_auth(conn, id);
        }
    }

    let mut stopping = node.stopping();
    // This connection's writes not yet applied, as of the last look under the lock. Only
    // this task adds to them, so until the next look the real count is at most this.
    let mut pending = node.state().pending_writes(conn);
    loop {
        let next = async {
            wait_for_capacity(node, conn, &outbox, &write_done, &mut pending).await;
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
        let body = body?;
        // Without a header there is no xid to answer: the connection closes.
        let Ok(req) = ClientRequest::decode(&body) else {
            return Ok(());
        };
        let (must_wait, barrier) = {
            let mut state = node.state();
            // Any request, pings first, shows the client alive: its session is touched on
            // receipt, not when the request's turn comes.
            state.received(conn);
            // Anything but a write (and a ping, whose reply clients match by its own xid)
            // waits until this client's earlier writes are applied, so it sees them and its
            // reply cannot overtake theirs. Writes are ordered by the log.
            let must_wait = state.pending_writes(conn) != 0 && req.opcode.waits_for_own_writes();
            // `sync` and `reconfig` wait on the leader (a read-only session is refused them).
            let barrier = matches!(req.opcode, OpCode::Sync | OpCode::Reconfig)
                && !state.conn_read_only(conn)
                && node.replicated_consensus().is_some();
            if !must_wait && !barrier {
                // The common case: answered (or proposed) under this one hold of the lock.
                let keep_open = dispatch::request(&mut state, config, conn, session, req);
                pending = state.pending_writes(conn);
                if !keep_open {
                    return Ok(());
                }
                continue;
            }
            (must_wait, barrier)
        };
        if must_wait {
            wait_drained(node, conn, &write_done).await;
        }
        if barrier && req.opcode == OpCode::Reconfig {
            // A reconfig waits for the leader to change the membership and for this member
            // to apply it; like sync, it holds up this client's later requests meanwhile.
            // Boxed, as the sync below: rare paths must not make every connection's task as
            // large as their futures (openraft's waits are large).
            if !Box::pin(reconfig::answer(node, conn, req)).await {
                closed.notified().await;
                return Ok(());
            }
            continue;
        }
        if barrier {
            // In an ensemble, `sync` waits until this member has applied everything
            // acknowledged anywhere before it (a read index from the leader). Nothing else of
            // this client's is read meanwhile, so its later requests stay in order behind it.
            let within = Duration::from_millis(u64::from(node.config.max_session_timeout()));
            let barrier = match node.replicated_consensus() {
                Some(c) => Box::pin(c.read_barrier(within)).await,
                None => Ok(()),
            };
            if let Err(e) = barrier {
                // No leader to vouch for the state: the client reconnects and tries again.
                debug!(%remote, "sync failed: {e}; closing the connection");
                node.state().close_conn(conn);
                closed.notified().await;
                return Ok(());
            }
        }
        let mut state = node.state();
        let keep_open = dispatch::request(&mut state, config, conn, session, req);
        pending = state.pending_writes(conn);
        if !keep_open {
            return Ok(());
        }
    }
}

/// Waits until the connection may take another request (see the module comment).
/// `pending` is the connection's writes in flight as last seen; it is looked at again under
/// the lock only when it is at the limit.
async fn wait_for_capacity(
    node: &Node,
    conn: ConnId,
    outbox: &Outbox,
    write_done: &Notify,
    pending: &mut usize,
) {
    let per_conn = node.config.max_conn_outstanding;
    loop {
        if !outbox.has_room() {
            outbox.room().await;
            continue;
        }
        if *pending >= per_conn {
            // notify_one keeps a permit, so a write applied since the last look wakes us.
            write_done.notified().await;
            *pending = node.state().pending_writes(conn);
            continue;
        }
        node.outstanding.wait_for_room().await;
        if outbox.has_room() {
            return;
        }
    }
}

/// Waits for room under the global outstanding limit, noticing meanwhile a client that gives
/// up (what it pipelines behind its handshake is kept in `buf`, up to READ_BUF_KEEP).
async fn room_for_new_session<R: AsyncRead + Unpin>(
    node: &Node,
    rd: &mut R,
    buf: &mut BytesMut,
) -> Result<(), ConnError> {
    let room = node.outstanding.wait_for_room();
    tokio::pin!(room);
    loop {
        tokio::select! {
            _ = &mut room => return Ok(()),
            read = rd.read_buf(buf), if buf.len() < READ_BUF_KEEP => {
                if read? == 0 {
                    return Err(ConnError::Eof);
                }
            }
        }
    }
}

/// Waits until the connection has no write in flight.
async fn wait_drained(node: &Node, conn: ConnId, write_done: &Notify) {
    while node.state().pending_writes(conn) != 0 {
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
    if buf.is_empty() && buf.capacity() > READ_BUF_KEEP {
        // A large frame grew the buffer: it is not kept for the life of the connection.
        *buf = BytesMut::with_capacity(READ_BUF_START);
    }
    loop {
        if let Some(range) = frame_bounds(buf, max)? {
            let frame = buf.split_to(range.end);
            return Ok(frame.freeze().slice(4..));
        }
        if let Some(len) = buf.get(..4) {
            // The length is known (and within `max`): room for the frame, in steps of at most
            // READ_BUF_KEEP, so that four bytes claiming a large frame reserve no more than
            // that until its bytes arrive.
            let len = i32::from_be_bytes([len[0], len[1], len[2], len[3]]) as usize;
            let missing = (4 + len).saturating_sub(buf.len());
            buf.reserve(missing.min(READ_BUF_KEEP));
        }
        if rd.read_buf(buf).await? == 0 {
            return Err(ConnError::Eof);
        }
    }
}
