//! Requests answered from the local tree without ordering: reads, watch management, sync.

use crate::session::ConnId;
use crate::state::reply::{Answer, Part};
use crate::state::watches::WatchKind;
use crate::state::State;
use bytes::BytesMut;
use zooid_proto::*;
use zooid_tree::{acl, Node};

/// Answers a read-only request for connection `conn` of `session`. Watches are registered as
/// ZooKeeper registers them (exists even on NONODE; getData / getChildren only on success).
/// READ is checked as ZooKeeper checks it: on the node read, once found, before any watch is
/// set.
/// The answer holds the nodes it read, shared; it is encoded after the lock is released
/// (see [`crate::state::reply`]).
pub fn execute(
    state: &mut State,
    conn: ConnId,
    session: i64,
    req: Request,
    max_reply_bytes: usize,
) -> Result<Answer, ErrorCode> {
    let ready = |r: Response| Ok(Answer::Ready(r));
    match req {
        // ZooKeeper 3.8 checks nothing on exists (nor does Zooid, so that clients see the
        // same answers).
        Request::Exists { path, watch } => {
            let stat = state.tree.stat(&path);
            if watch {
                state.watch(conn, WatchKind::Data, &path);
            }
            stat.map(|s| Answer::Ready(Response::Stat(s)))
                .ok_or(ErrorCode::NoNode)
        }
        Request::GetData { path, watch } => {
            let node = state.tree.get_shared(&path).ok_or(ErrorCode::NoNode)?;
            may(state, conn, &node, perms::READ)?;
            if watch {
                state.watch(conn, WatchKind::Data, &path);
            }
            Ok(Answer::Data(node))
        }
        Request::GetChildren { path, watch } => {
            let node = state.tree.get_shared(&path).ok_or(ErrorCode::NoNode)?;
            may(state, conn, &node, perms::READ)?;
            if watch {
                state.watch(conn, WatchKind::Child, &path);
            }
            Ok(Answer::Children(node))
        }
        Request::GetChildren2 { path, watch } => {
            let node = state.tree.get_shared(&path).ok_or(ErrorCode::NoNode)?;
            may(state, conn, &node, perms::READ)?;
            if watch {
                state.watch(conn, WatchKind::Child, &path);
            }
            Ok(Answer::Children2(node))
        }
        Request::GetAcl { path } => {
            let node = state.tree.get_shared(&path).ok_or(ErrorCode::NoNode)?;
            may(state, conn, &node, perms::READ | perms::ADMIN)?;
            if may(state, conn, &node, perms::ADMIN).is_ok() {
                return Ok(Answer::Acl(node));
            }
            // Without ADMIN, digest ids are shown without their password hashes.
            let acl = node
                .acl
                .iter()
                .map(|a| match a.id.scheme.as_str() {
                    "digest" => Acl {
                        perms: a.perms,
                        id: Id {
                            scheme: a.id.scheme.clone(),
                            id: format!("{}:x", a.id.id.split(':').next().unwrap_or("")),
                        },
                    },
                    _ => a.clone(),
                })
                .collect();
            ready(Response::GetAcl {
                acl,
                stat: node.stat(),
            })
        }
        Request::GetAllChildrenNumber { path } => {
            let node = state.tree.get(&path).ok_or(ErrorCode::NoNode)?;
            may(state, conn, node, perms::READ)?;
            state
                .tree
                .subtree(&path)
                .map(Answer::Descendants)
                .ok_or(ErrorCode::NoNode)
        }
        Request::GetEphemerals { prefix } => {
            ready(Response::Paths(state.tree.ephemerals(session, &prefix)))
        }
        Request::Sync { path } => ready(Response::Sync { path }),
        Request::MultiRead(ops) => Ok(Answer::MultiRead {
            parts: ops
                .into_iter()
                .map(|op| {
                    let (path, part): (_, fn(_) -> _) = match op {
                        Request::GetData { path, .. } => (path, Part::Data),
                        Request::GetChildren { path, .. } => (path, Part::Children),
                        _ => return Part::Error(ErrorCode::MarshallingError),
                    };
                    match state.tree.get_shared(&path) {
                        None => Part::Error(ErrorCode::NoNode),
                        Some(node) => match may(state, conn, &node, perms::READ) {
                            Ok(()) => part(node),
                            Err(e) => Part::Error(e),
                        },
                    }
                })
                .collect(),
            max_bytes: max_reply_bytes,
        }),
        Request::AddWatch { path, mode } => {
            let kind = match mode {
                0 => WatchKind::Persistent,
                1 => WatchKind::Recursive,
                _ => return Err(ErrorCode::BadArguments),
            };
            state.watch(conn, kind, &path);
            ready(Response::Int(0))
        }
        Request::CheckWatches { path, watcher_type } => {
            let t = WatcherType::from_i32(watcher_type).ok_or(ErrorCode::BadArguments)?;
            if state.watches.check(conn, &path, t) {
                ready(Response::Empty)
            } else {
                Err(ErrorCode::NoWatcher)
            }
        }
        Request::RemoveWatches { path, watcher_type } => {
            let t = WatcherType::from_i32(watcher_type).ok_or(ErrorCode::BadArguments)?;
            if state.watches.remove_type(conn, &path, t) {
                ready(Response::Empty)
            } else {
                Err(ErrorCode::NoWatcher)
            }
        }
        Request::SetWatches(w) => {
            set_watches(state, conn, w);
            ready(Response::Empty)
        }
        Request::WhoAmI => ready(Response::WhoAmI(
            state
                .conns
                .get(conn)
                .map(|h| {
                    // ZooKeeper lists the address identity last.
                    let (ip, other): (Vec<&Id>, Vec<&Id>) =
                        h.auth_ids.iter().partition(|id| id.scheme == "ip");
                    other
                        .into_iter()
                        .chain(ip)
                        .map(|id| ClientInfo {
                            scheme: id.scheme.clone(),
                            user: match id.scheme.as_str() {
                                "digest" => id.id.split(':').next().unwrap_or("").to_string(),
                                _ => id.id.clone(),
                            },
                        })
                        .collect()
                })
                .unwrap_or_default(),
        )),
        // Answered by the connection, which waits for the change (see `connection::reconfig`).
        Request::Reconfig { .. } => Err(ErrorCode::ReconfigDisabled),
        _ => Err(ErrorCode::MarshallingError),
    }
}

/// Whether connection `conn` holds `perm` on `node`. An ACL that lets anyone (most nodes')
/// is decided without looking up the connection.
fn may(state: &State, conn: ConnId, node: &Node, perm: i32) -> Result<(), ErrorCode> {
    if !state.checks_acls() || acl::permits(&node.acl, &[], perm) {
        return Ok(());
    }
    let ids = state.conns.get(conn).map_or(&[][..], |h| &h.auth_ids[..]);
    acl::check(&node.acl, ids, perm)
}

/// Re-registers a reconnecting client's watches, first sending the events it missed while
/// away (relative to the last zxid it saw). Catch-up events carry zxid -1.
fn set_watches(state: &mut State, conn: ConnId, w: SetWatches) {
    let rel = w.relative_zxid;
    let mut missed: Vec<(EventType, String)> = Vec::new();
    for path in w.data {
        match state.tree.get(&path) {
            None => missed.push((EventType::NodeDeleted, path)),
            Some(n) if n.mzxid > rel => missed.push((EventType::NodeDataChanged, path)),
            Some(_) => state.watch(conn, WatchKind::Data, &path),
        }
    }
    for path in w.exist {
        match state.tree.get(&path) {
            Some(_) => missed.push((EventType::NodeCreated, path)),
            None => state.watch(conn, WatchKind::Data, &path),
        }
    }
    for path in w.child {
        match state.tree.get(&path) {
            None => missed.push((EventType::NodeDeleted, path)),
            Some(n) if n.pzxid > rel => missed.push((EventType::NodeChildrenChanged, path)),
            Some(_) => state.watch(conn, WatchKind::Child, &path),
        }
    }
    for path in w.persistent {
        state.watch(conn, WatchKind::Persistent, &path);
    }
    for path in w.persistent_recursive {
        state.watch(conn, WatchKind::Recursive, &path);
    }
    for (kind, path) in missed {
        let mut b = BytesMut::new();
        encode_notification(
            &mut b,
            -1,
            &WatcherEvent {
                event_type: kind as i32,
                state: STATE_SYNC_CONNECTED,
                path,
            },
        );
        state.send_to(conn, b.freeze());
    }
}
