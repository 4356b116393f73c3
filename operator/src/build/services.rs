//! The headless Service that names each member, and the Service clients use.

use super::names::*;
use crate::crd::Ensemble;
use k8s_openapi::api::core::v1::Service;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use serde_json::json;

/// Every member's DNS name, ready or not: a joining member must be reachable by the others
/// before it is ready.
pub fn peers_service(names: &Names, owner: &OwnerReference) -> Service {
    let value = json!({
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {
            "name": names.peers_service(),
            "namespace": names.namespace,
            "labels": names.selector(),
            "ownerReferences": [owner],
        },
        "spec": {
            "clusterIP": "None",
            "publishNotReadyAddresses": true,
            "selector": names.selector(),
            "ports": [
                {"name": "client", "port": CLIENT_PORT},
                {"name": "peer", "port": PEER_PORT},
                {"name": "election", "port": ELECTION_PORT},
                {"name": "admin", "port": ADMIN_PORT},
            ],
        },
    });
    serde_json::from_value(value).unwrap_or_else(|e| unreachable!("a well-formed Service: {e}"))
}

/// The client Service: ready members only.
pub fn client_service(ens: &Ensemble, names: &Names, owner: &OwnerReference) -> Service {
    let s = &ens.spec.services;
    let value = json!({
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {
            "name": names.client_service(),
            "namespace": names.namespace,
            "labels": names.selector(),
            "annotations": s.client_annotations,
            "ownerReferences": [owner],
        },
        "spec": {
            "type": s.client_type.as_deref().unwrap_or("ClusterIP"),
            "selector": names.selector(),
            "ports": [{"name": "client", "port": CLIENT_PORT}],
        },
    });
    serde_json::from_value(value).unwrap_or_else(|e| unreachable!("a well-formed Service: {e}"))
}
