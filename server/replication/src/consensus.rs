//! The face of this crate: start a node over a data directory, propose commands, learn when it
//! is ready. Everything openraft-specific stays behind it.

use crate::election::{decide_votes, ElectionStats, Elector, LeaderContact, Progress, Timing};
use crate::failure::{Failure, LeaderError};
use crate::log_store::{Fsyncs, LogStore};
use crate::members::Members;
use crate::network::PeerNetwork;
use crate::own_runtime::OwnRuntime;
use crate::peer_server::Handlers;
use crate::proposer::{BatchSizes, Proposer};
use crate::reconfig::{Reconfig, ReconfigError, Reconfigurer};
use crate::snapshot_file::SnapshotDir;
use crate::state_machine::{Applier, StateMachine};
use crate::types::*;
use openraft::{BasicNode, Raft, SnapshotPolicy};
use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

/// Settings of the consensus layer.
#[derive(Debug, Clone)]
pub struct ConsensusConfig {
    pub node_id: NodeId,
    /// Holds `snapshots/`, and `log/` (the WAL) unless `log_dir` is set.
    pub dir: PathBuf,
    /// Where the WAL's `log/` goes instead (ZooKeeper's `dataLogDir`: a disk of its own).
    pub log_dir: Option<PathBuf>,
    /// How long the WAL waits to gather concurrent appends into one fsync.
    pub group_commit_wait: Duration,
    /// A snapshot is taken after this many entries since the previous one...
    pub snapshot_every: u64,
    /// ...or after this many bytes of commands, whichever comes first (entries carry batches,
    /// so a count alone could let the log grow without bound between snapshots).
    pub snapshot_every_bytes: u64,
    /// Size of one WAL chunk file ([`DEFAULT_WAL_CHUNK_BYTES`]); purges free whole chunks.
    pub wal_chunk_bytes: usize,
    /// The other members, for a replicated ensemble; `None` for a single server.
    pub peers: Option<Peers>,
    /// How long a participant added by a reconfig has to catch up with the leader.
    pub catch_up_within: Duration,
    /// Heartbeats, elections and how long a member may go without a quorum, from ZooKeeper's
    /// `tickTime` and `syncLimit`.
    pub timing: Timing,
}

impl Default for ConsensusConfig {
    /// A single server in `./zooid-data` with the server's own defaults: no group-commit
    /// wait, a snapshot every 20,000 entries or 256 MiB of commands, 32 MiB WAL chunks, 20 s
    /// for a new participant to catch up.
    fn default() -> Self {
        ConsensusConfig {
            node_id: 1,
            dir: PathBuf::from("zooid-data"),
            log_dir: None,
            group_commit_wait: Duration::ZERO,
            snapshot_every: 20_000,
            snapshot_every_bytes: 256 << 20,
            wal_chunk_bytes: DEFAULT_WAL_CHUNK_BYTES,
            peers: None,
            catch_up_within: Duration::from_secs(20),
            timing: Timing::default(),
        }
    }
}

/// The members of a replicated ensemble, as configured at its start.
#[derive(Debug, Clone)]
pub struct Peers {
    /// Names the ensemble: a peer that gives another name is refused.
    pub cluster: String,
    /// Where this server's peer port listens.
    pub listen: SocketAddr,
    /// Every voting member (this one included) and the `host:port` of its peer port. A new
    /// ensemble starts from exactly these members on every server, so that no server can form
    /// a quorum of its own; a server that already belongs to one keeps its replicated
    /// membership and ignores this list.
    pub voters: BTreeMap<NodeId, String>,
    /// Members that replicate and serve but never vote (ZooKeeper's observers, openraft's
    /// learners): the leader adds each one it does not have yet.
    pub learners: BTreeMap<NodeId, String>,
    /// How peer connections are secured (plaintext, or the server's TLS).
    pub security: crate::transport::Security,
}

/// Small enough that a purge frees space soon after each snapshot, large enough that chunk
/// files stay few (raft-log's own default is 1 GiB).
pub const DEFAULT_WAL_CHUNK_BYTES: usize = 32 << 20;

#[derive(Debug, thiserror::Error)]
pub enum ConsensusError {
    #[error("opening the log in {dir}")]
    Log {
        dir: PathBuf,
        source: std::io::Error,
    },
    #[error("checking the log in {dir}")]
    Wal {
        dir: PathBuf,
        source: crate::wal_check::CheckError,
    },
    #[error("opening snapshots: {0}")]
    Snapshots(String),
    #[error(
        "the log in {dir} starts after entry {log_start} but the newest readable snapshot ends \
         at entry {snapshot_end:?}: the entries between are gone; refusing to start with an \
         older state. Restore the data directory from a backup, or from another member"
    )]
    Gap {
        dir: PathBuf,
        log_start: u64,
        snapshot_end: Option<u64>,
    },
    #[error("listening on the peer port {addr}")]
    PeerListen {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("raft: {0}")]
    Raft(String),
    #[error("starting the consensus threads")]
    Threads(#[source] std::io::Error),
    #[error("not ready after {0:?}: {1}")]
    NotReady(Duration, String),
}

/// How the log has been written since start (see [`Consensus::log_stats`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LogStats {
    pub fsyncs: Fsyncs,
    pub batches: BatchSizes,
}

/// How the leader sees the other members (ZooKeeper's `zk_followers`, `zk_synced_followers`,
/// ... in `mntr`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Followers {
    /// Voting members other than the leader.
    pub followers: usize,
    /// Of those, the ones whose log is within [`SYNCED_LAG`] entries of the leader's.
    pub synced_followers: usize,
    /// Members that do not vote (observers).
    pub observers: usize,
    pub synced_observers: usize,
}

/// A member is counted as synced while it has acknowledged the leader's log up to this many
/// entries from its end.
pub const SYNCED_LAG: u64 = 1000;

/// A running consensus node.
#[derive(Clone)]
pub struct Consensus {
    raft: Raft<TypeConfig>,
    proposer: Arc<Proposer>,
    /// A second handle on the log openraft owns, for its statistics.
    log: LogStore,
    /// Set once proposals can no longer be ordered (see [`Consensus::failed`]).
    failure: watch::Receiver<Option<Failure>>,
    /// The peer port's listener and the learner keeper, stopped with the node.
    peer_server: Option<Arc<Vec<tokio::task::AbortHandle>>>,
    network: PeerNetwork,
    /// Carries out membership changes while this member leads.
    reconfigurer: Arc<Reconfigurer>,
    /// Pre-votes, and when this member stands (see [`crate::election`]).
    elector: Arc<Elector>,
    /// The threads everything above runs on; stopped with the node.
    runtime: Option<Arc<OwnRuntime>>,
    /// The commit index a quorum last confirmed to this member (see [`Consensus::in_quorum`]).
    quorum_index: Arc<std::sync::atomic::AtomicU64>,
    /// The snapshot files, for backups.
    snapshots: SnapshotDir,
}

/// Why a backup could not be taken.
#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    /// openraft did not build the snapshot (stopped, or not within the time given).
    #[error("building the snapshot: {0}")]
    Build(String),
    #[error("reading the snapshot files: {0}")]
    Io(#[from] std::io::Error),
    #[error("no snapshot file")]
    Missing,
    #[error("snapshot files kept being replaced")]
    Replaced,
}

/// A snapshot file opened for a backup (see [`Consensus::backup`]).
#[derive(Debug)]
pub struct Backup {
    pub file: std::fs::File,
    /// Where it lies (it may be removed once a newer one is taken; `file` stays readable).
    pub path: std::path::PathBuf,
    /// Its size in bytes.
    pub len: u64,
    /// What checking it found (its meta; where its state lies, to read it without checking
    /// the whole file again).
    pub checked: crate::snapshot_file::Checked,
}

/// Where this member's log and state stand, for monitoring.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RaftFigures {
    pub term: u64,
    pub leader: Option<NodeId>,
    pub last_log_index: u64,
    pub applied_index: u64,
    /// Index of the newest snapshot (0 before the first).
    pub snapshot_index: u64,
    /// The commit index a quorum last confirmed to this member: how far it must apply to be
    /// caught up.
    pub quorum_index: u64,
    /// On the leader, each other member's replicated (matched) index.
    pub matched: Vec<(NodeId, u64)>,
    /// On the leader, milliseconds since a quorum last acknowledged it.
    pub millis_since_quorum_ack: Option<u64>,
}

impl RaftFigures {
    /// Entries committed by a quorum that this member has not applied yet.
    pub fn apply_lag(&self) -> u64 {
        self.quorum_index.saturating_sub(self.applied_index)
    }
}

impl Consensus {
    /// Opens the log and snapshots in `config.dir`, restores the state into `applier` (newest
    /// snapshot, then committed log entries), and makes this node the single voter of a new
    /// ensemble if it was never initialized. Returns once it leads and has applied its log.
    ///
    /// Everything it runs (openraft, the peer port, elections, forwarding) runs on threads of
    /// its own ([`crate::own_runtime`]), whichever runtime calls this.
    pub async fn start(
        config: ConsensusConfig,
        applier: Arc<dyn Applier>,
    ) -> Result<Consensus, ConsensusError> {
        let runtime = Arc::new(OwnRuntime::start().map_err(ConsensusError::Threads)?);
        let mut consensus = runtime
            .handle()
            .spawn(Self::start_here(config, applier))
            .await
            .map_err(|e| ConsensusError::Raft(e.to_string()))??;
        consensus.runtime = Some(runtime);
        Ok(consensus)
    }

    async fn start_here(
        config: ConsensusConfig,
        applier: Arc<dyn Applier>,
    ) -> Result<Consensus, ConsensusError> {
        let (failure_tx, failure) = watch::channel(None);
        let proposer = Arc::new(Proposer::new(
            config.node_id,
            config.snapshot_every_bytes,
            failure_tx,
        ));
        let log_dir = config.log_dir.as_ref().unwrap_or(&config.dir).join("log");
        match crate::wal_check::check(&log_dir) {
            Ok(crate::wal_check::WalHealth::Intact) => {}
            Ok(crate::wal_check::WalHealth::TornTail { file, offset }) => tracing::warn!(
                "{}: the last record, at offset {offset}, was torn by a crash (never \
                 acknowledged); cutting it off",
                file.display()
            ),
            Err(source) => {
                return Err(ConsensusError::Wal {
                    dir: log_dir,
                    source,
                })
            }
        }
        let log = LogStore::open(
            &log_dir,
            config.group_commit_wait,
            config.wal_chunk_bytes,
            proposer.clone(),
        )
        .map_err(|source| ConsensusError::Log {
            dir: log_dir.clone(),
            source,
        })?;
        let snaps = SnapshotDir::open(&config.dir.join("snapshots"))
            .map_err(|e| ConsensusError::Snapshots(e.to_string()))?;
        let sm = StateMachine::open(snaps.clone(), applier.clone())
            .map_err(|e| ConsensusError::Snapshots(e.to_string()))?;
        // The log must carry on from the snapshot restored: if the newest snapshot was
        // unreadable and an older one was taken, the log must still hold what came after it.
        let snapshot_end = sm.last_applied_index();
        if let Some(log_start) = log.purged_index() {
            if snapshot_end.is_none_or(|s| s < log_start) {
                return Err(ConsensusError::Gap {
                    dir: config.dir.clone(),
                    log_start,
                    snapshot_end,
                });
            }
        }
        let raft_config = openraft::Config {
            cluster_name: "zooid".into(),
            heartbeat_interval: millis(config.timing.heartbeat),
            // Only the leader's lease comes from these (openraft refuses real votes for
            // `election_timeout_max` after hearing from a leader): with other members,
            // elections are Zooid's (`crate::election`), whose pre-vote keeps a live leader
            // in place.
            election_timeout_min: millis(config.timing.lease()) - 1,
            election_timeout_max: millis(config.timing.lease()),
            // A single server elects itself at once and needs nobody's agreement.
            enable_elect: config.peers.is_none(),
            snapshot_policy: SnapshotPolicy::LogsSinceLast(config.snapshot_every),
            max_in_snapshot_log_to_keep: 100,
            max_payload_entries: 1024,
            install_snapshot_timeout: 10_000,
            ..Default::default()
        }
        .validate()
        .map_err(|e| ConsensusError::Raft(e.to_string()))?;
        let log_handle = log.clone();
        let listener =
            match &config.peers {
                Some(p) => Some(tokio::net::TcpListener::bind(p.listen).await.map_err(
                    |source| ConsensusError::PeerListen {
                        addr: p.listen,
                        source,
                    },
                )?),
                None => None,
            };
        let cluster = config
            .peers
            .as_ref()
            .map_or_else(|| "zooid".to_string(), |p| p.cluster.clone());
        let security = config
            .peers
            .as_ref()
            .map(|p| p.security.clone())
            .unwrap_or_default();
        let network = PeerNetwork::new(
            config.node_id,
            cluster.clone(),
            config.catch_up_within,
            security.clone(),
        );
        let raft = Raft::new(
            config.node_id,
            Arc::new(raft_config),
            network.clone(),
            log,
            sm,
        )
        .await
        .map_err(|e| ConsensusError::Raft(e.to_string()))?;
        let reconfigurer = Arc::new(Reconfigurer::new(
            raft.clone(),
            network.clone(),
            config.catch_up_within,
        ));
        let elector = Arc::new(Elector::new(
            config.timing,
            Arc::new(LeaderContact::default()),
        ));
        let initialized = raft
            .is_initialized()
            .await
            .map_err(|e| ConsensusError::Raft(e.to_string()))?;
        // A learner waits for the leader to add it; it never starts an ensemble.
        let is_voter = config
            .peers
            .as_ref()
            .is_none_or(|p| p.voters.contains_key(&config.node_id));
        // A voter without any data among others may be one that lost its disk: no vote
        // before the peer port opens, until the others say whether the ensemble is new.
        let settling = match &config.peers {
            Some(p) if !initialized && is_voter => {
                elector.withhold_votes();
                Some(p.clone())
            }
            _ => None,
        };
        let peer_server = listener.map(|l| {
            let handlers = Handlers {
                raft: raft.clone(),
                proposer: proposer.clone(),
                reconfigurer: reconfigurer.clone(),
                elector: elector.clone(),
            };
            let server = tokio::spawn(crate::peer_server::serve(
                l,
                handlers,
                config.node_id,
                cluster,
                security,
            ));
            let learners = config.peers.as_ref().map(|p| p.learners.clone());
            let keeper = tokio::spawn(seed_learners(
                raft.clone(),
                config.node_id,
                learners.unwrap_or_default(),
            ));
            let elections = tokio::spawn(elector.clone().run(raft.clone(), network.clone()));
            let mut tasks = vec![
                server.abort_handle(),
                keeper.abort_handle(),
                elections.abort_handle(),
            ];
            if let Some(p) = settling {
                let ask = settle_votes(raft.clone(), elector.clone(), network.clone(), p);
                tasks.push(tokio::spawn(ask).abort_handle());
            }
            Arc::new(tasks)
        });
        // A server added to a running ensemble is configured as ZooKeeper's are: the members
        // so far and itself. It must not start an ensemble of its own from that list.
        let mut joining = false;
        if let (false, true, Some(p)) = (initialized, is_voter, &config.peers) {
            for (id, spec) in p.voters.iter().chain(&p.learners) {
                if *id != config.node_id && network.initialized(*id, spec).await == Some(true) {
                    // The usual case on a fresh ensemble's start: another member started it
                    // first. Either its membership lists this server, which then follows,
                    // or a reconfig will add it.
                    tracing::info!(
                        "server {id} has started the ensemble already: following it (as a \
                         member if its membership lists this server, else once a reconfig \
                         adds it)"
                    );
                    joining = true;
                    break;
                }
            }
        }
        if !initialized && is_voter && !joining {
            let members: BTreeMap<NodeId, BasicNode> = match &config.peers {
                Some(p) => p
                    .voters
                    .iter()
                    .map(|(id, addr)| (*id, BasicNode::new(addr)))
                    .collect(),
                None => [(config.node_id, BasicNode::default())].into(),
            };
            match raft.initialize(members).await {
                Ok(()) => {}
                // Another member started the ensemble first and this one already heard from
                // it: it follows the membership it was sent.
                Err(openraft::error::RaftError::APIError(
                    openraft::error::InitializeError::NotAllowed(_),
                )) if config.peers.is_some() => {}
                Err(e) => return Err(ConsensusError::Raft(e.to_string())),
            }
        }
        if config.peers.is_none() {
            let wait = Duration::from_secs(30);
            let me = config.node_id;
            raft.wait(Some(wait))
                .metrics(
                    |m| {
                        m.current_leader == Some(me)
                            && m.last_applied.map(|l| l.index) >= m.last_log_index
                    },
                    "leader with its log applied",
                )
                .await
                .map_err(|e| ConsensusError::NotReady(wait, e.to_string()))?;
        }

        proposer.start(raft.clone(), network.clone(), applier);
        Ok(Consensus {
            raft,
            proposer,
            log: log_handle,
            failure,
            peer_server,
            network,
            reconfigurer,
            elector,
            runtime: None,
            quorum_index: Arc::default(),
            snapshots: snaps,
        })
    }

    /// Queues a command for ordering. Never blocks; the applier sees it once committed.
    pub fn propose(&self, command: Vec<u8>) {
        self.proposer.propose(command);
    }

    /// How the log has been written since start: fsyncs, and commands per entry.
    pub fn log_stats(&self) -> LogStats {
        LogStats {
            fsyncs: self.log.fsyncs(),
            batches: self.proposer.batch_sizes(),
        }
    }

    /// Resolves, with the reason, once this node can no longer order writes: openraft stopped
    /// on a fatal error (a log or state machine I/O failure) or refused a proposal. Nothing
    /// proposed afterwards will be applied, so the server must stop serving.
    pub async fn failed(&self) -> Failure {
        let mut metrics = self.raft.metrics();
        let mut failure = self.failure.clone();
        loop {
            if let Err(fatal) = &metrics.borrow_and_update().running_state {
                return Failure::Fatal(Arc::new(fatal.clone()));
            }
            if let Some(reason) = failure.borrow_and_update().clone() {
                return reason;
            }
            tokio::select! {
                r = metrics.changed() => if r.is_err() { return Failure::Stopped },
                r = failure.changed() => if r.is_err() { return Failure::ForwardingStopped },
            }
        }
    }

    /// Heartbeats, elections and the quorum's grace, as configured.
    pub fn timing(&self) -> Timing {
        self.elector.timing()
    }

    /// This member's elections and pre-votes since start.
    pub fn election_stats(&self) -> ElectionStats {
        self.elector.stats()
    }

    /// For each peer, requests to it that got no answer within their deadline (heartbeats,
    /// appends, votes, read-index confirmations, forwards).
    pub fn peer_deadline_misses(&self) -> Vec<(NodeId, u64)> {
        self.network.deadline_misses()
    }

    /// The member this one believes leads, if any.
    pub fn leader(&self) -> Option<NodeId> {
        self.raft.metrics().borrow().current_leader
    }

    /// The other members as the leader sees them; `None` on a member that does not lead.
    pub fn followers(&self) -> Option<Followers> {
        let m = self.raft.metrics();
        let m = m.borrow();
        let replication = m.replication.as_ref()?;
        let last = m.last_log_index.unwrap_or(0);
        let membership = m.membership_config.membership();
        let synced = |id: &NodeId| {
            replication
                .get(id)
                .and_then(|matched| *matched)
                .is_some_and(|l| l.index + SYNCED_LAG >= last)
        };
        let mut f = Followers::default();
        for id in membership.voter_ids().filter(|id| *id != m.id) {
            f.followers += 1;
            f.synced_followers += usize::from(synced(&id));
        }
        for id in membership.learner_ids() {
            f.observers += 1;
            f.synced_observers += usize::from(synced(&id));
        }
        Some(f)
    }

    /// Whether this member replicates without voting (an observer).
    pub fn is_learner(&self) -> bool {
        self.raft.metrics().borrow().state == openraft::ServerState::Learner
    }

    /// Whether this member leads (a single server always does).
    pub fn is_leader(&self) -> bool {
        let m = self.raft.metrics();
        let m = m.borrow();
        m.current_leader == Some(m.id)
    }

    /// Whether this member is part of a working quorum, checked within `within`: a leader
    /// that a quorum confirms (openraft 0.9 has no CheckQuorum: a cut-off leader goes on
    /// believing it leads, and goes on sending appends to the members cut off with it), or
    /// a member that heard from its leader lately and whose leader a quorum confirms (a read
    /// index, as for `sync`).
    pub async fn in_quorum(&self, within: Duration) -> bool {
        let confirmed = if self.is_leader() {
            match tokio::time::timeout(within, self.raft.get_read_log_id()).await {
                Ok(Ok((read, _))) => Some(read.map_or(0, |l| l.index)),
                _ => None,
            }
        } else if self.leader().is_some() && self.elector.contact().silence() <= within {
            match tokio::time::timeout(within, self.proposer.read_index()).await {
                Ok(Ok(Some(index))) => Some(index),
                _ => None,
            }
        } else {
            None
        };
        if let Some(index) = confirmed {
            self.quorum_index
                .fetch_max(index, std::sync::atomic::Ordering::Relaxed);
        }
        confirmed.is_some()
    }

    /// A snapshot of everything this member has applied, in its checked file format, opened
    /// for reading: built now unless the newest one is already that recent. The open file
    /// stays readable even if a later snapshot makes it old and it is removed.
    pub async fn backup(&self, within: Duration) -> Result<Backup, BackupError> {
        let applied = self.applied_index().unwrap_or(0);
        let newest = |m: &openraft::RaftMetrics<NodeId, openraft::BasicNode>| {
            m.snapshot.map_or(0, |l| l.index)
        };
        if newest(&self.raft.metrics().borrow()) < applied {
            self.raft
                .trigger()
                .snapshot()
                .await
                .map_err(|e| BackupError::Build(e.to_string()))?;
            self.raft
                .wait(Some(within))
                .metrics(|m| newest(m) >= applied, "backup snapshot")
                .await
                .map_err(|e| BackupError::Build(e.to_string()))?;
        }
        // The newest file could be replaced between finding and opening it: look again.
        for _ in 0..3 {
            let loaded = self.snapshots.latest()?.ok_or(BackupError::Missing)?;
            match std::fs::File::open(&loaded.path) {
                Ok(file) => {
                    let len = file.metadata()?.len();
                    return Ok(Backup {
                        file,
                        path: loaded.path,
                        len,
                        checked: loaded.checked,
                    });
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(BackupError::Replaced)
    }

    /// Term, indexes and, on the leader, the other members' progress.
    pub fn figures(&self) -> RaftFigures {
        let m = self.raft.metrics();
        let m = m.borrow();
        let mut matched: Vec<(NodeId, u64)> = m
            .replication
            .iter()
            .flatten()
            .filter(|(id, _)| **id != m.id)
            .map(|(id, l)| (*id, l.map_or(0, |l| l.index)))
            .collect();
        matched.sort_unstable();
        RaftFigures {
            term: m.current_term,
            leader: m.current_leader,
            last_log_index: m.last_log_index.unwrap_or(0),
            applied_index: m.last_applied.map_or(0, |l| l.index),
            snapshot_index: m.snapshot.map_or(0, |l| l.index),
            quorum_index: self.quorum_index.load(std::sync::atomic::Ordering::Relaxed),
            matched,
            millis_since_quorum_ack: m.millis_since_quorum_ack,
        }
    }

    /// Tells the leader that clients of these sessions were heard from here (see
    /// [`crate::wire::PeerRequest::Touch`]).
    pub async fn touch_leader(&self, sessions: Vec<i64>) -> Result<(), LeaderError> {
        self.proposer.touch_leader(sessions).await
    }

    /// Resolves when the member this one believes leads changes, with the new one; `None`
    /// once the node has stopped.
    pub async fn leader_changed(&self, known: Option<NodeId>) -> Option<Option<NodeId>> {
        let mut m = self.raft.metrics();
        loop {
            let now = m.borrow_and_update().current_leader;
            if now != known {
                return Some(now);
            }
            m.changed().await.ok()?;
        }
    }

    /// Waits until this member has applied every write acknowledged anywhere before the call
    /// (ZooKeeper's `sync`): a read index from the leader, then local apply up to it.
    pub async fn read_barrier(&self, within: Duration) -> Result<(), LeaderError> {
        let index = tokio::time::timeout(within, self.proposer.read_index())
            .await
            .map_err(|_| LeaderError::Timeout(within))??;
        self.raft
            .wait(Some(within))
            .applied_index_at_least(index, "sync")
            .await
            .map(drop)
            .map_err(|e| LeaderError::Apply {
                index: index.unwrap_or(0),
                source: Arc::new(e),
            })
    }

    /// The members as this member last applied them.
    pub fn members(&self) -> Members {
        let m = self.raft.metrics();
        let m = m.borrow();
        Members::of(
            m.membership_config.log_id().as_ref(),
            m.membership_config.membership(),
        )
    }

    /// Changes the membership (ZooKeeper's `reconfig`) through whichever member leads, and
    /// returns once this member has applied the new membership, with its version. A request
    /// no leader took is sent again while a leader is awaited, up to `within`.
    pub async fn reconfig(&self, req: Reconfig, within: Duration) -> Result<u64, ReconfigError> {
        let deadline = tokio::time::Instant::now() + within;
        let version = loop {
            let leader = {
                let m = self.raft.metrics();
                let m = m.borrow();
                m.current_leader.map(|l| {
                    let spec = m
                        .membership_config
                        .membership()
                        .get_node(&l)
                        .map(|n| n.addr.clone());
                    (l, l == m.id, spec)
                })
            };
            let outcome = match &leader {
                Some((_, true, _)) => self.reconfigurer.run(req.clone()).await,
                Some((id, false, Some(spec))) => {
                    self.network.reconfig(*id, spec, req.clone()).await
                }
                _ => Err(ReconfigError::NoLeader("no leader".into())),
            };
            match outcome {
                Err(ReconfigError::NoLeader(why)) => {
                    let known = leader.as_ref().map(|(id, ..)| *id);
                    let wait = tokio::time::timeout_at(deadline, self.leader_changed(known));
                    if wait.await.is_err() {
                        return Err(ReconfigError::NoLeader(why));
                    }
                }
                Ok(v) => break v,
                Err(e) => return Err(e),
            }
        };
        let index = version >> crate::batch::POSITION_BITS;
        self.raft
            .wait(Some(within))
            .applied_index_at_least(Some(index), "reconfig")
            .await
            .map_err(|e| ReconfigError::Failed(e.to_string()))?;
        Ok(version)
    }

    /// Index of the last log entry applied here.
    pub fn applied_index(&self) -> Option<u64> {
        self.raft.metrics().borrow().last_applied.map(|l| l.index)
    }

    /// A leader that is about to stop hands its leadership to a voter that has all of its log,
    /// so that writes resume without waiting for an election timeout: forwarded entries are
    /// turned away (their senders hold them for the next leader), the first voter caught up is
    /// told to stand, and this one grants it the vote. Returns the new leader, or `None` if
    /// this member did not lead or nobody took over within `within`.
    pub async fn hand_over(&self, within: Duration) -> Option<NodeId> {
        if !self.is_leader() || self.members().members.len() < 2 {
            return None;
        }
        self.proposer.resign();
        // Once deposed it must not stand again: the member taking over may need a second
        // round (a leader younger than its lease refuses the first vote, but steps down).
        self.elector.stand_down();
        let deadline = tokio::time::Instant::now() + within;
        // The log must stop growing first (entries already queued here are still proposed),
        // then a voter must have all of it: a candidate with less is refused the vote.
        let (target, spec) = loop {
            let found = self.proposer.is_idle().then(|| {
                let m = self.raft.metrics();
                let m = m.borrow();
                // The log's own end: an entry just appended may not be in the metrics yet, and
                // a target chosen without it could never win the election (the others have
                // it).
                let last = m.last_log_index;
                if self.log.last_index() != last {
                    return None;
                }
                let membership = m.membership_config.membership();
                let caught_up = |id: &NodeId| {
                    m.replication
                        .as_ref()
                        .and_then(|r| r.get(id))
                        .is_some_and(|l| l.map(|l| l.index) == last)
                };
                membership
                    .voter_ids()
                    .filter(|id| *id != m.id)
                    .find(caught_up)
                    .and_then(|id| membership.get_node(&id).map(|n| (id, n.addr.clone())))
            });
            if let Some(Some(t)) = found {
                break t;
            }
            if tokio::time::Instant::now() >= deadline {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        };
        // Asked again every 100 ms: a first round can fail (this leader refuses the vote while
        // its lease runs, but steps down on seeing it; a later round then gets its vote).
        let me = self.raft.metrics().borrow().id;
        loop {
            if let Err(e) = self.network.take_over(target, &spec).await {
                tracing::warn!("server {target} did not take over: {e}");
                return None;
            }
            let round = (tokio::time::Instant::now() + Duration::from_millis(100)).min(deadline);
            let mut known = self.leader();
            while let Ok(Some(now)) =
                tokio::time::timeout_at(round, self.leader_changed(known)).await
            {
                match now {
                    Some(l) if l != me => return Some(l),
                    other => known = other,
                }
            }
            if tokio::time::Instant::now() >= deadline {
                return None;
            }
        }
    }

    /// Stops the node (flushing nothing more: what was acknowledged is already durable).
    pub async fn shutdown(&self) {
        if let Some(tasks) = &self.peer_server {
            for t in tasks.iter() {
                t.abort();
            }
        }
        let _ = self.raft.shutdown().await;
        if let Some(runtime) = &self.runtime {
            runtime.stop().await;
        }
    }
}

/// For a voter that started without any data among others: asks the other members how far
/// they have got until [`decide_votes`] can tell whether the ensemble is new (this member
/// votes) or went on without it (it withholds its vote until caught up, see
/// [`Elector::may_vote`]); again every heartbeat while too few answer. Ends once it votes.
async fn settle_votes(
    raft: Raft<TypeConfig>,
    elector: Arc<Elector>,
    network: PeerNetwork,
    peers: Peers,
) {
    let me = raft.metrics().borrow().id;
    let voters: BTreeSet<NodeId> = peers.voters.keys().copied().collect();
    let mut answers = BTreeMap::new();
    while elector.withholding() {
        // Its own progress counts too: a leader may have reached it meanwhile.
        let m = raft.metrics().borrow().clone();
        let own = Progress {
            initialized: m.last_log_index.is_some(),
            last_log: m.last_log_index,
            applied: m.last_applied.map(|l| l.index),
        };
        answers.insert(me, own);
        let mut asks = tokio::task::JoinSet::new();
        for (id, spec) in peers.voters.iter().chain(&peers.learners) {
            if *id != me && !answers.contains_key(id) {
                let (network, id, spec) = (network.clone(), *id, spec.clone());
                asks.spawn(async move { (id, network.progress(id, &spec).await) });
            }
        }
        while let Some(joined) = asks.join_next().await {
            if let Ok((id, Some(progress))) = joined {
                answers.insert(id, progress);
            }
        }
        if let Some(start) = decide_votes(&voters, &answers) {
            elector.started(start);
            break;
        }
        tokio::time::sleep(elector.timing().heartbeat).await;
    }
    // Then watched until caught up, so that the log and the metrics say when it votes again
    // even if no election asks it.
    let mut metrics = raft.metrics();
    while !elector.may_vote(&raft) {
        if metrics.changed().await.is_err() {
            return;
        }
    }
}

/// Completes a new ensemble: openraft starts one with voters only, so the leader then adds the
/// configured learners (observers), all in one membership change. Only while the membership is
/// still the one the ensemble started with: after any change (a reconfig may have removed an
/// observer on purpose) the replicated membership alone decides.
async fn seed_learners(raft: Raft<TypeConfig>, me: NodeId, learners: BTreeMap<NodeId, String>) {
    if learners.is_empty() {
        return;
    }
    let mut metrics = raft.metrics();
    loop {
        let seed = {
            let m = metrics.borrow_and_update();
            // Index 0 holds the membership `initialize` wrote; none yet: not started.
            let index = m.membership_config.log_id().map(|l| l.index);
            if index.is_some_and(|i| i > 0) {
                return;
            }
            (index.is_some() && m.current_leader == Some(me)).then(|| {
                learners
                    .iter()
                    .map(|(id, spec)| (*id, BasicNode::new(spec)))
                    .collect::<BTreeMap<_, _>>()
            })
        };
        if let Some(nodes) = seed {
            match raft
                .change_membership(openraft::ChangeMembers::AddNodes(nodes), true)
                .await
            {
                Ok(_) => tracing::info!("added the configured observers"),
                Err(e) => tracing::debug!("adding the configured observers: {e}; will retry"),
            }
        }
        if metrics.changed().await.is_err() {
            return;
        }
    }
}

fn millis(d: Duration) -> u64 {
    d.as_millis().try_into().unwrap_or(u64::MAX)
}
