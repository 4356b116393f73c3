//! Observing an ensemble: its StatefulSet and pods from the API server, its membership from
//! the members themselves.

use super::ensemble::{self, Reachable, SuperUser};
use super::Error;
use crate::build::names::Names;
use crate::build::statefulset::REVISION_ANNOTATION;
use crate::crd::Ensemble;
use crate::plan::observed::{Observed, Pod};
use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::{PersistentVolumeClaim, Pod as KubePod};
use kube::api::{Api, ListParams};

/// The planner's view of `ens`, and the members the operator can reach.
pub async fn observe(
    client: &kube::Client,
    http: &reqwest::Client,
    ens: &Ensemble,
    names: &Names,
    super_user: &SuperUser,
) -> Result<(Observed, Vec<Reachable>), Error> {
    let sts: Api<StatefulSet> = Api::namespaced(client.clone(), &names.namespace);
    let statefulset_replicas = sts
        .get_opt(&names.statefulset())
        .await?
        .map(|s| s.spec.replicas.unwrap_or(1));
    let observer_replicas = sts
        .get_opt(&names.observer_statefulset())
        .await?
        .map_or(0, |s| s.spec.replicas.unwrap_or(1));
    let pods: Api<KubePod> = Api::namespaced(client.clone(), &names.namespace);
    let selector = names
        .selector()
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",");
    let listed = pods.list(&ListParams::default().labels(&selector)).await?;
    let mut observed_pods = Vec::new();
    let mut reachable = Vec::new();
    for p in listed {
        let name = p.metadata.name.clone().unwrap_or_default();
        let Some((set, ordinal)) = names.pod_ordinal(&name) else {
            continue;
        };
        let status = p.status.as_ref();
        let ready = status
            .and_then(|s| s.conditions.as_ref())
            .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"));
        let revision = p
            .metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get(REVISION_ANNOTATION))
            .cloned()
            .unwrap_or_default();
        let pod = Pod {
            set,
            ordinal,
            ready,
            terminating: p.metadata.deletion_timestamp.is_some(),
            revision,
        };
        if let Some(ip) = status.and_then(|s| s.pod_ip.clone()) {
            if !pod.terminating {
                reachable.push(Reachable {
                    server_id: pod.server_id(),
                    ip,
                });
            }
        }
        observed_pods.push(pod);
    }
    observed_pods.sort_by_key(Pod::server_id);
    // Ready members first: they are in a quorum and answer at once.
    reachable.sort_by_key(|r| {
        !observed_pods
            .iter()
            .any(|p| p.server_id() == r.server_id && p.ready)
    });
    let claims_api: Api<PersistentVolumeClaim> = Api::namespaced(client.clone(), &names.namespace);
    let claims = claims_api
        .list(&ListParams::default())
        .await?
        .iter()
        .filter_map(|c| names.claim_server(c.metadata.name.as_deref()?))
        .collect();
    let membership = ensemble::read(http, &reachable, super_user).await;
    let pending = ens.status.as_ref().and_then(|s| s.pending.clone());
    Ok((
        Observed {
            statefulset_replicas,
            observer_replicas,
            pods: observed_pods,
            membership,
            pending,
            claims,
        },
        reachable,
    ))
}
