//! ZooKeeper's `reconfig` on this side of the replication crate: reading the request's server
//! lists, writing the membership as `/zookeeper/config` holds it, and the error codes.
//!
//! `/zookeeper/config` reads as ZooKeeper writes it, one `server.N=` line per member with its
//! role, then `version=` and the hex zxid of the change, so that kazoo, Curator (whose
//! EnsembleTracker rewrites its connection string from the client addresses) and zkCli's
//! `config` parse it.

use crate::config::zoocfg::{parse_member, Role};
use zooid_proto::ErrorCode;
use zooid_replication::{Member, MemberChange, Members, ReconfigError};

/// The change a reconfig request asks for. Either `new_members` alone (non-incremental) or
/// `joining` and `leaving`: comma-separated `server.N=host:quorumPort:electionPort[:role]
/// [;[clientHost:]clientPort]` lines and ids.
pub fn change(
    joining: Option<&str>,
    leaving: Option<&str>,
    new_members: Option<&str>,
) -> Result<MemberChange, String> {
    fn given(s: Option<&str>) -> Option<&str> {
        s.map(str::trim).filter(|s| !s.is_empty())
    }
    let (joining, leaving, new_members) = (given(joining), given(leaving), given(new_members));
    match (joining, leaving, new_members) {
        (None, None, None) => Err("nothing to change".into()),
        (None, None, Some(all)) => Ok(MemberChange::Replace(servers(all)?)),
        (_, _, Some(_)) => Err(
            "newMembers replaces the membership: give it alone, not with \
                                joining or leaving servers"
                .into(),
        ),
        (joining, leaving, None) => Ok(MemberChange::Incremental {
            joining: joining.map(servers).transpose()?.unwrap_or_default(),
            leaving: leaving
                .map(|l| {
                    l.split(',')
                        .map(|id| {
                            let id = id.trim();
                            id.parse::<u64>()
                                .ok()
                                .filter(|i| (1..=255).contains(i))
                                .ok_or_else(|| {
                                    format!("leaving server {id:?} is not an id from 1 to 255")
                                })
                        })
                        .collect::<Result<Vec<_>, _>>()
                })
                .transpose()?
                .unwrap_or_default(),
        }),
    }
}

/// `server.N=...` lines separated by commas (ZooKeeper's clients join a list so).
fn servers(list: &str) -> Result<Vec<Member>, String> {
    list.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|line| {
            let (key, value) = line
                .split_once('=')
                .ok_or_else(|| format!("{line:?} is not server.N=..."))?;
            let id = key
                .trim()
                .strip_prefix("server.")
                .and_then(|n| n.parse::<u64>().ok())
                .filter(|i| (1..=255).contains(i))
                .ok_or_else(|| format!("{:?} is not server.N with N from 1 to 255", key.trim()))?;
            let m = parse_member(id, value).map_err(|e| format!("server.{id}: {e}"))?;
            Ok(Member {
                id,
                spec: m.spec(),
                voter: m.role == Role::Participant,
            })
        })
        .collect()
}

/// The text of `/zookeeper/config`.
pub fn config_text(members: &Members) -> String {
    let mut s = String::new();
    for m in &members.members {
        s.push_str(&format!("server.{}={}\n", m.id, server_line(m)));
    }
    s.push_str(&format!("version={:x}", members.version));
    s
}

/// A member as the right-hand side of ZooKeeper's `server.N=` line:
/// `host:quorumPort:electionPort:role[;[clientHost:]clientPort]`.
pub fn server_line(m: &zooid_replication::Member) -> String {
    let role = if m.voter { "participant" } else { "observer" };
    match m.spec.split_once(';') {
        Some((peer, client)) => format!("{peer}:{role};{client}"),
        None => format!("{}:{role}", m.spec),
    }
}

/// What the client is told, or `None` when its connection should be closed instead: the
/// outcome is unknown, as after ZooKeeper's CONNECTIONLOSS.
pub fn error_code(e: &ReconfigError) -> Option<ErrorCode> {
    match e {
        ReconfigError::InProgress => Some(ErrorCode::ReconfigInProgress),
        ReconfigError::BadVersion { .. } => Some(ErrorCode::BadVersion),
        ReconfigError::BadArguments(_) => Some(ErrorCode::BadArguments),
        ReconfigError::NoQuorum(_) => Some(ErrorCode::NewConfigNoQuorum),
        ReconfigError::NoLeader(_) | ReconfigError::Failed(_) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_read_as_zookeeper_clients_send_them() {
        let c = change(
            Some("server.4=127.0.0.1:2891:3891:participant;127.0.0.1:2184,server.5=127.0.0.1:2892:3892:observer;2185"),
            Some("1, 2"),
            None,
        )
        .unwrap();
        let MemberChange::Incremental { joining, leaving } = c else {
            panic!("{c:?}")
        };
        assert_eq!(leaving, vec![1, 2]);
        assert_eq!(joining[0].spec, "127.0.0.1:2891:3891;127.0.0.1:2184");
        assert!(joining[0].voter);
        assert_eq!(joining[1].spec, "127.0.0.1:2892:3892;0.0.0.0:2185");
        assert!(!joining[1].voter);
        let c = change(None, None, Some("server.1=h:1:2;3")).unwrap();
        assert!(matches!(c, MemberChange::Replace(m) if m.len() == 1));
        for (j, l, n, why) in [
            (None, None, None, "nothing"),
            (
                Some("server.1=h:1:2"),
                None,
                Some("server.1=h:1:2"),
                "alone",
            ),
            (None, Some("x"), None, "not an id"),
            (Some("1=h:1:2"), None, None, "server.N"),
            (Some("server.4=h:1"), None, None, "server.4"),
        ] {
            let e = change(j, l, n).unwrap_err();
            assert!(e.contains(why), "{e}");
        }
    }

    #[test]
    fn config_text_as_zookeeper_writes_it() {
        let members = Members {
            version: 0x1_0000_0000,
            members: vec![
                Member {
                    id: 1,
                    spec: "127.0.0.1:2888:3888;0.0.0.0:2181".into(),
                    voter: true,
                },
                Member {
                    id: 2,
                    spec: "[::1]:2889:3889".into(),
                    voter: false,
                },
            ],
            joint: false,
        };
        assert_eq!(
            config_text(&members),
            "server.1=127.0.0.1:2888:3888:participant;0.0.0.0:2181\n\
             server.2=[::1]:2889:3889:observer\n\
             version=100000000"
        );
    }
}
