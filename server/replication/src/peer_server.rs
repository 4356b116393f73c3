//! The receiving side of the peer transport: the peer port's listener hands each request to
//! openraft and sends its answer back, one at a time per connection, in order.

use crate::election::Elector;
use crate::proposer::Proposer;
use crate::reconfig::Reconfigurer;
use crate::transport::{host_of, Accepted, PeerStream, Security};
use crate::types::*;
use crate::wire::{read_frame, write_frame, PeerRequest, PeerResponse, WireError};
use openraft::raft::{AppendEntriesResponse, VoteResponse};
use openraft::Raft;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::Notify;
use tracing::{debug, info, warn};

/// Peer connections served at once. Members keep one connection to each other (and open one
/// more for a membership change), so this is only reached by something that is not a member,
/// or by a backlog of connections a paused member finds on waking (their senders gave up on
/// them long ago, so they end at once): further ones wait in the backlog for a free slot.
const MAX_PEER_CONNECTIONS: usize = 64;

/// Time a new connection has to secure itself (TLS) and say who it is.
const HELLO_TIMEOUT: Duration = Duration::from_secs(5);

/// What the peer port's requests are handed to.
#[derive(Clone)]
pub struct Handlers {
    pub raft: Raft<TypeConfig>,
    pub proposer: Arc<Proposer>,
    pub reconfigurer: Arc<Reconfigurer>,
    pub elector: Arc<Elector>,
}

/// Accepts peer connections on `listener` until the task is aborted, which closes every
/// connection it accepted too.
pub async fn serve(
    listener: TcpListener,
    handlers: Handlers,
    me: NodeId,
    cluster: String,
    security: Security,
) {
    let cluster = Arc::new(cluster);
    let refusals = Arc::new(Refusals::default());
    let live = Arc::new(Live::default());
    let mut conns = tokio::task::JoinSet::new();
    let mut pause = Duration::from_millis(10);
    loop {
        while conns.len() >= MAX_PEER_CONNECTIONS {
            conns.join_next().await;
        }
        let accepted = tokio::select! {
            a = listener.accept() => a,
            Some(_) = conns.join_next() => continue,
        };
        let (stream, remote) = match accepted {
            Ok(c) => {
                pause = Duration::from_millis(10);
                c
            }
            Err(e) => {
                // Usually out of file descriptors: wait rather than spin.
                warn!("accepting a peer connection failed: {e}; pausing {pause:?}");
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_secs(1));
                continue;
            }
        };
        let (handlers, cluster, live) = (handlers.clone(), cluster.clone(), live.clone());
        let (security, refusals) = (security.clone(), refusals.clone());
        conns.spawn(async move {
            let _ = stream.set_nodelay(true);
            let secured = tokio::time::timeout(HELLO_TIMEOUT, security.0.accept(stream)).await;
            let accepted = match secured {
                Ok(Ok(a)) => a,
                Ok(Err(e)) => return refusals.say(remote, &e.to_string()),
                Err(_) => {
                    let why = format!("no handshake within {HELLO_TIMEOUT:?}");
                    return refusals.say(remote, &why);
                }
            };
            match connection(accepted, remote, &handlers, me, &cluster, &live, &refusals).await {
                Ok(()) => debug!(%remote, "peer connection closed"),
                Err(e) => debug!(%remote, "peer connection ended: {e}"),
            }
        });
    }
}

/// Why a peer whose certificate was checked has not shown it is member `from`: its
/// certificate must be valid for the host of `from`'s member spec (the name or address the
/// others reach it at), or for the address it connects from (ZooKeeper's check of a quorum
/// peer, `ssl.quorum.hostnameVerification`).
fn unproven(
    handlers: &Handlers,
    from: NodeId,
    remote: SocketAddr,
    speaks_for: &(dyn Fn(&str) -> bool + Send + Sync),
) -> Option<String> {
    let ip = remote.ip().to_string();
    if speaks_for(&ip) {
        return None;
    }
    let metrics = handlers.raft.metrics().borrow().clone();
    let host = metrics
        .membership_config
        .nodes()
        .find(|(id, _)| **id == from)
        .map(|(_, node)| host_of(crate::members::peer_addr(&node.addr)).to_string());
    match host {
        Some(host) if speaks_for(&host) => None,
        Some(host) => Some(format!(
            "server {from}'s certificate is valid neither for its host {host} nor for              {ip}, where it connects from"
        )),
        None => Some(format!(
            "server {from} is not a member here, and its certificate is not valid for {ip},              where it connects from"
        )),
    }
}

/// Peers refused at the door (an untrusted certificate, plaintext where TLS is asked, a
/// certificate for another host): said at most every [`Refusals::EVERY`] per address, since
/// a refused member retries at every heartbeat.
#[derive(Default)]
struct Refusals {
    said: Mutex<HashMap<std::net::IpAddr, std::time::Instant>>,
}

impl Refusals {
    const EVERY: Duration = Duration::from_secs(10);

    fn say(&self, remote: SocketAddr, why: &str) {
        let mut said = self.said.lock().unwrap_or_else(|e| e.into_inner());
        let now = std::time::Instant::now();
        // Bounded: entries older than the period go before a new one is added.
        said.retain(|_, at| now.duration_since(*at) < Self::EVERY);
        if let std::collections::hash_map::Entry::Vacant(v) = said.entry(remote.ip()) {
            v.insert(now);
            warn!(%remote, "refusing a peer connection: {why} (said again in {:?} if it goes on)", Self::EVERY);
        }
    }
}

/// The connection each member keeps to this one: a newer one from the same member replaces it.
/// A member opens a new connection only after giving up on its old one (a request that timed
/// out, the member paused or restarted), so the old one is dead on the other side, perhaps
/// without this side knowing (a member that vanished sends no FIN); left open, it would hold a
/// slot for ever.
#[derive(Default)]
struct Live {
    next: AtomicU64,
    by_member: Mutex<HashMap<NodeId, (u64, Arc<Notify>)>>,
}

impl Live {
    /// Makes this connection the live one from `from`, ending the one before.
    fn register(&self, from: NodeId) -> (u64, Arc<Notify>) {
        let seq = self.next.fetch_add(1, Ordering::Relaxed);
        let replaced = Arc::new(Notify::new());
        let mut live = self.by_member.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((_, older)) = live.insert(from, (seq, replaced.clone())) {
            older.notify_one();
        }
        (seq, replaced)
    }

    fn deregister(&self, from: NodeId, seq: u64) {
        let mut live = self.by_member.lock().unwrap_or_else(|e| e.into_inner());
        if live.get(&from).is_some_and(|(s, _)| *s == seq) {
            live.remove(&from);
        }
    }
}

async fn connection(
    accepted: Accepted,
    remote: SocketAddr,
    handlers: &Handlers,
    me: NodeId,
    cluster: &str,
    live: &Live,
    refusals: &Refusals,
) -> Result<(), WireError> {
    let mut registered = None;
    let result = serve_connection(
        accepted,
        remote,
        handlers,
        me,
        cluster,
        live,
        refusals,
        &mut registered,
    )
    .await;
    // Closed, not replaced by a newer connection from the same member.
    if let Some((from, seq)) = registered {
        live.deregister(from, seq);
        if handlers.raft.metrics().borrow().current_leader == Some(from) {
            info!(from, "the leader's connection closed");
            handlers.elector.contact().leader_gone();
        }
    }
    result
}

#[allow(clippy::too_many_arguments)]
async fn serve_connection(
    accepted: Accepted,
    remote: SocketAddr,
    handlers: &Handlers,
    me: NodeId,
    cluster: &str,
    live: &Live,
    refusals: &Refusals,
    registered: &mut Option<(NodeId, u64)>,
) -> Result<(), WireError> {
    let mut stream: PeerStream = accepted.stream;
    let Handlers {
        raft,
        proposer,
        reconfigurer,
        elector,
    } = handlers;
    let hello = tokio::time::timeout(HELLO_TIMEOUT, read_frame(&mut stream))
        .await
        .map_err(|_| std::io::Error::from(std::io::ErrorKind::TimedOut))??;
    let from = match hello {
        PeerRequest::Hello {
            cluster: theirs,
            from,
            to,
        } => {
            let refusal = if theirs != cluster {
                Some(format!("this is ensemble {cluster:?}, not {theirs:?}"))
            } else if to != me {
                Some(format!("this is server {me}, not {to}"))
            } else if let Some(why) = accepted
                .speaks_for
                .as_ref()
                .and_then(|speaks_for| unproven(handlers, from, remote, speaks_for))
            {
                refusals.say(remote, &why);
                Some(why)
            } else {
                None
            };
            if let Some(reason) = refusal {
                warn!(from, "refusing a peer: {reason}");
                write_frame(&mut stream, &PeerResponse::Refused(reason)).await?;
                return Ok(());
            }
            from
        }
        _ => {
            let reason = "a peer connection must open with Hello".to_string();
            write_frame(&mut stream, &PeerResponse::Refused(reason)).await?;
            return Ok(());
        }
    };
    write_frame(&mut stream, &PeerResponse::Welcome).await?;
    debug!(from, "peer connected");
    let mut replaced: Option<Arc<Notify>> = None;
    loop {
        let read = tokio::select! {
            r = read_frame(&mut stream) => r,
            _ = async { replaced.as_ref().expect("only polled when set").notified().await },
                if replaced.is_some() => {
                debug!(from, "peer connection replaced by a newer one from the same member");
                *registered = None;
                return Ok(());
            }
        };
        let req = match read {
            Ok(r) => r,
            Err(WireError::Io(e)) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(()),
            Err(e) => return Err(e),
        };
        // The kept connection (not one opened for a single membership change) is the live one.
        if replaced.is_none() && !matches!(req, PeerRequest::Reconfig(_)) {
            let (seq, notify) = live.register(from);
            *registered = Some((from, seq));
            replaced = Some(notify);
        }
        let resp = match req {
            PeerRequest::AppendEntries(r) => {
                let resp = raft.append_entries(r).await;
                // A deposed leader's append is answered with a higher vote: not a leader's.
                if matches!(&resp, Ok(a) if !matches!(a, AppendEntriesResponse::HigherVote(_))) {
                    elector.contact().heard();
                }
                PeerResponse::AppendEntries(resp)
            }
            PeerRequest::Vote(r) => {
                if elector.may_vote(raft) {
                    PeerResponse::Vote(raft.vote(r).await)
                } else {
                    // Refused as openraft refuses one: this member's vote and log as they are.
                    elector.withheld(from);
                    let m = raft.metrics().borrow().clone();
                    let last_log = raft.data_metrics().borrow().last_log;
                    PeerResponse::Vote(Ok(VoteResponse::new(m.vote, last_log, false)))
                }
            }
            PeerRequest::InstallSnapshot(r) => {
                PeerResponse::InstallSnapshot(raft.install_snapshot(r).await)
            }
            PeerRequest::Forward(entry) => {
                if proposer.propose_forwarded(&entry) {
                    PeerResponse::Forwarded
                } else {
                    PeerResponse::NotLeader
                }
            }
            PeerRequest::Touch(sessions) => {
                if proposer.touched(&sessions) {
                    PeerResponse::Touched
                } else {
                    PeerResponse::NotLeader
                }
            }
            PeerRequest::ReadIndex => match raft.get_read_log_id().await {
                Ok((read, _applied)) => PeerResponse::ReadIndex(read.map(|l| l.index)),
                Err(_) => PeerResponse::NotLeader,
            },
            // Sent on a connection of its own (see `PeerNetwork::reconfig`): it may take
            // seconds, and nothing else waits behind it.
            PeerRequest::Reconfig(r) => PeerResponse::Reconfigured(reconfigurer.run(r).await),
            PeerRequest::TakeOver => {
                info!(
                    from,
                    "the leader is stopping and hands over: starting an election"
                );
                match elector.take_over(raft).await {
                    Ok(()) => PeerResponse::TakingOver,
                    Err(e) => PeerResponse::Refused(e),
                }
            }
            PeerRequest::Initialized => {
                PeerResponse::Initialized(raft.is_initialized().await.unwrap_or(false))
            }
            PeerRequest::PreVote(r) => PeerResponse::PreVote(elector.judge(raft, from, &r)),
            PeerRequest::Progress => {
                let m = raft.metrics().borrow().clone();
                PeerResponse::Progress(crate::election::Progress {
                    initialized: raft.is_initialized().await.unwrap_or(false),
                    last_log: m.last_log_index,
                    applied: m.last_applied.map(|l| l.index),
                })
            }
            PeerRequest::Hello { .. } => PeerResponse::Refused("Hello twice".into()),
        };
        write_frame(&mut stream, &resp).await?;
    }
}
