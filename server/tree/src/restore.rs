//! Restoring a backup through the ordered txns, so that every replica swaps to the same state
//! at the same zxid.
//!
//! A backup can be far larger than one log entry may be, so its state (the snapshot encoding
//! of a tree, compressed chunk by chunk) arrives as a run of [`TxnOp::RestoreChunk`]s that
//! every replica stages, then one [`TxnOp::Restore`] replaces the whole state by the staged
//! one at once. The staged chunks are part of the replicated state (snapshots carry them), so
//! a replica that catches up from a snapshot taken half-way through, or restarts from one,
//! still has every chunk at the swap.

use crate::node::Node;
use crate::tree::DataTree;
use crate::txn::{OpOutput, TxnOp};
use bytes::Bytes;
use std::io::Read;
use std::sync::Arc;
use zooid_proto::ErrorCode;

/// The most state one chunk may hold once decompressed. The proposer makes chunks of 1 MiB;
/// a chunk claiming more is refused before anything is allocated for it.
pub const MAX_CHUNK_STATE: usize = 16 << 20;

/// The staged state of one restore, in the order its chunks were applied. Each chunk is an LZ4
/// block with its decompressed size in front (`lz4_flex`'s `compress_prepend_size`): a backup's
/// state usually shrinks several times, and so do the log entries that carry it and what every
/// member holds until the swap.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StagedRestore {
    pub(crate) id: i64,
    pub(crate) chunks: Vec<Bytes>,
    pub(crate) len: u64,
}

impl StagedRestore {
    /// Which restore these chunks belong to.
    pub fn id(&self) -> i64 {
        self.id
    }

    /// Bytes staged so far (compressed, as they came).
    pub fn len(&self) -> u64 {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    fn reader(&self) -> Chunks<'_> {
        Chunks {
            chunks: &self.chunks,
            current: Vec::new(),
            at: 0,
        }
    }
}

/// Reads the staged chunks as one stream, decompressing one chunk at a time.
struct Chunks<'a> {
    chunks: &'a [Bytes],
    current: Vec<u8>,
    at: usize,
}

impl Read for Chunks<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while self.at == self.current.len() {
            let Some((first, rest)) = self.chunks.split_first() else {
                return Ok(0);
            };
            self.chunks = rest;
            self.current = decompress(first)?;
            self.at = 0;
        }
        let n = buf.len().min(self.current.len() - self.at);
        buf[..n].copy_from_slice(&self.current[self.at..self.at + n]);
        self.at += n;
        Ok(n)
    }
}

/// One chunk's state, its claimed size checked first.
fn decompress(chunk: &[u8]) -> std::io::Result<Vec<u8>> {
    let bad = |what: String| std::io::Error::new(std::io::ErrorKind::InvalidData, what);
    let size = chunk
        .get(..4)
        .map(|s| u32::from_le_bytes([s[0], s[1], s[2], s[3]]) as usize)
        .ok_or_else(|| bad("a restore chunk without its size".into()))?;
    if size > MAX_CHUNK_STATE {
        return Err(bad(format!("a restore chunk claims {size} bytes of state")));
    }
    lz4_flex::block::decompress_size_prepended(chunk).map_err(|e| bad(e.to_string()))
}

/// Compresses `state` into a chunk as [`TxnOp::RestoreChunk`] carries it.
pub fn compress_chunk(state: &[u8]) -> Bytes {
    Bytes::from(lz4_flex::block::compress_prepend_size(state))
}

/// `/zookeeper/config` describes the ensemble that holds the tree, not the one a backup was
/// taken from: a restore keeps it.
const CONFIG: &str = "/zookeeper/config";

impl DataTree {
    /// The restore being staged, if any.
    pub fn staged_restore(&self) -> Option<&StagedRestore> {
        self.staged.as_ref()
    }

    /// Applies one of the restore ops (only ever whole txns, never inside a multi).
    pub(crate) fn apply_restore(&mut self, op: TxnOp) -> Result<OpOutput, ErrorCode> {
        match op {
            TxnOp::RestoreChunk { id, offset, bytes } => self.stage(id, offset, bytes),
            TxnOp::Restore { id, len } => self.swap_in(id, len),
            TxnOp::CancelRestore { id } => match &self.staged {
                Some(s) if s.id == id => {
                    self.staged = None;
                    Ok(OpOutput::RestoreCancelled)
                }
                _ => Err(ErrorCode::NoNode),
            },
            _ => Err(ErrorCode::BadArguments),
        }
    }

    /// Offset 0 starts restore `id`, dropping whatever else was staged (an upload that was
    /// abandoned); any other chunk must follow the last one of the same restore.
    fn stage(&mut self, id: i64, offset: i64, bytes: Bytes) -> Result<OpOutput, ErrorCode> {
        if offset == 0 {
            self.staged = Some(StagedRestore {
                id,
                chunks: Vec::new(),
                len: 0,
            });
        }
        let staged = match &mut self.staged {
            Some(s) if s.id == id && s.len == offset as u64 => s,
            _ => return Err(ErrorCode::BadArguments),
        };
        staged.len += bytes.len() as u64;
        staged.chunks.push(bytes);
        Ok(OpOutput::RestoreStaged { len: staged.len })
    }

    /// Replaces the tree and its sessions by restore `id`'s staged state, which must be `len`
    /// bytes long. The staged chunks go either way; a state that cannot be decoded leaves the
    /// tree as it was. What stays: the zxid (the order goes on from here, never back to the
    /// backup's) and `/zookeeper/config`. The backup's sessions come back held by no server in
    /// particular: their clients may resume them anywhere before they expire.
    fn swap_in(&mut self, id: i64, len: i64) -> Result<OpOutput, ErrorCode> {
        let staged = match self.staged.take() {
            Some(s) if s.id == id => s,
            other => {
                self.staged = other;
                return Err(ErrorCode::NoNode);
            }
        };
        if staged.len != len as u64 {
            return Err(ErrorCode::BadArguments);
        }
        let mut tree =
            DataTree::read_snapshot(&mut staged.reader()).map_err(|_| ErrorCode::BadArguments)?;
        drop(staged);
        let backup_zxid = tree.last_zxid;
        tree.staged = None;
        tree.last_zxid = self.last_zxid;
        tree.sessions = tree
            .sessions
            .into_iter()
            .map(|(id, mut m)| {
                m.owner = 0;
                (id, m)
            })
            .collect();
        if let Some(config) = self.nodes.get(CONFIG) {
            let mut node = Node::clone(config);
            if let Some(restored) = tree.nodes.get(CONFIG) {
                node.children = restored.children.clone();
            }
            tree.put_node(CONFIG.into(), Arc::new(node));
        }
        let (nodes, digest) = (tree.node_count(), tree.digest());
        *self = tree;
        Ok(OpOutput::Restored {
            last_zxid: backup_zxid,
            nodes,
            digest,
        })
    }
}
