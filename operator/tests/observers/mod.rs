//! Observers on the control plane: a StatefulSet of their own, each joined and removed by
//! reconfig, serving clients, left out of the voters' PodDisruptionBudget, and rolled before
//! the voters, all under a write load with the history check.

use crate::harness::{condition, Scenario};
use k8s_openapi::api::core::v1::{PersistentVolumeClaim, Pod};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use kube::api::Api;
use std::time::Duration;
use zooid_operator::crd::Ensemble;

/// Settled at `voters` voting members and `observers` observers, every one ready.
fn settled_with(e: &Ensemble, voters: usize, observers: usize) -> bool {
    let Some(s) = &e.status else { return false };
    let count = |roles: &[&str]| {
        s.members
            .iter()
            .filter(|m| m.ready && roles.contains(&m.role.as_str()))
            .count()
    };
    condition(e, "Available").as_deref() == Some("True")
        && s.pending.is_none()
        && s.observed_generation == e.metadata.generation
        && s.members.len() == voters + observers
        && count(&["leader", "follower"]) == voters
        && count(&["observer"]) == observers
}

/// The server lines of the configuration as a member reports it, by role.
async fn config_roles(servers: &str) -> (usize, usize) {
    let member = zookeeper_client::Client::connect(servers).await.unwrap();
    member.sync("/zookeeper/config").await.unwrap();
    let (config, _) = member.get_config().await.unwrap();
    let config = String::from_utf8_lossy(&config).to_string();
    let lines: Vec<&str> = config
        .lines()
        .filter(|l| l.starts_with("server."))
        .collect();
    let observers = lines.iter().filter(|l| l.contains(":observer")).count();
    (lines.len() - observers, observers)
}

#[tokio::test]
async fn observers_join_serve_roll_first_and_leave_by_reconfig_under_load() {
    let Some((mut s, load)) = Scenario::three_members_under_load("observers").await else {
        return;
    };
    // Two observers, the operator SIGKILLed at each step the status shows.
    s.patch("coord", serde_json::json!({"observers": 2})).await;
    s.wait("coord", "3 voters and 2 observers", 300, true, |e| {
        settled_with(e, 3, 2)
    })
    .await;
    let kills_up = s.operator.kills;
    assert_eq!(config_roles(&s.servers("coord", 3)).await, (3, 2));

    // A client of an observer reads what was written through a voter, and writes through it.
    let pods: Api<Pod> = Api::namespaced(s.client.clone(), &s.ns);
    let observer_ip = pods
        .get("coord-observer-1")
        .await
        .unwrap()
        .status
        .unwrap()
        .pod_ip
        .unwrap();
    let open =
        zookeeper_client::CreateMode::Persistent.with_acls(zookeeper_client::Acls::anyone_all());
    let voter = zookeeper_client::Client::connect(&s.servers("coord", 3))
        .await
        .unwrap();
    voter
        .create("/seen-by-observers", b"v", &open)
        .await
        .unwrap();
    let observer = zookeeper_client::Client::connect(&format!("{observer_ip}:2181"))
        .await
        .unwrap();
    observer.sync("/seen-by-observers").await.unwrap();
    assert_eq!(
        observer.get_data("/seen-by-observers").await.unwrap().0,
        b"v"
    );
    observer
        .create("/through-an-observer", b"o", &open)
        .await
        .unwrap();
    voter.sync("/through-an-observer").await.unwrap();
    assert_eq!(
        voter.get_data("/through-an-observer").await.unwrap().0,
        b"o"
    );

    // The PodDisruptionBudget counts the voters only: the disruption controller finds three
    // pods behind it, and lets one go.
    let pdbs: Api<PodDisruptionBudget> = Api::namespaced(s.client.clone(), &s.ns);
    crate::harness::eventually("the PDB over the 3 voters only", 60, || async {
        let st = pdbs.get("coord").await.ok()?.status?;
        (st.expected_pods == Some(3) && st.disruptions_allowed == Some(1)).then_some(())
    })
    .await;

    // A config change rolls the observers first, then the followers, the leader last.
    let leader = s
        .ensembles
        .get("coord")
        .await
        .unwrap()
        .status
        .unwrap()
        .leader
        .unwrap();
    let mut before = Vec::new();
    for name in [
        "coord-observer-0",
        "coord-observer-1",
        "coord-0",
        "coord-1",
        "coord-2",
    ] {
        let p = pods.get(name).await.unwrap();
        before.push((name.to_string(), p.metadata.uid.unwrap()));
    }
    let replaced = crate::watch_replacements(pods.clone(), before, 300);
    s.patch("coord", serde_json::json!({"config": {"tickTime": 1000}}))
        .await;
    let generation = s.ensembles.get("coord").await.unwrap().metadata.generation;
    s.wait("coord", "the roll finished", 300, false, |e| {
        settled_with(e, 3, 2) && e.metadata.generation == generation
    })
    .await;
    let order = replaced.await.unwrap();
    assert_eq!(order.len(), 5, "replaced {order:?}");
    assert!(
        order[..2].iter().all(|n| n.starts_with("coord-observer-")),
        "observers roll first: {order:?}"
    );
    assert_eq!(order.last(), Some(&leader), "the leader last: {order:?}");

    // Down to none: each reconfigured out before its pod and (onScaleDown: Delete) its claim
    // go.
    s.patch("coord", serde_json::json!({"observers": 0})).await;
    s.wait("coord", "no observers left", 300, true, |e| {
        settled_with(e, 3, 0)
    })
    .await;
    let claims: Api<PersistentVolumeClaim> = Api::namespaced(s.client.clone(), &s.ns);
    crate::harness::eventually("the observers' pods and claims gone", 120, || {
        let (pods, claims) = (pods.clone(), claims.clone());
        async move {
            for i in [0, 1] {
                let pod = format!("coord-observer-{i}");
                if pods.get_opt(&pod).await.ok()?.is_some()
                    || claims.get_opt(&format!("data-{pod}")).await.ok()?.is_some()
                {
                    return None;
                }
            }
            Some(())
        }
    })
    .await;
    assert_eq!(config_roles(&s.servers("coord", 3)).await, (3, 0));

    let report = load.finish().await;
    eprintln!(
        "observers 0->2->0 and a roll: {} operations, {} writes acknowledged, {} of unknown \
         outcome, all linearizable; longest stall {:?}; operator killed {kills_up} times adding",
        report.operations, report.acknowledged_writes, report.unknown, report.longest_gap
    );
    assert!(report.acknowledged_writes > 50);
    // Each observer added is recorded, its pod made, joined, cleared.
    assert!(kills_up >= 3, "adding showed {kills_up} steps");
    assert!(
        report.longest_gap < Duration::from_secs(5),
        "the ensemble stalled for {:?}",
        report.longest_gap
    );
}
