//! Service discovery as a user sets it up from `examples/`: the `dev` Ensemble, then
//! `examples/discovery.yaml` as it is: three `web` pods, each with the registration sidecar
//! (`zooctl register`), and a `web-client` pod following the set with
//! `zooctl discover --watch`. The sidecar registers its pod, registers again after its session
//! expired, and takes its pod out of the set at once when the pod stops; the ensemble serves
//! a write load throughout, with a linearizable history.

use crate::harness::{eventually, settled, Scenario};
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, ListParams};
use std::collections::BTreeMap;
use std::path::Path;

/// The web pods that run, by name, with the address their sidecar registers.
async fn web_pods(pods: &Api<Pod>) -> BTreeMap<String, String> {
    let listed = pods
        .list(&ListParams::default().labels("app=web"))
        .await
        .map(|l| l.items)
        .unwrap_or_default();
    listed
        .into_iter()
        .filter(|p| p.metadata.deletion_timestamp.is_none())
        .filter_map(|p| {
            let ip = p.status.as_ref()?.pod_ip.clone()?;
            Some((p.metadata.name?, format!("{ip}:80")))
        })
        .collect()
}

/// The set `web-client` printed last (name to address).
fn watched(s: &Scenario) -> Option<BTreeMap<String, String>> {
    let log = s.agent.log(&s.ns, "web-client", "watch");
    let last = log.lines().rev().find(|l| l.starts_with('{'))?;
    serde_json::from_str(last).ok()
}

#[tokio::test]
async fn the_discovery_sidecar_registers_expires_and_leaves() {
    let Some(mut s) = Scenario::start("discovery").await else {
        return;
    };
    let examples = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples");
    let example = |name: &str| examples.join(name).display().to_string();
    s.kubectl(&["apply", "-f", &example("dev.yaml")]);
    s.wait("dev", "1 member Available", 120, false, |e| settled(e, 1))
        .await;
    // The ensemble serves a write load throughout, its history checked at the end.
    let load = crate::load::Load::start(&s.servers("dev", 1), 3).await;
    s.kubectl(&["apply", "-f", &example("discovery.yaml")]);
    let pods: Api<Pod> = Api::namespaced(s.client.clone(), &s.ns);

    let three = eventually(
        "the three web pods registered, as web-client sees them",
        120,
        || async {
            let running = web_pods(&pods).await;
            (running.len() == 3 && watched(&s).as_ref() == Some(&running)).then_some(running)
        },
    )
    .await;

    // Expiring: one sidecar hangs (SIGSTOP) past its session's timeout (10 s): the ensemble
    // expires its session and its instance leaves the set; running again, it registers anew.
    let hung = three.keys().next().unwrap().clone();
    assert!(s.agent.signal(&s.ns, &hung, "register", "STOP"));
    eventually(
        "the hung sidecar's instance gone with its session",
        60,
        || async {
            watched(&s)
                .is_some_and(|w| w.len() == 2 && !w.contains_key(&hung))
                .then_some(())
        },
    )
    .await;
    assert!(s.agent.signal(&s.ns, &hung, "register", "CONT"));
    eventually("the sidecar registered again", 60, || async {
        (watched(&s).as_ref() == Some(&three)).then_some(())
    })
    .await;
    let log = s.agent.log(&s.ns, &hung, "register");
    assert!(
        log.contains("the session expired: registering again"),
        "{log}"
    );

    // Leaving: a pod that stops (the Deployment scaled down) deregisters on SIGTERM, without
    // waiting for its session to time out.
    s.kubectl(&["scale", "deployment/web", "--replicas=2"]);
    let left = eventually("one web pod out of the set", 60, || async {
        let w = watched(&s)?;
        let gone: Vec<&String> = three.keys().filter(|k| !w.contains_key(*k)).collect();
        (w.len() == 2 && gone.len() == 1).then(|| gone[0].clone())
    })
    .await;
    let log = s.agent.log(&s.ns, &left, "register");
    assert!(log.contains("deregistered"), "{log}");
    let report = load.finish().await;
    assert!(report.acknowledged_writes > 50, "{report:?}");
}
