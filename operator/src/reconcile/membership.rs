//! Reading the membership as the members report it: `/zookeeper/config` (what ZooKeeper's
//! `getConfig` returns) and each member's own `server_stats` from the admin API.

use crate::plan::observed::{Membership, Role};
use std::collections::BTreeMap;

/// Why `/zookeeper/config` could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigParseError {
    #[error("line {0:?} is not server.N=host:port:port[:role][;client]")]
    Line(String),
    #[error("no version= line")]
    NoVersion,
}

/// Parses `/zookeeper/config`: one `server.N=...` line per member, then `version=<hex>`.
pub fn parse_config(text: &str) -> Result<(String, BTreeMap<i64, Role>), ConfigParseError> {
    let mut members = BTreeMap::new();
    let mut version = None;
    for line in text.lines().map(str::trim).filter(|l| !l.is_empty()) {
        if let Some(v) = line.strip_prefix("version=") {
            version = Some(v.to_string());
            continue;
        }
        let bad = || ConfigParseError::Line(line.to_string());
        let (key, spec) = line.split_once('=').ok_or_else(bad)?;
        let id: i64 = key
            .strip_prefix("server.")
            .and_then(|n| n.parse().ok())
            .ok_or_else(bad)?;
        let peer = spec.split(';').next().unwrap_or(spec);
        let role = if peer.ends_with(":observer") {
            Role::Observer
        } else {
            Role::Participant
        };
        members.insert(id, role);
    }
    Ok((version.ok_or(ConfigParseError::NoVersion)?, members))
}

/// One member's own report (the admin API's `server_stats`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberReport {
    pub server_id: i64,
    /// `leader`, `follower`, `observer`, ...
    pub mode: String,
    pub zxid: i64,
}

/// The membership: the configuration, the leader, and each reporting member's lag behind it
/// (zxids are log positions, so their difference counts entries).
pub fn membership(
    version: String,
    members: BTreeMap<i64, Role>,
    reports: &[MemberReport],
) -> Membership {
    let leader = reports.iter().find(|r| r.mode == "leader");
    let lag = match leader {
        Some(l) => reports
            .iter()
            .map(|r| (r.server_id, (l.zxid - r.zxid).max(0)))
            .collect(),
        None => BTreeMap::new(),
    };
    Membership {
        version,
        members,
        leader: leader.map(|l| l.server_id),
        lag,
        zxid: reports.iter().map(|r| (r.server_id, r.zxid)).collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_as_zookeeper_writes_it() {
        let text = "server.1=a:2888:3888:participant;0.0.0.0:2181\n\
                    server.2=b:2888:3888:participant;0.0.0.0:2181\n\
                    server.4=d:2888:3888:observer;0.0.0.0:2181\n\
                    version=100000003";
        let (version, members) = parse_config(text).unwrap();
        assert_eq!(version, "100000003");
        assert_eq!(members.len(), 3);
        assert_eq!(members[&4], Role::Observer);
        assert_eq!(members[&1], Role::Participant);
        assert_eq!(
            parse_config("server.1=a:1:2\n"),
            Err(ConfigParseError::NoVersion)
        );
        assert!(parse_config("nonsense\nversion=1").is_err());
    }

    #[test]
    fn lag_is_counted_from_the_leader() {
        let reports = [
            MemberReport {
                server_id: 1,
                mode: "follower".into(),
                zxid: 90,
            },
            MemberReport {
                server_id: 2,
                mode: "leader".into(),
                zxid: 100,
            },
        ];
        let m = membership("1".into(), BTreeMap::new(), &reports);
        assert_eq!(m.leader, Some(2));
        assert_eq!(m.lag[&1], 10);
        assert_eq!(m.lag[&2], 0);
        assert_eq!(m.zxid[&1], 90);
    }
}
