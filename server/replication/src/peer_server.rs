//! The receiving side of the peer transport: the peer port's listener hands each request to
//! openraft and sends its answer back, one at a time per connection, in order.

use crate::proposer::Proposer;
use crate::types::*;
use crate::wire::{read_frame, write_frame, PeerRequest, PeerResponse, WireError};
use openraft::Raft;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tracing::{debug, info, warn};

/// Peer connections served at once. Members keep one connection to each other, so this is
/// only reached by something that is not a member; it cannot take more.
const MAX_PEER_CONNECTIONS: usize = 64;

/// Time a new connection has to say who it is.
const HELLO_TIMEOUT: Duration = Duration::from_secs(5);

/// Accepts peer connections on `listener` until the task is aborted, which closes every
/// connection it accepted too.
pub async fn serve(
    listener: TcpListener,
    raft: Raft<TypeConfig>,
    proposer: Arc<Proposer>,
    me: NodeId,
    cluster: String,
) {
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
        let (raft, proposer, cluster) = (raft.clone(), proposer.clone(), cluster.clone());
        conns.spawn(async move {
            match connection(stream, raft, proposer, me, &cluster).await {
                Ok(()) => debug!(%remote, "peer connection closed"),
                Err(e) => debug!(%remote, "peer connection ended: {e}"),
            }
        });
    }
}

async fn connection(
    mut stream: TcpStream,
    raft: Raft<TypeConfig>,
    proposer: Arc<Proposer>,
    me: NodeId,
    cluster: &str,
) -> Result<(), WireError> {
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
                PeerResponse::AppendEntries(raft.append_entries(r).await)
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
            PeerRequest::Hello { .. } => PeerResponse::Refused("Hello twice".into()),
        };
        write_frame(&mut stream, &resp).await?;
    }
}
