//! Ordering and durability for Zooid. Commands are ordered by openraft (0.9, storage v2), kept
//! in a `raft-log` write-ahead log with group commit, and applied in order to the server's
//! state through the [`Applier`] trait; snapshots are our own checksummed, compressed files.
//! This is the only crate that names openraft.
//!
//! Start at [`Consensus`] (`consensus.rs`: start, propose, the leader's read index, reconfig,
//! backup) and the [`Applier`] the server implements; `proposer.rs` batches commands into
//! entries (group commit), `network.rs` and `peer_server.rs` are the peer transport, secured as `transport.rs` says.

// openraft's traits fix the (large) storage error type; boxing it is not ours to choose.
#![allow(clippy::result_large_err)]

pub mod batch;
pub mod chunk_reaper;
pub mod consensus;
pub mod election;
pub mod failure;
pub mod log_store;
pub mod members;
pub mod network;
mod own_runtime;
pub mod peer_server;
pub mod proposer;
pub mod reconfig;
pub mod snapshot_file;
pub mod state_machine;
pub mod transport;
pub mod types;
pub mod wal_check;
pub mod wire;

pub use consensus::{
    Backup, BackupError, Consensus, ConsensusConfig, ConsensusError, Followers, LogStats, Peers,
    RaftFigures, DEFAULT_WAL_CHUNK_BYTES,
};
pub use election::{ElectionStats, Timing};
pub use failure::{Failure, LeaderError};
pub use log_store::Fsyncs;
pub use members::{Member, Members};
pub use proposer::BatchSizes;
pub use reconfig::{MemberChange, Reconfig, ReconfigError};
pub use state_machine::{Applier, RestoreError, StateEncoder};
pub use transport::{Accepted, PeerIo, PeerSecurity, PeerStream, Plaintext, Security, SpeaksFor};
