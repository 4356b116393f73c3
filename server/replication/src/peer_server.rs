//! The receiving side of the peer transport: the peer port's listener hands each request to
//! openraft and sends its answer back, one at a time per connection, in order.

use crate::proposer::Proposer;
use crate::reconfig::Reconfigurer;
use crate::types::*;
use crate::wire::{read_frame, write_frame, PeerRequest, PeerResponse, WireError};
use openraft::raft::AppendEntriesResponse;
use openraft::Raft;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::net::{TcpListener, TcpStream};
use tracing::{debug, info, warn};

/// Peer connections served at once. Members keep one connection to each other, so this is
/// only reached by something that is not a member; it cannot take more.
const MAX_PEER_CONNECTIONS: usize = 64;

/// Time a new connection has to say who it is.
const HELLO_TIMEOUT: Duration = Duration::from_secs(5);

/// What the peer port's requests are handed to.
#[derive(Clone)]
pub struct Handlers {
    pub raft: Raft<TypeConfig>,
    pub proposer: Arc<Proposer>,
    pub reconfigurer: Arc<Reconfigurer>,
    pub leader_contact: Arc<LeaderContact>,
}

/// When a leader last reached this member. openraft 0.9 tells a follower who leads but not
/// whether it still hears from it: a member cut off from the leader (or removed from the
/// ensemble, which nobody tells it) would go on believing in it.
pub struct LeaderContact {
    start: Instant,
    /// Milliseconds from `start` to the last append accepted from a leader.
    last_ms: AtomicU64,
}

impl Default for LeaderContact {
    fn default() -> Self {
        LeaderContact {
            start: Instant::now(),
            last_ms: AtomicU64::new(0),
        }
    }
}

impl LeaderContact {
    fn heard(&self) {
        let now = self.start.elapsed().as_millis() as u64;
        self.last_ms.fetch_max(now, Ordering::Relaxed);
    }

    /// Time since a leader's last append reached this member (since start if none has).
    pub fn silence(&self) -> Duration {
        let last = Duration::from_millis(self.last_ms.load(Ordering::Relaxed));
        self.start.elapsed().saturating_sub(last)
    }
}

/// Accepts peer connections on `listener` until the task is aborted, which closes every
/// connection it accepted too.
pub async fn serve(listener: TcpListener, handlers: Handlers, me: NodeId, cluster: String) {
    let cluster = Arc::new(cluster);
    let mut conns = tokio::task::JoinSet::new();
    let mut pause = Duration::from_millis(10);
    loop {
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
        if conns.len() >= MAX_PEER_CONNECTIONS {
            warn!(%remote, "refusing a peer connection: {MAX_PEER_CONNECTIONS} already open");
            continue;
        }
        let (handlers, cluster) = (handlers.clone(), cluster.clone());
        conns.spawn(async move {
            match connection(stream, &handlers, me, &cluster).await {
                Ok(()) => debug!(%remote, "peer connection closed"),
                Err(e) => debug!(%remote, "peer connection ended: {e}"),
            }
        });
    }
}

async fn connection(
    mut stream: TcpStream,
    handlers: &Handlers,
    me: NodeId,
    cluster: &str,
) -> Result<(), WireError> {
    let Handlers {
        raft,
        proposer,
        reconfigurer,
        leader_contact,
    } = handlers;
    stream.set_nodelay(true)?;
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
    info!(from, "peer connected");
    loop {
        let req = match read_frame(&mut stream).await {
            Ok(r) => r,
            Err(WireError::Io(e)) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(()),
            Err(e) => return Err(e),
        };
        let resp = match req {
            PeerRequest::AppendEntries(r) => {
                let resp = raft.append_entries(r).await;
                // A deposed leader's append is answered with a higher vote: not a leader's.
                if matches!(&resp, Ok(a) if !matches!(a, AppendEntriesResponse::HigherVote(_))) {
                    leader_contact.heard();
                }
                PeerResponse::AppendEntries(resp)
            }
            PeerRequest::Vote(r) => PeerResponse::Vote(raft.vote(r).await),
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
                match raft.trigger().elect().await {
                    Ok(()) => PeerResponse::TakingOver,
                    Err(e) => PeerResponse::Refused(e.to_string()),
                }
            }
            PeerRequest::Initialized => {
                PeerResponse::Initialized(raft.is_initialized().await.unwrap_or(false))
            }
            PeerRequest::Hello { .. } => PeerResponse::Refused("Hello twice".into()),
        };
        write_frame(&mut stream, &resp).await?;
    }
}
