//! The listener and the background duties of a standalone server: session expiry and
//! container / TTL collection.

use crate::config::{Config, Ensemble};
use crate::connection;
use crate::limits::{ClientCounts, Outstanding};
use crate::metrics::{Limit, Metrics};
use crate::state::{now_ms, State};
use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tracing::{debug, error, info, warn};
use zooid_replication::{Applier, Consensus, ConsensusConfig, Peers, StateEncoder};
use zooid_tree::{DataTree, TxnOp};

/// How long a stopping leader waits for a follower to take its place before it stops anyway
/// (the others then elect one after their election timeout).
const HAND_OVER_WITHIN: Duration = Duration::from_secs(2);

/// How long a member may be without a working quorum before it closes its clients'
/// connections. Longer than an election (about a second here, `docs/ensembles.md`), so that
/// a leader change alone does not disconnect every client.
const NO_QUORUM_GRACE: Duration = Duration::from_secs(2);

/// How often a member checks that it is in a quorum, and how long a leader's check may take.
const QUORUM_CHECK_EVERY: Duration = Duration::from_millis(250);

/// A standalone server's id: member 1 of an ensemble of one.
const STANDALONE_ID: u64 = 1;

/// The name peers check in their greeting. ZooKeeper's configuration has no name for an
/// ensemble; the members' own ids and addresses are what tell one ensemble from another.
const CLUSTER: &str = "zooid";

/// What every connection task shares.
pub struct Shared {
    pub config: Config,
    state: Mutex<State>,
    next_conn: AtomicU64,
    /// Why the server stopped serving, once it has (see [`Server::failed`]).
    failure: watch::Sender<Option<String>>,
    /// Writes waiting for ordering, against the global limit.
    pub outstanding: Arc<Outstanding>,
    /// Connections per client address, against `max-client-cnxns`.
    clients: Arc<ClientCounts>,
    /// Set when the server shuts down: connections stop reading requests.
    stopping: watch::Sender<bool>,
    /// What is recorded as it happens, for `/metrics`.
    pub metrics: Arc<Metrics>,
    /// What the admin API's protected commands ask for (none: they are refused).
    pub admin_token: Option<String>,
    /// Held while the admin API restores a backup: one at a time.
    pub restoring: tokio::sync::Mutex<()>,
}

impl Shared {
    /// Locks the state. A poisoned lock means a panic under it; the state is still the last
    /// consistent one because every change is applied whole, so serving continues.
    pub fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Why the server stopped serving, once it has.
    pub fn failure(&self) -> Option<String> {
        self.failure.borrow().clone()
    }

    /// `/metrics`: the state's figures read now, with what was recorded as it happened.
    pub fn render_metrics(&self) -> String {
        let mut families = crate::metrics::state_families(&self.state(), &self.metrics);
        families.extend(crate::metrics::disk_families(&self.config));
        self.metrics.render(families)
    }

    /// Becomes true when the server starts shutting down.
    pub fn stopping(&self) -> watch::Receiver<bool> {
        self.stopping.subscribe()
    }
}

/// A running server.
pub struct Server {
    pub client_addr: SocketAddr,
    /// Where the admin HTTP API listens, if enabled.
    pub admin_addr: Option<SocketAddr>,
    pub shared: Arc<Shared>,
    tasks: Vec<JoinHandle<()>>,
    consensus: Consensus,
}

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Storage(#[from] zooid_replication::ConsensusError),
    #[error("listening on the client port {addr}: {source}")]
    Listen {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error(transparent)]
    AdminToken(#[from] crate::config::AdminTokenError),
    #[error(
        "listening on the admin port {addr} (admin.serverAddress/admin.serverPort, \
         --admin-addr; admin.enableServer=false turns it off): {source}"
    )]
    AdminListen {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("server.{id}'s peer address {addr}: {reason}")]
    PeerAddr {
        id: u64,
        addr: String,
        reason: String,
    },
}

/// The consensus layer's view of the ensemble a zoo.cfg describes; the peer port binds
/// `listen` if given, else this server's own line's address.
fn peers(ensemble: &Ensemble, listen: Option<SocketAddr>) -> Result<Peers, StartError> {
    use crate::zoocfg::Role;
    let me = ensemble
        .members
        .iter()
        .find(|m| m.id == ensemble.my_id)
        .ok_or_else(|| StartError::PeerAddr {
            id: ensemble.my_id,
            addr: String::new(),
            reason: "no server line for this server's myid".into(),
        })?;
    let addr = me.peer_addr();
    let resolved = addr
        .to_socket_addrs()
        .map_err(|e| e.to_string())
        .and_then(|mut a| a.next().ok_or_else(|| "resolves to no address".to_string()))
        .map_err(|reason| StartError::PeerAddr {
            id: me.id,
            addr: addr.clone(),
            reason,
        })?;
    let listen = listen.unwrap_or(resolved);
    Ok(Peers {
        cluster: CLUSTER.into(),
        listen,
        voters: ensemble
            .members
            .iter()
            .filter(|m| m.role == Role::Participant)
            .map(|m| (m.id, m.spec()))
            .collect(),
        learners: ensemble
            .members
            .iter()
            .filter(|m| m.role == Role::Observer)
            .map(|m| (m.id, m.spec()))
            .collect(),
    })
}

/// What a graceful stop did (see [`Server::shutdown`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stopped {
    /// Writes that were waiting for ordering when the stop began.
    pub writes_in_flight: usize,
    /// Writes still unanswered when the grace period ran out (0 on a clean stop).
    pub writes_abandoned: usize,
    /// Client connections closed.
    pub connections: usize,
}

/// Commands applied per hold of the state lock (see `StateApplier::apply`).
const APPLY_SLICE: usize = 256;

/// The replicated state as the consensus layer sees it.
struct StateApplier(Arc<Shared>);

impl Applier for StateApplier {
    fn apply(&self, commands: &[(u64, &[u8])]) {
        // One entry carries up to 65,536 commands. The lock is let go between slices, so a
        // read or a ping waits for at most one slice (each command is a whole txn with its own
        // zxid: a reader between slices sees a state ZooKeeper could have shown).
        for slice in commands.chunks(APPLY_SLICE) {
            let mut state = self.0.state();
            for (zxid, command) in slice {
                state.apply_command(*zxid as i64, command);
            }
        }
    }

    fn snapshot(&self) -> StateEncoder {
        // O(1) under the lock; the encode runs on the snapshot thread.
        let frozen = self.0.state().tree.freeze();
        Box::new(move |w| frozen.encode_to(w))
    }

    fn restore(&self, state: &mut dyn std::io::Read) -> Result<(), String> {
        let tree = DataTree::read_snapshot(state).map_err(|e| e.to_string())?;
        let mut st = self.0.state();
        // A snapshot from the leader replaces the state under the clients' feet: as ZooKeeper
        // does on a resync, they are let go, so none waits on a parked write or a watch that
        // the new state no longer knows (at start there are none).
        st.drop_clients();
        st.tree = tree;
        st.sessions_restored();
        Ok(())
    }

    fn lost(&self, commands: &[&[u8]]) {
        self.0.state().lost(commands);
    }

    fn touched(&self, sessions: &[i64]) {
        self.0.state().sessions.touched_elsewhere(sessions);
    }

    fn membership(&self, members: &zooid_replication::Members) {
        self.0.state().membership_changed(members);
    }
}

impl Server {
    /// Restores the state from the data directory, then binds the client port and starts
    /// serving. Port 0 picks a free port (see `client_addr`).
    pub async fn start(config: Config) -> Result<Server, StartError> {
        let outstanding = Arc::new(Outstanding::new(config.global_outstanding_limit));
        let expiry_interval = config.expiry_interval();
        let peers = config
            .ensemble
            .as_ref()
            .map(|e| peers(e, config.peer_listen))
            .transpose()?;
        let node_id = config.ensemble.as_ref().map_or(STANDALONE_ID, |e| e.my_id);
        let metrics = Arc::new(Metrics::new());
        let admin_token = config.admin_token()?;
        let shared = Arc::new(Shared {
            admin_token,
            restoring: tokio::sync::Mutex::new(()),
            state: Mutex::new(State::new(
                node_id,
                DataTree::new(),
                outstanding.clone(),
                expiry_interval,
                metrics.clone(),
            )),
            metrics,
            next_conn: AtomicU64::new(1),
            failure: watch::channel(None).0,
            outstanding,
            clients: ClientCounts::new(config.max_client_cnxns),
            stopping: watch::channel(false).0,
            config,
        });
        let consensus = Consensus::start(
            ConsensusConfig {
                node_id,
                dir: shared.config.data_dir.clone(),
                log_dir: shared.config.data_log_dir.clone(),
                group_commit_wait: Duration::from_micros(shared.config.group_commit_wait_us),
                snapshot_every: shared.config.snapshot_every,
                snapshot_every_bytes: shared.config.snapshot_every_bytes,
                wal_chunk_bytes: zooid_replication::DEFAULT_WAL_CHUNK_BYTES,
                catch_up_within: shared.config.ensemble.as_ref().map_or(
                    Duration::from_secs(20),
                    |e| {
                        Duration::from_millis(
                            u64::from(e.init_limit) * u64::from(shared.config.tick_time_ms),
                        )
                    },
                ),
                peers,
            },
            Arc::new(StateApplier(shared.clone())),
        )
        .await?;
        {
            let mut st = shared.state();
            let observer = shared.config.ensemble.as_ref().is_some_and(|e| {
                e.members
                    .iter()
                    .any(|m| m.id == e.my_id && m.role == crate::zoocfg::Role::Observer)
            });
            st.set_consensus(
                consensus.clone(),
                shared.config.ensemble.is_some(),
                observer,
            );
            st.set_read_only_mode(shared.config.read_only_mode);
            st.sessions_restored();
        }
        let admin = if shared.config.admin_enabled {
            let addr = shared.config.admin_addr;
            let listen = |source| StartError::AdminListen { addr, source };
            let listener = TcpListener::bind(addr).await.map_err(listen)?;
            Some((listener.local_addr().map_err(listen)?, listener))
        } else {
            None
        };
        let addr = shared.config.client_addr;
        let listen = |source| StartError::Listen { addr, source };
        let listener = TcpListener::bind(addr).await.map_err(listen)?;
        let client_addr = listener.local_addr().map_err(listen)?;
        {
            let st = shared.state();
            info!(
                version = crate::fourlw::VERSION,
                %client_addr,
                data_dir = %shared.config.data_dir.display(),
                zxid = format_args!("0x{:x}", st.last_zxid()),
                nodes = st.tree.node_count(),
                sessions = st.sessions.count(),
                "zooid serving clients"
            );
        }
        let mut tasks = Vec::new();
        let admin_addr = admin.as_ref().map(|(a, _)| *a);
        if let Some((admin_addr, listener)) = admin {
            info!(%admin_addr, "admin API listening");
            tasks.push(tokio::spawn(crate::admin::serve(listener, shared.clone())));
        }
        let (s, c) = (shared.clone(), consensus.clone());
        tasks.push(tokio::spawn(async move {
            let reason = c.failed().await;
            error!("cannot order writes any more ({reason}); closing every connection");
            s.state().fail();
            s.failure.send_replace(Some(reason));
        }));
        let s = shared.clone();
        let mut failure = shared.failure.subscribe();
        let mut stopping = shared.stopping();
        tasks.push(tokio::spawn(async move {
            let mut backoff = AcceptBackoff::default();
            loop {
                let accepted = tokio::select! {
                    a = listener.accept() => a,
                    // Dropping the listener makes new connections fail fast.
                    _ = failure.wait_for(Option::is_some) => return,
                    _ = stopping.wait_for(|s| *s) => return,
                };
                match accepted {
                    Ok((stream, remote)) => {
                        backoff.succeeded();
                        let Some(admitted) = s.clients.admit(remote.ip()) else {
                            warn!(
                                %remote,
                                "too many connections from {}: max-client-cnxns is {}",
                                remote.ip(),
                                s.config.max_client_cnxns
                            );
                            s.metrics.limited(Limit::ClientConnections);
                            continue;
                        };
                        let conn = s.next_conn.fetch_add(1, Ordering::Relaxed);
                        tokio::spawn(connection::serve(s.clone(), stream, conn, admitted));
                    }
                    Err(e) => {
                        // Usually out of file descriptors: wait for some to be freed instead
                        // of spinning, longer each time, and say so once per pause.
                        let pause = backoff.failed();
                        warn!(%client_addr, "accepting a connection failed: {e}; pausing accepts for {pause:?}");
                        tokio::time::sleep(pause).await;
                    }
                }
            }
        }));
        let (s, c) = (shared.clone(), consensus.clone());
        tasks.push(tokio::spawn(async move {
            let mut iv = tokio::time::interval(expiry_interval);
            loop {
                iv.tick().await;
                let mut st = s.state();
                let leads = st.leads();
                for session in st.sessions.expired(Instant::now()) {
                    if st.expire_local(session) {
                        info!("read-only session 0x{session:x} expired");
                    } else if leads {
                        info!("session 0x{session:x} expired");
                        st.expire(session);
                    } else {
                        st.rearm(session);
                    }
                }
                let touched = st.sessions.take_touched();
                drop(st);
                if !leads && !touched.is_empty() {
                    let c = c.clone();
                    tokio::spawn(async move {
                        if let Err(e) = c.touch_leader(touched).await {
                            // The next round carries them again once a leader answers.
                            debug!("touches not delivered to the leader: {e}");
                        }
                    });
                }
            }
        }));
        if shared.config.ensemble.is_some() {
            let (s, c) = (shared.clone(), consensus.clone());
            let me = node_id;
            let (s2, c2) = (shared.clone(), consensus.clone());
            tasks.push(tokio::spawn(async move {
                let mut cut_off_since: Option<Instant> = None;
                let mut iv = tokio::time::interval(QUORUM_CHECK_EVERY);
                loop {
                    iv.tick().await;
                    if c2.in_quorum(QUORUM_CHECK_EVERY * 2).await {
                        if cut_off_since.take().is_some() && !s2.state().serving() {
                            info!("back in a quorum: serving clients again");
                        }
                        s2.state().quorum_regained();
                        continue;
                    }
                    let since = *cut_off_since.get_or_insert_with(Instant::now);
                    if since.elapsed() >= NO_QUORUM_GRACE && s2.state().serving() {
                        warn!(
                            "no working quorum for {NO_QUORUM_GRACE:?}: closing client \
                             connections until it is back"
                        );
                        s2.state().quorum_lost();
                    }
                }
            }));
            tasks.push(tokio::spawn(async move {
                let mut known = None;
                // Since when this member has had no leader (ZooKeeper's LOOKING state).
                let mut looking_since = Some(Instant::now());
                while let Some(now) = c.leader_changed(known).await {
                    if known.is_some() {
                        s.state().leader_lost();
                    }
                    known = now;
                    match now {
                        Some(_) => {
                            if let Some(since) = looking_since.take() {
                                let ms = since.elapsed().as_secs_f64() * 1000.0;
                                s.metrics.election_time.record(ms);
                            }
                        }
                        None => {
                            looking_since.get_or_insert_with(Instant::now);
                            s.metrics.looking.inc();
                        }
                    }
                    s.state().set_leading(now == Some(me));
                    match now {
                        Some(l) if l == me => {
                            info!("leading the ensemble");
                            s.state().refresh_deadlines();
                        }
                        Some(l) => info!("following server {l}"),
                        None => warn!("no leader"),
                    }
                }
            }));
        }
        tasks.push(tokio::spawn(crate::admin::restore::cancel_abandoned(
            shared.clone(),
        )));
        let s = shared.clone();
        let every = Duration::from_millis(s.config.container_check_ms.max(10));
        tasks.push(tokio::spawn(async move {
            let mut iv = tokio::time::interval(every);
            loop {
                iv.tick().await;
                // The leader alone collects, by its own clock.
                if !s.state().leads() {
                    continue;
                }
                // Taken in O(1) under the lock and searched outside it; each delete is
                // checked again when it applies.
                let view = s.state().tree.collection_view();
                let expired = view.expired(now_ms());
                drop(view);
                if expired.is_empty() {
                    continue;
                }
                let mut st = s.state();
                for path in expired {
                    st.propose(0, TxnOp::DeleteContainer { path }, None);
                }
            }
        }));
        Ok(Server {
            client_addr,
            admin_addr,
            shared,
            tasks,
            consensus,
        })
    }

    /// Resolves, with the reason, if the server stops serving on its own: consensus failed
    /// (say, the log's disk failed). `main` exits non-zero on it, as ZooKeeper does.
    pub async fn failed(&self) -> String {
        let mut rx = self.shared.failure.subscribe();
        let reason = rx
            .wait_for(Option::is_some)
            .await
            .map(|r| r.clone().unwrap_or_default());
        reason.unwrap_or_else(|_| "server dropped".into())
    }

    /// Fault injection for tests: stops the consensus layer underneath a running server, as
    /// a fatal storage error would.
    pub async fn halt_consensus(&self) {
        self.consensus.shutdown().await;
    }

    /// Stops accepting and stops background duties (open connections end with the runtime).
    pub async fn stop(self) {
        for t in self.tasks {
            t.abort();
        }
        self.consensus.shutdown().await;
    }

    /// Stops gracefully: stops accepting connections and reading requests, lets the writes
    /// already taken be ordered and answered (for at most `grace`), closes every connection
    /// once its replies are flushed, and stops consensus. Sessions are not closed: their
    /// clients reconnect (here after a restart, or to another server) and keep them.
    pub async fn shutdown(self, grace: Duration) -> Stopped {
        // No session expires and no container is collected while stopping: the clients of
        // the connections closed here must find their sessions when they come back.
        for t in &self.tasks {
            t.abort();
        }
        self.shared.stopping.send_replace(true);
        let writes_in_flight = {
            let mut st = self.shared.state();
            st.stop_taking_writes();
            st.outstanding()
        };
        let deadline = tokio::time::Instant::now() + grace;
        let mut iv = tokio::time::interval(Duration::from_millis(5));
        while self.shared.state().outstanding() > 0 && tokio::time::Instant::now() < deadline {
            iv.tick().await;
        }
        let (writes_abandoned, connections) = {
            let mut st = self.shared.state();
            st.close_all();
            (st.outstanding(), st.conns.len())
        };
        // Replies already queued go out before the sockets close (bounded: a client that
        // does not read is cut by the stall timeout, and this wait is bounded anyway).
        let flush_until = tokio::time::Instant::now() + Duration::from_secs(2);
        while !self.shared.state().conns.is_empty() && tokio::time::Instant::now() < flush_until {
            iv.tick().await;
        }
        let handed_to = self.consensus.hand_over(HAND_OVER_WITHIN).await;
        if let Some(l) = handed_to {
            info!("handed the leadership over to server {l}");
        }
        self.consensus.shutdown().await;
        Stopped {
            writes_in_flight,
            writes_abandoned,
            connections,
        }
    }
}

/// Pauses after failed accepts: 10 ms after the first, doubling up to 1 s, reset by the next
/// successful accept.
#[derive(Debug, Default)]
struct AcceptBackoff {
    failures: u32,
}

impl AcceptBackoff {
    const FIRST: Duration = Duration::from_millis(10);
    const MAX: Duration = Duration::from_secs(1);

    fn failed(&mut self) -> Duration {
        let pause = Self::FIRST
            .saturating_mul(1 << self.failures.min(16))
            .min(Self::MAX);
        self.failures += 1;
        pause
    }

    fn succeeded(&mut self) {
        self.failures = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accept_backoff_doubles_to_a_cap_and_resets() {
        let mut b = AcceptBackoff::default();
        let pauses: Vec<_> = (0..10).map(|_| b.failed()).collect();
        assert_eq!(pauses[0], Duration::from_millis(10));
        assert_eq!(pauses[1], Duration::from_millis(20));
        assert_eq!(pauses[9], Duration::from_secs(1));
        b.succeeded();
        assert_eq!(b.failed(), Duration::from_millis(10));
    }
}
