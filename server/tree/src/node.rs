//! One znode: data, ACL, the stored stat fields and the names of its children.

use bytes::Bytes;
use std::sync::Arc;
use zooid_proto::{Acl, Stat};

/// What kind of node this is; decides ephemeral cleanup, container and TTL garbage collection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NodeKind {
    Persistent,
    /// Owned by a session; removed when it ends.
    Ephemeral(i64),
    /// Removed once its last child is gone.
    Container,
    /// Removed when childless and not modified for this many milliseconds.
    Ttl(i64),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    /// `None` is null data, distinct from empty.
    pub data: Option<Bytes>,
    /// Shared: most nodes carry one of a handful of ACLs.
    pub acl: Arc<[Acl]>,
    pub kind: NodeKind,
    pub czxid: i64,
    pub mzxid: i64,
    pub ctime: i64,
    pub mtime: i64,
    pub version: i32,
    /// Children ever created here; deletes do not count (ZooKeeper's stored cversion). Names
    /// sequential children.
    pub stored_cversion: i32,
    pub aversion: i32,
    pub pzxid: i64,
    /// A persistent set: cloning a node (as copy-on-write does while a snapshot holds the
    /// old tree) costs O(1) however many children it has.
    pub children: imbl::OrdSet<String>,
}

impl Node {
    pub(crate) fn new(
        data: Option<Bytes>,
        acl: Arc<[Acl]>,
        kind: NodeKind,
        zxid: i64,
        time: i64,
    ) -> Self {
        Node {
            data,
            acl,
            kind,
            czxid: zxid,
            mzxid: zxid,
            ctime: time,
            mtime: time,
            version: 0,
            stored_cversion: 0,
            aversion: 0,
            pzxid: zxid,
            children: imbl::OrdSet::new(),
        }
    }

    /// The Stat a client sees. cversion is derived as ZooKeeper derives it
    /// (`2 * creates - children still present`, i.e. creates + deletes), and ephemeralOwner is
    /// the session only for true ephemerals (0 for containers and TTL nodes).
    pub fn stat(&self) -> Stat {
        let num_children = self.children.len() as i32;
        Stat {
            czxid: self.czxid,
            mzxid: self.mzxid,
            ctime: self.ctime,
            mtime: self.mtime,
            version: self.version,
            cversion: self
                .stored_cversion
                .wrapping_mul(2)
                .wrapping_sub(num_children),
            aversion: self.aversion,
            ephemeral_owner: match self.kind {
                NodeKind::Ephemeral(s) => s,
                _ => 0,
            },
            data_length: self.data.as_ref().map_or(0, |d| d.len() as i32),
            num_children,
            pzxid: self.pzxid,
        }
    }
}
