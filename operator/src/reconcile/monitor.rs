//! The PodMonitor `spec.metrics.podMonitor` asks for: applied while asked, deleted once not.
//! A cluster without the Prometheus operator's CRD (or an install without the RBAC for it)
//! gets a condition saying so, not a failed reconcile: the ensemble runs either way.

use super::apply::FIELD_MANAGER;
use super::Error;
use crate::build::{monitor, names::Names};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use kube::api::{Api, DynamicObject, Patch, PatchParams};

/// What became of the PodMonitor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Not asked for, and none made (or the one made is deleted).
    NotAsked,
    Made,
    /// Asked for, but the API server will not take it: why.
    Refused {
        reason: &'static str,
        why: String,
    },
}

/// Applies or deletes the PodMonitor; `made_before` says whether the status shows one was
/// made (only then is one looked for to delete).
pub async fn reconcile(
    client: &kube::Client,
    names: &Names,
    owner: &OwnerReference,
    asked: bool,
    made_before: bool,
) -> Result<Outcome, Error> {
    let api: Api<DynamicObject> =
        Api::namespaced_with(client.clone(), &names.namespace, &monitor::resource());
    if !asked {
        if made_before {
            match api.delete(&names.ensemble, &Default::default()).await {
                Ok(_) => {}
                Err(kube::Error::Api(e)) if e.code == 404 => {}
                Err(e) => return Err(e.into()),
            }
        }
        return Ok(Outcome::NotAsked);
    }
    let obj = monitor::pod_monitor(names, owner);
    let params = PatchParams::apply(FIELD_MANAGER).force();
    match api
        .patch(&names.ensemble, &params, &Patch::Apply(&obj))
        .await
    {
        Ok(_) => Ok(Outcome::Made),
        Err(kube::Error::Api(e)) if e.code == 404 => Ok(Outcome::Refused {
            reason: "NoPodMonitorKind",
            why: "metrics.podMonitor asks for a PodMonitor, but this cluster does not serve \
                  monitoring.coreos.com/v1 PodMonitor: install the Prometheus operator's CRDs"
                .into(),
        }),
        Err(kube::Error::Api(e)) if e.code == 403 => Ok(Outcome::Refused {
            reason: "Forbidden",
            why: format!(
                "metrics.podMonitor asks for a PodMonitor, but the operator may not make one \
                 (its RBAC needs monitoring.coreos.com podmonitors): {}",
                e.message
            ),
        }),
        Err(e) => Err(e.into()),
    }
}
