//! Changing who belongs to the ensemble (ZooKeeper's `reconfig`). Any member takes the
//! request; the leader carries it out, one change at a time, in openraft's safe steps:
//!
//! 1. members that are new join as learners (they replicate, do not vote);
//! 2. new participants must catch up with the leader's log before they vote, so that adding
//!    them never leaves the ensemble waiting on members that cannot acknowledge yet;
//! 3. the voters are replaced (a joint configuration, then the new one), keeping members that
//!    stop voting as learners;
//! 4. members that leave are removed.
//!
//! The answer is the version (zxid) of the final membership; the member that took the request
//! answers its client once it has applied that far.

use crate::members::{Member, Members};
use crate::network::PeerNetwork;
use crate::types::{NodeId, TypeConfig};
use openraft::error::{ChangeMembershipError, ClientWriteError, RaftError};
use openraft::{BasicNode, ChangeMembers, Raft};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

/// What a reconfig asks for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum MemberChange {
    /// These members join (or change their client address or role) and these ids leave.
    Incremental {
        joining: Vec<Member>,
        leaving: Vec<NodeId>,
    },
    /// Exactly these members, whatever there was before.
    Replace(Vec<Member>),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reconfig {
    pub change: MemberChange,
    /// Refuse unless the membership is at this version (ZooKeeper's `curConfigId`).
    pub from_version: Option<u64>,
}

/// Why a reconfig was not done. Each maps to one of ZooKeeper's error codes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
pub enum ReconfigError {
    #[error("another membership change is in progress")]
    InProgress,
    #[error("the membership is at version {current:#x}, not {expected:#x}")]
    BadVersion { current: u64, expected: u64 },
    #[error("{0}")]
    BadArguments(String),
    /// The new members could not be brought up to date: nothing changed.
    #[error("{0}")]
    NoQuorum(String),
    /// No leader took the request (none known, or it stopped leading): it may be sent again.
    #[error("{0}")]
    NoLeader(String),
    /// openraft failed part-way: some steps may have been taken.
    #[error("{0}")]
    Failed(String),
}

/// The leader's side: one change at a time.
pub struct Reconfigurer {
    raft: Raft<TypeConfig>,
    network: PeerNetwork,
    busy: tokio::sync::Mutex<()>,
    /// How long a joining participant has to catch up with the leader's log before the change
    /// is given up (ZooKeeper's NEWCONFIGNOQUORUM).
    catch_up_within: Duration,
}

impl Reconfigurer {
    pub fn new(raft: Raft<TypeConfig>, network: PeerNetwork, catch_up_within: Duration) -> Self {
        Reconfigurer {
            raft,
            network,
            busy: tokio::sync::Mutex::new(()),
            catch_up_within,
        }
    }

    /// Carries out `req` if this member leads; returns the version of the new membership.
    pub async fn run(&self, req: Reconfig) -> Result<u64, ReconfigError> {
        let _busy = self
            .busy
            .try_lock()
            .map_err(|_| ReconfigError::InProgress)?;
        let current = {
            let m = self.raft.metrics();
            let m = m.borrow();
            if m.current_leader != Some(m.id) {
                return Err(ReconfigError::NoLeader(format!(
                    "server {} no longer leads",
                    m.id
                )));
            }
            Members::of(
                m.membership_config.log_id().as_ref(),
                m.membership_config.membership(),
            )
        };
        if current.joint {
            return Err(ReconfigError::InProgress);
        }
        if let Some(expected) = req.from_version {
            if expected != current.version {
                return Err(ReconfigError::BadVersion {
                    current: current.version,
                    expected,
                });
            }
        }
        let target = plan(&current, &req.change)?;
        let node = |m: &Member| BasicNode::new(&m.spec);
        let added: BTreeMap<NodeId, BasicNode> = target
            .values()
            .filter(|m| current.get(m.id).is_none())
            .map(|m| (m.id, node(m)))
            .collect();
        let respecified: BTreeMap<NodeId, BasicNode> = target
            .values()
            .filter(|m| current.get(m.id).is_some_and(|c| c.spec != m.spec))
            .map(|m| (m.id, node(m)))
            .collect();
        let voters: BTreeSet<NodeId> = target.values().filter(|m| m.voter).map(|m| m.id).collect();
        let old_voters: BTreeSet<NodeId> = current
            .members
            .iter()
            .filter(|m| m.voter)
            .map(|m| m.id)
            .collect();
        let gone: BTreeSet<NodeId> = current
            .members
            .iter()
            .filter(|m| !target.contains_key(&m.id))
            .map(|m| m.id)
            .collect();

        let promoted: Vec<NodeId> = voters.difference(&old_voters).copied().collect();
        // A new participant that does not even answer cannot catch up: refused before the
        // membership is touched, so that its version stays as it was (ZooKeeper's behaviour).
        for id in &promoted {
            if let Some(m) = added.get(id) {
                if self.network.initialized(*id, &m.addr).await.is_none() {
                    return Err(ReconfigError::NoQuorum(format!(
                        "server.{id} does not answer on {}",
                        crate::members::peer_addr(&m.addr)
                    )));
                }
            }
        }
        let mut version = current.version;
        if !added.is_empty() {
            version = self.change(ChangeMembers::AddNodes(added.clone())).await?;
        }
        if !respecified.is_empty() {
            // Only the client address may differ (see `plan`), so no peer is rewired.
            version = self.change(ChangeMembers::SetNodes(respecified)).await?;
        }
        if !promoted.is_empty() {
            if let Err(e) = self.caught_up(&promoted).await {
                if !added.is_empty() {
                    let ids = added.keys().copied().collect();
                    if let Err(undo) = self.change(ChangeMembers::RemoveNodes(ids)).await {
                        tracing::warn!("removing the learners a failed reconfig added: {undo}");
                    }
                }
                return Err(e);
            }
        }
        if voters != old_voters {
            version = self.change(ChangeMembers::ReplaceAllVoters(voters)).await?;
        }
        if !gone.is_empty() {
            version = self.change(ChangeMembers::RemoveNodes(gone)).await?;
        }
        Ok(version)
    }

    /// One membership change, committed; returns its version.
    async fn change(&self, change: ChangeMembers<NodeId, BasicNode>) -> Result<u64, ReconfigError> {
        match self.raft.change_membership(change, true).await {
            Ok(r) => Ok(crate::batch::zxid(r.log_id.index, 0)),
            Err(RaftError::APIError(ClientWriteError::ForwardToLeader(_))) => {
                Err(ReconfigError::Failed(
                    "the leader stepped down during the change; read /zookeeper/config to see \
                     how far it went"
                        .into(),
                ))
            }
            Err(RaftError::APIError(ClientWriteError::ChangeMembershipError(
                ChangeMembershipError::InProgress(_),
            ))) => Err(ReconfigError::InProgress),
            Err(e) => Err(ReconfigError::Failed(e.to_string())),
        }
    }

    /// Waits until each of `ids` has acknowledged the leader's log as it is now.
    async fn caught_up(&self, ids: &[NodeId]) -> Result<(), ReconfigError> {
        let want = self.raft.metrics().borrow().last_log_index.unwrap_or(0);
        let within = self.catch_up_within;
        let done = |m: &openraft::RaftMetrics<NodeId, BasicNode>| {
            m.replication.as_ref().is_some_and(|r| {
                ids.iter().all(|id| {
                    r.get(id)
                        .and_then(|l| l.as_ref())
                        .is_some_and(|l| l.index >= want)
                })
            })
        };
        self.raft
            .wait(Some(within))
            .metrics(done, "joining members caught up")
            .await
            .map(drop)
            .map_err(|_| {
                let ids: Vec<String> = ids.iter().map(|i| format!("server.{i}")).collect();
                ReconfigError::NoQuorum(format!(
                    "{} did not catch up with the leader within {within:?}",
                    ids.join(", ")
                ))
            })
    }
}

/// The members after `change`, by id; refuses changes that make no sense.
pub fn plan(
    current: &Members,
    change: &MemberChange,
) -> Result<BTreeMap<NodeId, Member>, ReconfigError> {
    let bad = |s: String| Err(ReconfigError::BadArguments(s));
    let target: BTreeMap<NodeId, Member> = match change {
        MemberChange::Incremental { joining, leaving } => {
            let mut t: BTreeMap<NodeId, Member> =
                current.members.iter().map(|m| (m.id, m.clone())).collect();
            for id in leaving {
                if t.remove(id).is_none() {
                    return bad(format!("server.{id} is not a member"));
                }
                if joining.iter().any(|m| m.id == *id) {
                    return bad(format!("server.{id} both joins and leaves"));
                }
            }
            for m in joining {
                t.insert(m.id, m.clone());
            }
            t
        }
        MemberChange::Replace(members) => {
            let mut t = BTreeMap::new();
            for m in members {
                if t.insert(m.id, m.clone()).is_some() {
                    return bad(format!("server.{} is given twice", m.id));
                }
            }
            t
        }
    };
    if !target.values().any(|m| m.voter) {
        return bad("the new configuration has no participant".into());
    }
    for m in target.values() {
        if let Some(c) = current.get(m.id) {
            if c.peer_addr() != m.peer_addr() {
                return bad(format!(
                    "server.{} cannot move from {} to {}: remove it, then add it again",
                    m.id,
                    c.peer_addr(),
                    m.peer_addr()
                ));
            }
        }
    }
    let mut seen = BTreeMap::new();
    for m in target.values() {
        if let Some(other) = seen.insert(m.peer_addr().to_string(), m.id) {
            return bad(format!(
                "server.{other} and server.{} share the peer address {}",
                m.id,
                m.peer_addr()
            ));
        }
    }
    Ok(target)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn member(id: NodeId, port: u16, voter: bool) -> Member {
        Member {
            id,
            spec: format!("127.0.0.1:{port}:{};{}", port + 1000, port + 2000),
            voter,
        }
    }

    fn three() -> Members {
        Members {
            version: 1 << 16,
            members: (1..=3).map(|i| member(i, 2000 + i as u16, true)).collect(),
            joint: false,
        }
    }

    #[test]
    fn incremental_and_replacing_plans() {
        let grow = MemberChange::Incremental {
            joining: vec![member(4, 2004, true), member(5, 2005, false)],
            leaving: vec![1],
        };
        let t = plan(&three(), &grow).unwrap();
        assert_eq!(t.keys().copied().collect::<Vec<_>>(), vec![2, 3, 4, 5]);
        assert!(!t[&5].voter);
        let replace = MemberChange::Replace(vec![member(1, 2001, true), member(2, 2002, false)]);
        let t = plan(&three(), &replace).unwrap();
        assert_eq!(t.len(), 2);
        assert!(!t[&2].voter);
    }

    #[test]
    fn senseless_plans_are_refused() {
        let cases = [
            (
                MemberChange::Incremental {
                    joining: vec![],
                    leaving: vec![9],
                },
                "not a member",
            ),
            (
                MemberChange::Incremental {
                    joining: vec![member(1, 2001, true)],
                    leaving: vec![1],
                },
                "both joins and leaves",
            ),
            (
                MemberChange::Replace(vec![member(1, 2001, false)]),
                "no participant",
            ),
            (
                MemberChange::Incremental {
                    joining: vec![member(1, 2009, true)],
                    leaving: vec![],
                },
                "cannot move",
            ),
            (
                MemberChange::Incremental {
                    joining: vec![member(4, 2001, true)],
                    leaving: vec![],
                },
                "share the peer address",
            ),
        ];
        for (change, want) in cases {
            match plan(&three(), &change) {
                Err(ReconfigError::BadArguments(why)) => assert!(why.contains(want), "{why}"),
                other => panic!("{change:?}: {other:?}"),
            }
        }
    }
}
