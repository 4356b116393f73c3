//! [`Node`]: what the connection tasks, the admin API and the background duties share. It
//! holds the state's one lock and, beside the state under that lock, the socket side of each
//! connection; every hold of the lock ends by carrying out what the state decided
//! ([`StateGuard`]).

use crate::config::Config;
use crate::observe::metrics::{Limit, Metrics};
use crate::observe::monitor::{Latency, View};
use crate::runtime::limits::{connection_ceiling, Admitted, ClientCounts, Outstanding, Refused};
use crate::runtime::outbox::Outbox;
use crate::session::ConnId;
use crate::state::effect::Effect;
use crate::state::State;
use std::collections::HashMap;
use std::net::IpAddr;
use std::ops::{Deref, DerefMut};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use tokio::sync::{watch, Notify};
use zooid_replication::{Consensus, Failure};

/// The socket side of a connection, as the runtime reaches it.
struct Link {
    outbox: Outbox,
    /// Told each time one of the connection's writes is applied.
    write_done: Arc<Notify>,
}

/// What the lock guards: the state, and the links its effects go out on.
struct Inner {
    state: State,
    links: HashMap<ConnId, Link>,
    /// `srvr`'s latency figures, recorded as requests are answered.
    latency: Latency,
}

/// What every connection task, the admin API and every duty share.
pub struct Node {
    pub config: Config,
    inner: Mutex<Inner>,
    /// Orders the state's writes; set once consensus has started.
    consensus: OnceLock<Consensus>,
    /// The id the next accepted connection gets.
    next_conn: AtomicU64,
    /// Why the server stopped serving, once it has (see [`crate::Server::failed`]).
    failure: watch::Sender<Option<Failure>>,
    /// Writes waiting for ordering, against the global limit: kept equal to the state's
    /// count each time the lock is let go.
    pub outstanding: Arc<Outstanding>,
    /// Connections per client address, against `max-client-cnxns`.
    clients: Arc<ClientCounts>,
    /// Set when the server shuts down: connections stop reading requests.
    stopping: watch::Sender<bool>,
    /// What is recorded as it happens, for `/metrics`.
    pub metrics: Arc<Metrics>,
    /// Held while the admin API restores a backup: one at a time.
    pub restoring: tokio::sync::Mutex<()>,
}

/// Why a member is not ready for clients (Kubernetes' readiness).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NotReady {
    #[error("writes can no longer be ordered")]
    Failed,
    #[error("shutting down")]
    Stopping,
    #[error("cut off from the quorum: serving read-only clients only")]
    ReadOnly,
    #[error("not in a working quorum")]
    NoQuorum,
    #[error("{0} committed entries not applied yet")]
    Behind(u64),
}

impl Node {
    pub fn new(config: Config, state: State, metrics: Arc<Metrics>) -> Node {
        Node {
            restoring: tokio::sync::Mutex::new(()),
            inner: Mutex::new(Inner {
                state,
                links: HashMap::new(),
                latency: Latency::default(),
            }),
            consensus: OnceLock::new(),
            metrics,
            next_conn: AtomicU64::new(1),
            failure: watch::channel(None).0,
            outstanding: Arc::new(Outstanding::new(config.global_outstanding_limit)),
            clients: ClientCounts::new(
                config.max_client_cnxns,
                connection_ceiling(
                    config.max_cnxns,
                    rlimit::getrlimit(rlimit::Resource::NOFILE)
                        .ok()
                        .map(|(soft, _)| soft),
                ),
            ),
            stopping: watch::channel(false).0,
            config,
        }
    }

    /// Locks the state. A poisoned lock means a panic under it; the state is still the last
    /// consistent one because every change is applied whole, so serving continues. What the
    /// state decides while held is carried out when the guard goes.
    pub fn state(&self) -> StateGuard<'_> {
        StateGuard {
            inner: self.inner.lock().unwrap_or_else(|e| e.into_inner()),
            node: self,
        }
    }

    /// What the admin API's protected commands ask for, read now (see
    /// [`Config::admin_token`]); none: they are refused.
    pub fn admin_token(&self) -> Result<Option<String>, crate::config::AdminTokenError> {
        self.config.admin_token()
    }

    /// Connects the consensus layer that orders the state's writes (once, at start).
    pub fn set_consensus(&self, consensus: Consensus) {
        let _ = self.consensus.set(consensus);
    }

    /// The consensus layer, once started.
    pub fn consensus(&self) -> Option<&Consensus> {
        self.consensus.get()
    }

    /// Whether this server's own line in zoo.cfg makes it an observer.
    pub fn configured_observer(&self) -> bool {
        self.config.ensemble.as_ref().is_some_and(|e| {
            e.members
                .iter()
                .any(|m| m.id == e.my_id && m.role == crate::config::zoocfg::Role::Observer)
        })
    }

    /// The consensus layer, if this server is part of a replicated ensemble.
    pub fn replicated_consensus(&self) -> Option<&Consensus> {
        self.consensus().filter(|_| self.config.ensemble.is_some())
    }

    /// Whether this server is fit to take clients (Kubernetes' readiness): in a working
    /// quorum, not read-only, and caught up: it has applied everything its quorum had
    /// committed at the last check (every 250 ms, so a healthy member under load is caught
    /// up with a check that old).
    pub fn ready(&self) -> Result<(), NotReady> {
        {
            let st = self.state();
            if st.failed() {
                return Err(NotReady::Failed);
            }
            if st.stopping() {
                return Err(NotReady::Stopping);
            }
            if st.read_only() {
                return Err(NotReady::ReadOnly);
            }
            if !st.serving() {
                return Err(NotReady::NoQuorum);
            }
        }
        let lag = self.consensus().map_or(0, |c| c.figures().apply_lag());
        if lag > 0 {
            return Err(NotReady::Behind(lag));
        }
        Ok(())
    }

    /// Takes a new connection from `ip`, within `max-client-cnxns`: its id and its place under
    /// the per-address limit (held until dropped), or `None` (counted) if the address has too
    /// many.
    pub fn admit(&self, ip: IpAddr) -> Result<(ConnId, Admitted), Refused> {
        let admitted = self.clients.admit(ip).inspect_err(|why| {
            self.metrics.limited(match why {
                Refused::PerAddress => Limit::ClientConnections,
                Refused::Total => Limit::ServerConnections,
            })
        })?;
        Ok((self.next_conn.fetch_add(1, Ordering::Relaxed), admitted))
    }

    /// The most client connections this server holds at once (see
    /// [`crate::runtime::limits::connection_ceiling`]).
    pub fn connection_ceiling(&self) -> usize {
        self.clients.total_limit()
    }

    /// Why the server stopped serving, once it has.
    pub fn failure(&self) -> Option<Failure> {
        self.failure.borrow().clone()
    }

    /// Resolves with the reason once the server stops serving on its own.
    pub async fn failed(&self) -> Failure {
        let mut rx = self.failure.subscribe();
        let reason = rx.wait_for(Option::is_some).await.map(|r| r.clone());
        // The sender lives as long as this node: the wait ends with a failure.
        reason.ok().flatten().unwrap_or(Failure::Stopped)
    }

    /// The server cannot serve any more (consensus failed): every connection closes and the
    /// reason is told to whoever waits on [`Node::failed`].
    pub fn fail(&self, reason: Failure) {
        self.state().fail();
        self.failure.send_replace(Some(reason));
    }

    /// Changes when the server fails (see [`Node::fail`]).
    pub fn failure_watch(&self) -> watch::Receiver<Option<Failure>> {
        self.failure.subscribe()
    }

    /// Reads the figures (`mntr`, `srvr`, the admin commands, `/metrics`) at one moment.
    pub fn with_view<R>(&self, f: impl FnOnce(&View) -> R) -> R {
        let ready = self.ready().is_ok();
        let st = self.state();
        f(&View {
            state: &st,
            consensus: self.consensus(),
            latency: &st.inner.latency,
            uptime: self.metrics.uptime(),
            ready,
            queued_bytes: st.queued_bytes(),
        })
    }

    /// `/metrics`: the state's figures read now, with what was recorded as it happened.
    pub fn render_metrics(&self) -> String {
        let mut families = self.with_view(crate::observe::metrics::state_families);
        families.extend(crate::observe::metrics::disk_families(&self.config));
        self.metrics.render(families)
    }

    /// Becomes true when the server starts shutting down.
    pub fn stopping(&self) -> watch::Receiver<bool> {
        self.stopping.subscribe()
    }

    /// The server starts shutting down: connections stop reading requests.
    pub fn stop(&self) {
        self.stopping.send_replace(true);
    }

    /// Carries out what the state decided, in order.
    fn perform(&self, inner: &mut Inner) {
        if !inner.state.has_effects() {
            // Taking the empty buffer would drop its allocation.
            return;
        }
        let mut effects = inner.state.take_effects();
        for effect in effects.drain(..) {
            match effect {
                Effect::Frame { conn, frame } => {
                    if let Some(l) = inner.links.get(&conn) {
                        l.outbox.send(frame);
                    }
                }
                Effect::Reply { conn, reply } => {
                    if let Some(l) = inner.links.get(&conn) {
                        l.outbox.send_reply(reply);
                    }
                }
                Effect::Close(conn) => {
                    if let Some(l) = inner.links.get(&conn) {
                        l.outbox.close();
                    }
                }
                Effect::Kill(conn) => {
                    if let Some(l) = inner.links.get(&conn) {
                        l.outbox.kill();
                    }
                }
                Effect::WriteDone(conn) => {
                    if let Some(l) = inner.links.get(&conn) {
                        // notify_one keeps a permit, so a waiter that checks and then waits
                        // still wakes.
                        l.write_done.notify_one();
                    }
                }
                Effect::Propose(command) => match self.consensus() {
                    Some(c) => c.propose(command),
                    None => tracing::error!("write proposed before the server started; dropped"),
                },
                Effect::Answered(a) => {
                    let elapsed = a.received.elapsed();
                    inner.latency.record(elapsed);
                    self.metrics.request(a.op.name(), a.write, elapsed);
                    let zxid = a.zxid;
                    a.span.record("zxid", format_args!("0x{zxid:x}"));
                }
            }
        }
        inner.state.reuse_effects(effects);
    }
}

/// The state, locked. Dereferences to [`State`]; when it goes, what the state decided meanwhile
/// is carried out (replies queued, connections closed, commands proposed, latencies recorded)
/// before the lock is let go, so that effects leave in the order they were decided.
pub struct StateGuard<'a> {
    inner: MutexGuard<'a, Inner>,
    node: &'a Node,
}

impl StateGuard<'_> {
    /// A connection's socket side, from its handshake on: its outbound queue and the signal of
    /// its applied writes.
    pub fn link(&mut self, conn: ConnId, outbox: Outbox, write_done: Arc<Notify>) {
        self.inner.links.insert(conn, Link { outbox, write_done });
    }

    /// Forgets a connection: its watches go, its session lives on until its deadline.
    pub fn unlink(&mut self, conn: ConnId) {
        let inner = &mut *self.inner;
        self.node.perform(inner);
        inner.state.detach(conn);
        inner.links.remove(&conn);
    }

    /// Reply bytes queued for clients that have not read them yet.
    pub fn queued_bytes(&self) -> usize {
        self.inner.links.values().map(|l| l.outbox.queued()).sum()
    }
}

impl Deref for StateGuard<'_> {
    type Target = State;

    fn deref(&self) -> &State {
        &self.inner.state
    }
}

impl DerefMut for StateGuard<'_> {
    fn deref_mut(&mut self) -> &mut State {
        &mut self.inner.state
    }
}

impl Drop for StateGuard<'_> {
    fn drop(&mut self) {
        let inner = &mut *self.inner;
        self.node.perform(inner);
        // Looked at before it is written: most holds of the lock (every read) leave the
        // count as it was, and a write to it would be one more cache line every core shares.
        let parked = inner.state.outstanding();
        if self.node.outstanding.get() != parked {
            self.node.outstanding.set(parked);
        }
    }
}
