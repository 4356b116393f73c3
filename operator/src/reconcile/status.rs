//! The Ensemble's status: conditions, members and leader, written only when it changed (a
//! write that changes nothing would only wake the controller again).

use super::apply::FIELD_MANAGER;
use super::Error;
use crate::build::names::Names;
use crate::crd::{Ensemble, EnsembleStatus, MemberStatus};
use crate::plan::observed::{Observed, Role};
use crate::plan::Step;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
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
pub fn observed(ens: &Ensemble, names: &Names, o: &Observed, step: &Step) -> EnsembleStatus {
    let mut s = ens.status.clone().unwrap_or_default();
    s.observed_generation = ens.metadata.generation;
    s.pending = match step {
        // Recorded or cleared by the step itself.
        Step::Record(op) => Some(op.clone()),
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
    let degraded =
        m.is_none() && o.statefulset_replicas.is_some() && o.pods.iter().any(|p| p.ready);
    set(
        &mut s,
        ens,
        "Degraded",
        degraded,
        if degraded { "NoQuorum" } else { "Healthy" },
        if degraded {
            "members run, but none reports the membership: the quorum is lost; the operator \
             waits for it and changes nothing"
        } else {
            "the membership is reported"
        },
    );
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
