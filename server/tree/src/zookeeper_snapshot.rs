//! Apache ZooKeeper's snapshots, read into a tree: a `snapshot.<zxid>` file of a ZooKeeper
//! data dir, or what ZooKeeper 3.9's `snapshot` admin command streams, uncompressed. This is
//! how an existing ensemble's data moves to Zooid (the admin API's `restore` takes either
//! format).
//!
//! The format, as ZooKeeper writes it (`FileSnap`, `SerializeUtils`, `DataTree`): a file header
//! (magic `ZKSN`, version 2, database id); the sessions (id, timeout); the ACL cache (each list
//! under a number the nodes refer to; -1 is `world:anyone:cdrwa` without an entry); the nodes in
//! pre-order (path, data, ACL number, persisted stat; the root's path is empty) up to the path
//! `/`; then a seal (the Adler-32 of everything before it, and `/`). ZooKeeper 3.6 and later
//! append the digest of the tree (zxid, version, value) and 3.9 the last processed zxid, each
//! followed by a seal of its own.

use crate::codec::Window;
use crate::node::{Node, NodeKind};
use crate::tree::{DataTree, SessionMeta};
use crate::SnapshotError;
use bytes::Bytes;
use std::collections::HashMap;
use std::io::Read;
use zooid_proto::{Acl, DecodeError, StatPersisted};

/// `ZKSN`, first in every ZooKeeper snapshot.
const MAGIC: i32 = i32::from_be_bytes(*b"ZKSN");
/// The only snapshot version ZooKeeper has written.
const VERSION: i32 = 2;
/// The ACL number ZooKeeper uses for `world:anyone:cdrwa` without a cache entry.
const OPEN_ACL: i64 = -1;
/// The ephemeral owner that marks a container.
const CONTAINER_OWNER: i64 = i64::MIN;
/// An ephemeral owner with the high byte set is one of ZooKeeper's extended types; the next two
/// bytes say which (0: TTL) and the low 40 bits hold its value.
const EXTENDED_MASK: u64 = 0xff00_0000_0000_0000;
const EXTENDED_TYPE_MASK: u64 = 0x00ff_ff00_0000_0000;
const EXTENDED_VALUE_MASK: u64 = 0x0000_00ff_ffff_ffff;
/// A seal: the checksum (a long), then `/` as a jute string.
const SEAL_BYTES: usize = 8 + 4 + 1;
/// The digest record (zxid, version, value) that 3.6 and later write after the tree.
const DIGEST_BYTES: usize = 8 + 4 + 8;
/// The last processed zxid that 3.9 writes after the digest.
const LAST_ZXID_BYTES: usize = 8;

/// Why a ZooKeeper snapshot could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ZooKeeperSnapshotError {
    #[error("not a ZooKeeper snapshot (magic {0:#x})")]
    Magic(i32),
    #[error("ZooKeeper snapshot version {0} is not supported (only 2)")]
    Version(i32),
    #[error(transparent)]
    Read(#[from] SnapshotError),
    #[error("node {path} refers to ACL {acl}, which the snapshot does not hold")]
    UnknownAcl { path: String, acl: i64 },
    #[error("node {path} has the unknown extended ephemeral owner {owner:#x}")]
    Owner { path: String, owner: i64 },
    #[error("the snapshot's checksum does not match its content: it is damaged")]
    Checksum,
    #[error("the snapshot ends with {0} bytes that are neither a digest nor a last zxid")]
    Trailer(usize),
}

/// Reads a ZooKeeper snapshot into a tree. Its sessions keep their ids and timeouts, with the
/// passwords ZooKeeper derives from their ids, so that clients can resume them on Zooid; they
/// are held by no server in particular. The tree's last zxid is the one the snapshot records
/// (3.9), else the highest zxid it holds.
pub fn read_zookeeper_snapshot(src: &mut dyn Read) -> Result<DataTree, ZooKeeperSnapshotError> {
    let mut w = Window::new(src);
    w.consumed = Some(Adler32::default());
    let (magic, version, _dbid) = w.record(|r| Ok((r.i32()?, r.i32()?, r.i64()?)))?;
    if magic != MAGIC {
        return Err(ZooKeeperSnapshotError::Magic(magic));
    }
    if version != VERSION {
        return Err(ZooKeeperSnapshotError::Version(version));
    }
    let n_sessions = w.record(|r| r.i32())?;
    let mut sessions = Vec::new();
    for _ in 0..n_sessions.max(0) {
        let (id, timeout_ms) = w.record(|r| Ok((r.i64()?, r.i32()?)))?;
        let meta = SessionMeta {
            timeout_ms,
            passwd: session_passwd(id),
            owner: 0,
        };
        sessions.push((id, meta));
    }
    let n_acls = w.record(|r| r.i32())?;
    let mut acls: HashMap<i64, Vec<Acl>> = HashMap::new();
    for _ in 0..n_acls.max(0) {
        let (number, list) = w.record(|r| Ok((r.i64()?, Acl::decode_list(r)?)))?;
        acls.insert(number, list);
    }
    let mut tree = DataTree::restoring(0, sessions);
    let mut last_zxid = 0;
    loop {
        let path = w.record(|r| r.string())?;
        if path == "/" {
            break;
        }
        let (data, acl, node) = w.record(|r| {
            let data = r.buffer()?.map(Bytes::from);
            let acl = r.i64()?;
            let stat = StatPersisted::decode(r)?;
            Ok((data, acl, stat))
        })?;
        let path = if path.is_empty() {
            "/".to_string()
        } else {
            path
        };
        let acl = match acl {
            OPEN_ACL => Acl::open(),
            n => acls
                .get(&n)
                .cloned()
                .ok_or_else(|| ZooKeeperSnapshotError::UnknownAcl {
                    path: path.clone(),
                    acl: n,
                })?,
        };
        let kind = kind_of(node.ephemeral_owner).ok_or_else(|| ZooKeeperSnapshotError::Owner {
            path: path.clone(),
            owner: node.ephemeral_owner,
        })?;
        let mut n = Node::new(data, acl.into(), kind, node.czxid, node.ctime);
        n.mzxid = node.mzxid;
        n.mtime = node.mtime;
        n.version = node.version;
        n.stored_cversion = node.cversion;
        n.aversion = node.aversion;
        n.pzxid = node.pzxid;
        last_zxid = last_zxid.max(node.czxid).max(node.mzxid).max(node.pzxid);
        tree.add(path, n);
    }
    let mut sum = w.consumed.take().unwrap_or_default();
    let seal = w.record(seal)?;
    if seal != sum.value() {
        return Err(ZooKeeperSnapshotError::Checksum);
    }
    // Each seal is covered by the next one's checksum.
    sum.update(&seal.to_be_bytes());
    sum.update(&SEALED);
    let trailer = w
        .rest(DIGEST_BYTES + LAST_ZXID_BYTES + 2 * SEAL_BYTES)?
        .ok_or(ZooKeeperSnapshotError::Trailer(usize::MAX))?;
    if let Some(zxid) = read_trailer(&trailer, &mut sum)? {
        last_zxid = last_zxid.max(zxid);
    }
    let mut tree = tree
        .finish()
        .map_err(|p| ZooKeeperSnapshotError::Read(SnapshotError::Orphan(p)))?;
    tree.last_zxid = last_zxid;
    Ok(tree)
}

/// Writes `tree` as ZooKeeper 3.9 writes a snapshot (`snapshot.<zxid>`, uncompressed), so
/// that an Apache ZooKeeper server starts from it: the way back from Zooid. Sessions keep their
/// ids and timeouts (ZooKeeper derives their passwords from the ids: a client of a session that
/// Zooid created cannot resume it there). The digest is written empty, as ZooKeeper writes it
/// when it has none, so that ZooKeeper does not compare it with its own.
pub fn write_zookeeper_snapshot(
    tree: &crate::FrozenTree,
    w: &mut dyn std::io::Write,
) -> std::io::Result<()> {
    use std::sync::Arc;
    use zooid_proto::Writer;
    let mut out = Sealed {
        w,
        sum: Adler32::default(),
        buf: bytes::BytesMut::with_capacity(crate::codec::STREAM_PIECE * 2),
    };
    let b = &mut out.buf;
    b.put_jint(MAGIC);
    b.put_jint(VERSION);
    b.put_jlong(-1);
    b.put_jint(tree.sessions.len() as i32);
    for (id, m) in &tree.sessions {
        b.put_jlong(*id);
        b.put_jint(m.timeout_ms);
    }
    // Parents sort before their children (a parent's path is a prefix of theirs), as
    // ZooKeeper's reader needs.
    let mut nodes: Vec<(&String, &Node)> = tree.nodes.iter().map(|(p, n)| (p, &**n)).collect();
    nodes.sort_unstable_by(|a, b| a.0.cmp(b.0));
    // Nodes share their ACL lists: each distinct list is numbered once, from 1.
    let mut numbers: HashMap<*const [Acl], i64> = HashMap::new();
    let mut lists: Vec<&Arc<[Acl]>> = Vec::new();
    for (_, n) in &nodes {
        numbers.entry(Arc::as_ptr(&n.acl)).or_insert_with(|| {
            lists.push(&n.acl);
            lists.len() as i64
        });
    }
    b.put_jint(lists.len() as i32);
    for (i, list) in lists.iter().enumerate() {
        b.put_jlong(i as i64 + 1);
        Acl::encode_list(list, b);
    }
    for (path, n) in nodes {
        let b = &mut out.buf;
        b.put_jstring(if path == "/" { "" } else { path });
        b.put_jbuffer(n.data.as_deref());
        b.put_jlong(numbers[&Arc::as_ptr(&n.acl)]);
        StatPersisted {
            czxid: n.czxid,
            mzxid: n.mzxid,
            ctime: n.ctime,
            mtime: n.mtime,
            version: n.version,
            cversion: n.stored_cversion,
            aversion: n.aversion,
            ephemeral_owner: match n.kind {
                NodeKind::Persistent => 0,
                NodeKind::Ephemeral(s) => s,
                NodeKind::Container => CONTAINER_OWNER,
                NodeKind::Ttl(t) => (EXTENDED_MASK | (t as u64 & EXTENDED_VALUE_MASK)) as i64,
            },
            pzxid: n.pzxid,
        }
        .encode(b);
        if b.len() >= crate::codec::STREAM_PIECE {
            out.flush()?;
        }
    }
    out.buf.put_jstring("/");
    out.seal()?;
    // An empty digest (zxid 0), then the last processed zxid (3.9; older readers stop after
    // the digest).
    out.buf.put_jlong(0);
    out.buf.put_jint(2);
    out.buf.put_jlong(0);
    out.seal()?;
    out.buf.put_jlong(tree.last_zxid);
    out.seal()?;
    out.flush()
}

/// A writer that keeps the Adler-32 of everything written, to seal with.
struct Sealed<'a> {
    w: &'a mut dyn std::io::Write,
    sum: Adler32,
    buf: bytes::BytesMut,
}

impl Sealed<'_> {
    fn flush(&mut self) -> std::io::Result<()> {
        self.sum.update(&self.buf);
        self.w.write_all(&self.buf)?;
        self.buf.clear();
        Ok(())
    }

    /// The checksum of everything so far, and `/`.
    fn seal(&mut self) -> std::io::Result<()> {
        use zooid_proto::Writer;
        self.flush()?;
        self.buf.put_jlong(self.sum.value() as i64);
        self.buf.put_jstring("/");
        self.flush()
    }
}

/// How a seal ends, after its checksum: `/` as a jute string.
const SEALED: [u8; 5] = [0, 0, 0, 1, b'/'];

fn seal(r: &mut zooid_proto::Reader) -> Result<u64, DecodeError> {
    let sum = r.i64()? as u64;
    match r.string()?.as_str() {
        "/" => Ok(sum),
        _ => Err(DecodeError::BadValue {
            field: "snapshot seal",
            value: sum as i64,
        }),
    }
}

/// What follows the tree's seal: nothing (before 3.6), a digest, a last zxid, or both, each
/// sealed. Returns the zxid they name (the digest's, or better the last processed one).
fn read_trailer(trailer: &[u8], sum: &mut Adler32) -> Result<Option<i64>, ZooKeeperSnapshotError> {
    let (digest, last) = match trailer.len() {
        0 => (false, false),
        n if n == DIGEST_BYTES + SEAL_BYTES => (true, false),
        n if n == LAST_ZXID_BYTES + SEAL_BYTES => (false, true),
        n if n == DIGEST_BYTES + LAST_ZXID_BYTES + 2 * SEAL_BYTES => (true, true),
        n => return Err(ZooKeeperSnapshotError::Trailer(n)),
    };
    let mut r = zooid_proto::Reader::new(trailer);
    let mut zxid = None;
    let mut sealed = |r: &mut zooid_proto::Reader, len: usize| {
        let at = r.position();
        let part = &trailer[at..at + len];
        let value = r.i64().map_err(SnapshotError::from)?;
        let _ = r.take(len - 8);
        sum.update(part);
        let s = seal(r).map_err(SnapshotError::from)?;
        if s != sum.value() {
            return Err(ZooKeeperSnapshotError::Checksum);
        }
        sum.update(&trailer[at + len..at + len + SEAL_BYTES]);
        Ok(value)
    };
    if digest {
        // The digest's zxid; 0 when the tree had none to record.
        zxid = Some(sealed(&mut r, DIGEST_BYTES)?).filter(|z| *z > 0);
    }
    if last {
        zxid = Some(sealed(&mut r, LAST_ZXID_BYTES)?);
    }
    Ok(zxid)
}

/// The kind of node an ephemeral owner says, as ZooKeeper with extended types reads it (an
/// ensemble without them cannot have a session id with the high byte set either: server ids
/// stop at 254 with them, and it is the session id's high byte). `None` for an extended type
/// ZooKeeper does not define.
fn kind_of(owner: i64) -> Option<NodeKind> {
    let bits = owner as u64;
    Some(match owner {
        0 => NodeKind::Persistent,
        CONTAINER_OWNER => NodeKind::Container,
        _ if bits & EXTENDED_MASK == EXTENDED_MASK => {
            if bits & EXTENDED_TYPE_MASK != 0 {
                return None;
            }
            NodeKind::Ttl((bits & EXTENDED_VALUE_MASK) as i64)
        }
        s => NodeKind::Ephemeral(s),
    })
}

/// The password ZooKeeper gives session `id`: 16 bytes of `java.util.Random` seeded with the
/// id xor a constant of ZooKeeper's, so that a client holding a session of the ensemble the
/// snapshot came from can resume it here.
pub fn session_passwd(id: i64) -> [u8; 16] {
    const SECRET: i64 = 0xB341_5C00;
    let mut random = JavaRandom::new(id ^ SECRET);
    let mut p = [0u8; 16];
    for word in p.chunks_mut(4) {
        let n = random.next_int();
        for (i, b) in word.iter_mut().enumerate() {
            *b = (n >> (8 * i)) as u8;
        }
    }
    p
}

/// `java.util.Random`'s generator, as its documentation specifies it: a 48-bit linear
/// congruential generator.
struct JavaRandom(u64);

impl JavaRandom {
    const MULTIPLIER: u64 = 0x5_DEEC_E66D;
    const MASK: u64 = (1 << 48) - 1;

    fn new(seed: i64) -> Self {
        JavaRandom((seed as u64 ^ Self::MULTIPLIER) & Self::MASK)
    }

    fn next_int(&mut self) -> i32 {
        self.0 = (self.0.wrapping_mul(Self::MULTIPLIER).wrapping_add(0xB)) & Self::MASK;
        (self.0 >> 16) as u32 as i32
    }
}

/// Adler-32, the checksum ZooKeeper seals its snapshots with.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Adler32 {
    a: u32,
    b: u32,
}

impl Default for Adler32 {
    fn default() -> Self {
        Adler32 { a: 1, b: 0 }
    }
}

impl Adler32 {
    const MOD: u32 = 65_521;
    /// Bytes that can be summed before `b` could overflow a u32.
    const RUN: usize = 5552;

    pub(crate) fn update(&mut self, bytes: &[u8]) {
        for run in bytes.chunks(Self::RUN) {
            for &x in run {
                self.a += u32::from(x);
                self.b += self.a;
            }
            self.a %= Self::MOD;
            self.b %= Self::MOD;
        }
    }

    pub(crate) fn value(&self) -> u64 {
        u64::from((self.b << 16) | self.a)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn adler32_of_known_strings() {
        let of = |s: &[u8]| {
            let mut a = Adler32::default();
            a.update(s);
            a.value()
        };
        assert_eq!(of(b""), 1);
        assert_eq!(of(b"Wikipedia"), 0x11E6_0398);
        let big = vec![0xffu8; 100_000];
        let mut split = Adler32::default();
        split.update(&big[..33_333]);
        split.update(&big[33_333..]);
        assert_eq!(split.value(), of(&big));
    }

    /// A snapshot as ZooKeeper 3.9 writes it: the tree, sealed; the digest, sealed; the last
    /// processed zxid, sealed (each seal the Adler-32 of everything before it).
    fn zookeeper_39_snapshot(last_zxid: i64) -> Vec<u8> {
        use zooid_proto::Writer;
        let mut b = bytes::BytesMut::new();
        b.put_jint(MAGIC);
        b.put_jint(VERSION);
        b.put_jlong(-1);
        b.put_jint(1); // one session
        b.put_jlong(0x0100_0000_0000_0001);
        b.put_jint(30_000);
        b.put_jint(1); // one ACL list, number 1: world:anyone:r
        b.put_jlong(1);
        Acl::encode_list(&Acl::read_only(), &mut b);
        let node = |b: &mut bytes::BytesMut, path: &str, acl: i64, owner: i64, zxid: i64| {
            b.put_jstring(path);
            b.put_jbuffer(Some(path.as_bytes()));
            b.put_jlong(acl);
            for v in [zxid, zxid, 1000, 2000] {
                b.put_jlong(v);
            }
            for v in [0, 0, 0] {
                b.put_jint(v);
            }
            b.put_jlong(owner);
            b.put_jlong(zxid);
        };
        node(&mut b, "", OPEN_ACL, 0, 0);
        node(&mut b, "/zookeeper", OPEN_ACL, 0, 0);
        node(&mut b, "/a", 1, 0, 5);
        node(&mut b, "/a/e", OPEN_ACL, 0x0100_0000_0000_0001, 6);
        b.put_jstring("/");
        let seal = |b: &mut bytes::BytesMut| {
            let mut sum = Adler32::default();
            sum.update(b);
            b.put_jlong(sum.value() as i64);
            b.put_jstring("/");
        };
        seal(&mut b);
        b.put_jlong(6); // the digest: zxid, version 2, value
        b.put_jint(2);
        b.put_jlong(0x1234);
        seal(&mut b);
        b.put_jlong(last_zxid);
        seal(&mut b);
        b.to_vec()
    }

    #[test]
    fn a_zookeeper_39_snapshot_with_its_digest_and_last_zxid() {
        let bytes = zookeeper_39_snapshot(9);
        let tree = read_zookeeper_snapshot(&mut &bytes[..]).unwrap();
        assert_eq!(
            tree.last_zxid(),
            9,
            "the last processed zxid, over the nodes' 6"
        );
        assert_eq!(tree.get("/a").unwrap().acl.to_vec(), Acl::read_only());
        assert_eq!(
            tree.get("/a/e").unwrap().data.as_deref(),
            Some(&b"/a/e"[..])
        );
        assert_eq!(
            tree.ephemerals(0x0100_0000_0000_0001, "/"),
            vec!["/a/e".to_string()]
        );
        let session = tree.session(0x0100_0000_0000_0001).unwrap();
        assert_eq!((session.timeout_ms, session.owner), (30_000, 0));
        // Any byte changed breaks a seal, or what it seals.
        for at in [20, bytes.len() / 2, bytes.len() - 30, bytes.len() - 10] {
            let mut bad = bytes.clone();
            bad[at] ^= 1;
            assert!(read_zookeeper_snapshot(&mut &bad[..]).is_err(), "byte {at}");
        }
        // Before 3.6 there was no trailer; a trailer of another size is refused.
        let tree_only = &bytes[..bytes.len() - (DIGEST_BYTES + LAST_ZXID_BYTES + 2 * SEAL_BYTES)];
        assert_eq!(
            read_zookeeper_snapshot(&mut &tree_only[..])
                .unwrap()
                .last_zxid(),
            6
        );
        let cut = &bytes[..bytes.len() - 3];
        assert!(matches!(
            read_zookeeper_snapshot(&mut &cut[..]),
            Err(ZooKeeperSnapshotError::Trailer(_))
        ));
    }

    #[test]
    fn a_tree_written_as_zookeeper_snapshot_reads_back_the_same() {
        let bytes = zookeeper_39_snapshot(9);
        let tree = read_zookeeper_snapshot(&mut &bytes[..]).unwrap();
        let mut written = Vec::new();
        write_zookeeper_snapshot(&tree.freeze(), &mut written).unwrap();
        let back = read_zookeeper_snapshot(&mut &written[..]).unwrap();
        let (mut a, mut b) = (bytes::BytesMut::new(), bytes::BytesMut::new());
        tree.encode_snapshot(&mut a);
        back.encode_snapshot(&mut b);
        assert_eq!(a, b, "nodes, Stats, ACLs, sessions and the last zxid");
        // Containers and TTL nodes keep their kind through the owner's encoding.
        for kind in [NodeKind::Container, NodeKind::Ttl(600_000)] {
            let owner = match kind {
                NodeKind::Container => CONTAINER_OWNER,
                NodeKind::Ttl(t) => (EXTENDED_MASK | t as u64) as i64,
                _ => unreachable!(),
            };
            assert_eq!(kind_of(owner), Some(kind));
        }
    }

    #[test]
    fn extended_owners() {
        assert_eq!(kind_of(0), Some(NodeKind::Persistent));
        assert_eq!(kind_of(i64::MIN), Some(NodeKind::Container));
        assert_eq!(
            kind_of(0xff00_0000_0000_0064_u64 as i64),
            Some(NodeKind::Ttl(100))
        );
        assert_eq!(kind_of(0xff00_0100_0000_0064_u64 as i64), None);
        assert_eq!(
            kind_of(0x0100_0000_0000_0001),
            Some(NodeKind::Ephemeral(0x0100_0000_0000_0001))
        );
    }
}
