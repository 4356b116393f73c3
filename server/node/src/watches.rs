//! Watch registrations per connection, and who is told about each change.
//!
//! As in ZooKeeper, watches belong to connections and are kept once per (path, kind): many
//! client-side watchers on one path cost one registration and get one notification.

use std::collections::{HashMap, HashSet};
use zooid_proto::{EventType, WatcherType};
use zooid_tree::ChangeEvent;

/// Identifies a client connection for the life of the server.
pub type ConnId = u64;

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

#[derive(Debug, Default)]
pub struct WatchManager {
    by_path: HashMap<WatchKind, HashMap<String, HashSet<ConnId>>>,
    by_conn: HashMap<ConnId, HashSet<(WatchKind, String)>>,
    /// Registrations in `by_path`, kept current so that `mntr` never walks them.
    registrations: usize,
}

impl WatchManager {
    pub fn add(&mut self, conn: ConnId, kind: WatchKind, path: &str) {
        let added = self
            .by_path
            .entry(kind)
            .or_default()
            .entry(path.to_string())
            .or_default()
            .insert(conn);
        self.registrations += usize::from(added);
        self.by_conn
            .entry(conn)
            .or_default()
            .insert((kind, path.to_string()));
    }

    fn remove(&mut self, conn: ConnId, kind: WatchKind, path: &str) -> bool {
        let Some(paths) = self.by_path.get_mut(&kind) else {
            return false;
        };
        let Some(conns) = paths.get_mut(path) else {
            return false;
        };
        let removed = conns.remove(&conn);
        self.registrations -= usize::from(removed);
        if conns.is_empty() {
            paths.remove(path);
        }
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
            .get(&kind)
            .and_then(|p| p.get(path))
            .is_some_and(|c| c.contains(&conn))
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
                if let Some(paths) = self.by_path.get_mut(&kind) {
                    if let Some(conns) = paths.get_mut(&path) {
                        self.registrations -= usize::from(conns.remove(&conn));
                        if conns.is_empty() {
                            paths.remove(&path);
                        }
                    }
                }
            }
        }
    }

    /// Total registrations, as `wchs` and `zk_watch_count` report them (kept current: O(1)).
    pub fn count(&self) -> usize {
        self.registrations
    }

    pub fn path_count(&self) -> usize {
        let mut paths: HashSet<&String> = HashSet::new();
        for p in self.by_path.values() {
            paths.extend(p.keys());
        }
        paths.len()
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
        for kind in one_shot {
            if let Some(conns) = self.by_path.get_mut(kind).and_then(|p| p.remove(&ev.path)) {
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
        }
        if let Some(conns) = self
            .by_path
            .get(&WatchKind::Persistent)
            .and_then(|p| p.get(&ev.path))
        {
            out.extend(conns.iter().copied());
        }
        if ev.kind != EventType::NodeChildrenChanged {
            if let Some(rec) = self.by_path.get(&WatchKind::Recursive) {
                if !rec.is_empty() {
                    for anc in ancestors_and_self(&ev.path) {
                        if let Some(conns) = rec.get(anc) {
                            out.extend(conns.iter().copied());
                        }
                    }
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
        }
    }

    fn walked(w: &WatchManager) -> usize {
        w.by_path
            .values()
            .flat_map(|p| p.values())
            .map(HashSet::len)
            .sum()
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
        assert_eq!((w.count(), walked(&w)), (9, 9));
        w.trigger(&ev(EventType::NodeDeleted, "/a"));
        assert_eq!((w.count(), walked(&w)), (3, 3));
        assert!(w.remove_type(1, "/", WatcherType::Any));
        w.remove_conn(2);
        assert_eq!((w.count(), walked(&w)), (1, 1));
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
