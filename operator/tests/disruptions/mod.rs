//! Voluntary disruptions on the control plane: a node drain goes through the Eviction API,
//! which the operator's PodDisruptionBudget (computed from the live voters) answers. A drain
//! can take one member of three, never a second while the first is away.

use crate::agent::NODE;
use crate::harness::{eventually, settled, Scenario};
use k8s_openapi::api::core::v1::{Node, Pod};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use kube::api::{Api, EvictParams, Patch, PatchParams};
use std::time::Duration;

/// An API call that must answer within 30 s (a hang is a failure, and says which call).
async fn within<T>(what: &str, f: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(30), f)
        .await
        .unwrap_or_else(|_| panic!("{what}: no answer within 30 s"))
}

async fn cordon(nodes: &Api<Node>, on: bool) {
    let patch = serde_json::json!({"spec": {"unschedulable": on}});
    within(
        "cordoning",
        nodes.patch(NODE, &PatchParams::default(), &Patch::Merge(patch)),
    )
    .await
    .unwrap();
}

async fn allowed(pdbs: &Api<PodDisruptionBudget>, want: i32) {
    eventually(
        &format!("the PDB allows {want} disruption(s)"),
        60,
        || async {
            let pdb = within("reading the PDB", pdbs.get("coord")).await.ok()?;
            let s = pdb.status?;
            (s.disruptions_allowed == Some(want)
                && s.observed_generation == pdb.metadata.generation)
                .then_some(())
        },
    )
    .await;
}

#[tokio::test]
async fn a_drain_takes_one_member_and_is_refused_the_second() {
    let Some((mut s, load)) = Scenario::three_members_under_load("drain").await else {
        return;
    };
    let nodes: Api<Node> = Api::all(s.client.clone());
    // Evictions as `kubectl drain` sends them: a refusal (429) is the answer, not retried.
    let pods: Api<Pod> = Api::namespaced(s.client_without_retries().await, &s.ns);
    let pdbs: Api<PodDisruptionBudget> = Api::namespaced(s.client.clone(), &s.ns);
    allowed(&pdbs, 1).await;

    // `kubectl drain`: cordon, then evict the node's pods one by one.
    cordon(&nodes, true).await;
    let first = within(
        "evicting coord-0",
        pods.evict("coord-0", &EvictParams::default()),
    )
    .await;
    assert!(first.is_ok(), "the first eviction is allowed: {first:?}");
    // coord-0 comes back Pending (the node takes no pods): one voter is away.
    eventually("coord-0 gone and back unscheduled", 90, || async {
        let p = within("reading coord-0", pods.get_opt("coord-0"))
            .await
            .ok()??;
        let unscheduled = p.spec?.node_name.is_none() && p.metadata.deletion_timestamp.is_none();
        unscheduled.then_some(())
    })
    .await;
    allowed(&pdbs, 0).await;
    for victim in ["coord-1", "coord-2"] {
        match within(
            "evicting again",
            pods.evict(victim, &EvictParams::default()),
        )
        .await
        {
            Err(kube::Error::Api(e)) if e.code == 429 => {}
            other => panic!("evicting {victim} with one voter away must be refused: {other:?}"),
        }
    }

    // Uncordoned, coord-0 is scheduled again and rejoins.
    cordon(&nodes, false).await;
    s.wait("coord", "three members again", 180, false, |e| {
        settled(e, 3)
    })
    .await;
    allowed(&pdbs, 1).await;
    let report = load.finish().await;
    eprintln!(
        "drain: {} operations, {} writes acknowledged, {} of unknown outcome, linearizable; \
         longest stall {:?}",
        report.operations, report.acknowledged_writes, report.unknown, report.longest_gap
    );
    assert!(report.acknowledged_writes > 50);
}

/// A member's pod deleted comes back with its data; a member's pod deleted with its volume
/// (a node lost with local storage) comes back empty, votes for nobody until it has caught
/// up, and is repaired: the ensemble keeps its quorum and every acknowledged write
/// throughout, and the member serves the data again.
#[tokio::test]
async fn a_member_lost_with_its_volume_is_repaired() {
    use k8s_openapi::api::core::v1::PersistentVolumeClaim;
    let Some((mut s, load)) = Scenario::three_members_under_load("repair").await else {
        return;
    };
    let pods: Api<Pod> = Api::namespaced(s.client.clone(), &s.ns);
    let claims: Api<PersistentVolumeClaim> = Api::namespaced(s.client.clone(), &s.ns);
    let uid = |p: Pod| p.metadata.uid.unwrap_or_default();

    // The pod alone.
    let before = uid(within("reading coord-1", pods.get("coord-1"))
        .await
        .unwrap());
    within(
        "deleting coord-1",
        pods.delete("coord-1", &Default::default()),
    )
    .await
    .unwrap();
    eventually("coord-1 recreated", 90, || async {
        let p = pods.get_opt("coord-1").await.ok()??;
        (uid(p) != before).then_some(())
    })
    .await;
    s.wait("coord", "three members again", 180, false, |e| {
        settled(e, 3)
    })
    .await;

    // The pod with its volume: the claim goes once the pod that uses it is gone.
    let claim = "data-coord-2";
    let old_claim = within("reading the claim", claims.get(claim))
        .await
        .unwrap()
        .metadata
        .uid;
    within(
        "deleting the claim",
        claims.delete(claim, &Default::default()),
    )
    .await
    .unwrap();
    within(
        "deleting coord-2",
        pods.delete("coord-2", &Default::default()),
    )
    .await
    .unwrap();
    eventually("a new claim for coord-2", 90, || async {
        let c = claims.get_opt(claim).await.ok()??;
        (c.metadata.uid != old_claim && c.metadata.deletion_timestamp.is_none()).then_some(())
    })
    .await;
    s.wait(
        "coord",
        "three members again, coord-2 repaired",
        240,
        false,
        |e| settled(e, 3),
    )
    .await;
    // Back empty among members that went on, it voted for nobody until it had caught up.
    let log = s.agent.log(&s.ns, "coord-2", "zooid");
    for said in ["came back without its data", "votes again"] {
        assert!(log.contains(said), "coord-2 never said {said:?}:\n{log}");
    }
    let report = load.finish().await;
    eprintln!(
        "repair: {} operations, {} writes acknowledged, {} of unknown outcome, linearizable; \
         longest stall {:?}",
        report.operations, report.acknowledged_writes, report.unknown, report.longest_gap
    );
    assert!(report.acknowledged_writes > 50);
}
