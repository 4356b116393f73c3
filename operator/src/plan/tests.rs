//! Every distinction the planner makes, each from an observed state built by hand.

use super::observed::{Membership, Observed, Pod, Role, Set};
use super::*;
use crate::crd::PendingOperation as Op;

const REV: &str = "rev-2";
/// The configuration version [`running`] reports.
const VERSION: &str = "0x100000003";

fn desired(replicas: i32) -> Desired {
    Desired {
        replicas,
        observers: 0,
        revision: REV.into(),
        paused: false,
        caught_up_lag: 100,
    }
}

fn pod(id: i64, ready: bool, revision: &str) -> Pod {
    let set = Set::of(id);
    Pod {
        set,
        ordinal: set.ordinal(id),
        ready,
        terminating: false,
        revision: revision.into(),
    }
}

/// `voters` ready on the current revision, `observers` too, server 1 leading, no lag.
fn running(voters: &[i64], observers: &[i64]) -> Observed {
    let mut members = std::collections::BTreeMap::new();
    for id in voters {
        members.insert(*id, Role::Participant);
    }
    for id in observers {
        members.insert(*id, Role::Observer);
    }
    let all: Vec<i64> = voters.iter().chain(observers).copied().collect();
    Observed {
        statefulset_replicas: Some(
            all.iter().filter(|id| Set::of(**id) == Set::Voters).count() as i32
        ),
        observer_replicas: all
            .iter()
            .filter(|id| Set::of(**id) == Set::Observers)
            .count() as i32,
        pods: all.iter().map(|id| pod(*id, true, REV)).collect(),
        membership: Some(Membership {
            version: VERSION.into(),
            members,
            leader: Some(1),
            lag: all.iter().map(|id| (*id, 0)).collect(),
            zxid: all.iter().map(|id| (*id, 100)).collect(),
        }),
        pending: None,
        claims: all.iter().copied().collect(),
    }
}

#[test]
fn a_new_ensemble_is_created_with_all_its_voters() {
    assert_eq!(
        plan(&desired(3), &Observed::default(), true),
        Step::Apply {
            replicas: 3,
            observers: 0
        }
    );
}

#[test]
fn a_paused_ensemble_is_left_alone() {
    let mut d = desired(5);
    d.paused = true;
    assert!(matches!(
        plan(&d, &running(&[1, 2, 3], &[]), true),
        Step::Wait(_)
    ));
}

#[test]
fn a_converged_ensemble_needs_nothing() {
    assert_eq!(
        plan(&desired(3), &running(&[1, 2, 3], &[]), true),
        Step::Done
    );
}

#[test]
fn pods_that_start_but_report_nothing_yet_are_kept_as_they_are() {
    let mut o = running(&[1, 2, 3], &[]);
    o.membership = None;
    for p in &mut o.pods {
        p.ready = false;
    }
    assert_eq!(
        plan(&desired(3), &o, true),
        Step::Apply {
            replicas: 3,
            observers: 0
        }
    );
    // Ready pods and still no membership: a lost quorum is waited out, never forced.
    o.pods[0].ready = true;
    assert!(matches!(plan(&desired(3), &o, true), Step::Wait(_)));
}

#[test]
fn a_missing_member_pod_is_recreated_before_anything_else() {
    let mut o = running(&[1, 2, 3], &[]);
    o.pods.retain(|p| p.server_id() != 2);
    assert_eq!(
        plan(&desired(5), &o, true),
        Step::Apply {
            replicas: 3,
            observers: 0
        }
    );
}

#[test]
fn no_membership_change_while_a_member_is_unready() {
    let mut o = running(&[1, 2, 3], &[]);
    o.pods[1].ready = false;
    assert!(matches!(plan(&desired(5), &o, true), Step::Wait(w) if w.contains("server 2")));
    assert!(matches!(plan(&desired(1), &o, true), Step::Wait(_)));
}

#[test]
fn an_unready_member_on_an_old_template_is_rolled_first() {
    let mut o = running(&[1, 2, 3], &[]);
    o.pods[2] = pod(3, false, "rev-1");
    assert_eq!(plan(&desired(3), &o, true), Step::Restart { server_id: 3 });
}

#[test]
fn scaling_up_records_the_next_member_first() {
    assert_eq!(
        plan(&desired(5), &running(&[1, 2, 3], &[]), true),
        Step::Record(Op::add(4))
    );
}

#[test]
fn an_added_member_gets_its_pod_then_is_promoted_once_caught_up() {
    let d = desired(4);
    let mut o = running(&[1, 2, 3], &[]);
    o.pending = Some(Op::add(4));
    assert_eq!(
        plan(&d, &o, true),
        Step::Apply {
            replicas: 4,
            observers: 0
        }
    );

    o.statefulset_replicas = Some(4);
    assert!(matches!(plan(&d, &o, true), Step::Wait(w) if w.contains("being created")));

    // Its pod exists (not ready: no member has it yet): it joins as a non-voter.
    o.pods.push(pod(4, false, REV));
    assert_eq!(
        plan(&d, &o, true),
        Step::Join {
            server_id: 4,
            version: VERSION.into()
        }
    );
    // A non-voter, far behind.
    let m = o.membership.as_mut().unwrap();
    m.members.insert(4, Role::Observer);
    m.lag.insert(4, 5_000);
    assert!(matches!(plan(&d, &o, true), Step::Wait(w) if w.contains("catching up")));
    o.pods[3].ready = true;
    assert!(matches!(plan(&d, &o, true), Step::Wait(w) if w.contains("catching up")));

    o.membership.as_mut().unwrap().lag.insert(4, 3);
    assert_eq!(
        plan(&d, &o, true),
        Step::Promote {
            server_id: 4,
            version: VERSION.into()
        }
    );

    // Confirmed from live state, whoever carried the reconfig out.
    o.membership
        .as_mut()
        .unwrap()
        .members
        .insert(4, Role::Participant);
    assert_eq!(plan(&d, &o, true), Step::Clear);
}

#[test]
fn scaling_down_records_the_highest_member_then_reconfigures_it_out_first() {
    let d = desired(3);
    let mut o = running(&[1, 2, 3, 4, 5], &[]);
    assert_eq!(plan(&d, &o, true), Step::Record(Op::remove(5)));
    o.pending = Some(Op::remove(5));
    assert_eq!(
        plan(&d, &o, true),
        Step::Remove {
            server_id: 5,
            version: VERSION.into()
        }
    );
    // Out of the membership: only now does its pod go.
    o.membership.as_mut().unwrap().members.remove(&5);
    assert_eq!(
        plan(&d, &o, true),
        Step::Apply {
            replicas: 4,
            observers: 0
        }
    );
    o.statefulset_replicas = Some(4);
    o.pods[4].terminating = true;
    assert!(matches!(plan(&d, &o, true), Step::Wait(w) if w.contains("stopping")));
    o.pods.pop();
    assert_eq!(plan(&d, &o, true), Step::DeleteVolume { server_id: 5 });
    assert_eq!(plan(&d, &o, false), Step::Clear, "onScaleDown: Retain");
    // The claim gone (not merely deleted: its finalizer holds it while a pod uses it): done.
    o.claims.remove(&5);
    assert_eq!(plan(&d, &o, true), Step::Clear);
}

#[test]
fn leftover_pods_of_an_interrupted_change_are_scaled_back() {
    // An operator that died after scaling the StatefulSet but before recording (a state the
    // planner never leads to, but a user's edit can): the membership decides.
    let mut o = running(&[1, 2, 3], &[]);
    o.statefulset_replicas = Some(4);
    o.pods.push(pod(4, true, REV));
    assert_eq!(
        plan(&desired(3), &o, true),
        Step::Apply {
            replicas: 3,
            observers: 0
        }
    );
}

#[test]
fn a_roll_takes_followers_first_and_the_leader_last() {
    let d = desired(3);
    let mut o = running(&[1, 2, 3], &[]);
    for p in &mut o.pods {
        p.revision = "rev-1".into();
    }
    o.membership.as_mut().unwrap().leader = Some(2);
    let first = plan(&d, &o, true);
    assert_eq!(first, Step::Record(Op::restart(1, REV)));
    o.pods[0].revision = REV.into();
    o.pods[2].revision = REV.into();
    assert_eq!(plan(&d, &o, true), Step::Record(Op::restart(2, REV)));
}

#[test]
fn a_restart_waits_for_the_member_to_be_back_and_caught_up() {
    let d = desired(3);
    let mut o = running(&[1, 2, 3], &[]);
    o.pods[2].revision = "rev-1".into();
    o.pending = Some(Op::restart(3, REV));
    assert_eq!(plan(&d, &o, true), Step::Restart { server_id: 3 });
    o.pods[2].terminating = true;
    assert!(matches!(plan(&d, &o, true), Step::Wait(w) if w.contains("restarting")));
    o.pods.pop();
    assert!(matches!(plan(&d, &o, true), Step::Wait(w) if w.contains("recreated")));
    o.pods.push(pod(3, false, REV));
    assert!(matches!(plan(&d, &o, true), Step::Wait(w) if w.contains("restarting")));
    o.pods[2].ready = true;
    o.membership.as_mut().unwrap().lag.insert(3, 10_000);
    assert!(matches!(plan(&d, &o, true), Step::Wait(w) if w.contains("catching up")));
    o.membership.as_mut().unwrap().lag.insert(3, 0);
    assert_eq!(plan(&d, &o, true), Step::Clear);
}

#[test]
fn a_restart_onto_a_revision_no_longer_wanted_is_dropped() {
    // Restarted onto a bad image, the member never got ready; the image is put back.
    let d = desired(3);
    let mut o = running(&[1, 2, 3], &[]);
    o.pods[2] = pod(3, false, "rev-bad");
    o.pending = Some(Op::restart(3, "rev-bad"));
    assert_eq!(plan(&d, &o, true), Step::Clear);
    o.pending = None;
    assert_eq!(plan(&d, &o, true), Step::Restart { server_id: 3 });
}

#[test]
fn a_pending_operation_waits_while_no_member_reports() {
    let mut o = running(&[1, 2, 3], &[]);
    o.pending = Some(Op::add(4));
    o.membership = None;
    assert!(matches!(plan(&desired(4), &o, true), Step::Wait(_)));
}

#[test]
fn disruptions_follow_the_live_voters() {
    assert_eq!(disruptions_allowed(0), 0);
    assert_eq!(disruptions_allowed(1), 0);
    assert_eq!(disruptions_allowed(2), 0);
    assert_eq!(disruptions_allowed(3), 1);
    assert_eq!(disruptions_allowed(4), 1);
    assert_eq!(disruptions_allowed(5), 2);
}

fn with_observers(replicas: i32, observers: i32) -> Desired {
    Desired {
        observers,
        ..desired(replicas)
    }
}

#[test]
fn a_new_ensemble_is_created_with_its_observers() {
    assert_eq!(
        plan(&with_observers(3, 2), &Observed::default(), true),
        Step::Apply {
            replicas: 3,
            observers: 2
        }
    );
}

#[test]
fn observers_are_added_after_the_voters_one_at_a_time() {
    // Voters first: the quorum before read capacity.
    let o = running(&[1, 2], &[]);
    assert_eq!(
        plan(&with_observers(3, 1), &o, true),
        Step::Record(Op::add(3))
    );
    let o = running(&[1, 2, 3], &[101]);
    assert_eq!(
        plan(&with_observers(3, 3), &o, true),
        Step::Record(Op::add_observer(102))
    );
}

#[test]
fn an_added_observer_gets_its_pod_joins_and_is_never_promoted() {
    let d = with_observers(3, 1);
    let mut o = running(&[1, 2, 3], &[]);
    o.pending = Some(Op::add_observer(101));
    // Its pod first, in the observers' StatefulSet.
    assert_eq!(
        plan(&d, &o, true),
        Step::Apply {
            replicas: 3,
            observers: 1
        }
    );
    o.observer_replicas = 1;
    assert!(matches!(plan(&d, &o, true), Step::Wait(_)));
    o.pods.push(pod(101, false, REV));
    assert_eq!(
        plan(&d, &o, true),
        Step::Join {
            server_id: 101,
            version: VERSION.into()
        }
    );
    let m = o.membership.as_mut().unwrap();
    m.members.insert(101, Role::Observer);
    m.lag.insert(101, 5_000);
    // Behind, or not ready: it waits.
    assert!(matches!(plan(&d, &o, true), Step::Wait(_)));
    o.membership.as_mut().unwrap().lag.insert(101, 3);
    assert!(matches!(plan(&d, &o, true), Step::Wait(_)));
    o.pods.last_mut().unwrap().ready = true;
    // In, ready and caught up: done, as an observer.
    assert_eq!(plan(&d, &o, true), Step::Clear);
    o.pending = None;
    assert_eq!(plan(&d, &o, true), Step::Done);
}

#[test]
fn an_observer_leaves_by_reconfig_then_its_pod_then_its_volume() {
    let d = with_observers(3, 1);
    let mut o = running(&[1, 2, 3], &[101, 102]);
    assert_eq!(plan(&d, &o, true), Step::Record(Op::remove_observer(102)));
    o.pending = Some(Op::remove_observer(102));
    assert_eq!(
        plan(&d, &o, true),
        Step::Remove {
            server_id: 102,
            version: VERSION.into()
        }
    );
    o.membership.as_mut().unwrap().members.remove(&102);
    // The observers' StatefulSet shrinks; the voters' is left as it is.
    assert_eq!(
        plan(&d, &o, true),
        Step::Apply {
            replicas: 3,
            observers: 1
        }
    );
    o.observer_replicas = 1;
    assert!(matches!(plan(&d, &o, true), Step::Wait(_)));
    o.pods.retain(|p| p.server_id() != 102);
    assert_eq!(plan(&d, &o, true), Step::DeleteVolume { server_id: 102 });
    assert_eq!(plan(&d, &o, false), Step::Clear);
    o.claims.remove(&102);
    assert_eq!(plan(&d, &o, true), Step::Clear);
}

#[test]
fn a_missing_observer_is_recreated_and_an_unready_one_holds_changes() {
    let d = with_observers(5, 2);
    let mut o = running(&[1, 2, 3], &[101, 102]);
    o.pods.retain(|p| p.server_id() != 102);
    assert_eq!(
        plan(&d, &o, true),
        Step::Apply {
            replicas: 3,
            observers: 2
        }
    );
    let mut o = running(&[1, 2, 3], &[101, 102]);
    o.pods[4].ready = false;
    assert!(matches!(plan(&d, &o, true), Step::Wait(w) if w.contains("102")));
}

#[test]
fn a_roll_takes_observers_first_then_followers_the_leader_last() {
    let d = with_observers(3, 2);
    let mut o = running(&[1, 2, 3], &[101, 102]);
    for p in &mut o.pods {
        p.revision = "rev-1".into();
    }
    assert_eq!(plan(&d, &o, true), Step::Record(Op::restart(101, REV)));
    o.pods[3].revision = REV.into();
    assert_eq!(plan(&d, &o, true), Step::Record(Op::restart(102, REV)));
    o.pods[4].revision = REV.into();
    assert_eq!(plan(&d, &o, true), Step::Record(Op::restart(2, REV)));
}

#[test]
fn observers_pods_beyond_the_membership_are_scaled_back() {
    let mut o = running(&[1, 2, 3], &[101]);
    o.observer_replicas = 2;
    assert_eq!(
        plan(&with_observers(3, 1), &o, true),
        Step::Apply {
            replicas: 3,
            observers: 1
        }
    );
}

#[test]
fn a_restarted_observer_is_waited_for_until_caught_up() {
    let d = with_observers(3, 1);
    let mut o = running(&[1, 2, 3], &[101]);
    o.pending = Some(Op::restart(101, REV));
    o.membership.as_mut().unwrap().lag.insert(101, 5_000);
    assert!(matches!(plan(&d, &o, true), Step::Wait(_)));
    o.membership.as_mut().unwrap().lag.insert(101, 0);
    assert_eq!(plan(&d, &o, true), Step::Clear);
}

#[test]
fn the_objects_list_the_live_membership_and_a_member_on_its_way_in() {
    // Before any member reports: the spec.
    let listed = super::listed(&with_observers(3, 1), &Observed::default());
    assert_eq!(listed.voters, vec![1, 2, 3]);
    assert_eq!(listed.non_voters, vec![101]);
    assert_eq!(listed.members, vec![1, 2, 3, 101]);
    // Live: the membership, and the member being added listed as a non-voter until it is
    // in.
    let mut o = running(&[1, 2, 3], &[101]);
    o.pending = Some(Op::add(4));
    let listed = super::listed(&with_observers(5, 2), &o);
    assert_eq!(listed.voters, vec![1, 2, 3]);
    assert_eq!(listed.non_voters, vec![101, 4]);
    assert_eq!(listed.members, vec![1, 2, 3, 101]);
    o.pending = Some(Op::add_observer(101));
    assert_eq!(
        super::listed(&with_observers(3, 1), &o).non_voters,
        vec![101]
    );
}
