//! The sending side of the peer transport: openraft's RPCs to other members over TCP.
//!
//! One connection per peer, shared by every RPC to it (openraft builds a client per
//! replication stream and per election; they all take the peer's one connection in turn) and
//! opened again after any error. Each RPC is bounded by openraft's deadline for it. An
//! AppendEntries larger than [`APPEND_BUDGET_BYTES`] is not sent: openraft is told how many of
//! its entries fit and retries with that many, so a frame is bounded in bytes, not only in
//! entries.

use crate::failure::LeaderError;
use crate::reconfig::{Reconfig, ReconfigError};
use crate::transport::{host_of, PeerStream, Security};
use crate::types::*;
use crate::wire::{
    read_frame, write_frame, PeerRequest, PeerResponse, WireError, APPEND_BUDGET_BYTES,
};
use openraft::error::{
    InstallSnapshotError, NetworkError, PayloadTooLarge, RPCError, RaftError, RemoteError,
    Unreachable,
};
use openraft::network::{RPCOption, RaftNetwork, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    VoteRequest, VoteResponse,
};
use openraft::{BasicNode, EntryPayload};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::net::TcpStream;

/// Time allowed to open a connection and be welcomed.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);

/// Time the leader has to take forwarded commands (it only queues them).
const FORWARD_TIMEOUT: Duration = Duration::from_secs(2);

/// Builds openraft's clients, all sharing one connection per peer.
#[derive(Clone)]
pub struct PeerNetwork {
    me: NodeId,
    cluster: String,
    links: Arc<Mutex<HashMap<NodeId, Link>>>,
    security: Security,
    /// How long the leader may take over a reconfig's catch-up (see [`crate::reconfig`]).
    catch_up_within: Duration,
}

/// The one connection to a peer, opened on first use.
type Link = Arc<LinkState>;

/// The one connection kept to a peer, and whether the peer answered last time.
#[derive(Default)]
struct LinkState {
    stream: tokio::sync::Mutex<Option<PeerStream>>,
    /// Set while the peer does not answer: said once when it stops and once when it is back,
    /// where openraft would warn at every heartbeat (its own warnings are filtered to errors).
    down: std::sync::atomic::AtomicBool,
    /// Requests to the peer that got no answer within their deadline.
    deadline_misses: std::sync::atomic::AtomicU64,
}

impl PeerNetwork {
    pub fn new(me: NodeId, cluster: String, catch_up_within: Duration, security: Security) -> Self {
        PeerNetwork {
            me,
            cluster,
            links: Arc::default(),
            security,
            catch_up_within,
        }
    }
}

impl PeerNetwork {
    /// The client of the one connection kept to `target`; `spec` is its member spec (see
    /// [`crate::members`]).
    fn client(&self, target: NodeId, spec: &str) -> PeerClient {
        let link = self
            .links
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(target)
            .or_default()
            .clone();
        PeerClient {
            me: self.me,
            cluster: self.cluster.clone(),
            target,
            addr: crate::members::peer_addr(spec).to_string(),
            link,
            security: self.security.clone(),
        }
    }

    /// Asks `target` to start an election at once (see [`PeerRequest::TakeOver`]).
    pub(crate) async fn take_over(&self, target: NodeId, spec: &str) -> Result<(), String> {
        match self
            .client(target, spec)
            .call(PeerRequest::TakeOver, FORWARD_TIMEOUT)
            .await
        {
            Ok(PeerResponse::TakingOver) => Ok(()),
            Ok(PeerResponse::Refused(why)) => Err(why),
            Ok(_) => Err(out_of_turn(target)),
            Err(e) => Err(e.to_string()),
        }
    }

    /// For each peer this member has talked to, the requests that missed their deadline.
    pub(crate) fn deadline_misses(&self) -> Vec<(NodeId, u64)> {
        let links = self.links.lock().unwrap_or_else(|e| e.into_inner());
        let mut out: Vec<_> = links
            .iter()
            .map(|(id, l)| {
                let misses = l.deadline_misses.load(std::sync::atomic::Ordering::Relaxed);
                (*id, misses)
            })
            .collect();
        out.sort_unstable();
        out
    }

    /// `target`'s answer to a pre-vote, if it answers within `within`.
    pub(crate) async fn pre_vote(
        &self,
        target: NodeId,
        spec: &str,
        req: crate::election::PreVote,
        within: Duration,
    ) -> Option<crate::election::PreVoteAnswer> {
        let client = self.client(target, spec);
        let answer = client.call(PeerRequest::PreVote(req), within).await;
        client.note(&answer);
        match answer {
            Ok(PeerResponse::PreVote(a)) => Some(a),
            _ => None,
        }
    }

    /// Whether `target` already belongs to an ensemble; `None` if it does not answer.
    pub(crate) async fn initialized(&self, target: NodeId, spec: &str) -> Option<bool> {
        match self
            .client(target, spec)
            .call(PeerRequest::Initialized, CONNECT_TIMEOUT * 2)
            .await
        {
            Ok(PeerResponse::Initialized(b)) => Some(b),
            _ => None,
        }
    }

    /// How far `target` has got; `None` if it does not answer (or is older than this
    /// request).
    pub(crate) async fn progress(
        &self,
        target: NodeId,
        spec: &str,
    ) -> Option<crate::election::Progress> {
        match self
            .client(target, spec)
            .call(PeerRequest::Progress, CONNECT_TIMEOUT * 2)
            .await
        {
            Ok(PeerResponse::Progress(p)) => Some(p),
            _ => None,
        }
    }

    /// Asks the leader to carry out a membership change, on a connection of its own: the change
    /// can take seconds (new members catch up first), and the kept connection carries the
    /// writes forwarded meanwhile.
    pub(crate) async fn reconfig(
        &self,
        leader: NodeId,
        spec: &str,
        req: Reconfig,
    ) -> Result<u64, ReconfigError> {
        let client = PeerClient {
            link: Default::default(),
            ..self.client(leader, spec)
        };
        // Each step commits within an election or two; catching up is bounded on the leader.
        let within = self.catch_up_within + Duration::from_secs(15);
        match client.call(PeerRequest::Reconfig(req), within).await {
            Ok(PeerResponse::Reconfigured(r)) => r,
            Ok(PeerResponse::NotLeader) => Err(ReconfigError::NoLeader(format!(
                "server {leader} no longer leads"
            ))),
            Ok(_) => Err(ReconfigError::Failed(out_of_turn(leader))),
            Err(
                e @ (CallError::Connect { .. }
                | CallError::Secure { .. }
                | CallError::Refused { .. }),
            ) => Err(ReconfigError::NoLeader(e.to_string())),
            // It may have been carried out, in part or whole.
            Err(e) => Err(ReconfigError::Failed(format!(
                "{e}; the change may have been made: read /zookeeper/config"
            ))),
        }
    }

    /// Sends a request only the leader answers: its answer, or why it was not taken.
    async fn ask_leader(
        &self,
        leader: NodeId,
        addr: &str,
        req: PeerRequest,
    ) -> Result<PeerResponse, ForwardError> {
        match self.client(leader, addr).call(req, FORWARD_TIMEOUT).await {
            Ok(PeerResponse::NotLeader) => Err(ForwardError::NotTaken(format!(
                "server {leader} no longer leads"
            ))),
            Ok(answer) => Ok(answer),
            // Never reached the leader: safe to send again.
            Err(
                e @ (CallError::Connect { .. }
                | CallError::Secure { .. }
                | CallError::Refused { .. }),
            ) => Err(ForwardError::NotTaken(e.to_string())),
            Err(e) => Err(ForwardError::Lost(e.to_string())),
        }
    }

    /// Hands an entry's commands to the leader for ordering.
    #[tracing::instrument(target = "zooid::trace", name = "zooid.forward", level = "debug", skip_all, fields(leader = leader, bytes = entry.len()))]
    pub(crate) async fn forward(
        &self,
        leader: NodeId,
        addr: &str,
        entry: bytes::Bytes,
    ) -> Result<(), ForwardError> {
        match self
            .ask_leader(leader, addr, PeerRequest::Forward(entry))
            .await?
        {
            PeerResponse::Forwarded => Ok(()),
            _ => Err(ForwardError::Lost(out_of_turn(leader))),
        }
    }

    /// Asks the leader for a read index (see [`PeerRequest::ReadIndex`]).
    pub(crate) async fn read_index(
        &self,
        leader: NodeId,
        addr: &str,
    ) -> Result<Option<u64>, LeaderError> {
        match self
            .ask_leader(leader, addr, PeerRequest::ReadIndex)
            .await?
        {
            PeerResponse::ReadIndex(i) => Ok(i),
            _ => Err(LeaderError::OutOfTurn(leader)),
        }
    }

    /// Tells the leader which sessions were heard from here.
    pub(crate) async fn touch(
        &self,
        leader: NodeId,
        addr: &str,
        sessions: Vec<i64>,
    ) -> Result<(), LeaderError> {
        match self
            .ask_leader(leader, addr, PeerRequest::Touch(sessions))
            .await?
        {
            PeerResponse::Touched => Ok(()),
            _ => Err(LeaderError::OutOfTurn(leader)),
        }
    }
}

fn out_of_turn(leader: NodeId) -> String {
    format!("server {leader} answered out of turn")
}

impl RaftNetworkFactory<TypeConfig> for PeerNetwork {
    type Network = PeerClient;

    async fn new_client(&mut self, target: NodeId, node: &BasicNode) -> PeerClient {
        self.client(target, &node.addr)
    }
}

/// openraft's client for one peer.
pub struct PeerClient {
    me: NodeId,
    cluster: String,
    target: NodeId,
    addr: String,
    link: Link,
    security: Security,
}

/// Why forwarded commands were not taken by the leader.
#[derive(Debug, thiserror::Error)]
pub enum ForwardError {
    /// Certainly not queued by the leader (it was not reached, or does not lead): they may be
    /// sent again.
    #[error("not taken: {0}")]
    NotTaken(String),
    /// Perhaps queued, perhaps not (no answer came): sending them again could apply them
    /// twice, so they are given up.
    #[error("perhaps lost: {0}")]
    Lost(String),
}

/// Why an RPC got no answer.
#[derive(Debug, thiserror::Error)]
enum CallError {
    #[error("connecting to {addr}: {source}")]
    Connect {
        addr: String,
        source: std::io::Error,
    },
    #[error("no answer from {addr} within {0:?}", .timeout)]
    Timeout { addr: String, timeout: Duration },
    #[error("securing the connection to {addr}: {source}")]
    Secure {
        addr: String,
        source: std::io::Error,
    },
    #[error("{addr} refused the connection: {reason}")]
    Refused { addr: String, reason: String },
    #[error("talking to {addr}: {source}")]
    Wire { addr: String, source: WireError },
    #[error("{addr} answered out of turn")]
    Unexpected { addr: String },
}

impl PeerClient {
    /// Sends one request and waits for its response, within `timeout`.
    ///
    /// The connection is taken out of the link for the call and put back only once the
    /// response has been read. After a failure, or if the caller drops this future midway
    /// (openraft bounds its own calls with timeouts too), the connection is dropped with it:
    /// its late response must never be read as the next request's. (A success read as
    /// another append's would tell the leader a member holds entries it never got.)
    async fn call(&self, req: PeerRequest, timeout: Duration) -> Result<PeerResponse, CallError> {
        let mut link = self.link.stream.lock().await;
        let kept = link.take();
        let result = tokio::time::timeout(timeout, async {
            let mut stream = match kept {
                Some(s) => s,
                None => self.connect().await?,
            };
            let wire = |source| CallError::Wire {
                addr: self.addr.clone(),
                source,
            };
            write_frame(&mut stream, &req).await.map_err(wire)?;
            let answer = read_frame(&mut stream).await.map_err(wire)?;
            Ok((answer, stream))
        })
        .await
        .unwrap_or_else(|_| {
            Err(CallError::Timeout {
                addr: self.addr.clone(),
                timeout,
            })
        });
        let result = result.map(|(answer, stream)| {
            *link = Some(stream);
            answer
        });
        if let Err(e) = &result {
            if matches!(e, CallError::Timeout { .. }) {
                self.link
                    .deadline_misses
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
        }
        result
    }

    async fn connect(&self) -> Result<PeerStream, CallError> {
        let connect = |source| CallError::Connect {
            addr: self.addr.clone(),
            source,
        };
        let stream = tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(&self.addr))
            .await
            .map_err(|_| connect(std::io::ErrorKind::TimedOut.into()))?
            .map_err(connect)?;
        stream.set_nodelay(true).map_err(connect)?;
        let mut stream = self
            .security
            .0
            .connect(stream, host_of(&self.addr))
            .await
            .map_err(|source| CallError::Secure {
                addr: self.addr.clone(),
                source,
            })?;
        let wire = |source| CallError::Wire {
            addr: self.addr.clone(),
            source,
        };
        let hello = PeerRequest::Hello {
            cluster: self.cluster.clone(),
            from: self.me,
            to: self.target,
        };
        write_frame(&mut stream, &hello).await.map_err(wire)?;
        match read_frame(&mut stream).await.map_err(wire)? {
            PeerResponse::Welcome => Ok(stream),
            PeerResponse::Refused(reason) => Err(CallError::Refused {
                addr: self.addr.clone(),
                reason,
            }),
            _ => Err(CallError::Unexpected {
                addr: self.addr.clone(),
            }),
        }
    }

    fn rpc_error<E: std::error::Error>(&self, e: CallError) -> RPCError<NodeId, BasicNode, E> {
        match e {
            // Nobody listening, or not the member expected: back off before trying again.
            CallError::Connect { .. } | CallError::Refused { .. } | CallError::Secure { .. } => {
                RPCError::Unreachable(Unreachable::new(&e))
            }
            _ => RPCError::Network(NetworkError::new(&e)),
        }
    }

    /// Says once that the peer stopped answering, and once that it answers again.
    fn note(&self, answer: &Result<PeerResponse, CallError>) {
        use std::sync::atomic::Ordering;
        match answer {
            Err(
                e @ (CallError::Connect { .. }
                | CallError::Secure { .. }
                | CallError::Timeout { .. }
                | CallError::Wire { .. }),
            ) => {
                if !self.link.down.swap(true, Ordering::Relaxed) {
                    tracing::warn!(
                        "server {} does not answer: {e}; retrying (said again once it answers)",
                        self.target
                    );
                }
            }
            Ok(_) => {
                if self.link.down.swap(false, Ordering::Relaxed) {
                    tracing::info!("server {} answers again", self.target);
                }
            }
            Err(_) => {}
        }
    }

    fn remote<E: std::error::Error>(&self, e: E) -> RPCError<NodeId, BasicNode, E> {
        RPCError::RemoteError(RemoteError::new(self.target, e))
    }
}

/// Bytes an entry takes on the wire, near enough to keep a request under the budget.
fn entry_bytes(e: &openraft::Entry<TypeConfig>) -> usize {
    64 + match &e.payload {
        EntryPayload::Normal(Command(c)) => c.len(),
        EntryPayload::Membership(m) => 64 * m.nodes().count(),
        EntryPayload::Blank => 0,
    }
}

/// How many of `entries` fit in one request, if not all do (at least one always goes).
fn entries_over_budget(entries: &[openraft::Entry<TypeConfig>]) -> Option<usize> {
    let mut total = 0;
    for (i, e) in entries.iter().enumerate() {
        total += entry_bytes(e);
        if total > APPEND_BUDGET_BYTES {
            return Some(i.max(1)).filter(|n| *n < entries.len());
        }
    }
    None
}

impl RaftNetwork<TypeConfig> for PeerClient {
    #[tracing::instrument(target = "zooid::trace", name = "zooid.replicate", level = "debug", skip_all, fields(to = %self.addr, entries = rpc.entries.len()))]
    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<AppendEntriesResponse<NodeId>, RPCError<NodeId, BasicNode, RaftError<NodeId>>> {
        if let Some(fit) = entries_over_budget(&rpc.entries) {
            return Err(RPCError::PayloadTooLarge(
                PayloadTooLarge::new_entries_hint(fit as u64),
            ));
        }
        let answer = self
            .call(PeerRequest::AppendEntries(rpc), option.hard_ttl())
            .await;
        self.note(&answer);
        match answer {
            Ok(PeerResponse::AppendEntries(Ok(r))) => Ok(r),
            Ok(PeerResponse::AppendEntries(Err(e))) => Err(self.remote(e)),
            Ok(_) => Err(self.rpc_error(CallError::Unexpected {
                addr: self.addr.clone(),
            })),
            Err(e) => Err(self.rpc_error(e)),
        }
    }

    #[tracing::instrument(target = "zooid::trace", name = "zooid.snapshot.send", level = "debug", skip_all, fields(to = %self.addr, offset = rpc.offset, bytes = rpc.data.len()))]
    async fn install_snapshot(
        &mut self,
        rpc: InstallSnapshotRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<
        InstallSnapshotResponse<NodeId>,
        RPCError<NodeId, BasicNode, RaftError<NodeId, InstallSnapshotError>>,
    > {
        match self
            .call(PeerRequest::InstallSnapshot(rpc), option.hard_ttl())
            .await
        {
            Ok(PeerResponse::InstallSnapshot(Ok(r))) => Ok(r),
            Ok(PeerResponse::InstallSnapshot(Err(e))) => Err(self.remote(e)),
            Ok(_) => Err(self.rpc_error(CallError::Unexpected {
                addr: self.addr.clone(),
            })),
            Err(e) => Err(self.rpc_error(e)),
        }
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<NodeId>,
        option: RPCOption,
    ) -> Result<VoteResponse<NodeId>, RPCError<NodeId, BasicNode, RaftError<NodeId>>> {
        let answer = self.call(PeerRequest::Vote(rpc), option.hard_ttl()).await;
        self.note(&answer);
        match answer {
            Ok(PeerResponse::Vote(Ok(r))) => Ok(r),
            Ok(PeerResponse::Vote(Err(e))) => Err(self.remote(e)),
            Ok(_) => Err(self.rpc_error(CallError::Unexpected {
                addr: self.addr.clone(),
            })),
            Err(e) => Err(self.rpc_error(e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use openraft::{CommittedLeaderId, Entry, LogId};

    fn entry(i: u64, bytes: usize) -> Entry<TypeConfig> {
        Entry {
            log_id: LogId::new(CommittedLeaderId::new(1, 1), i),
            payload: EntryPayload::Normal(Command(vec![0; bytes].into())),
        }
    }

    /// A peer that answers ReadIndex with `100 * connection + request` (both counted from 1),
    /// the first request of its first connection late; says on `late` once that answer is
    /// written.
    async fn numbering_peer(late: tokio::sync::oneshot::Sender<()>) -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        tokio::spawn(async move {
            let mut late = Some(late);
            for conn in 1u64.. {
                let (mut s, _) = listener.accept().await.unwrap();
                let _: PeerRequest = read_frame(&mut s).await.unwrap();
                write_frame(&mut s, &PeerResponse::Welcome).await.unwrap();
                let first_late = late.take();
                tokio::spawn(async move {
                    let mut first_late = first_late;
                    for req in 1u64.. {
                        let Ok(PeerRequest::ReadIndex) = read_frame(&mut s).await else {
                            return;
                        };
                        let delayed = first_late.take();
                        if delayed.is_some() {
                            tokio::time::sleep(Duration::from_millis(200)).await;
                        }
                        let answer = PeerResponse::ReadIndex(Some(100 * conn + req));
                        if write_frame(&mut s, &answer).await.is_err() {
                            return;
                        }
                        if let Some(tx) = delayed {
                            let _ = tx.send(());
                        }
                    }
                });
            }
        });
        addr
    }

    #[tokio::test]
    async fn a_call_its_caller_gave_up_on_leaves_no_answer_for_the_next() {
        let (late_tx, late) = tokio::sync::oneshot::channel();
        let addr = numbering_peer(late_tx).await;
        let net = PeerNetwork::new(
            1,
            "test".into(),
            Duration::from_secs(1),
            Security::default(),
        );
        let client = net.client(2, &addr);
        // openraft drops its RPC futures at its own deadline, whatever ours says.
        let abandoned = tokio::time::timeout(
            Duration::from_millis(50),
            client.call(PeerRequest::ReadIndex, Duration::from_secs(5)),
        )
        .await;
        assert!(abandoned.is_err(), "{abandoned:?}");
        // The abandoned request's answer is on its way back now.
        late.await.unwrap();
        let next = client
            .call(PeerRequest::ReadIndex, Duration::from_secs(5))
            .await
            .unwrap();
        // Its own answer, on a new connection: not the late one (101).
        assert!(
            matches!(next, PeerResponse::ReadIndex(Some(201))),
            "{next:?}"
        );
        let again = client
            .call(PeerRequest::ReadIndex, Duration::from_secs(5))
            .await
            .unwrap();
        assert!(
            matches!(again, PeerResponse::ReadIndex(Some(202))),
            "{again:?}"
        );
    }

    #[test]
    fn appends_are_cut_to_the_byte_budget() {
        let small: Vec<_> = (0..100).map(|i| entry(i, 1000)).collect();
        assert_eq!(entries_over_budget(&small), None);
        let big: Vec<_> = (0..10).map(|i| entry(i, 3 << 20)).collect();
        assert_eq!(entries_over_budget(&big), Some(2));
        // One entry over the budget still goes alone.
        let huge = vec![entry(0, 20 << 20), entry(1, 1)];
        assert_eq!(entries_over_budget(&huge), Some(1));
        assert_eq!(entries_over_budget(&huge[..1]), None);
    }
}
