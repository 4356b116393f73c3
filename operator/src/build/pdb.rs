//! The PodDisruptionBudget, from the live voters: a drain may take at most as many members
//! as the quorum can lose (none with one or two voters). Observers are not in it: the quorum
//! never depends on them, so a drain may take them all.

use super::names::*;
use crate::plan::disruptions_allowed;
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use serde_json::json;

pub fn pdb(names: &Names, owner: &OwnerReference, live_voters: i32) -> PodDisruptionBudget {
    let value = json!({
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": {
            "name": names.pdb(),
            "namespace": names.namespace,
            "labels": names.selector(),
            "ownerReferences": [owner],
        },
        "spec": {
            "maxUnavailable": disruptions_allowed(live_voters),
            "selector": {
                "matchLabels": names.selector(),
                "matchExpressions": [
                    {"key": COMPONENT_LABEL, "operator": "NotIn", "values": [OBSERVER_COMPONENT]},
                ],
            },
        },
    });
    serde_json::from_value(value).unwrap_or_else(|e| unreachable!("a well-formed PDB: {e}"))
}
