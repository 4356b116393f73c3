//! What servers say to each other on the peer port: length-prefixed frames (a 4-byte
//! big-endian length, then a postcard-encoded message), one request and its response at a time
//! on a connection.
//!
//! A connection opens with [`PeerRequest::Hello`]: the cluster name and both ids, so that a
//! server wired to the wrong address, or to another ensemble, is refused at once instead of
//! voting in an election it does not belong to.

use crate::types::{NodeId, TypeConfig};
use openraft::error::{InstallSnapshotError, RaftError};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    VoteRequest, VoteResponse,
};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// Largest frame read or written. An AppendEntries is cut to [`APPEND_BUDGET_BYTES`] and a
/// snapshot travels in chunks of openraft's `snapshot_max_chunk_size` (3 MiB), so only a
/// single command larger than this could need more, and a command is bounded by the client
/// port's frame limit long before.
pub const MAX_FRAME_BYTES: usize = 64 << 20;

/// Bytes of entries sent in one AppendEntries; openraft bounds them by count only.
pub const APPEND_BUDGET_BYTES: usize = 8 << 20;

#[derive(Debug, Serialize, Deserialize)]
pub enum PeerRequest {
    Hello {
        cluster: String,
        from: NodeId,
        to: NodeId,
    },
    AppendEntries(AppendEntriesRequest<TypeConfig>),
    Vote(VoteRequest<NodeId>),
    InstallSnapshot(InstallSnapshotRequest<TypeConfig>),
    /// An entry's worth of commands for the leader to order (see [`crate::proposer`]).
    Forward(bytes::Bytes),
    /// Sessions whose clients were heard from on the sender since its last touch: the leader
    /// alone expires sessions, so it must know who is alive elsewhere.
    Touch(Vec<i64>),
    /// The leader's commit index, once it has confirmed it still leads (for `sync`).
    ReadIndex,
    /// A membership change for the leader to carry out (see [`crate::reconfig`]).
    Reconfig(crate::reconfig::Reconfig),
    /// Whether the receiver already belongs to an ensemble: a new server asks before it
    /// starts one, so that a server added to a running ensemble waits to be added instead.
    Initialized,
    /// From a leader that is stopping, to a follower with all of its log: start an election
    /// now (openraft 0.9 has no TimeoutNow; the stopping leader grants the vote).
    TakeOver,
    /// Would the receiver elect the sender (see [`crate::election`])? Asked before the sender
    /// raises its term.
    PreVote(crate::election::PreVote),
    /// How far the receiver has got: asked by a voter that starts without any data (see
    /// [`crate::election`]). New variants go last, so that older members still read the
    /// ones before.
    Progress,
}

#[derive(Debug, Serialize, Deserialize)]
pub enum PeerResponse {
    Welcome,
    /// The connection is refused (wrong cluster or id); it is closed after this.
    Refused(String),
    AppendEntries(Result<AppendEntriesResponse<NodeId>, RaftError<NodeId>>),
    Vote(Result<VoteResponse<NodeId>, RaftError<NodeId>>),
    InstallSnapshot(
        Result<InstallSnapshotResponse<NodeId>, RaftError<NodeId, InstallSnapshotError>>,
    ),
    /// The forwarded commands are queued for ordering.
    Forwarded,
    /// This member does not lead: the forwarded commands or touches were not taken.
    NotLeader,
    Touched,
    ReadIndex(Option<u64>),
    /// The version of the new membership, or why there is none.
    Reconfigured(Result<u64, crate::reconfig::ReconfigError>),
    Initialized(bool),
    TakingOver,
    PreVote(crate::election::PreVoteAnswer),
    Progress(crate::election::Progress),
}

#[derive(Debug, thiserror::Error)]
pub enum WireError {
    #[error(transparent)]
    Io(#[from] std::io::Error),
    #[error("a frame of {0} bytes is over the limit of {MAX_FRAME_BYTES}")]
    TooLarge(usize),
    #[error("undecodable message: {0}")]
    Decode(#[from] postcard::Error),
}

/// Writes one message as a frame.
pub async fn write_frame<W, T>(w: &mut W, msg: &T) -> Result<(), WireError>
where
    W: AsyncWrite + Unpin,
    T: Serialize,
{
    // The length goes in front of the encoding without a second copy.
    let mut buf = postcard::to_extend(msg, vec![0u8; 4])?;
    let len = buf.len() - 4;
    if len > MAX_FRAME_BYTES {
        return Err(WireError::TooLarge(len));
    }
    buf[..4].copy_from_slice(&(len as u32).to_be_bytes());
    w.write_all(&buf).await?;
    w.flush().await?;
    Ok(())
}

/// Reads one frame and decodes it. The length is checked before anything is allocated.
pub async fn read_frame<R, T>(r: &mut R) -> Result<T, WireError>
where
    R: AsyncRead + Unpin,
    T: DeserializeOwned,
{
    let len = r.read_u32().await? as usize;
    if len > MAX_FRAME_BYTES {
        return Err(WireError::TooLarge(len));
    }
    let mut buf = vec![0u8; len];
    r.read_exact(&mut buf).await?;
    Ok(postcard::from_bytes(&buf)?)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::types::Command;
    use openraft::{CommittedLeaderId, Entry, EntryPayload, LogId, Vote};

    #[tokio::test]
    async fn an_append_entries_survives_the_round_trip() {
        let log_id = |i| LogId::new(CommittedLeaderId::new(3, 1), i);
        let req = PeerRequest::AppendEntries(AppendEntriesRequest {
            vote: Vote::new_committed(3, 1),
            prev_log_id: Some(log_id(6)),
            entries: vec![
                Entry {
                    log_id: log_id(7),
                    payload: EntryPayload::Normal(Command(bytes::Bytes::from_static(b"abc"))),
                },
                Entry {
                    log_id: log_id(8),
                    payload: EntryPayload::Blank,
                },
            ],
            leader_commit: Some(log_id(6)),
        });
        let (mut a, mut b) = tokio::io::duplex(1 << 16);
        write_frame(&mut a, &req).await.unwrap();
        let got: PeerRequest = read_frame(&mut b).await.unwrap();
        assert_eq!(format!("{got:?}"), format!("{req:?}"));
    }

    #[tokio::test]
    async fn an_oversized_length_is_refused_before_allocating() {
        let (mut a, mut b) = tokio::io::duplex(64);
        a.write_all(&u32::MAX.to_be_bytes()).await.unwrap();
        let got = read_frame::<_, PeerRequest>(&mut b).await;
        assert!(matches!(got, Err(WireError::TooLarge(_))), "{got:?}");
    }
}
