//! The Ensemble's status: conditions, members and leader, written only when it changed (a
//! write that changes nothing would only wake the controller again).

use super::apply::FIELD_MANAGER;
use super::Error;
use crate::build::names::Names;
use crate::crd::{Ensemble, EnsembleStatus, MemberStatus, PendingOperation};
use crate::plan::observed::{Observed, Role};
use crate::plan::Step;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, Patch, PatchParams};
use kube::ResourceExt;

/// Writes `status` unless it is what the Ensemble already has.
pub async fn write(
    client: &kube::Client,
    ens: &Ensemble,
    status: EnsembleStatus,
) -> Result<(), Error> {
    if ens.status.as_ref() == Some(&status) {
        return Ok(());
    }
    let ns = ens.namespace().ok_or(Error::Incomplete)?;
    let api: Api<Ensemble> = Api::namespaced(client.clone(), &ns);
    let patch = Patch::Apply(serde_json::json!({
        "apiVersion": "zooid.io/v1alpha1",
        "kind": "Ensemble",
        "status": status,
    }));
    api.patch_status(
        &ens.name_any(),
        &PatchParams::apply(FIELD_MANAGER).force(),
        &patch,
    )
    .await?;
    Ok(())
}

/// The status of a spec that cannot be served: Degraded, reason InvalidSpec.
pub fn invalid(ens: &Ensemble, why: &str) -> EnsembleStatus {
    let mut s = ens.status.clone().unwrap_or_default();
    s.observed_generation = ens.metadata.generation;
    set(&mut s, ens, "Degraded", true, "InvalidSpec", why);
    s
}

/// The status after observing and planning.
pub fn observed(
    ens: &Ensemble,
    names: &Names,
    o: &Observed,
    step: &Step,
    now: Timestamp,
) -> EnsembleStatus {
    let mut s = ens.status.clone().unwrap_or_default();
    s.observed_generation = ens.metadata.generation;
    s.pending = match step {
        // Recorded or cleared by the step itself.
        Step::Record(op) => Some(recorded(op, now)),
        Step::Clear => None,
        _ => s.pending.clone(),
    };
    let m = o.membership.as_ref();
    s.leader = m.and_then(|m| m.leader).map(|id| names.pod(id));
    s.config_version = m.map(|m| m.version.clone());
    s.members = o
        .pods
        .iter()
        .map(|p| {
            let id = p.server_id();
            let role = match (m.and_then(|m| m.members.get(&id)), m.and_then(|m| m.leader)) {
                (Some(_), Some(l)) if l == id => "leader",
                (Some(Role::Participant), _) => "follower",
                (Some(Role::Observer), _) => "observer",
                (None, _) if m.is_some() => "joining",
                _ => "unknown",
            };
            MemberStatus {
                name: names.pod(id),
                server_id: id,
                role: role.into(),
                ready: p.ready,
                zxid: m.and_then(|m| m.zxid.get(&id)).map(|z| format!("0x{z:x}")),
                lag: m.and_then(|m| m.lag.get(&id).copied()),
            }
        })
        .collect();
    s.ready_members = o.pods.iter().filter(|p| p.ready).count() as i32;
    let voters = m.map_or(0, |m| m.voter_count());
    let ready_voters = m.map_or(0, |m| {
        m.voters()
            .filter(|id| o.pod(*id).is_some_and(|p| p.ready))
            .count() as i32
    });
    let quorum = voters / 2 + 1;
    let available = m.is_some() && ready_voters >= quorum;
    set(
        &mut s,
        ens,
        "Available",
        available,
        if available { "QuorumUp" } else { "NoQuorum" },
        &format!("{ready_voters} of {voters} voters ready"),
    );
    let (progressing, why) = match step {
        Step::Done => (false, "Converged".to_string()),
        Step::Wait(w) => (true, w.clone()),
        other => (true, format!("{other:?}")),
    };
    set(
        &mut s,
        ens,
        "Progressing",
        progressing,
        if progressing {
            "Reconciling"
        } else {
            "Converged"
        },
        &why,
    );
    let no_quorum =
        m.is_none() && o.statefulset_replicas.is_some() && o.pods.iter().any(|p| p.ready);
    let timeout = std::time::Duration::from_secs(ens.spec.step_timeout_seconds.max(0) as u64);
    let (degraded, reason, message) = if no_quorum {
        (
            true,
            "NoQuorum",
            "members run, but none reports the membership: the quorum is lost; the operator \
             waits for it and changes nothing"
                .to_string(),
        )
    } else if let Some(late) = o.pending.as_ref().and_then(|p| overdue(p, now, timeout)) {
        (true, STEP_TIMED_OUT, late)
    } else {
        (false, "Healthy", "the membership is reported".to_string())
    };
    set(&mut s, ens, "Degraded", degraded, reason, &message);
    if ens.spec.backup.is_none() {
        s.conditions.retain(|c| c.type_ != "BackupFailing");
    }
    if ens.spec.replicas % 2 == 0 {
        set(
            &mut s,
            ens,
            "Warning",
            true,
            "EvenMembers",
            "an even number of voters tolerates no more failures than one fewer",
        );
    } else {
        s.conditions.retain(|c| c.type_ != "Warning");
    }
    s
}

/// The `BackupFailing` condition: `Some((reason, why))` when the last backup (or the
/// schedule) failed, `None` after a backup that succeeded.
pub fn backup_failing(s: &mut EnsembleStatus, ens: &Ensemble, failure: Option<(&str, &str)>) {
    match failure {
        Some((reason, why)) => set(s, ens, "BackupFailing", true, reason, why),
        None => set(
            s,
            ens,
            "BackupFailing",
            false,
            "BackupSucceeded",
            "the last backup succeeded",
        ),
    }
}

/// Whether the status shows a PodMonitor was made (so that one is deleted once not asked).
pub fn pod_monitor_made(ens: &Ensemble) -> bool {
    ens.status
        .as_ref()
        .is_some_and(|s| s.conditions.iter().any(|c| c.type_ == POD_MONITOR))
}

const POD_MONITOR: &str = "PodMonitorReady";

/// Condition `PodMonitorReady` while a PodMonitor is asked for; none otherwise.
pub fn pod_monitor(s: &mut EnsembleStatus, ens: &Ensemble, outcome: &super::monitor::Outcome) {
    use super::monitor::Outcome;
    match outcome {
        Outcome::NotAsked => s.conditions.retain(|c| c.type_ != POD_MONITOR),
        Outcome::Made => set(
            s,
            ens,
            POD_MONITOR,
            true,
            "Applied",
            "the PodMonitor for the members' /metrics is applied",
        ),
        Outcome::Refused { reason, why } => set(s, ens, POD_MONITOR, false, reason, why),
    }
}

/// Sets condition `type_`, keeping its transition time unless its status changes.
fn set(s: &mut EnsembleStatus, ens: &Ensemble, type_: &str, on: bool, reason: &str, message: &str) {
    let status = if on { "True" } else { "False" };
    let previous = s.conditions.iter().find(|c| c.type_ == type_).cloned();
    let last_transition_time = match &previous {
        Some(p) if p.status == status => p.last_transition_time.clone(),
        _ => Time(k8s_openapi::jiff::Timestamp::now()),
    };
    let c = Condition {
        type_: type_.into(),
        status: status.into(),
        reason: reason.into(),
        message: message.into(),
        observed_generation: ens.metadata.generation,
        last_transition_time,
    };
    s.conditions.retain(|c| c.type_ != type_);
    s.conditions.push(c);
    s.conditions.sort_by(|a, b| a.type_.cmp(&b.type_));
}

fn condition_true(s: &EnsembleStatus, type_: &str, reason: &str) -> bool {
    s.conditions
        .iter()
        .any(|c| c.type_ == type_ && c.status == "True" && c.reason == reason)
}

/// The status says the quorum is up.
pub fn has_quorum(s: &EnsembleStatus) -> bool {
    condition_true(s, "Available", "QuorumUp")
}

/// The status says members run without a quorum.
pub fn quorum_lost(s: &EnsembleStatus) -> bool {
    condition_true(s, "Degraded", "NoQuorum")
}

const STEP_TIMED_OUT: &str = "StepTimedOut";

/// `op` as the status records it: with when (see [`overdue`]).
pub fn recorded(op: &PendingOperation, now: Timestamp) -> PendingOperation {
    PendingOperation {
        since: Some(now.to_string()),
        ..op.clone()
    }
}

/// The Degraded condition's message when a step took too long.
pub fn step_timed_out(s: &EnsembleStatus) -> Option<String> {
    s.conditions
        .iter()
        .find(|c| c.type_ == "Degraded" && c.status == "True" && c.reason == STEP_TIMED_OUT)
        .map(|c| c.message.clone())
}

/// Why `op` is overdue: recorded more than `timeout` before `now`. An operation recorded
/// before its time was (an older operator's) is not judged.
fn overdue(op: &PendingOperation, now: Timestamp, timeout: std::time::Duration) -> Option<String> {
    let since: Timestamp = op.since.as_deref()?.parse().ok()?;
    let took = now.duration_since(since).unsigned_abs();
    (took > timeout).then(|| {
        format!(
            "{:?} of server {} has not completed in {}s (stepTimeoutSeconds {}): the operator \
             goes no further until it does; see that member's pod and events",
            op.kind,
            op.server_id,
            took.as_secs(),
            timeout.as_secs()
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn a_step_is_overdue_only_past_its_timeout() {
        let mut op = PendingOperation::restart(2, "abc");
        let now: Timestamp = "2026-12-07T12:10:00Z".parse().unwrap();
        let timeout = Duration::from_secs(600);
        // Recorded by an operator that did not say when: not judged.
        assert_eq!(overdue(&op, now, timeout), None);
        op.since = Some("2026-12-07T12:00:30Z".into());
        assert_eq!(overdue(&op, now, timeout), None);
        op.since = Some("2026-12-07T11:59:00Z".into());
        let why = overdue(&op, now, timeout).unwrap();
        assert!(why.contains("Restart of server 2"), "{why}");
        assert!(why.contains("660s"), "{why}");
    }
}
