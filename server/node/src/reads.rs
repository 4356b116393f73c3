//! Requests answered from the local tree without ordering: reads, watch management, sync.

use crate::state::State;
use crate::watches::{ConnId, WatchKind};
use bytes::BytesMut;
use zooid_proto::*;

/// Answers a read-only request for connection `conn` of `session`. Watches are registered as
/// ZooKeeper registers them (exists even on NONODE; getData / getChildren only on success).
pub fn execute(
    state: &mut State,
    conn: ConnId,
    session: i64,
    req: Request,
    max_reply_bytes: usize,
) -> Result<Response, ErrorCode> {
    match req {
        Request::Exists { path, watch } => {
            let stat = state.tree.stat(&path);
            if watch {
                state.watch(conn, WatchKind::Data, &path);
            }
            stat.map(Response::Stat).ok_or(ErrorCode::NoNode)
        }
        Request::GetData { path, watch } => {
            let resp = get_data(state, &path)?;
            if watch {
                state.watch(conn, WatchKind::Data, &path);
            }
            Ok(resp)
        }
        Request::GetChildren { path, watch } => {
            let node = state.tree.get(&path).ok_or(ErrorCode::NoNode)?;
            let children: Vec<String> = node.children.iter().cloned().collect();
            if watch {
                state.watch(conn, WatchKind::Child, &path);
            }
            Ok(Response::Children(children))
        }
        Request::GetChildren2 { path, watch } => {
            let node = state.tree.get(&path).ok_or(ErrorCode::NoNode)?;
            let children: Vec<String> = node.children.iter().cloned().collect();
            let stat = node.stat();
            if watch {
                state.watch(conn, WatchKind::Child, &path);
            }
            Ok(Response::Children2 { children, stat })
        }
        Request::GetAcl { path } => {
            let node = state.tree.get(&path).ok_or(ErrorCode::NoNode)?;
            Ok(Response::GetAcl {
                acl: node.acl.to_vec(),
                stat: node.stat(),
            })
        }
        Request::GetAllChildrenNumber { path } => state
            .tree
            .descendant_count(&path)
            .map(|n| Response::Int(n as i32))
            .ok_or(ErrorCode::NoNode),
        Request::GetEphemerals { prefix } => {
            Ok(Response::Paths(state.tree.ephemerals(session, &prefix)))
        }
        Request::Sync { path } => Ok(Response::Sync { path }),
        Request::MultiRead(ops) if multi_read_size(state, &ops) > max_reply_bytes => {
            // Refused before anything is copied: one small request must not make the server
            // build (and queue) a reply of any size.
            Err(ErrorCode::MarshallingError)
        }
        Request::MultiRead(ops) => Ok(Response::Multi(
            ops.into_iter()
                .map(|op| match op {
                    Request::GetData { path, .. } => match get_data(state, &path) {
                        Ok(Response::GetData { data, stat }) => OpResult::GetData { data, stat },
                        Ok(_) => OpResult::Error(ErrorCode::SystemError.code()),
                        Err(e) => OpResult::Error(e.code()),
                    },
                    Request::GetChildren { path, .. } => match state.tree.get(&path) {
                        Some(n) => OpResult::GetChildren(n.children.iter().cloned().collect()),
                        None => OpResult::Error(ErrorCode::NoNode.code()),
                    },
                    _ => OpResult::Error(ErrorCode::MarshallingError.code()),
                })
                .collect(),
        )),
        Request::AddWatch { path, mode } => {
            let kind = match mode {
                0 => WatchKind::Persistent,
                1 => WatchKind::Recursive,
                _ => return Err(ErrorCode::BadArguments),
            };
            state.watch(conn, kind, &path);
            Ok(Response::Int(0))
        }
        Request::CheckWatches { path, watcher_type } => {
            let t = WatcherType::from_i32(watcher_type).ok_or(ErrorCode::BadArguments)?;
            if state.watches.check(conn, &path, t) {
                Ok(Response::Empty)
            } else {
                Err(ErrorCode::NoWatcher)
            }
        }
        Request::RemoveWatches { path, watcher_type } => {
            let t = WatcherType::from_i32(watcher_type).ok_or(ErrorCode::BadArguments)?;
            if state.watches.remove_type(conn, &path, t) {
                Ok(Response::Empty)
            } else {
                Err(ErrorCode::NoWatcher)
            }
        }
        Request::SetWatches(w) => {
            set_watches(state, conn, w);
            Ok(Response::Empty)
        }
        Request::WhoAmI => Ok(Response::WhoAmI(
            state
                .conns
                .get(&conn)
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
        Request::Reconfig => Err(ErrorCode::ReconfigDisabled),
        _ => Err(ErrorCode::MarshallingError),
    }
}

/// Bytes a multiRead's reply would take, from the sizes of what it reads.
fn multi_read_size(state: &State, ops: &[Request]) -> usize {
    /// Each result's multi header (type, done, err) and its Stat.
    const PER_OP: usize = 12 + 68;
    ops.iter()
        .map(|op| {
            PER_OP
                + match op {
                    Request::GetData { path, .. } => state
                        .tree
                        .get(path)
                        .and_then(|n| n.data.as_ref())
                        .map_or(4, |d| 4 + d.len()),
                    Request::GetChildren { path, .. } => state.tree.get(path).map_or(4, |n| {
                        4 + n.children.iter().map(|c| 4 + c.len()).sum::<usize>()
                    }),
                    _ => 0,
                }
        })
        .sum()
}

fn get_data(state: &State, path: &str) -> Result<Response, ErrorCode> {
    let node = state.tree.get(path).ok_or(ErrorCode::NoNode)?;
    Ok(Response::GetData {
        data: node.data.as_ref().map(|d| d.to_vec()),
        stat: node.stat(),
    })
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
