//! The server's in-memory state behind one lock: the tree, watches, live connections, the
//! sessions' deadlines and holders ([`crate::sessions`]) and the writes waiting for their entry
//! ([`crate::proposals`]). Writes are ordered by [`State::propose`] and applied by
//! [`State::apply_committed`], which queues watch notifications before the reply of the write
//! that caused them.

use crate::command::Command;
use crate::connections::{ConnHandle, Connections};
use crate::limits::Outstanding;
use crate::metrics::Metrics;
use crate::ops::{reply_for, ReplyShape};
use crate::proposals::{Awaited, Proposals, Waiter};
use crate::sessions::Sessions;
use crate::watches::{ConnId, WatchKind, WatchManager};
use bytes::{Bytes, BytesMut};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use zooid_proto::*;
use zooid_replication::Consensus;
use zooid_tree::{ChangeEvent, DataTree, MultiOutput, OpOutput, Txn, TxnOp};

/// Where the reply to an ordered write goes once it is applied.
#[derive(Debug, Clone)]
pub struct Origin {
    pub conn: ConnId,
    pub xid: i32,
    pub shape: ReplyShape,
    /// The request's opcode and arrival, for its latency once answered.
    pub op: OpCode,
    pub received: Instant,
    /// The request's trace span, ended when it is answered.
    pub span: tracing::Span,
}

/// Request latency as `srvr`, `mntr` and `stat` report it.
#[derive(Debug, Default)]
pub struct Counters {
    pub latency_total_ms: u64,
    pub latency_count: u64,
    pub latency_min_ms: u64,
    pub latency_max_ms: u64,
}

pub struct State {
    /// This server's id, stamped into the commands it proposes.
    node_id: u64,
    /// Orders commands; `None` only until the server has started.
    consensus: Option<Consensus>,
    /// Writes proposed here, waiting for their entry to be applied.
    proposals: Proposals,
    pub tree: DataTree,
    pub watches: WatchManager,
    pub conns: Connections,
    /// Deadlines, holders and ids of the sessions (the path of a session through this server).
    pub sessions: Sessions,
    pub counters: Counters,
    /// Set when consensus failed: writes can no longer be ordered, so none is accepted.
    failed: bool,
    /// Set while the server shuts down: writes already parked finish, new ones are refused.
    stopping: bool,
    /// Part of a replicated ensemble: only the leader expires sessions, and the others tell
    /// it which of their sessions are alive.
    replicated: bool,
    /// False while this member is cut off from a quorum for longer than the grace period.
    serving: bool,
    /// A member that replicates and serves but never votes.
    observer: bool,
    /// ZooKeeper's `readonlymode.enabled`: cut off from the quorum, serve clients that asked
    /// for a read-only session instead of none.
    read_only_mode: bool,
    /// Serving read-only clients now (cut off, with `read_only_mode`).
    read_only: bool,
    metrics: Arc<Metrics>,
    /// Since when this member leads (ZooKeeper's `leader_uptime`).
    leading_since: Option<Instant>,
}

/// Wall-clock milliseconds since the epoch: the time stamped into txns (ctime / mtime).
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

impl State {
    /// `expiry_interval` is how often expiry is checked: deadlines are kept to that grain.
    pub fn new(
        node_id: u64,
        tree: DataTree,
        outstanding: Arc<Outstanding>,
        expiry_interval: Duration,
        metrics: Arc<Metrics>,
    ) -> Self {
        let mut s = State {
            node_id,
            consensus: None,
            proposals: Proposals::new(outstanding),
            tree,
            watches: WatchManager::default(),
            conns: Connections::default(),
            sessions: Sessions::new(node_id, expiry_interval),
            counters: Counters::default(),
            failed: false,
            stopping: false,
            replicated: false,
            serving: true,
            observer: false,
            read_only_mode: false,
            read_only: false,
            metrics,
            leading_since: None,
        };
        s.sessions_restored();
        s
    }

    /// After the state was restored (start, snapshot install, a backup swapped in): see
    /// [`Sessions::restored`].
    pub fn sessions_restored(&mut self) {
        self.sessions.restored(&self.tree);
    }

    /// Connects the state to the consensus layer that orders its writes.
    pub fn set_consensus(&mut self, consensus: Consensus, replicated: bool, observer: bool) {
        self.consensus = Some(consensus);
        self.replicated = replicated;
        self.sessions.set_replicated(replicated);
        self.observer = observer;
    }

    /// The consensus layer, if this server is part of a replicated ensemble.
    pub fn replicated_consensus(&self) -> Option<Consensus> {
        self.consensus.clone().filter(|_| self.replicated)
    }

    /// The other members as this leader sees them; `None` unless it leads an ensemble.
    pub fn followers(&self) -> Option<zooid_replication::Followers> {
        self.replicated_consensus()?.followers()
    }

    /// Whether this server expires sessions and collects containers: a standalone server, or
    /// the leader of an ensemble.
    pub fn leads(&self) -> bool {
        !self.replicated || self.consensus.as_ref().is_some_and(Consensus::is_leader)
    }

    /// The leader this server forwarded to is gone: writes parked here may have been taken by
    /// it and lost with it, and nothing would ever answer them. Their connections close (as
    /// ZooKeeper's followers close theirs when they lose the leader), so the clients resume
    /// their sessions and retry, not knowing whether those writes were applied, exactly as
    /// after any lost connection.
    pub fn leader_lost(&mut self) {
        for o in self.proposals.drain() {
            self.close_conn(o.conn);
        }
    }

    /// Closes every client connection at once and forgets the writes they were waiting for.
    pub fn drop_clients(&mut self) {
        self.proposals.drain();
        self.conns.kill_all();
    }

    /// Whether clients are served: false while cut off from a quorum.
    pub fn serving(&self) -> bool {
        self.serving
    }

    /// Cut off from a quorum for longer than the grace period: every client connection
    /// closes, whatever it has queued, and new ones are refused until the quorum is back, so
    /// that clients move to members that can serve them (as ZooKeeper's do).
    pub fn quorum_lost(&mut self) {
        self.serving = false;
        self.read_only = self.read_only_mode;
        self.drop_clients();
    }

    /// Back in a quorum. Read-only clients are let go: they reconnect for read-write
    /// sessions (their read-only sessions, unknown to the ensemble, end here).
    pub fn quorum_regained(&mut self) {
        self.serving = true;
        if std::mem::take(&mut self.read_only) {
            self.drop_clients();
            self.sessions.end_local();
        }
    }

    /// ZooKeeper's `readonlymode.enabled`.
    pub fn set_read_only_mode(&mut self, enabled: bool) {
        self.read_only_mode = enabled;
    }

    /// Whether this member serves read-only clients now (cut off from the quorum).
    pub fn read_only(&self) -> bool {
        !self.serving && self.read_only
    }

    /// The password of a session that may be resumed here: a replicated one still live, or
    /// one opened here while read-only.
    pub fn session_passwd(&self, session: i64) -> Option<[u8; 16]> {
        if let Some(p) = self.sessions.local_passwd(session) {
            return Some(p);
        }
        let live = self.sessions.is_live(session);
        self.tree
            .session(session)
            .filter(|_| live)
            .map(|m| m.passwd)
    }

    /// Whether a client resuming `session` here must first move it to this server through
    /// the log: it is held by another server (or, restored from an old snapshot, by none).
    /// A resume where the session already is costs nothing, so clients reconnecting to the
    /// same member during an election are taken at once. Should this member's copy of the
    /// owner be behind (a move elsewhere not applied yet), the client's first write here fails
    /// with SESSIONMOVED and closes the connection; the retry then moves the session here.
    pub fn must_move(&self, session: i64) -> bool {
        self.tree
            .session(session)
            .is_some_and(|m| m.owner != self.node_id)
    }

    /// Orders the move of `session` to this server; `origin` (the resuming connection) is
    /// answered once it is applied.
    pub fn move_here(&mut self, session: i64, origin: Origin) {
        let to = self.node_id;
        self.propose(session, TxnOp::MoveSession { to }, Some(origin));
    }

    /// Whether `conn` connected while this member was read-only.
    pub fn conn_read_only(&self, conn: ConnId) -> bool {
        self.conns.get(conn).is_some_and(|h| h.read_only)
    }

    /// ZooKeeper's name for this server's role: `standalone`, `leader`, `follower` or
    /// `observer`.
    pub fn mode(&self) -> &'static str {
        let learner = self.consensus.as_ref().is_some_and(|c| c.is_learner());
        if self.read_only() {
            return "read-only";
        }
        match (self.replicated, self.leads()) {
            (false, _) => "standalone",
            (true, true) => "leader",
            // An observer by its start-up config, or since a reconfig made it one.
            (true, false) if self.observer || learner => "observer",
            (true, false) => "follower",
        }
    }

    /// Whether this member now leads (told on every leader change).
    pub fn set_leading(&mut self, leads: bool) {
        match (leads, self.leading_since) {
            (true, None) => self.leading_since = Some(Instant::now()),
            (false, _) => self.leading_since = None,
            (true, Some(_)) => {}
        }
    }

    /// How long this member has led, in an ensemble.
    pub fn leading_for(&self) -> Option<Duration> {
        self.leading_since.map(|t| t.elapsed())
    }

    /// This server just became the leader: it did not see the other members' touches, so
    /// every session gets a fresh deadline rather than expiring on stale ones.
    pub fn refresh_deadlines(&mut self) {
        self.sessions.refresh(&self.tree);
    }

    /// A session's deadline passed on a server that does not lead: the leader decides, so
    /// the session stays resumable here until its close is applied.
    pub fn rearm(&mut self, session: i64) {
        if let Some(t) = self.tree.session(session).map(|m| m.timeout_ms) {
            self.sessions.arm_ms(session, t);
        }
    }

    /// The consensus layer, once started.
    pub fn consensus(&self) -> Option<Consensus> {
        self.consensus.clone()
    }

    /// Term, indexes and the followers' progress (`None` before consensus started).
    pub fn raft_figures(&self) -> Option<zooid_replication::RaftFigures> {
        self.consensus.as_ref().map(Consensus::figures)
    }

    /// The replicated membership, in an ensemble.
    pub fn members(&self) -> Option<zooid_replication::Members> {
        self.replicated_consensus().map(|c| c.members())
    }

    /// Whether this server is fit to take clients (Kubernetes' readiness): in a working
    /// quorum, not read-only, and caught up: it has applied everything its quorum had
    /// committed at the last check (every 250 ms, so a healthy member under load is caught
    /// up with a check that old). `Err` says why not.
    pub fn ready(&self) -> Result<(), String> {
        if self.failed {
            return Err("writes can no longer be ordered".into());
        }
        if self.stopping {
            return Err("shutting down".into());
        }
        if self.read_only {
            return Err("cut off from the quorum: serving read-only clients only".into());
        }
        if !self.serving {
            return Err("not in a working quorum".into());
        }
        let lag = self.raft_figures().map_or(0, |f| f.apply_lag());
        if lag > 0 {
            return Err(format!("{lag} committed entries not applied yet"));
        }
        Ok(())
    }

    /// How the log has been written since start, once the server runs.
    pub fn log_stats(&self) -> Option<zooid_replication::LogStats> {
        self.consensus.as_ref().map(Consensus::log_stats)
    }

    pub fn last_zxid(&self) -> i64 {
        self.tree.last_zxid()
    }

    /// Proposes a write for ordering. Its effects, and the reply to `origin`, come when the
    /// entry is applied ([`State::apply_command`]).
    pub fn propose(&mut self, session: i64, op: TxnOp, origin: Option<Origin>) {
        if self.failed || self.stopping {
            // No reply could ever come: the client is better off reconnecting elsewhere.
            if let Some(o) = origin {
                self.close_conn(o.conn);
            }
            return;
        }
        let trace = origin
            .as_ref()
            .and_then(|o| crate::telemetry::trace_parent(&o.span));
        let proposal = match origin {
            Some(o) => {
                if let Some(h) = self.conns.get_mut(o.conn) {
                    h.pending_writes += 1;
                }
                self.proposals.park(o)
            }
            None => 0,
        };
        let cmd = Command {
            time: now_ms(),
            session,
            origin_node: self.node_id,
            proposal,
            op,
            trace,
        };
        match &self.consensus {
            Some(c) => c.propose(cmd.encode()),
            None => tracing::error!("write proposed before the server started; dropped"),
        }
    }

    /// Proposes a txn of the server's own whose result someone waits for; `None` if writes
    /// can no longer be ordered here. The receiver fails if the txn may have been lost (a
    /// leader change, the quorum lost): whether it was applied is then unknown.
    pub fn propose_awaited(&mut self, op: TxnOp) -> Option<Awaited> {
        if self.failed || self.stopping {
            return None;
        }
        let consensus = self.consensus.as_ref()?;
        let (proposal, rx) = self.proposals.await_result();
        let cmd = Command {
            time: now_ms(),
            session: 0,
            origin_node: self.node_id,
            proposal,
            op,
            trace: None,
        };
        consensus.propose(cmd.encode());
        Some(rx)
    }

    /// Applies a committed command at log index `zxid`.
    pub fn apply_command(&mut self, zxid: i64, bytes: &[u8]) {
        let cmd = match Command::decode(bytes) {
            Ok(c) => c,
            Err(e) => {
                // Every replica decodes the same bytes the same way, so skipping keeps them
                // identical; it can only mean a bug, so say so loudly.
                tracing::error!("undecodable command at zxid {zxid}: {e}");
                return;
            }
        };
        let mine = cmd.origin_node == self.node_id && cmd.proposal != 0;
        let (origin, caller) = match mine.then(|| self.proposals.take(cmd.proposal)).flatten() {
            Some(Waiter::Client(o)) => (Some(o), None),
            Some(Waiter::Caller(c)) => (None, Some(c)),
            None => (None, None),
        };
        let span = cmd
            .trace
            .as_ref()
            .map(|t| crate::telemetry::apply_span(t, zxid, cmd.op.kind(), self.node_id));
        let _entered = span.as_ref().map(|s| s.enter());
        let txn = Txn {
            zxid,
            time: cmd.time,
            session: cmd.session,
            // A proposal number means a client of that server is waiting for the answer;
            // without one the server proposed it by itself (expiry, container cleanup).
            origin: (cmd.proposal != 0).then_some(cmd.origin_node),
            op: cmd.op,
        };
        let restore = matches!(txn.op, TxnOp::Restore { .. });
        let result = self.apply_committed(txn, origin);
        if restore && matches!(result, Ok(OpOutput::Restored { .. })) {
            self.restored();
        }
        if let Some(c) = caller {
            let _ = c.send(result);
        }
    }

    /// A backup replaced the whole state: as after a snapshot install, the clients are let
    /// go (their watches and cached views belong to the state before), and the backup's
    /// sessions get fresh deadlines so their clients can resume them.
    fn restored(&mut self) {
        self.drop_clients();
        self.sessions_restored();
        tracing::info!(
            "restored a backup: {} nodes, {} sessions",
            self.tree.node_count(),
            self.tree.sessions().count()
        );
    }

    /// Commands proposed here that will not be applied (see `Applier::lost`): their clients'
    /// connections close, so that they reconnect and retry rather than wait for ever.
    pub fn lost(&mut self, commands: &[&[u8]]) {
        for bytes in commands {
            let Ok(cmd) = Command::decode(bytes) else {
                continue;
            };
            if cmd.origin_node != self.node_id || cmd.proposal == 0 {
                continue;
            }
            // A caller awaiting it hears so when its sender goes.
            if let Some(Waiter::Client(o)) = self.proposals.take(cmd.proposal) {
                self.close_conn(o.conn);
            }
        }
    }

    /// Applies an ordered txn: notifications first, then the reply to its origin.
    fn apply_committed(&mut self, txn: Txn, origin: Option<Origin>) -> Result<OpOutput, ErrorCode> {
        let zxid = txn.zxid;
        let session = txn.session;
        let is_close = matches!(txn.op, TxnOp::CloseSession);
        let created = match txn.op {
            TxnOp::CreateSession { timeout_ms, .. } => Some(timeout_ms),
            _ => None,
        };
        let moved_to = match txn.op {
            TxnOp::MoveSession { to } => Some(to),
            _ => None,
        };
        let applied = self.tree.apply(txn);
        for ev in &applied.events {
            self.notify(ev, zxid);
        }
        if is_close {
            self.sessions.forget(session);
            // Expired by the leader: the client, wherever it is connected, is told by losing
            // its connection (an explicit close is answered first, below).
            if let Some(conn) = self.sessions.holder(session) {
                if origin.as_ref().map(|o| o.conn) != Some(conn) {
                    self.sessions.release(session);
                    self.kill_conn(conn);
                }
            }
        }
        if moved_to.is_some_and(|to| to != self.node_id) && applied.result.is_ok() {
            // The client resumed its session on another server: a connection it left here is
            // stale, and anything it still sent would fail with SESSIONMOVED.
            if let Some(conn) = self.sessions.release(session) {
                self.kill_conn(conn);
            }
        }
        if let Some(t) = created {
            // Every member knows every session's deadline, so that a client can resume on
            // any of them.
            self.sessions.arm_new(session, t);
        }
        let last = self.tree.last_zxid();
        let Some(o) = origin else {
            return applied.result;
        };
        let moved = matches!(
            applied.result,
            Err(ErrorCode::SessionMoved)
                | Ok(OpOutput::Multi(MultiOutput::Aborted {
                    code: ErrorCode::SessionMoved,
                    ..
                }))
        );
        let mut b = BytesMut::new();
        match (&o.shape, &applied.result) {
            // As ZooKeeper does: no answer, the connection closes (the client has moved on).
            _ if moved => {
                self.sessions.release(session);
                self.kill_conn(o.conn);
            }
            (ReplyShape::Connect { read_only, .. }, Err(_)) => {
                // The session ended while its resumption was ordered.
                let resp = ConnectResponse::expired(*read_only);
                encode_frame(&mut b, |b| resp.encode(b));
                self.close_conn(o.conn);
            }
            (
                ReplyShape::Connect {
                    timeout_ms,
                    read_only,
                },
                Ok(_),
            ) => {
                let passwd = self.tree.session(session).map_or([0; 16], |m| m.passwd);
                let resp = ConnectResponse {
                    protocol_version: 0,
                    timeout_ms: *timeout_ms,
                    session_id: session,
                    passwd,
                    read_only: *read_only,
                };
                encode_frame(&mut b, |b| resp.encode(b));
            }
            (shape, Ok(out)) => {
                let resp = reply_for(shape, out.clone());
                encode_reply(&mut b, o.xid, last, Ok(&resp));
            }
            (_, Err(e)) => encode_reply(&mut b, o.xid, last, Err(*e)),
        }
        if !b.is_empty() {
            self.send_to(o.conn, b.freeze());
            if !matches!(o.shape, ReplyShape::Connect { .. }) {
                self.record_request(o.op, true, o.received.elapsed());
            }
            o.span.record("zxid", format_args!("0x{zxid:x}"));
        }
        if let Some(h) = self.conns.get_mut(o.conn) {
            h.pending_writes = h.pending_writes.saturating_sub(1);
            h.write_done.notify_one();
        }
        // The client was waiting on this server, not silent: a write that took long to order
        // (the connection was not read meanwhile) must not cost it its session.
        if !is_close {
            self.sessions.touch(session);
        }
        if o.shape == ReplyShape::CloseSession {
            self.close_conn(o.conn);
        }
        applied.result
    }

    /// Sends `ev` to the connections watching for it.
    fn notify(&mut self, ev: &ChangeEvent, zxid: i64) {
        let targets = self.watches.trigger(ev);
        if targets.is_empty() {
            return;
        }
        let mut b = BytesMut::new();
        encode_notification(
            &mut b,
            zxid,
            &WatcherEvent {
                event_type: ev.kind as i32,
                state: STATE_SYNC_CONNECTED,
                path: ev.path.clone(),
            },
        );
        let frame = b.freeze();
        for c in targets {
            self.conns.notify(c, frame.clone());
        }
    }

    /// A membership change was applied: `/zookeeper/config` shows the new members, and its
    /// watchers are told. A single server's membership has no addresses: its config node stays
    /// empty, as a standalone ZooKeeper's does.
    pub fn membership_changed(&mut self, members: &zooid_replication::Members) {
        if members.members.iter().all(|m| m.spec.is_empty()) {
            return;
        }
        let text = crate::reconfig::config_text(members);
        let zxid = members.version as i64;
        let ev = self.tree.set_config(text.into(), zxid, now_ms());
        self.notify(&ev, zxid);
    }

    /// Writes of `conn` not yet applied.
    pub fn pending_writes(&self, conn: ConnId) -> usize {
        self.conns.get(conn).map_or(0, |h| h.pending_writes)
    }

    /// Queues a read's reply on a connection, to be encoded outside the lock (counted as sent).
    pub fn send_reply(&mut self, conn: ConnId, reply: crate::reply::Reply) {
        self.conns.send_reply(conn, reply);
    }

    /// Queues a frame on a connection (counted as sent).
    pub fn send_to(&mut self, conn: ConnId, frame: Bytes) {
        self.conns.send(conn, frame);
    }

    /// Consensus failed: closes every connection, so that clients move to another server
    /// instead of waiting for replies that cannot come, and refuses writes from now on.
    pub fn fail(&mut self) {
        self.failed = true;
        self.proposals.drain();
        self.conns.close_all();
    }

    /// The server is shutting down: writes already parked finish, new ones close their
    /// connection (the client reconnects elsewhere or after the restart).
    pub fn stop_taking_writes(&mut self) {
        self.stopping = true;
    }

    /// Writes proposed here and not yet applied.
    pub fn outstanding(&self) -> usize {
        self.proposals.parked()
    }

    /// Asks a connection's writer to flush and close.
    pub fn close_conn(&mut self, conn: ConnId) {
        self.conns.close(conn);
    }

    /// Closes a connection at once, dropping what it has queued.
    pub fn kill_conn(&mut self, conn: ConnId) {
        self.conns.kill(conn);
    }

    /// Asks every connection to flush and close.
    pub fn close_all(&mut self) {
        self.conns.close_all();
    }

    /// Binds a session to a connection, closing any other connection that held it.
    pub fn attach(&mut self, conn: ConnId, handle: ConnHandle, timeout: Duration) {
        let session = handle.session;
        if let Some(old) = self.sessions.hold(session, conn) {
            // The session moved: nothing more is meant for the old connection.
            self.kill_conn(old);
        }
        self.conns.insert(conn, handle);
        self.sessions.arm(session, timeout);
    }

    /// Forgets a connection: its watches go, its session lives on until its deadline.
    pub fn detach(&mut self, conn: ConnId) {
        if let Some(h) = self.conns.remove(conn) {
            self.sessions.released_by(h.session, conn);
        }
        self.watches.remove_conn(conn);
    }

    /// Ends a session opened while read-only, if `session` is one: it has nothing in the
    /// replicated state to close.
    pub fn expire_local(&mut self, session: i64) -> bool {
        let Some(holder) = self.sessions.expire_local(session) else {
            return false;
        };
        if let Some(conn) = holder {
            self.kill_conn(conn);
        }
        true
    }

    /// Expires a session: closes it through the log (deleting its ephemerals) and drops its
    /// connection, if any.
    pub fn expire(&mut self, session: i64) {
        if let Some(conn) = self.sessions.release(session) {
            // Even if its client has stopped reading and its queue is full.
            self.kill_conn(conn);
        }
        self.sessions.forget(session);
        if self.tree.session(session).is_some() {
            self.propose(session, TxnOp::CloseSession, None);
        }
    }

    /// Registers a one-shot or persistent watch for a connection.
    pub fn watch(&mut self, conn: ConnId, kind: WatchKind, path: &str) {
        self.watches.add(conn, kind, path);
    }

    /// A request answered `elapsed` after it arrived: `srvr`'s latency figures (whole
    /// milliseconds, as ZooKeeper's) and the metrics.
    pub fn record_request(&mut self, op: OpCode, write: bool, elapsed: Duration) {
        let ms = elapsed.as_millis() as u64;
        let c = &mut self.counters;
        if c.latency_count == 0 || ms < c.latency_min_ms {
            c.latency_min_ms = ms;
        }
        c.latency_max_ms = c.latency_max_ms.max(ms);
        c.latency_total_ms += ms;
        c.latency_count += 1;
        self.metrics.request(op.name(), write, elapsed);
    }
}
