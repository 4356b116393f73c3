//! The operator as users install it: `helm install` of the chart, its Deployment's pods run
//! by the node agent (in-cluster configuration, the chart's service account and its
//! least-privilege RBAC, two replicas electing a leader), reconciling an Ensemble of three
//! into a live ensemble that serves a write load with a linearizable history.

use crate::harness::{eventually, settled, Scenario};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::coordination::v1::Lease;
use kube::Api;
use std::path::Path;
use std::process::Command;

#[tokio::test]
async fn the_charts_operator_runs_an_ensemble_under_load() {
    let Some(mut s) = Scenario::start("in-cluster").await else {
        return;
    };
    // Only the chart's operator reconciles here.
    s.operator.kill();
    let chart = Path::new(env!("CARGO_MANIFEST_DIR")).join("../charts/zooid-operator");
    let system = "zooid-system";
    let out = Command::new(s.control_plane().tool("helm"))
        .env("KUBECONFIG", &s.control_plane().kubeconfig)
        .args([
            "install",
            "zooid",
            "--namespace",
            system,
            "--create-namespace",
        ])
        .arg(&chart)
        .args([
            "--set",
            "image.repository=zooid-operator",
            "--set",
            "image.tag=test",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "helm install: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let deployments: Api<Deployment> = Api::namespaced(s.client.clone(), system);
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(120);
    loop {
        let d = deployments.get("zooid-zooid-operator").await.unwrap();
        if d.status.and_then(|s| s.available_replicas).unwrap_or(0) >= 2 {
            break;
        }
        if tokio::time::Instant::now() > deadline {
            panic!(
                "the operator's Deployment not available within 120 s\n{}",
                operator_pods(&s, system).await
            );
        }
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    }
    let leases: Api<Lease> = Api::namespaced(s.client.clone(), system);
    let holder = eventually("a replica holds the Lease", 60, || async {
        leases
            .get("zooid-operator")
            .await
            .ok()?
            .spec?
            .holder_identity
    })
    .await;
    assert!(holder.starts_with("zooid-zooid-operator-"), "{holder}");

    s.create(
        "coord",
        serde_json::json!({"image": "zooid:test", "replicas": 3}),
    )
    .await;
    s.wait(
        "coord",
        "3 members Available, by the chart's operator",
        180,
        false,
        |e| settled(e, 3),
    )
    .await;
    let load = crate::load::Load::start(&s.servers("coord", 3), 3).await;
    // A config change rolls the members, leader last, under the load.
    s.patch("coord", serde_json::json!({"config": {"tickTime": 1000}}))
        .await;
    let generation = s.ensembles.get("coord").await.unwrap().metadata.generation;
    s.wait("coord", "rolled by the chart's operator", 300, false, |e| {
        settled(e, 3) && e.metadata.generation == generation
    })
    .await;
    let report = load.finish().await;
    assert!(
        report.acknowledged_writes > 50,
        "{}",
        report.acknowledged_writes
    );
    // The operator's own pods logged their reconciles (the agent keeps containers' logs).
    let logs: String = std::fs::read_dir(s.agent.work.join("logs"))
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().starts_with(system))
        .map(|e| std::fs::read_to_string(e.path()).unwrap_or_default())
        .collect();
    assert!(
        logs.contains("planned"),
        "no reconcile in the operator pods' logs"
    );
}

/// The operator's pods, their state and their logs: what a failure shows.
async fn operator_pods(s: &Scenario, system: &str) -> String {
    use k8s_openapi::api::core::v1::Pod;
    let pods: Api<Pod> = Api::namespaced(s.client.clone(), system);
    let mut out = String::new();
    for p in pods.list(&Default::default()).await.unwrap() {
        let name = p.metadata.name.clone().unwrap_or_default();
        out.push_str(&format!(
            "--- {name}: {:?}\n{}\n",
            p.status
                .map(|s| (s.phase, s.conditions, s.container_statuses)),
            s.agent.log(system, &name, "operator")
        ));
    }
    out
}
