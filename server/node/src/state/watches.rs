//! Watch registrations per connection, and who is told about each change.
//!
//! As in ZooKeeper, watches belong to connections and are kept once per (path, kind): many
//! client-side watchers on one path cost one registration and get one notification.

use std::collections::{HashMap, HashSet};
use zooid_proto::{EventType, WatcherType};
use zooid_tree::ChangeEvent;

pub use crate::session::ConnId;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum WatchKind {
    /// One-shot, set by getData and exists.
    Data,
    /// One-shot, set by getChildren.
    Child,
    /// addWatch PERSISTENT: data and child changes of the node, kept after firing.
    Persistent,
    /// addWatch PERSISTENT_RECURSIVE: data changes, creates and deletes of the node and below.
    Recursive,
}

const KINDS: [WatchKind; 4] = [
    WatchKind::Data,
    WatchKind::Child,
    WatchKind::Persistent,
    WatchKind::Recursive,
];

impl WatchKind {
    fn slot(self) -> usize {
        self as usize
    }
}

/// The connections watching one path, by kind. A path is kept only while some set is
/// non-empty, so the number of watched paths is the map's length.
#[derive(Debug, Default)]
struct PathWatches([HashSet<ConnId>; 4]);

impl PathWatches {
    fn is_empty(&self) -> bool {
        self.0.iter().all(HashSet::is_empty)
    }
}

#[derive(Debug, Default)]
pub struct WatchManager {
    by_path: HashMap<String, PathWatches>,
    by_conn: HashMap<ConnId, HashSet<(WatchKind, String)>>,
    /// Registrations in `by_path`, kept current so that `mntr` and `wchs` never walk them.
    registrations: usize,
    /// Recursive registrations: when there are none, a change looks at no ancestor.
    recursive: usize,
}

impl WatchManager {
    pub fn add(&mut self, conn: ConnId, kind: WatchKind, path: &str) {
        let added = self.by_path.entry(path.to_string()).or_default().0[kind.slot()].insert(conn);
        if added {
            self.registrations += 1;
            self.recursive += usize::from(kind == WatchKind::Recursive);
            self.by_conn
                .entry(conn)
                .or_default()
                .insert((kind, path.to_string()));
        }
    }

    /// Drops `conn` from the path's set of `kind` (not from `by_conn`); true if it was there.
    fn unregister(&mut self, conn: ConnId, kind: WatchKind, path: &str) -> bool {
        let Some(w) = self.by_path.get_mut(path) else {
            return false;
        };
        let removed = w.0[kind.slot()].remove(&conn);
        if removed {
            self.registrations -= 1;
            self.recursive -= usize::from(kind == WatchKind::Recursive);
            if w.is_empty() {
                self.by_path.remove(path);
            }
        }
        removed
    }

    fn remove(&mut self, conn: ConnId, kind: WatchKind, path: &str) -> bool {
        let removed = self.unregister(conn, kind, path);
        if let Some(set) = self.by_conn.get_mut(&conn) {
            set.remove(&(kind, path.to_string()));
            if set.is_empty() {
                self.by_conn.remove(&conn);
            }
        }
        removed
    }

    pub fn has(&self, conn: ConnId, kind: WatchKind, path: &str) -> bool {
        self.by_path
            .get(path)
            .is_some_and(|w| w.0[kind.slot()].contains(&conn))
    }

    /// The kinds a removeWatches / checkWatches type names.
    fn kinds_of(t: WatcherType) -> &'static [WatchKind] {
        match t {
            WatcherType::Children => &[WatchKind::Child],
            WatcherType::Data => &[WatchKind::Data],
            WatcherType::Any => &KINDS,
            WatcherType::Persistent => &[WatchKind::Persistent],
            WatcherType::PersistentRecursive => &[WatchKind::Recursive],
        }
    }

    /// Whether the connection holds a watch of this type on `path` (checkWatches).
    pub fn check(&self, conn: ConnId, path: &str, t: WatcherType) -> bool {
        Self::kinds_of(t).iter().any(|k| self.has(conn, *k, path))
    }

    /// Removes the connection's watches of this type on `path`; false if there were none.
    pub fn remove_type(&mut self, conn: ConnId, path: &str, t: WatcherType) -> bool {
        let mut any = false;
        for k in Self::kinds_of(t) {
            any |= self.remove(conn, *k, path);
        }
        any
    }

    /// Forgets every watch of a closed connection.
    pub fn remove_conn(&mut self, conn: ConnId) {
        if let Some(set) = self.by_conn.remove(&conn) {
            for (kind, path) in set {
                self.unregister(conn, kind, &path);
            }
        }
    }

    /// Total registrations, as `wchs` and `zk_watch_count` report them (kept current: O(1)).
    pub fn count(&self) -> usize {
        self.registrations
    }

    /// Distinct watched paths (O(1)).
    pub fn path_count(&self) -> usize {
        self.by_path.len()
    }

    /// The paths each connection watches (any kind), for `wchc`.
    pub fn paths_by_conn(&self) -> impl Iterator<Item = (ConnId, Vec<&str>)> {
        self.by_conn.iter().map(|(conn, set)| {
            let mut paths: Vec<&str> = set.iter().map(|(_, p)| p.as_str()).collect();
            paths.sort_unstable();
            paths.dedup();
            (*conn, paths)
        })
    }

    pub fn conn_count(&self) -> usize {
        self.by_conn.len()
    }

    /// Connections to notify of `ev`, each once; one-shot watches that fired are removed.
    pub fn trigger(&mut self, ev: &ChangeEvent) -> Vec<ConnId> {
        let mut out: Vec<ConnId> = Vec::new();
        let one_shot: &[WatchKind] = match ev.kind {
            EventType::NodeCreated | EventType::NodeDataChanged => &[WatchKind::Data],
            EventType::NodeDeleted => &[WatchKind::Data, WatchKind::Child],
            EventType::NodeChildrenChanged => &[WatchKind::Child],
        };
        if let Some(w) = self.by_path.get_mut(&ev.path) {
            for kind in one_shot {
                let conns = std::mem::take(&mut w.0[kind.slot()]);
                self.registrations -= conns.len();
                for c in conns {
                    if let Some(set) = self.by_conn.get_mut(&c) {
                        set.remove(&(*kind, ev.path.clone()));
                        if set.is_empty() {
                            self.by_conn.remove(&c);
                        }
                    }
                    out.push(c);
                }
            }
            out.extend(w.0[WatchKind::Persistent.slot()].iter().copied());
            if w.is_empty() {
                self.by_path.remove(&ev.path);
            }
        }
        if ev.kind != EventType::NodeChildrenChanged && self.recursive > 0 {
            for anc in ancestors_and_self(&ev.path) {
                if let Some(w) = self.by_path.get(anc) {
                    out.extend(w.0[WatchKind::Recursive.slot()].iter().copied());
                }
            }
        }
        out.sort_unstable();
        out.dedup();
        out
    }
}

/// `/a/b/c` → `/a/b/c`, `/a/b`, `/a`, `/`.
fn ancestors_and_self(path: &str) -> impl Iterator<Item = &str> {
    let mut cur = Some(path);
    std::iter::from_fn(move || {
        let p = cur?;
        cur = match p {
            "/" => None,
            _ => Some(zooid_tree::path::parent(p)),
        };
        Some(p)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(kind: EventType, path: &str) -> ChangeEvent {
        ChangeEvent {
            kind,
            path: path.into(),
            acl: zooid_proto::Acl::open().into(),
        }
    }

    fn walked(w: &WatchManager) -> (usize, usize) {
        let count = w
            .by_path
            .values()
            .flat_map(|p| p.0.iter())
            .map(HashSet::len)
            .sum();
        (count, w.by_path.len())
    }

    #[test]
    fn the_kept_count_equals_a_walk() {
        let mut w = WatchManager::default();
        for c in 1..4 {
            w.add(c, WatchKind::Data, "/a");
            w.add(c, WatchKind::Data, "/a");
            w.add(c, WatchKind::Child, "/a");
            w.add(c, WatchKind::Recursive, "/");
        }
        assert_eq!((w.count(), w.path_count()), walked(&w));
        assert_eq!(w.count(), 9);
        w.trigger(&ev(EventType::NodeDeleted, "/a"));
        assert_eq!((w.count(), w.path_count()), walked(&w));
        assert_eq!((w.count(), w.path_count()), (3, 1));
        assert!(w.remove_type(1, "/", WatcherType::Any));
        w.remove_conn(2);
        assert_eq!((w.count(), w.path_count()), walked(&w));
        assert_eq!((w.count(), w.path_count()), (1, 1));
        w.remove_conn(3);
        assert_eq!((w.count(), w.path_count(), w.conn_count()), (0, 0, 0));
    }

    #[test]
    fn one_shot_watches_fire_once() {
        let mut w = WatchManager::default();
        w.add(1, WatchKind::Data, "/a");
        w.add(2, WatchKind::Data, "/a");
        assert_eq!(w.trigger(&ev(EventType::NodeDataChanged, "/a")), vec![1, 2]);
        assert!(w.trigger(&ev(EventType::NodeDataChanged, "/a")).is_empty());
        assert_eq!(w.count(), 0);
        assert_eq!(w.conn_count(), 0);
    }

    #[test]
    fn delete_fires_data_and_child_watches_once_per_connection() {
        let mut w = WatchManager::default();
        w.add(1, WatchKind::Data, "/a");
        w.add(1, WatchKind::Child, "/a");
        w.add(2, WatchKind::Child, "/a");
        assert_eq!(w.trigger(&ev(EventType::NodeDeleted, "/a")), vec![1, 2]);
        assert_eq!(w.count(), 0);
    }

    #[test]
    fn persistent_and_recursive_stay_and_recursive_skips_child_events() {
        let mut w = WatchManager::default();
        w.add(1, WatchKind::Persistent, "/a");
        w.add(2, WatchKind::Recursive, "/");
        assert_eq!(
            w.trigger(&ev(EventType::NodeChildrenChanged, "/a")),
            vec![1]
        );
        assert_eq!(w.trigger(&ev(EventType::NodeCreated, "/a/b/c")), vec![2]);
        assert_eq!(w.trigger(&ev(EventType::NodeDataChanged, "/a")), vec![1, 2]);
        assert_eq!(w.count(), 2);
        assert!(w.remove_type(2, "/", WatcherType::Any));
        assert!(!w.remove_type(2, "/", WatcherType::Any));
        w.remove_conn(1);
        assert_eq!(w.count(), 0);
    }
}
