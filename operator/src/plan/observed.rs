//! What the operator saw of an ensemble, in the planner's terms: the pods Kubernetes runs and
//! the membership the members themselves report (through the ZooKeeper protocol and the
//! admin API, never from inside a pod).

use std::collections::BTreeMap;

/// Observers' server ids start after this one (observer ordinal 0 is server 101), so that the
/// voters' ids (1 to 15) and theirs never meet and each id names one StatefulSet's pod.
pub const OBSERVER_ID_BASE: i64 = 100;

/// Which of the ensemble's two StatefulSets a server id belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Set {
    /// Voting members (and a member on its way to voting): ids 1 to 100.
    Voters,
    /// ZooKeeper's observers, which never vote: ids from 101.
    Observers,
}

impl Set {
    /// The set server `id` belongs to.
    pub fn of(id: i64) -> Set {
        if id > OBSERVER_ID_BASE {
            Set::Observers
        } else {
            Set::Voters
        }
    }

    /// The server id of this set's pod `ordinal`.
    pub fn server_id(self, ordinal: i32) -> i64 {
        let first = match self {
            Set::Voters => 1,
            Set::Observers => OBSERVER_ID_BASE + 1,
        };
        first + i64::from(ordinal)
    }

    /// The StatefulSet ordinal of server `id` (of this set).
    pub fn ordinal(self, id: i64) -> i32 {
        (id - self.server_id(0)) as i32
    }

    /// How many pods the set needs for server `id` to have one.
    pub fn pods_for(self, id: i64) -> i32 {
        self.ordinal(id) + 1
    }
}

/// A member pod, as the API server shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pod {
    /// The StatefulSet it belongs to.
    pub set: Set,
    /// Its ordinal in that StatefulSet.
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
        self.set.server_id(self.ordinal)
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

    /// The members of the observers' set (a voter on its way in is a non-voter too, but not
    /// one of these).
    pub fn observers(&self) -> impl Iterator<Item = i64> + '_ {
        self.members
            .iter()
            .filter(|(id, r)| **r == Role::Observer && Set::of(**id) == Set::Observers)
            .map(|(id, _)| *id)
    }
}

/// Everything the planner decides from.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Observed {
    /// The voters' StatefulSet's replicas, `None` if there is no StatefulSet yet.
    pub statefulset_replicas: Option<i32>,
    /// The observers' StatefulSet's replicas (0 when there is none).
    pub observer_replicas: i32,
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
