//! Transactions: the only way the tree changes. The server decides their order (standalone, or
//! through the Raft log); applying one is deterministic, so every replica computes the same tree.

use bytes::Bytes;
use zooid_proto::{Acl, ErrorCode, EventType, Id, Stat};

/// One ordered change, stamped by whoever ordered it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Txn {
    /// Position in the total order; becomes czxid / mzxid / pzxid.
    pub zxid: i64,
    /// Wall-clock milliseconds stamped when the txn was ordered; becomes ctime / mtime.
    pub time: i64,
    /// The session that asked for the change (owner of new ephemerals).
    pub session: i64,
    /// The server whose client asked for it; `None` for what the ensemble does by itself
    /// (expiring a session, collecting a container). A session's requests count only from the
    /// server that holds it (see [`crate::SessionMeta::owner`]).
    pub origin: Option<u64>,
    /// What the apply checks for the client that asked, as the server that took its request
    /// decided: part of the apply, so that every member decides alike.
    pub checks: Checks,
    pub op: TxnOp,
}

/// The checks a client's write is applied under. The default checks nothing: what the
/// ensemble does by itself, and entries logged before checks were made.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Checks {
    /// The identities of the client (its connection's), checked against the ACLs of the
    /// nodes the write changes; `None`: not checked.
    pub ids: Option<std::sync::Arc<[Id]>>,
    /// ZooKeeper's `enforceQuota`: a create or setData that would take a quota'd subtree past
    /// a hard limit (`countHardLimit`, `byteHardLimit`) fails QUOTAEXCEEDED.
    pub quota: bool,
}

/// What kind of node a create makes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CreateKind {
    Persistent,
    Ephemeral,
    Container,
    /// Time to live in milliseconds.
    Ttl(i64),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Create {
    pub path: String,
    pub data: Option<Bytes>,
    pub acl: Vec<Acl>,
    pub kind: CreateKind,
    pub sequential: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TxnOp {
    CreateSession {
        timeout_ms: i32,
        passwd: [u8; 16],
    },
    /// Closes (or expires) `Txn::session`, deleting its ephemerals.
    CloseSession,
    /// `Txn::session` is now held by server `to`: a client resumed it there. Requests from
    /// other servers for it fail with SESSIONMOVED from this entry on, so that a connection the
    /// client left behind cannot change anything after the client went on elsewhere.
    MoveSession {
        to: u64,
    },
    Create(Create),
    Delete {
        path: String,
        version: i32,
    },
    SetData {
        path: String,
        data: Option<Bytes>,
        version: i32,
    },
    SetAcl {
        path: String,
        acl: Vec<Acl>,
        version: i32,
    },
    /// Version check; only meaningful inside a multi.
    Check {
        path: String,
        version: i32,
    },
    /// All or nothing; sub-ops see the effects of earlier ones.
    Multi(Vec<TxnOp>),
    /// Garbage collection of an empty container or an expired TTL node, proposed by the server.
    /// Re-checked at apply time: it deletes nothing if the node gained children or was touched.
    DeleteContainer {
        path: String,
    },
    /// A request the server refused before ordering (bad flags, unsupported type...). Like
    /// ZooKeeper's error txn it still takes a zxid, and inside a multi it fails that op.
    Error(ErrorCode),
    /// A piece of a backup being restored (see [`crate::restore`]): `bytes` (a compressed chunk
    /// of its state, [`crate::restore::compress_chunk`]) go at `offset` of restore `id`'s staged
    /// bytes; offset 0 starts that restore, dropping any other.
    RestoreChunk {
        id: i64,
        offset: i64,
        bytes: Bytes,
    },
    /// Replaces the whole state by restore `id`'s staged state, which must be `len` bytes long
    /// (as staged, compressed).
    Restore {
        id: i64,
        len: i64,
    },
    /// Drops restore `id`'s staged chunks: its upload failed.
    CancelRestore {
        id: i64,
    },
}

impl TxnOp {
    /// Whether applying the op makes [`Checks`] (permissions, quotas): the ops a client asks
    /// for on nodes, not the ones on sessions or what the server does itself.
    pub fn is_checked(&self) -> bool {
        matches!(
            self,
            TxnOp::Create(_)
                | TxnOp::Delete { .. }
                | TxnOp::SetData { .. }
                | TxnOp::SetAcl { .. }
                | TxnOp::Check { .. }
                | TxnOp::Multi(_)
        )
    }

    /// A short name of the op, for logs and traces.
    pub fn kind(&self) -> &'static str {
        match self {
            TxnOp::CreateSession { .. } => "createSession",
            TxnOp::CloseSession => "closeSession",
            TxnOp::MoveSession { .. } => "moveSession",
            TxnOp::Create(_) => "create",
            TxnOp::Delete { .. } => "delete",
            TxnOp::SetData { .. } => "setData",
            TxnOp::SetAcl { .. } => "setACL",
            TxnOp::Check { .. } => "check",
            TxnOp::Multi(_) => "multi",
            TxnOp::DeleteContainer { .. } => "deleteContainer",
            TxnOp::Error(_) => "error",
            TxnOp::RestoreChunk { .. } => "restoreChunk",
            TxnOp::Restore { .. } => "restore",
            TxnOp::CancelRestore { .. } => "cancelRestore",
        }
    }

    /// Roughly how many bytes [`crate::encode_op`] writes: paths and data, not the fixed
    /// fields. Lets encoders allocate once.
    pub fn payload_len_hint(&self) -> usize {
        let data = |d: &Option<Bytes>| d.as_ref().map_or(0, Bytes::len);
        match self {
            TxnOp::Create(c) => c.path.len() + data(&c.data) + 32 * c.acl.len(),
            TxnOp::SetData { path, data: d, .. } => path.len() + data(d),
            TxnOp::Delete { path, .. }
            | TxnOp::Check { path, .. }
            | TxnOp::DeleteContainer { path } => path.len(),
            TxnOp::SetAcl { path, acl, .. } => path.len() + 32 * acl.len(),
            TxnOp::Multi(ops) => ops.iter().map(|o| 16 + o.payload_len_hint()).sum(),
            TxnOp::RestoreChunk { bytes, .. } => bytes.len() + 16,
            TxnOp::CreateSession { .. }
            | TxnOp::CloseSession
            | TxnOp::MoveSession { .. }
            | TxnOp::Restore { .. }
            | TxnOp::CancelRestore { .. }
            | TxnOp::Error(_) => 32,
        }
    }
}

/// The successful result of one (sub-)operation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OpOutput {
    SessionCreated,
    SessionMoved,
    /// The ephemerals deleted by closing the session.
    SessionClosed {
        deleted: Vec<String>,
    },
    /// `path` includes any sequential suffix.
    Created {
        path: String,
        stat: Stat,
    },
    Deleted,
    /// setData / setACL: the node's new Stat.
    Stat(Stat),
    Checked,
    Multi(MultiOutput),
    /// A restore's chunk was staged: `len` bytes of it so far.
    RestoreStaged {
        len: u64,
    },
    /// The state was replaced by a backup's: the zxid the backup went up to, how many nodes
    /// it holds, and the tree's digest now ([`crate::digest`]; the backup's own).
    Restored {
        last_zxid: i64,
        nodes: usize,
        digest: u64,
    },
    RestoreCancelled,
}

/// The outcome of a multi: every result, or which op failed and why (nothing was applied).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MultiOutput {
    Committed(Vec<OpOutput>),
    Aborted { index: usize, code: ErrorCode },
}

/// A change that watches may be interested in. Who receives it is the server's business.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChangeEvent {
    pub kind: EventType,
    pub path: String,
    /// The ACL a watcher needs READ under to be told, as ZooKeeper checks it: the changed
    /// node's (the deleted node's, for a deletion), the parent's for a change of children.
    pub acl: std::sync::Arc<[Acl]>,
}

/// What applying a txn produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Applied {
    pub result: Result<OpOutput, ErrorCode>,
    /// In the order ZooKeeper triggers them.
    pub events: Vec<ChangeEvent>,
}
