//! The znode tree. Changes arrive as ordered [`Txn`]s and are applied by [`DataTree::apply`],
//! which is deterministic: the same txns in the same order give the same tree, results and
//! change events on every replica. No I/O and no clock: time comes inside each txn.
//!
//! Start at [`DataTree::apply`] (in `tree.rs`) and [`TxnOp`] (every change there is);
//! `codec.rs` and `zookeeper_snapshot.rs` write and read the tree as Zooid's and as Apache
//! ZooKeeper's snapshots.

pub mod acl;
pub mod codec;
pub mod digest;
pub mod node;
pub mod path;
pub mod quota;
pub mod restore;
pub mod tree;
pub mod txn;
pub mod zookeeper_snapshot;

pub use codec::{decode_op, encode_op, FrozenTree, SnapshotError, SnapshotHead};
pub use digest::DIGEST_VERSION;
pub use node::{Node, NodeKind};
pub use restore::StagedRestore;
pub use tree::{CollectionView, DataTree, SessionMeta, Subtree, MAX_TTL_MS};
pub use txn::*;
pub use zookeeper_snapshot::{
    read_zookeeper_snapshot, write_zookeeper_snapshot, ZooKeeperSnapshotError,
};
