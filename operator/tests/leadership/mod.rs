//! Two operator replicas with leader election: one reconciles, the other waits; a replica
//! stopped by SIGTERM releases the Lease, one killed loses it when it expires; either way a
//! standby takes it within the Lease's duration (15 s; it looks again when the term ends). They
//! watch a list of namespaces, and only those.

use crate::harness::{eventually, settled, Operator, Scenario};
use k8s_openapi::api::coordination::v1::Lease;
use kube::Api;
use zooid_operator::crd::Ensemble;

async fn holder(leases: &Api<Lease>) -> Option<String> {
    leases
        .get_opt("zooid-operator")
        .await
        .ok()??
        .spec?
        .holder_identity
}

async fn held_by(leases: &Api<Lease>, who: &str, secs: u64) {
    eventually(&format!("{who} holds the lease"), secs, || async {
        (holder(leases).await.as_deref() == Some(who)).then_some(())
    })
    .await;
}

/// How many reconciles a replica's log shows.
fn reconciles(o: &Operator) -> usize {
    o.log().matches("planned").count()
}

#[tokio::test]
async fn one_replica_reconciles_and_the_other_takes_over() {
    let Some(mut s) = Scenario::start("leader").await else {
        return;
    };
    // This test's replicas only: the scenario's own operator (no election) goes.
    s.operator.kill();
    let ns = s.ns.clone();
    let cp = s.control_plane();
    let listed = cp.namespace(&s.client, "leader-listed").await;
    let unlisted = cp.namespace(&s.client, "leader-unlisted").await;
    let watched = format!("{ns},{listed}");
    let args = [
        "--lease-namespace",
        ns.as_str(),
        "--namespace",
        watched.as_str(),
    ];
    let leases: Api<Lease> = Api::namespaced(s.client.clone(), &ns);
    let mut a = Operator::start_as(s.control_plane(), "operator-a", &args, &[]);
    held_by(&leases, "operator-a", 30).await;
    let mut b = Operator::start_as(s.control_plane(), "operator-b", &args, &[]);

    s.create(
        "one",
        serde_json::json!({"image": "zooid:test", "replicas": 1}),
    )
    .await;
    s.wait("one", "reconciled by the leader", 120, false, |e| {
        settled(e, 1)
    })
    .await;
    assert!(reconciles(&a) > 0);
    assert_eq!(reconciles(&b), 0, "the standby reconciled:\n{}", b.log());

    // A rolling update's SIGTERM: the Lease is released, the standby takes it when it next
    // looks (at the latest when the Lease would have ended).
    let released = std::time::Instant::now();
    assert!(a.terminate().success(), "{}", a.log());
    held_by(&leases, "operator-b", 30).await;
    eprintln!("handed over in {:?}", released.elapsed());
    s.create(
        "two",
        serde_json::json!({"image": "zooid:test", "replicas": 1}),
    )
    .await;
    s.wait("two", "reconciled by the new leader", 120, false, |e| {
        settled(e, 1)
    })
    .await;
    assert!(reconciles(&b) > 0);

    // A replica killed outright: its Lease expires (15 s) and the standby takes over.
    let mut c = Operator::start_as(s.control_plane(), "operator-c", &args, &[]);
    b.kill();
    held_by(&leases, "operator-c", 40).await;
    s.create(
        "three",
        serde_json::json!({"image": "zooid:test", "replicas": 1}),
    )
    .await;
    s.wait("three", "reconciled after a takeover", 120, false, |e| {
        settled(e, 1)
    })
    .await;
    assert!(reconciles(&c) > 0);

    // Every namespace listed, and no other.
    let create = |ns: &str, name: &str| {
        let ensembles: Api<Ensemble> = Api::namespaced(s.client.clone(), ns);
        let e: Ensemble = serde_json::from_value(serde_json::json!({
            "apiVersion": "zooid.io/v1alpha1", "kind": "Ensemble",
            "metadata": {"name": name},
            "spec": {"image": "zooid:test", "replicas": 1},
        }))
        .unwrap();
        async move { ensembles.create(&Default::default(), &e).await.unwrap() }
    };
    create(&unlisted, "ignored").await;
    create(&listed, "four").await;
    let in_listed: Api<Ensemble> = Api::namespaced(s.client.clone(), &listed);
    eventually("the listed namespace's Ensemble settled", 120, || async {
        settled(&in_listed.get("four").await.ok()?, 1).then_some(())
    })
    .await;
    let in_unlisted: Api<Ensemble> = Api::namespaced(s.client.clone(), &unlisted);
    let ignored = in_unlisted.get("ignored").await.unwrap();
    assert!(
        ignored.status.is_none(),
        "an unlisted namespace was reconciled"
    );
    c.kill();
}
