//! What the operator saw of an ensemble, in the planner's terms: the pods Kubernetes runs and
//! the membership the members themselves report (through the ZooKeeper protocol and the
//! admin API, never from inside a pod).

use std::collections::BTreeMap;

/// A member pod, as the API server shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pod {
    /// The StatefulSet ordinal; the server id is `ordinal + 1`.
    pub ordinal: i32,
    /// Passing its readiness probe.
    pub ready: bool,
    /// Being deleted (it has a deletion timestamp).
    pub terminating: bool,
    /// The pod template revision it runs (the static configuration's hash).
    pub revision: String,
}

impl Pod {
    pub fn server_id(&self) -> i64 {
        i64::from(self.ordinal) + 1
    }
}

/// A member's role in the membership in force.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Participant,
    Observer,
}

/// The ensemble as its members report it: `/zookeeper/config` read through a member, and each
/// member's own state.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Membership {
    /// The configuration's version (the zxid that wrote it).
    pub version: String,
    /// Server id -> role.
    pub members: BTreeMap<i64, Role>,
    /// The leading member's server id, if one leads.
    pub leader: Option<i64>,
    /// Server id -> entries behind the leader, for the members that answered.
    pub lag: BTreeMap<i64, i64>,
    /// Server id -> the last zxid it applied, for the members that answered.
    pub zxid: BTreeMap<i64, i64>,
}

impl Membership {
    pub fn voters(&self) -> impl Iterator<Item = i64> + '_ {
        self.members
            .iter()
            .filter(|(_, r)| **r == Role::Participant)
            .map(|(id, _)| *id)
    }

    pub fn voter_count(&self) -> i32 {
        self.voters().count() as i32
    }

    pub fn is_voter(&self, id: i64) -> bool {
        self.members.get(&id) == Some(&Role::Participant)
    }
}

/// Everything the planner decides from.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Observed {
    /// The StatefulSet's replicas, `None` if there is no StatefulSet yet.
    pub statefulset_replicas: Option<i32>,
    pub pods: Vec<Pod>,
    /// `None` when no member answered (none runs yet, or none has a quorum).
    pub membership: Option<Membership>,
    /// The operation the status says is under way.
    pub pending: Option<crate::crd::PendingOperation>,
    /// The servers whose volume claim exists (one being deleted included: its volume is not
    /// gone until the claim is).
    pub claims: std::collections::BTreeSet<i64>,
}

impl Observed {
    pub fn pod(&self, server_id: i64) -> Option<&Pod> {
        self.pods.iter().find(|p| p.server_id() == server_id)
    }
}
