//! The planner: a pure function from what the operator observed and what the spec asks to
//! the one next step. It does no I/O and reads no clock, so every decision is tested without
//! a cluster (`tests.rs`); the reconciler carries the step out and observes again.
//!
//! Membership changes go one step per reconcile, and each is written to the status as the
//! pending operation before anything changes, then confirmed from live state: an operator
//! that dies at any point finds the operation in the status and the ensemble as it left it,
//! and goes on from there.

pub mod backup;
pub mod observed;
#[cfg(test)]
mod tests;

use crate::crd::{OperationKind, PendingOperation};
use observed::{Observed, Role, Set};

/// What the spec asks, in the planner's terms.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Desired {
    /// Voting members.
    pub replicas: i32,
    /// Observers (non-voting members of a StatefulSet of their own).
    pub observers: i32,
    /// The pod template revision members should run.
    pub revision: String,
    pub paused: bool,
    /// A member this many entries (or fewer) behind the leader counts as caught up.
    pub caught_up_lag: i64,
}

/// The one next step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Create or update the ensemble's objects, the voters' StatefulSet at `replicas` pods and
    /// the observers' at `observers` (new pods start as non-voters; on a first start, every
    /// member is in the configuration from the start).
    Apply { replicas: i32, observers: i32 },
    /// Write the operation to the status; nothing else changes in this step.
    Record(PendingOperation),
    /// The operation is confirmed done in live state: clear it from the status.
    Clear,
    /// Reconfig: `server_id` joins as a non-voter (an observer), if the configuration is
    /// still `version`.
    Join { server_id: i64, version: String },
    /// Reconfig: `server_id` becomes a voter, if the configuration is still `version`.
    Promote { server_id: i64, version: String },
    /// Reconfig: `server_id` leaves the membership, if the configuration is still `version`.
    Remove { server_id: i64, version: String },
    /// Delete the member's pod so that it comes back on the current template (a leader hands
    /// its leadership over on SIGTERM first).
    Restart { server_id: i64 },
    /// Delete a removed member's volume (the spec says `onScaleDown: Delete`).
    DeleteVolume { server_id: i64 },
    /// Nothing to change until something does; why, for the status.
    Wait(String),
    /// Converged.
    Done,
}

/// The servers the ensemble's objects list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listed {
    /// The voting members: the PodDisruptionBudget's count, the configuration's participants.
    pub voters: Vec<i64>,
    /// The configuration's observers: the observers, and a member on its way in (a new pod's
    /// configuration lists it as an observer, so that it can never start an ensemble of its
    /// own).
    pub non_voters: Vec<i64>,
    /// Voters, then observers: the discovery connection string.
    pub members: Vec<i64>,
}

/// What the objects list: the live membership, or before there is one, the spec.
pub fn listed(d: &Desired, o: &Observed) -> Listed {
    let (voters, observers): (Vec<i64>, Vec<i64>) = match &o.membership {
        Some(m) => (m.voters().collect(), m.observers().collect()),
        None => (
            (0..d.replicas).map(|i| Set::Voters.server_id(i)).collect(),
            (0..d.observers)
                .map(|i| Set::Observers.server_id(i))
                .collect(),
        ),
    };
    let joining = o
        .pending
        .iter()
        .filter(|p| {
            matches!(
                p.kind,
                OperationKind::AddMember | OperationKind::AddObserver
            )
        })
        .map(|p| p.server_id)
        .filter(|id| !voters.contains(id) && !observers.contains(id));
    let non_voters = observers.iter().copied().chain(joining).collect();
    Listed {
        members: voters.iter().chain(&observers).copied().collect(),
        voters,
        non_voters,
    }
}

/// The voters a PodDisruptionBudget may let go at once without losing the quorum: computed
/// from the live membership, so that a drain can never take it.
pub fn disruptions_allowed(voters: i32) -> i32 {
    if voters <= 0 {
        return 0;
    }
    voters - (voters / 2 + 1)
}

/// Decides the next step.
pub fn plan(d: &Desired, o: &Observed, delete_volumes: bool) -> Step {
    if d.paused {
        return Step::Wait("paused".into());
    }
    let Some(replicas) = o.statefulset_replicas else {
        // A new ensemble: every initial member in the configuration from the start.
        return Step::Apply {
            replicas: d.replicas,
            observers: d.observers,
        };
    };
    let pods = Pods {
        replicas,
        observers: o.observer_replicas,
    };
    if let Some(op) = &o.pending {
        return resume(d, o, pods, op, delete_volumes);
    }
    let Some(m) = &o.membership else {
        if o.pods.iter().all(|p| !p.ready) {
            return pods.apply();
        }
        return Step::Wait("no member reports the membership (no quorum?)".into());
    };
    // Missing and unready members first, voters before observers: repaired (the StatefulSet
    // recreates a missing pod), or rolled if their template is old; never a membership
    // change meanwhile.
    let voters: Vec<i64> = m.voters().collect();
    let observers: Vec<i64> = m.observers().collect();
    for id in voters.iter().chain(&observers) {
        match o.pod(*id) {
            None => return pods.apply(),
            Some(p) if !p.ready && p.revision != d.revision && !p.terminating => {
                return Step::Restart { server_id: *id }
            }
            Some(p) if !p.ready => return Step::Wait(format!("server {id} is not ready")),
            Some(_) => {}
        }
    }
    let count = voters.len() as i32;
    if count < d.replicas {
        let next = voters.iter().max().copied().unwrap_or(0) + 1;
        return Step::Record(PendingOperation::add(next));
    }
    if count > d.replicas {
        if let Some(last) = voters.iter().max() {
            return Step::Record(PendingOperation::remove(*last));
        }
    }
    let observer_count = observers.len() as i32;
    if observer_count < d.observers {
        let next = observers
            .iter()
            .max()
            .copied()
            .unwrap_or(observed::OBSERVER_ID_BASE)
            + 1;
        return Step::Record(PendingOperation::add_observer(next));
    }
    if observer_count > d.observers {
        if let Some(last) = observers.iter().max() {
            return Step::Record(PendingOperation::remove_observer(*last));
        }
    }
    if replicas != count || o.observer_replicas != observer_count {
        // Pods beyond the membership (a leftover of an interrupted change): back to the
        // members' count.
        return Step::Apply {
            replicas: count,
            observers: observer_count,
        };
    }
    // The roll: observers first, then followers, the leader last.
    let stale = |id: &&i64| o.pod(**id).is_some_and(|p| p.revision != d.revision);
    let is_leader = |id: &&i64| m.leader == Some(**id);
    let next = observers
        .iter()
        .filter(stale)
        .chain(voters.iter().filter(|id| stale(id) && !is_leader(id)))
        .chain(voters.iter().filter(|id| stale(id) && is_leader(id)))
        .next();
    if let Some(id) = next {
        return Step::Record(PendingOperation::restart(*id, &d.revision));
    }
    Step::Done
}

/// The StatefulSets' replicas as they are.
#[derive(Debug, Clone, Copy)]
struct Pods {
    replicas: i32,
    observers: i32,
}

impl Pods {
    /// Both StatefulSets as they are (the objects brought up to date).
    fn apply(self) -> Step {
        Step::Apply {
            replicas: self.replicas,
            observers: self.observers,
        }
    }

    fn of(self, set: Set) -> i32 {
        match set {
            Set::Voters => self.replicas,
            Set::Observers => self.observers,
        }
    }

    /// `set` at `count` pods, the other as it is.
    fn with(self, set: Set, count: i32) -> Step {
        match set {
            Set::Voters => Step::Apply {
                replicas: count,
                observers: self.observers,
            },
            Set::Observers => Step::Apply {
                replicas: self.replicas,
                observers: count,
            },
        }
    }
}

/// Goes on with the operation the status holds, judged from live state.
fn resume(
    d: &Desired,
    o: &Observed,
    pods: Pods,
    op: &PendingOperation,
    delete_volumes: bool,
) -> Step {
    let Some(m) = &o.membership else {
        return Step::Wait("no member reports the membership (no quorum?)".into());
    };
    let id = op.server_id;
    let set = Set::of(id);
    let caught_up = || m.lag.get(&id).is_some_and(|lag| *lag <= d.caught_up_lag);
    match op.kind {
        OperationKind::AddMember | OperationKind::AddObserver => {
            let observer = op.kind == OperationKind::AddObserver;
            if !observer && m.is_voter(id) {
                return Step::Clear;
            }
            if pods.of(set) < set.pods_for(id) {
                return pods.with(set, set.pods_for(id));
            }
            match o.pod(id) {
                Some(p) if !p.terminating => {}
                _ => return Step::Wait(format!("server {id}'s pod is being created")),
            }
            if !m.members.contains_key(&id) {
                return Step::Join {
                    server_id: id,
                    version: m.version.clone(),
                };
            }
            let ready = o.pod(id).is_some_and(|p| p.ready);
            let observing = m.members.get(&id) == Some(&Role::Observer);
            if !ready || !observing || !caught_up() {
                return Step::Wait(format!("server {id} is catching up"));
            }
            if observer {
                // An observer stays one: in the membership, ready and caught up, it is done.
                return Step::Clear;
            }
            Step::Promote {
                server_id: id,
                version: m.version.clone(),
            }
        }
        OperationKind::RemoveMember | OperationKind::RemoveObserver => {
            if m.members.contains_key(&id) {
                return Step::Remove {
                    server_id: id,
                    version: m.version.clone(),
                };
            }
            // Out of the membership: now its pod may go (its StatefulSet's highest ordinal).
            if pods.of(set) > set.ordinal(id) {
                return pods.with(set, set.ordinal(id));
            }
            if o.pod(id).is_some() {
                return Step::Wait(format!("server {id}'s pod is stopping"));
            }
            if delete_volumes && o.claims.contains(&id) {
                return Step::DeleteVolume { server_id: id };
            }
            Step::Clear
        }
        OperationKind::Restart => {
            let revision = op.revision.as_deref().unwrap_or_default();
            // The spec moved on while this restart waited (a bad image put back, say): the
            // restart onto a revision no longer wanted is dropped and the member planned
            // afresh (unready on an old revision, it is restarted onto the current one).
            if revision != d.revision {
                return Step::Clear;
            }
            match o.pod(id) {
                None => Step::Wait(format!("server {id}'s pod is being recreated")),
                Some(p) if p.revision != revision && !p.terminating => {
                    Step::Restart { server_id: id }
                }
                Some(p) if p.revision != revision || !p.ready => {
                    Step::Wait(format!("server {id} is restarting"))
                }
                Some(_) => {
                    if m.members.contains_key(&id) && caught_up() {
                        Step::Clear
                    } else {
                        Step::Wait(format!("server {id} is catching up"))
                    }
                }
            }
        }
    }
}
