//! The PodMonitor (the Prometheus operator's `monitoring.coreos.com/v1`) that
//! `spec.metrics.podMonitor` asks for: the members' `/metrics` on their admin port. A
//! dynamic object, since its CRD belongs to the Prometheus operator, not to this one.

use super::names::Names;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use kube::api::{ApiResource, DynamicObject, GroupVersionKind};
use serde_json::json;

/// The PodMonitor resource type.
pub fn resource() -> ApiResource {
    ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("monitoring.coreos.com", "v1", "PodMonitor"),
        "podmonitors",
    )
}

/// Named as the Ensemble, selecting its members' pods, scraping their `admin` port.
pub fn pod_monitor(names: &Names, owner: &OwnerReference) -> DynamicObject {
    let value = json!({
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "PodMonitor",
        "metadata": {
            "name": names.ensemble,
            "namespace": names.namespace,
            "labels": names.selector(),
            "ownerReferences": [owner],
        },
        "spec": {
            "selector": {"matchLabels": names.selector()},
            "podMetricsEndpoints": [{"port": "admin", "path": "/metrics"}],
        },
    });
    serde_json::from_value(value).unwrap_or_else(|e| unreachable!("a well-formed PodMonitor: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn it_selects_the_members_and_scrapes_their_admin_port() {
        let names = Names::new("coord", "apps");
        let owner = OwnerReference {
            api_version: "zooid.io/v1alpha1".into(),
            kind: "Ensemble".into(),
            name: "coord".into(),
            uid: "u".into(),
            controller: Some(true),
            block_owner_deletion: Some(true),
        };
        let m = pod_monitor(&names, &owner);
        assert_eq!(m.metadata.name.as_deref(), Some("coord"));
        assert_eq!(m.metadata.namespace.as_deref(), Some("apps"));
        assert_eq!(
            m.data["spec"]["selector"]["matchLabels"],
            json!(names.selector())
        );
        assert_eq!(
            m.data["spec"]["podMetricsEndpoints"][0],
            json!({"port": "admin", "path": "/metrics"})
        );
        assert_eq!(m.types.as_ref().unwrap().kind, "PodMonitor");
    }
}
