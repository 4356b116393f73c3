//! The data tree and its apply function.

use crate::acl;
use crate::node::{Node, NodeKind};
use crate::path;
use crate::quota::{self, QuotaNode, StatsTrack};
use crate::restore::StagedRestore;
use crate::txn::*;
use bytes::Bytes;
use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use zooid_proto::{perms, Acl, ErrorCode, EventType, Stat};

/// Largest TTL ZooKeeper accepts (2^40 − 1 ms).
pub const MAX_TTL_MS: i64 = (1 << 40) - 1;

/// Paths that always exist and cannot be deleted.
const SPECIAL: [&str; 4] = ["/", "/zookeeper", "/zookeeper/quota", "/zookeeper/config"];

/// A live session as recorded in the replicated state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionMeta {
    pub timeout_ms: i32,
    pub passwd: [u8; 16],
    /// The server holding the session (ZooKeeper's session owner): where it was created or
    /// last resumed. 0 for none in particular (a session restored from a snapshot written
    /// before owners were recorded), whose requests count from any server.
    pub owner: u64,
}

/// The whole replicated state: nodes, sessions and the ephemerals each session owns.
#[derive(Debug, Clone)]
pub struct DataTree {
    /// A persistent (structurally shared) map, so that [`DataTree::freeze`] is O(1) and a
    /// snapshot is encoded from a frozen copy off the apply path. Its chunks hold up to 32
    /// entries inline whatever their fill, so each node sits behind an `Arc`: an entry is a
    /// path and a pointer instead of a whole node, and a write after a freeze copies small
    /// chunks and one node.
    pub(crate) nodes: imbl::HashMap<String, Arc<Node>>,
    /// Persistent too, so that freezing the state does not copy the session table.
    pub(crate) sessions: imbl::OrdMap<i64, SessionMeta>,
    ephemerals: HashMap<i64, BTreeSet<String>>,
    pub(crate) last_zxid: i64,
    /// ACL lists are interned: nodes share one allocation per distinct list.
    acl_cache: HashMap<Vec<Acl>, Arc<[Acl]>>,
    /// Kept as nodes come and go, so that monitoring never walks the tree.
    totals: Totals,
    /// Paths of container and TTL nodes: the only candidates for collection, so that the
    /// collector looks at them instead of the whole tree (ZooKeeper keeps the same two sets).
    /// Persistent, so that [`DataTree::collection_view`] takes it in O(1).
    collectable: imbl::OrdSet<String>,
    /// Paths that have a quota (a `zookeeper_limits` node), kept as those nodes come and go.
    quotas: BTreeSet<String>,
    /// A backup being restored, chunk by chunk (see [`crate::restore`]).
    pub(crate) staged: Option<StagedRestore>,
}

/// Figures over every node, kept current by each insert, remove and data change.
#[derive(Debug, Clone, Copy, Default)]
struct Totals {
    /// Bytes of path names and data: ZooKeeper's `approximate_data_size`.
    data_bytes: u64,
    ephemerals: usize,
}

impl Totals {
    fn added(&mut self, path: &str, node: &Node) {
        self.data_bytes += (path.len() + data_len(&node.data)) as u64;
        if matches!(node.kind, NodeKind::Ephemeral(_)) {
            self.ephemerals += 1;
        }
    }

    fn removed(&mut self, path: &str, node: &Node) {
        self.data_bytes -= (path.len() + data_len(&node.data)) as u64;
        if matches!(node.kind, NodeKind::Ephemeral(_)) {
            self.ephemerals -= 1;
        }
    }

    fn data_changed(&mut self, old: &Option<Bytes>, new: &Option<Bytes>) {
        self.data_bytes = self.data_bytes - data_len(old) as u64 + data_len(new) as u64;
    }
}

fn data_len(data: &Option<Bytes>) -> usize {
    data.as_ref().map_or(0, Bytes::len)
}

/// How to undo one change of a multi that later fails.
enum Undo {
    Created {
        path: String,
        parent_cversion: i32,
        parent_pzxid: i64,
    },
    Deleted {
        path: String,
        node: Arc<Node>,
        parent_pzxid: i64,
    },
    Modified {
        path: String,
        data: Option<Bytes>,
        acl: Arc<[Acl]>,
        mzxid: i64,
        mtime: i64,
        version: i32,
        aversion: i32,
    },
}

impl Undo {
    /// Keeps what a change of `node`'s data or ACL may alter, to put it back.
    fn modified(path: &str, node: &Node) -> Undo {
        Undo::Modified {
            path: path.to_string(),
            data: node.data.clone(),
            acl: node.acl.clone(),
            mzxid: node.mzxid,
            mtime: node.mtime,
            version: node.version,
            aversion: node.aversion,
        }
    }
}

impl Default for DataTree {
    fn default() -> Self {
        Self::new()
    }
}

impl DataTree {
    /// A fresh tree with `/`, `/zookeeper`, `/zookeeper/quota` and `/zookeeper/config`, all with
    /// zeroed stats as in ZooKeeper.
    pub fn new() -> Self {
        let mut t = DataTree {
            nodes: imbl::HashMap::new(),
            sessions: imbl::OrdMap::new(),
            ephemerals: HashMap::new(),
            last_zxid: 0,
            acl_cache: HashMap::new(),
            totals: Totals::default(),
            collectable: imbl::OrdSet::new(),
            quotas: BTreeSet::new(),
            staged: None,
        };
        let open = t.intern(Acl::open());
        let read = t.intern(Acl::read_only());
        let empty = || Some(Bytes::new());
        let mut root = Node::new(empty(), open.clone(), NodeKind::Persistent, 0, 0);
        root.children.insert("zookeeper".into());
        let mut zk = Node::new(empty(), open.clone(), NodeKind::Persistent, 0, 0);
        zk.children.insert("quota".into());
        zk.children.insert("config".into());
        t.put_node("/".into(), Arc::new(root));
        t.put_node("/zookeeper".into(), Arc::new(zk));
        t.put_node(
            "/zookeeper/quota".into(),
            Arc::new(Node::new(empty(), open, NodeKind::Persistent, 0, 0)),
        );
        // ZooKeeper creates the config node with aversion -1.
        let mut config = Node::new(empty(), read, NodeKind::Persistent, 0, 0);
        config.aversion = -1;
        t.put_node("/zookeeper/config".into(), Arc::new(config));
        t
    }

    /// Inserts a node, keeping the totals and the collection candidates.
    pub(crate) fn put_node(&mut self, path: String, node: Arc<Node>) {
        self.totals.added(&path, &node);
        if matches!(node.kind, NodeKind::Container | NodeKind::Ttl(_)) {
            self.collectable.insert(path.clone());
        }
        if let Some((prefix, QuotaNode::Limits)) = quota::quota_node(&path) {
            self.quotas.insert(prefix.to_string());
        }
        if let Some(old) = self.nodes.insert(path.clone(), node) {
            self.totals.removed(&path, &old);
        }
    }

    /// Removes a node, keeping the totals and the collection candidates.
    fn take_node(&mut self, path: &str) -> Option<Arc<Node>> {
        let node = self.nodes.remove(path)?;
        self.totals.removed(path, &node);
        if matches!(node.kind, NodeKind::Container | NodeKind::Ttl(_)) {
            self.collectable.remove(path);
        }
        if let Some((prefix, QuotaNode::Limits)) = quota::quota_node(path) {
            self.quotas.remove(prefix);
        }
        Some(node)
    }

    /// The deepest path with a quota that `path` is in (itself or an ancestor, by whole
    /// components; never `/`), as ZooKeeper finds it in its path trie.
    fn quota_of(&self, path: &str) -> Option<String> {
        if self.quotas.is_empty() {
            return None;
        }
        let mut p = path;
        while p != "/" {
            if self.quotas.contains(p) {
                return Some(p.to_string());
            }
            p = path::parent(p);
        }
        None
    }

    /// ZooKeeper's `enforceQuota`: whether `count` more nodes and `bytes` more bytes under
    /// `path` stay within the hard limits of the deepest quota it falls under. Soft limits
    /// (`count`, `bytes`) only warn, in ZooKeeper's log; a quota without its limits or
    /// stats node limits nothing.
    /// Inside a multi, ZooKeeper checks every op against the quotas as they were before the
    /// multi (`before`, [`DataTree::quotas_before`]), not as its earlier ops left them.
    fn within_quota(
        &self,
        path: &str,
        count: i64,
        bytes: i64,
        before: &QuotasBefore,
    ) -> Result<(), ErrorCode> {
        let Some(prefix) = self.quota_of(path) else {
            return Ok(());
        };
        let (Some(limits), Some(usage)) = before
            .iter()
            .find(|(p, _)| *p == prefix)
            .map_or_else(|| self.quota_figures(&prefix), |(_, f)| f.clone())
        else {
            return Ok(());
        };
        let over = |change: i64, used: &str, limit: &str| {
            let limit = limits.get(limit);
            limit > -1 && usage.get(used) + change > limit
        };
        if (count != 0 && over(count, "count", "countHardLimit"))
            || (bytes > 0 && over(bytes, "bytes", "byteHardLimit"))
        {
            return Err(ErrorCode::QuotaExceeded);
        }
        Ok(())
    }

    /// The limits and the usage of the quota on `prefix`, as its nodes hold them.
    fn quota_figures(&self, prefix: &str) -> (Option<StatsTrack>, Option<StatsTrack>) {
        let read = |p: String| {
            self.nodes
                .get(&p)
                .map(|n| StatsTrack::parse(n.data.as_deref().unwrap_or_default()))
        };
        (
            read(quota::limits_path(prefix)),
            read(quota::stats_path(prefix)),
        )
    }

    /// The figures of the quotas a multi's creates and setDatas fall under, before it runs.
    fn quotas_before(&self, ops: &[TxnOp]) -> QuotasBefore {
        let mut before = QuotasBefore::new();
        if self.quotas.is_empty() {
            return before;
        }
        for op in ops {
            let path = match op {
                TxnOp::Create(c) => &c.path,
                TxnOp::SetData { path, .. } => path,
                _ => continue,
            };
            if let Some(prefix) = self.quota_of(path) {
                if !before.iter().any(|(p, _)| *p == prefix) {
                    let figures = self.quota_figures(&prefix);
                    before.push((prefix, figures));
                }
            }
        }
        before
    }

    /// Adds to the usage figures of the quota `path` falls under, if any.
    fn account(&mut self, path: &str, count: i64, bytes: i64, undo: &mut Vec<Undo>) {
        if let Some(prefix) = self.quota_of(path) {
            let stats = quota::stats_path(&prefix);
            if let Some(node) = self.nodes.get(&stats) {
                let mut track = StatsTrack::parse(node.data.as_deref().unwrap_or_default());
                track.add(count, bytes);
                self.set_quietly(&stats, track.to_bytes(), undo);
            }
        }
    }

    /// Counts the subtree of `prefix` into its stats node (when the stats node is created).
    fn recount(&mut self, prefix: &str, undo: &mut Vec<Undo>) {
        let (count, bytes) = match self.subtree(prefix) {
            Some(s) => s.usage(),
            None => (0, 0),
        };
        let mut track = StatsTrack::default();
        track.set("count", count);
        track.set("bytes", bytes);
        self.set_quietly(&quota::stats_path(prefix), track.to_bytes(), undo);
    }

    /// Replaces a node's data leaving its stat (version, zxids, times) alone and firing no
    /// watch: how ZooKeeper keeps quota stats.
    fn set_quietly(&mut self, path: &str, data: Vec<u8>, undo: &mut Vec<Undo>) {
        let Some(node) = node_mut(&mut self.nodes, path) else {
            return;
        };
        undo.push(Undo::modified(path, node));
        let data = Some(Bytes::from(data));
        self.totals.data_changed(&node.data, &data);
        node.data = data;
    }

    fn intern(&mut self, acl: Vec<Acl>) -> Arc<[Acl]> {
        if let Some(a) = self.acl_cache.get(&acl) {
            return a.clone();
        }
        let a: Arc<[Acl]> = acl.clone().into();
        self.acl_cache.insert(acl, a.clone());
        a
    }

    /// The state as it is now, in O(1): the frozen copy shares every node with this tree and
    /// stays unchanged while the tree moves on (copy-on-write). Snapshots encode it on
    /// another thread, so the apply path never waits for a whole-tree encode.
    pub fn freeze(&self) -> crate::codec::FrozenTree {
        crate::codec::FrozenTree {
            last_zxid: self.last_zxid,
            sessions: self.sessions.clone(),
            nodes: self.nodes.clone(),
            staged: self.staged.clone(),
        }
    }

    /// Every node path, in no particular order.
    pub fn paths(&self) -> impl Iterator<Item = &String> {
        self.nodes.keys()
    }

    /// Starts rebuilding a tree from stored parts (see [`Restoring`]).
    pub(crate) fn restoring(last_zxid: i64, sessions: Vec<(i64, SessionMeta)>) -> Restoring {
        Restoring(DataTree {
            nodes: imbl::HashMap::new(),
            sessions: sessions.into_iter().collect(),
            ephemerals: HashMap::new(),
            last_zxid,
            acl_cache: HashMap::new(),
            totals: Totals::default(),
            collectable: imbl::OrdSet::new(),
            quotas: BTreeSet::new(),
            staged: None,
        })
    }

    /// Sets `/zookeeper/config` to the ensemble's membership as a membership change is applied,
    /// as ZooKeeper's reconfig does: Stat.version -1, mzxid the zxid of the change.
    pub fn set_config(&mut self, data: Bytes, zxid: i64, time: i64) -> ChangeEvent {
        let path = "/zookeeper/config";
        // Every tree has the node from its start (see `DataTree::new`).
        let mut acl: Arc<[Acl]> = Arc::from(Acl::read_only());
        if let Some(old) = self.nodes.get(path) {
            let mut node = Node::clone(old);
            node.data = Some(data);
            node.mzxid = zxid;
            node.mtime = time;
            node.version = -1;
            acl = node.acl.clone();
            self.put_node(path.into(), Arc::new(node));
        }
        self.last_zxid = self.last_zxid.max(zxid);
        ChangeEvent {
            kind: EventType::NodeDataChanged,
            path: path.into(),
            acl,
        }
    }

    /// The zxid of the last applied txn.
    pub fn last_zxid(&self) -> i64 {
        self.last_zxid
    }

    pub fn get(&self, path: &str) -> Option<&Node> {
        self.nodes.get(path).map(|n| &**n)
    }

    /// A node shared with the tree, in O(1): it stays as it is now while the tree moves on
    /// (copy-on-write), so a reply can be encoded from it after whatever guards the tree is
    /// released.
    pub fn get_shared(&self, path: &str) -> Option<Arc<Node>> {
        self.nodes.get(path).cloned()
    }

    pub fn node_count(&self) -> usize {
        self.nodes.len()
    }

    pub fn session(&self, id: i64) -> Option<&SessionMeta> {
        self.sessions.get(&id)
    }

    pub fn sessions(&self) -> impl Iterator<Item = (i64, &SessionMeta)> {
        self.sessions.iter().map(|(id, m)| (*id, m))
    }

    /// Ephemerals owned by `session` whose path starts with `prefix` (a string prefix, as in
    /// ZooKeeper's getEphemerals; "" and "/" mean all).
    pub fn ephemerals(&self, session: i64, prefix: &str) -> Vec<String> {
        self.ephemerals
            .get(&session)
            .map(|s| {
                s.iter()
                    .filter(|p| prefix == "/" || p.starts_with(prefix))
                    .cloned()
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Ephemeral nodes in the tree (kept current: O(1)).
    pub fn ephemeral_count(&self) -> usize {
        self.totals.ephemerals
    }

    /// Bytes of data and path names held, like ZooKeeper's `approximate_data_size` (kept
    /// current: O(1)).
    pub fn approximate_data_size(&self) -> u64 {
        self.totals.data_bytes
    }

    /// Number of descendants of `path` (not counting itself), or `None` if it does not exist.
    pub fn descendant_count(&self, path: &str) -> Option<usize> {
        self.subtree(path).map(|s| s.descendant_count())
    }

    /// The subtree under `path` as it is now, in O(1) (shared, copy-on-write), to be walked
    /// without holding whatever guards this tree; `None` if `path` does not exist.
    pub fn subtree(&self, path: &str) -> Option<Subtree> {
        self.nodes.contains_key(path).then(|| Subtree {
            root: path.to_string(),
            nodes: self.nodes.clone(),
        })
    }

    /// The container and TTL nodes as they are now, in O(1) (shared, copy-on-write), so the
    /// collector can look for expired ones without holding whatever guards this tree.
    pub fn collection_view(&self) -> CollectionView {
        CollectionView {
            candidates: self.collectable.clone(),
            nodes: self.nodes.clone(),
        }
    }

    /// Containers that are empty after having had children, and TTL nodes that are empty and
    /// unmodified for longer than their TTL at `now`: what the server should propose to delete.
    pub fn expired_containers(&self, now: i64) -> Vec<String> {
        self.collection_view().expired(now)
    }

    fn collectable(n: &Node, now: i64) -> bool {
        n.children.is_empty()
            && match n.kind {
                NodeKind::Container => n.stored_cversion > 0,
                NodeKind::Ttl(ttl) => now.saturating_sub(n.mtime) > ttl,
                _ => false,
            }
    }

    /// Applies one txn. Failed txns still advance `last_zxid`: they hold a place in the order.
    pub fn apply(&mut self, txn: Txn) -> Applied {
        let mut events = Vec::new();
        let result = match txn.op {
            // A request the client's former server still had: as in ZooKeeper, it fails, and
            // that server closes the connection it came on.
            TxnOp::Multi(_) if self.moved_away(&txn) => Ok(OpOutput::Multi(MultiOutput::Aborted {
                index: 0,
                code: ErrorCode::SessionMoved,
            })),
            _ if self.moved_away(&txn) => Err(ErrorCode::SessionMoved),
            // An id already in use is refused, never overwritten: its client's password and
            // ephemerals stay its own (ids are unique by construction; this is the guard).
            TxnOp::CreateSession { .. } if self.sessions.contains_key(&txn.session) => {
                Err(ErrorCode::RuntimeInconsistency)
            }
            TxnOp::CreateSession { timeout_ms, passwd } => {
                let meta = SessionMeta {
                    timeout_ms,
                    passwd,
                    owner: txn.origin.unwrap_or(0),
                };
                self.sessions.insert(txn.session, meta);
                Ok(OpOutput::SessionCreated)
            }
            TxnOp::MoveSession { to } => match self.sessions.get_mut(&txn.session) {
                Some(meta) => {
                    meta.owner = to;
                    Ok(OpOutput::SessionMoved)
                }
                None => Err(ErrorCode::SessionExpired),
            },
            op @ (TxnOp::RestoreChunk { .. }
            | TxnOp::Restore { .. }
            | TxnOp::CancelRestore { .. }) => self.apply_restore(op),
            TxnOp::Multi(ops) => {
                let before = if txn.checks.quota {
                    self.quotas_before(&ops)
                } else {
                    QuotasBefore::new()
                };
                let mut undo = Vec::new();
                let mut outputs = Vec::with_capacity(ops.len());
                let mut failed = None;
                for (i, op) in ops.into_iter().enumerate() {
                    let at = At {
                        zxid: txn.zxid,
                        time: txn.time,
                        session: txn.session,
                        checks: &txn.checks,
                        quotas_before: &before,
                    };
                    match self.apply_op(op, at, &mut undo, &mut events) {
                        Ok(out) => outputs.push(out),
                        Err(code) => {
                            failed = Some((i, code));
                            break;
                        }
                    }
                }
                match failed {
                    None => Ok(OpOutput::Multi(MultiOutput::Committed(outputs))),
                    Some((index, code)) => {
                        self.rollback(undo);
                        events.clear();
                        Ok(OpOutput::Multi(MultiOutput::Aborted { index, code }))
                    }
                }
            }
            op => {
                let at = At {
                    zxid: txn.zxid,
                    time: txn.time,
                    session: txn.session,
                    checks: &txn.checks,
                    quotas_before: &QuotasBefore::new(),
                };
                self.apply_op(op, at, &mut Vec::new(), &mut events)
            }
        };
        self.last_zxid = self.last_zxid.max(txn.zxid);
        Applied { result, events }
    }

    /// Whether `txn` comes from a server other than the one holding its session.
    fn moved_away(&self, txn: &Txn) -> bool {
        let Some(from) = txn.origin else {
            return false;
        };
        if matches!(
            txn.op,
            TxnOp::CreateSession { .. } | TxnOp::MoveSession { .. }
        ) {
            return false;
        }
        self.sessions
            .get(&txn.session)
            .is_some_and(|m| m.owner != 0 && m.owner != from)
    }

    fn apply_op(
        &mut self,
        op: TxnOp,
        at: At,
        undo: &mut Vec<Undo>,
        events: &mut Vec<ChangeEvent>,
    ) -> Result<OpOutput, ErrorCode> {
        let At {
            zxid,
            time,
            session,
            checks,
            quotas_before,
        } = at;
        // ZooKeeper's check, where ZooKeeper makes it: after the nodes are found, before
        // versions, existence and children are looked at.
        let may = |acl: &[Acl], perm: i32| match &checks.ids {
            Some(ids) => acl::check(acl, ids, perm),
            None => Ok(()),
        };
        match op {
            // Only whole txns open or move a session or restore a backup (see `apply`), never a
            // multi's op.
            TxnOp::CreateSession { .. }
            | TxnOp::MoveSession { .. }
            | TxnOp::RestoreChunk { .. }
            | TxnOp::Restore { .. }
            | TxnOp::CancelRestore { .. } => Err(ErrorCode::BadArguments),
            TxnOp::CloseSession => {
                self.sessions.remove(&session);
                let paths = self.ephemerals.remove(&session).unwrap_or_default();
                let mut deleted = Vec::with_capacity(paths.len());
                // Deepest first is not needed (ephemerals have no children), but order by path
                // keeps the event order deterministic.
                for p in paths {
                    if self.remove_node(&p, zxid, undo, events).is_ok() {
                        deleted.push(p);
                    }
                }
                Ok(OpOutput::SessionClosed { deleted })
            }
            TxnOp::Create(c) => self.create(c, at, undo, events),
            TxnOp::Delete { path, version } => {
                if SPECIAL.contains(&path.as_str()) {
                    return Err(ErrorCode::BadArguments);
                }
                if !path.starts_with('/') || path.contains('\0') {
                    return Err(ErrorCode::BadArguments);
                }
                let parent = path::parent(&path);
                if !self.nodes.contains_key(parent) {
                    return Err(ErrorCode::NoNode);
                }
                // The parent's DELETE permission before the node's existence, as ZooKeeper
                // checks them: without it, NoAuth even for a child that is not there.
                may(&self.nodes[parent].acl, perms::DELETE)?;
                let node = self.nodes.get(&path).ok_or(ErrorCode::NoNode)?;
                if version != -1 && version != node.version {
                    return Err(ErrorCode::BadVersion);
                }
                if !node.children.is_empty() {
                    return Err(ErrorCode::NotEmpty);
                }
                self.remove_node(&path, zxid, undo, events)?;
                Ok(OpOutput::Deleted)
            }
            TxnOp::DeleteContainer { path } => {
                let node = self.nodes.get(&path).ok_or(ErrorCode::NoNode)?;
                if !matches!(node.kind, NodeKind::Container | NodeKind::Ttl(_)) {
                    return Err(ErrorCode::BadVersion);
                }
                if !Self::collectable(node, time) {
                    return Err(ErrorCode::NotEmpty);
                }
                self.remove_node(&path, zxid, undo, events)?;
                Ok(OpOutput::Deleted)
            }
            TxnOp::SetData {
                path,
                data,
                version,
            } => {
                if !path::is_valid(&path) {
                    return Err(ErrorCode::BadArguments);
                }
                if checks.quota {
                    // Looked at before the node is taken for change (one lookup otherwise).
                    let node = self.nodes.get(&path).ok_or(ErrorCode::NoNode)?;
                    may(&node.acl, perms::WRITE)?;
                    let grown = data_len(&data) as i64 - data_len(&node.data) as i64;
                    self.within_quota(&path, 0, grown, quotas_before)?;
                }
                let node = node_mut(&mut self.nodes, &path).ok_or(ErrorCode::NoNode)?;
                may(&node.acl, perms::WRITE)?;
                if version != -1 && version != node.version {
                    return Err(ErrorCode::BadVersion);
                }
                undo.push(Undo::modified(&path, node));
                let bytes = data_len(&data) as i64 - data_len(&node.data) as i64;
                self.totals.data_changed(&node.data, &data);
                node.data = data;
                node.mzxid = zxid;
                node.mtime = time;
                node.version = node.version.wrapping_add(1);
                let stat = node.stat();
                let acl = node.acl.clone();
                self.account(&path, 0, bytes, undo);
                events.push(ChangeEvent {
                    kind: EventType::NodeDataChanged,
                    path,
                    acl,
                });
                Ok(OpOutput::Stat(stat))
            }
            TxnOp::SetAcl { path, acl, version } => {
                if !path::is_valid(&path) {
                    return Err(ErrorCode::BadArguments);
                }
                let acl = validate_acl(acl)?;
                let acl = self.intern(acl);
                let node = node_mut(&mut self.nodes, &path).ok_or(ErrorCode::NoNode)?;
                may(&node.acl, perms::ADMIN)?;
                if version != -1 && version != node.aversion {
                    return Err(ErrorCode::BadVersion);
                }
                undo.push(Undo::modified(&path, node));
                node.acl = acl;
                node.aversion = node.aversion.wrapping_add(1);
                Ok(OpOutput::Stat(node.stat()))
            }
            TxnOp::Check { path, version } => {
                if !path::is_valid(&path) {
                    return Err(ErrorCode::BadArguments);
                }
                let node = self.nodes.get(&path).ok_or(ErrorCode::NoNode)?;
                may(&node.acl, perms::READ)?;
                if version != -1 && version != node.version {
                    return Err(ErrorCode::BadVersion);
                }
                Ok(OpOutput::Checked)
            }
            TxnOp::Error(code) => Err(code),
            TxnOp::Multi(_) => Err(ErrorCode::MarshallingError),
        }
    }

    fn create(
        &mut self,
        c: Create,
        at: At,
        undo: &mut Vec<Undo>,
        events: &mut Vec<ChangeEvent>,
    ) -> Result<OpOutput, ErrorCode> {
        let (zxid, time, session) = (at.zxid, at.time, at.session);
        if let CreateKind::Ttl(ttl) = c.kind {
            if !(1..=MAX_TTL_MS).contains(&ttl) {
                return Err(ErrorCode::BadArguments);
            }
        }
        // ZooKeeper's order of checks: shape of the path, ACL, parent, the parent's permission,
        // then the full path (after any sequential suffix; "/q/" is a valid sequential
        // prefix), existence, ephemeral parent.
        if !c.path.starts_with('/') || c.path.contains('\0') {
            return Err(ErrorCode::BadArguments);
        }
        let acl = validate_acl(c.acl)?;
        let parent_path = match c.path.rfind('/') {
            Some(0) | None => "/",
            Some(i) => &c.path[..i],
        };
        let parent = self.nodes.get(parent_path).ok_or(ErrorCode::NoNode)?;
        if let Some(ids) = &at.checks.ids {
            acl::check(&parent.acl, ids, perms::CREATE)?;
        }
        let path = if c.sequential {
            format!("{}{:010}", c.path, parent.stored_cversion)
        } else {
            c.path.clone()
        };
        if !path::is_valid(&path) {
            return Err(ErrorCode::BadArguments);
        }
        if self.nodes.contains_key(&path) {
            return Err(ErrorCode::NodeExists);
        }
        if matches!(parent.kind, NodeKind::Ephemeral(_)) {
            return Err(ErrorCode::NoChildrenForEphemerals);
        }
        if at.checks.quota {
            self.within_quota(&path, 1, data_len(&c.data) as i64, at.quotas_before)?;
        }
        let kind = match c.kind {
            CreateKind::Persistent => NodeKind::Persistent,
            CreateKind::Ephemeral => {
                if !self.sessions.contains_key(&session) {
                    return Err(ErrorCode::SessionExpired);
                }
                NodeKind::Ephemeral(session)
            }
            CreateKind::Container => NodeKind::Container,
            CreateKind::Ttl(ttl) => NodeKind::Ttl(ttl),
        };
        let acl = self.intern(acl);
        let parent_path = parent_path.to_string();
        let parent = node_mut(&mut self.nodes, &parent_path).ok_or(ErrorCode::NoNode)?;
        undo.push(Undo::Created {
            path: path.clone(),
            parent_cversion: parent.stored_cversion,
            parent_pzxid: parent.pzxid,
        });
        parent.stored_cversion = parent.stored_cversion.wrapping_add(1);
        parent.pzxid = zxid;
        parent.children.insert(path::name(&path).to_string());
        let parent_acl = parent.acl.clone();
        let node_acl = acl.clone();
        let node = Node::new(c.data, acl, kind, zxid, time);
        let stat = node.stat();
        let bytes = data_len(&node.data) as i64;
        self.put_node(path.clone(), Arc::new(node));
        if let NodeKind::Ephemeral(s) = kind {
            self.ephemerals.entry(s).or_default().insert(path.clone());
        }
        if let Some((prefix, QuotaNode::Stats)) = quota::quota_node(&path) {
            let prefix = prefix.to_string();
            self.recount(&prefix, undo);
        }
        self.account(&path, 1, bytes, undo);
        events.push(ChangeEvent {
            kind: EventType::NodeCreated,
            path: path.clone(),
            acl: node_acl,
        });
        events.push(ChangeEvent {
            kind: EventType::NodeChildrenChanged,
            path: parent_path,
            acl: parent_acl,
        });
        Ok(OpOutput::Created { path, stat })
    }

    /// Removes a childless node, updating its parent and the ephemeral index.
    fn remove_node(
        &mut self,
        path: &str,
        zxid: i64,
        undo: &mut Vec<Undo>,
        events: &mut Vec<ChangeEvent>,
    ) -> Result<(), ErrorCode> {
        let parent_path = path::parent(path).to_string();
        let node = self.take_node(path).ok_or(ErrorCode::NoNode)?;
        self.account(path, -1, -(data_len(&node.data) as i64), undo);
        if let NodeKind::Ephemeral(s) = node.kind {
            if let Some(set) = self.ephemerals.get_mut(&s) {
                set.remove(path);
                if set.is_empty() {
                    self.ephemerals.remove(&s);
                }
            }
        }
        let (parent_pzxid, parent_acl) = match node_mut(&mut self.nodes, &parent_path) {
            Some(parent) => {
                parent.children.remove(path::name(path));
                let before = parent.pzxid;
                parent.pzxid = parent.pzxid.max(zxid);
                (before, parent.acl.clone())
            }
            None => (0, Arc::from(Vec::new())),
        };
        let acl = node.acl.clone();
        undo.push(Undo::Deleted {
            path: path.to_string(),
            node,
            parent_pzxid,
        });
        events.push(ChangeEvent {
            kind: EventType::NodeDeleted,
            path: path.to_string(),
            acl,
        });
        events.push(ChangeEvent {
            kind: EventType::NodeChildrenChanged,
            path: parent_path,
            acl: parent_acl,
        });
        Ok(())
    }

    fn rollback(&mut self, undo: Vec<Undo>) {
        for u in undo.into_iter().rev() {
            match u {
                Undo::Created {
                    path,
                    parent_cversion,
                    parent_pzxid,
                } => {
                    if let Some(node) = self.take_node(&path) {
                        if let NodeKind::Ephemeral(s) = node.kind {
                            if let Some(set) = self.ephemerals.get_mut(&s) {
                                set.remove(&path);
                                if set.is_empty() {
                                    self.ephemerals.remove(&s);
                                }
                            }
                        }
                    }
                    if let Some(p) = node_mut(&mut self.nodes, path::parent(&path)) {
                        p.children.remove(path::name(&path));
                        p.stored_cversion = parent_cversion;
                        p.pzxid = parent_pzxid;
                    }
                }
                Undo::Deleted {
                    path,
                    node,
                    parent_pzxid,
                } => {
                    if let Some(p) = node_mut(&mut self.nodes, path::parent(&path)) {
                        p.children.insert(path::name(&path).to_string());
                        p.pzxid = parent_pzxid;
                    }
                    if let NodeKind::Ephemeral(s) = node.kind {
                        self.ephemerals.entry(s).or_default().insert(path.clone());
                    }
                    self.put_node(path, node);
                }
                Undo::Modified {
                    path,
                    data,
                    acl,
                    mzxid,
                    mtime,
                    version,
                    aversion,
                } => {
                    if let Some(n) = node_mut(&mut self.nodes, &path) {
                        self.totals.data_changed(&n.data, &data);
                        n.data = data;
                        n.acl = acl;
                        n.mzxid = mzxid;
                        n.mtime = mtime;
                        n.version = version;
                        n.aversion = aversion;
                    }
                }
            }
        }
    }

    /// The client-visible Stat of a node.
    pub fn stat(&self, path: &str) -> Option<Stat> {
        self.nodes.get(path).map(|n| n.stat())
    }
}

/// A subtree frozen at one point of the log (see [`DataTree::subtree`]).
pub struct Subtree {
    root: String,
    nodes: imbl::HashMap<String, Arc<Node>>,
}

impl Subtree {
    /// Nodes in the subtree, the root included, and the bytes of their data: a quota's usage.
    pub fn usage(&self) -> (i64, i64) {
        let (mut count, mut bytes) = (0, 0);
        let mut stack = vec![self.root.clone()];
        while let Some(p) = stack.pop() {
            if let Some(n) = self.nodes.get(&p) {
                count += 1;
                bytes += data_len(&n.data) as i64;
                stack.extend(n.children.iter().map(|c| path::join(&p, c)));
            }
        }
        (count, bytes)
    }

    /// Nodes below the root, not counting it.
    pub fn descendant_count(&self) -> usize {
        let mut count = 0;
        let mut stack = vec![self.root.clone()];
        while let Some(p) = stack.pop() {
            if let Some(n) = self.nodes.get(&p) {
                count += n.children.len();
                stack.extend(n.children.iter().map(|c| path::join(&p, c)));
            }
        }
        count
    }
}

/// Container and TTL nodes frozen at one point of the log (see [`DataTree::collection_view`]).
pub struct CollectionView {
    candidates: imbl::OrdSet<String>,
    nodes: imbl::HashMap<String, Arc<Node>>,
}

impl CollectionView {
    /// The candidates collectable at `now`. Deleting them is decided again when the delete
    /// applies ([`TxnOp::DeleteContainer`] re-checks), so a view that is out of date by then
    /// deletes nothing that gained a child or was modified meanwhile.
    pub fn expired(&self, now: i64) -> Vec<String> {
        self.candidates
            .iter()
            .filter(|p| {
                self.nodes
                    .get(*p)
                    .is_some_and(|n| DataTree::collectable(n, now))
            })
            .cloned()
            .collect()
    }

    /// How many container and TTL nodes there are.
    pub fn candidates(&self) -> usize {
        self.candidates.len()
    }
}

/// Where and for whom an op applies (see [`Txn`]).
#[derive(Clone, Copy)]
struct At<'a> {
    zxid: i64,
    time: i64,
    session: i64,
    checks: &'a Checks,
    /// Inside a multi: the quotas as they were before it.
    quotas_before: &'a QuotasBefore,
}

/// Quota'd prefixes with their limits and usage (see [`DataTree::within_quota`]).
type QuotasBefore = Vec<(String, (Option<StatsTrack>, Option<StatsTrack>))>;

/// ACL rules applied on create and setACL: not empty, `world` only with `anyone`, duplicates
/// removed. `auth` must have been expanded by the server into the session's ids.
fn validate_acl(acl: Vec<Acl>) -> Result<Vec<Acl>, ErrorCode> {
    if acl.is_empty() {
        return Err(ErrorCode::InvalidAcl);
    }
    let mut out: Vec<Acl> = Vec::with_capacity(acl.len());
    for a in acl {
        let ok = match a.id.scheme.as_str() {
            "world" => a.id.id == "anyone",
            "digest" => a.id.id.contains(':'),
            "ip" => acl::valid_ip(&a.id.id),
            "x509" | "sasl" | "super" => true,
            _ => false,
        };
        if !ok {
            return Err(ErrorCode::InvalidAcl);
        }
        if !out.contains(&a) {
            out.push(a);
        }
    }
    Ok(out)
}

/// A node to change in place: copied first only if a frozen tree still shares it.
fn node_mut<'a>(
    nodes: &'a mut imbl::HashMap<String, Arc<Node>>,
    path: &str,
) -> Option<&'a mut Node> {
    nodes.get_mut(path).map(Arc::make_mut)
}

/// A tree being rebuilt from stored nodes, one at a time, so that a restore never holds the
/// decoded nodes and the tree side by side. Children lists, the ephemeral index and the ACL
/// cache are derived.
pub(crate) struct Restoring(DataTree);

impl Restoring {
    pub(crate) fn add(&mut self, path: String, mut node: Node) {
        let t = &mut self.0;
        node.acl = t.intern(node.acl.to_vec());
        node.children = imbl::OrdSet::new();
        if let NodeKind::Ephemeral(s) = node.kind {
            t.ephemerals.entry(s).or_default().insert(path.clone());
        }
        t.put_node(path, Arc::new(node));
    }

    /// Links every node to its parent. Fails with the path of a node whose parent is missing.
    pub(crate) fn finish(self) -> Result<DataTree, String> {
        let mut t = self.0;
        let paths: Vec<String> = t.nodes.keys().cloned().collect();
        for p in paths {
            if let Some(parent) = crate::codec::parent_of(&p) {
                match node_mut(&mut t.nodes, parent) {
                    Some(n) => {
                        n.children.insert(path::name(&p).to_string());
                    }
                    None => return Err(p),
                }
            }
        }
        if !t.nodes.contains_key("/") {
            return Err("/".into());
        }
        Ok(t)
    }
}
