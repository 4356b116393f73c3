//! The openraft type configuration and the Raft log's record types.

use openraft::{BasicNode, Entry};
use serde::{Deserialize, Serialize};

/// One replicated entry's payload: a batch of encoded commands, opaque to this crate.
/// `Bytes`, because openraft and the log's cache clone payloads: a clone is a reference.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Command(pub bytes::Bytes);

openraft::declare_raft_types!(
    /// Zooid's Raft types: node ids are `u64`, snapshots are files, streamed in chunks to and
    /// from other members.
    pub TypeConfig:
        D = Command,
        R = (),
        NodeId = u64,
        Node = BasicNode,
        Entry = Entry<TypeConfig>,
        SnapshotData = tokio::fs::File,
);

pub type NodeId = u64;
pub type LogId = openraft::LogId<NodeId>;
pub type Vote = openraft::Vote<NodeId>;
pub type StorageError = openraft::StorageError<NodeId>;
pub type StoredMembership = openraft::StoredMembership<NodeId, BasicNode>;
pub type SnapshotMeta = openraft::SnapshotMeta<NodeId, BasicNode>;

/// Wraps an I/O error as openraft's storage error.
pub fn io_err(
    subject: openraft::ErrorSubject<NodeId>,
    verb: openraft::ErrorVerb,
    e: std::io::Error,
) -> StorageError {
    StorageError::from_io_error(subject, verb, e)
}
