//! Why this member stopped ordering writes ([`Failure`]), and why a request that needs the
//! leader (a read index, session touches) did not get through ([`LeaderError`]).

use crate::network::ForwardError;
use crate::types::NodeId;
use std::sync::Arc;
use std::time::Duration;

/// An error of openraft's, kept with its source chain and shareable (a failure is told to
/// everyone who waits for it).
pub type RaftCause = Arc<dyn std::error::Error + Send + Sync>;

/// Why this member can no longer order writes (see [`crate::Consensus::failed`]): nothing
/// proposed afterwards is applied, so the server stops serving.
#[derive(Debug, Clone, thiserror::Error)]
pub enum Failure {
    /// openraft stopped on a fatal error (a log or state machine I/O failure).
    #[error("raft stopped: {0}")]
    Fatal(#[source] RaftCause),
    #[error("raft refused a proposal: {0}")]
    Refused(#[source] RaftCause),
    #[error("raft stopped while a proposal was sent")]
    StoppedMidProposal,
    #[error("raft stopped")]
    Stopped,
    #[error("proposal forwarding stopped")]
    ForwardingStopped,
}

/// Why a request that needs the leader did not get through; the caller may try again once
/// a leader is known.
#[derive(Debug, thiserror::Error)]
pub enum LeaderError {
    #[error("consensus has not started")]
    NotStarted,
    #[error("no leader")]
    NoLeader,
    #[error("no read index from the leader within {0:?}")]
    Timeout(Duration),
    #[error("the leader could not confirm that it leads: {0}")]
    NotConfirmed(#[source] RaftCause),
    #[error(transparent)]
    Forward(#[from] ForwardError),
    #[error("server {0} answered out of turn")]
    OutOfTurn(NodeId),
    #[error("applying up to the read index {index}: {source}")]
    Apply {
        index: u64,
        #[source]
        source: RaftCause,
    },
}
