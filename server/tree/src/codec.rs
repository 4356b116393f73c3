//! Binary encodings of what must survive a restart: transaction ops (the Raft log payload) and
//! the whole tree (snapshots). Big-endian jute primitives from `zooid-proto`; every decoder
//! checks what it reads, so a corrupt record is an error, never a panic.

use crate::node::{Node, NodeKind};
use crate::path;
use crate::restore::StagedRestore;
use crate::tree::{DataTree, SessionMeta};
use crate::txn::{Create, CreateKind, TxnOp};
use bytes::{BufMut, Bytes, BytesMut};
use std::io::Read;
use zooid_proto::{Acl, DecodeError, ErrorCode, Reader, Writer};

/// Encoding version written at the start of every snapshot body. Version 1 had no session
/// owners: its sessions are read as held by no server in particular, until a client resumes one.
/// Version 3 added the staged restore after the nodes (see [`crate::restore`]), version 4 the
/// tree's digest after the last zxid (see [`crate::digest`]), checked when the tree is read.
const SNAPSHOT_VERSION: i32 = 4;

fn bad(field: &'static str, value: i64) -> DecodeError {
    DecodeError::BadValue { field, value }
}

/// Appends the encoding of `op`.
pub fn encode_op(op: &TxnOp, b: &mut BytesMut) {
    match op {
        TxnOp::CreateSession { timeout_ms, passwd } => {
            b.put_jint(1);
            b.put_jint(*timeout_ms);
            b.put_jbuffer(Some(passwd));
        }
        TxnOp::CloseSession => b.put_jint(2),
        TxnOp::Create(c) => {
            b.put_jint(3);
            b.put_jstring(&c.path);
            b.put_jbuffer(c.data.as_deref());
            Acl::encode_list(&c.acl, b);
            let (kind, ttl) = match c.kind {
                CreateKind::Persistent => (0, 0),
                CreateKind::Ephemeral => (1, 0),
                CreateKind::Container => (2, 0),
                CreateKind::Ttl(t) => (3, t),
            };
            b.put_jint(kind);
            b.put_jlong(ttl);
            b.put_jbool(c.sequential);
        }
        TxnOp::Delete { path, version } => {
            b.put_jint(4);
            b.put_jstring(path);
            b.put_jint(*version);
        }
        TxnOp::SetData {
            path,
            data,
            version,
        } => {
            b.put_jint(5);
            b.put_jstring(path);
            b.put_jbuffer(data.as_deref());
            b.put_jint(*version);
        }
        TxnOp::SetAcl { path, acl, version } => {
            b.put_jint(6);
            b.put_jstring(path);
            Acl::encode_list(acl, b);
            b.put_jint(*version);
        }
        TxnOp::Check { path, version } => {
            b.put_jint(7);
            b.put_jstring(path);
            b.put_jint(*version);
        }
        TxnOp::Multi(ops) => {
            b.put_jint(8);
            b.put_jint(ops.len() as i32);
            for op in ops {
                encode_op(op, b);
            }
        }
        TxnOp::DeleteContainer { path } => {
            b.put_jint(9);
            b.put_jstring(path);
        }
        TxnOp::Error(code) => {
            b.put_jint(10);
            b.put_jint(code.code());
        }
        TxnOp::MoveSession { to } => {
            b.put_jint(11);
            b.put_jlong(*to as i64);
        }
        TxnOp::RestoreChunk { id, offset, bytes } => {
            b.put_jint(12);
            b.put_jlong(*id);
            b.put_jlong(*offset);
            b.put_jbuffer(Some(bytes));
        }
        TxnOp::Restore { id, len } => {
            b.put_jint(13);
            b.put_jlong(*id);
            b.put_jlong(*len);
        }
        TxnOp::CancelRestore { id } => {
            b.put_jint(14);
            b.put_jlong(*id);
        }
    }
}

/// A session password: a buffer of exactly 16 bytes (as in txns and snapshots alike).
fn decode_passwd(r: &mut Reader) -> Result<[u8; 16], DecodeError> {
    let p = r.buffer()?.unwrap_or_default();
    p.try_into()
        .map_err(|p: Vec<u8>| bad("password length", p.len() as i64))
}

/// Decodes one op written by [`encode_op`].
pub fn decode_op(r: &mut Reader) -> Result<TxnOp, DecodeError> {
    Ok(match r.i32()? {
        1 => {
            let timeout_ms = r.i32()?;
            let passwd = decode_passwd(r)?;
            TxnOp::CreateSession { timeout_ms, passwd }
        }
        2 => TxnOp::CloseSession,
        3 => {
            let path = r.string()?;
            let data = r.buffer()?.map(Bytes::from);
            let acl = Acl::decode_list(r)?;
            let kind = match (r.i32()?, r.i64()?) {
                (0, _) => CreateKind::Persistent,
                (1, _) => CreateKind::Ephemeral,
                (2, _) => CreateKind::Container,
                (3, t) => CreateKind::Ttl(t),
                (k, _) => return Err(bad("create kind", k as i64)),
            };
            TxnOp::Create(Create {
                path,
                data,
                acl,
                kind,
                sequential: r.bool()?,
            })
        }
        4 => TxnOp::Delete {
            path: r.string()?,
            version: r.i32()?,
        },
        5 => TxnOp::SetData {
            path: r.string()?,
            data: r.buffer()?.map(Bytes::from),
            version: r.i32()?,
        },
        6 => TxnOp::SetAcl {
            path: r.string()?,
            acl: Acl::decode_list(r)?,
            version: r.i32()?,
        },
        7 => TxnOp::Check {
            path: r.string()?,
            version: r.i32()?,
        },
        8 => {
            let n = r.i32()?;
            if n < 0 || n as usize > r.remaining() {
                return Err(bad("multi length", n as i64));
            }
            let mut ops = Vec::with_capacity(n as usize);
            for _ in 0..n {
                ops.push(decode_op(r)?);
            }
            TxnOp::Multi(ops)
        }
        9 => TxnOp::DeleteContainer { path: r.string()? },
        10 => {
            let c = r.i32()?;
            TxnOp::Error(ErrorCode::from_i32(c).ok_or(bad("error code", c as i64))?)
        }
        11 => TxnOp::MoveSession {
            to: r.i64()? as u64,
        },
        12 => TxnOp::RestoreChunk {
            id: r.i64()?,
            offset: r.i64()?,
            bytes: Bytes::from(r.buffer()?.unwrap_or_default()),
        },
        13 => TxnOp::Restore {
            id: r.i64()?,
            len: r.i64()?,
        },
        14 => TxnOp::CancelRestore { id: r.i64()? },
        t => return Err(bad("op tag", t as i64)),
    })
}

/// Why a snapshot could not be restored.
#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    #[error("snapshot record: {0}")]
    Decode(#[from] DecodeError),
    #[error("reading the snapshot: {0}")]
    Io(#[from] std::io::Error),
    #[error("snapshot format version {0} is not supported")]
    Version(i32),
    #[error("the snapshot's tree has digest {found:#x}, not the {said:#x} it was written with")]
    Digest { said: u64, found: u64 },
    #[error("snapshot node {0} has no parent in the snapshot")]
    Orphan(String),
    #[error("the snapshot's staged restore holds {held} bytes, not the {said} it says")]
    StagedLength { said: u64, held: u64 },
}

impl DataTree {
    /// The whole state, deterministically encoded (nodes sorted by path): equal trees give equal
    /// bytes. Children lists and the ephemeral index are derived, so not stored.
    pub fn encode_snapshot(&self, b: &mut BytesMut) {
        self.freeze().encode(b)
    }

    /// Rebuilds a tree from [`Self::encode_snapshot`]'s bytes.
    pub fn decode_snapshot(mut bytes: &[u8]) -> Result<DataTree, SnapshotError> {
        Self::read_snapshot(&mut bytes)
    }

    /// The last zxid a snapshot covers, from the first bytes of its stream (its header).
    pub fn snapshot_last_zxid(src: &mut dyn Read) -> Result<i64, SnapshotError> {
        Ok(Self::snapshot_head(src)?.last_zxid)
    }

    /// What a snapshot's first bytes say of it.
    pub fn snapshot_head(src: &mut dyn Read) -> Result<SnapshotHead, SnapshotError> {
        head(&mut Window::new(src))
    }

    /// Rebuilds a tree from a stream of [`Self::encode_snapshot`]'s bytes (a decompressor),
    /// holding only a window of them: a restore needs the tree's memory and little more.
    pub fn read_snapshot(src: &mut dyn Read) -> Result<DataTree, SnapshotError> {
        let mut w = Window::new(src);
        let SnapshotHead {
            version,
            last_zxid,
            digest,
        } = head(&mut w)?;
        let n_sessions = w.record(|r| r.i32())?;
        let mut sessions = Vec::new();
        for _ in 0..n_sessions.max(0) {
            sessions.push(w.record(|r| {
                let id = r.i64()?;
                let timeout_ms = r.i32()?;
                let passwd = decode_passwd(r)?;
                let owner = if version >= 2 { r.i64()? as u64 } else { 0 };
                Ok((
                    id,
                    SessionMeta {
                        timeout_ms,
                        passwd,
                        owner,
                    },
                ))
            })?);
        }
        let mut tree = DataTree::restoring(last_zxid, sessions);
        let n_nodes = w.record(|r| r.i32())?;
        for _ in 0..n_nodes.max(0) {
            let (path, node) = w.record(|r| {
                let path = r.string()?;
                let data = r.buffer()?.map(Bytes::from);
                let acl = Acl::decode_list(r)?;
                let kind = match (r.i32()?, r.i64()?) {
                    (0, _) => NodeKind::Persistent,
                    (1, s) => NodeKind::Ephemeral(s),
                    (2, _) => NodeKind::Container,
                    (3, t) => NodeKind::Ttl(t),
                    (k, _) => return Err(bad("node kind", k as i64)),
                };
                let mut node = Node::new(data, acl.into(), kind, r.i64()?, 0);
                node.mzxid = r.i64()?;
                node.ctime = r.i64()?;
                node.mtime = r.i64()?;
                node.version = r.i32()?;
                node.stored_cversion = r.i32()?;
                node.aversion = r.i32()?;
                node.pzxid = r.i64()?;
                Ok((path, node))
            })?;
            tree.add(path, node);
        }
        let mut tree = tree.finish().map_err(SnapshotError::Orphan)?;
        if version >= 3 && w.record(|r| r.bool())? {
            let (id, said, n) = w.record(|r| Ok((r.i64()?, r.i64()? as u64, r.i32()?)))?;
            let mut staged = StagedRestore {
                id,
                chunks: Vec::new(),
                len: 0,
            };
            for _ in 0..n.max(0) {
                let chunk = Bytes::from(w.record(|r| r.buffer())?.unwrap_or_default());
                staged.len += chunk.len() as u64;
                staged.chunks.push(chunk);
            }
            if staged.len != said {
                return Err(SnapshotError::StagedLength {
                    said,
                    held: staged.len,
                });
            }
            tree.staged = Some(staged);
        }
        if let Some(said) = digest {
            let found = tree.digest();
            if found != said {
                return Err(SnapshotError::Digest { said, found });
            }
        }
        Ok(tree)
    }
}

/// The start of a snapshot's stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SnapshotHead {
    /// Its encoding's version.
    pub version: i32,
    /// The zxid of the last txn it holds.
    pub last_zxid: i64,
    /// The digest of its tree ([`crate::digest`]); none before version 4.
    pub digest: Option<u64>,
}

fn head(w: &mut Window) -> Result<SnapshotHead, SnapshotError> {
    let (version, last_zxid) = w.record(|r| Ok((r.i32()?, r.i64()?)))?;
    if !(1..=SNAPSHOT_VERSION).contains(&version) {
        return Err(SnapshotError::Version(version));
    }
    let digest = if version >= 4 {
        Some(w.record(|r| r.i64())? as u64)
    } else {
        None
    };
    Ok(SnapshotHead {
        version,
        last_zxid,
        digest,
    })
}

/// How many bytes a [`Window`] reads from its stream at a time (at least).
const WINDOW_READ: usize = 64 * 1024;

/// The part of a snapshot stream read and not yet decoded. Each record is decoded from the
/// bytes at hand; a record that runs past them is decoded again once more bytes are in.
pub(crate) struct Window<'a> {
    src: &'a mut dyn Read,
    buf: Vec<u8>,
    start: usize,
    eof: bool,
    /// The checksum of the bytes decoded so far, for formats that seal their stream with one
    /// (ZooKeeper's snapshots).
    pub(crate) consumed: Option<crate::zookeeper_snapshot::Adler32>,
}

impl<'a> Window<'a> {
    pub(crate) fn new(src: &'a mut dyn Read) -> Self {
        Window {
            src,
            buf: Vec::new(),
            start: 0,
            eof: false,
            consumed: None,
        }
    }

    pub(crate) fn record<T>(
        &mut self,
        mut decode: impl FnMut(&mut Reader) -> Result<T, DecodeError>,
    ) -> Result<T, SnapshotError> {
        loop {
            let mut r = Reader::new(&self.buf[self.start..]);
            match decode(&mut r) {
                Ok(v) => {
                    let end = self.start + r.position();
                    if let Some(sum) = &mut self.consumed {
                        sum.update(&self.buf[self.start..end]);
                    }
                    self.start = end;
                    return Ok(v);
                }
                Err(DecodeError::Truncated { needed, .. }) if !self.eof => self.read(needed)?,
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// What is left of the stream, if it is at most `max` bytes (`None` if more).
    pub(crate) fn rest(&mut self, max: usize) -> Result<Option<Vec<u8>>, SnapshotError> {
        while !self.eof && self.buf.len() - self.start <= max {
            self.read(max + 1)?;
        }
        let rest = &self.buf[self.start..];
        Ok((rest.len() <= max).then(|| rest.to_vec()))
    }

    /// Drops the decoded bytes and reads at least `needed` more, or up to the stream's end.
    /// The buffer grows only as bytes arrive, so a corrupt length cannot make it allocate.
    fn read(&mut self, needed: usize) -> std::io::Result<()> {
        self.buf.drain(..self.start);
        self.start = 0;
        let want = needed.max(WINDOW_READ);
        let got = (&mut *self.src)
            .take(want as u64)
            .read_to_end(&mut self.buf)?;
        self.eof = got < want;
        Ok(())
    }
}

/// A [`DataTree`] frozen at one zxid (see [`DataTree::freeze`]): what a snapshot holds.
#[derive(Clone)]
pub struct FrozenTree {
    pub(crate) last_zxid: i64,
    pub(crate) sessions: imbl::OrdMap<i64, SessionMeta>,
    pub(crate) nodes: imbl::HashMap<String, std::sync::Arc<Node>>,
    pub(crate) staged: Option<StagedRestore>,
}

impl FrozenTree {
    /// The zxid of the last txn the frozen state holds.
    pub fn last_zxid(&self) -> i64 {
        self.last_zxid
    }

    /// The snapshot encoding of [`DataTree::encode_snapshot`].
    pub fn encode(&self, b: &mut BytesMut) {
        // Writing into memory cannot fail.
        let _ = self.encode_to(&mut b.writer());
    }

    /// The same encoding, streamed to `w` in pieces of about [`STREAM_PIECE`] bytes, so that
    /// the caller (a compressor, a file) never needs the whole encoding in memory.
    pub fn encode_to<W: std::io::Write + ?Sized>(&self, w: &mut W) -> std::io::Result<()> {
        let mut b = BytesMut::with_capacity(STREAM_PIECE * 2);
        b.put_jint(SNAPSHOT_VERSION);
        b.put_jlong(self.last_zxid);
        // A pass over the nodes before the encoding's: the digest goes first, where a reader
        // of the head alone (the `snapshot` command's headers) finds it.
        b.put_jlong(self.digest() as i64);
        b.put_jint(self.sessions.len() as i32);
        for (id, m) in &self.sessions {
            b.put_jlong(*id);
            b.put_jint(m.timeout_ms);
            b.put_jbuffer(Some(&m.passwd));
            b.put_jlong(m.owner as i64);
        }
        let mut nodes: Vec<(&String, &Node)> = self.nodes.iter().map(|(p, n)| (p, &**n)).collect();
        nodes.sort_unstable_by(|a, b| a.0.cmp(b.0));
        b.put_jint(nodes.len() as i32);
        for (p, n) in nodes {
            b.put_jstring(p);
            b.put_jbuffer(n.data.as_deref());
            Acl::encode_list(&n.acl, &mut b);
            let (kind, arg) = match n.kind {
                NodeKind::Persistent => (0, 0),
                NodeKind::Ephemeral(s) => (1, s),
                NodeKind::Container => (2, 0),
                NodeKind::Ttl(t) => (3, t),
            };
            b.put_jint(kind);
            b.put_jlong(arg);
            b.put_jlong(n.czxid);
            b.put_jlong(n.mzxid);
            b.put_jlong(n.ctime);
            b.put_jlong(n.mtime);
            b.put_jint(n.version);
            b.put_jint(n.stored_cversion);
            b.put_jint(n.aversion);
            b.put_jlong(n.pzxid);
            if b.len() >= STREAM_PIECE {
                w.write_all(&b)?;
                b.clear();
            }
        }
        match &self.staged {
            None => b.put_jbool(false),
            Some(s) => {
                b.put_jbool(true);
                b.put_jlong(s.id);
                b.put_jlong(s.len as i64);
                b.put_jint(s.chunks.len() as i32);
                // Each chunk as a jute buffer, written as it is rather than copied into `b`.
                for chunk in &s.chunks {
                    b.put_jint(chunk.len() as i32);
                    w.write_all(&b)?;
                    b.clear();
                    w.write_all(chunk)?;
                }
            }
        }
        w.write_all(&b)
    }
}

/// How much encoded state [`FrozenTree::encode_to`] gathers before each write.
pub const STREAM_PIECE: usize = 64 * 1024;

/// Checks that every node's parent is present (used when restoring).
pub(crate) fn parent_of(p: &str) -> Option<&str> {
    (p != "/").then(|| path::parent(p))
}
