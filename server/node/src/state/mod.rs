//! The server's state as one core that decides and returns effects: the replicated tree, the
//! watches and connections it serves, the sessions' deadlines and holders
//! ([`crate::session`]), the writes waiting for their entry ([`proposals`]) and this member's
//! role ([`role`]). It touches no socket, no consensus handle and no metric: each call leaves
//! [`Effect`]s (replies, events, closes, commands to order, latencies) that the runtime takes
//! with [`State::take_effects`] and carries out in order.
//!
//! Writes are ordered by [`State::propose`] and applied by [`State::apply`], which queues watch
//! events before the reply of the write that caused them; reads are answered by
//! [`reads::execute`].

pub mod command;
pub mod connections;
pub mod effect;
pub mod membership;
pub mod proposals;
pub mod reads;
pub mod reply;
pub mod role;
pub mod watches;
pub mod writes;

pub use proposals::Origin;

use crate::clock::now_ms;
use crate::session::ConnId;
use crate::session::Sessions;
use crate::state::command::{Command, IdsCache};
use crate::state::connections::{Conn, Connections};
use crate::state::effect::{Answered, Effect};
use crate::state::proposals::{Awaited, Proposals, Waiter};
use crate::state::role::Position;
use crate::state::watches::{WatchKind, WatchManager};
use crate::state::writes::{reply_for, ReplyShape};
use bytes::{Bytes, BytesMut};
use std::sync::Arc;
use std::time::{Duration, Instant};
use zooid_proto::*;
use zooid_tree::{ChangeEvent, Checks, DataTree, MultiOutput, OpOutput, Txn, TxnOp};

/// Whether writes are taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Intake {
    Open,
    /// The server shuts down: writes already parked finish, new ones are refused.
    Stopping,
    /// Consensus failed: writes can no longer be ordered, so none is accepted.
    Failed,
}

pub struct State {
    /// This server's id, stamped into the commands it proposes.
    node_id: u64,
    /// Writes proposed here, waiting for their entry to be applied.
    proposals: Proposals,
    tree: DataTree,
    watches: WatchManager,
    conns: Connections,
    /// Deadlines, holders and ids of the sessions (the path of a session through this server).
    sessions: Sessions,
    /// What this member is to its ensemble (standalone, leader, follower...).
    position: Position,
    intake: Intake,
    /// What the runtime must carry out, in order (see [`State::take_effects`]).
    effects: Vec<Effect>,
    /// Sessions this member expired (as their leader, or read-only ones) since start.
    expired: u64,
    /// ZooKeeper's `enforceQuota`, stamped on the writes proposed here.
    enforce_quota: bool,
    /// ZooKeeper's `skipACL`: no ACL is checked (reads, the writes proposed here, watches).
    skip_acl: bool,
    /// SASL DIGEST-MD5's users, when configured, and the one who is the super user.
    sasl_users: Option<crate::client::sasl::SaslUsers>,
    sasl_super_user: Option<String>,
    /// The client identities of the commands applied lately, shared between them.
    ids_cache: IdsCache,
}

impl State {
    /// `expiry_interval` is how often expiry is checked: deadlines are kept to that grain.
    /// `replicated`: a member of an ensemble (else a standalone server).
    pub fn new(node_id: u64, tree: DataTree, expiry_interval: Duration, replicated: bool) -> Self {
        let mut sessions = Sessions::new(node_id, expiry_interval);
        sessions.set_replicated(replicated);
        let mut s = State {
            node_id,
            proposals: Proposals::new(),
            tree,
            watches: WatchManager::default(),
            conns: Connections::default(),
            sessions,
            position: Position::new(node_id, replicated),
            intake: Intake::Open,
            effects: Vec::new(),
            expired: 0,
            enforce_quota: false,
            skip_acl: false,
            sasl_users: None,
            sasl_super_user: None,
            ids_cache: IdsCache::default(),
        };
        s.sessions_restored();
        s
    }

    /// Where the commands being applied find their client identities (see
    /// [`Command::decode_with`]).
    pub fn ids_cache(&mut self) -> &mut IdsCache {
        &mut self.ids_cache
    }

    /// SASL DIGEST-MD5 logins are taken for these users from now on.
    pub fn set_sasl_users(
        &mut self,
        users: crate::client::sasl::SaslUsers,
        super_user: Option<String>,
    ) {
        self.sasl_users = Some(users);
        self.sasl_super_user = super_user;
    }

    /// One step of a connection's SASL DIGEST-MD5 exchange: the challenge for its first
    /// token, then, for its answer, the server's proof (and the identity `sasl:<user>` for the
    /// connection); `Err` says why it failed (the connection then closes, AUTHFAILED).
    pub fn sasl_step(&mut self, conn: ConnId, token: &[u8]) -> Result<Vec<u8>, String> {
        use crate::client::sasl;
        let Some(users) = &self.sasl_users else {
            return Err("SASL is not configured (sasl-jaas-file)".into());
        };
        let h = self.conns.get_mut(conn).ok_or("the connection is gone")?;
        let Some(nonce) = h.sasl_nonce.take() else {
            let nonce = sasl::new_nonce();
            let challenge = sasl::challenge(&nonce);
            h.sasl_nonce = Some(nonce);
            return Ok(challenge);
        };
        let (user, proof) = sasl::verify(users, &nonce, token)?;
        if self.sasl_super_user.as_deref() == Some(user.as_str()) {
            self.add_auth(
                conn,
                Id {
                    scheme: "super".into(),
                    id: String::new(),
                },
            );
        }
        self.add_auth(
            conn,
            Id {
                scheme: "sasl".into(),
                id: user,
            },
        );
        Ok(proof)
    }

    /// No ACL is checked from now on (`skipACL`).
    pub fn set_skip_acl(&mut self, on: bool) {
        self.skip_acl = on;
    }

    /// Whether connection `conn` may change the membership: as ZooKeeper asks, WRITE on
    /// `/zookeeper/config` (whose ACL lets only the super user), unless `skipACL`.
    pub fn may_reconfig(&self, conn: ConnId) -> bool {
        if self.skip_acl {
            return true;
        }
        let acl = self
            .tree
            .get("/zookeeper/config")
            .map_or(&[][..], |n| &n.acl[..]);
        let ids = self.conns.get(conn).map_or(&[][..], |h| &h.auth_ids[..]);
        zooid_tree::acl::permits(acl, ids, perms::WRITE)
    }

    /// Whether ACLs are checked here (`skipACL` is off).
    pub fn checks_acls(&self) -> bool {
        !self.skip_acl
    }

    /// Writes proposed here from now on fail QUOTAEXCEEDED past a quota's hard limit.
    pub fn set_enforce_quota(&mut self, on: bool) {
        self.enforce_quota = on;
    }

    /// What the calls since the last take decided, in the order it must happen; the runtime
    /// carries it out (sockets, consensus, metrics) before it lets go of the state.
    pub fn take_effects(&mut self) -> Vec<Effect> {
        std::mem::take(&mut self.effects)
    }

    /// Whether any effect waits to be carried out.
    pub fn has_effects(&self) -> bool {
        !self.effects.is_empty()
    }

    /// Gives back the (emptied) buffer of [`State::take_effects`], so its allocation is kept.
    pub fn reuse_effects(&mut self, mut buffer: Vec<Effect>) {
        if self.effects.is_empty() {
            buffer.clear();
            self.effects = buffer;
        }
    }

    /// This server's id.
    pub fn node_id(&self) -> u64 {
        self.node_id
    }

    /// The replicated tree, to read.
    pub fn tree(&self) -> &DataTree {
        &self.tree
    }

    /// The watches registered here.
    pub fn watches(&self) -> &WatchManager {
        &self.watches
    }

    /// The client connections held here.
    pub fn conns(&self) -> &Connections {
        &self.conns
    }

    /// The sessions' deadlines and holders.
    pub fn sessions(&self) -> &Sessions {
        &self.sessions
    }

    /// This member's role and what follows from it.
    pub fn position(&self) -> &Position {
        &self.position
    }

    /// A snapshot from the leader replaced the state: as ZooKeeper does on a resync, the
    /// clients are let go, so none waits on a parked write or a watch that the new state no
    /// longer knows (at start there are none).
    pub fn install(&mut self, tree: DataTree) {
        self.drop_clients();
        self.tree = tree;
        self.sessions_restored();
    }

    /// After the state was restored (start, snapshot install, a backup swapped in): see
    /// [`Sessions::restored`].
    pub fn sessions_restored(&mut self) {
        self.sessions.restored(&self.tree);
    }

    /// Whether this server expires sessions and collects containers: a standalone server, or
    /// the leader of an ensemble.
    pub fn leads(&self) -> bool {
        self.position.leads()
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
        let all: Vec<ConnId> = self.conns.ids().collect();
        self.effects.extend(all.into_iter().map(Effect::Kill));
    }

    /// Whether clients are served: false while cut off from a quorum.
    pub fn serving(&self) -> bool {
        self.position.serving()
    }

    /// Cut off from a quorum for longer than the grace period: every client connection
    /// closes, whatever it has queued, and new ones are refused until the quorum is back, so
    /// that clients move to members that can serve them (as ZooKeeper's do).
    pub fn quorum_lost(&mut self) {
        self.position.quorum_lost();
        self.drop_clients();
    }

    /// Back in a quorum. Read-only clients are let go: they reconnect for read-write
    /// sessions (their read-only sessions, unknown to the ensemble, end here). A leader that
    /// was cut off gives every session a fresh deadline before it expires any: their clients
    /// were let go and could not reach a member that serves, however alive.
    pub fn quorum_regained(&mut self) {
        let was_cut_off = !self.position.serving();
        if self.position.quorum_regained(Instant::now()) {
            self.drop_clients();
            self.sessions.end_local();
        }
        if was_cut_off && self.leads() {
            self.refresh_deadlines();
        }
    }

    /// ZooKeeper's `readonlymode.enabled`.
    pub fn set_read_only_mode(&mut self, enabled: bool) {
        self.position.set_read_only_mode(enabled);
    }

    /// A learner of the membership (an observer), by its start-up config or a reconfig.
    pub fn set_observer(&mut self, observer: bool) {
        self.position.set_observer(observer);
    }

    /// Whether this member serves read-only clients now (cut off from the quorum).
    pub fn read_only(&self) -> bool {
        self.position.read_only()
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

    /// ZooKeeper's name for this server's role: `standalone`, `leader`, `follower`,
    /// `observer` or `read-only`.
    pub fn mode(&self) -> &'static str {
        self.position.mode()
    }

    /// Consensus reports a new leader (or none): writes parked for a leader that is gone are
    /// let go, and a member that now leads gives every session a fresh deadline.
    pub fn leader_changed(&mut self, before: Option<u64>, now: Option<u64>) {
        if before.is_some() {
            self.leader_lost();
        }
        self.position.leader_changed(now, Instant::now());
        if now == Some(self.node_id) {
            self.refresh_deadlines();
        }
    }

    /// How long this member has led, in an ensemble.
    pub fn leading_for(&self) -> Option<Duration> {
        self.position.leading_for(Instant::now())
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

    pub fn last_zxid(&self) -> i64 {
        self.tree.last_zxid()
    }

    /// Proposes a write for ordering. Its effects, and the reply to `origin`, come when the
    /// entry is applied ([`State::apply`]).
    pub fn propose(&mut self, session: i64, op: TxnOp, origin: Option<Origin>) {
        if self.intake != Intake::Open {
            // No reply could ever come: the client is better off reconnecting elsewhere.
            if let Some(o) = origin {
                self.close_conn(o.conn);
            }
            return;
        }
        let trace = origin.as_ref().and_then(|o| o.trace);
        // The client's identities and this server's quota setting go with the op, for the
        // checks every member makes when it applies it.
        let checks = match &origin {
            Some(o) if op.is_checked() => Checks {
                ids: (!self.skip_acl).then(|| {
                    self.conns
                        .get(o.conn)
                        .map_or_else(|| Arc::from([]), |h| h.auth_ids.clone())
                }),
                quota: self.enforce_quota,
            },
            _ => Checks::default(),
        };
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
            checks,
        };
        self.effects.push(Effect::Propose(cmd.encode()));
    }

    /// Proposes a txn of the server's own whose result someone waits for; `None` if writes
    /// can no longer be ordered here. The receiver fails if the txn may have been lost (a
    /// leader change, the quorum lost): whether it was applied is then unknown.
    pub fn propose_awaited(&mut self, op: TxnOp) -> Option<Awaited> {
        if self.intake != Intake::Open {
            return None;
        }
        let (proposal, rx) = self.proposals.await_result();
        let cmd = Command {
            time: now_ms(),
            session: 0,
            origin_node: self.node_id,
            proposal,
            op,
            trace: None,
            checks: Checks::default(),
        };
        self.effects.push(Effect::Propose(cmd.encode()));
        Some(rx)
    }

    /// Applies the committed command at log index `zxid`.
    pub fn apply(&mut self, zxid: i64, cmd: Command) {
        let mine = cmd.origin_node == self.node_id && cmd.proposal != 0;
        let (origin, caller) = match mine.then(|| self.proposals.take(cmd.proposal)).flatten() {
            Some(Waiter::Client(o)) => (Some(o), None),
            Some(Waiter::Caller(c)) => (None, Some(c)),
            None => (None, None),
        };
        let txn = Txn {
            zxid,
            time: cmd.time,
            session: cmd.session,
            // A proposal number means a client of that server is waiting for the answer;
            // without one the server proposed it by itself (expiry, container cleanup).
            origin: (cmd.proposal != 0).then_some(cmd.origin_node),
            checks: cmd.checks,
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
            // A new session whose id was taken (see DataTree::apply): no answer, the client
            // connects again and gets another.
            (ReplyShape::Connect { .. }, Err(ErrorCode::RuntimeInconsistency)) => {
                tracing::error!("session id 0x{session:x} handed out twice: the second refused");
                self.sessions.released_by(session, o.conn);
                self.kill_conn(o.conn);
            }
            (ReplyShape::Connect { read_only, .. }, Err(_)) => {
                // The session ended while its resumption was ordered.
                tracing::info!("session 0x{session:x} ended while its move here was ordered");
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
                self.answered(Answered {
                    op: o.op,
                    write: true,
                    received: o.received,
                    span: o.span,
                    zxid,
                });
            }
        }
        if let Some(h) = self.conns.get_mut(o.conn) {
            h.pending_writes = h.pending_writes.saturating_sub(1);
            self.effects.push(Effect::WriteDone(o.conn));
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
        // Only watchers that may READ what changed are told (ZooKeeper 3.8's security fix);
        // the watch is used up all the same. Most ACLs let anyone read: decided once.
        let anyone_reads = self.skip_acl || zooid_tree::acl::permits(&ev.acl, &[], perms::READ);
        for conn in targets {
            let may_read = anyone_reads
                || self
                    .conns
                    .get(conn)
                    .is_some_and(|h| zooid_tree::acl::permits(&ev.acl, &h.auth_ids, perms::READ));
            if may_read && self.conns.notified(conn) {
                let frame = frame.clone();
                self.effects.push(Effect::Frame { conn, frame });
            }
        }
    }

    /// A membership change was applied: `/zookeeper/config` shows the new members, and its
    /// watchers are told. A single server's membership has no addresses: its config node stays
    /// empty, as a standalone ZooKeeper's does.
    pub fn membership_changed(&mut self, members: &zooid_replication::Members) {
        if members.members.iter().all(|m| m.spec.is_empty()) {
            return;
        }
        let text = crate::state::membership::config_text(members);
        let zxid = members.version as i64;
        let ev = self.tree.set_config(text.into(), zxid, now_ms());
        self.notify(&ev, zxid);
    }

    /// Writes of `conn` not yet applied.
    pub fn pending_writes(&self, conn: ConnId) -> usize {
        self.conns.get(conn).map_or(0, |h| h.pending_writes)
    }

    /// Queues a read's reply on a connection, to be encoded outside the lock (counted as sent).
    pub fn send_reply(&mut self, conn: ConnId, reply: crate::state::reply::Reply) {
        if self.conns.replied(conn) {
            self.effects.push(Effect::Reply { conn, reply });
        }
    }

    /// Queues a frame on a connection (counted as sent).
    pub fn send_to(&mut self, conn: ConnId, frame: Bytes) {
        if self.conns.replied(conn) {
            self.effects.push(Effect::Frame { conn, frame });
        }
    }

    /// Consensus failed: closes every connection, so that clients move to another server
    /// instead of waiting for replies that cannot come, and refuses writes from now on.
    pub fn fail(&mut self) {
        self.intake = Intake::Failed;
        self.proposals.drain();
        self.close_all();
    }

    /// The server is shutting down: writes already parked finish, new ones close their
    /// connection (the client reconnects elsewhere or after the restart).
    pub fn stop_taking_writes(&mut self) {
        if self.intake == Intake::Open {
            self.intake = Intake::Stopping;
        }
    }

    /// Whether writes can still be ordered here (consensus has not failed).
    pub fn failed(&self) -> bool {
        self.intake == Intake::Failed
    }

    /// Whether the server is shutting down.
    pub fn stopping(&self) -> bool {
        self.intake == Intake::Stopping
    }

    /// Writes proposed here and not yet applied.
    pub fn outstanding(&self) -> usize {
        self.proposals.parked()
    }

    /// Asks a connection's writer to flush and close.
    pub fn close_conn(&mut self, conn: ConnId) {
        self.effects.push(Effect::Close(conn));
    }

    /// Closes a connection at once, dropping what it has queued.
    pub fn kill_conn(&mut self, conn: ConnId) {
        self.effects.push(Effect::Kill(conn));
    }

    /// Asks every connection to flush and close.
    pub fn close_all(&mut self) {
        let all: Vec<ConnId> = self.conns.ids().collect();
        self.effects.extend(all.into_iter().map(Effect::Close));
    }

    /// Binds a session to a connection, closing any other connection that held it.
    pub fn attach(&mut self, id: ConnId, conn: Conn, timeout: Duration) {
        let session = conn.session;
        if let Some(old) = self.sessions.hold(session, id) {
            // The session moved: nothing more is meant for the old connection.
            self.kill_conn(old);
        }
        self.conns.insert(id, conn);
        self.sessions.arm(session, timeout);
    }

    /// A request was read from `conn`: counted, and its session touched (any request, pings
    /// first, shows the client alive, on receipt rather than when the request's turn comes).
    pub fn received(&mut self, conn: ConnId) {
        if let Some(session) = self.conns.received(conn) {
            self.sessions.touch(session);
        }
    }

    /// Adds an identity an auth packet proved to the connection.
    pub fn add_auth(&mut self, conn: ConnId, id: Id) {
        if let Some(h) = self.conns.get_mut(conn) {
            if !h.auth_ids.contains(&id) {
                let mut ids = h.auth_ids.to_vec();
                ids.push(id);
                h.auth_ids = ids.into();
            }
        }
    }

    /// A new session id, unique in the ensemble (see [`Sessions::new_id`]).
    pub fn new_session_id(&mut self) -> i64 {
        self.sessions.new_id()
    }

    /// Opens a session on this member alone, while it is read-only.
    pub fn open_local_session(&mut self) -> (i64, [u8; 16]) {
        self.sessions.open_local()
    }

    /// The client closes its session: a reconnect from now on finds it gone, as it will be.
    pub fn closing(&mut self, session: i64) {
        self.sessions.forget(session);
    }

    /// Touches another member reported (this one leads).
    pub fn touched_elsewhere(&mut self, sessions: &[i64]) {
        self.sessions.touched_elsewhere(sessions);
    }

    /// The expiry round at `now`: sessions past their deadline are expired (by the leader,
    /// through the log; read-only ones here), or kept for the leader to decide. Returns the
    /// sessions heard from since the last round, for a member to tell its leader.
    pub fn expire_due(&mut self, now: Instant) -> Vec<i64> {
        let leads = self.leads();
        for session in self.sessions.expired(now) {
            if self.expire_local(session) {
                self.expired += 1;
                tracing::info!("read-only session 0x{session:x} expired");
            } else if leads {
                self.expired += 1;
                tracing::info!("session 0x{session:x} expired");
                self.expire(session);
            } else {
                self.rearm(session);
            }
        }
        let touched = self.sessions.take_touched();
        if leads {
            return Vec::new();
        }
        touched
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
    /// Sessions this member has expired since start.
    pub fn sessions_expired(&self) -> u64 {
        self.expired
    }

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

    /// A request was answered: its latency goes to the figures and its span gets the zxid.
    pub fn answered(&mut self, answered: Answered) {
        self.effects.push(Effect::Answered(answered));
    }
}

#[cfg(test)]
mod tests;
