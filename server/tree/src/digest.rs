//! The tree's digest, as ZooKeeper computes it (its `DigestCalculator`, digest version 2):
//! each node's is a CRC32 of its path (the root's as ""), its data, then its stat's czxid,
//! mzxid, pzxid, ctime, mtime (8 bytes each), version, cversion, aversion (4 each) and
//! ephemeralOwner (8), big-endian; the tree's is their wrapping sum, so that it does not
//! depend on the order nodes are visited in. Nodes under `/zookeeper/` are left out, as
//! ZooKeeper leaves them out (the quota and config nodes differ between members and
//! ensembles that hold the same data).
//!
//! Two trees with the same digest hold the same nodes with the same data and stats: a restored
//! backup, a member against another.

use crate::codec::FrozenTree;
use crate::node::Node;
use crate::tree::DataTree;

/// The version of the digest, as ZooKeeper numbers its digest methods.
pub const DIGEST_VERSION: i32 = 2;

/// One node's digest; 0 for a node left out.
fn node_digest(path: &str, node: &Node) -> u64 {
    if path.starts_with("/zookeeper/") {
        return 0;
    }
    let stat = node.stat();
    let mut h = crc32fast::Hasher::new();
    h.update(if path == "/" { b"" } else { path.as_bytes() });
    if let Some(data) = &node.data {
        h.update(data);
    }
    for long in [stat.czxid, stat.mzxid, stat.pzxid, stat.ctime, stat.mtime] {
        h.update(&long.to_be_bytes());
    }
    for int in [stat.version, stat.cversion, stat.aversion] {
        h.update(&int.to_be_bytes());
    }
    h.update(&stat.ephemeral_owner.to_be_bytes());
    u64::from(h.finalize())
}

impl FrozenTree {
    /// The digest of every node (see the module's note). O(nodes and their bytes): the frozen
    /// copy lets a caller compute it off the apply path.
    pub fn digest(&self) -> u64 {
        self.nodes.iter().fold(0u64, |sum, (path, node)| {
            sum.wrapping_add(node_digest(path, node))
        })
    }
}

impl DataTree {
    /// [`FrozenTree::digest`] of the tree as it is now.
    pub fn digest(&self) -> u64 {
        self.freeze().digest()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::node::NodeKind;
    use bytes::Bytes;
    use zooid_proto::Acl;

    fn node(data: &[u8], zxid: i64) -> Node {
        Node::new(
            Some(Bytes::copy_from_slice(data)),
            Acl::open().into(),
            NodeKind::Persistent,
            zxid,
            1_000,
        )
    }

    #[test]
    fn a_node_digest_is_the_crc32_of_path_data_and_stat_fields() {
        // Worked by hand: CRC32 over "/a", "x", then the 60 bytes of the stat fields.
        let n = node(b"x", 5);
        let mut bytes = b"/ax".to_vec();
        for long in [5i64, 5, 5, 1_000, 1_000] {
            bytes.extend(long.to_be_bytes());
        }
        bytes.extend([0u8; 12]);
        bytes.extend([0u8; 8]);
        assert_eq!(bytes.len(), 2 + 1 + 60);
        assert_eq!(node_digest("/a", &n), u64::from(crc32fast::hash(&bytes)));
        // The root counts as "", and /zookeeper/'s children not at all.
        let root = node(b"", 0);
        let mut root_bytes = Vec::new();
        for long in [0i64, 0, 0, 1_000, 1_000] {
            root_bytes.extend(long.to_be_bytes());
        }
        root_bytes.extend([0u8; 20]);
        assert_eq!(
            node_digest("/", &root),
            u64::from(crc32fast::hash(&root_bytes))
        );
        assert_eq!(node_digest("/zookeeper/config", &n), 0);
        assert_ne!(node_digest("/zookeeper", &n), 0);
    }
}
