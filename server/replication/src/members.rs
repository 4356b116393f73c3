//! Who belongs to the ensemble, in ZooKeeper's terms, as the replicated membership says.
//!
//! Each member's openraft node carries its ZooKeeper server spec without the role:
//! `host:quorumPort:electionPort[;[clientHost:]clientPort]` (a plain `host:quorumPort` is read
//! too). The role comes from the membership: a voter is a participant, a learner an observer.
//! The version of a membership is the zxid of the entry that holds it, as ZooKeeper's config
//! version is the zxid of the reconfig that made it.

use crate::types::{LogId, NodeId};
use openraft::{BasicNode, Membership};
use serde::{Deserialize, Serialize};

/// One member of the ensemble.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Member {
    pub id: NodeId,
    /// `host:quorumPort:electionPort[;[clientHost:]clientPort]`.
    pub spec: String,
    /// A participant (votes) rather than an observer.
    pub voter: bool,
}

impl Member {
    /// The address peers reach this member on: `host:quorumPort`.
    pub fn peer_addr(&self) -> &str {
        peer_addr(&self.spec)
    }
}

/// The whole membership at one version.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Members {
    /// The zxid of the entry that holds this membership (0 before there is one).
    pub version: u64,
    /// By id.
    pub members: Vec<Member>,
    /// A change is half done (openraft's joint configuration): the next one completes it.
    pub joint: bool,
}

impl Members {
    pub(crate) fn of(log_id: Option<&LogId>, membership: &Membership<NodeId, BasicNode>) -> Self {
        let voters: std::collections::BTreeSet<NodeId> = membership.voter_ids().collect();
        let members = membership
            .nodes()
            .map(|(id, node)| Member {
                id: *id,
                spec: node.addr.clone(),
                voter: voters.contains(id),
            })
            .collect();
        Members {
            version: log_id.map_or(0, |l| crate::batch::zxid(l.index, 0)),
            members,
            joint: membership.get_joint_config().len() > 1,
        }
    }

    pub fn get(&self, id: NodeId) -> Option<&Member> {
        self.members.iter().find(|m| m.id == id)
    }
}

/// `host:quorumPort` of a server spec: what comes before the election port and the client
/// address. `[v6]:port` keeps its brackets.
pub fn peer_addr(spec: &str) -> &str {
    let spec = spec.split(';').next().unwrap_or(spec);
    let host_end = if spec.starts_with('[') {
        spec.find(']').map_or(0, |i| i + 1)
    } else {
        spec.find(':').unwrap_or(spec.len())
    };
    match spec[host_end..].strip_prefix(':') {
        Some(ports) => {
            let port_len = ports.find(':').unwrap_or(ports.len());
            &spec[..host_end + 1 + port_len]
        }
        None => spec,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peer_address_of_each_spec_form() {
        for (spec, addr) in [
            ("127.0.0.1:2888", "127.0.0.1:2888"),
            ("127.0.0.1:2888:3888", "127.0.0.1:2888"),
            ("zk1:2888:3888;2181", "zk1:2888"),
            ("zk1:2888:3888;0.0.0.0:2181", "zk1:2888"),
            ("[::1]:2888:3888;[::1]:2181", "[::1]:2888"),
            ("[fd00::4]:2888", "[fd00::4]:2888"),
        ] {
            assert_eq!(peer_addr(spec), addr, "{spec}");
        }
    }
}
